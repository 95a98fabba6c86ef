//! The signed statement: made once as exact bytes by the API, verified first and parsed second.
//! docs/design.md §3.3: `{"format":1,"serial","name","platform":{"os","arch"},"issued","expires","entries":[{"name","sha256","size"}]}`

use crate::dictionary::DictName;
use crate::error::{Error, Result};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The only statement format this library speaks.
pub const FORMAT: u32 = 1;
/// The largest statement accepted (bytes); a real one is well under 2 KiB.
pub const MAX_STATEMENT_BYTES: usize = 64 * 1024;
/// The most entries a statement may list.
pub const MAX_ENTRIES: usize = 64;
/// The largest file an entry may describe.
pub const MAX_ENTRY_SIZE: u64 = 1 << 30;
/// Clock skew tolerated between the API and the host when checking `issued` and `expires`.
pub const CLOCK_SKEW_SECS: u64 = 300;

pub use crate::serial::Serial;
pub use crate::sha256::{is_sha256_hex, Sha256};

/// Operating system and architecture, in Go's spellings (`linux`, `amd64`) as MIG reports them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    pub os: String,
    pub arch: String,
}

impl Platform {
    /// The platform this binary was built for, in Go's spellings.
    pub fn host() -> Self {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        Platform {
            os: os.to_string(),
            arch: arch.to_string(),
        }
    }
}

/// Spellings administrators type from other systems (Rust, Debian, uname), with Go's word for
/// each: a manifest for `aarch64` would match no loader, so it is refused with the right name.
const NOT_GO: &[(&str, &str)] = &[
    ("x86_64", "amd64"),
    ("x86-64", "amd64"),
    ("x64", "amd64"),
    ("aarch64", "arm64"),
    ("armv8", "arm64"),
    ("armhf", "arm"),
    ("armel", "arm"),
    ("armv7", "arm"),
    ("armv7l", "arm"),
    ("i386", "386"),
    ("i686", "386"),
    ("x86", "386"),
    ("macos", "darwin"),
    ("osx", "darwin"),
];

impl Platform {
    /// Checks that both words are in Go's GOOS/GOARCH spelling (lower-case letters, digits and
    /// `_`, at most 32 bytes, none of the other systems' words of [`NOT_GO`]).
    pub fn check_spelling(&self) -> Result<(), Error> {
        for (what, word) in [("os", &self.os), ("arch", &self.arch)] {
            if let Some((_, go)) = NOT_GO.iter().find(|(other, _)| other == word) {
                return Err(Error::Value(format!(
                    "platform {what} {word:?} is not Go's spelling: write {go:?} (platforms are \
                     Go's GOOS/GOARCH, as loaders report them: linux/amd64, linux/arm64, linux/arm)"
                )));
            }
            let ok = !word.is_empty()
                && word.len() <= 32
                && word
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
            if !ok {
                return Err(Error::Value(format!(
                    "platform {what} {word:?} is not Go's GOOS/GOARCH spelling, e.g. linux/amd64 \
                     or linux/arm64"
                )));
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)
    }
}

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub sha256: Sha256,
    pub size: u64,
}

impl Entry {
    /// The dictionary name of this entry, or `None` for a name this loader does not manage.
    pub fn dict_name(&self) -> Option<DictName> {
        DictName::parse(&self.name)
    }
}

/// The statement administrators sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub format: u32,
    pub serial: Serial,
    pub name: String,
    pub platform: Platform,
    pub issued: Timestamp,
    pub expires: Timestamp,
    pub entries: Vec<Entry>,
}

/// What the host expects of a statement, fixed at the start of a run.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub now: Timestamp,
    pub platform: Platform,
    /// The highest serial installed so far (0 when none).
    pub installed: Serial,
}

