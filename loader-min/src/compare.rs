//! Compare the local sha256 of every dictionary file with the statement (docs/design.md §4.9), and
//! decide what to fetch. Hashing streams the file with a small buffer.

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::limits::Limits;
use crate::log;
use mig_protocol::dictionary::{self, DictName};
use mig_protocol::statement::{Entry, Statement};
use mig_protocol::Sha256;
use sha2::Digest;
use std::io::Read;
use std::path::Path;

/// The sha256 of a file, `None` when it does not exist.
pub fn sha256_file(path: &Path, buffer: usize) -> Result<Option<Sha256>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; buffer];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Some(Sha256::from_digest(&h.finalize())))
}

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
    for e in &statement.entries {
        if e.dict_name().is_none() {
            log::step(format!(
                "entry {:?} is not in the dictionary, ignoring",
                e.name
            ));
        }
    }
    let mut plan = Plan::default();
    for name in dictionary::ALL {
        let Some(entry) = statement.entry(name) else {
            continue;
        };
        let target = layout.target(name)?;
        log::step(format!("comparing {name} {}", layout.display_path(name)));
        let have = sha256_file(&target, limits.io_buffer)?;
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
    Ok(plan)
}

/// MIG's entryPermCheck: an unchanged file gets the dictionary mode back if it drifted.
fn fix_mode(path: &Path, mode: u32) -> Result<()> {
    if crate::fsutil::set_mode(path, mode)? {
        log::step(format!("fixed mode of {} to {mode:o}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_file_streams_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert_eq!(sha256_file(&p, 4096).unwrap(), None);
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p, 4096).unwrap().unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
