//! How a run ended, as types: the success cases, and a failure with the state it failed in. `run`
//! reports from these alone, in one place, so the result a report carries follows from the
//! failure's kind, not from which branch caught it.

use crate::error::Error;
use mig_protocol::loader::ReportResult;
use mig_protocol::statement::Serial;

/// How a successful run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An update, reported to the API.
    Updated(Update),
    /// `-c`: the agent was checked (and restarted if it was down); the API is not asked.
    AgentChecked,
}

/// How an update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// A new generation was installed, started and found healthy.
    Installed,
    /// Every file was current.
    Unchanged,
}

/// Where a run failed, which decides what the API is told and whether the agent is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedIn {
    /// Before the API was asked anything (key, configuration, discovery, state): nothing to
    /// report to, and nothing was touched.
    Setup,
    /// The manifest request failed (network, a status other than 403, a malformed answer).
    Request,
    /// The API knows this loader but refuses it (403, expectenv).
    Refused,
    /// The statement was not believed (signatures, expiry, platform, serial); it carried `serial`
    /// when it could be read.
    Verify { serial: Serial },
    /// Compare or stage: no installed file was touched.
    BeforeSwap,
    /// Swap, triggers or the health check; the previous generation is back.
    RolledBack,
    /// A commit or revert that could not finish: the journal lets the next run's recovery finish
    /// it.
    Interrupted,
}

/// A failed run: where, and why.
#[derive(Debug)]
pub struct Failure {
    pub at: FailedIn,
    pub error: Error,
}

impl Failure {
    pub fn new(at: FailedIn, error: Error) -> Self {
        Failure { at, error }
    }

    /// What the API is told, for the serial the run was about; `None` when nothing is sent.
    pub fn report(&self, installed: Serial, offered: Serial) -> Option<(Serial, ReportResult)> {
        match self.at {
            FailedIn::Setup | FailedIn::Request | FailedIn::Interrupted => None,
            FailedIn::Refused => Some((installed, ReportResult::Rejected)),
            FailedIn::Verify { serial } => Some((serial, ReportResult::Rejected)),
            FailedIn::BeforeSwap => Some((offered, ReportResult::Failed)),
            FailedIn::RolledBack => Some((offered, ReportResult::RolledBack)),
        }
    }

    /// Whether the agent must be checked (and restarted if down) after this failure. A setup
    /// failure touched nothing and learnt nothing; a rollback already restarted the previous
    /// agent; an interrupted install leaves it to the next run's recovery.
    pub fn check_agent(&self) -> bool {
        !matches!(
            self.at,
            FailedIn::Setup | FailedIn::RolledBack | FailedIn::Interrupted
        )
    }
}

impl From<Error> for Failure {
    /// A plain error is a setup failure: the `?` of the states before the request.
    fn from(e: Error) -> Self {
        Failure::new(FailedIn::Setup, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_follows_from_where_the_run_failed() {
        let (installed, offered) = (Serial::new(3), Serial::new(5));
        let f = |at| Failure::new(at, Error::Config("x".into()));
        let cases = [
            (FailedIn::Setup, None, false),
            (FailedIn::Request, None, true),
            (
                FailedIn::Refused,
                Some((installed, ReportResult::Rejected)),
                true,
            ),
            (
                FailedIn::Verify {
                    serial: Serial::new(4),
                },
                Some((Serial::new(4), ReportResult::Rejected)),
                true,
            ),
            (
                FailedIn::BeforeSwap,
                Some((offered, ReportResult::Failed)),
                true,
            ),
            (
                FailedIn::RolledBack,
                Some((offered, ReportResult::RolledBack)),
                false,
            ),
            (FailedIn::Interrupted, None, false),
        ];
        for (at, report, check) in cases {
            assert_eq!(f(at).report(installed, offered), report, "{at:?}");
            assert_eq!(f(at).check_agent(), check, "{at:?}");
        }
    }
}
