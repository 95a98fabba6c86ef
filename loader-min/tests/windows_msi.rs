//! The Windows installer end to end (docs/design.md §2.8): the MSI that
//! `packaging/windows/build-msi.sh` (`make msi-loader`) builds around the Windows mig-loader, read
//! back with msiinfo, then installed under wine with a key: the service registers and starts, its
//! first run installs a manifest from the stand-in API, including a new mig-loader.exe, after
//! which the service restarts on the new image; uninstalling removes the executable, the key and
//! the service. It needs the Windows build and a wine prefix (`make test`:
//! `MIG_TEST_LOADER_TARGET=x86_64-pc-windows-gnu`, `WINEPREFIX`), and is not part of a plain
//! `cargo test` (Cargo.toml: `test = false`).

mod common;

use common::{sha256_hex, Fixture, LOADER_KEY};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Windows loader under test; anything else is a mistake of whoever runs this suite.
fn windows_loader() -> &'static common::LoaderUnderTest {
    let l = common::loader();
    assert_eq!(
        l.go_os, "windows",
        "this suite tests the Windows MSI: run it with MIG_TEST_LOADER_TARGET=x86_64-pc-windows-gnu and WINEPREFIX (make test)"
    );
    l
}

/// The MSI around the loader under test, built as `make msi-loader` builds it.
fn build_msi(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/windows/build-msi.sh");
    let msi = dir.join("mig-loader.msi");
    let out = Command::new(&script)
        .arg(&windows_loader().path)
        .arg("0.0.1")
        .arg(&msi)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    msi
}

/// The rows of one table of `msi` (msiinfo export: three header lines, then tab-separated rows).
fn table(msi: &Path, name: &str) -> Vec<String> {
    let out = Command::new("msiinfo")
        .arg("export")
        .arg(msi)
        .arg(name)
        .output()
        .unwrap();
    assert!(out.status.success(), "msiinfo export {name}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(3)
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

#[test]
fn the_msi_installs_the_loader_to_c_mig_takes_pidkey_and_registers_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let msi = build_msi(dir.path());
    // C:\mig\mig-loader.exe: ROOTDRIVE is C:, whatever drive has the most space.
    assert!(table(&msi, "Property").contains(&"ROOTDRIVE\tC:\\".to_string()));
    assert!(table(&msi, "Directory").contains(&"MIGDIR\tTARGETDIR\tmig".to_string()));
    let files = table(&msi, "File");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("LoaderExe\tLoader\tmig-loader.exe\t"));
    assert!(table(&msi, "Component")
        .iter()
        .any(|r| r.starts_with("Loader\t") && r.contains("\tMIGDIR\t")));
    // No first install without the key.
    assert!(table(&msi, "LaunchCondition")
        .iter()
        .any(|r| r.starts_with("Installed OR PIDKEY OR WIX_UPGRADE_DETECTED\tPIDKEY is not set")));
    // Type 18 (an installed executable) + 1024 (deferred) + 2048 (not impersonated: as
    // LocalSystem), + 64 (its failure ignored) for the removal.
    let actions = table(&msi, "CustomAction");
    assert!(actions.contains(&"WriteKey\t3090\tLoaderExe\t--install-key [PIDKEY]\t".to_string()));
    assert!(actions.contains(&"RemoveKey\t3154\tLoaderExe\t--remove-key\t".to_string()));
    // The key is written after the files and before the service starts; removed on a real
    // uninstall (not the one inside an upgrade) before the files go.
    let seq: Vec<(String, String, u32)> = table(&msi, "InstallExecuteSequence")
        .iter()
        .map(|r| {
            let c: Vec<&str> = r.split('\t').collect();
            (c[0].to_string(), c[1].to_string(), c[2].parse().unwrap())
        })
        .collect();
    let at = |name: &str| seq.iter().find(|s| s.0 == name).unwrap().2;
    assert!(at("InstallFiles") < at("WriteKey") && at("WriteKey") < at("StartServices"));
    assert!(at("StopServices") < at("RemoveKey") && at("RemoveKey") < at("RemoveFiles"));
    assert!(seq
        .iter()
        .any(|s| s.0 == "WriteKey" && s.1 == "PIDKEY AND NOT REMOVE"));
    assert!(seq
        .iter()
        .any(|s| s.0 == "RemoveKey" && s.1 == "REMOVE=\"ALL\" AND NOT UPGRADINGPRODUCTCODE"));
    // Own process (16), automatic (2), normal errors (1), LocalSystem, `-s`.
    let services = table(&msi, "ServiceInstall");
    assert_eq!(services.len(), 1, "{services:?}");
    let s: Vec<&str> = services[0].split('\t').collect();
    assert_eq!(&s[1..5], ["mig-loader", "MIG Loader", "16", "2"]);
    assert_eq!(
        (s[5], s[8], s[10], s[11]),
        ("1", "LocalSystem", "-s", "Loader")
    );
    // Started on install (1), stopped on install (2) and uninstall (32), deleted on uninstall
    // (128); msiexec waits for each.
    assert_eq!(
        table(&msi, "ServiceControl"),
        ["LoaderService\tmig-loader\t163\t\t1\tLoader"]
    );
}

