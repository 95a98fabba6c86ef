//! What the user sees and types: output (human text or the API's JSON), prompts for missing
//! values, confirmations, and where lines come from (the line editor or plain standard input).

use crate::error::{Error, Result};
use crate::grammar::{Opts, MIN_NAME};
use std::io::{BufRead, Read, Write};

/// The longest line read from standard input.
const MAX_LINE: u64 = 1024 * 1024;

/// One read from the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// End of input (ctrl+d).
    Eof,
    /// ctrl+c: the line is dropped.
    Interrupted,
}

/// Where a line is read, so completion offers the right words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Top,
    Manifest,
    Loader,
    Investigator,
    /// A value (name, target, path, y/n): no completion, no history.
    Value,
}

/// A source of lines.
pub trait LineSource {
    /// Shows `prompt` and reads one line; `out` is where the prompt goes when the source does
    /// not draw it itself.
    fn read(&mut self, prompt: &str, ctx: Context, out: &mut dyn Write) -> std::io::Result<Line>;
    /// Called once at the end (saves history).
    fn finish(&mut self) {}
}

/// Lines from a reader that is not a terminal: the prompt and the line read are printed, so a
/// piped session reads like the seed's transcripts.
pub struct PlainLines<R> {
    reader: R,
}

impl<R: BufRead> PlainLines<R> {
    pub fn new(reader: R) -> Self {
        PlainLines { reader }
    }
}

impl<R: BufRead> LineSource for PlainLines<R> {
    fn read(&mut self, prompt: &str, _ctx: Context, out: &mut dyn Write) -> std::io::Result<Line> {
        write!(out, "{prompt}")?;
        let mut line = String::new();
        let n = (&mut self.reader).take(MAX_LINE).read_line(&mut line)?;
        if n == 0 {
            writeln!(out)?;
            out.flush()?;
            return Ok(Line::Eof);
        }
        let line = line.trim_end_matches(['\n', '\r']).to_string();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(Line::Text(line))
    }
}

/// The console's terminal side.
pub struct Ui {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    input: Box<dyn LineSource>,
    /// A REPL session (prompts and confirmations read from the input, whatever it is).
    pub interactive: bool,
    /// Standard input is a terminal.
    pub tty: bool,
    /// Standard error is a terminal: long uploads may draw a progress bar there.
    pub err_tty: bool,
    /// The current command's switches.
    pub opts: Opts,
}

impl Ui {
    pub fn new(
        out: Box<dyn Write>,
        err: Box<dyn Write>,
        input: Box<dyn LineSource>,
        interactive: bool,
        tty: bool,
    ) -> Self {
        Ui {
            out,
            err,
            input,
            interactive,
            tty,
            err_tty: false,
            opts: Opts::default(),
        }
    }

    /// Human text: stdout, or stderr when stdout is reserved for JSON.
    pub fn say(&mut self, text: impl std::fmt::Display) {
        let w: &mut dyn Write = if self.opts.json {
            &mut self.err
        } else {
            &mut self.out
        };
        let _ = writeln!(w, "{text}");
        let _ = w.flush();
    }

    /// Text that is always for humans and never on stdout in JSON mode, without a newline.
    pub fn say_raw(&mut self, text: &str) {
        let w: &mut dyn Write = if self.opts.json {
            &mut self.err
        } else {
            &mut self.out
        };
        let _ = write!(w, "{text}");
        let _ = w.flush();
    }

    /// A warning or error line on stderr.
    pub fn warn(&mut self, text: impl std::fmt::Display) {
        let _ = writeln!(self.err, "{text}");
        let _ = self.err.flush();
    }

