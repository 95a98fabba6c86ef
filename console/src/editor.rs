//! The line editor of a terminal session: rustyline with history (`~/.mig_history`) and tab
//! completion of the command words and flags of wherever the user is (top level or a reader),
//! from the grammar's table ([`crate::grammar::vocab`]).

use crate::grammar::vocab::{self, Place};
use crate::ui::{Context, Line, LineSource};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use std::io::Write;
use std::path::PathBuf;

/// The words that may follow `before` (the complete words already typed) in `ctx`, from the
/// grammar's table.
pub fn candidates(ctx: Context, before: &[&str]) -> Vec<String> {
    let place = match ctx {
        Context::Value => return vec![],
        Context::Top => Place::Top,
        Context::Manifest => Place::Manifest,
        Context::Loader => Place::Loader,
        Context::Investigator => Place::Investigator,
    };
    vocab::candidates(place, before)
}

/// rustyline's helper: completion only.
pub struct Helper {
    ctx: Context,
}

impl Completer for Helper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let head = &line[..pos];
        let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let partial = &head[start..];
        let before: Vec<&str> = head[..start].split_whitespace().collect();
        let found = candidates(self.ctx, &before)
            .into_iter()
            .filter(|c| c.starts_with(partial))
            .map(|c| if c.ends_with('=') { c } else { format!("{c} ") })
            .collect();
        Ok((start, found))
    }
}

impl Hinter for Helper {
    type Hint = String;
}
impl Highlighter for Helper {}
impl Validator for Helper {}
impl rustyline::Helper for Helper {}

/// A terminal line source.
pub struct Editor {
    rl: rustyline::Editor<Helper, DefaultHistory>,
    history: Option<PathBuf>,
}

/// `~/.mig_history`.
pub fn default_history() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".mig_history"))
}

impl Editor {
    /// An editor; `history` is loaded now (a missing file is fine) and saved at the end.
    pub fn new(history: Option<PathBuf>) -> rustyline::Result<Self> {
        let config = rustyline::Config::builder()
            .auto_add_history(false)
            .max_history_size(1000)?
            .history_ignore_dups(true)?
            .history_ignore_space(true)
            .completion_type(rustyline::CompletionType::List)
            .build();
        let mut rl = rustyline::Editor::with_config(config)?;
        rl.set_helper(Some(Helper { ctx: Context::Top }));
        if let Some(h) = &history {
            let _ = rl.load_history(h);
        }
        Ok(Editor { rl, history })
    }
}

impl LineSource for Editor {
    fn read(&mut self, prompt: &str, ctx: Context, _out: &mut dyn Write) -> std::io::Result<Line> {
        if let Some(h) = self.rl.helper_mut() {
            h.ctx = ctx;
        }
        match self.rl.readline(prompt) {
            Ok(line) => {
                if ctx != Context::Value && !line.trim().is_empty() {
                    let _ = self.rl.add_history_entry(line.as_str());
                }
                Ok(Line::Text(line))
            }
            Err(ReadlineError::Eof) => Ok(Line::Eof),
            Err(ReadlineError::Interrupted) => Ok(Line::Interrupted),
            Err(ReadlineError::Io(e)) => Err(e),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    fn finish(&mut self) {
        if let Some(h) = &self.history {
            if let Err(e) = self.rl.save_history(h) {
                eprintln!("warning: could not save history to {}: {e}", h.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(ctx: Context, line: &str) -> (usize, Vec<String>) {
        let h = Helper { ctx };
        let hist = DefaultHistory::new();
        h.complete(line, line.len(), &rustyline::Context::new(&hist))
            .unwrap()
    }

    #[test]
    fn top_level_words_complete() {
        assert_eq!(
            complete(Context::Top, "cr"),
            (0, vec!["create ".to_string()])
        );
        assert_eq!(
            complete(Context::Top, "create l"),
            (7, vec!["loader ".to_string()])
        );
        assert_eq!(
            complete(Context::Top, "search loader where loadern"),
            (20, vec!["loadername=".to_string()])
        );
        assert_eq!(
            complete(Context::Top, "manifest 34 sh"),
            (12, vec!["shasum ".to_string()])
        );
    }

    #[test]
    fn readers_offer_their_own_words_including_fetch_loaders_and_shasum() {
        let (_, all) = complete(Context::Manifest, "");
        for w in ["fetch ", "loaders ", "shasum ", "sign "] {
            assert!(all.contains(&w.to_string()), "{w}");
        }
        assert_eq!(
            complete(Context::Loader, "exp").1,
            vec!["expectenv ".to_string()]
        );
        assert!(complete(Context::Value, "an").1.is_empty());
    }

    #[test]
    fn create_manifest_completes_every_flag_the_parser_takes() {
        assert_eq!(
            complete(Context::Top, "create manifest --name x --halt-").1,
            vec!["--halt-after ".to_string(), "--halt-min ".to_string()]
        );
        assert_eq!(
            complete(Context::Top, "create manifest --v").1,
            vec!["--valid-days ".to_string(), "--v1 ".to_string()]
        );
    }
}
