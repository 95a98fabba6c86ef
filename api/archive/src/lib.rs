//! mig-archive: the safe tar.gz reader for manifest uploads (docs/design.md §6.3), a crate of its
//! own so that it can be fuzzed (tests/fuzz) without the server around it.
//!
//! Regular files only, named by the basename of their path (MIG packs `dir/mig-agent` with
//! `tar -czvf`), and that basename must be a dictionary name. Refused, each with a message that
//! names the member: `..` components, absolute paths, symbolic and hard links, devices, fifos,
//! sparse and other special members, duplicate names, more than `entries` files, a
//! member over `file_size`, and more than `total_size` decompressed bytes in all
//! (the gzip-bomb stop: bytes are counted while they are inflated and reading stops at the cap,
//! so nothing larger than the cap is ever produced). Deflate cannot expand more than ~1032:1, so
//! a ratio check would add nothing to the caps.
//!
//! Extension headers (GNU long names, PAX) are read by this module, not by the `tar` crate, so
//! that their sizes are capped too: the crate reads them whole into memory.

#![forbid(unsafe_code)]

use flate2::read::GzDecoder;
use mig_protocol::dictionary::DictName;
use mig_protocol::statement::Entry;
use mig_protocol::Sha256;
use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::rc::Rc;

/// Largest GNU long-name or PAX extension header read.
const MAX_EXTENSION_BYTES: u64 = 64 * 1024;
/// Members of any kind (directories, extension headers included) before the archive is refused.
const MAX_MEMBERS_PER_ENTRY: usize = 16;

/// One extracted member: its dictionary name, hash and size, as the store kept it.
pub type Extracted = Entry;

/// The caps of one archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Most regular files.
    pub entries: usize,
    /// Largest decompressed member.
    pub file_size: u64,
    /// Largest total decompressed archive (headers included): the gzip-bomb stop.
    pub total_size: u64,
}

/// Where members go: the API's blob store, or memory.
pub trait Store {
    type Error;
    /// Reads `member` to its end and keeps it; returns its hash and size.
    fn store(&self, member: &mut dyn Read) -> std::result::Result<(Sha256, u64), Self::Error>;
}

/// Why an archive was refused, or the store's own failure.
#[derive(Debug)]
pub enum Error<E> {
    /// A cap was passed (413).
    TooLarge(String),
    /// The archive is malformed or holds what is not accepted (400).
    Invalid(String),
    Store(E),
}

impl<E: std::fmt::Display> std::fmt::Display for Error<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::TooLarge(m) | Error::Invalid(m) => f.write_str(m),
            Error::Store(e) => e.fmt(f),
        }
    }
}

type Result<T, E> = std::result::Result<T, Error<E>>;

