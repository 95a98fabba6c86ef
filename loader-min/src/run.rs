//! One run of mig-loader, in the order of docs/design.md §2.5:
//! lock → recover → discover → statement → verify → compare → stage → swap → triggers → health →
//! commit | revert → report → cleanup.

use crate::compare::{self, Change};
use crate::config::{BuildConfig, RuntimeConfig, Settings};
use crate::error::{Error, Result};
use crate::journal::{Journal, JournalEntry, Phase};
use crate::layout::Layout;
use crate::verify::{self, Rejected};
use crate::{crash, discover, fetch, health, key, lock, log, report, state, swap, triggers};
use mig_http::Client;
use mig_protocol::dictionary::DictName;
use mig_protocol::loader::{Have, LoaderKey, ManifestRequest, ReportResult};
use mig_protocol::signature::Keyring;
use mig_protocol::statement::{Expectations, Platform, Serial, Statement};
use mig_protocol::time::Timestamp;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the command line asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The periodic run.
    Update,
    /// `-c`: only make sure the agent runs.
    Check,
    /// `-i`: first install: create MIG's directories, then the periodic run.
    FirstInstall,
}

/// How a successful run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Installed,
    Unchanged,
    AgentChecked,
}

/// Everything one run works with.
struct Run {
    layout: Layout,
    settings: Settings,
    started: Instant,
}

/// Runs the loader against `root` with the built-in configuration `build`.
pub fn run(build: BuildConfig, root: PathBuf, mode: Mode) -> Result<Outcome> {
    let started = Instant::now();
    let platform = Platform::host();
    let layout = Layout::new(root, &platform.os);
    if mode == Mode::FirstInstall {
        let conf = layout.conf_dir();
        std::fs::create_dir_all(&conf).map_err(|e| Error::io("create directory", &conf, e))?;
    }
    state::ensure_dir(&layout.state_dir())?;
    // One run at a time; the lock is held until this function returns.
    let _lock = lock::acquire(&layout.lock_file())?;
    let run = Run {
        settings: Settings::new(build, &RuntimeConfig::default()),
        layout,
        started,
    };
    run.recover()?;
    let rt = RuntimeConfig::load(&run.layout.runtime_config()?)?;
    for line in &rt.ignored {
        log::step(format!("configuration: {line}"));
    }
    let run = Run {
        settings: Settings::new(build, &rt),
        ..run
    };
    match mode {
        Mode::Check => run.check_agent().map(|()| Outcome::AgentChecked),
        Mode::Update | Mode::FirstInstall => run.update(),
    }
}

impl Run {
    fn agent(&self) -> Result<PathBuf> {
        self.layout.agent()
    }

    fn trigger_timeout(&self) -> Duration {
        self.settings.trigger_timeout()
    }

    /// An interrupted install is finished or undone before anything else; when the new agent
    /// may have been started, the old one is started again.
    fn recover(&self) -> Result<()> {
        let phase = swap::recover(&self.layout)?;
        swap::remove_strays(&self.layout)?;
        if phase == Some(Phase::Swapped) {
            log::step("restarting the previous agent after recovery");
            self.restart_agent();
        }
        Ok(())
    }

    /// Runs the triggers; a failure is logged (used when the outcome is already decided).
    fn restart_agent(&self) {
        match self.agent() {
            Ok(agent) if agent.exists() => {
                if let Err(e) = triggers::run_triggers(&agent, self.trigger_timeout()) {
                    log::warn(e);
                }
            }
            _ => log::step("no agent installed, nothing to restart"),
        }
    }

    /// MIG's `-c`, and every run without an install: restart the agent if it is not running.
    fn check_agent(&self) -> Result<()> {
        let agent = self.agent()?;
        if !agent.exists() {
            return Err(Error::Trigger {
                command: agent.display().to_string(),
                reason: "no agent is installed".into(),
            });
        }
        if health::agent_running(&agent, self.trigger_timeout()) {
            log::step("agent is running");
            return Ok(());
        }
        log::step("agent is not running, running triggers");
        triggers::run_triggers(&agent, self.trigger_timeout())
    }

