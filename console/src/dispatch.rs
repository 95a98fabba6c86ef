//! Which command runs: a parsed top-level command goes to its module, `manifest 34` with no
//! subcommand enters that reader, and the `mig> ` loop and the readers' loops read lines until
//! exit. The command modules know only the [`Session`] they are given; this module knows them.

use crate::error::Result;
use crate::grammar::vocab::{self, Place};
use crate::grammar::{self, Command, Opts};
use crate::session::{Flow, Session};
use crate::ui::{Context, Line};
use crate::words::Words;
use crate::{investigator, loader, manifest, plugin, report, search, status};

/// Runs one top-level command.
pub fn run(s: &mut Session, cmd: Command, opts: Opts) -> Result<Flow> {
    s.set_opts(opts);
    match cmd {
        Command::Help => s.ui.say(vocab::help(Place::Top)),
        Command::Exit => return Ok(Flow::Leave),
        Command::CreateManifest(a) => manifest::create(s, a)?,
        Command::CreateLoader(a) => loader::create(s, a)?,
        Command::CreateInvestigator(a) => investigator::create(s, a)?,
        Command::Search { kind, filters } => search::run(s, kind, &filters)?,
        Command::Manifest { id, action } => match action {
            Some(a) => {
                let mut r = manifest::Reader::load(s, id)?;
                r.run(s, a)?;
            }
            None => enter(s, ReaderKind::Manifest(id))?,
        },
        Command::Loader { id, action } => match action {
            Some(a) => {
                let mut r = loader::Reader::load(s, id)?;
                r.run(s, a)?;
            }
            None => enter(s, ReaderKind::Loader(id))?,
        },
        Command::Investigator { who, action } => match action {
            Some(a) => {
                let mut r = investigator::Reader::load(s, who)?;
                r.run(s, a)?;
            }
            None => enter(s, ReaderKind::Investigator(who))?,
        },
        Command::PluginUpload { name, file } => plugin::upload(s, &name, &file)?,
        Command::PluginList => plugin::list(s)?,
        Command::PluginDelete { name } => plugin::delete(s, &name)?,
        Command::Status {
            manifest,
            stale_hours,
        } => status::run(s, manifest, stale_hours)?,
        Command::Report {
            html,
            hours,
            stale_hours,
        } => report::run(s, &html, hours, stale_hours)?,
    }
    Ok(Flow::Continue)
}

enum ReaderKind {
    Manifest(u64),
    Loader(u64),
    Investigator(grammar::InvestigatorRef),
}

/// `manifest 34` with no command: the reader in a session or on a terminal; a script without a
/// terminal gets the record instead.
fn enter(s: &mut Session, kind: ReaderKind) -> Result<()> {
    let opts = s.ui.opts;
    if !s.ui.can_prompt() {
        return match kind {
            ReaderKind::Manifest(id) => manifest::Reader::load(s, id)?
                .run(s, grammar::ManifestAction::Json)
                .map(drop),
            ReaderKind::Loader(id) => loader::Reader::load(s, id)?
                .run(s, grammar::LoaderAction::Json)
                .map(drop),
            ReaderKind::Investigator(w) => investigator::Reader::load(s, w)?
                .run(s, grammar::InvestigatorAction::Json)
                .map(drop),
        };
    }
    match kind {
        ReaderKind::Manifest(id) => {
            let mut r = manifest::Reader::load(s, id)?;
            r.banner(s);
            reader_loop(s, &r.prompt(), Context::Manifest, opts, |s, w| {
                let (a, o) = grammar::parse_manifest_action(w, 0)?;
                s.set_opts(o);
                r.run(s, a)
            })
        }
        ReaderKind::Loader(id) => {
            let mut r = loader::Reader::load(s, id)?;
            r.banner(s);
            reader_loop(s, &r.prompt(), Context::Loader, opts, |s, w| {
                let (a, o) = grammar::parse_loader_action(w, 0)?;
                s.set_opts(o);
                r.run(s, a)
            })
        }
        ReaderKind::Investigator(who) => {
            let mut r = investigator::Reader::load(s, who)?;
            r.banner(s);
            let prompt = r.prompt();
            reader_loop(s, &prompt, Context::Investigator, opts, |s, w| {
                let (a, o) = grammar::parse_investigator_action(w, 0)?;
                s.set_opts(o);
                r.run(s, a)
            })
        }
    }
}

/// Reads commands at `prompt` until exit or end of input; a failing command is reported and the
/// reader goes on.
fn reader_loop(
    s: &mut Session,
    prompt: &str,
    ctx: Context,
    opts: Opts,
    mut step: impl FnMut(&mut Session, &Words) -> Result<Flow>,
) -> Result<()> {
    loop {
        s.set_opts(opts);
        let line = match s.ui.read_line(prompt, ctx)? {
            Line::Text(t) => t,
            Line::Interrupted => continue,
            Line::Eof => return Ok(()),
        };
        let words = match Words::from_line(&line) {
            Ok(w) if w.is_empty() => continue,
            Ok(w) => w,
            Err(e) => {
                s.report(&e);
                continue;
            }
        };
        match step(s, &words) {
            Ok(Flow::Leave) => return Ok(()),
            Ok(Flow::Continue) => {}
            Err(e) => s.report(&e),
        }
    }
}

/// The interactive console: commands at `mig> ` until exit or end of input. Returns how many
/// commands failed.
pub fn repl(s: &mut Session) -> usize {
    loop {
        s.set_opts(Opts::default());
        let line = match s.ui.read_line("mig> ", Context::Top) {
            Ok(Line::Text(t)) => t,
            Ok(Line::Interrupted) => continue,
            Ok(Line::Eof) => break,
            Err(e) => {
                s.report(&e);
                break;
            }
        };
        let result = Words::from_line(&line).and_then(|w| {
            if w.is_empty() {
                return Ok(Flow::Continue);
            }
            let (cmd, opts) = grammar::parse(&w)?;
            run(s, cmd, opts)
        });
        match result {
            Ok(Flow::Leave) => break,
            Ok(Flow::Continue) => {}
            Err(e) => s.report(&e),
        }
    }
    s.ui.finish();
    s.failures
}
