//! One run of mig-loader, as the states of docs/design.md §2.5, each a module of this crate:
//!
//! lock → recover → key → discover → roots → statement → verify → compare → stage → swap → triggers →
//! health → commit | revert → report → cleanup.
//!
//! [`Run::update`] goes through them and ends in an [`Outcome`] or a typed [`Failure`];
//! [`Run::conclude`] is the one place that reports the end of a run to the API and keeps the agent
//! running.

use crate::compare::{self, Plan};
use crate::config::{BuildConfig, RuntimeConfig, Settings};
use crate::crash::{self, CrashPoint};
use crate::error::{Error, Result};
use crate::journal::{Journal, JournalEntry, Phase};
use crate::layout::Layout;
use crate::outcome::{FailedIn, Failure, Outcome, Update};
use crate::report::Reporter;
use crate::verify::{self, Rejected};
use crate::{
    cleanup, commit, discover, health, key, lock, log, recover, revert, roots, stage, state,
    statement, swap, triggers,
};
use mig_http::Client;
use mig_protocol::dictionary::DictName;
use mig_protocol::freshness::FreshnessKey;
use mig_protocol::loader::{Have, LoaderKey, ManifestRequest, ReportResult};
use mig_protocol::root::Root;
use mig_protocol::signature::Keyring;
use mig_protocol::statement::{Expectations, Platform, Serial, Statement};
use mig_protocol::time::Timestamp;
use std::path::PathBuf;
use std::time::Instant;

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
    // The key lives in the state directory on Windows, but whoever wrote it may have given it
    // access entries of its own: they go (docs/design.md §2.8).
    #[cfg(windows)]
    crate::windows::restrict_if_present(&layout.key_file())?;
    // lock: one run at a time; held until this function returns.
    let _lock = lock::acquire(&layout.lock_file())?;
    let run = Run {
        settings: Settings::new(build, &RuntimeConfig::default()),
        layout,
        started,
    };
    // docs/design.md §2.7: MIG's `-i` on macOS installs and loads the launchd job.
    #[cfg(target_os = "macos")]
    if mode == Mode::FirstInstall {
        crate::darwin::install_launchd_job(run.layout.root(), &run.settings.limits)?;
    }
    run.recover()?;
    let rt = RuntimeConfig::load(
        &run.layout.runtime_config()?,
        run.settings.limits.runtime_config,
    )?;
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

/// What decides whether a statement is believed: the built-in root, the roots accepted since
/// (docs/design.md §4.1, §4.21), and the built-in freshness key.
struct Trust {
    /// The newest root reached so far: its keys and threshold count.
    root: Root,
    /// (file name, armored key) of the built-in freshness key.
    freshness: Option<(&'static str, &'static str)>,
}

/// The parts of a run that exist once the API can be asked: who to report to, and about what.
struct Session<'a> {
    api: Client,
    key: LoaderKey,
    installed: Serial,
    run: &'a Run,
}

impl Run {
    fn agent(&self) -> Result<PathBuf> {
        self.layout.agent()
    }

