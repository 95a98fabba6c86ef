//! Replicas of one PostgreSQL database in step (docs/design.md §6.6): a change that targeting
//! depends on advances the shared generation, and each replica catches up with it before it
//! answers a manifest request or an administrator's request (poll.rs says why the kept
//! outcomes then go).

use crate::app::App;
use crate::error::Result;

/// Something targeting depends on was changed by this replica: every kept outcome is stale
/// here at once, and on every other replica of the database at its next request ([`sync`]).
pub fn changed(app: &App) -> Result<()> {
    app.poll.bump();
    app.db.with(|c| {
        c.execute(
            "UPDATE shared_state SET value = value + 1 WHERE name = 'generation'",
            [],
        )
        .map_err(crate::error::Error::db("advancing the shared generation"))
    })?;
    Ok(())
}

/// Catches up with changes made through other replicas of the database (docs/design.md §6.6):
/// when the shared generation moved, the plugins are made the stored ones and every kept
/// outcome is dropped. Runs before each manifest request and each administrator request, so
/// a change acknowledged by one replica is in force on all from their next request on.
pub fn sync(app: &App) -> Result<()> {
    let shared = app.db.with(|c| {
        c.query_row(
            "SELECT value FROM shared_state WHERE name = 'generation'",
            [],
            |r| r.get(0),
        )
        .map_err(crate::error::Error::db("reading the shared generation"))
    })?;
    catch_up(app, shared)
}

/// [`sync`] with the shared generation already read (a loader's key lookup reads it too).
pub fn catch_up(app: &App, shared: i64) -> Result<()> {
    app.poll.catch_up(shared, || crate::plugins::sync(app))
}
