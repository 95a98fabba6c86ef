//! What the fuzz targets share: the development keys, a loopback server that answers every
//! connection with the bytes under test, and tight limits so one input costs milliseconds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The development administrators' public keys (conf/dev-keys), armored.
pub const DEV_PUBLIC_KEYS: [&str; 3] = [
    include_str!("../../../conf/dev-keys/admin1.pub.asc"),
    include_str!("../../../conf/dev-keys/admin2.pub.asc"),
    include_str!("../../../conf/dev-keys/admin3.pub.asc"),
];

/// The keyring the signature target verifies against.
pub fn dev_keyring() -> &'static mig_protocol::signature::Keyring {
    static RING: OnceLock<mig_protocol::signature::Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        mig_protocol::signature::Keyring::from_armored(
            DEV_PUBLIC_KEYS
                .iter()
                .enumerate()
                .map(|(i, k)| (["admin1", "admin2", "admin3"][i], *k)),
        )
        .expect("the committed development keys parse")
    })
}

/// The development freshness key's public half (conf/dev-keys), as the development mig-loader is
/// built with it.
pub fn dev_freshness_key() -> &'static mig_protocol::freshness::FreshnessKey {
    static KEY: OnceLock<mig_protocol::freshness::FreshnessKey> = OnceLock::new();
    KEY.get_or_init(|| {
        mig_protocol::freshness::FreshnessKey::new(
            "freshness.pub.asc",
            include_str!("../../../conf/dev-keys/freshness.pub.asc"),
            dev_keyring(),
        )
        .expect("the committed development freshness key parses")
    })
}

/// The statement bytes and serial the freshness target checks its documents against; the
/// seeds' signed document is over exactly these.
pub const FRESHNESS_STATEMENT: &[u8] = br#"{"format":1,"serial":7}"#;
pub const FRESHNESS_SERIAL: u64 = 7;

/// A loopback HTTP "server" that reads a request head and answers with [`set_answer`]'s bytes
/// exactly, then closes: the fuzzer plays the API.
pub struct RawServer {
    pub addr: SocketAddr,
    answer: &'static Mutex<Vec<u8>>,
}

pub fn raw_server() -> &'static RawServer {
    static SERVER: OnceLock<RawServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        static ANSWER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = Vec::new();
                let mut b = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match conn.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let answer = ANSWER.lock().map(|a| a.clone()).unwrap_or_default();
                let _ = conn.write_all(&answer);
            }
        });
        RawServer {
            addr,
            answer: &ANSWER,
        }
    })
}

impl RawServer {
    pub fn set_answer(&self, bytes: &[u8]) {
        if let Ok(mut a) = self.answer.lock() {
            a.clear();
            a.extend_from_slice(bytes);
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/api/v2/", self.addr)
    }
}

/// The loader's limits with one attempt per file and short deadlines.
pub fn fuzz_limits() -> loader_min::limits::Limits {
    loader_min::limits::Limits {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(2),
        fetch_attempts: 1,
        ..loader_min::limits::Limits::DEFAULT
    }
}

/// The loader's HTTP settings for the loopback server (plain HTTP, as in the tests).
pub fn fuzz_http() -> mig_http::HttpConfig {
    mig_http::HttpConfig {
        ca_pem: None,
        allow_plain_http: true,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        proxy: None,
        user_agent: "mig-fuzz".into(),
    }
}
