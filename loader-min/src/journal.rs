//! The install journal `<state>/mig-loader.journal`: which dictionary names are being swapped,
//! whether each had a file before, and how far the swap got. It holds names only, never paths
//! (paths come from the dictionary). Written atomically before the first rename, so after a crash
//! the next run knows exactly what to undo (docs/design.md §4.13).

use crate::error::{Error, Result};
use crate::fsutil;
use mig_protocol::dictionary::DictName;
use mig_protocol::statement::Serial;
use std::path::Path;

const MAGIC: &str = "mig-loader journal 1";

/// How far an install got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every file is staged and verified; renames may have started.
    Staged,
    /// Every rename is done; triggers and the health check may have run.
    Swapped,
    /// The new serial is written: the new generation stays.
    Committed,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Staged => "staged",
            Phase::Swapped => "swapped",
            Phase::Committed => "committed",
        }
    }
}

/// One dictionary name of the install, and whether a file was at its place before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalEntry {
    pub name: DictName,
    pub existed: bool,
}

/// The journal of one install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    pub serial: Serial,
    pub phase: Phase,
    pub entries: Vec<JournalEntry>,
}

impl Journal {
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{MAGIC}\nserial {}\nphase {}\n",
            self.serial.get(),
            self.phase.as_str()
        );
        for e in &self.entries {
            s.push_str(&format!(
                "entry {} {}\n",
                e.name.as_str(),
                if e.existed { "existed" } else { "new" }
            ));
        }
        s
    }

    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err("unknown format".into());
        }
        let mut serial = None;
        let mut phase = None;
        let mut entries = Vec::new();
        for line in lines {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["serial", n] => serial = Some(Serial::new(n.parse().map_err(|_| "bad serial")?)),
                ["phase", p] => {
                    phase = Some(match *p {
                        "staged" => Phase::Staged,
                        "swapped" => Phase::Swapped,
                        "committed" => Phase::Committed,
                        _ => return Err(format!("unknown phase {p:?}")),
                    })
                }
                ["entry", name, existed] => {
                    let name =
                        DictName::parse(name).ok_or_else(|| format!("unknown name {name:?}"))?;
                    let existed = match *existed {
                        "existed" => true,
                        "new" => false,
                        _ => return Err(format!("bad entry line {line:?}")),
                    };
                    entries.push(JournalEntry { name, existed });
                }
                _ => return Err(format!("bad line {line:?}")),
            }
        }
        Ok(Journal {
            serial: serial.ok_or("no serial line")?,
            phase: phase.ok_or("no phase line")?,
            entries,
        })
    }

    /// Writes the journal (atomic: temporary file, fsync, rename, fsync of the directory).
    pub fn write(&self, path: &Path) -> Result<()> {
        fsutil::atomic_write(path, self.to_text().as_bytes())
    }

    /// The journal left by an interrupted install, if any (at most `cap` bytes).
    pub fn read(path: &Path, cap: u64) -> Result<Option<Self>> {
        match fsutil::read_small(path, cap)? {
            None => Ok(None),
            Some(text) => Journal::parse(&text).map(Some).map_err(|m| {
                Error::Config(format!(
                    "install journal {} is unreadable ({m}); check the .mig-prev files next to the managed files, then remove it",
                    path.display()
                ))
            }),
        }
    }

    /// Removes the journal once the host is all-old or all-new.
    pub fn remove(path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove journal", path, e)),
        }
        if let Some(dir) = path.parent() {
            fsutil::fsync_dir(dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trips_and_refuses_strangers() {
        let j = Journal {
            serial: Serial::new(9),
            phase: Phase::Swapped,
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
        assert_eq!(Journal::parse(&j.to_text()).unwrap(), j);
        let evil = j.to_text().replace("agentkey", "../../etc/shadow");
        assert!(Journal::parse(&evil).is_err());
        assert!(Journal::parse("garbage").is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mig-loader.journal");
        assert_eq!(Journal::read(&p, 4096).unwrap(), None);
        j.write(&p).unwrap();
        assert_eq!(Journal::read(&p, 4096).unwrap(), Some(j));
        Journal::remove(&p).unwrap();
        assert!(!p.exists());
    }
}
