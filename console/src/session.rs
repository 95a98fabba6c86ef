//! A console session: the configuration, the API connection and the signer (each made when a
//! command first needs it), what the user sees, and the count of failures. Commands receive it;
//! [`crate::dispatch`] decides which command runs.

use crate::api::{Api, Credential};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::grammar::Opts;
use crate::signer::Signer;
use crate::ui::Ui;
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
