//! Every cap and deadline of one run, in one value (docs/design.md §4.11). The caps are the same
//! for every build; the deadlines come from the built-in configuration (build.rs reads them from
//! the TOML named by LOADERCONF). A module that reads, waits or downloads takes its bound from
//! here, never from a constant of its own.

use crate::config::BuildConfig;
use crate::deadlines;
use std::time::Duration;

/// The bounds of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to open a connection to the API.
    pub connect: Duration,
    /// Time for one request to the API, body included.
    pub request: Duration,
    /// Time for the whole run's network work: every request must end before it.
    pub run: Duration,
    /// Time for one trigger (`-q shutdown`, `-u`) or liveness probe (`-q pid`).
    pub trigger: Duration,
    /// Time for the new agent to answer its liveness probe after an install.
    pub health: Duration,
    /// Time for one discovery command (`hostname --fqdn`, `lsb_release`).
    pub discovery_command: Duration,
    /// Connect and whole-request time for the cloud metadata service (MIG: 1 s dial).
    pub cloud_metadata: Duration,
    /// The largest cloud metadata value read (MIG: 10240).
    pub cloud_metadata_body: u64,
    /// The largest error body read from the API.
    pub error_body: u64,
    /// The largest answer to a report.
    pub report_answer: u64,
    /// The largest manifest response (statement and signatures).
    pub manifest_response: u64,
    /// The most requests made for one file (the first and the resumptions).
    pub fetch_attempts: u32,
    /// The largest loader key file read.
    pub key_file: u64,
    /// The largest state file read (they hold one line).
    pub state_file: u64,
    /// The largest run-time configuration file.
    pub runtime_config: u64,
    /// The largest /proc or /etc file read by discovery.
    pub fact_file: u64,
    /// The most output read from a discovery command.
    pub child_output: u64,
    /// The read buffer for hashing and downloading.
    pub io_buffer: usize,
}

impl Limits {
    /// The caps with the deadlines a build gets when its TOML sets none (build.rs bakes the same
    /// ones, from [`crate::deadlines`]).
    pub const DEFAULT: Limits = Limits::with_deadlines([
        deadlines::CONNECT_SECS,
        deadlines::REQUEST_SECS,
        deadlines::RUN_SECS,
        deadlines::TRIGGER_SECS,
        deadlines::HEALTH_SECS,
    ]);

    /// The caps every build shares, with the deadlines of `build`.
    pub const fn new(build: &BuildConfig) -> Limits {
        Limits::with_deadlines([
            build.connect_timeout_secs,
            build.request_timeout_secs,
            build.run_timeout_secs,
            build.trigger_timeout_secs,
            build.health_timeout_secs,
        ])
    }

    /// `[connect, request, run, trigger, health]` in seconds.
    const fn with_deadlines(secs: [u64; 5]) -> Limits {
        Limits {
            connect: Duration::from_secs(secs[0]),
            request: Duration::from_secs(secs[1]),
            run: Duration::from_secs(secs[2]),
            trigger: Duration::from_secs(secs[3]),
            health: Duration::from_secs(secs[4]),
            discovery_command: Duration::from_secs(3),
            cloud_metadata: Duration::from_secs(1),
            cloud_metadata_body: 10_240,
            error_body: 16 * 1024,
            report_answer: 16 * 1024,
            manifest_response: mig_protocol::loader::MAX_MANIFEST_RESPONSE,
            fetch_attempts: 6,
            key_file: 4096,
            state_file: 4096,
            runtime_config: 64 * 1024,
            fact_file: 1024 * 1024,
            child_output: 64 * 1024,
            io_buffer: 64 * 1024,
        }
    }
}