    /// Keeps the agent running after a run that installs nothing (logged, never fatal).
    fn keep_agent_running(&self) {
        if self.agent().is_ok_and(|a| a.exists()) {
            if let Err(e) = self.check_agent() {
                log::warn(e);
            }
        }
    }

    fn update(&self) -> Result<Outcome> {
        let build = &self.settings.build;
        if build.development {
            log::warn(format!(
                "this mig-loader was built with the development configuration {}: it trusts publicly known keys; never deploy it",
                build.source
            ));
        }
        let keyring = Keyring::from_armored(build.keys.iter().copied())?;
        let required = usize::try_from(build.required_signatures).unwrap_or(usize::MAX);
        let key = key::load(&self.layout.key_file())?;
        let api = Client::new(&build.http(), &self.settings.api_url)?
            .with_deadline(self.started + Duration::from_secs(build.run_timeout_secs));
        let agent = discover::discover(&self.layout, &self.settings, &api)?;
        let installed = state::installed_serial(&self.layout.serial_file())?;
        log::step(format!("installed serial is {}", installed.get()));
        let request = ManifestRequest {
            agent,
            have: Have { serial: installed },
        };
        let response = match verify::request(&api, &key, &request) {
            Ok(r) => r,
            Err(e) => {
                // The API knows this loader but refuses it (expectenv): say so in its record too.
                if e.status() == Some(403) {
                    report::send(
                        &api,
                        &key,
                        &self.layout,
                        installed,
                        ReportResult::Rejected,
                        &e.to_string(),
                    );
                }
                self.keep_agent_running();
                return Err(e);
            }
        };
        let expect = Expectations {
            now: Timestamp::now(),
            platform: Platform::host(),
            installed,
        };
        let statement = match verify::verify(&keyring, required, &response, &expect) {
            Ok(s) => s,
            Err(Rejected { serial, error }) => {
                log::step(format!("rejecting the manifest: {error}"));
                report::send(
                    &api,
                    &key,
                    &self.layout,
                    serial,
                    ReportResult::Rejected,
                    &error.to_string(),
                );
                self.keep_agent_running();
                return Err(error);
            }
        };
        let ctx = Install {
            run: self,
            api: &api,
            key: &key,
            statement: &statement,
            installed,
        };
        ctx.apply()
    }
}

/// The install of one verified statement.
struct Install<'a> {
    run: &'a Run,
    api: &'a Client,
    key: &'a LoaderKey,
    statement: &'a Statement,
    installed: Serial,
}