    /// recover: an interrupted install is finished or undone before anything else; when the new
    /// agent may have been started, the old one is started again.
    fn recover(&self) -> Result<()> {
        let phase = recover::recover(&self.layout, &self.settings.limits)?;
        cleanup::remove_strays(&self.layout)?;
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
                if let Err(e) = triggers::run_triggers(&agent, self.settings.limits.trigger) {
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
        if health::agent_running(&agent, self.settings.limits.trigger) {
            log::step("agent is running");
            return Ok(());
        }
        log::step("agent is not running, running triggers");
        triggers::run_triggers(&agent, self.settings.limits.trigger)
    }

    /// Keeps the agent running after a run that installs nothing (logged, never fatal).
    fn keep_agent_running(&self) {
        if self.agent().is_ok_and(|a| a.exists()) {
            if let Err(e) = self.check_agent() {
                log::warn(e);
            }
        }
    }

    /// key → discover → statement → verify → the install, then [`Run::conclude`].
    fn update(&self) -> Result<Outcome> {
        let build = &self.settings.build;
        if build.development {
            log::warn(format!(
                "this mig-loader was built with the development configuration {}: it trusts publicly known keys; never deploy it",
                build.source
            ));
        }
        let limits = &self.settings.limits;
        let keyring = Keyring::from_armored(build.keys.iter().copied())?;
        // Checked against the built-in keys here, and against the keys of the root the walk
        // reaches before any statement is verified (Session::install).
        if let Some((name, armored)) = build.freshness_key {
            FreshnessKey::new(name, armored, &keyring)?;
        }
        let required = usize::try_from(build.required_signatures).unwrap_or(usize::MAX);
        let root = roots::load(&self.layout.roots_dir(), Root::built_in(keyring, required)?)?;
        let key = key::load(&self.layout.key_file(), limits.key_file)?;
        let api = Client::new(&build.http(), &self.settings.api_url)?
            .with_deadline(self.started + limits.run);
        let agent = discover::discover(&self.layout, &self.settings, &api)?;
        let installed = state::installed_serial(&self.layout.serial_file(), limits.state_file)?;
        log::step(format!("installed serial is {installed}"));
        let session = Session {
            api,
            key,
            installed,
            run: self,
        };
        let request = ManifestRequest {
            agent,
            have: Have { serial: installed },
        };
        let mut offered = installed;
        let trust = Trust {
            root,
            freshness: build.freshness_key,
        };
        let ended = session.install(trust, &request, &mut offered);
        self.conclude(&session, offered, ended)
    }

    /// report → cleanup, for every way a run can end: the one place that tells the API and
    /// keeps the agent running.
    fn conclude(
        &self,
        session: &Session<'_>,
        offered: Serial,
        ended: std::result::Result<Update, Failure>,
    ) -> Result<Outcome> {
        let reporter = Reporter {
            api: &session.api,
            key: &session.key,
            layout: &self.layout,
            limits: &self.settings.limits,
        };
        match ended {
            Ok(update) => {
                let result = match update {
                    Update::Installed => ReportResult::Installed,
                    Update::Unchanged => ReportResult::Unchanged,
                };
                if update != Update::Installed {
                    self.keep_agent_running();
                }
                reporter.send(offered, result, "");
                cleanup::remove_strays(&self.layout)?;
                Ok(Outcome::Updated(update))
            }
            Err(failure) => {
                match failure.at {
                    FailedIn::Verify { .. } => {
                        log::step(format!("rejecting the manifest: {}", failure.error))
                    }
                    FailedIn::BeforeSwap => log::step(format!(
                        "install failed, nothing was changed: {}",
                        failure.error
                    )),
                    _ => {}
                }
                if let Some((serial, result)) = failure.report(session.installed, offered) {
                    reporter.send(serial, result, &failure.error.to_string());
                }
                if failure.check_agent() {
                    self.keep_agent_running();
                }
                Err(failure.error)
            }
        }
    }
}

impl Session<'_> {
    /// statement → verify → compare → stage → swap → triggers → health → commit | revert.
    /// `offered` becomes the serial of the statement once it is believed.
    fn install(
        &self,
        trust: Trust,
        request: &ManifestRequest,
        offered: &mut Serial,
    ) -> std::result::Result<Update, Failure> {
        let run = self.run;
        let limits = &run.settings.limits;
        let response = statement::request(&self.api, &self.key, request, limits).map_err(|e| {
            let at = if e.status() == Some(403) {
                FailedIn::Refused
            } else {
                FailedIn::Request
            };
            Failure::new(at, e)
        })?;
        // docs/design.md §4.21: the answer names the API's newest root; below it, the chain is
        // walked before the statement is verified, and a walk that fails verifies nothing.
        let root = if let Some(announced) = response.root.filter(|v| *v > trust.root.version) {
            let root = roots::walk(
                &self.api,
                &self.key,
                &run.layout.roots_dir(),
                trust.root,
                limits,
            )
            .map_err(|stopped| match stopped {
                roots::Stopped::Request(e) => Failure::new(FailedIn::Request, e),
                roots::Stopped::Refused(e) => Failure::new(
                    FailedIn::Verify {
                        serial: Serial::NONE,
                    },
                    e,
                ),
            })?;
            // A chain that ends below the root the answer named may hide a root that removes a
            // key: nothing is verified with the older one.
            if root.version < announced {
                return Err(Failure::new(
                    FailedIn::Request,
                    Error::Config(format!(
                        "the API named root of trust {announced} but its chain ends at root {}",
                        root.version
                    )),
                ));
            }
            root
        } else {
            trust.root
        };
        let now = Timestamp::now();
        let not_trusted = |e: mig_protocol::Error| {
            Failure::new(
                FailedIn::Verify {
                    serial: Serial::NONE,
                },
                e.into(),
            )
        };
        root.check_current(now).map_err(not_trusted)?;
        // docs/design.md §4.20: the freshness key never counts toward the threshold, whichever
        // root the walk reached.
        let freshness = trust
            .freshness
            .map(|(name, armored)| FreshnessKey::new(name, armored, &root.keyring))
            .transpose()
            .map_err(not_trusted)?;
        let expect = Expectations {
            now,
            platform: Platform::host(),
            installed: self.installed,
        };
        let statement = verify::verify(
            &root.keyring,
            root.threshold,
            root.version,
            freshness.as_ref(),
            &response,
            &expect,
        )
        .map_err(|Rejected { serial, error }| Failure::new(FailedIn::Verify { serial }, error))?;
        *offered = statement.serial;
        let plan = compare::compare(&run.layout, &statement, limits).map_err(before_swap)?;
        if plan.changes.is_empty() {
            log::step("all files are current");
            if statement.serial > self.installed {
                state::write_serial(&run.layout.serial_file(), statement.serial)
                    .map_err(interrupted)?;
                log::step(format!("serial {} recorded", statement.serial));
            }
            return Ok(Update::Unchanged);
        }
        self.apply(&statement, &plan)
    }

