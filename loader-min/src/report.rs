//! Tell the API how the run ended (`POST loader/report`, docs/design.md §3.6). A failing report is logged,
//! never fatal. An `unchanged` report that would repeat the last accepted one is not sent, so a
//! run with nothing to do makes exactly one request and writes nothing.

use crate::compare::sha256_file;
use crate::layout::Layout;
use crate::{log, state};
use mig_http::Client;
use mig_protocol::dictionary;
use mig_protocol::loader::{LoaderKey, Report, ReportResult, LOADER_KEY_HEADER, REPORT_PATH};
use mig_protocol::statement::Serial;
use std::collections::BTreeMap;

/// The largest answer read from the report route.
const MAX_REPORT_ANSWER: u64 = 16 * 1024;

/// The sha256 of every managed file present now.
pub fn installed_files(layout: &Layout) -> BTreeMap<String, String> {
    dictionary::ALL
        .into_iter()
        .filter_map(|n| {
            let sha = sha256_file(&layout.target(n).ok()?).ok()??;
            Some((n.as_str().to_string(), String::from(sha)))
        })
        .collect()
}

/// Whether an `unchanged` report would only repeat what the API already has.
fn redundant(layout: &Layout, serial: Serial, result: ReportResult) -> bool {
    result == ReportResult::Unchanged
        && matches!(
            state::last_report(&layout.report_file()),
            Some((s, r)) if s == serial && (r == "installed" || r == "unchanged")
        )
}

/// Sends the report; logs instead of failing.
pub fn send(
    api: &Client,
    key: &LoaderKey,
    layout: &Layout,
    serial: Serial,
    result: ReportResult,
    message: &str,
) {
    if redundant(layout, serial, result) {
        log::step(format!(
            "serial {} unchanged since the last report, not reporting",
            serial.get()
        ));
        return;
    }
    let report = Report {
        serial,
        result,
        message: message.to_string(),
        files: installed_files(layout),
    };
    log::step(format!(
        "reporting {} for serial {} to {}",
        result.as_str(),
        serial.get(),
        api.url(REPORT_PATH)
    ));
    let sent = api
        .post_json(REPORT_PATH, &[(LOADER_KEY_HEADER, key.as_str())], &report)
        .and_then(|r| r.error_for_status(MAX_REPORT_ANSWER))
        .and_then(|r| r.read_capped(MAX_REPORT_ANSWER));
    match sent {
        Ok(_) => {
            let same = state::last_report(&layout.report_file())
                .is_some_and(|(s, r)| s == serial && r == result.as_str());
            if !same {
                if let Err(e) = state::write_last_report(&layout.report_file(), serial, result) {
                    log::warn(e);
                }
            }
        }
        Err(e) => log::warn(format!("report not delivered: {e}")),
    }
}