impl Install<'_> {
    fn report(&self, result: ReportResult, message: &str) {
        report::send(
            self.api,
            self.key,
            &self.run.layout,
            self.statement.serial,
            result,
            message,
        );
    }

    fn apply(&self) -> Result<Outcome> {
        let layout = &self.run.layout;
        let plan = match compare::compare(layout, self.statement) {
            Ok(p) => p,
            Err(e) => return self.failed(e),
        };
        if plan.changes.is_empty() {
            return self.unchanged();
        }
        if let Err(e) = self.stage(&plan.changes) {
            return self.failed(e);
        }
        crash::point("after_stage");
        let agent = self.run.agent()?;
        let journal_path = layout.journal_file();
        let mut journal = Journal {
            serial: self.statement.serial,
            phase: Phase::Staged,
            entries: plan
                .changes
                .iter()
                .map(|c| JournalEntry {
                    name: c.name,
                    existed: c.existed,
                })
                .collect(),
        };
        if let Err(e) = journal.write(&journal_path) {
            self.discard_staged(&plan.changes);
            return self.failed(e);
        }
        crash::point("after_journal");
        if let Err(e) = swap::swap(layout, &mut journal, &journal_path) {
            return self.roll_back(&journal, e, false);
        }
        crash::point("after_swap");
        log::step("running triggers due to modification");
        let started = triggers::run_triggers(&agent, self.run.trigger_timeout())
            .inspect(|()| crash::point("after_triggers"))
            .and_then(|()| {
                log::step("checking the agent is healthy");
                health::wait_healthy(
                    &agent,
                    self.run.settings.health_timeout(),
                    self.run.trigger_timeout(),
                )
            });
        if let Err(e) = started {
            return self.roll_back(&journal, e, true);
        }
        log::step("agent is healthy");
        crash::point("before_commit");
        self.commit(&mut journal)?;
        if plan.changes.iter().any(|c| c.name == DictName::MigLoader) {
            log::step("mig-loader was replaced: the next run uses the new binary");
        }
        self.report(ReportResult::Installed, "");
        swap::remove_strays(layout)?;
        Ok(Outcome::Installed)
    }

    /// Fetches every changed file; all or nothing.
    fn stage(&self, changes: &[Change]) -> Result<()> {
        for c in changes {
            let staged = self.run.layout.staged(c.name)?;
            if let Err(e) = fetch::stage(self.api, self.key, &c.entry, &staged, c.name.mode()) {
                self.discard_staged(changes);
                return Err(e);
            }
        }
        // A signed but malformed run-time configuration would stop every later run before it
        // could fetch a fix: refuse it while the old one is still in place.
        if changes.iter().any(|c| c.name == DictName::LoaderConfig) {
            let staged = self.run.layout.staged(DictName::LoaderConfig)?;
            if let Err(e) = RuntimeConfig::load(&staged) {
                self.discard_staged(changes);
                return Err(Error::Config(format!(
                    "the manifest's loaderconfig is not usable, not installing it: {e}"
                )));
            }
        }
        log::step(format!("{} file(s) staged and verified", changes.len()));
        Ok(())
    }

    fn discard_staged(&self, changes: &[Change]) {
        for c in changes {
            if let Ok(p) = self.run.layout.staged(c.name) {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// Nothing to fetch: record a newer serial if any, keep the agent running.
    fn unchanged(&self) -> Result<Outcome> {
        let layout = &self.run.layout;
        log::step("all files are current");
        if self.statement.serial > self.installed {
            state::write_serial(&layout.serial_file(), self.statement.serial)?;
            log::step(format!("serial {} recorded", self.statement.serial.get()));
        }
        self.run.keep_agent_running();
        self.report(ReportResult::Unchanged, "");
        swap::remove_strays(layout)?;
        Ok(Outcome::Unchanged)
    }

    /// A failure before any file was swapped: the host is as it was.
    fn failed(&self, e: Error) -> Result<Outcome> {
        log::step(format!("install failed, nothing was changed: {e}"));
        self.report(ReportResult::Failed, &e.to_string());
        self.run.keep_agent_running();
        Err(e)
    }

    /// docs/design.md §4.14: the previous generation comes back and, if triggers ran, is restarted.
    fn roll_back(&self, journal: &Journal, cause: Error, restart: bool) -> Result<Outcome> {
        let layout = &self.run.layout;
        log::step(format!("rolling back to the previous generation: {cause}"));
        swap::revert(layout, journal)?;
        Journal::remove(&layout.journal_file())?;
        if restart {
            self.run.restart_agent();
        }
        self.report(ReportResult::RolledBack, &cause.to_string());
        Err(cause)
    }

    /// The new generation stays: serial first, then the journal says so, then cleanup.
    fn commit(&self, journal: &mut Journal) -> Result<()> {
        let layout = &self.run.layout;
        state::write_serial(&layout.serial_file(), self.statement.serial)?;
        journal.phase = Phase::Committed;
        journal.write(&layout.journal_file())?;
        swap::finish(layout, journal)?;
        Journal::remove(&layout.journal_file())?;
        log::step(format!("serial {} committed", self.statement.serial.get()));
        Ok(())
    }
}