/// `wine <args>` in the test's prefix, the proxy variables removed as for every loader run of
/// the suite (the service's runs get wine's environment).
fn wine(args: &[&str]) -> std::process::Output {
    let mut c = Command::new("wine");
    c.args(args).env("WINEDEBUG", "-all");
    common::without_proxies(&mut c);
    c.output().unwrap()
}

/// The wine server of the test's prefix, kept running (`wineserver -p`) until dropped, when it and
/// every process of the prefix end (`wineserver -k`). Wine ends its services when the last other
/// process of the prefix exits, which here would stop the service between two `wine` commands.
struct PersistentWineServer;

impl PersistentWineServer {
    fn start() -> PersistentWineServer {
        // Another server of this prefix (the loader suite's) ends first: -p starts a new one only.
        assert!(Command::new("wineserver")
            .arg("-w")
            .status()
            .unwrap()
            .success());
        assert!(Command::new("wineserver")
            .arg("-p")
            .status()
            .unwrap()
            .success());
        // The first wine program starts the prefix's system processes (services.exe, …), which
        // keep its standard streams: without any, so that no later command waits on them.
        let boot = Command::new("wine")
            .args(["sc", "query", "mig-loader"])
            .env("WINEDEBUG", "-all")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(boot.is_ok(), "{boot:?}");
        PersistentWineServer
    }
}

impl Drop for PersistentWineServer {
    fn drop(&mut self) {
        let _ = Command::new("wineserver").arg("-k").status();
    }
}

fn service_query() -> String {
    String::from_utf8_lossy(&wine(&["sc", "query", "mig-loader"]).stdout).into_owned()
}

