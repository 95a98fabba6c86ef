//! A manifest serial: the API's manifest id, which only ever grows, by one. A loader refuses a
//! statement whose serial is below the one it installed (docs/design.md §4.6, rollback) or too far
//! above it (§4.6, fast-forward), so a serial compares, prints and measures its step from a floor,
//! and nothing else does arithmetic on it.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// docs/design.md §4.6: the most a statement's serial may lie above a floor (the serial a loader
/// installed, the highest one a console saw signed for an API). The API gives one serial per
/// manifest it makes, for every platform and target, so a host that was off for years may meet
/// a serial far above its own; this bound is a hundred years of 3 manifests a day. What it stops
/// is a statement signed with an enormous serial, which would lift every floor for good.
pub const MAX_SERIAL_STEP: u64 = 100_000;

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

    /// Refuses `self` when it lies more than [`MAX_SERIAL_STEP`] above `floor`, the serial `whose`
    /// names ("installed", "highest signed by this console"). No floor yet (0) bounds nothing: a
    /// new host, or a new console, meets a long-running API's serial as it is.
    pub fn check_step(self, floor: Serial, whose: &'static str) -> Result<()> {
        if floor == Serial::NONE || self.0 <= floor.0.saturating_add(MAX_SERIAL_STEP) {
            return Ok(());
        }
        Err(Error::SerialJump {
            offered: self.0,
            floor: floor.0,
            whose,
        })
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