/// Reads a tar.gz, keeps every member in `store`, and returns the entries in archive order.
pub fn extract<S: Store>(
    gz: impl Read,
    limits: &Caps,
    store: &S,
) -> Result<Vec<Extracted>, S::Error> {
    let over = Rc::new(Cell::new(false));
    let capped = CapReader {
        inner: GzDecoder::new(gz),
        left: limits.total_size,
        over: over.clone(),
    };
    let mut archive = tar::Archive::new(capped);
    let max_members = limits.entries.saturating_mul(MAX_MEMBERS_PER_ENTRY).max(64);
    let mut out: Vec<Extracted> = Vec::new();
    let mut members = 0usize;
    let mut pending_name: Option<Vec<u8>> = None;
    let mut last = String::from("(start of archive)");
    let read_error = |e: io::Error, last: &str| -> Error<S::Error> {
        if over.get() {
            Error::TooLarge(format!(
                "archive: more than {} bytes decompressed (gzip bomb?), stopped after member {last}",
                limits.total_size
            ))
        } else {
            Error::Invalid(format!("archive: unreadable after member {last}: {e}"))
        }
    };
    let entries = archive
        .entries()
        .map_err(|e| read_error(e, &last))?
        .raw(true);
    for entry in entries {
        let mut entry = entry.map_err(|e| read_error(e, &last))?;
        members += 1;
        if members > max_members {
            return Err(bad(format!(
                "archive: more than {max_members} members (after {last})"
            )));
        }
        let header = entry.header().clone();
        let kind = header.entry_type();
        let size = entry.size();
        if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
            let what = if kind.is_gnu_longname() {
                "GNU long name"
            } else {
                "PAX header"
            };
            if pending_name.is_some() {
                return Err(bad(format!(
                    "archive: two extension headers for one member after {last}"
                )));
            }
            let data = read_extension(&mut entry, size, what, &last)
                .map_err(|e| map_read(e, &over, limits, &last))?;
            pending_name = Some(if kind.is_gnu_longname() {
                // NUL-terminated.
                data.split(|b| *b == 0).next().unwrap_or(&[]).to_vec()
            } else {
                pax_path(&data, &last)?.unwrap_or_else(|| header.path_bytes().into_owned())
            });
            continue;
        }
        if kind.is_pax_global_extensions() {
            // Metadata for the archive as a whole (e.g. `git archive`'s commit id): skipped.
            read_extension(&mut entry, size, "PAX global header", &last)
                .map_err(|e| map_read(e, &over, limits, &last))?;
            continue;
        }
        let raw_name = pending_name
            .take()
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let shown = String::from_utf8_lossy(&raw_name).into_owned();
        let member = format!("{shown:?}");
        last = member.clone();
        let base = check_path(&raw_name, &member)?;
        if kind.is_dir() {
            continue;
        }
        let refuse = |what: &str| {
            bad(format!(
                "member {member}: {what}; only regular files are accepted"
            ))
        };
        if kind.is_symlink() {
            return Err(refuse("symbolic link"));
        }
        if kind.is_hard_link() || kind.is_gnu_longlink() {
            return Err(refuse("hard link"));
        }
        if kind.is_character_special() || kind.is_block_special() {
            return Err(refuse("device file"));
        }
        if kind.is_fifo() {
            return Err(refuse("fifo"));
        }
        if !kind.is_file() {
            return Err(refuse(&format!(
                "member type {:?}",
                char::from(kind.as_byte())
            )));
        }
        let Some(base) = base else {
            return Err(bad(format!(
                "member {member}: a regular file without a name"
            )));
        };
        let Some(name) = DictName::parse(&base) else {
            return Err(bad(format!(
                "member {member}: {base:?} is not a dictionary name (one of: {})",
                mig_protocol::dictionary::ALL.map(|n| n.as_str()).join(", ")
            )));
        };
        if out.iter().any(|e| e.name == name.as_str()) {
            return Err(bad(format!(
                "member {member}: a second file named {:?}",
                name.as_str()
            )));
        }
        if out.len() >= limits.entries {
            return Err(bad(format!(
                "member {member}: more than {} files in the archive",
                limits.entries
            )));
        }
        if size > limits.file_size {
            return Err(Error::TooLarge(format!(
                "member {member}: {size} bytes, larger than the {} bytes allowed per file",
                limits.file_size
            )));
        }
        let mut watched = Watched {
            inner: (&mut entry).take(size),
            failed: RefCell::new(None),
        };
        let kept = store.store(&mut watched);
        if let Some(e) = watched.failed.take() {
            return Err(map_read(e, &over, limits, &member));
        }
        let (sha256, copied) = kept.map_err(Error::Store)?;
        if copied != size {
            return Err(bad(format!(
                "member {member}: truncated, {copied} of {size} bytes"
            )));
        }
        out.push(Entry {
            name: name.as_str().to_string(),
            sha256,
            size,
        });
    }
    if pending_name.is_some() {
        return Err(bad(format!(
            "archive: an extension header after member {last} describes no member"
        )));
    }
    if out.is_empty() {
        return Err(bad(
            "archive: no regular file with a dictionary name".to_string()
        ));
    }
    Ok(out)
}

fn bad<E>(message: String) -> Error<E> {
    Error::Invalid(message)
}

/// A member's reader that remembers its own failure, so that a read error (the archive's fault)
/// is told from the store's failure (the server's).
struct Watched<R> {
    inner: R,
    failed: RefCell<Option<io::Error>>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            *self.failed.borrow_mut() = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }
}

fn map_read<E>(e: io::Error, over: &Cell<bool>, limits: &Caps, member: &str) -> Error<E> {
    if over.get() {
        Error::TooLarge(format!(
            "member {member}: more than {} bytes decompressed in all (gzip bomb?)",
            limits.total_size
        ))
    } else {
        bad(format!("member {member}: unreadable: {e}"))
    }
}

fn read_extension(r: &mut impl Read, size: u64, what: &str, last: &str) -> io::Result<Vec<u8>> {
    if size > MAX_EXTENSION_BYTES {
        return Err(io::Error::other(format!(
            "{what} of {size} bytes after {last}, at most {MAX_EXTENSION_BYTES}"
        )));
    }
    let mut data = Vec::with_capacity(size as usize);
    r.take(size).read_to_end(&mut data)?;
    Ok(data)
}

