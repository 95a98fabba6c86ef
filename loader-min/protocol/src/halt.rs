//! A manifest's halt rule (`--halt-after 5%` or `--halt-after 3`): when it trips, the API stops
//! offering the manifest to loaders that are not on it yet (docs/design.md §6.4). The rule and
//! its arithmetic live here once, so the API that applies it and the console that shows it agree.

use crate::error::{Error, Result};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Loaders that must have reported before a percentage can trip, when the rule does not say.
pub const DEFAULT_MIN_REPORTS: u64 = 20;
/// Largest count a rule takes (and largest `min`): far beyond any fleet, small enough that the
/// arithmetic below never overflows.
pub const MAX_LOADERS: u64 = 1_000_000_000;
/// A percentage in basis points: 1% is 100.
const BASIS: u64 = 10_000;

/// The threshold: failed plus rolled-back loaders, as a count or as a share of those that
/// reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HaltAfter {
    /// `3`: at this many.
    Loaders(u64),
    /// `5%`, `2.5%`, `0.25%`: at this share, in basis points (1..=10000).
    BasisPoints(u64),
}

impl HaltAfter {
    /// `3`, `5%`, `2.5%` (at most two decimals); the error says what is accepted.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::Value(format!(
                "halt rule {s:?} must be a number of loaders (1 to {MAX_LOADERS}) or a \
                 percentage above 0 and at most 100 with at most two decimals, like 3 or 5%"
            ))
        };
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let (whole, frac) = p.split_once('.').unwrap_or((p, ""));
            if whole.is_empty()
                || whole.len() > 3
                || frac.len() > 2
                || !whole
                    .bytes()
                    .chain(frac.bytes())
                    .all(|b| b.is_ascii_digit())
            {
                return Err(bad());
            }
            let whole: u64 = whole.parse().map_err(|_| bad())?;
            let frac: u64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
            let bp = whole * 100 + frac;
            if bp == 0 || bp > BASIS {
                return Err(bad());
            }
            Ok(HaltAfter::BasisPoints(bp))
        } else {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            match s.parse::<u64>() {
                Ok(n) if (1..=MAX_LOADERS).contains(&n) => Ok(HaltAfter::Loaders(n)),
                _ => Err(bad()),
            }
        }
    }
}

impl fmt::Display for HaltAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HaltAfter::Loaders(n) => write!(f, "{n}"),
            HaltAfter::BasisPoints(bp) => match bp % 100 {
                0 => write!(f, "{}%", bp / 100),
                r if r % 10 == 0 => write!(f, "{}.{}%", bp / 100, r / 10),
                r => write!(f, "{}.{r:02}%", bp / 100),
            },
        }
    }
}

impl TryFrom<String> for HaltAfter {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<HaltAfter> for String {
    fn from(h: HaltAfter) -> String {
        h.to_string()
    }
}

/// What the rule counts: among the loaders whose latest report is about the manifest (since it
/// was created or last resumed), those that reported at all and those that failed or rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HaltCounts {
    /// `installed`, `unchanged`, `failed` or `rolled_back`.
    pub reported: u64,
    /// `failed` or `rolled_back`.
    pub bad: u64,
}

/// A manifest's halt rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaltRule {
    pub after: HaltAfter,
    /// The rule waits until this many loaders reported; absent: [`DEFAULT_MIN_REPORTS`] for a
    /// percentage, none for a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
}

impl HaltRule {
    /// Checks `min`'s bound (the threshold was checked when it was parsed).
    pub fn check(&self) -> Result<()> {
        match self.min {
            Some(m) if m > MAX_LOADERS => Err(Error::Value(format!(
                "halt rule min {m} is above {MAX_LOADERS}"
            ))),
            _ => Ok(()),
        }
    }

    /// The reports the rule waits for.
    pub fn min_reports(&self) -> u64 {
        self.min.unwrap_or(match self.after {
            HaltAfter::Loaders(_) => 0,
            HaltAfter::BasisPoints(_) => DEFAULT_MIN_REPORTS,
        })
    }

