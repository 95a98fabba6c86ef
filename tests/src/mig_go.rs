//! MIG's original Go `mig-loader` as a real client: built by `../shared/mig-go/build.sh` with an
//! API URL, a threshold and administrator keys, and run by `../shared/mig-go/run.sh` as root in a
//! private mount namespace (its paths are fixed: /sbin, /etc/mig, /var/lib/mig).

use crate::{run, workspace_root, Output};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long building the Go loader may take (a cold Go build cache on 2 cores).
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one run may take; run.sh kills the loader, which has no HTTP timeouts, sooner.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// `../shared/mig-go` beside the workspace (or `MIG_GO_DIR`). A missing source fails the test:
/// CI always has it.
pub fn source_dir() -> PathBuf {
    let dir = std::env::var_os("MIG_GO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/mig-go"));
    assert!(
        dir.join("build.sh").is_file() && dir.join("run.sh").is_file(),
        "MIG's Go loader source is not at {} (build.sh, run.sh): these tests need it; set \
         MIG_GO_DIR to its folder",
        dir.display()
    );
    dir
}

/// A built Go `mig-loader`.
pub struct GoLoader {
    dir: tempfile::TempDir,
}

impl GoLoader {
    /// Builds it for `api_url` (MIG's v1 base, ending in `/`), `required` signatures and the
    /// armored public `keys`, asking the API for its public address (`<api>/ip`).
    #[track_caller]
    pub fn build(api_url: &str, required: u32, keys: &[PathBuf]) -> GoLoader {
        let dir = tempfile::tempdir().expect("a build directory");
        let mut c = Command::new("bash");
        c.arg(source_dir().join("build.sh"))
            .arg(dir.path())
            .arg(api_url)
            .arg(required.to_string())
            .args(keys)
            .env("DISCOVERPUBLICIP", "true")
            .env("LOADER_TAGS", "operator=myorg");
        run(c, None, BUILD_TIMEOUT).ok();
        GoLoader { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("mig-loader")
    }
}

/// One endpoint of a Go fleet: run.sh's work directory, kept between runs.
pub struct GoHost {
    work: tempfile::TempDir,
    key: String,
}

/// What one run left.
#[derive(Debug)]
pub struct GoRun {
    pub output: Output,
    /// The loader's exit code as run.sh recorded it.
    pub rc: i32,
    /// The loader's own log.
    pub log: String,
    /// Installed path → (octal mode, sha256).
    pub installed: BTreeMap<String, (String, String)>,
    /// The stand-in agent's calls, `<path> <args>` each.
    pub agent_calls: Vec<String>,
}

impl GoHost {
    pub fn new(key: &str) -> GoHost {
        GoHost {
            work: tempfile::tempdir().expect("a work directory"),
            key: key.to_string(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.work.path()
    }

    /// Runs `loader` (the Go one, or whatever it installed) in the host's namespace.
    pub fn run(&self, loader: &Path) -> GoRun {
        let mut c = Command::new("bash");
        c.arg(source_dir().join("run.sh"))
            .arg(loader)
            .arg(&self.key)
            .arg(self.work.path())
            .env("RUN_TIMEOUT", "120");
        let output = run(c, None, RUN_TIMEOUT);
        let read = |f: &str| std::fs::read_to_string(self.work.path().join(f)).unwrap_or_default();
        let rc = read("rc").trim().parse().unwrap_or_else(|_| {
            panic!("run.sh recorded no exit code: {output}");
        });
        let installed = read("installed.txt")
            .lines()
            .filter_map(|l| {
                let mut p = l.splitn(3, ' ');
                let (mode, sha, path) = (p.next()?, p.next()?, p.next()?);
                Some((path.to_string(), (mode.to_string(), sha.to_string())))
            })
            .collect();
        GoRun {
            output,
            rc,
            log: read("log"),
            installed,
            agent_calls: read("agent-calls.log")
                .lines()
                .map(str::to_string)
                .collect(),
        }
    }

    /// The copy of an installed file, `/sbin/mig-loader` say, as run.sh left it.
    pub fn installed_file(&self, path: &str) -> PathBuf {
        self.work
            .path()
            .join("installed")
            .join(path.trim_start_matches('/'))
    }
}