    /// stage → swap → triggers → health → commit, or revert.
    fn apply(&self, statement: &Statement, plan: &Plan) -> std::result::Result<Update, Failure> {
        let run = self.run;
        let layout = &run.layout;
        let limits = &run.settings.limits;
        let agent = run.agent().map_err(before_swap)?;
        stage::stage(&self.api, &self.key, layout, &plan.changes, &run.settings)
            .map_err(before_swap)?;
        crash::point(CrashPoint::AfterStage);
        let journal_path = layout.journal_file();
        let mut journal = Journal {
            serial: statement.serial,
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
            stage::discard(layout, &plan.changes);
            return Err(before_swap(e));
        }
        crash::point(CrashPoint::AfterJournal);
        if let Err(e) = swap::swap(layout, &mut journal, &journal_path) {
            return Err(self.roll_back(&journal, e, false));
        }
        crash::point(CrashPoint::AfterSwap);
        log::step("running triggers due to modification");
        let started = triggers::run_triggers(&agent, limits.trigger)
            .inspect(|()| crash::point(CrashPoint::AfterTriggers))
            .and_then(|()| {
                log::step("checking the agent is healthy");
                health::wait_healthy(&agent, limits.health, limits.trigger)
            });
        if let Err(e) = started {
            return Err(self.roll_back(&journal, e, true));
        }
        log::step("agent is healthy");
        crash::point(CrashPoint::BeforeCommit);
        commit::commit(layout, &mut journal).map_err(interrupted)?;
        if plan.changes.iter().any(|c| c.name == DictName::MigLoader) {
            log::step("mig-loader was replaced: the next run uses the new binary");
        }
        Ok(Update::Installed)
    }

    /// revert: the previous generation comes back and, if triggers ran, is restarted.
    fn roll_back(&self, journal: &Journal, cause: Error, restart: bool) -> Failure {
        let layout = &self.run.layout;
        log::step(format!("rolling back to the previous generation: {cause}"));
        let reverted =
            revert::revert(layout, journal).and_then(|()| Journal::remove(&layout.journal_file()));
        if let Err(e) = reverted {
            return interrupted(e);
        }
        if restart {
            self.run.restart_agent();
        }
        Failure::new(FailedIn::RolledBack, cause)
    }
}

fn before_swap(e: Error) -> Failure {
    Failure::new(FailedIn::BeforeSwap, e)
}

fn interrupted(e: Error) -> Failure {
    Failure::new(FailedIn::Interrupted, e)
}
