//! A stand-in mig-api for the loader's tests: std TcpListener, one thread per connection, HTTP/1.1
//! by hand, one request per connection. It serves `POST loader/manifest`, `GET loader/files/<sha>`
//! (with `Range`), `POST loader/report`, records every request, and misbehaves on demand.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// What `POST loader/manifest` answers.
#[derive(Debug, Clone)]
pub enum ManifestMode {
    /// 200 with this body.
    Serve(String),
    /// An error status with MIG's error body.
    Error(u16, String),
    /// Never answer (until [`Server::release`] is called, then serve the last `Serve` body).
    Stall(String),
}

/// How one file body is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    Normal,
    /// Same length, last byte changed.
    Tampered,
    /// 100 bytes more than the file, without Content-Length (ends when the connection closes).
    Longer,
    /// Promise the whole length, send this many bytes, close; later requests are served normally.
    DropAfter(usize),
    /// Never answer.
    Stall,
}

struct State {
    manifest: ManifestMode,
    files: HashMap<String, Vec<u8>>,
    modes: HashMap<String, FileMode>,
    requests: Vec<Request>,
    released: bool,
}

/// The running server; it lives until the test process ends.
#[derive(Clone)]
pub struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
}

/// The longest a stalled answer waits.
const MAX_STALL: Duration = Duration::from_secs(60);

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            manifest: ManifestMode::Error(404, "no manifest targets this loader".into()),
            files: HashMap::new(),
            modes: HashMap::new(),
            requests: Vec::new(),
            released: false,
        }));
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &s);
                });
            }
        });
        Server { port, state }
    }

    /// The API base URL to put into the loader's run-time configuration.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v2/", self.port)
    }

    pub fn set_manifest(&self, mode: ManifestMode) {
        self.state.lock().unwrap().manifest = mode;
    }

    pub fn add_file(&self, sha: &str, body: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(sha.to_string(), body);
    }

    pub fn set_file_mode(&self, sha: &str, mode: FileMode) {
        self.state
            .lock()
            .unwrap()
            .modes
            .insert(sha.to_string(), mode);
    }

    /// Ends every stall.
    pub fn release(&self) {
        self.state.lock().unwrap().released = true;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    /// Waits until a request to a path ending in `suffix` arrived.
    pub fn wait_for(&self, suffix: &str) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if self.requests().iter().any(|r| r.path.ends_with(suffix)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no request to {suffix} arrived");
    }

    fn stall(&self) {
        let until = Instant::now() + MAX_STALL;
        while Instant::now() < until && !self.state.lock().unwrap().released {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn respond(conn: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
    let _ = conn.flush();
}

fn error_body(code: u16, msg: &str) -> Vec<u8> {
    serde_json::json!({"error": {"code": code, "message": msg}})
        .to_string()
        .into_bytes()
}

fn handle(mut conn: TcpStream, state: &Arc<Mutex<State>>) -> Option<()> {
    let req = read_request(&mut conn)?;
    state.lock().unwrap().requests.push(req.clone());
    let server = Server {
        port: 0,
        state: state.clone(),
    };
    let json = [("Content-Type", "application/json".to_string())];
    let path = req.path.strip_prefix("/api/v2/").unwrap_or("");
    if req.method == "POST" && path == "loader/manifest" {
        let mode = state.lock().unwrap().manifest.clone();
        match mode {
            ManifestMode::Serve(body) => respond(&mut conn, 200, &json, body.as_bytes()),
            ManifestMode::Error(code, msg) => {
                respond(&mut conn, code, &json, &error_body(code, &msg))
            }
            ManifestMode::Stall(body) => {
                server.stall();
                respond(&mut conn, 200, &json, body.as_bytes());
            }
        }
    } else if req.method == "POST" && path == "loader/report" {
        respond(&mut conn, 200, &json, b"{}");
    } else if let Some(sha) = path
        .strip_prefix("loader/files/")
        .filter(|_| req.method == "GET")
    {
        let (file, mode) = {
            let st = state.lock().unwrap();
            (
                st.files.get(sha).cloned(),
                st.modes.get(sha).copied().unwrap_or(FileMode::Normal),
            )
        };
        let Some(mut file) = file else {
            respond(
                &mut conn,
                403,
                &json,
                &error_body(403, "not in your manifest"),
            );
            return Some(());
        };
        let etag = ("ETag", format!("\"{sha}\""));
        match mode {
            FileMode::Stall => {
                server.stall();
                return Some(());
            }
            FileMode::Tampered => {
                let last = file.len() - 1;
                file[last] ^= 0x55;
            }
            FileMode::Longer => {
                file.extend(std::iter::repeat_n(b'X', 100));
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                let _ = conn.write_all(&file);
                let _ = conn.shutdown(Shutdown::Both);
                return Some(());
            }
            FileMode::DropAfter(n) => {
                server.set_file_mode(sha, FileMode::Normal);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                    file.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&file[..n]);
                let _ = conn.flush();
                let _ = conn.shutdown(Shutdown::Both);
                return Some(());
            }
            FileMode::Normal => {}
        }
        let start = req
            .header("Range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok());
        match start {
            Some(s) if s < file.len() => {
                let cr = (
                    "Content-Range",
                    format!("bytes {s}-{}/{}", file.len() - 1, file.len()),
                );
                respond(&mut conn, 206, &[etag, cr], &file[s..]);
            }
            Some(_) => respond(&mut conn, 416, &json, &error_body(416, "bad range")),
            None => respond(&mut conn, 200, &[etag], &file),
        }
    } else {
        respond(&mut conn, 404, &json, &error_body(404, "no such route"));
    }
    let _ = conn.shutdown(Shutdown::Write);
    Some(())
}
