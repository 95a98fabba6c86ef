//! Revert: put the previous generation back after a failed install or an interrupted one
//! (docs/design.md §4.14, §4.15). Afterwards every journal entry is as it was before the install.

use crate::error::Result;
use crate::fsutil::{remove_if_present, rename};
use crate::journal::Journal;
use crate::layout::Layout;
use crate::log;

/// Puts the previous generation back: afterwards every journal entry is as before the install.
pub fn revert(layout: &Layout, journal: &Journal) -> Result<()> {
    for e in journal.entries.iter().rev() {
        let target = layout.target(e.name)?;
        let prev = layout.previous(e.name)?;
        if prev.exists() {
            log::step(format!("restoring previous {}", target.display()));
            rename(&prev, &target)?;
        } else if !e.existed && remove_if_present(&target)? {
            log::step(format!("removing new {}", target.display()));
        }
        remove_if_present(&layout.staged(e.name)?)?;
    }
    layout.sync_dirs(journal.entries.iter().map(|e| e.name))
}