    /// Whether these counts trip the rule: at least `min` reports, and the threshold reached
    /// (a count at exactly `n`, a share at exactly its percentage).
    pub fn trips(&self, c: HaltCounts) -> bool {
        if c.reported < self.min_reports() || c.bad == 0 {
            return false;
        }
        match self.after {
            HaltAfter::Loaders(n) => c.bad >= n,
            // Both sides stay below 2^63: bad <= reported, which a fleet keeps far below 2^49.
            HaltAfter::BasisPoints(bp) => {
                c.bad.saturating_mul(BASIS) >= bp.saturating_mul(c.reported)
            }
        }
    }

    /// Why it tripped, for the log and the record.
    pub fn reason(&self, c: HaltCounts) -> String {
        format!(
            "{} of {} loaders that reported failed or rolled back (halt rule {}, at least {} reports)",
            c.bad,
            c.reported,
            self.after,
            self.min_reports()
        )
    }
}

impl fmt::Display for HaltRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.after)?;
        match (self.after, self.min) {
            (_, Some(m)) => write!(f, " (at least {m} reports)"),
            (HaltAfter::BasisPoints(_), None) => {
                write!(f, " (at least {DEFAULT_MIN_REPORTS} reports)")
            }
            (HaltAfter::Loaders(_), None) => Ok(()),
        }
    }
}

/// When and why a manifest halted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halted {
    pub at: Timestamp,
    pub reason: String,
}

/// `POST manifests/<id>/halt`: the new rule, or none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HaltChange {
    pub halt: Option<HaltRule>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(reported: u64, bad: u64) -> HaltCounts {
        HaltCounts { reported, bad }
    }

    #[test]
    fn thresholds_parse_and_print_back() {
        for (text, want) in [
            ("3", HaltAfter::Loaders(3)),
            ("5%", HaltAfter::BasisPoints(500)),
            ("2.5%", HaltAfter::BasisPoints(250)),
            ("0.25%", HaltAfter::BasisPoints(25)),
            ("100%", HaltAfter::BasisPoints(10_000)),
        ] {
            let h = HaltAfter::parse(text).unwrap();
            assert_eq!(h, want, "{text}");
            assert_eq!(h.to_string(), text);
            let json = serde_json::to_string(&h).unwrap();
            assert_eq!(serde_json::from_str::<HaltAfter>(&json).unwrap(), h);
        }
        for bad in [
            "",
            "0",
            "0%",
            "-3",
            "100.01%",
            "101%",
            "1.234%",
            "5 %x",
            "%",
            ".5%",
            "1e3",
            "1000000001",
        ] {
            let e = HaltAfter::parse(bad).unwrap_err().to_string();
            assert!(e.contains("like 3 or 5%"), "{bad}: {e}");
        }
        assert!(serde_json::from_str::<HaltRule>(r#"{"after":"0%"}"#).is_err());
    }

    #[test]
    fn a_count_trips_at_exactly_its_number() {
        let r = HaltRule {
            after: HaltAfter::Loaders(3),
            min: None,
        };
        assert!(!r.trips(counts(100, 2)));
        assert!(r.trips(counts(3, 3)));
        assert!(r.trips(counts(100, 4)));
        let with_min = HaltRule { min: Some(10), ..r };
        assert!(!with_min.trips(counts(9, 5)));
        assert!(with_min.trips(counts(10, 3)));
    }

    #[test]
    fn a_share_trips_at_exactly_its_percentage_after_the_minimum() {
        let r = HaltRule {
            after: HaltAfter::parse("5%").unwrap(),
            min: None,
        };
        assert_eq!(r.min_reports(), DEFAULT_MIN_REPORTS);
        // 1 of 19 is more than 5%, but fewer than 20 reported.
        assert!(!r.trips(counts(19, 1)));
        assert!(r.trips(counts(20, 1)));
        assert!(!r.trips(counts(21, 1)));
        assert!(!r.trips(counts(40, 1)));
        assert!(r.trips(counts(40, 2)));
        assert!(!r.trips(counts(200, 9)));
        assert!(r.trips(counts(200, 10)));
        let fine = HaltRule {
            after: HaltAfter::parse("2.5%").unwrap(),
            min: Some(0),
        };
        assert!(!fine.trips(counts(0, 0)));
        assert!(!fine.trips(counts(401, 10)));
        assert!(fine.trips(counts(400, 10)));
        assert_eq!(
            fine.reason(counts(400, 10)),
            "10 of 400 loaders that reported failed or rolled back (halt rule 2.5%, at least 0 reports)"
        );
    }
}
