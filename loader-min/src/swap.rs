//! Swap the staged files in as one set, and undo or finish a swap (docs/design.md §4.13).
//!
//! For each journal entry: `target → target.mig-prev` (when a file was there), then
//! `target.mig-new → target`. Every state in between is undone by [`revert`]: a `.mig-prev`
//! goes back over its target; a target that did not exist before is removed. [`finish`] drops the
//! previous generation once the new serial is committed, so no old private key stays behind.

use crate::crash;
use crate::error::{Error, Result};
use crate::journal::{Journal, Phase};
use crate::layout::{with_suffix, Layout, MIG_LEFTOVERS};
use crate::log;
use crate::state::fsync_dir;
use mig_protocol::dictionary::{self, DictName};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        Error::io(
            "rename",
            format!("{} -> {}", from.display(), to.display()),
            e,
        )
    })
}

fn remove_if_present(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Flushes the directories holding `names`' targets.
fn sync_dirs(layout: &Layout, names: impl IntoIterator<Item = DictName>) -> Result<()> {
    let dirs: BTreeSet<PathBuf> = names
        .into_iter()
        .filter_map(|n| layout.target(n).ok()?.parent().map(Path::to_path_buf))
        .collect();
    for d in dirs {
        if d.is_dir() {
            fsync_dir(&d)?;
        }
    }
    Ok(())
}

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
            crash::point("mid_swap");
        }
    }
    sync_dirs(layout, journal.entries.iter().map(|e| e.name))?;
    journal.phase = Phase::Swapped;
    journal.write(journal_path)
}

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
    sync_dirs(layout, journal.entries.iter().map(|e| e.name))
}

/// Drops the previous generation after a commit.
pub fn finish(layout: &Layout, journal: &Journal) -> Result<()> {
    for e in &journal.entries {
        remove_if_present(&layout.previous(e.name)?)?;
        remove_if_present(&layout.staged(e.name)?)?;
    }
    sync_dirs(layout, journal.entries.iter().map(|e| e.name))
}

/// Brings the host back to one generation after an interrupted install. Returns the phase the
/// install had reached, so the caller can restart the old agent when the new one may have run.
pub fn recover(layout: &Layout) -> Result<Option<Phase>> {
    let path = layout.journal_file();
    let Some(journal) = Journal::read(&path)? else {
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

/// Removes what an install leaves next to the managed files when no journal is open: staged
/// files, and MIG's `.loader`/`.old` copies (which may hold an old private key). A `.mig-prev`
/// without a journal can only be a previous generation whose removal was interrupted; it is put
/// back only when its target is missing.
pub fn remove_strays(layout: &Layout) -> Result<()> {
    for name in dictionary::ALL {
        let Ok(target) = layout.target(name) else {
            continue;
        };
        for suffix in MIG_LEFTOVERS {
            let p = with_suffix(&target, suffix);
            if remove_if_present(&p)? {
                log::step(format!("removed stale {}", p.display()));
            }
        }
        if remove_if_present(&layout.staged(name)?)? {
            log::step(format!("removed stale {}", layout.staged(name)?.display()));
        }
        let prev = layout.previous(name)?;
        if prev.exists() {
            if target.exists() {
                remove_if_present(&prev)?;
                log::step(format!("removed stale {}", prev.display()));
            } else {
                rename(&prev, &target)?;
                log::step(format!(
                    "restored {} from {}",
                    target.display(),
                    prev.display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JournalEntry;
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
        assert_eq!(recover(&layout).unwrap(), Some(Phase::Swapped));
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
        recover(&layout).unwrap();
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