    /// One JSON document on stdout.
    pub fn json(&mut self, v: &serde_json::Value) {
        let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// The label of a progress bar for `what`, when one may be drawn: standard error is a
    /// terminal and the output is not `--json`.
    pub fn shows_progress<'a>(&self, what: &'a str) -> Option<&'a str> {
        (self.err_tty && !self.opts.json).then_some(what)
    }

    /// Whether values may be asked for: in a session, or when standard input is a terminal.
    pub fn can_prompt(&self) -> bool {
        self.interactive || self.tty
    }

    /// Reads a line with `prompt`.
    pub fn read_line(&mut self, prompt: &str, ctx: Context) -> Result<Line> {
        self.input
            .read(prompt, ctx, &mut self.out)
            .map_err(|e| Error::io("read", "standard input", e))
    }

    /// Asks for a value: prints `intro` and `prompt`, reads one line. Refused (naming `flag`)
    /// when nothing may be prompted.
    pub fn ask(
        &mut self,
        intro: &str,
        prompt: &str,
        flag: &'static str,
        what: &'static str,
    ) -> Result<String> {
        if !self.can_prompt() {
            return Err(Error::Missing { flag, what });
        }
        if !intro.is_empty() {
            self.say(intro);
        }
        match self.read_line(prompt, Context::Value)? {
            Line::Text(t) => Ok(t.trim().to_string()),
            Line::Eof | Line::Interrupted => Err(Error::Declined(format!("no {what} given"))),
        }
    }

    /// The name of a new `record` (manifest, loader, investigator): `given` (its `--name`), else
    /// asked with `intro` at MIG's `name> ` prompt and echoed; refused when shorter than
    /// [`MIN_NAME`].
    pub fn name(
        &mut self,
        given: Option<String>,
        record: &str,
        intro: &str,
        what: &'static str,
    ) -> Result<String> {
        let name = match given {
            Some(n) => n,
            None => {
                let n = self.ask(intro, "name> ", "--name", what)?;
                self.say(format!("Name: '{n}'"));
                n
            }
        };
        if name.chars().count() < MIN_NAME {
            return Err(Error::Usage(format!(
                "{record} name {name:?} is shorter than {MIN_NAME} characters"
            )));
        }
        Ok(name)
    }

    /// Asks `question (y/n)> ` unless --yes was given or nothing may be asked (a script whose
    /// standard input is not a terminal implies yes).
    pub fn confirm(&mut self, question: &str) -> Result<()> {
        if self.opts.yes || !self.can_prompt() {
            return Ok(());
        }
        match self.read_line(&format!("{question} (y/n)> "), Context::Value)? {
            Line::Text(t) if matches!(t.trim().to_ascii_lowercase().as_str(), "y" | "yes") => {
                Ok(())
            }
            _ => Err(Error::Declined(question.to_string())),
        }
    }

    /// Saves history and the like.
    pub fn finish(&mut self) {
        self.input.finish();
        let _ = self.out.flush();
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    pub struct Shared(pub Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        pub fn text(&self) -> String {
            String::from_utf8(self.0.borrow().clone()).unwrap()
        }
    }

    /// A Ui over `input`, with its stdout and stderr.
    pub fn ui(input: &str, interactive: bool, tty: bool) -> (Ui, Shared, Shared) {
        let (out, err) = (Shared::default(), Shared::default());
        let ui = Ui::new(
            Box::new(out.clone()),
            Box::new(err.clone()),
            Box::new(PlainLines::new(std::io::Cursor::new(
                input.as_bytes().to_vec(),
            ))),
            interactive,
            tty,
        );
        (ui, out, err)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::ui;
    use super::*;

    #[test]
    fn a_script_without_a_terminal_is_never_prompted() {
        let (mut u, out, _) = ui("should not be read\n", false, false);
        let e = u
            .ask(
                "Please provide the name",
                "name> ",
                "--name",
                "the loader's name",
            )
            .unwrap_err();
        assert!(e.to_string().contains("missing --name"), "{e}");
        u.confirm("create loader entry?").unwrap();
        assert_eq!(out.text(), "");
    }

    #[test]
    fn a_session_prompts_and_echoes_like_the_transcript() {
        let (mut u, out, _) = ui("corbomite.internal\nn\n", true, false);
        let v = u
            .ask(
                "Please provide the name of the new entry",
                "name> ",
                "--name",
                "name",
            )
            .unwrap();
        assert_eq!(v, "corbomite.internal");
        let e = u.confirm("create loader entry?").unwrap_err();
        assert!(matches!(e, Error::Declined(_)));
        assert_eq!(
            out.text(),
            "Please provide the name of the new entry\nname> corbomite.internal\ncreate loader entry? (y/n)> n\n"
        );
    }

    #[test]
    fn yes_skips_the_question_and_json_mode_keeps_stdout_for_json() {
        let (mut u, out, err) = ui("", true, true);
        u.opts = Opts {
            json: true,
            yes: true,
        };
        u.confirm("disable manifest 3?").unwrap();
        u.say("Manifest signature has been accepted");
        u.json(&serde_json::json!({"id": 3}));
        assert_eq!(out.text(), "{\n  \"id\": 3\n}\n");
        assert_eq!(err.text(), "Manifest signature has been accepted\n");
    }

    #[test]
    fn end_of_input_is_reported() {
        let (mut u, _, _) = ui("", true, false);
        assert_eq!(u.read_line("mig> ", Context::Top).unwrap(), Line::Eof);
    }
}
