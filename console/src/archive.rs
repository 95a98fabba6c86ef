//! A local manifest archive (tar.gz, as GNU `tar -czf` makes it): its entries, hashed the way
//! the API builds a statement (regular files, by base name, in archive order), and the
//! comparison `sign --content` makes before anything is signed.

use crate::error::{Error, Result};
use mig_protocol::statement::{Entry, MAX_ENTRIES, MAX_ENTRY_SIZE};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The largest archive the console uploads or reads.
pub const MAX_ARCHIVE: u64 = 256 * 1024 * 1024;
/// Headers read at most (directories included), so a crafted archive cannot spin forever.
const MAX_HEADERS: usize = 4096;

/// Opens `path`, refusing one larger than [`MAX_ARCHIVE`] before reading it.
pub fn open_capped(path: &Path) -> Result<std::fs::File> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = f.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    if len > MAX_ARCHIVE {
        return Err(Error::TooLarge {
            what: path.display().to_string(),
            limit: MAX_ARCHIVE,
        });
    }
    Ok(f)
}

/// Reads the whole archive into memory (for the upload), capped.
pub fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    open_capped(path)?
        .take(MAX_ARCHIVE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    if buf.len() as u64 > MAX_ARCHIVE {
        return Err(Error::TooLarge {
            what: path.display().to_string(),
            limit: MAX_ARCHIVE,
        });
    }
    Ok(buf)
}

/// The entries of the tar.gz in `reader`; `what` names it in errors.
pub fn entries(reader: impl Read, what: &str) -> Result<Vec<Entry>> {
    let bad = |m: String| Error::Archive(format!("{what}: {m}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut out: Vec<Entry> = Vec::new();
    let iter = archive
        .entries()
        .map_err(|e| bad(format!("not a tar.gz archive: {e}")))?;
    for (n, item) in iter.enumerate() {
        if n >= MAX_HEADERS {
            return Err(bad(format!("more than {MAX_HEADERS} archive members")));
        }
        let mut item = item.map_err(|e| bad(format!("not a readable tar.gz archive: {e}")))?;
        let path = item
            .path()
            .map_err(|e| bad(format!("member #{n} has an unreadable name: {e}")))?
            .into_owned();
        let shown = path.display().to_string();
        use tar::EntryType as T;
        match item.header().entry_type() {
            T::Directory | T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => {
                continue
            }
            T::Regular | T::Continuous => {}
            other => {
                return Err(bad(format!(
                "{shown:?} is a {other:?}, not a regular file: manifests hold regular files only"
            )))
            }
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad(format!("{shown:?} has no usable file name")))?
            .to_string();
        if out.iter().any(|e| e.name == name) {
            return Err(bad(format!("two members are named {name:?}")));
        }
        if out.len() >= MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} files")));
        }
        let size = item.size();
        if size > MAX_ENTRY_SIZE {
            return Err(bad(format!("{name} is larger than {MAX_ENTRY_SIZE} bytes")));
        }
        let mut hasher = Sha256::new();
        let copied = std::io::copy(&mut (&mut item).take(size), &mut HashWriter(&mut hasher))
            .map_err(|e| bad(format!("reading {name}: {e}")))?;
        if copied != size {
            return Err(bad(format!(
                "{name} is truncated ({copied} of {size} bytes)"
            )));
        }
        out.push(Entry {
            name,
            sha256: mig_protocol::Sha256::from_digest(&hasher.finalize()),
            size,
        });
    }
    Ok(out)
}

/// The entries of the archive at `path`.
pub fn entries_of_file(path: &Path) -> Result<Vec<Entry>> {
    entries(open_capped(path)?, &path.display().to_string())
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every difference between the entries a statement lists and those of a local archive, one
/// line each naming the entry; empty when they are the same set.
pub fn differences(statement: &[Entry], local: &[Entry]) -> Vec<String> {
    let signed: BTreeMap<&str, &Entry> = statement.iter().map(|e| (e.name.as_str(), e)).collect();
    let here: BTreeMap<&str, &Entry> = local.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut out = Vec::new();
    for (name, s) in &signed {
        match here.get(name) {
            None => out.push(format!(
                "{name}: in the statement, not in the local archive"
            )),
            Some(l) if l.sha256 != s.sha256 => out.push(format!(
                "{name}: sha256 differs (statement {}, local archive {})",
                s.sha256, l.sha256
            )),
            Some(l) if l.size != s.size => out.push(format!(
                "{name}: size differs (statement {}, local archive {})",
                s.size, l.size
            )),
            Some(_) => {}
        }
    }
    for name in here.keys().filter(|n| !signed.contains_key(*n)) {
        out.push(format!(
            "{name}: in the local archive, not in the statement"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        dir.set_mode(0o755);
        b.append_data(&mut dir, "bundle/", std::io::empty())
            .unwrap();
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, format!("bundle/{name}"), *data)
                .unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn entries_are_regular_files_by_base_name_in_order() {
        let e = entries(
            &tar_gz(&[("mig-agent", b"agent"), ("configuration", b"")])[..],
            "t",
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].name, "mig-agent");
        assert_eq!(e[0].size, 5);
        // sha256("agent")
        assert_eq!(
            e[0].sha256,
            "d4f0bc5a29de06b510f9aa428f1eedba926012b591fef7a518e776a7c9bd1824"
        );
        assert_eq!(
            e[1].sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn links_duplicates_and_junk_are_refused() {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "bundle/mig-agent", "/etc/shadow")
            .unwrap();
        let data = b.into_inner().unwrap().finish().unwrap();
        let e = entries(&data[..], "t").unwrap_err().to_string();
        assert!(
            e.contains("mig-agent") && e.contains("not a regular file"),
            "{e}"
        );

        let dup = tar_gz(&[("cacert", b"a"), ("cacert", b"b")]);
        let e = entries(&dup[..], "t").unwrap_err().to_string();
        assert!(e.contains("two members are named \"cacert\""), "{e}");

        let e = entries(&b"not gzip at all"[..], "x.tar.gz")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.tar.gz"), "{e}");
    }

    #[test]
    fn every_difference_names_its_entry() {
        let a = entries(
            &tar_gz(&[("mig-agent", b"v1"), ("cacert", b"ca"), ("agentkey", b"k")])[..],
            "a",
        )
        .unwrap();
        let b = entries(
            &tar_gz(&[("mig-agent", b"v2"), ("cacert", b"ca"), ("agentcert", b"c")])[..],
            "b",
        )
        .unwrap();
        assert!(differences(&a, &a).is_empty());
        let d = differences(&a, &b);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(
            d.iter().any(|l| l.starts_with("mig-agent: sha256 differs")),
            "{d:?}"
        );
        assert!(
            d.iter()
                .any(|l| l.starts_with("agentkey: in the statement, not")),
            "{d:?}"
        );
        assert!(
            d.iter()
                .any(|l| l.starts_with("agentcert: in the local archive, not")),
            "{d:?}"
        );
    }
}
