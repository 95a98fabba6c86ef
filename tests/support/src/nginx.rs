//! A real nginx for tests and benchmarks (Debian's `nginx`): a temporary prefix with its own
//! configuration, pid and temporary directories, on a free loopback port; stopped on drop, workers
//! included.

use crate::process::free_port;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Nginx {
    /// Starts nginx with `http` as the body of its `http { }` block; `{port}` in it is replaced
    /// by the port it listens on, `{dir}` by its own directory.
    pub fn start(http: &str) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let d = dir.path().display().to_string();
        let http = http
            .replace("{port}", &port.to_string())
            .replace("{dir}", &d);
        let conf = dir.path().join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nuser root;\nworker_processes 2;\npid {d}/nginx.pid;\n\
                 error_log {d}/nginx-error.log;\nevents {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
                 proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  \
                 uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{http}\n}}\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start nginx (apt-get install nginx): {e}"))?;
        let mut nginx = Nginx { child, dir, port };
        for _ in 0..200 {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                return Err(format!("nginx exited with {status}: {}", nginx.error_log()));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(nginx);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "nginx did not listen on {port}: {}",
            nginx.error_log()
        ))
    }

    /// The master process's id (its workers are its children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// nginx's own directory (its configuration, logs and caches).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn error_log(&self) -> String {
        let p: PathBuf = self.dir.path().join("nginx-error.log");
        std::fs::read_to_string(p).unwrap_or_default()
    }
}

/// How long nginx may take to exit after SIGTERM (its fast shutdown: the master stops its workers
/// and waits for them).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl Drop for Nginx {
    /// SIGTERM, which nginx handles by stopping its workers before the master exits; a SIGKILL of
    /// the master alone would leave the workers running and listening. Past [`STOP_TIMEOUT`],
    /// every process still holding this nginx's directory is killed.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        if sent.is_ok_and(|s| s.success()) {
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (pid, _) in crate::process::processes_under(self.dir.path()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::processes_under;

    #[test]
    fn a_dropped_nginx_leaves_no_process_behind() {
        let nginx =
            Nginx::start("  server {\n    listen 127.0.0.1:{port};\n    return 204;\n  }\n")
                .expect("nginx starts");
        let dir = nginx.dir().to_path_buf();
        // The master and its two workers (worker_processes 2), which it forks after it listens:
        // the check after the drop is shown to see workers.
        let mut running = processes_under(&dir);
        for _ in 0..200 {
            if running.len() >= 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            running = processes_under(&dir);
        }
        assert!(running.len() >= 3, "nginx's processes: {running:?}");
        drop(nginx);
        let left = processes_under(&dir);
        assert!(left.is_empty(), "still running after drop: {left:?}");
    }
}
