use super::*;
use crate::db::Db;
use mig_protocol::ManifestStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const DAY: u64 = 86_400;

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&dir.path().join("t.db")).unwrap();
    (dir, db)
}

/// A loader row with no key worth anything: the tests below never authenticate.
fn loader(c: &Conn, n: u64, given: Option<u64>, lastseen: Option<u64>) -> u64 {
    c.query_row(
        "INSERT INTO loaders (name, keyprefix, keyhash, salt, enabled, lastseen, given_manifest, created)
         VALUES (?1, ?2, x'00', x'00', 1, ?3, ?4, 0) RETURNING id",
        params![
            format!("l{n}"),
            format!("p{n}"),
            lastseen.map(|t| t as i64),
            given.map(|m| m as i64)
        ],
        |r| r.get(0),
    )
    .unwrap()
}

fn manifest(c: &Conn, status: &str) -> u64 {
    c.query_row(
        "INSERT INTO manifests (name, target, status, os, arch, created, issued, expires,
           statement, archive_sha256, archive_size, creator)
         VALUES ('m', 'true', ?1, 'linux', 'amd64', 0, 0, 0, '', '', 0, 0) RETURNING id",
        params![status],
        |r| r.get(0),
    )
    .unwrap()
}

/// Makes manifest `serial` (its row made when missing) the one `loader` was last given, as its
/// manifest request would: reports about it are then admitted (`check_given`).
fn give(c: &Conn, loader: u64, serial: i64) {
    c.execute(
        "INSERT INTO manifests (id, name, target, status, os, arch, created, issued, expires,
           statement, archive_sha256, archive_size, creator)
         VALUES (?1, 'm', 'true', 'active', 'linux', 'amd64', 0, 0, 0, '', '', 0, 0)
         ON CONFLICT (id) DO NOTHING",
        params![serial],
    )
    .unwrap();
    c.execute(
        "UPDATE loaders SET given_manifest = ?1 WHERE id = ?2",
        params![serial, loader as i64],
    )
    .unwrap();
}

