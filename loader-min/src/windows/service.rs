//! `mig-loader -s`: the Windows service `mig-loader` (docs/design.md §2.8), MIG's
//! `svc_windows.go`. It runs this executable as a child, a full run at start and then every
//! [`FULL_RUN_EVERY`], `-c` (is the agent running?) every [`CHECK_EVERY`] in between, waiting
//! [`AFTER_FAILURE`] longer after a run that failed. Every run is a process of its own, so each
//! one starts from the executable on disk; when a full run has replaced that executable, the
//! service has a detached `mig-loader --restart-service` (the new image) wait until the service
//! has stopped and start it again, and stops, so the service itself is the new code too.
//! The runs' output and the service's own lines go to `C:\mig\mig-loader.log`.

use super::sys::{self, ServiceState};
use crate::error::{Error, Result};
use crate::layout::{with_suffix, Layout};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// The service's name, as MIG's installer registers it.
pub const SERVICE_NAME: &str = "mig-loader";
/// MIG's interval between full runs (`svc_windows.go`: 60 minutes).
pub const FULL_RUN_EVERY: Duration = Duration::from_secs(60 * 60);
/// MIG's interval between two runs of any kind (2 minutes); the ones between full runs are `-c`.
pub const CHECK_EVERY: Duration = Duration::from_secs(2 * 60);
/// MIG's extra wait after a run that failed (5 minutes).
pub const AFTER_FAILURE: Duration = Duration::from_secs(5 * 60);
/// How long a stop request waits for the run in progress before ending it: a run is safe to end
/// at any point (the journal lets the next run finish or undo it, docs/design.md §4.13), but one
/// that finishes is better.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How long `--restart-service` waits for the old service process to stop.
const RESTART_WAIT: Duration = Duration::from_secs(60);
/// The log beyond this size is moved to `mig-loader.log.1` (replacing it) before a run writes.
const LOG_CAP: u64 = 1024 * 1024;
/// The Win32 error of a process that was not started by the service control manager.
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;

/// Which run comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `mig-loader`: ask the API, install what changed.
    Full,
    /// `mig-loader -c`: only make sure the agent runs.
    Check,
}

/// When runs are due (MIG's `periodic`): the next full run comes [`FULL_RUN_EVERY`] after the last
/// one that succeeded; a failed full run is tried again at the next turn.
#[derive(Debug)]
pub struct Schedule {
    next_full: Instant,
}

impl Schedule {
    /// A schedule whose first run, at `now`, is a full one.
    pub fn new(now: Instant) -> Schedule {
        Schedule { next_full: now }
    }

    pub fn next(&self, now: Instant) -> Kind {
        if now >= self.next_full {
            Kind::Full
        } else {
            Kind::Check
        }
    }

    /// Records that a run of `kind` ended at `now`; returns how long to wait before the next.
    pub fn finished(&mut self, kind: Kind, ok: bool, now: Instant) -> Duration {
        if kind == Kind::Full && ok {
            self.next_full = now + FULL_RUN_EVERY;
        }
        if ok {
            CHECK_EVERY
        } else {
            CHECK_EVERY + AFTER_FAILURE
        }
    }
}

/// Runs this process as the service (`mig-loader -s`); returns when the service has stopped.
/// `root` is handed to every run (`--root`).
pub fn serve(root: PathBuf) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("find the running executable", "mig-loader -s", e))?;
    sys::run_service_dispatcher(SERVICE_NAME, move || service_main(&exe, &root)).map_err(|e| {
        if e.raw_os_error() == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
            Error::Config(format!(
                "mig-loader -s runs only as the Windows service {SERVICE_NAME} (sc start {SERVICE_NAME}); run mig-loader without -s for one run"
            ))
        } else {
            Error::io("connect to the service control manager", SERVICE_NAME, e)
        }
    })
}

/// Why the service loop ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Stop,
    /// A full run replaced the executable the service runs from.
    Replaced,
}

