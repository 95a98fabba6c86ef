//! The safe tar.gz reader for manifest uploads (docs/design.md §6.3).
//!
//! Regular files only, named by the basename of their path (MIG packs `dir/mig-agent` with
//! `tar -czvf`), and that basename must be a dictionary name. Refused, each with a message that
//! names the member: `..` components, absolute paths, symbolic and hard links, devices, fifos,
//! sparse and other special members, duplicate names, more than `[limits] entries` files, a
//! member over `[limits] filesize`, and more than `[limits] totalsize` decompressed bytes in all
//! (the gzip-bomb stop: bytes are counted while they are inflated and reading stops at the cap,
//! so nothing larger than the cap is ever produced). Deflate cannot expand more than ~1032:1, so
//! a ratio check would add nothing to the caps.
//!
//! Extension headers (GNU long names, PAX) are read by this module, not by the `tar` crate, so
//! that their sizes are capped too: the crate reads them whole into memory.

use crate::blobs::BlobStore;
use crate::config::Limits;
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use mig_protocol::dictionary::DictName;
use mig_protocol::statement::Entry;
use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Largest GNU long-name or PAX extension header read.
const MAX_EXTENSION_BYTES: u64 = 64 * 1024;
/// Members of any kind (directories, extension headers included) before the archive is refused.
const MAX_MEMBERS_PER_ENTRY: usize = 16;

/// One extracted member: its dictionary name, hash and size, stored in the blob store.
pub type Extracted = Entry;

/// Reads a tar.gz, stores every member in `blobs`, and returns the entries in archive order.
pub fn extract(gz: impl Read, limits: &Limits, blobs: &BlobStore) -> Result<Vec<Extracted>> {
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
    let read_error = |e: io::Error, last: &str| -> Error {
        if over.get() {
            Error::TooLarge(format!(
                "archive: more than {} bytes decompressed (gzip bomb?), stopped after member {last}",
                limits.total_size
            ))
        } else {
            Error::invalid(
                "bad_archive",
                format!("archive: unreadable after member {last}: {e}"),
            )
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
        let mut w = blobs.writer()?;
        let copied = io::copy(&mut (&mut entry).take(size), &mut w)
            .map_err(|e| map_read(e, &over, limits, &member))?;
        if copied != size {
            return Err(bad(format!(
                "member {member}: truncated, {copied} of {size} bytes"
            )));
        }
        let (sha256, size) = w.finish()?;
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

fn bad(message: String) -> Error {
    Error::invalid("bad_archive", message)
}

fn map_read(e: io::Error, over: &Cell<bool>, limits: &Limits, member: &str) -> Error {
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
fn pax_path(data: &[u8], last: &str) -> Result<Option<Vec<u8>>> {
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
fn check_path(raw: &[u8], member: &str) -> Result<Option<String>> {
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
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn limits() -> Limits {
        Limits {
            upload: 1 << 20,
            entries: 4,
            file_size: 1 << 20,
            total_size: 4 << 20,
            ..crate::config::Config::default().limits
        }
    }

    fn gz(tar: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(tar).unwrap();
        e.finish().unwrap()
    }

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn run(gzbytes: &[u8]) -> Result<Vec<Extracted>> {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::for_database(&dir.path().join("x.db")).unwrap();
        extract(gzbytes, &limits(), &store)
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
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::for_database(&dir.path().join("x.db")).unwrap();
        let e = extract(&gz(&tar_of(&[("mig-agent", &big)]))[..], &l, &store).unwrap_err();
        assert!(matches!(e, Error::TooLarge(_)), "{e}");
        assert!(e.to_string().contains("\"mig-agent\""), "{e}");
    }
}
