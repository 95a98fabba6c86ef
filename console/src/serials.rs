//! The highest statement serial this console signed for each API (docs/design.md §4.6), kept in
//! `~/.mig_console_state`, one `<serial> <API URL>` line per API. `sign` refuses a statement whose
//! serial lies more than `mig_protocol::serial::MAX_SERIAL_STEP` above it: the API picks the
//! serial, and an administrator led to sign an enormous one would lift every loader's floor for
//! good. The bound is the loader's own (`Serial::check_step`), so what this console signs, a
//! loader that installed the console's last one accepts.

use crate::error::{Error, Result};
use mig_protocol::statement::Serial;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The state file's name under `$HOME`.
pub const STATE_FILE: &str = ".mig_console_state";
/// A state file larger than this is refused (a line is an URL and a number).
const MAX_STATE_BYTES: u64 = 1 << 20;

/// What `check_step` calls the console's floor in its refusal.
const WHOSE: &str = "console's highest signed";

/// `~/.mig_console_state`.
pub fn default_path() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(STATE_FILE))
        .ok_or_else(|| {
            Error::Usage(format!(
                "HOME is not set: the console keeps the highest serial it signed for each API in \
                 ~/{STATE_FILE} and signs nothing without it"
            ))
        })
}

/// The serials of the state file, as read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    apis: Vec<(String, Serial)>,
}

impl Seen {
    /// Reads `path`; a missing file is an empty one. A line that is not `<serial> <URL>` stops
    /// the signing (fail closed), naming the file and the line.
    pub fn load(path: &Path) -> Result<Seen> {
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Seen::default()),
            Err(e) => return Err(Error::io("open", path, e)),
        };
        let mut text = String::new();
        f.take(MAX_STATE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::io("read", path, e))?;
        if text.len() as u64 > MAX_STATE_BYTES {
            return Err(Error::TooLarge {
                what: path.display().to_string(),
                limit: MAX_STATE_BYTES,
            });
        }
        let mut apis = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let parsed = line
                .split_once(' ')
                .and_then(|(serial, url)| Some((serial.parse::<u64>().ok()?, url)))
                .filter(|(_, url)| !url.is_empty() && !url.contains(char::is_whitespace));
            let Some((serial, url)) = parsed else {
                return Err(Error::Usage(format!(
                    "{} line {}: not \"<serial> <API URL>\"; remove the line to accept any \
                     serial from that API once",
                    path.display(),
                    n + 1
                )));
            };
            apis.push((url.to_string(), Serial::new(serial)));
        }
        Ok(Seen { apis })
    }

    /// The highest serial signed for `api` (`Serial::NONE` when none was).
    pub fn highest(&self, api: &str) -> Serial {
        self.apis
            .iter()
            .filter(|(u, _)| u == api)
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(Serial::NONE)
    }

    /// Refuses `serial` when it lies more than the bound above the highest signed for `api`,
    /// saying where that floor is kept (`path`) and how to accept the serial all the same.
    pub fn check(&self, path: &Path, api: &str, serial: Serial) -> Result<()> {
        serial.check_step(self.highest(api), WHOSE).map_err(|e| {
            Error::Usage(format!(
                "refusing to sign: {e}; {} keeps the highest serial this console signed for \
                 {api}: only if this serial is right, remove that line to accept it",
                path.display()
            ))
        })
    }

    /// Records `serial` as signed for `api` when it is higher than the highest, writing `path`
    /// whole (mode 0600, synced, renamed into place) so a crash leaves the old file or the new.
    pub fn record(&mut self, path: &Path, api: &str, serial: Serial) -> Result<()> {
        if serial <= self.highest(api) {
            return Ok(());
        }
        self.apis.retain(|(u, _)| u != api);
        self.apis.push((api.to_string(), serial));
        let mut text = String::new();
        for (url, s) in &self.apis {
            text.push_str(&format!("{s} {url}\n"));
        }
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io("write", path, e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig_protocol::serial::MAX_SERIAL_STEP;

    const API: &str = "https://mig-api.example.net:1664/api/v2/";

    #[test]
    fn a_serial_far_above_the_highest_signed_for_that_api_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let mut seen = Seen::load(&path).unwrap();
        // Nothing signed yet: a long-running API's serial is taken as it is.
        seen.check(&path, API, Serial::new(500_000)).unwrap();
        seen.record(&path, API, Serial::new(500_000)).unwrap();
        seen.record(&path, "https://other/api/v2/", Serial::new(3))
            .unwrap();
        let seen = Seen::load(&path).unwrap();
        assert_eq!(seen.highest(API), Serial::new(500_000));
        seen.check(&path, API, Serial::new(500_000 + MAX_SERIAL_STEP))
            .unwrap();
        let e = seen
            .check(&path, API, Serial::new(500_001 + MAX_SERIAL_STEP))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("more than 100000 above the console's highest signed serial 500000"),
            "{e}"
        );
        // Another API's serials are its own.
        assert!(seen
            .check(
                &path,
                "https://other/api/v2/",
                Serial::new(4 + MAX_SERIAL_STEP)
            )
            .is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_lower_serial_keeps_the_highest_and_a_bad_line_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let mut seen = Seen::default();
        seen.record(&path, API, Serial::new(9)).unwrap();
        seen.record(&path, API, Serial::new(7)).unwrap();
        assert_eq!(Seen::load(&path).unwrap().highest(API), Serial::new(9));
        std::fs::write(&path, format!("9 {API}\nnine {API}\n")).unwrap();
        let e = Seen::load(&path).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
