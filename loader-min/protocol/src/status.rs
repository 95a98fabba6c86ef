//! The statuses the API stores and shows, as types: a status read from a request, the database or
//! a record is parsed once here, so a misspelt status is an error that names the valid ones
//! instead of a comparison that is silently false.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares a status enum with its wire spellings, parsing, display and serde as a string.
macro_rules! status {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every status, in the order the API documents them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling on the wire and in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses a wire spelling; the error lists the valid ones.
            pub fn parse(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::Value(format!(
                        "{} status {other:?} must be one of {}",
                        $what,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::parse(&s)
            }
        }

        impl From<$name> for &'static str {
            fn from(s: $name) -> &'static str {
                s.as_str()
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }
    };
}

status!(
    /// A manifest's life: made `staged`, `active` once enough signatures verified, `halted` when
    /// its halt rule tripped (offered only to loaders already on it, until resumed), `disabled`
    /// for good.
    ManifestStatus, "manifest", {
        Staged = "staged",
        Active = "active",
        /// Kept by the loaders on it; everyone else gets the next older match.
        Halted = "halted",
        /// Final: a disabled manifest is never offered again.
        Disabled = "disabled",
    }
);

status!(
    /// Whether an investigator's key and API key are honoured.
    InvestigatorStatus, "investigator", {
        Active = "active",
        Disabled = "disabled",
    }
);

status!(
    /// Whether a loader's requests are served.
    LoaderStatus, "loader", {
        Enabled = "enabled",
        Disabled = "disabled",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_typos_name_the_choices() {
        for s in ManifestStatus::ALL {
            assert_eq!(ManifestStatus::parse(s.as_str()).unwrap(), *s);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<ManifestStatus>(&json).unwrap(), *s);
        }
        let e = ManifestStatus::parse("actve").unwrap_err().to_string();
        assert!(e.contains("staged, active, halted, disabled"), "{e}");
        assert!(serde_json::from_str::<InvestigatorStatus>("\"Active\"").is_err());
        assert_eq!(
            LoaderStatus::parse("enabled").unwrap(),
            LoaderStatus::Enabled
        );
    }
}