fn rows(c: &Conn) -> Vec<(i64, i64)> {
    let mut st = c
        .prepare("SELECT serial, time FROM report_history ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn history_keeps_every_report_and_the_latest_one_apart() {
    let (_d, db) = db();
    db.with(|c| {
        let l = loader(c, 1, None, None);
        for (serial, result, t) in [
            (3, ReportResult::Installed, 100),
            (4, ReportResult::RolledBack, 200),
            (4, ReportResult::Failed, 300),
        ] {
            give(c, l, serial);
            store(c, l, serial, result, "m", Timestamp(t)).unwrap();
        }
        let h = history(c, l, 10).unwrap();
        assert_eq!(
            h.iter()
                .map(|r| (r.serial, r.result.as_str(), r.time.0))
                .collect::<Vec<_>>(),
            [
                (4, "failed", 300),
                (4, "rolled_back", 200),
                (3, "installed", 100)
            ]
        );
        assert_eq!(history(c, l, 1).unwrap().len(), 1);
        let (serial, result, seen): (i64, String, i64) = c
            .query_row(
                "SELECT r.serial, r.result, l.lastseen FROM loader_reports r
                 JOIN loaders l ON l.id = r.loader_id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((serial, result.as_str(), seen), (4, "failed", 300));
        Ok(())
    })
    .unwrap();
}

#[test]
fn history_is_pruned_at_its_retention_and_its_row_cap() {
    let (_d, db) = db();
    db.with(|c| {
        let l = loader(c, 1, None, None);
        let now = 100 * DAY;
        // One report a day for 40 days, the newest today.
        for day in 0..40u64 {
            let t = now - (39 - day) * DAY;
            give(c, l, day as i64);
            store(c, l, day as i64, ReportResult::Unchanged, "", Timestamp(t)).unwrap();
        }
        let keep = Retention {
            keep_days: 30,
            max_rows: 1000,
        };
        // 30 days back exactly is kept; 31 and older go: 9 rows.
        assert_eq!(prune(c, Timestamp(now), keep).unwrap(), 9);
        let left = rows(c);
        assert_eq!(left.len(), 31);
        assert_eq!(left[0].1 as u64, now - 30 * DAY);
        // Nothing more to do at the same time.
        assert_eq!(prune(c, Timestamp(now), keep).unwrap(), 0);
        // The cap keeps the newest rows.
        let capped = Retention {
            keep_days: 30,
            max_rows: 10,
        };
        assert_eq!(prune(c, Timestamp(now), capped).unwrap(), 21);
        let left = rows(c);
        assert_eq!(left.len(), 10);
        assert_eq!(left.last().unwrap().0, 39);
        assert_eq!(left[0].0, 30);
        // The latest report is never pruned, even once all history is gone.
        assert_eq!(prune(c, Timestamp(now + 365 * DAY), keep).unwrap(), 10);
        assert!(rows(c).is_empty());
        let latest: i64 = c
            .query_row("SELECT serial FROM loader_reports", [], |r| r.get(0))
            .unwrap();
        assert_eq!(latest, 39);
        Ok(())
    })
    .unwrap();
}

/// What `f` returns and how many SQLite VM instructions it ran (a progress handler called at
/// every one): what a query visits, counted, not timed.
fn vm_steps<T>(c: &mut Conn, f: impl FnOnce(&mut Conn) -> T) -> (T, u64) {
    let steps = Arc::new(AtomicU64::new(0));
    let counted = steps.clone();
    let count = move || {
        counted.fetch_add(1, Ordering::Relaxed);
        false
    };
    let sqlite = c.as_sqlite_mut().unwrap();
    sqlite.progress_handler(1, Some(count)).unwrap();
    let out = f(c);
    let sqlite = c.as_sqlite_mut().unwrap();
    sqlite.progress_handler(0, None::<fn() -> bool>).unwrap();
    (out, steps.load(Ordering::Relaxed))
}

/// Prunes a history of `rows` rows, one a second from time 1 on, whose first 100 are past
/// their retention and whose next 100 are beyond the row cap; returns the rows deleted and the
/// SQLite VM instructions the whole prune ran (a progress handler called at every one).
fn prune_steps(rows: i64) -> (u64, u64) {
    let (_d, db) = db();
    db.with(|c| {
        let l = loader(c, 1, None, None);
        // One statement, not one per row: the table is built in a blink at any size.
        c.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO report_history (loader_id, serial, result, message, time)
             SELECT ?2, 1, 'unchanged', '', i FROM n",
            params![rows, l as i64],
        )
        .unwrap();
        let keep = Retention {
            keep_days: 1,
            max_rows: rows as u64 - 200,
        };
        let (deleted, steps) = vm_steps(c, |c| prune(c, Timestamp(DAY + 101), keep).unwrap());
        let left: i64 = c
            .query_row("SELECT COUNT(*) FROM report_history", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, rows - 200);
        Ok((deleted, steps))
    })
    .unwrap()
}

/// docs/design.md §3.6: pruning costs what it deletes, not what it keeps. The same 200 rows go
/// from a history of 10,000 and of 100,000 rows at nearly the same count of VM instructions; a
/// walk past the kept rows (an `OFFSET`, a scan for the old ones) costs ten times more in the
/// larger one.
#[test]
fn pruning_visits_the_rows_it_deletes_not_the_whole_history() {
    let (small_deleted, small) = prune_steps(10_000);
    let (big_deleted, big) = prune_steps(100_000);
    assert_eq!((small_deleted, big_deleted), (200, 200));
    assert!(
        big < small + small / 4,
        "pruning 200 rows of 100,000 ran {big} VM instructions, of 10,000 {small}"
    );
}

#[test]
fn pruning_more_than_one_batch_deletes_them_all() {
    let (_d, db) = db();
    db.with(|c| {
        let l = loader(c, 1, None, None);
        let n = PRUNE_BATCH as u64 * 2 + 7;
        give(c, l, 1);
        for i in 0..n {
            store(c, l, 1, ReportResult::Unchanged, "", Timestamp(i)).unwrap();
        }
        let keep = Retention {
            keep_days: 1,
            max_rows: 1000,
        };
        assert_eq!(prune(c, Timestamp(10 * DAY), keep).unwrap(), n);
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_rollout_counts_each_loader_by_its_latest_state() {
    let (_d, db) = db();
    db.with(|c| {
        let old = manifest(c, "active");
        let new = manifest(c, "active");
        let gone = manifest(c, "disabled");
        let now = 10 * DAY;
        let recent = Some(now - 60);
        let report = |c: &mut Conn, l: u64, serial: u64, r: ReportResult, m: &str| {
            store(c, l, serial as i64, r, m, Timestamp(now - 60)).unwrap()
        };
        // Given `new`: 2 on it, 1 failed, 2 rolled back (same message), 1 rejected, 1 still
        // on `old`, 1 that never reported, 1 not seen for two days.
        for n in [1, 2] {
            let l = loader(c, n, Some(new), recent);
            report(c, l, new, ReportResult::Installed, "");
        }
        let l = loader(c, 3, Some(new), recent);
        report(c, l, new, ReportResult::Failed, "disk");
        for n in [4, 5] {
            let l = loader(c, n, Some(new), recent);
            report(c, l, new, ReportResult::RolledBack, "agent unhealthy");
        }
        let l = loader(c, 6, Some(new), recent);
        report(c, l, new, ReportResult::Rejected, "sig");
        // On `old` before `new` was given.
        let l = loader(c, 7, Some(old), recent);
        report(c, l, old, ReportResult::Unchanged, "");
        give(c, l, new as i64);
        loader(c, 8, Some(new), None);
        let stale = loader(c, 9, Some(old), None);
        report(c, stale, old, ReportResult::Unchanged, "");
        give(c, stale, new as i64);
        c.execute(
            "UPDATE loaders SET lastseen = ?1 WHERE id = ?2",
            params![(now - 2 * DAY) as i64, stale as i64],
        )
        .unwrap();
        // Given `old` and on it.
        let l = loader(c, 10, Some(old), recent);
        report(c, l, old, ReportResult::Unchanged, "");

        let all = rollouts(c, Timestamp(now), DAY).unwrap();
        assert_eq!(
            all.iter().map(|r| r.manifest).collect::<Vec<_>>(),
            [new, old]
        );
        let r = &all[0];
        assert_eq!(
            (
                r.given,
                r.on_it,
                r.older,
                r.failed,
                r.rolled_back,
                r.rejected,
                r.stale
            ),
            (9, 2, 3, 1, 2, 1, 2),
            "{r:?}"
        );
        assert_eq!(r.stale_after, DAY);
        assert_eq!(
            r.failures
                .iter()
                .map(|f| (f.result.as_str(), f.message.as_str(), f.loaders))
                .collect::<Vec<_>>(),
            [
                ("rolled_back", "agent unhealthy", 2),
                ("failed", "disk", 1),
                ("rejected", "sig", 1)
            ]
        );
        let o = &all[1];
        assert_eq!((o.given, o.on_it, o.older, o.stale), (1, 3, 0, 0), "{o:?}");
        // One manifest whatever its status; an unknown one is 404.
        let g = rollout(c, gone, Timestamp(now), DAY).unwrap();
        assert_eq!((g.given, g.status), (0, ManifestStatus::Disabled));
        assert!(matches!(
            rollout(c, 999, Timestamp(now), DAY),
            Err(Error::NotFound(_))
        ));
        // The metrics' view: loaders by serial and last result, newest serials only.
        assert_eq!(
            by_serial(c, 1).unwrap(),
            [
                (new, "failed".to_string(), 1),
                (new, "installed".to_string(), 2),
                (new, "rejected".to_string(), 1),
                (new, "rolled_back".to_string(), 2),
            ]
        );
        assert_eq!(
            by_serial(c, 5).unwrap().last(),
            Some(&(old, "unchanged".into(), 3))
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn adoption_replays_the_history_into_counts_per_serial_over_time() {
    let (_d, db) = db();
    db.with(|c| {
        let (a, b) = (manifest(c, "active"), manifest(c, "active"));
        let hour = 3600;
        let now = 100 * hour;
        let l: Vec<u64> = (1..=4).map(|n| loader(c, n, None, None)).collect();
        let at = |h: u64| Timestamp(now - h * hour);
        // Before the window: all four on `a`.
        for &x in &l {
            give(c, x, a as i64);
            store(c, x, a as i64, ReportResult::Installed, "", at(30)).unwrap();
            give(c, x, b as i64);
        }
        // In the window (the last 24 hours, 5 points 6 hours apart): `b` reaches two, a third
        // fails (and so is on nothing), the fourth stays on `a`.
        store(c, l[0], b as i64, ReportResult::Installed, "", at(20)).unwrap();
        store(c, l[1], b as i64, ReportResult::Installed, "", at(10)).unwrap();
        store(c, l[2], b as i64, ReportResult::Failed, "x", at(10)).unwrap();
        store(c, l[1], b as i64, ReportResult::Unchanged, "", at(1)).unwrap();
        store(c, l[3], a as i64, ReportResult::Unchanged, "", at(0)).unwrap();
        let got = adoption::adoption(c, Timestamp(now), 24 * hour, 5).unwrap();
        assert_eq!(
            got.times,
            [24, 18, 12, 6, 0].map(at).to_vec(),
            "evenly spread, ending now"
        );
        let series: Vec<(u64, Vec<u64>)> = got
            .series
            .into_iter()
            .map(|s| (s.serial, s.loaders))
            .collect();
        assert_eq!(
            series,
            [(b, vec![0, 1, 1, 2, 2]), (a, vec![4, 3, 3, 1, 1]),]
        );
        // The last point is the rollouts' on_it.
        let r = rollout(c, b, Timestamp(now), DAY).unwrap();
        assert_eq!(r.on_it, 2);
        // A pruned history still starts from each loader's latest report when it is that old.
        c.execute("DELETE FROM report_history", []).unwrap();
        let got = adoption::adoption(c, Timestamp(now), 24 * hour, 2).unwrap();
        assert!(
            got.series.is_empty(),
            "latest reports are all in the window"
        );
        let got = adoption::adoption(c, Timestamp(now + 100 * hour), 24 * hour, 2).unwrap();
        let series: Vec<(u64, Vec<u64>)> = got
            .series
            .into_iter()
            .map(|s| (s.serial, s.loaders))
            .collect();
        assert_eq!(series, [(b, vec![2, 2]), (a, vec![1, 1])]);
        Ok(())
    })
    .unwrap();
}

/// The SQLite VM instructions one report costs when `fleet` loaders already reported
/// `installed` about the same manifest, which has a halt rule that does not trip.
fn report_steps(fleet: i64) -> u64 {
    let (_d, db) = db();
    db.with(|c| {
        let m = manifest(c, "active") as i64;
        c.execute(
            "UPDATE manifests SET halt_after = '50%', halt_reported = ?2 WHERE id = ?1",
            params![m, fleet],
        )
        .unwrap();
        // The fleet and its latest reports, one statement each, whatever their number.
        c.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO loaders (name, keyprefix, keyhash, salt, enabled, given_manifest, created)
             SELECT 'f' || i, 'q' || i, x'00', x'00', 1, ?2, 0 FROM n",
            params![fleet, m],
        )
        .unwrap();
        c.execute(
            "INSERT INTO loader_reports (loader_id, serial, result, message, time, history_id)
             SELECT id, ?1, 'installed', '', 0, 1 FROM loaders",
            params![m],
        )
        .unwrap();
        let l = loader(c, 0, Some(m as u64), None);
        let (halted, steps) = vm_steps(c, |c| {
            store(c, l, m, ReportResult::Installed, "", Timestamp(1)).unwrap()
        });
        assert_eq!(halted, None);
        Ok(steps)
    })
    .unwrap()
}

/// docs/design.md §6.4: a report applies its manifest's halt rule from kept counts, at a cost
/// that does not grow with the loaders already on the manifest; recounting them in every
/// report's transaction costs ten times more at 100,000 than at 10,000.
#[test]
fn a_report_under_a_halt_rule_costs_the_same_whatever_the_fleet_on_it() {
    let small = report_steps(10_000);
    let big = report_steps(100_000);
    assert!(
        big < small + small / 4,
        "a report with 100,000 loaders on its manifest ran {big} VM instructions, with 10,000 {small}"
    );
}

/// The counts a halt rule reads, as kept (`manifests.halt_reported`, `halt_bad`) and as a
/// recount of the latest reports from `halt_since` on finds them.
fn halt_counts(c: &Conn, m: u64) -> ((i64, i64), (i64, i64)) {
    let kept = c
        .query_row(
            "SELECT halt_reported, halt_bad FROM manifests WHERE id = ?1",
            params![m as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let counted = c
        .query_row(
            "SELECT COUNT(*), COUNT(CASE WHEN r.result IN ('failed', 'rolled_back') THEN 1 END)
             FROM loader_reports r JOIN manifests m ON m.id = r.serial
             WHERE r.serial = ?1 AND r.history_id >= m.halt_since
               AND r.result IN ('installed', 'unchanged', 'failed', 'rolled_back')",
            params![m as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    (kept, counted)
}

#[test]
fn the_kept_halt_counts_are_what_a_recount_finds() {
    use ReportResult::*;
    let (_d, db) = db();
    db.with(|c| {
        let (m1, m2) = (manifest(c, "active"), manifest(c, "active"));
        let fleet: Vec<u64> = (0..4).map(|n| loader(c, n, None, None)).collect();
        // (loader, manifest, result): first reports, a loader's result changing on one
        // manifest, loaders moving between manifests, `rejected`, and serial 0 (about none).
        let reports = [
            (0, m1, Installed),
            (1, m1, Failed),
            (2, m1, RolledBack),
            (3, m2, Unchanged),
            (1, m1, Installed),
            (2, m2, Failed),
            (0, m2, Rejected),
            (3, 0, Rejected),
            (3, m1, Failed),
            (1, m2, RolledBack),
        ];
        for (i, (l, m, result)) in reports.into_iter().enumerate() {
            if m != 0 {
                give(c, fleet[l], m as i64);
            }
            store(c, fleet[l], m as i64, result, "", Timestamp(i as u64)).unwrap();
            // Halted and resumed halfway: what came before counts no more.
            if i == 4 {
                c.execute(
                    "UPDATE manifests SET status = 'halted' WHERE id = ?1",
                    params![m1 as i64],
                )
                .unwrap();
                crate::halt::resume(c, m1).unwrap();
            }
            for m in [m1, m2] {
                let (kept, counted) = halt_counts(c, m);
                assert_eq!(kept, counted, "manifest {m} after report {i}");
            }
        }
        assert_eq!(halt_counts(c, m1).0, (1, 1));
        assert_eq!(halt_counts(c, m2).0, (2, 2));
        Ok(())
    })
    .unwrap();
}