fn service_main(exe: &Path, root: &Path) {
    let layout = Layout::new(root, "windows");
    let log = layout.state_dir().join("mig-loader.log");
    // The runs create and restrict the directory too; the log needs it before the first one.
    if let Err(e) = crate::state::ensure_dir(&layout.state_dir()) {
        note(&log, format!("{e}"));
    }
    let (tx, rx) = mpsc::channel::<()>();
    let tx = Mutex::new(tx);
    let status = match sys::register_service_handler(SERVICE_NAME, move || {
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(());
        }
    }) {
        Ok(s) => s,
        Err(e) => {
            note(
                &log,
                format!("cannot register with the service control manager: {e}"),
            );
            return;
        }
    };
    if let Err(e) = status.report(ServiceState::Running, 0, 0, 0) {
        note(&log, format!("cannot report the service running: {e}"));
    }
    note(&log, format!("started (process {})", std::process::id()));
    let end = serve_loop(exe, root, &log, &rx, &status);
    if end == End::Replaced {
        match restart_helper(exe, &log) {
            Ok(_) => note(&log, format!("{} was replaced: restarting the service", exe.display())),
            Err(e) => note(&log, format!("{} was replaced, but the service cannot restart itself ({e}): it runs the new image when it is next started", exe.display())),
        }
    } else {
        note(&log, "stopped");
    }
    let _ = status.report(ServiceState::Stopped, 0, 0, 0);
}

fn serve_loop(
    exe: &Path,
    root: &Path,
    log: &Path,
    stop: &mpsc::Receiver<()>,
    status: &sys::StatusHandle,
) -> End {
    let mut schedule = Schedule::new(Instant::now());
    loop {
        let kind = schedule.next(Instant::now());
        let before = image_identity(exe);
        let ok = match run_once(exe, root, kind, log, stop, status) {
            Some(ok) => ok,
            None => return End::Stop,
        };
        if kind == Kind::Full && image_identity(exe) != before {
            return End::Replaced;
        }
        let wait = schedule.finished(kind, ok, Instant::now());
        match stop.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return End::Stop,
        }
    }
}

/// What tells one executable file from the one that replaced it: a replacement is a new file
/// (staged, then renamed over the old one), with its own creation and write times.
pub fn image_identity(path: &Path) -> Option<(u64, u64, u64)> {
    use std::os::windows::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.file_size(), m.creation_time(), m.last_write_time()))
}

/// One run of `kind`, its output appended to `log`. `Some(success)` when it ended by itself,
/// `None` when a stop request came first (the run then had [`STOP_GRACE`] to end).
fn run_once(
    exe: &Path,
    root: &Path,
    kind: Kind,
    log: &Path,
    stop: &mpsc::Receiver<()>,
    status: &sys::StatusHandle,
) -> Option<bool> {
    let mut cmd = Command::new(exe);
    if kind == Kind::Check {
        cmd.arg("-c");
    }
    cmd.arg("--root").arg(root);
    let mut child = match spawn_logged(cmd, log) {
        Ok(c) => c,
        Err(e) => {
            note(log, format!("cannot start {}: {e}", exe.display()));
            return Some(false);
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s.success()),
            Ok(None) => {}
            Err(e) => {
                note(log, format!("waiting for {}: {e}", exe.display()));
                return Some(false);
            }
        }
        match stop.recv_timeout(Duration::from_secs(1)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                finish_for_stop(&mut child, log, status);
                return None;
            }
        }
    }
}

