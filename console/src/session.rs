//! A console session: the configuration, the API connection and the signer (each made when a
//! command first needs it), and the dispatch of commands and readers.

use crate::api::{Api, Credential};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::grammar::{self, Command, Opts};
use crate::signer::Signer;
use crate::ui::{Context, Line, Ui};
use crate::words::Words;
use crate::{investigator, loader, manifest, plugin, search};
use std::path::PathBuf;
use std::rc::Rc;

/// What the session needs to start.
pub struct Session {
    config_path: Option<PathBuf>,
    config: Option<Config>,
    api: Option<Api>,
    signer: Option<Rc<Signer>>,
    pub ui: Ui,
    /// Commands that failed in this session (readers included).
    pub failures: usize,
    /// Switches given before the command (`mig-console --json …`), added to every command's.
    pub defaults: Opts,
}

/// Whether a reader or the console goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Leave,
}

impl Session {
    /// `config_path`: `--config`, else `~/.migrc`.
    pub fn new(config_path: Option<PathBuf>, ui: Ui) -> Self {
        Session {
            config_path,
            config: None,
            api: None,
            signer: None,
            ui,
            failures: 0,
            defaults: Opts::default(),
        }
    }

    /// The configuration, read on first use.
    pub fn config(&mut self) -> Result<&Config> {
        if self.config.is_none() {
            let path = self
                .config_path
                .clone()
                .or_else(crate::config::default_path)
                .ok_or_else(|| Error::Config {
                    path: "~/.migrc".into(),
                    reason: "HOME is not set: choose a file with --config".into(),
                })?;
            self.config = Some(Config::load(&path)?);
        }
        Ok(self.config.as_ref().expect("set just above"))
    }

    /// The signer of the configured identity, made on first use.
    pub fn signer(&mut self) -> Result<Rc<Signer>> {
        if let Some(s) = &self.signer {
            return Ok(s.clone());
        }
        let cfg = self.config()?;
        let identity = cfg.identity.clone().ok_or_else(|| Error::Config {
            path: cfg.path.display().to_string(),
            reason: "no signing identity: set [gpg] keyid or [signing] keyfile".into(),
        })?;
        let tty = self.ui.tty;
        let prompt = move |p: &str| {
            if tty {
                crate::tty::read_secret(p).ok()
            } else {
                None
            }
        };
        let s = Rc::new(Signer::new(&identity, &prompt)?);
        self.signer = Some(s.clone());
        Ok(s)
    }

    /// The API connection, made on first use: the API key when one is configured, otherwise
    /// tokens signed by the identity.
    pub fn api(&mut self) -> Result<&Api> {
        if self.api.is_none() {
            let cfg = self.config()?.clone();
            let credential = match &cfg.apikey {
                Some(k) => Credential::ApiKey(k.clone()),
                None if cfg.identity.is_some() => Credential::Token(self.signer()?),
                None => {
                    return Err(Error::Config {
                        path: cfg.path.display().to_string(),
                        reason: "no credential: set [gpg] keyid, [signing] keyfile or [api] apikey"
                            .into(),
                    })
                }
            };
            let mut warning = Vec::new();
            let api = Api::new(&cfg, credential, &mut warning)?;
            if !warning.is_empty() {
                self.ui.warn(String::from_utf8_lossy(&warning).trim_end());
            }
            self.api = Some(api);
        }
        Ok(self.api.as_ref().expect("set just above"))
    }

    /// Sets the current command's switches, on top of the global ones.
    pub fn set_opts(&mut self, o: Opts) {
        self.ui.opts = Opts {
            json: o.json || self.defaults.json,
            yes: o.yes || self.defaults.yes,
        };
    }

    /// Runs one top-level command.
    pub fn run(&mut self, cmd: Command, opts: Opts) -> Result<Flow> {
        self.set_opts(opts);
        match cmd {
            Command::Help => self.ui.say(grammar::HELP),
            Command::Exit => return Ok(Flow::Leave),
            Command::CreateManifest(a) => manifest::create(self, a)?,
            Command::CreateLoader(a) => loader::create(self, a)?,
            Command::CreateInvestigator(a) => investigator::create(self, a)?,
            Command::Search { kind, filters } => search::run(self, kind, &filters)?,
            Command::Manifest { id, action } => match action {
                Some(a) => {
                    let mut r = manifest::Reader::load(self, id)?;
                    r.run(self, a)?;
                }
                None => self.enter(ReaderKind::Manifest(id))?,
            },
            Command::Loader { id, action } => match action {
                Some(a) => {
                    let mut r = loader::Reader::load(self, id)?;
                    r.run(self, a)?;
                }
                None => self.enter(ReaderKind::Loader(id))?,
            },
            Command::Investigator { who, action } => match action {
                Some(a) => {
                    let mut r = investigator::Reader::load(self, who)?;
                    r.run(self, a)?;
                }
                None => self.enter(ReaderKind::Investigator(who))?,
            },
            Command::PluginUpload { name, file } => plugin::upload(self, &name, &file)?,
            Command::PluginList => plugin::list(self)?,
            Command::PluginDelete { name } => plugin::delete(self, &name)?,
            Command::Status {
                manifest,
                stale_hours,
            } => crate::status::run(self, manifest, stale_hours)?,
            Command::Report {
                html,
                hours,
                stale_hours,
            } => crate::report::run(self, &html, hours, stale_hours)?,
        }
        Ok(Flow::Continue)
    }

