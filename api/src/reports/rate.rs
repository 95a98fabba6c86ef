//! How often one loader may report (docs/design.md §3.6). A loader reports once per run; a key
//! that sends more is refused with 429 before any database work, so a flood from one key costs
//! the server an authentication and a map lookup, and reaches the history at most
//! [`BURST`] times and then once per [`EVERY`] seconds. Rollouts and halt rules count each
//! loader's latest report, so a flood never counts more than once there either.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Reports one loader may send back to back (a crash loop, a test run by hand).
pub const BURST: u64 = 20;
/// Past the burst, one report per this many seconds.
pub const EVERY: u64 = 60;
/// Entries kept before those whose loaders may report freely again are dropped.
const PRUNE_AT: usize = 64 * 1024;

/// Each reporting loader's next free time, as in the generic cell rate algorithm: a loader is
/// admitted while that time is at most `BURST × EVERY` seconds ahead of now. A loader whose
/// time has passed may send a whole burst and needs no entry, so the map holds only the
/// loaders heard from in the last `BURST × EVERY` seconds.
#[derive(Default)]
pub struct ReportRate {
    due: Mutex<HashMap<u64, u64>>,
}

impl ReportRate {
    /// Admits one report of `loader` at `now` (seconds), or refuses it with 429 and the
    /// seconds until the next one is admitted.
    pub fn take(&self, loader: u64, now: u64) -> Result<()> {
        let mut due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        let next = due
            .get(&loader)
            .copied()
            .unwrap_or(0)
            .max(now)
            .saturating_add(EVERY);
        let limit = now.saturating_add(BURST * EVERY);
        if next > limit {
            let wait = next - limit;
            return Err(Error::TooMany {
                reason: "report_rate",
                message: format!(
                    "loader {loader} sent more than {BURST} reports in a row: one report per \
                     {EVERY} s is admitted from now on; retry in {wait} s"
                ),
                retry_after: wait,
            });
        }
        if due.len() >= PRUNE_AT && !due.contains_key(&loader) {
            due.retain(|_, t| *t > now);
        }
        due.insert(loader, next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_admitted_then_one_report_per_interval() {
        let r = ReportRate::default();
        for _ in 0..BURST {
            r.take(7, 1000).unwrap();
        }
        let e = r.take(7, 1000).unwrap_err();
        assert_eq!(e.reason(), "report_rate");
        assert!(e.to_string().contains("retry in 60 s"), "{e}");
        // Another loader is not affected.
        r.take(8, 1000).unwrap();
        // One more after an interval, not two.
        r.take(7, 1000 + EVERY).unwrap();
        assert!(r.take(7, 1000 + EVERY).is_err());
        // After the whole burst's time, a whole burst again.
        let later = 1000 + EVERY + BURST * EVERY;
        for _ in 0..BURST {
            r.take(7, later).unwrap();
        }
        assert!(r.take(7, later).is_err());
    }

    #[test]
    fn loaders_that_may_report_freely_again_are_forgotten() {
        let r = ReportRate::default();
        for id in 0..PRUNE_AT as u64 {
            r.take(id, 0).unwrap();
        }
        r.take(u64::MAX, EVERY + 1).unwrap();
        let kept = r.due.lock().unwrap().len();
        assert_eq!(kept, 1, "only the loader still within its interval");
    }
}
