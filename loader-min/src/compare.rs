//! Compare the local sha256 of every dictionary file with the statement (docs/design.md §4.9), and
//! decide what to fetch. The local sha256 comes from [`Known`]: hashed (streamed with a small
//! buffer) unless the file provably did not change since it was last hashed.

use crate::error::Result;
use crate::known::{self, Known};
use crate::layout::Layout;
use crate::limits::Limits;
use crate::log;
use mig_protocol::dictionary::{self, DictName};
use mig_protocol::statement::{Entry, Statement};
use mig_protocol::Sha256;
use std::path::Path;

/// One entry to fetch, with whether a file is at its place now.
#[derive(Debug, Clone)]
pub struct Change {
    pub name: DictName,
    pub entry: Entry,
    pub existed: bool,
}

/// What differs between the host and the statement.
#[derive(Debug, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
}

/// Compares in dictionary order; entries the dictionary does not know are ignored (but signed).
pub fn compare(layout: &Layout, statement: &Statement, limits: &Limits) -> Result<Plan> {
    compare_at(layout, statement, limits, known::now())
}

/// [`compare`] with the clock at `now` (Unix seconds).
pub fn compare_at(
    layout: &Layout,
    statement: &Statement,
    limits: &Limits,
    now: u64,
) -> Result<Plan> {
    for e in &statement.entries {
        if e.dict_name().is_none() {
            log::step(format!(
                "entry {:?} is not in the dictionary, ignoring",
                e.name
            ));
        }
    }
    let mut plan = Plan::default();
    let record = layout.known_file();
    let mut known = Known::load(&record, limits.state_file, now);
    for name in dictionary::ALL {
        let Some(entry) = statement.entry(name) else {
            continue;
        };
        let target = layout.target(name)?;
        log::step(format!("comparing {name} {}", layout.display_path(name)));
        let have = known.sha256(name, &target, limits.io_buffer)?;
        log::step(format!(
            "we have {}",
            have.as_ref().map_or("not found", Sha256::as_str)
        ));
        log::step(format!("they have {}", entry.sha256));
        if have.as_ref() == Some(&entry.sha256) {
            fix_mode(&target, name.mode())?;
            continue;
        }
        log::step(format!("refreshing {name}"));
        plan.changes.push(Change {
            name,
            entry: entry.clone(),
            existed: have.is_some(),
        });
    }
    known.save(&record);
    Ok(plan)
}

/// MIG's entryPermCheck: an unchanged file gets the dictionary mode back if it drifted.
fn fix_mode(path: &Path, mode: u32) -> Result<()> {
    if crate::fsutil::set_mode(path, mode)? {
        log::step(format!("fixed mode of {} to {mode:o}", path.display()));
    }
    Ok(())
}
