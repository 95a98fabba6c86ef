//! Commit: the new generation stays (docs/design.md §4.13). The serial is written first, then the
//! journal says `committed`, then the previous generation is dropped, then the journal goes: a
//! crash at any point is finished forwards by [`crate::recover`].

use crate::error::Result;
use crate::fsutil::{remove_if_present, remove_previous_image};
use crate::journal::{Journal, Phase};
use crate::layout::Layout;
use crate::{log, state};

/// Makes `journal`'s generation the installed one.
pub fn commit(layout: &Layout, journal: &mut Journal) -> Result<()> {
    state::write_serial(&layout.serial_file(), journal.serial)?;
    journal.phase = Phase::Committed;
    journal.write(&layout.journal_file())?;
    finish(layout, journal)?;
    Journal::remove(&layout.journal_file())?;
    log::step(format!("serial {} committed", journal.serial));
    Ok(())
}

/// Drops the previous generation after a commit.
pub fn finish(layout: &Layout, journal: &Journal) -> Result<()> {
    for e in &journal.entries {
        if e.name.is_executable() {
            remove_previous_image(&layout.previous(e.name)?)?;
        } else {
            remove_if_present(&layout.previous(e.name)?)?;
        }
        remove_if_present(&layout.staged(e.name)?)?;
    }
    layout.sync_dirs(journal.entries.iter().map(|e| e.name))
}