/// The `path` of a PAX header. A `size` record is refused: it would make this reader and GNU
/// tar disagree on where the member ends, and no member here needs one (they are < 8 GiB).
fn pax_path<E>(data: &[u8], last: &str) -> Result<Option<Vec<u8>>, E> {
    let mut path = None;
    for ext in tar::PaxExtensions::new(data) {
        let ext = ext.map_err(|e| bad(format!("archive: bad PAX header after {last}: {e}")))?;
        match ext.key_bytes() {
            b"path" => path = Some(ext.value_bytes().to_vec()),
            b"size" => {
                return Err(bad(format!(
                    "archive: PAX size record after {last} is not accepted"
                )))
            }
            b"linkpath" => {
                return Err(bad(format!(
                    "archive: PAX link path after {last}: links are not accepted"
                )))
            }
            _ => {}
        }
    }
    Ok(path)
}

/// Refuses absolute paths and `..`; returns the basename (None for `.` or `dir/`).
fn check_path<E>(raw: &[u8], member: &str) -> Result<Option<String>, E> {
    let path = std::str::from_utf8(raw)
        .map_err(|_| bad(format!("member {member}: the name is not UTF-8")))?;
    if path.is_empty() {
        return Err(bad("member with an empty name".to_string()));
    }
    if path.contains('\0') {
        return Err(bad(format!("member {member}: NUL in the name")));
    }
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(bad(format!("member {member}: absolute path")));
    }
    let parts: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(bad(format!("member {member}: path traversal (`..`)")));
    }
    Ok(parts.last().map(|s| s.to_string()))
}

/// Counts inflated bytes and fails once `left` is used up.
struct CapReader<R> {
    inner: R,
    left: u64,
    over: Rc<Cell<bool>>,
}

impl<R: Read> Read for CapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells "exactly at the cap" from "over it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.over.set(true);
                    Err(io::Error::other("decompressed size cap reached"))
                }
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Members kept in memory.
    struct Memory;

    impl Store for Memory {
        type Error = String;
        fn store(&self, member: &mut dyn Read) -> std::result::Result<(Sha256, u64), String> {
            let mut data = Vec::new();
            member.read_to_end(&mut data).map_err(|e| e.to_string())?;
            Ok((Sha256::of(&data), data.len() as u64))
        }
    }

    fn limits() -> Caps {
        Caps {
            entries: 4,
            file_size: 1 << 20,
            total_size: 4 << 20,
        }
    }

    use mig_test_support::archive::{gzip as gz, tar_of};

    fn run(gzbytes: &[u8]) -> Result<Vec<Extracted>, String> {
        extract(gzbytes, &limits(), &Memory)
    }

    #[test]
    fn basenames_in_archive_order() {
        let e = run(&gz(&tar_of(&[
            ("m/mig-agent", b"agent"),
            ("m/cacert", b"ca"),
        ])))
        .unwrap();
        let names: Vec<_> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["mig-agent", "cacert"]);
        assert_eq!(e[1].size, 2);
        assert_eq!(e[1].sha256, Sha256::of(b"ca"));
    }

    #[test]
    fn long_names_go_through_the_gnu_extension() {
        let long = format!("{}/mig-agent", "d".repeat(150));
        let e = run(&gz(&tar_of(&[(&long, b"x")]))).unwrap();
        assert_eq!(e[0].name, "mig-agent");
    }

    #[test]
    fn non_gzip_and_empty_archives_are_refused() {
        let e = run(b"plain text").unwrap_err().to_string();
        assert!(e.contains("archive"), "{e}");
        let e = run(&gz(&tar_of(&[]))).unwrap_err().to_string();
        assert!(e.contains("no regular file"), "{e}");
    }

    #[test]
    fn a_bomb_stops_at_the_total_cap() {
        let big = vec![0u8; 5 << 20];
        let mut l = limits();
        l.file_size = 8 << 20;
        let e = extract(&gz(&tar_of(&[("mig-agent", &big)]))[..], &l, &Memory).unwrap_err();
        assert!(matches!(e, Error::TooLarge(_)), "{e}");
        assert!(e.to_string().contains("\"mig-agent\""), "{e}");
    }

    #[test]
    fn a_store_failure_is_the_stores_not_the_archives() {
        struct Full;
        impl Store for Full {
            type Error = String;
            fn store(&self, _: &mut dyn Read) -> std::result::Result<(Sha256, u64), String> {
                Err("disk full".into())
            }
        }
        let e = extract(&gz(&tar_of(&[("mig-agent", b"x")]))[..], &limits(), &Full).unwrap_err();
        assert!(matches!(&e, Error::Store(m) if m == "disk full"), "{e}");
    }
}
