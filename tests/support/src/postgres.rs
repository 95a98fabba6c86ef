//! A throwaway PostgreSQL cluster for one test: `initdb` and `pg_ctl` of Debian's `postgresql`
//! package, in a temporary directory, listening on a free loopback port, with a trusted
//! superuser `mig`; stopped and removed on drop. `initdb` refuses root, so as root the cluster
//! runs as the package's `postgres` user (or `nobody`).

use crate::{free_port, run, Output};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<String>,
    pub port: u16,
    /// With [`PgCluster::start_tls`]: the CA that signed the server's certificate.
    pub ca: Option<PathBuf>,
}

/// The newest `/usr/lib/postgresql/<v>/bin` with `initdb` (Debian's layout).
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, b)| b)
        .expect("PostgreSQL's server binaries are missing: apt-get install postgresql")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

impl PgCluster {
    /// initdb, then pg_ctl start; waits until it accepts connections.
    #[track_caller]
    pub fn start() -> PgCluster {
        let dir = tempfile::tempdir().expect("a cluster directory");
        let user = is_root().then(|| {
            let exists = |u: &str| {
                Command::new("id")
                    .arg(u)
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if exists("postgres") {
                "postgres"
            } else {
                "nobody"
            }
            .to_string()
        });
        if let Some(u) = &user {
            let mut c = Command::new("chown");
            c.arg("-R").arg(u).arg(dir.path());
            run(c, None, TIMEOUT).ok();
        }
        let cluster = PgCluster {
            dir,
            bin: bin_dir(),
            user,
            port: free_port(),
            ca: None,
        };
        let mut c = cluster.as_owner("initdb");
        c.args(["-U", "mig", "--auth=trust", "--no-sync", "-E", "UTF8", "-D"])
            .arg(cluster.data());
        run(c, None, TIMEOUT).ok();
        cluster.start_server();
        cluster
    }

    /// A cluster that takes TCP connections over TLS only (`hostssl` alone in pg_hba.conf),
    /// its certificate for `localhost` and `127.0.0.1` signed by a CA made here with openssl
    /// ([`PgCluster::ca`]).
    #[track_caller]
    pub fn start_tls() -> PgCluster {
        let mut cluster = Self::start();
        cluster.stop();
        let data = cluster.data();
        let d = cluster.dir.path().to_path_buf();
        let ca = make_ca(&d, "ca");
        let openssl = |args: &[&str]| {
            let mut c = Command::new("openssl");
            c.args(args).current_dir(&d);
            let out = run(c, None, TIMEOUT);
            assert!(out.success(), "openssl {args:?}: {out}");
        };
        std::fs::write(
            d.join("san.ext"),
            "subjectAltName = DNS:localhost, IP:127.0.0.1\n",
        )
        .expect("san.ext");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "server.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ]);
        for f in ["server.crt", "server.key"] {
            std::fs::copy(d.join(f), data.join(f)).expect("copy the server's TLS files");
        }
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("pg_hba.conf");
        std::fs::write(
            data.join("postgresql.auto.conf"),
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
        )
        .expect("postgresql.auto.conf");
        if let Some(u) = &cluster.user {
            let mut c = Command::new("chown");
            c.arg("-R").arg(u).arg(&data);
            run(c, None, TIMEOUT).ok();
        }
        let mut c = Command::new("chmod");
        c.arg("600").arg(data.join("server.key"));
        run(c, None, TIMEOUT).ok();
        cluster.start_server();
        cluster.ca = Some(ca);
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command of the cluster's binaries, run as the cluster's owner.
    fn as_owner(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn start_server(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut c = self.as_owner("pg_ctl");
        c.args(["-w", "-t", "60", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-o", &opts, "start"]);
        run(c, None, TIMEOUT).ok();
    }

    /// Stops the server now (fast shutdown); [`PgCluster::restart`] starts it again.
    pub fn stop(&self) {
        let mut c = self.as_owner("pg_ctl");
        c.args(["-w", "-m", "fast", "-D"])
            .arg(self.data())
            .arg("stop");
        run(c, None, TIMEOUT).ok();
    }

    pub fn restart(&self) {
        self.start_server();
    }

    /// `postgresql://mig@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://mig@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL with psql in `db`, stopping at the first error.
    #[track_caller]
    pub fn psql(&self, db: &str, sql: &str) -> Output {
        let mut c = self.psql_command(db);
        c.args(["-f", "-"]);
        run(c, Some(sql.as_bytes()), TIMEOUT)
    }

    /// psql on `db` as `mig`, over TCP, stopping at the first error.
    fn psql_command(&self, db: &str) -> Command {
        let mut c = Command::new(self.bin.join("psql"));
        c.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "mig",
        ])
        .args(["-p", &self.port.to_string(), "-d", db]);
        c
    }

    /// Runs a SQL file with psql in `db`, stopping at the first error.
    #[track_caller]
    pub fn psql_file(&self, db: &str, file: &Path) -> Output {
        let sql = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        self.psql(db, &sql)
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .as_owner("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}

/// A self-signed CA (`<name>.crt`, `<name>.key`) made with openssl in `dir`; its certificate.
#[track_caller]
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let mut c = Command::new("openssl");
    c.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    ])
    .args([
        "-keyout",
        &format!("{name}.key"),
        "-out",
        &format!("{name}.crt"),
    ])
    .args(["-subj", &format!("/CN=mig test {name}")])
    .current_dir(dir);
    let out = run(c, None, TIMEOUT);
    assert!(out.success(), "openssl req -x509: {out}");
    dir.join(format!("{name}.crt"))
}

/// The cluster the servers of one test process share while any of them runs; the last one
/// dropped stops it.
static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
static NEXT_DB: AtomicU64 = AtomicU64::new(1);

/// One database of a cluster, kept alive with it.
#[derive(Clone)]
pub struct PgDatabase {
    pub cluster: Arc<PgCluster>,
    pub name: String,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

impl PgDatabase {
    /// A new, empty database on the shared cluster (started on first use).
    #[track_caller]
    pub fn fresh() -> PgDatabase {
        let cluster = {
            let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
            match shared.upgrade() {
                Some(c) => c,
                None => {
                    let c = Arc::new(PgCluster::start());
                    *shared = Arc::downgrade(&c);
                    c
                }
            }
        };
        Self::create(cluster)
    }

    /// A new, empty database on `cluster`.
    #[track_caller]
    pub fn create(cluster: Arc<PgCluster>) -> PgDatabase {
        let name = format!("t{}", NEXT_DB.fetch_add(1, Ordering::SeqCst));
        let out = cluster.psql("postgres", &format!("CREATE DATABASE {name};"));
        assert!(
            out.success(),
            "CREATE DATABASE {name}: {out}\n{}",
            cluster.log()
        );
        PgDatabase { cluster, name }
    }

    pub fn url(&self) -> String {
        self.cluster.url(&self.name)
    }

    /// Rows of `sql`, each column as text (NULL as an empty string).
    #[track_caller]
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        self.cluster.rows(&self.name, sql)
    }
}

impl PgCluster {
    /// Rows of `sql` in `db`, each column as text (NULL as an empty string).
    #[track_caller]
    pub fn rows(&self, db: &str, sql: &str) -> Vec<Vec<String>> {
        let mut c = self.psql_command(db);
        c.args(["-A", "-t", "-F", "\u{1f}", "-c", sql]);
        let out = run(c, None, TIMEOUT);
        assert!(out.success(), "psql {sql:?}: {out}");
        out.stdout
            .lines()
            .map(|l| l.split('\u{1f}').map(str::to_string).collect())
            .collect()
    }
}

/// Rows of `sql` on the SQLite file `db` (sqlite3's text of each value, NULL as empty).
#[track_caller]
pub fn sqlite_rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    use rusqlite::types::ValueRef;
    let c = rusqlite::Connection::open(db).unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    c.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    let mut st = c.prepare(sql).unwrap_or_else(|e| panic!("{sql:?}: {e}"));
    let n = st.column_count();
    let mut rows = st.query([]).unwrap_or_else(|e| panic!("{sql:?}: {e}"));
    let mut out = Vec::new();
    while let Some(r) = rows.next().unwrap_or_else(|e| panic!("{sql:?}: {e}")) {
        out.push(
            (0..n)
                .map(|i| match r.get_ref(i).expect("a column") {
                    ValueRef::Null => String::new(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    ValueRef::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
                })
                .collect(),
        );
    }
    out
}
