//! The sha256 of the managed files, hashed only when a file may have changed (docs/design.md §4.9).
//!
//! A small record in the state directory holds, per dictionary name, the sha256 the loader last
//! hashed and the file's fingerprint at that moment (device, inode, size, mtime and ctime in
//! nanoseconds). A file whose fingerprint matches is taken to have the recorded sha256 without
//! being read; anything else is hashed. A record that is missing, unreadable, too large or not
//! exactly in this module's format is ignored as a whole, and so is one older than
//! [`MAX_AGE_SECS`] or dated in the future: every file is then hashed again.

use crate::error::{Error, Result};
use crate::fsutil::{atomic_write, read_small};
use crate::log;
use mig_protocol::dictionary::DictName;
use mig_protocol::Sha256;
use sha2::Digest;
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

/// How long a record is believed: past it every file is hashed again, which finds a corruption
/// that changed no metadata (docs/design.md §4.9).
pub const MAX_AGE_SECS: u64 = 24 * 60 * 60;

/// A file whose ctime is less than this many seconds before the clock is hashed but not
/// recorded: a second write within the filesystem's timestamp granularity could leave its
/// fingerprint unchanged (docs/design.md §4.9).
pub const SETTLE_SECS: u64 = 2;

/// The first line of a record: its format and version.
const HEADER: &str = "mig-loader known sha256 v1";

/// What identifies one version of a file: any write, rename over it, `chmod` or `touch` changes
/// at least one field (the ctime, which only the kernel sets, always). Times are seconds and
/// nanoseconds, as `stat` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Fingerprint {
    #[cfg(unix)]
    fn of(m: &Metadata) -> Option<Fingerprint> {
        use std::os::unix::fs::MetadataExt;
        Some(Fingerprint {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// Windows has no ctime that only the kernel sets: every file is hashed there.
    #[cfg(not(unix))]
    fn of(_: &Metadata) -> Option<Fingerprint> {
        None
    }
}

/// One file's line: its name, the sha256 hashed and the fingerprint taken just before.
type Entry = (DictName, Sha256, Fingerprint);

/// The record, loaded once per use and saved when something in it changed.
#[derive(Debug)]
pub struct Known {
    /// Unix seconds of the start of the full verification every entry was hashed after.
    since: u64,
    now: u64,
    files: Vec<Entry>,
    changed: bool,
}

/// Unix seconds now; 0 (nothing is then ever recorded) if the clock is before 1970.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Known {
    /// The record at `path` (read up to `cap` bytes) as of `now` (Unix seconds); an empty one,
    /// dated `now`, whenever it cannot be believed as a whole.
    pub fn load(path: &Path, cap: u64, now: u64) -> Known {
        let record = match read_small(path, cap) {
            Ok(Some(text)) => parse(&text).ok_or("it is not a record of this loader"),
            Ok(None) => Ok((now, Vec::new())),
            Err(_) => Err("it cannot be read"),
        };
        // A record not believed is replaced, even by an empty one.
        let (since, files, changed) = match record {
            Ok((since, _)) if since > now || now - since >= MAX_AGE_SECS => {
                log::step(format!(
                    "the files were last all hashed more than {} h ago or in the future, hashing every file",
                    MAX_AGE_SECS / 3600
                ));
                (now, Vec::new(), true)
            }
            Ok((since, files)) => (since, files, false),
            Err(why) => {
                log::step(format!(
                    "ignoring {}: {why}, hashing every file",
                    path.display()
                ));
                (now, Vec::new(), true)
            }
        };
        Known {
            since,
            now,
            files,
            changed,
        }
    }

    /// The sha256 of `name`'s file at `path`, `None` when it does not exist: the recorded one when
    /// the file's fingerprint matches, else hashed (and recorded once the file has settled).
    pub fn sha256(&mut self, name: DictName, path: &Path, buffer: usize) -> Result<Option<Sha256>> {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.forget(name);
                return Ok(None);
            }
            Err(e) => return Err(Error::io("open", path, e)),
        };
        // Taken before reading: a write during the hash changes it, so the next run hashes again.
        let print = f.metadata().ok().as_ref().and_then(Fingerprint::of);
        let known = self.files.iter().find(|e| e.0 == name);
        if let (Some(print), Some((_, sha, known))) = (print, known) {
            if print == *known {
                log::step(format!("{name} is unchanged since it was hashed"));
                return Ok(Some(sha.clone()));
            }
        }
        let sha = hash(&mut f, path, buffer)?;
        let settled = i64::try_from(self.now.saturating_sub(SETTLE_SECS)).unwrap_or(0);
        match print {
            Some(p) if p.ctime.0 < settled => {
                self.forget(name);
                self.files.push((name, sha.clone(), p));
                self.changed = true;
            }
            _ => self.forget(name),
        }
        Ok(Some(sha))
    }

    fn forget(&mut self, name: DictName) {
        let before = self.files.len();
        self.files.retain(|e| e.0 != name);
        self.changed |= self.files.len() != before;
    }

    /// Writes the record when it changed; a failure is logged, since the next run then only
    /// hashes again.
    pub fn save(&self, path: &Path) {
        if !self.changed {
            return;
        }
        let mut text = format!("{HEADER}\nsince {}\n", self.since);
        for (name, sha, p) in &self.files {
            text.push_str(&format!(
                "{name} {sha} {} {} {} {} {} {} {}\n",
                p.dev, p.ino, p.size, p.mtime.0, p.mtime.1, p.ctime.0, p.ctime.1
            ));
        }
        if let Err(e) = atomic_write(path, text.as_bytes()) {
            log::warn(e);
        }
    }
}

