//! Recover: an interrupted install is finished or undone before anything else
//! (docs/design.md §4.15), so every run starts from one generation.

use crate::commit::finish;
use crate::error::Result;
use crate::journal::{Journal, Phase};
use crate::layout::Layout;
use crate::limits::Limits;
use crate::log;
use crate::revert::revert;

/// Brings the host back to one generation after an interrupted install. Returns the phase the
/// install had reached, so the caller can restart the old agent when the new one may have run.
pub fn recover(layout: &Layout, limits: &Limits) -> Result<Option<Phase>> {
    let path = layout.journal_file();
    let Some(journal) = Journal::read(&path, limits.state_file)? else {
        return Ok(None);
    };
    log::step(format!(
        "found the journal of an interrupted install of serial {} (phase {:?})",
        journal.serial.get(),
        journal.phase
    ));
    match journal.phase {
        Phase::Committed => {
            log::step("the install was committed: removing the previous generation");
            finish(layout, &journal)?;
        }
        Phase::Staged | Phase::Swapped => {
            log::step("the install was not committed: restoring the previous generation");
            revert(layout, &journal)?;
        }
    }
    Journal::remove(&path)?;
    Ok(Some(journal.phase))
}
