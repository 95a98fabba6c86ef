//! `semver(VERSION, 'REQUIREMENT')`: true when VERSION satisfies every comparator of
//! REQUIREMENT, for example `semver(tags#>>'{agent_version}', '>=1.4.0, <2')`.
//!
//! - Versions follow Semantic Versioning 2.0.0 precedence: `MAJOR.MINOR.PATCH`, then
//!   `-pre.release` identifiers (numeric ones compare as numbers and sort before
//!   alphanumeric ones; a pre-release sorts before its release), `+build` ignored. A
//!   leading `v` is accepted. In REQUIREMENT, missing MINOR/PATCH count as 0 (`<2` is
//!   `<2.0.0`); VERSION must have all three.
//! - REQUIREMENT is comparators separated by commas or spaces, all of which must hold:
//!   `=`, `==`, `!=`, `<`, `<=`, `>`, `>=` followed by a version (no operator means `=`).
//! - A VERSION that is not a version (a loader reported garbage) or NULL gives unknown
//!   (no match, and `NOT semver(…)` is no match too); a bad REQUIREMENT is an error, since
//!   the administrator wrote it.
#![deny(unsafe_code)]

use std::cmp::Ordering;

use mig_plugin_sdk::{CallResult, Loader, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Num(u64),
    Alpha(String),
}

/// A parsed version: numbers and pre-release identifiers (build metadata dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    core: [u64; 3],
    pre: Vec<Ident>,
}

impl Version {
    /// Parses `1.2.3`, `v1.2.3`, `1.2.3-rc.1+build.5`; with `partial`, also `1.2` and `1`.
    pub fn parse(s: &str, partial: bool) -> Result<Version, String> {
        let bad = |why: &str| format!("{s:?} is not a semantic version ({why})");
        let t = s.trim();
        let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
        let t = t.split_once('+').map_or(t, |(v, _build)| v);
        let (core, pre) = match t.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (t, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() > 3 || (!partial && parts.len() != 3) {
            return Err(bad("expected MAJOR.MINOR.PATCH"));
        }
        let mut nums = [0u64; 3];
        for (i, p) in parts.iter().enumerate() {
            nums[i] =
                number(p).ok_or_else(|| bad("version numbers are digits without leading zeros"))?;
        }
        let pre = match pre {
            None => Vec::new(),
            Some(p) => p
                .split('.')
                .map(|id| {
                    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    {
                        Err(bad("pre-release identifiers are [0-9A-Za-z-]+"))
                    } else if id.bytes().all(|b| b.is_ascii_digit()) {
                        number(id)
                            .map(Ident::Num)
                            .ok_or_else(|| bad("numeric identifiers have no leading zeros"))
                    } else {
                        Ok(Ident::Alpha(id.to_string()))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Version { core: nums, pre })
    }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.core
            .cmp(&other.core)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let o = match (a, b) {
                            (Ident::Num(x), Ident::Num(y)) => x.cmp(y),
                            (Ident::Num(_), Ident::Alpha(_)) => Ordering::Less,
                            (Ident::Alpha(_), Ident::Num(_)) => Ordering::Greater,
                            (Ident::Alpha(x), Ident::Alpha(y)) => x.cmp(y),
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Parses a requirement into (operator, version) pairs.
pub fn requirement(s: &str) -> Result<Vec<(&'static str, Version)>, String> {
    let mut out = Vec::new();
    let mut words = s
        .split([',', ' ', '\t'])
        .filter(|w| !w.is_empty())
        .peekable();
    while let Some(w) = words.next() {
        let op = ["==", "!=", "<=", ">=", "=", "<", ">"]
            .into_iter()
            .find(|op| w.starts_with(op))
            .unwrap_or("");
        let rest = &w[op.len()..];
        // Allow a space between the operator and the version: ">= 1.2".
        let version = if rest.is_empty() && !op.is_empty() {
            words
                .next()
                .ok_or_else(|| format!("requirement {s:?}: {op} needs a version"))?
        } else {
            rest
        };
        let op = if op.is_empty() || op == "==" { "=" } else { op };
        out.push((
            op,
            Version::parse(version, true).map_err(|e| format!("requirement {s:?}: {e}"))?,
        ));
    }
    if out.is_empty() {
        return Err("semver: the requirement is empty".into());
    }
    Ok(out)
}

/// The plugin function.
pub fn semver(_loader: &Loader, args: &[Value]) -> CallResult {
    let [version, req] = args else {
        return Err(format!(
            "semver takes 2 arguments (VERSION, 'REQUIREMENT'), got {}",
            args.len()
        ));
    };
    if req.is_null() {
        return Ok(None);
    }
    let req = requirement(
        req.as_str()
            .ok_or("semver: the requirement must be a string")?,
    )?;
    let Some(version) = version.as_str().and_then(|v| Version::parse(v, false).ok()) else {
        return Ok(None);
    };
    Ok(Some(req.iter().all(|(op, want)| {
        let o = version.cmp(want);
        match *op {
            "=" => o == Ordering::Equal,
            "!=" => o != Ordering::Equal,
            "<" => o == Ordering::Less,
            "<=" => o != Ordering::Greater,
            ">" => o == Ordering::Greater,
            _ => o != Ordering::Less,
        }
    })))
}

mig_plugin_sdk::functions! {
    name: "semver",
    functions: { "semver" => semver },
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig_plugin_sdk::serde_json::json;

    fn sv(v: &str, req: &str) -> Option<bool> {
        semver(&Loader::default(), &[json!(v), json!(req)]).unwrap()
    }

    #[test]
    fn precedence_follows_semver_2() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
            "10.0.0",
        ];
        for w in order.windows(2) {
            assert!(
                Version::parse(w[0], false).unwrap() < Version::parse(w[1], false).unwrap(),
                "{} < {}",
                w[0],
                w[1]
            );
        }
        assert_eq!(
            Version::parse("1.2.3+build.7", false).unwrap(),
            Version::parse("v1.2.3", false).unwrap()
        );
        assert_eq!(
            Version::parse("2", true).unwrap(),
            Version::parse("2.0.0", false).unwrap()
        );
        assert!(Version::parse("2", false).is_err());
    }

    #[test]
    fn requirements() {
        assert_eq!(sv("1.4.2", ">=1.4.0, <2"), Some(true));
        assert_eq!(sv("2.0.0", ">=1.4.0, <2"), Some(false));
        assert_eq!(sv("2.0.0-rc.1", "<2"), Some(true));
        assert_eq!(sv("1.4.0", ">= 1.4"), Some(true));
        assert_eq!(sv("1.4.0", "1.4.0"), Some(true));
        assert_eq!(sv("1.4.0", "!=1.4.0"), Some(false));
        assert_eq!(sv("1.10.0", ">1.9.0"), Some(true));
    }

    #[test]
    fn garbage_version_is_unknown_bad_requirement_is_error() {
        assert_eq!(sv("20160512-0.9fe5f23.dev", ">=1"), None);
        assert_eq!(sv("1.02.3", ">=1"), None);
        assert_eq!(
            semver(&Loader::default(), &[Value::Null, json!(">=1")]),
            Ok(None)
        );
        assert!(semver(&Loader::default(), &[json!("1.0.0"), json!(">=x")]).is_err());
        assert!(semver(&Loader::default(), &[json!("1.0.0"), json!("")]).is_err());
        assert!(semver(&Loader::default(), &[json!("1.0.0")]).is_err());
    }
}