impl Statement {
    /// The exact bytes that are signed. The API calls this once, stores the bytes, and never
    /// re-serialises; everybody else verifies those stored bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.validate()?;
        serde_json::to_vec(self).map_err(|e| Error::Statement(e.to_string()))
    }

    /// Parses statement bytes. Call only after the signatures over these bytes were verified.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_STATEMENT_BYTES {
            return Err(Error::TooLarge {
                what: "statement".into(),
                limit: MAX_STATEMENT_BYTES as u64,
            });
        }
        let st: Statement =
            serde_json::from_slice(bytes).map_err(|e| Error::Statement(e.to_string()))?;
        st.validate()?;
        Ok(st)
    }

    /// Structural checks that do not depend on the host.
    pub fn validate(&self) -> Result<()> {
        if self.format != FORMAT {
            return Err(Error::Statement(format!(
                "format {} is not {FORMAT}",
                self.format
            )));
        }
        if self.entries.len() > MAX_ENTRIES {
            return Err(Error::Statement(format!(
                "{} entries, at most {MAX_ENTRIES}",
                self.entries.len()
            )));
        }
        if self.expires <= self.issued {
            return Err(Error::Statement(format!(
                "expires {} is not after issued {}",
                self.expires, self.issued
            )));
        }
        for (i, e) in self.entries.iter().enumerate() {
            if e.size > MAX_ENTRY_SIZE {
                return Err(Error::Statement(format!(
                    "entry {:?}: size {} above {MAX_ENTRY_SIZE}",
                    e.name, e.size
                )));
            }
            if self.entries[..i].iter().any(|o| o.name == e.name) {
                return Err(Error::Statement(format!("entry {:?} listed twice", e.name)));
            }
        }
        Ok(())
    }

    /// docs/design.md §4.4–§4.6: freeze, wrong-software and rollback protection, each with its own error.
    pub fn check(&self, exp: &Expectations) -> Result<()> {
        if self.expires.plus(CLOCK_SKEW_SECS) < exp.now {
            return Err(Error::Expired {
                expires: self.expires.to_string(),
                now: exp.now.to_string(),
            });
        }
        if self.issued > exp.now.plus(CLOCK_SKEW_SECS) {
            return Err(Error::NotYetValid {
                issued: self.issued.to_string(),
                now: exp.now.to_string(),
            });
        }
        if self.platform != exp.platform {
            return Err(Error::WrongPlatform {
                statement: self.platform.to_string(),
                host: exp.platform.to_string(),
            });
        }
        if self.serial < exp.installed {
            return Err(Error::OlderSerial {
                offered: self.serial.get(),
                installed: exp.installed.get(),
            });
        }
        self.serial.check_step(exp.installed, "installed")
    }

    /// The entry for a dictionary name, if the statement lists it.
    pub fn entry(&self, name: DictName) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_must_be_spelt_as_go_does() {
        let p = |os: &str, arch: &str| Platform {
            os: os.into(),
            arch: arch.into(),
        };
        for ok in [
            p("linux", "amd64"),
            p("linux", "arm64"),
            p("linux", "arm"),
            p("darwin", "arm64"),
        ] {
            assert!(ok.check_spelling().is_ok(), "{ok}");
        }
        let e = p("linux", "aarch64")
            .check_spelling()
            .unwrap_err()
            .to_string();
        assert!(e.contains("write \"arm64\""), "{e}");
        let e = p("linux", "armhf")
            .check_spelling()
            .unwrap_err()
            .to_string();
        assert!(e.contains("write \"arm\""), "{e}");
        let e = p("macos", "amd64")
            .check_spelling()
            .unwrap_err()
            .to_string();
        assert!(e.contains("os \"macos\""), "{e}");
        for bad in [p("Linux", "amd64"), p("linux", ""), p("linux", "arm/64")] {
            assert!(bad.check_spelling().is_err(), "{bad}");
        }
        // The host's own platform is always acceptable.
        Platform::host().check_spelling().unwrap();
    }

    fn sample(serial: u64) -> Statement {
        Statement {
            format: FORMAT,
            serial: Serial::new(serial),
            name: "m".into(),
            platform: Platform {
                os: "linux".into(),
                arch: "amd64".into(),
            },
            issued: Timestamp(1_000_000),
            expires: Timestamp(2_000_000),
            entries: vec![Entry {
                name: "mig-agent".into(),
                sha256: Sha256::parse(&"a".repeat(64)).unwrap(),
                size: 3,
            }],
        }
    }

    fn expect(now: u64, installed: u64) -> Expectations {
        Expectations {
            now: Timestamp(now),
            platform: Platform {
                os: "linux".into(),
                arch: "amd64".into(),
            },
            installed: Serial::new(installed),
        }
    }

    #[test]
    fn bytes_round_trip_exactly() {
        let b = sample(7).to_bytes().unwrap();
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"format":1,"serial":7,"name":"m","platform":{"os":"linux","arch":"amd64"},"issued":"1970-01-12T13:46:40Z","expires":"1970-01-24T03:33:20Z","entries":[{"name":"mig-agent","sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":3}]}"#
        );
        assert_eq!(Statement::parse(&b).unwrap(), sample(7));
    }

    #[test]
    fn expired_statement_is_refused() {
        let e = sample(7)
            .check(&expect(2_000_000 + CLOCK_SKEW_SECS + 1, 0))
            .unwrap_err();
        assert!(matches!(e, Error::Expired { .. }), "{e}");
        assert!(e.to_string().contains("expired"));
        sample(7)
            .check(&expect(2_000_000 + CLOCK_SKEW_SECS, 0))
            .unwrap();
    }

    #[test]
    fn not_yet_valid_statement_is_refused() {
        let e = sample(7)
            .check(&expect(1_000_000 - CLOCK_SKEW_SECS - 1, 0))
            .unwrap_err();
        assert!(matches!(e, Error::NotYetValid { .. }), "{e}");
        assert!(e.to_string().contains("not yet valid"));
    }

    #[test]
    fn wrong_platform_is_refused() {
        let mut exp = expect(1_500_000, 0);
        exp.platform.arch = "arm64".into();
        let e = sample(7).check(&exp).unwrap_err();
        assert!(matches!(e, Error::WrongPlatform { .. }), "{e}");
        assert!(e.to_string().contains("linux/amd64"));
    }

    #[test]
    fn older_serial_is_refused_and_same_serial_is_not() {
        let e = sample(7).check(&expect(1_500_000, 8)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::OlderSerial {
                    offered: 7,
                    installed: 8
                }
            ),
            "{e}"
        );
        sample(7).check(&expect(1_500_000, 7)).unwrap();
    }

    #[test]
    fn a_serial_too_far_above_the_installed_one_is_refused_and_no_floor_bounds_nothing() {
        let at = sample;
        let step = crate::serial::MAX_SERIAL_STEP;
        at(8 + step).check(&expect(1_500_000, 8)).unwrap();
        let e = at(9 + step).check(&expect(1_500_000, 8)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::SerialJump {
                    floor: 8,
                    whose: "installed",
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("is more than 100000 above the installed serial 8"),
            "{e}"
        );
        at(u64::MAX).check(&expect(1_500_000, 0)).unwrap();
        at(u64::MAX)
            .check(&expect(1_500_000, u64::MAX - 1))
            .unwrap();
    }

    #[test]
    fn malformed_statements_are_refused() {
        let upper = String::from_utf8(sample(1).to_bytes().unwrap())
            .unwrap()
            .replace(&"a".repeat(64), &"A".repeat(64));
        let e = Statement::parse(upper.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("64 lower-case hex"), "{e}");
        let mut s = sample(1);
        s.entries.push(s.entries[0].clone());
        assert!(s.to_bytes().unwrap_err().to_string().contains("twice"));
        let b = br#"{"format":2,"serial":1,"name":"m","platform":{"os":"linux","arch":"amd64"},"issued":"1970-01-12T13:46:40Z","expires":"1970-01-24T03:33:20Z","entries":[]}"#;
        assert!(Statement::parse(b)
            .unwrap_err()
            .to_string()
            .contains("format 2"));
        let b = br#"{"format":1,"serial":1,"extra":1,"name":"m","platform":{"os":"linux","arch":"amd64"},"issued":"1970-01-12T13:46:40Z","expires":"1970-01-24T03:33:20Z","entries":[]}"#;
        assert!(Statement::parse(b).is_err());
    }
}
