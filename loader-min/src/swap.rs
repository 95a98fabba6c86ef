//! Swap the staged files in as one set (docs/design.md §4.13).
//!
//! For each journal entry: `target → target.mig-prev` (when a file was there), then
//! `target.mig-new → target`. Every state in between is undone by [`crate::revert`]: a
//! `.mig-prev` goes back over its target; a target that did not exist before is removed.
//! [`crate::commit`] drops the previous generation once the new serial is committed, so no old
//! private key stays behind.

use crate::crash::{self, CrashPoint};
use crate::error::Result;
use crate::fsutil::rename;
use crate::journal::{Journal, Phase};
use crate::layout::Layout;
use crate::log;
use std::path::Path;

/// Renames every staged file into place, keeping the previous generation, then records
/// `swapped` in the journal.
pub fn swap(layout: &Layout, journal: &mut Journal, journal_path: &Path) -> Result<()> {
    for (i, e) in journal.entries.iter().enumerate() {
        let target = layout.target(e.name)?;
        if e.existed {
            log::step(format!("renaming existing file {}", target.display()));
            rename(&target, &layout.previous(e.name)?)?;
        }
        log::step(format!("installing staged file {}", target.display()));
        rename(&layout.staged(e.name)?, &target)?;
        if i == 0 {
            crash::point(CrashPoint::MidSwap);
        }
    }
    layout.sync_dirs(journal.entries.iter().map(|e| e.name))?;
    journal.phase = Phase::Swapped;
    journal.write(journal_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cleanup::remove_strays;
    use crate::commit::finish;
    use crate::journal::JournalEntry;
    use crate::layout::with_suffix;
    use crate::limits::Limits;
    use crate::recover::recover;
    use mig_protocol::dictionary::DictName;
    use mig_protocol::statement::Serial;

    fn setup() -> (tempfile::TempDir, Layout, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), "linux");
        std::fs::create_dir_all(dir.path().join("sbin")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc/mig")).unwrap();
        std::fs::create_dir_all(layout.state_dir()).unwrap();
        let agent = layout.target(DictName::MigAgent).unwrap();
        std::fs::write(&agent, "old agent").unwrap();
        std::fs::write(layout.staged(DictName::MigAgent).unwrap(), "new agent").unwrap();
        std::fs::write(layout.staged(DictName::AgentKey).unwrap(), "new key").unwrap();
        let j = Journal {
            serial: Serial::new(2),
            phase: Phase::Staged,
            entries: vec![
                JournalEntry {
                    name: DictName::MigAgent,
                    existed: true,
                },
                JournalEntry {
                    name: DictName::AgentKey,
                    existed: false,
                },
            ],
        };
        (dir, layout, j)
    }

    fn read(layout: &Layout, n: DictName) -> Option<String> {
        std::fs::read_to_string(layout.target(n).unwrap()).ok()
    }

    #[test]
    fn swap_then_revert_is_all_old_and_finish_is_all_new() {
        let (_d, layout, mut j) = setup();
        j.write(&layout.journal_file()).unwrap();
        swap(&layout, &mut j, &layout.journal_file()).unwrap();
        assert_eq!(
            read(&layout, DictName::MigAgent).as_deref(),
            Some("new agent")
        );
        assert_eq!(
            read(&layout, DictName::AgentKey).as_deref(),
            Some("new key")
        );
        assert_eq!(
            recover(&layout, &Limits::DEFAULT).unwrap(),
            Some(Phase::Swapped)
        );
        assert_eq!(
            read(&layout, DictName::MigAgent).as_deref(),
            Some("old agent")
        );
        assert_eq!(read(&layout, DictName::AgentKey), None);
        assert!(!layout.journal_file().exists());

        let (_d, layout, mut j) = setup();
        swap(&layout, &mut j, &layout.journal_file()).unwrap();
        finish(&layout, &j).unwrap();
        assert_eq!(
            read(&layout, DictName::MigAgent).as_deref(),
            Some("new agent")
        );
        assert!(!layout.previous(DictName::MigAgent).unwrap().exists());
    }

    #[test]
    fn a_half_done_rename_is_undone() {
        // Crash between `target → .mig-prev` and `.mig-new → target`: the target is missing.
        let (_d, layout, j) = setup();
        j.write(&layout.journal_file()).unwrap();
        let agent = layout.target(DictName::MigAgent).unwrap();
        std::fs::rename(&agent, layout.previous(DictName::MigAgent).unwrap()).unwrap();
        recover(&layout, &Limits::DEFAULT).unwrap();
        assert_eq!(
            read(&layout, DictName::MigAgent).as_deref(),
            Some("old agent")
        );
        assert!(!layout.staged(DictName::MigAgent).unwrap().exists());
        assert!(!layout.staged(DictName::AgentKey).unwrap().exists());
    }

    #[test]
    fn strays_and_mig_leftovers_are_removed() {
        let (_d, layout, _j) = setup();
        let key = layout.target(DictName::AgentKey).unwrap();
        std::fs::write(with_suffix(&key, ".old"), "old secret").unwrap();
        remove_strays(&layout).unwrap();
        assert!(!with_suffix(&key, ".old").exists());
        assert!(!layout.staged(DictName::MigAgent).unwrap().exists());
        assert_eq!(
            read(&layout, DictName::MigAgent).as_deref(),
            Some("old agent")
        );
    }
}
