//! Stage one file: `GET loader/files/<sha256>` streamed into `<target>.mig-new` next to its target
//! (same filesystem, so the swap is a rename), hashed while it streams, never past the signed size
//! (docs/design.md §4.10: "the signed size for files"), resumed with `Range` after a broken connection,
//! fsynced, with the dictionary's mode.

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::log;
use mig_http::{Client, Method};
use mig_protocol::loader::{LoaderKey, FILES_PATH, LOADER_KEY_HEADER};
use mig_protocol::statement::Entry;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Why one attempt ended early.
enum Broken {
    /// The connection failed; what was received is kept and the next attempt resumes.
    Resumable(Error),
    /// The body is wrong or the server refused: give up on this file.
    Fatal(Error),
}

/// Download state carried across attempts: bytes on disk and their running hash.
struct Partial {
    file: File,
    written: u64,
    hasher: Sha256,
}

impl Partial {
    fn restart(&mut self, staged: &Path) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .map_err(|e| Error::io("truncate", staged, e))?;
        self.written = 0;
        self.hasher = Sha256::new();
        Ok(())
    }
}

/// Downloads and verifies `entry` into `staged` (mode `mode`). On any error the staged file is
/// removed.
pub fn stage(
    api: &Client,
    key: &LoaderKey,
    entry: &Entry,
    staged: &Path,
    mode: u32,
    limits: &Limits,
) -> Result<()> {
    let r = stage_inner(api, key, entry, staged, mode, limits);
    if r.is_err() {
        let _ = std::fs::remove_file(staged);
    }
    r
}

fn stage_inner(
    api: &Client,
    key: &LoaderKey,
    entry: &Entry,
    staged: &Path,
    mode: u32,
    limits: &Limits,
) -> Result<()> {
    let path = format!("{FILES_PATH}{}", entry.sha256);
    let url = api.url(&path);
    log::step(format!("fetching file from {url}"));
    if let Some(dir) = staged.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(dir)
            .map_err(|e| Error::io("create directory", dir, e))?;
    }
    let file = crate::fsutil::create_with_mode(
        OpenOptions::new().write(true).create(true).truncate(true),
        mode,
    )
    .open(staged)
    .map_err(|e| Error::io("create staged file", staged, e))?;
    let mut part = Partial {
        file,
        written: 0,
        hasher: Sha256::new(),
    };
    let mut attempt = 0;
    let mut stalled = 0;
    loop {
        attempt += 1;
        let before = part.written;
        let target = Target {
            api,
            key,
            entry,
            path: &path,
            url: &url,
            staged,
            limits,
        };
        match fetch_once(&target, &mut part) {
            Ok(()) => break,
            Err(Broken::Fatal(e)) => return Err(e),
            Err(Broken::Resumable(e)) => {
                // Two attempts in a row without a byte mean the server is not coming back.
                stalled = if part.written == before {
                    stalled + 1
                } else {
                    0
                };
                if attempt >= limits.fetch_attempts || stalled >= 2 {
                    return Err(e);
                }
                log::step(format!(
                    "{e}; resuming at byte {} of {}",
                    part.written, entry.size
                ));
            }
        }
    }
    log::step("validating staged file");
    let got = mig_protocol::Sha256::from_digest(&part.hasher.finalize());
    if got != entry.sha256 {
        return Err(Error::Mismatch {
            what: format!("{} from {url}", entry.name),
            reason: format!(
                "sha256 is {got}, the signed statement says {}: tampered or corrupted body",
                entry.sha256
            ),
        });
    }
    part.file
        .sync_all()
        .map_err(|e| Error::io("fsync", staged, e))?;
    // The umask may have narrowed the mode given at creation.
    crate::fsutil::set_mode(staged, mode)?;
    Ok(())
}

/// A body that would outgrow its signed size; `what` says which part of the answer showed it.
fn longer(entry: &Entry, url: &str, what: std::fmt::Arguments<'_>) -> Broken {
    Broken::Fatal(Error::Mismatch {
        what: format!("{} from {url}", entry.name),
        reason: format!(
            "{what} is longer than its signed size of {} bytes, aborted",
            entry.size
        ),
    })
}

/// One request, from `part.written` on.
/// What every attempt at one file shares.
struct Target<'a> {
    api: &'a Client,
    key: &'a LoaderKey,
    entry: &'a Entry,
    path: &'a str,
    url: &'a str,
    staged: &'a Path,
    limits: &'a Limits,
}

fn fetch_once(t: &Target<'_>, part: &mut Partial) -> std::result::Result<(), Broken> {
    let Target {
        api,
        key,
        entry,
        path,
        url,
        staged,
        limits,
    } = *t;
    let range = format!("bytes={}-", part.written);
    let mut headers = vec![(LOADER_KEY_HEADER, key.as_str())];
    if part.written > 0 {
        headers.push(("Range", range.as_str()));
    }
    let resp = api
        .request(Method::Get, path, &headers, None)
        .map_err(|e| Broken::Resumable(e.into()))?;
    match resp.status {
        206 if part.written > 0 => {
            let cr = resp.header("Content-Range").unwrap_or_default();
            if content_range_start(&cr) != Some(part.written) {
                return Err(Broken::Fatal(Error::Http(mig_http::Error::Http {
                    url: url.to_string(),
                    reason: format!("asked for {range}, got Content-Range {cr:?}"),
                })));
            }
        }
        200 => {
            if part.written > 0 {
                log::step("server ignored the range, starting over");
                part.restart(staged).map_err(Broken::Fatal)?;
            }
        }
        _ => {
            return Err(Broken::Fatal(
                resp.error_for_status(limits.error_body)
                    .err()
                    .map(Error::from)
                    .unwrap_or_else(|| {
                        Error::Http(mig_http::Error::Http {
                            url: url.to_string(),
                            reason: "unexpected 206 to a request without Range".into(),
                        })
                    }),
            ))
        }
    }
    let remaining = entry.size - part.written;
    if let Some(len) = resp
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        if len > remaining {
            return Err(longer(
                entry,
                url,
                format_args!("Content-Length {len} from byte {}", part.written),
            ));
        }
    }
    // One byte more than allowed is read on purpose, to tell "too long" from "just right".
    let mut body = resp.into_reader(remaining + 1);
    let mut buf = vec![0u8; limits.io_buffer];
    loop {
        let n = match body.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Broken::Resumable(Error::Http(mig_http::Error::Http {
                    url: url.to_string(),
                    reason: format!("connection broken after {} bytes: {e}", part.written),
                })))
            }
        };
        if n == 0 {
            break;
        }
        if part.written + n as u64 > entry.size {
            return Err(longer(entry, url, format_args!("body")));
        }
        part.file
            .write_all(&buf[..n])
            .map_err(|e| Broken::Fatal(Error::io("write", staged, e)))?;
        part.hasher.update(&buf[..n]);
        part.written += n as u64;
    }
    if part.written < entry.size {
        return Err(Broken::Resumable(Error::Http(mig_http::Error::Http {
            url: url.to_string(),
            reason: format!(
                "connection closed after {} of {} bytes",
                part.written, entry.size
            ),
        })));
    }
    Ok(())
}

/// The first byte of `bytes N-M/T`.
fn content_range_start(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_parsed() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }
}