/// Waits (at most `bound`) until `done` holds; fails with `what` and the service log.
#[track_caller]
fn wait_for(bound: Duration, what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < bound,
            "{what}: not after {bound:?}; service log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Removes the service and files an earlier, failed run of this test may have left in the
/// prefix. Its product stays registered, and the next install's major upgrade removes it with the
/// service: the test wants the fresh prefix `make wine-prefix` makes.
fn remove_leftovers(mig: &Path) {
    let _ = wine(&["sc", "stop", "mig-loader"]);
    let _ = wine(&["sc", "delete", "mig-loader"]);
    let _ = std::fs::remove_dir_all(mig);
}

#[test]
fn under_wine_the_installed_service_installs_a_manifest_restarts_on_its_new_image_and_uninstalls() {
    let loader = windows_loader();
    let prefix = PathBuf::from(std::env::var_os("WINEPREFIX").unwrap());
    let mig = prefix.join("drive_c/mig");
    let _server = PersistentWineServer::start();
    remove_leftovers(&mig);
    let log = mig.join("mig-loader.log");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let hash = |name: &str| sha256_hex(&std::fs::read(mig.join(name)).unwrap());

    // The stand-in API offers generation 1; the run-time configuration points the runs at it.
    let f = Fixture::new();
    let g1 = f.generation(1);
    f.publish(&g1);
    std::fs::create_dir_all(&mig).unwrap();
    std::fs::write(mig.join("mig-loader.cfg"), f.runtime_config()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let msi = build_msi(dir.path());
    let msi_arg = format!("Z:{}", msi.display());
    let pidkey = format!("PIDKEY={LOADER_KEY}");
    let install = || {
        let out = wine(&["msiexec", "/i", &msi_arg, &pidkey, "/qn"]);
        assert!(out.status.success(), "msiexec /i: {out:?}");
    };

    // Installed: the executable, the key, the service, whose first run installs generation 1.
    install();
    let original = sha256_hex(&std::fs::read(&loader.path).unwrap());
    assert_eq!(hash("mig-loader.exe"), original);
    assert_eq!(
        std::fs::read_to_string(mig.join("mig-loader.key")).unwrap(),
        format!("{LOADER_KEY}\n")
    );
    wait_for(
        Duration::from_secs(60),
        "the service's first run",
        &log,
        || log_text().contains("done: new files installed"),
    );
    assert!(log_text().starts_with(&format!(
        "{} mig-loader service: started",
        &log_text()[..20]
    )));
    assert_eq!(hash("mig-agent.exe"), sha256_hex(&g1.files["mig-agent"]));
    assert_eq!(hash("agent.key"), sha256_hex(&g1.files["agentkey"]));
    assert_eq!(f.running_agent().as_deref(), Some("v1"));
    assert_eq!(f.reports()[0]["result"], "installed");
    assert!(service_query().contains("RUNNING"), "{}", service_query());

    // Uninstalled: the service stopped and deleted, the executable and the key removed.
    let out = wine(&["msiexec", "/x", &msi_arg, "/qn"]);
    assert!(out.status.success(), "msiexec /x: {out:?}");
    assert!(!mig.join("mig-loader.exe").exists());
    assert!(!mig.join("mig-loader.key").exists());
    assert!(!service_query().contains("mig-loader"));
    assert!(
        log_text().ends_with("mig-loader service: stopped\n"),
        "{}",
        log_text()
    );

    // Installed again, with generation 2 offered, which includes a new mig-loader.exe (the same
    // program with bytes appended): the service's first run installs it; the service then
    // restarts on the new image, whose first run finds everything current and removes the image
    // the old service ran from.
    std::fs::remove_file(&log).unwrap();
    let mut next = std::fs::read(&loader.path).unwrap();
    next.extend_from_slice(b"\nnext generation\n");
    let mut g2 = f.generation(2);
    g2.files.insert("mig-loader", next.clone());
    f.publish(&g2);
    f.server.clear_requests();
    install();
    wait_for(
        Duration::from_secs(120),
        "the restarted service's run",
        &log,
        || {
            let t = log_text();
            t.matches("mig-loader service: started (process").count() == 2
                && t.contains("all files are current")
        },
    );
    let t = log_text();
    let replaced = t
        .find("mig-loader.exe was replaced: restarting the service")
        .unwrap_or_else(|| panic!("{t}"));
    assert!(t[..replaced].contains("done: new files installed"), "{t}");
    assert!(
        t[replaced..].contains("service mig-loader started again"),
        "{t}"
    );
    assert!(t[replaced..].contains("all files are current"), "{t}");
    assert_eq!(hash("mig-loader.exe"), sha256_hex(&next));
    assert_eq!(hash("mig-agent.exe"), sha256_hex(&g2.files["mig-agent"]));
    assert_eq!(f.running_agent().as_deref(), Some("v2"));
    assert!(!mig.join("mig-loader.exe.mig-prev").exists());
    assert_eq!(f.reports().len(), 1);
    wait_for(Duration::from_secs(30), "the service running", &log, || {
        service_query().contains("RUNNING")
    });
    // Uninstalled again: the replaced executable goes too.
    let out = wine(&["msiexec", "/x", &msi_arg, "/qn"]);
    assert!(out.status.success(), "msiexec /x: {out:?}");
    assert!(!mig.join("mig-loader.exe").exists());
    assert!(!mig.join("mig-loader.key").exists());
    assert!(!service_query().contains("mig-loader"));
    let _ = std::fs::remove_dir_all(&mig);
}
