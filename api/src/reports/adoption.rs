//! Adoption over time (`GET adoption`): replays the report history once, oldest first, keeping
//! each loader's state, and counts the loaders on each serial at evenly spaced instants. The
//! state before the window comes from the history and from each loader's latest report, so the
//! last point is exactly the rollouts' `on_it` (docs/design.md §3.6).

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::params;
use mig_protocol::admin::{Adoption, AdoptionSeries};
use mig_protocol::loader::ReportResult;
use mig_protocol::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most serials drawn.
pub const MAX_SERIALS: usize = 8;

/// Which serial each loader is on, and how many loaders are on each serial.
#[derive(Default)]
struct Fleet {
    on: HashMap<i64, u64>,
    counts: BTreeMap<u64, u64>,
}

impl Fleet {
    /// A loader's report: on `serial` when it installed it or found it unchanged, else on none.
    fn apply(&mut self, loader: i64, serial: u64, result: &str) {
        let now_on = ReportResult::parse(result)
            .filter(|r| !r.is_failure())
            .map(|_| serial);
        let before = match now_on {
            Some(s) => self.on.insert(loader, s),
            None => self.on.remove(&loader),
        };
        if let Some(b) = before {
            if let Some(n) = self.counts.get_mut(&b) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&b);
                }
            }
        }
        if let Some(s) = now_on {
            *self.counts.entry(s).or_default() += 1;
        }
    }
}

/// The loaders on each of the newest serials at `points` instants evenly spread over the
/// `window` seconds up to `now` (`points` ≥ 2).
pub fn adoption(conn: &Conn, now: Timestamp, window: u64, points: u64) -> Result<Adoption> {
    let what = || Error::db("counting adoption");
    let start = now.0.saturating_sub(window);
    let steps = points.max(2) - 1;
    let times: Vec<u64> = (0..=steps)
        .map(|i| start + (now.0 - start) * i / steps)
        .collect();
    let mut fleet = Fleet::default();
    // The state at `start`: the last report at or before it, from the history, then from the
    // latest reports that are that old (whose history may have been pruned).
    let mut st = conn
        .prepare(
            "SELECT h.loader_id, h.serial, h.result FROM report_history h
             JOIN (SELECT loader_id, MAX(id) AS id FROM report_history WHERE time <= ?1
                   GROUP BY loader_id) last ON last.id = h.id
             UNION ALL
             SELECT loader_id, serial, result FROM loader_reports WHERE time <= ?1",
        )
        .map_err(what())?;
    let mut rows = st.query(params![start as i64]).map_err(what())?;
    while let Some(r) = rows.next().map_err(what())? {
        let (loader, serial, result): (i64, i64, String) = (
            r.get(0).map_err(what())?,
            r.get(1).map_err(what())?,
            r.get(2).map_err(what())?,
        );
        fleet.apply(loader, serial.max(0) as u64, &result);
    }
    let mut snapshots: Vec<BTreeMap<u64, u64>> = Vec::with_capacity(times.len());
    let mut st = conn
        .prepare(
            "SELECT loader_id, serial, result, time FROM report_history
             WHERE time > ?1 AND time <= ?2 ORDER BY id",
        )
        .map_err(what())?;
    let mut rows = st
        .query(params![start as i64, now.0 as i64])
        .map_err(what())?;
    // The first instant is `start` itself, already reached.
    snapshots.push(fleet.counts.clone());
    while let Some(r) = rows.next().map_err(what())? {
        let (loader, serial, result, time): (i64, i64, String, i64) = (
            r.get(0).map_err(what())?,
            r.get(1).map_err(what())?,
            r.get(2).map_err(what())?,
            r.get(3).map_err(what())?,
        );
        while snapshots.len() < times.len() && time as u64 > times[snapshots.len()] {
            snapshots.push(fleet.counts.clone());
        }
        fleet.apply(loader, serial.max(0) as u64, &result);
    }
    while snapshots.len() < times.len() {
        snapshots.push(fleet.counts.clone());
    }
    let serials: BTreeSet<u64> = snapshots.iter().flat_map(|s| s.keys().copied()).collect();
    let series = serials
        .into_iter()
        .rev()
        .take(MAX_SERIALS)
        .map(|serial| AdoptionSeries {
            serial,
            loaders: snapshots
                .iter()
                .map(|s| s.get(&serial).copied().unwrap_or(0))
                .collect(),
        })
        .collect();
    Ok(Adoption {
        times: times.into_iter().map(Timestamp).collect(),
        series,
    })
}
