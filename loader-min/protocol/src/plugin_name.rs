//! A targeting plugin's name: what administrators type, what the target language calls and what
//! the URL `plugins/<name>` carries. One rule for mig-api's routes, its plugin registry and
//! mig-console, so a bad name is refused the same way everywhere and before any upload.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest plugin name.
pub const MAX_PLUGIN_NAME: usize = 64;

/// 1 to 64 of `a-z 0-9 _ -`, starting with a letter or a digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PluginName(String);

impl PluginName {
    pub fn parse(name: &str) -> Result<Self> {
        let ok = name.len() <= MAX_PLUGIN_NAME
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(PluginName(name.to_string()))
        } else {
            let shown: String = name.chars().take(80).collect();
            Err(Error::Value(format!(
                "plugin name {shown:?} must be 1 to {MAX_PLUGIN_NAME} of a-z, 0-9, '_' and '-', starting with a letter or digit"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PluginName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<PluginName> for String {
    fn from(n: PluginName) -> String {
        n.0
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule() {
        for ok in ["semver", "a", "0day", "my-plugin_2", &"x".repeat(64)] {
            assert!(PluginName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Semver",
            "_x",
            "-x",
            "a b",
            "a/b",
            "../x",
            "é",
            &"x".repeat(65),
        ] {
            let e = PluginName::parse(bad).unwrap_err().to_string();
            assert!(e.contains("a-z, 0-9"), "{bad}: {e}");
        }
    }
}