/// The record's content, `None` unless every line is exactly as [`Known::save`] writes it.
fn parse(text: &str) -> Option<(u64, Vec<Entry>)> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let since = lines.next()?.strip_prefix("since ")?.parse().ok()?;
    let mut files: Vec<Entry> = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(' ').collect();
        let [name, sha, dev, ino, size, ms, mns, cs, cns] = f[..] else {
            return None;
        };
        let print = Fingerprint {
            dev: dev.parse().ok()?,
            ino: ino.parse().ok()?,
            size: size.parse().ok()?,
            mtime: (ms.parse().ok()?, mns.parse().ok()?),
            ctime: (cs.parse().ok()?, cns.parse().ok()?),
        };
        let name = DictName::parse(name)?;
        if files.iter().any(|e| e.0 == name) {
            return None;
        }
        files.push((name, Sha256::parse(sha).ok()?, print));
    }
    Some((since, files))
}

/// Streams `f` through SHA-256 with a buffer of `buffer` bytes.
fn hash(f: &mut File, path: &Path, buffer: usize) -> Result<Sha256> {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; buffer];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Sha256::from_digest(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: u64 = 4096;
    const BUF: usize = 4096;
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    #[cfg(unix)]
    const FORGED: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    /// A clock at which a file written now has settled.
    fn later() -> u64 {
        now() + 60
    }

    /// A file holding "abc" and a record, dated `since`, that gives the file's real fingerprint
    /// with the sha256 [`FORGED`]: whoever answers FORGED took it from the record without reading.
    #[cfg(unix)]
    fn forged(dir: &Path, since: u64) -> (std::path::PathBuf, std::path::PathBuf) {
        let (file, record) = (dir.join("f"), dir.join("known"));
        std::fs::write(&file, b"abc").unwrap();
        let mut k = Known::load(&record, CAP, since);
        assert_eq!(
            k.sha256(DictName::CaCert, &file, BUF).unwrap().unwrap(),
            ABC
        );
        k.save(&record);
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(text.contains(ABC), "{text}");
        std::fs::write(&record, text.replace(ABC, FORGED)).unwrap();
        (file, record)
    }

    #[cfg(unix)]
    fn sha(record: &Path, file: &Path, now: u64) -> String {
        let mut k = Known::load(record, CAP, now);
        String::from(k.sha256(DictName::CaCert, file, BUF).unwrap().unwrap())
    }

    #[test]
    fn a_file_is_hashed_streaming_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let (file, record) = (dir.path().join("f"), dir.path().join("known"));
        let mut k = Known::load(&record, CAP, later());
        assert_eq!(k.sha256(DictName::CaCert, &file, BUF).unwrap(), None);
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(k.sha256(DictName::CaCert, &file, 1).unwrap().unwrap(), ABC);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_whose_fingerprint_matches_is_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let (file, record) = forged(dir.path(), later());
        let mut k = Known::load(&record, CAP, later());
        assert_eq!(
            k.sha256(DictName::CaCert, &file, BUF).unwrap().unwrap(),
            FORGED
        );
        k.save(&record);
        assert!(std::fs::read_to_string(&record).unwrap().contains(FORGED));
        // Another name's entry is not this file's.
        let mut k = Known::load(&record, CAP, later());
        assert_eq!(
            k.sha256(DictName::AgentCert, &file, BUF).unwrap().unwrap(),
            ABC
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_edited_in_place_with_size_and_mtime_restored_is_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let (file, record) = forged(dir.path(), later());
        let before = std::fs::metadata(&file).unwrap();
        // Past the kernel's timestamp tick, so that the edit's ctime differs from the recorded one.
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::write(&file, b"abd").unwrap();
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(before.modified().unwrap())
            .unwrap();
        let after = std::fs::metadata(&file).unwrap();
        assert_eq!(after.len(), before.len());
        assert_eq!(after.modified().unwrap(), before.modified().unwrap());
        assert_eq!(
            sha(&record, &file, later()),
            String::from(Sha256::of(b"abd"))
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_or_touched_file_is_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let (file, record) = forged(dir.path(), later());
        let other = dir.path().join("other");
        std::fs::write(&other, b"abc").unwrap();
        std::fs::rename(&other, &file).unwrap();
        assert_eq!(sha(&record, &file, later()), ABC);
        let (file, record) = forged(dir.path(), later());
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(sha(&record, &file, later()), ABC);
    }

    #[cfg(unix)]
    #[test]
    fn a_corrupt_or_hostile_record_is_ignored_and_every_file_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let (file, record) = forged(dir.path(), later());
        let good = std::fs::read_to_string(&record).unwrap();
        assert_eq!(sha(&record, &file, later()), FORGED);
        let entry = good.lines().nth(2).unwrap().to_string();
        let bad = [
            good.replacen("v1", "v2", 1),
            good.replacen("since ", "since -", 1),
            format!("{good}{entry}\n"),
            format!("{good}mig-agent {FORGED}\n"),
            good.replacen("cacert", "nothing", 1),
            good.replacen(FORGED, &FORGED[1..], 1),
            good.replacen(FORGED, &"A".repeat(64), 1),
            good.replacen(FORGED, &"g".repeat(64), 1),
            good.replacen(&entry, &format!("{entry} 1"), 1),
            good.replacen(&entry, &entry.replace(' ', "  "), 1),
            format!("{good}{}", "x".repeat(CAP as usize)),
            good.replacen("since", "\u{0}since", 1),
        ];
        for text in bad {
            std::fs::write(&record, &text).unwrap();
            assert_eq!(sha(&record, &file, later()), ABC, "believed {text:?}");
        }
        std::fs::write(&record, [0xff, 0xfe, b'\n']).unwrap();
        assert_eq!(sha(&record, &file, later()), ABC);
        // Ignored, the record is replaced by a true one.
        let mut k = Known::load(&record, CAP, later());
        k.sha256(DictName::CaCert, &file, BUF).unwrap();
        k.save(&record);
        assert!(std::fs::read_to_string(&record).unwrap().contains(ABC));
    }

    #[cfg(unix)]
    #[test]
    fn past_the_bound_or_before_the_record_every_file_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let since = later();
        let (file, record) = forged(dir.path(), since);
        assert_eq!(sha(&record, &file, since + MAX_AGE_SECS - 1), FORGED);
        assert_eq!(sha(&record, &file, since + MAX_AGE_SECS), ABC);
        assert_eq!(sha(&record, &file, since - 1), ABC);
        // The new full verification is dated by the clock that started it.
        let mut k = Known::load(&record, CAP, since + MAX_AGE_SECS);
        k.sha256(DictName::CaCert, &file, BUF).unwrap();
        k.save(&record);
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(
            text.contains(&format!("since {}\n", since + MAX_AGE_SECS)),
            "{text}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_changed_within_the_settling_time_is_hashed_but_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (file, record) = (dir.path().join("f"), dir.path().join("known"));
        std::fs::write(&file, b"abc").unwrap();
        let mut k = Known::load(&record, CAP, now());
        assert_eq!(
            k.sha256(DictName::CaCert, &file, BUF).unwrap().unwrap(),
            ABC
        );
        k.save(&record);
        assert!(!record.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_removed_file_leaves_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let (file, record) = forged(dir.path(), later());
        std::fs::remove_file(&file).unwrap();
        let mut k = Known::load(&record, CAP, later());
        assert_eq!(k.sha256(DictName::CaCert, &file, BUF).unwrap(), None);
        k.save(&record);
        assert!(!std::fs::read_to_string(&record).unwrap().contains("cacert"));
    }

    /// Windows files have no fingerprint to trust: every run hashes them.
    #[cfg(windows)]
    #[test]
    fn nothing_is_recorded_on_windows() {
        let dir = tempfile::tempdir().unwrap();
        let (file, record) = (dir.path().join("f"), dir.path().join("known"));
        std::fs::write(&file, b"abc").unwrap();
        let mut k = Known::load(&record, CAP, later());
        assert_eq!(
            k.sha256(DictName::CaCert, &file, BUF).unwrap().unwrap(),
            ABC
        );
        k.save(&record);
        assert!(!record.exists());
    }
}