/// Gives the run in progress [`STOP_GRACE`] to end, telling the service control manager that the
/// stop goes on, then ends it.
fn finish_for_stop(child: &mut Child, log: &Path, status: &sys::StatusHandle) {
    let started = Instant::now();
    let mut check_point = 1;
    while started.elapsed() < STOP_GRACE {
        if let Ok(Some(_)) | Err(_) = child.try_wait() {
            return;
        }
        let _ = status.report(ServiceState::StopPending, check_point, 2000, 0);
        check_point += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    note(
        log,
        "stopping: the run in progress did not end in time, ending it",
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `mig-loader --restart-service` from `exe` (the new image), detached from this process,
/// which is about to stop.
fn restart_helper(exe: &Path, log: &Path) -> std::io::Result<Child> {
    use std::os::windows::process::CommandExt;
    // DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP: it outlives the service process.
    const FLAGS: u32 = 0x8 | 0x200;
    let mut cmd = Command::new(exe);
    cmd.arg("--restart-service").creation_flags(FLAGS);
    spawn_logged(cmd, log)
}

/// `mig-loader --restart-service`: waits (at most [`RESTART_WAIT`]) until the service has
/// stopped, then starts it.
pub fn restart_after_stop() -> Result<()> {
    let service_error =
        |what: &'static str, e| Error::io(what, format!("service {SERVICE_NAME}"), e);
    let started = Instant::now();
    loop {
        let state =
            sys::service_state(SERVICE_NAME).map_err(|e| service_error("query the state of", e))?;
        if state == ServiceState::Stopped as u32 {
            break;
        }
        if started.elapsed() > RESTART_WAIT {
            return Err(Error::Config(format!(
                "service {SERVICE_NAME} did not stop within {} s; start it with sc start {SERVICE_NAME}",
                RESTART_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    sys::start_service(SERVICE_NAME).map_err(|e| service_error("start", e))?;
    crate::log::step(format!("service {SERVICE_NAME} started again"));
    Ok(())
}

/// Starts `cmd` with its output appended to `log` (none when the log cannot be opened).
fn spawn_logged(mut cmd: Command, log: &Path) -> std::io::Result<Child> {
    let (out, err) = match open_log(log).and_then(|f| Ok((f.try_clone()?, f))) {
        Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
        Err(_) => (Stdio::null(), Stdio::null()),
    };
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn()
}

/// The log opened for appending; beyond [`LOG_CAP`] it is first moved to `.1`.
pub fn open_log(path: &Path) -> std::io::Result<File> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > LOG_CAP) {
        super::rename(path, &with_suffix(path, ".1"))?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// One line of the service's own in the log.
fn note(log: &Path, msg: impl std::fmt::Display) {
    if let Ok(mut f) = open_log(log) {
        let _ = writeln!(
            f,
            "{} mig-loader service: {msg}",
            mig_protocol::time::Timestamp::now()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_migs() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        assert_eq!(s.next(t0), Kind::Full);
        // A failed full run is tried again at the next turn, after the longer wait.
        assert_eq!(
            s.finished(Kind::Full, false, t0),
            CHECK_EVERY + AFTER_FAILURE
        );
        let t1 = t0 + CHECK_EVERY + AFTER_FAILURE;
        assert_eq!(s.next(t1), Kind::Full);
        assert_eq!(s.finished(Kind::Full, true, t1), CHECK_EVERY);
        // Then agent checks until the hour is over.
        assert_eq!(s.next(t1 + CHECK_EVERY), Kind::Check);
        assert_eq!(s.finished(Kind::Check, true, t1 + CHECK_EVERY), CHECK_EVERY);
        assert_eq!(
            s.next(t1 + FULL_RUN_EVERY - Duration::from_secs(1)),
            Kind::Check
        );
        assert_eq!(s.next(t1 + FULL_RUN_EVERY), Kind::Full);
    }

    #[test]
    fn a_replaced_executable_has_another_identity() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("mig-loader.exe");
        std::fs::write(&exe, "old image").unwrap();
        let old = image_identity(&exe);
        assert!(old.is_some());
        assert_eq!(image_identity(&exe), old);
        // What the swap does: the staged file is renamed over the old one.
        std::thread::sleep(Duration::from_millis(20));
        let staged = dir.path().join("mig-loader.exe.mig-new");
        std::fs::write(&staged, "new image").unwrap();
        super::super::rename(&staged, &exe).unwrap();
        assert_ne!(image_identity(&exe), old);
        assert_eq!(image_identity(&dir.path().join("missing")), None);
    }

    #[test]
    fn the_log_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mig-loader.log");
        note(&log, "started");
        assert!(std::fs::read_to_string(&log)
            .unwrap()
            .ends_with(" mig-loader service: started\n"));
        std::fs::write(&log, vec![b'x'; LOG_CAP as usize + 1]).unwrap();
        note(&log, "next");
        assert_eq!(
            std::fs::metadata(with_suffix(&log, ".1")).unwrap().len(),
            LOG_CAP + 1
        );
        assert!(std::fs::read_to_string(&log)
            .unwrap()
            .ends_with(" mig-loader service: next\n"));
    }

    #[test]
    fn outside_the_service_control_manager_it_says_how_to_start_it() {
        let e = serve(PathBuf::from("C:\\")).unwrap_err().to_string();
        assert!(e.contains("sc start mig-loader"), "{e}");
    }
}
