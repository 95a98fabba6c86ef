//! The command line: global options, then either an interactive session (no command) or one
//! command in script mode (`mig-console manifest 34 sign`).

use crate::dispatch;
use crate::editor::{self, Editor};
use crate::error::{Error, Result};
use crate::grammar::{self, Opts};
use crate::session::Session;
use crate::ui::{LineSource, PlainLines, Ui};
use crate::words::Words;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: mig-console [--config FILE] [--json] [--yes] [--no-history] [COMMAND ...]

Without a command: the interactive console (prompt `mig> `). With one: script mode, which
runs that command, prints its result (--json: the API's JSON document only) and exits 0 on
success, 1 on failure. When standard input is not a terminal nothing is prompted: a missing
value is an error naming its flag, and confirmations are implied.

  --config FILE   configuration (default ~/.migrc; see conf/migrc.example)
  --json          print the API's JSON and nothing else on stdout
  --yes, -y       do not ask for confirmation
  --no-history    do not read or write ~/.mig_history

Environment: MIG_PASSPHRASE (key file passphrase), MIG_APIKEY (X-MIGAPIKEY credential).
";

/// Options before the command.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Global {
    pub config: Option<PathBuf>,
    pub opts: Opts,
    pub no_history: bool,
    pub help: bool,
    pub version: bool,
    /// The command's words (empty: interactive).
    pub command: Vec<String>,
}

/// Splits the global options from the command; options stop at the first other word.
pub fn parse_global(args: Vec<String>) -> Result<Global> {
    let mut g = Global::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                let v = it
                    .next()
                    .ok_or_else(|| Error::Usage("--config needs a FILE".into()))?;
                g.config = Some(crate::config::expand_home(&v));
            }
            s if s.starts_with("--config=") => {
                g.config = Some(crate::config::expand_home(&s["--config=".len()..]));
            }
            "--json" => g.opts.json = true,
            "--yes" | "-y" => g.opts.yes = true,
            "--no-history" => g.no_history = true,
            "--help" | "-h" => g.help = true,
            "--version" | "-V" => g.version = true,
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(Error::Usage(format!("unknown option {s}\n{USAGE}")))
            }
            _ => {
                g.command.push(a);
                g.command.extend(it);
                break;
            }
        }
    }
    Ok(g)
}

/// The program.
pub fn main() -> ExitCode {
    let g = match parse_global(std::env::args().skip(1).collect()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if g.help {
        print!(
            "{USAGE}\n{}\n",
            grammar::vocab::help(grammar::vocab::Place::Top)
        );
        return ExitCode::SUCCESS;
    }
    if g.version {
        println!("mig-console {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let tty = crate::tty::stdin_is_terminal();
    let interactive = g.command.is_empty();
    let input: Box<dyn LineSource> = if tty {
        let history = if g.no_history || !interactive {
            None
        } else {
            editor::default_history()
        };
        match Editor::new(history) {
            Ok(e) => Box::new(e),
            Err(e) => {
                eprintln!("error: cannot start the line editor: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        Box::new(PlainLines::new(std::io::BufReader::new(std::io::stdin())))
    };
    let mut ui = Ui::new(
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
        input,
        interactive,
        tty,
    );
    ui.err_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut session = Session::new(g.config, ui);
    session.defaults = g.opts;
    if interactive {
        return interactive_session(&mut session);
    }
    let result = grammar::parse(&Words::from_args(g.command))
        .and_then(|(cmd, opts)| dispatch::run(&mut session, cmd, opts));
    session.ui.finish();
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            session.report(&e);
            ExitCode::FAILURE
        }
    }
}

/// The `mig> ` session. Fails at once on a configuration error; otherwise a session whose
/// input is not a terminal exits 1 when any command failed, so a piped session can be checked.
fn interactive_session(s: &mut Session) -> ExitCode {
    if let Err(e) = s.config() {
        s.report(&e);
        return ExitCode::FAILURE;
    }
    if s.ui.tty {
        s.ui.say("mig-console: type help for the commands, exit or ctrl+d to leave.");
    }
    match greet(s) {
        Ok(line) => s.ui.say(line),
        Err(e) => s.report(&e),
    }
    let failures = dispatch::repl(s);
    if failures > 0 && !s.ui.tty {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Who we are, as the API sees it.
fn greet(s: &mut Session) -> Result<String> {
    let url = s.config()?.api_url.clone();
    let v = s.api()?.get("investigators/me")?;
    let me: mig_protocol::admin::InvestigatorRecord =
        crate::api::typed(&v, "GET investigators/me")?;
    Ok(format!(
        "Connected to {url} as '{}' (investigator {})",
        crate::table::clean(&me.name),
        me.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn global_options_stop_at_the_command() {
        let g = parse_global(args(&[
            "--config", "/c", "--json", "manifest", "34", "sign", "--yes",
        ]))
        .unwrap();
        assert_eq!(g.config, Some(PathBuf::from("/c")));
        assert!(g.opts.json && !g.opts.yes);
        assert_eq!(g.command, args(&["manifest", "34", "sign", "--yes"]));
        let g = parse_global(args(&["-y", "--no-history"])).unwrap();
        assert!(g.opts.yes && g.no_history && g.command.is_empty());
        assert!(parse_global(args(&["--frob"])).is_err());
        assert!(parse_global(args(&["--config"])).is_err());
    }
}
