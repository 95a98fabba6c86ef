//! How a run ended, as types: the success cases and the failure cases, each with what the API is
//! told and whether the running agent must be checked. `run` reports from this alone, in one
//! place, so the result a report carries follows from the failure's kind, not from which branch
//! caught it.

use crate::error::Error;
use mig_protocol::loader::ReportResult;
use mig_protocol::statement::Serial;

/// How a successful run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new generation was installed, started and found healthy.
    Installed,
    /// Every file was current.
    Unchanged,
    /// `-c`: the agent was checked (and restarted if it was down).
    AgentChecked,
}

/// Why a run failed, by the state it failed in.
#[derive(Debug)]
pub enum Failure {
    /// Before the API was asked anything (key, configuration, discovery, state): nothing to
    /// report to, and nothing was touched.
    Setup(Error),
    /// The manifest request failed (network, status other than 403, malformed answer).
    Unreachable(Error),
    /// The API knows this loader but refuses it (403, expectenv).
    Refused(Error),
    /// The statement was not believed (signatures, expiry, platform, serial).
    Rejected { serial: Serial, error: Error },
    /// Compare or stage failed: no installed file was touched.
    NotInstalled(Error),
    /// Swap, triggers or the health check failed and the previous generation is back.
    RolledBack(Error),
    /// The install could be neither finished nor undone (commit or revert failed): the next run's
    /// recovery finishes it from the journal.
    Interrupted(Error),
}

impl Failure {
    /// What the API is told, for the serial the run was about; `None` when nothing is sent.
    pub fn report(&self, installed: Serial, offered: Serial) -> Option<(Serial, ReportResult)> {
        match self {
            Failure::Setup(_) | Failure::Unreachable(_) | Failure::Interrupted(_) => None,
            Failure::Refused(_) => Some((installed, ReportResult::Rejected)),
            Failure::Rejected { serial, .. } => Some((*serial, ReportResult::Rejected)),
            Failure::NotInstalled(_) => Some((offered, ReportResult::Failed)),
            Failure::RolledBack(_) => Some((offered, ReportResult::RolledBack)),
        }
    }

    /// Whether the agent must be checked (and restarted if down) after this failure. A setup
    /// failure touched nothing and learnt nothing; a rollback already restarted the previous
    /// agent; an interrupted install leaves it to the next run's recovery.
    pub fn check_agent(&self) -> bool {
        !matches!(
            self,
            Failure::Setup(_) | Failure::RolledBack(_) | Failure::Interrupted(_)
        )
    }

    pub fn error(&self) -> &Error {
        match self {
            Failure::Setup(e)
            | Failure::Unreachable(e)
            | Failure::Refused(e)
            | Failure::NotInstalled(e)
            | Failure::RolledBack(e)
            | Failure::Interrupted(e) => e,
            Failure::Rejected { error, .. } => error,
        }
    }

    pub fn into_error(self) -> Error {
        match self {
            Failure::Setup(e)
            | Failure::Unreachable(e)
            | Failure::Refused(e)
            | Failure::NotInstalled(e)
            | Failure::RolledBack(e)
            | Failure::Interrupted(e) => e,
            Failure::Rejected { error, .. } => error,
        }
    }
}

impl From<Error> for Failure {
    /// A plain error is a setup failure: the `?` of the states before the request.
    fn from(e: Error) -> Self {
        Failure::Setup(e)
    }
}