    /// `manifest 34` with no command: the reader in a session or on a terminal; a script
    /// without a terminal gets the record instead.
    fn enter(&mut self, kind: ReaderKind) -> Result<()> {
        let opts = self.ui.opts;
        if !self.ui.can_prompt() {
            return match kind {
                ReaderKind::Manifest(id) => manifest::Reader::load(self, id)?
                    .run(self, grammar::ManifestAction::Json)
                    .map(drop),
                ReaderKind::Loader(id) => loader::Reader::load(self, id)?
                    .run(self, grammar::LoaderAction::Json)
                    .map(drop),
                ReaderKind::Investigator(w) => investigator::Reader::load(self, w)?
                    .run(self, grammar::InvestigatorAction::Json)
                    .map(drop),
            };
        }
        match kind {
            ReaderKind::Manifest(id) => {
                let mut r = manifest::Reader::load(self, id)?;
                r.banner(self);
                self.reader_loop(&r.prompt(), Context::Manifest, opts, |s, w| {
                    let (a, o) = grammar::parse_manifest_action(w, 0)?;
                    s.set_opts(o);
                    r.run(s, a)
                })
            }
            ReaderKind::Loader(id) => {
                let mut r = loader::Reader::load(self, id)?;
                r.banner(self);
                self.reader_loop(&r.prompt(), Context::Loader, opts, |s, w| {
                    let (a, o) = grammar::parse_loader_action(w, 0)?;
                    s.set_opts(o);
                    r.run(s, a)
                })
            }
            ReaderKind::Investigator(who) => {
                let mut r = investigator::Reader::load(self, who)?;
                r.banner(self);
                let prompt = r.prompt();
                self.reader_loop(&prompt, Context::Investigator, opts, |s, w| {
                    let (a, o) = grammar::parse_investigator_action(w, 0)?;
                    s.set_opts(o);
                    r.run(s, a)
                })
            }
        }
    }

    /// Reads commands at `prompt` until exit or end of input; a failing command is reported and
    /// the reader goes on.
    fn reader_loop(
        &mut self,
        prompt: &str,
        ctx: Context,
        opts: Opts,
        mut step: impl FnMut(&mut Session, &Words) -> Result<Flow>,
    ) -> Result<()> {
        loop {
            self.set_opts(opts);
            let line = match self.ui.read_line(prompt, ctx)? {
                Line::Text(t) => t,
                Line::Interrupted => continue,
                Line::Eof => return Ok(()),
            };
            let words = match Words::from_line(&line) {
                Ok(w) if w.is_empty() => continue,
                Ok(w) => w,
                Err(e) => {
                    self.report(&e);
                    continue;
                }
            };
            match step(self, &words) {
                Ok(Flow::Leave) => return Ok(()),
                Ok(Flow::Continue) => {}
                Err(e) => self.report(&e),
            }
        }
    }

    /// The interactive console: commands at `mig> ` until exit or end of input. Returns how
    /// many commands failed.
    pub fn repl(&mut self) -> usize {
        loop {
            self.set_opts(Opts::default());
            let line = match self.ui.read_line("mig> ", Context::Top) {
                Ok(Line::Text(t)) => t,
                Ok(Line::Interrupted) => continue,
                Ok(Line::Eof) => break,
                Err(e) => {
                    self.report(&e);
                    break;
                }
            };
            let result = Words::from_line(&line).and_then(|w| {
                if w.is_empty() {
                    return Ok(Flow::Continue);
                }
                let (cmd, opts) = grammar::parse(&w)?;
                self.run(cmd, opts)
            });
            match result {
                Ok(Flow::Leave) => break,
                Ok(Flow::Continue) => {}
                Err(e) => self.report(&e),
            }
        }
        self.ui.finish();
        self.failures
    }

    /// Prints an error on stderr.
    pub fn report(&mut self, e: &Error) {
        // Answering no is the user's choice, not a failure of the session.
        if let Error::Declined(_) = e {
            if self.ui.interactive {
                self.ui.say(e.to_string());
                return;
            }
        }
        self.failures += 1;
        self.ui.warn(format!("error: {e}"));
    }
}

enum ReaderKind {
    Manifest(u64),
    Loader(u64),
    Investigator(grammar::InvestigatorRef),
}
