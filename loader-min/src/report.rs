//! Tell the API how the run ended (`POST loader/report`, docs/design.md §3.6). A failing report is logged,
//! never fatal. An `unchanged` report that would repeat the last accepted one is not sent, so a
//! run with nothing to do makes exactly one request and writes nothing.

use crate::known::{self, Known};
use crate::layout::Layout;
use crate::limits::Limits;
use crate::{log, state};
use mig_http::Client;
use mig_protocol::dictionary;
use mig_protocol::loader::{LoaderKey, Report, ReportResult, LOADER_KEY_HEADER, REPORT_PATH};
use mig_protocol::statement::Serial;
use std::collections::BTreeMap;

/// Where and how reports go: one per run, sent by `run` once the outcome is known.
pub struct Reporter<'a> {
    pub api: &'a Client,
    pub key: &'a LoaderKey,
    pub layout: &'a Layout,
    pub limits: &'a Limits,
}

/// The sha256 of every managed file present now, as compare finds them (docs/design.md §4.9).
pub fn installed_files(layout: &Layout, limits: &Limits) -> BTreeMap<String, String> {
    let record = layout.known_file();
    let mut known = Known::load(&record, limits.state_file, known::now());
    let files = dictionary::ALL
        .into_iter()
        .filter_map(|n| {
            let sha = known
                .sha256(n, &layout.target(n).ok()?, limits.io_buffer)
                .ok()??;
            Some((n.as_str().to_string(), String::from(sha)))
        })
        .collect();
    known.save(&record);
    files
}

impl Reporter<'_> {
    /// Whether an `unchanged` report would only repeat what the API already has.
    fn redundant(&self, serial: Serial, result: ReportResult) -> bool {
        result == ReportResult::Unchanged
            && matches!(
                self.last(),
                Some((s, r)) if s == serial && (r == "installed" || r == "unchanged")
            )
    }

    fn last(&self) -> Option<(Serial, String)> {
        state::last_report(&self.layout.report_file(), self.limits.state_file)
    }

    /// Sends the report; logs instead of failing.
    pub fn send(&self, serial: Serial, result: ReportResult, message: &str) {
        if self.redundant(serial, result) {
            log::step(format!(
                "serial {serial} unchanged since the last report, not reporting"
            ));
            return;
        }
        let report = Report {
            serial,
            result,
            message: message.to_string(),
            files: installed_files(self.layout, self.limits),
        };
        log::step(format!(
            "reporting {} for serial {serial} to {}",
            result.as_str(),
            self.api.url(REPORT_PATH)
        ));
        let cap = self.limits.report_answer;
        let sent = self
            .api
            .post_json(
                REPORT_PATH,
                &[(LOADER_KEY_HEADER, self.key.as_str())],
                &report,
            )
            .and_then(|r| r.error_for_status(cap))
            .and_then(|r| r.read_capped(cap));
        match sent {
            Ok(_) => {
                let same = self
                    .last()
                    .is_some_and(|(s, r)| s == serial && r == result.as_str());
                if !same {
                    let path = self.layout.report_file();
                    if let Err(e) = state::write_last_report(&path, serial, result) {
                        log::warn(e);
                    }
                }
            }
            Err(e) => log::warn(format!("report not delivered: {e}")),
        }
    }
}
