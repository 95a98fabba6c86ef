//! The background tasks of a running server (started and awaited by `server::run`), and the
//! signal that ends them and the front's connections.

use crate::app::App;
use crate::{expiry, logging, poll, reports};
use mig_protocol::time::Timestamp;
use rocket::tokio::sync::watch;

/// Returns once `stop` says true (or its sender is gone): the signal that ends the accept
/// loop, each connection, and the background tasks.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Prunes now and every [`reports::PRUNE_EVERY`] until `stop`; a failure is logged and tried again at
/// the next turn.
pub async fn report_pruner(app: App, mut stop: rocket::tokio::sync::watch::Receiver<bool>) {
    let mut every = rocket::tokio::time::interval(reports::PRUNE_EVERY);
    loop {
        rocket::tokio::select! {
            _ = every.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        let keep = app.cfg.reports;
        match app
            .run(move |a| {
                a.db.with_relaxed(|c| reports::prune(c, Timestamp::now(), keep))
            })
            .await
        {
            Ok(0) => {}
            Ok(n) => logging::event("info", "reports_pruned", &[("rows", &n)]),
            Err(e) => logging::event("error", "reports_prune_failed", &[("error", &e)]),
        }
    }
}

/// Flushes `lastseen` every [`poll::SEEN_FLUSH`] until `stop` (the last flush is `server::run`'s,
/// after every request has been answered).
pub async fn lastseen_flusher(app: App, mut stop: watch::Receiver<bool>) {
    let mut every = rocket::tokio::time::interval(poll::SEEN_FLUSH);
    loop {
        rocket::tokio::select! {
            _ = every.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        if let Err(e) = app.run(|a| a.poll.flush(&a.db)).await {
            logging::event("error", "lastseen_flush_failed", &[("error", &e)]);
        }
    }
}

/// Logs a warning for each manifest that [`expiry::listed`] finds within
/// [`expiry::WARN_BEFORE`] of its expiry (or expired) at start and every [`expiry::LOG_EVERY`], until
/// `stop` says the server stops.
pub async fn expiry_log(app: App, mut stop: rocket::tokio::sync::watch::Receiver<bool>) {
    let mut every = rocket::tokio::time::interval(expiry::LOG_EVERY);
    loop {
        rocket::tokio::select! {
            _ = every.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        let now = Timestamp::now();
        match app
            .run(move |a| {
                a.db.with(|c| expiry::listed(c, now, Some(expiry::WARN_BEFORE)))
            })
            .await
        {
            Ok(list) => {
                for m in list {
                    let left = m.seconds_left(now);
                    let event = if left > 0 {
                        "manifest_expiring"
                    } else {
                        "manifest_expired"
                    };
                    logging::event(
                        "warn",
                        event,
                        &[
                            ("manifest", &m.id),
                            ("name", &m.name),
                            ("expires", &m.expires),
                            ("seconds_left", &left),
                        ],
                    );
                }
            }
            Err(e) => logging::event("error", "expiry_check_failed", &[("error", &e)]),
        }
    }
}
