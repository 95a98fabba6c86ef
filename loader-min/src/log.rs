//! Plain progress lines, one per step, like MIG's transcript (`comparing mig-agent /sbin/mig-agent`).
//! Progress goes to stdout, warnings and errors to stderr. A closed pipe never stops a run.

use std::fmt::Display;
use std::io::Write;

/// One step of the run.
pub fn step(msg: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{msg}");
}

/// Something the operator should know that does not stop the run.
pub fn warn(msg: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {msg}");
}

/// The error that ends a run.
pub fn error(msg: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "error: {msg}");
}
