//! A manifest serial: the API's manifest id, which only ever grows. A loader refuses a statement
//! whose serial is below the one it installed (docs/design.md §4.6, rollback), so a serial compares and
//! prints, and nothing does arithmetic on it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A manifest serial; `Serial::NONE` (0) before the first install.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Serial(u64);

impl Serial {
    /// What a loader that installed nothing yet has.
    pub const NONE: Serial = Serial(0);

    pub const fn new(n: u64) -> Self {
        Serial(n)
    }

    /// The number, for storage and the wire.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Serial {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Serial)
    }
}
