//! Cleanup: what an install or MIG's loader left next to the managed files goes
//! (docs/design.md §4.15).

use crate::error::Result;
use crate::fsutil::{remove_if_present, remove_previous_image, rename};
use crate::layout::{with_suffix, Layout, MIG_LEFTOVERS};
use crate::log;
use mig_protocol::dictionary;

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
                let removed = if name.is_executable() {
                    remove_previous_image(&prev)?
                } else {
                    remove_if_present(&prev)?
                };
                if removed {
                    log::step(format!("removed stale {}", prev.display()));
                }
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
