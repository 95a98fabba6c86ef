//! The system benchmark behind BENCHMARKS.md: the release binaries against each other, and
//! mig-api side by side with nginx serving the same bytes on the same machine in the same run.
//!
//!     cargo build --release -p api -p console --bins
//!     cargo bench -p e2e --bench system             # every table
//!     cargo bench -p e2e --bench system -- replicas # only SQLite / PostgreSQL / two replicas
//!     cargo bench -p e2e --bench system -- freshness # only with and without a freshness key
//!
//! Needs nginx, wrk and GNU time (`apt-get install nginx wrk time`). Prints markdown tables.

use console::api::{Api, Credential};
use console::config::{Config, Identity};
use console::signer::Signer;
use e2e::deployment::Deployment;
use e2e::host::{sha256_hex, Host};
use e2e::measure::{install_once, noise, time_v};
use e2e::nginx::Nginx;
use e2e::{binary, dev_key, ApiOptions};
use mig_protocol::admin::{ManifestRecord, NewManifest, NewSignature};
use mig_protocol::statement::Platform;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Active manifests the API must consider for every loader request.
const MANIFESTS: usize = 100;
/// The file body served in the throughput comparison.
const BODY: usize = 1024 * 1024;
/// wrk's settings for every comparison: 8 connections for 5 seconds, from one thread or, where
/// one wrk thread would be the bottleneck (large bodies), from two.
const WRK: &[&str] = &["-c8", "-d5s", "--latency"];

/// One table that can run on its own: its work directory, the agent script and the file body.
type Table = fn(&Path, &[u8], &[u8]) -> Result<(), String>;

fn main() {
    // `cargo bench -p e2e --bench system -- replicas`: only the replicas' table.
    let only = |mode: &str| std::env::args().any(|a| a == mode);
    let alone = |table: Table| {
        tempfile::tempdir()
            .map_err(|e| e.to_string())
            .and_then(|dir| {
                let host = Host::new("http://127.0.0.1:1/api/v2/", "unused");
                table(dir.path(), &host.agent_script("v1", true), &noise(BODY))
            })
    };
    let done = if only("replicas") {
        alone(replicas)
    } else if only("freshness") {
        alone(freshness)
    } else {
        run()
    };
    if let Err(e) = done {
        eprintln!("bench system: {e}");
        std::process::exit(1);
    }
}

fn require(tool: &str) -> Result<(), String> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status();
    if found.map(|s| s.success()).unwrap_or(false) {
        Ok(())
    } else {
        Err(format!("{tool} is missing: apt-get install nginx wrk time"))
    }
}

/// admin1's console client, signing in-process with its key file.
fn admin_api(base_url: &str, admin: &str) -> Result<(Api, Rc<Signer>), String> {
    let text = format!(
        "[api]\nurl = {base_url}\n[signing]\nkeyfile = {}\n",
        dev_key(&format!("{admin}.sec.asc")).display()
    );
    let cfg =
        Config::from_text(Path::new("bench-migrc"), &text, None).map_err(|e| e.to_string())?;
    let identity = Identity::KeyFile {
        path: dev_key(&format!("{admin}.sec.asc")),
    };
    let signer = Rc::new(Signer::new(&identity, &|_| None).map_err(|e| e.to_string())?);
    let api = Api::new(
        &cfg,
        Credential::Token(signer.clone()),
        &mut std::io::sink(),
    )
    .map_err(|e| e.to_string())?;
    Ok((api, signer))
}

/// Creates and activates one manifest through the admin endpoints (two signatures); with
/// `v1`, made for MIG's Go loaders too, each administrator signing its v1 text as well.
fn publish(
    admins: &[(Api, Rc<Signer>)],
    name: &str,
    target: &str,
    archive: &Path,
    v1: bool,
) -> Result<u64, String> {
    use base64::Engine as _;
    let bytes = std::fs::read(archive).map_err(|e| e.to_string())?;
    let (api1, _) = &admins[0];
    let rec: ManifestRecord = console::api::typed(
        &api1
            .post(
                "manifests",
                &NewManifest {
                    name: name.into(),
                    target: target.into(),
                    platform: Platform::host(),
                    valid_days: None,
                    halt: None,
                    v1,
                    archive: base64::engine::general_purpose::STANDARD.encode(bytes),
                },
            )
            .map_err(|e| e.to_string())?,
        "manifest",
    )
    .map_err(|e| e.to_string())?;
    for (api, signer) in admins {
        let statement = api
            .get_bytes(&format!("manifests/{}/statement", rec.id), 1 << 20)
            .map_err(|e| e.to_string())?;
        let signature = signer.sign(&statement).map_err(|e| e.to_string())?;
        let v1_signature = match &rec.v1_text {
            Some(text) => Some(go_signature(signer, text)?),
            None => None,
        };
        api.post(
            &format!("manifests/{}/signatures", rec.id),
            &NewSignature {
                signature,
                v1_signature,
            },
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(rec.id)
}

/// A signature over a v1 text that MIG's Go loaders accept, made again a second later while it
/// is the one RSA signature in 256 they refuse (mig_protocol::signature::go_check).
fn go_signature(signer: &Signer, text: &str) -> Result<String, String> {
    let Signer::KeyFile { key, .. } = signer else {
        return Err("the benchmark's administrators sign with key files".into());
    };
    let public = key.to_public_key();
    loop {
        let sig = signer.sign(text.as_bytes()).map_err(|e| e.to_string())?;
        if mig_protocol::signature::go_check(&sig, &public).is_ok() {
            return Ok(sig);
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
}

/// A TCP relay that counts the bytes each way, so a loader run's traffic can be measured.
struct CountingProxy {
    port: u16,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

fn pump(mut from: TcpStream, mut to: TcpStream, counter: Arc<AtomicU64>) {
    let mut buf = [0u8; 16384];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl CountingProxy {
    fn start(upstream: std::net::SocketAddr) -> Result<CountingProxy, String> {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        let (up, down, connections) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (u, dn, c) = (up.clone(), down.clone(), connections.clone());
        std::thread::spawn(move || {
            for client in l.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                c.fetch_add(1, Ordering::Relaxed);
                let (c2, s2) = (client.try_clone(), server.try_clone());
                if let (Ok(c2), Ok(s2)) = (c2, s2) {
                    let (u, dn) = (u.clone(), dn.clone());
                    std::thread::spawn(move || pump(client, s2, u));
                    std::thread::spawn(move || pump(server, c2, dn));
                }
            }
        });
        Ok(CountingProxy {
            port,
            up,
            down,
            connections,
        })
    }
}

/// Sum of `mig_api_requests_total` over the loader routes, from the API's /metrics.
fn api_requests(d: &Deployment) -> Result<u64, String> {
    let (status, body) = e2e::http_get(d.api.addr, "/api/v2/metrics", Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("metrics answered {status}"));
    }
    Ok(String::from_utf8_lossy(&body)
        .lines()
        // Only the loader's routes: the metrics requests of this benchmark are counted too.
        .filter(|l| l.starts_with("mig_api_requests_total{") && l.contains(" /loader/"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// nginx serving `www` with the same URL layout as mig-api; POST to a static file answers the
/// file (the usual `error_page 405 =200 $uri` rule), as the manifest route does.
fn nginx_serving(www: &Path) -> Result<Nginx, String> {
    Nginx::start(&format!(
        "  server {{\n    listen 127.0.0.1:{{port}};\n    root {};\n    default_type application/json;\n    error_page 405 =200 $uri;\n  }}\n",
        www.display()
    ))
}

struct Wrk {
    rps: f64,
    transfer: String,
    p50: String,
    p99: String,
    /// CPU seconds per second of the run: the server's (every process of it) and wrk's own.
    server_cpu: f64,
    wrk_cpu: f64,
}

/// CPU seconds (user + system) a process and all its descendants have used so far, from
/// `/proc/<pid>/stat` (nginx works in child processes; mig-api in threads of one).
fn tree_cpu_seconds(root: u32) -> Result<f64, String> {
    let ticks = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    // (pid, ppid, utime + stime) of every process; the command name may hold spaces, so the
    // fields are counted after its closing parenthesis.
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))? {
        let Ok(entry) = entry else { continue };
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state(0) ppid(1) … utime(11) stime(12).
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        all.push((pid, num(1) as u32, num(11) + num(12)));
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(all.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    Ok(all
        .iter()
        .filter(|p| tree.contains(&p.0))
        .map(|p| p.2)
        .sum::<u64>() as f64
        / ticks)
}

/// Runs wrk with `threads` threads against `url` served by the process tree of `server`.
fn wrk(url: &str, script: &Path, threads: u32, server: u32) -> Result<Wrk, String> {
    let times = script.with_extension("time");
    let before = tree_cpu_seconds(server)?;
    let started = std::time::Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%U %S")
        .arg("-o")
        .arg(&times)
        .arg("wrk")
        .arg(format!("-t{threads}"))
        .args(WRK)
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let wall = started.elapsed().as_secs_f64();
    let server_cpu = (tree_cpu_seconds(server)? - before) / wall;
    let wrk_cpu = std::fs::read_to_string(&times)
        .ok()
        .and_then(|t| {
            let mut v = t.split_whitespace().filter_map(|x| x.parse::<f64>().ok());
            Some(v.next()? + v.next()?)
        })
        .ok_or_else(|| format!("no CPU times from GNU time in {}", times.display()))?
        / wall;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let find = |p: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(p).map(|v| v.trim().to_string()))
    };
    if text.contains("Non-2xx") {
        return Err(format!("wrk saw errors against {url}:\n{text}"));
    }
    Ok(Wrk {
        rps: find("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no Requests/sec in:\n{text}"))?,
        transfer: find("Transfer/sec:").unwrap_or_default(),
        p50: find("50%").unwrap_or_default(),
        p99: find("99%").unwrap_or_default(),
        server_cpu,
        wrk_cpu,
    })
}

/// The loader's HTTP client, plain HTTP allowed (loopback only here).
fn plain_client(base_url: &str) -> Result<mig_http::Client, String> {
    mig_http::Client::new(
        &mig_http::HttpConfig {
            allow_plain_http: true,
            ..Default::default()
        },
        base_url,
    )
    .map_err(|e| e.to_string())
}

/// A loader's `POST loader/manifest` with `request`; the answer's bytes.
fn ask_manifest(client: &mig_http::Client, key: &str, request: &str) -> Result<Vec<u8>, String> {
    client
        .request(
            mig_http::Method::Post,
            "loader/manifest",
            &[("X-LOADERKEY", key)],
            Some(request.as_bytes()),
        )
        .and_then(|r| r.error_for_status(1 << 16))
        .and_then(|r| r.read_capped(1 << 20))
        .map_err(|e| e.to_string())
}

fn lua(dir: &Path, name: &str, method: &str, key: &str, body: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    let body_line = if body.is_empty() {
        String::new()
    } else {
        format!("wrk.body = [==[{body}]==]\n")
    };
    std::fs::write(
        &path,
        format!("wrk.method = \"{method}\"\nwrk.headers[\"X-LOADERKEY\"] = \"{key}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n{body_line}"),
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}

/// `post` with a request function that reports another agent name on every request: never the
/// poll cache, always the WASM engine. Written to `out`.
fn changing_lua(post: &Path, out: &Path) -> Result<PathBuf, String> {
    std::fs::write(
        out,
        format!(
            "{}local n = 0\nrequest = function()\n  n = n + 1\n  \
             return wrk.format(nil, nil, nil, (string.gsub(wrk.body, '\"bench\"', '\"bench' .. n .. '\"')))\nend\n",
            std::fs::read_to_string(post).map_err(|e| e.to_string())?
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(out.to_path_buf())
}

/// A loader's request that matches every manifest targeting `env#>>'{os}'='linux'`.
fn linux_request() -> String {
    serde_json::json!({
        "agent": {"name": "bench", "environment": {"os": "linux", "arch": "amd64"}},
        "have": {"serial": 0}
    })
    .to_string()
}

/// A deployment with one enrolled loader and one manifest for Linux (`agent` and `body`) signed
/// by admin1 and admin2; the loader's key.
fn one_manifest(
    options: ApiOptions,
    agent: &[u8],
    body: &[u8],
) -> Result<(Deployment, String), String> {
    let d = Deployment::start(options);
    let admins = vec![
        admin_api(&d.api.base_url, "admin1")?,
        admin_api(&d.api.base_url, "admin2")?,
    ];
    let (_, key) = d.enrol_loader("bench.internal", None);
    let ours = d.archive("ours", &[("mig-agent", agent), ("configuration", body)]);
    publish(&admins, "ours", "env#>>'{os}'='linux'", &ours, false)?;
    Ok((d, key))
}

fn run() -> Result<(), String> {
    for t in ["nginx", "wrk", "/usr/bin/time"] {
        require(t)?;
    }
    if !binary("mig-api").to_string_lossy().contains("/release/") {
        return Err("run with `cargo bench` (release binaries)".into());
    }
    let loader = size_budget::musl::loader()?.stripped;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;

    // A deployment with MANIFESTS active manifests: only the oldest targets our loader, so every
    // request evaluates all of them.
    let d = Deployment::start(ApiOptions::default());
    let (_, key) = d.enrol_loader("bench.internal", Some("tags#>>'{operator}'='myorg'"));
    let admins = vec![
        admin_api(&d.api.base_url, "admin1")?,
        admin_api(&d.api.base_url, "admin2")?,
    ];
    let host = Host::new(&d.api.base_url, &key);
    host.with_os_release()?;
    let body = noise(BODY);
    let agent = host.agent_script("v1", true);
    let ours = d.archive("ours", &[("mig-agent", &agent), ("configuration", &body)]);
    publish(
        &admins,
        "ours",
        "env#>>'{os}'='linux' AND rollout('bench', 100)",
        &ours,
        false,
    )?;
    let other = d.archive("other", &[("mig-agent", b"#!/bin/sh\nexit 0\n")]);
    for i in 1..MANIFESTS {
        let target = format!("env#>>'{{os}}'='linux' AND tags#>>'{{operator}}'='team-{i}'");
        publish(&admins, &format!("other {i}"), &target, &other, false)?;
    }

    // Loader: first install, then a measured no-change run through a byte-counting relay.
    host.run(&loader, &[]).ok();
    let proxy = CountingProxy::start(d.api.addr)?;
    std::fs::write(
        host.root.join("etc/mig/mig-loader.cfg"),
        format!(
            "[loader]\napi = \"http://127.0.0.1:{}/api/v2/\"\n",
            proxy.port
        ),
    )
    .map_err(|e| e.to_string())?;
    let before = api_requests(&d)?;
    let (m, out) = time_v(&loader, &["--root".as_ref(), host.root.as_os_str()])?;
    if out.stdout.contains("refreshing") {
        return Err(format!("the no-change run changed something:\n{out}"));
    }
    let requests = api_requests(&d)? - before;
    println!("## mig-loader, no-change run against mig-api with {MANIFESTS} active manifests\n");
    println!("| CPU user | CPU system | peak RSS | HTTP requests | connections | bytes sent | bytes received |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {:.3} s | {:.3} s | {} KiB | {requests} | {} | {} | {} |\n",
        m.user_s,
        m.system_s,
        m.peak_kib,
        proxy.connections.load(Ordering::Relaxed),
        proxy.up.load(Ordering::Relaxed),
        proxy.down.load(Ordering::Relaxed)
    );

    println!("## mig-loader, first install (peak RSS)\n");
    println!("| file installed | peak RSS | CPU user | CPU system |");
    println!("|---|---|---|---|");
    for size in [1024 * 1024, 64 * 1024 * 1024] {
        let m = install_once(&loader, size)?;
        println!(
            "| {} MiB | {} KiB | {:.3} s | {:.3} s |",
            size >> 20,
            m.peak_kib,
            m.user_s,
            m.system_s
        );
    }
    println!();

    // The same bytes from nginx: the manifest answer and the file body, at the same paths.
    let client = plain_client(&d.api.base_url)?;
    let request = serde_json::json!({
        "agent": {"name": "bench", "environment": {"os": "linux", "arch": "amd64"}, "tags": {"operator": "myorg"}},
        "have": {"serial": 0}
    })
    .to_string();
    let answer = ask_manifest(&client, &key, &request)?;
    let sha = sha256_hex(&body);
    let www = work.path().join("www");

    // MIG's Go loaders (docs/design.md §8.3): a second deployment serving [v1], with MANIFESTS
    // manifests made for them and signed by rsa1 and rsa2, only the oldest targeting the loader.
    // Their polls are never answered from the poll cache: every one is a selection.
    let fps: Vec<String> = ["rsa1", "rsa2"]
        .iter()
        .map(|a| e2e::fingerprint(&dev_key(&format!("{a}.pub.asc"))))
        .collect();
    let v1d = Deployment::start(ApiOptions {
        extra: format!(
            "[v1]\nfingerprints = {}\nrequiredsignatures = 2\n",
            fps.join(", ")
        ),
        ..ApiOptions::default()
    });
    for a in ["rsa1", "rsa2"] {
        let public = dev_key(&format!("{a}.pub.asc"));
        let public = public.to_str().ok_or("a key path is not UTF-8")?;
        let out = v1d.admin1.run(&[
            "create",
            "investigator",
            "--name",
            a,
            "--pubkey",
            public,
            "--perms",
            "PermManifest",
        ]);
        if !out.success() {
            return Err(format!("creating investigator {a}: {out}"));
        }
    }
    let rsa = vec![
        admin_api(&v1d.api.base_url, "rsa1")?,
        admin_api(&v1d.api.base_url, "rsa2")?,
    ];
    let (_, go_key) = v1d.enrol_loader("bench-go.internal", Some("tags#>>'{operator}'='myorg'"));
    let go_ours = v1d.archive("ours", &[("mig-agent", &agent), ("configuration", &body)]);
    publish(
        &rsa,
        "ours",
        "env#>>'{os}'='linux' AND rollout('bench', 100)",
        &go_ours,
        true,
    )?;
    for i in 1..MANIFESTS {
        let target = format!("env#>>'{{os}}'='linux' AND tags#>>'{{operator}}'='team-{i}'");
        publish(&rsa, &format!("other {i}"), &target, &other, true)?;
    }
    let v1_base = v1d.api.base_url.replace("/api/v2/", "/api/v1/");
    let go_client = plain_client(&v1_base)?;
    let form = |object: &str| {
        let p = serde_json::json!({
            "agent": {"name": "bench", "mode": "", "pid": 7,
                      "environment": {"os": "linux", "arch": "amd64", "isproxied": false, "aws": {}},
                      "tags": {"operator": "myorg"}},
            "object": object
        })
        .to_string();
        mig_protocol::mig_v1::form_body(&p)
    };
    let mut go_scripts = Vec::new();
    for (route, object) in [
        ("manifest/agent/", ""),
        ("manifest/fetch/", "configuration"),
    ] {
        let form_body = form(object);
        let answer = go_client
            .request(
                mig_http::Method::Post,
                route,
                &[("X-LOADERKEY", &go_key)],
                Some(form_body.as_bytes()),
            )
            .and_then(|r| r.error_for_status(1 << 16))
            .and_then(|r| r.read_capped(16 << 20))
            .map_err(|e| format!("{route}: {e}"))?;
        // nginx answers a POST to `…/` with the directory's index file.
        let dir = www.join("api/v1").join(route);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("index.html"), &answer).map_err(|e| e.to_string())?;
        let name = format!("v1-{}.lua", object.len());
        go_scripts.push(lua(work.path(), &name, "POST", &go_key, &form_body)?);
    }
    std::fs::create_dir_all(www.join("api/v2/loader/files")).map_err(|e| e.to_string())?;
    std::fs::write(www.join("api/v2/loader/manifest"), &answer).map_err(|e| e.to_string())?;
    std::fs::write(www.join("api/v2/loader/files").join(&sha), &body).map_err(|e| e.to_string())?;
    let nginx = nginx_serving(&www)?;
    let post = lua(work.path(), "post.lua", "POST", &key, &request)?;
    let get = lua(work.path(), "get.lua", "GET", &key, "")?;
    let changing = changing_lua(&post, &work.path().join("changing.lua"))?;
    let ngx = format!("http://127.0.0.1:{}/api/v2/", nginx.port);

    println!(
        "## mig-api side by side with nginx (same bytes, same machine, same run; wrk {})\n",
        WRK.join(" ")
    );
    println!(
        "Server CPU is every process of the server (cores busy: CPU seconds per second); \
         requests per CPU-second is requests/s over that. wrk CPU is the load generator's.\n"
    );
    println!("| what | server | wrk threads | requests/s | transfer/s | p50 | p99 | server CPU | requests per CPU-second | wrk CPU | mig-api / nginx (requests/s, per CPU-second) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let api_pid = d.api.pid().ok_or("the API's process id is unknown")?;
    let v1_pid = v1d.api.pid().ok_or("the v1 API's process id is unknown")?;
    let ngx_v1 = format!("http://127.0.0.1:{}/api/v1/", nginx.port);
    let v2 = (d.api.base_url.as_str(), ngx.as_str(), api_pid);
    let v1 = (v1_base.as_str(), ngx_v1.as_str(), v1_pid);
    for (what, (api_base, ngx_base, pid), path, script, threads) in [
        (
            format!("POST loader/manifest ({MANIFESTS} active manifests, nothing changed: poll cache)"),
            v2,
            "loader/manifest".to_string(),
            &post,
            1,
        ),
        (
            format!("POST loader/manifest ({MANIFESTS} active manifests, facts changed every request: WASM targeting)"),
            v2,
            "loader/manifest".to_string(),
            &changing,
            1,
        ),
        (
            format!("GET loader/files/<sha256> ({} MiB body)", BODY >> 20),
            v2,
            format!("loader/files/{sha}"),
            &get,
            1,
        ),
        (
            format!("GET loader/files/<sha256> ({} MiB body)", BODY >> 20),
            v2,
            format!("loader/files/{sha}"),
            &get,
            2,
        ),
        (
            format!("POST v1 manifest/agent/ (a Go loader; {MANIFESTS} active manifests: selection every request)"),
            v1,
            "manifest/agent/".to_string(),
            &go_scripts[0],
            1,
        ),
        (
            format!("POST v1 manifest/fetch/ ({} MiB file: base64 of gzip)", BODY >> 20),
            v1,
            "manifest/fetch/".to_string(),
            &go_scripts[1],
            1,
        ),
    ] {
        let a = wrk(&format!("{api_base}{path}"), script, threads, pid)?;
        let n = wrk(&format!("{ngx_base}{path}"), script, threads, nginx.pid())?;
        let per_cpu = |w: &Wrk| w.rps / w.server_cpu.max(1e-9);
        println!(
            "| {what} | mig-api | {threads} | {:.0} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2}, {:.2} |",
            a.rps,
            a.transfer,
            a.p50,
            a.p99,
            a.server_cpu,
            per_cpu(&a),
            a.wrk_cpu,
            a.rps / n.rps,
            per_cpu(&a) / per_cpu(&n)
        );
        println!(
            "| | nginx | {threads} | {:.0} | {} | {} | {} | {:.2} | {:.0} | {:.2} | |",
            n.rps,
            n.transfer,
            n.p50,
            n.p99,
            n.server_cpu,
            per_cpu(&n),
            n.wrk_cpu
        );
    }
    replicas(work.path(), &agent, &body)?;
    freshness(work.path(), &agent, &body)
}

/// docs/design.md §4.20: what the freshness signature costs a poll. Two deployments on SQLite,
/// one with the development freshness key and one without, one manifest each; their polls are
/// measured in alternation (without, with, without, with) after one unmeasured round each, so
/// both see the same machine. The answer is fetched before and after each measured round: with
/// the key its signature must not have changed (signed once per answer and generation, never
/// per poll), or the benchmark fails.
fn freshness(dir: &Path, agent: &[u8], body: &[u8]) -> Result<(), String> {
    println!(
        "\n## The freshness signature per poll: without and with a freshness key (same run; wrk -t1 {})\n",
        WRK.join(" ")
    );
    println!("| what | freshness key | round | requests/s | p50 | p99 | server CPU | requests per CPU-second | answer bytes |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let request = linux_request();
    let mut sides = Vec::new();
    for with_key in [false, true] {
        let options = ApiOptions {
            freshness: with_key,
            ..ApiOptions::default()
        };
        let (d, key) = one_manifest(options, agent, body)?;
        let client = plain_client(&d.api.base_url)?;
        let answer = ask_manifest(&client, &key, &request)?;
        let has_field = String::from_utf8_lossy(&answer).contains("\"freshness\"");
        if has_field != with_key {
            return Err(format!(
                "an answer {} a freshness signature",
                if with_key { "without" } else { "with" }
            ));
        }
        let tag = if with_key { "with" } else { "without" };
        let post = lua(dir, &format!("freshness-{tag}.lua"), "POST", &key, &request)?;
        let changing = changing_lua(&post, &dir.join(format!("freshness-{tag}-changing.lua")))?;
        sides.push((d, key, client, answer, post, changing));
    }
    for (what, changed) in [
        ("POST loader/manifest, nothing changed (poll cache)", false),
        ("POST loader/manifest, facts changed every request", true),
    ] {
        for round in 0..3 {
            for (d, key, client, answer, post, changing) in &sides {
                let with_key = String::from_utf8_lossy(answer).contains("\"freshness\"");
                let script = if changed { changing } else { post };
                let pid = d.api.pid().ok_or("the API's process id is unknown")?;
                let w = wrk(&d.api.url("loader/manifest"), script, 1, pid)?;
                let after = ask_manifest(client, key, &request)?;
                if with_key && &after != answer {
                    return Err(format!(
                        "{what}: the answer changed during the round (a freshness signature made \
                         per poll?)"
                    ));
                }
                // Round 0 warms each side up (caches, the evaluator's instances); not shown.
                if round > 0 {
                    println!(
                        "| {what} | {} | {round} | {:.0} | {} | {} | {:.2} | {:.0} | {} |",
                        if with_key { "yes" } else { "no" },
                        w.rps,
                        w.p50,
                        w.p99,
                        w.server_cpu,
                        w.rps / w.server_cpu.max(1e-9),
                        answer.len()
                    );
                }
            }
        }
    }
    Ok(())
}

/// docs/design.md §6.6: the loader's two requests against one replica on SQLite, one on
/// PostgreSQL and two on PostgreSQL, in one run. Each replica gets its own wrk (8 connections):
/// one replica one wrk of two threads, two replicas one wrk of one thread each, side by side,
/// so the two wrk threads compete for the same 2 cores either way.
fn replicas(dir: &Path, agent: &[u8], body: &[u8]) -> Result<(), String> {
    println!(
        "\n## Replicas: one on SQLite, one and two on PostgreSQL (same run; one wrk {} per replica)\n",
        WRK.join(" ")
    );
    println!("| what | database | replicas | requests/s (sum) | transfer/s (each wrk) | p99 (each wrk) | / one on SQLite |");
    println!("|---|---|---|---|---|---|---|");
    let sha = sha256_hex(body);
    let mut baseline: Vec<f64> = Vec::new();
    for (database, n) in [("SQLite", 1usize), ("PostgreSQL", 1), ("PostgreSQL", 2)] {
        let postgres = (database == "PostgreSQL").then(e2e::postgres::PgDatabase::fresh);
        let options = ApiOptions {
            postgres,
            ..ApiOptions::default()
        };
        let (d, key) = one_manifest(options, agent, body)?;
        let mut servers = vec![&d.api];
        let extra: Vec<e2e::ApiServer> = (1..n).map(|_| d.api.replica()).collect();
        servers.extend(extra.iter());
        let request = linux_request();
        // The manifest is given on the first replica, its body fetched from every one.
        ask_manifest(&plain_client(&d.api.base_url)?, &key, &request)?;
        let post = lua(
            dir,
            &format!("replicas-post-{database}-{n}.lua"),
            "POST",
            &key,
            &request,
        )?;
        let get = lua(
            dir,
            &format!("replicas-get-{database}-{n}.lua"),
            "GET",
            &key,
            "",
        )?;
        let threads = if n == 1 { 2 } else { 1 };
        for (row, (what, path, script)) in [
            (
                "POST loader/manifest (nothing changed)",
                "loader/manifest".to_string(),
                &post,
            ),
            (
                "GET loader/files/<sha256> (1 MiB body)",
                format!("loader/files/{sha}"),
                &get,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            // A first, unmeasured run on each replica: the pools of PostgreSQL connections
            // fill (a connection storm of 16 at once costs some 650 ms on 2 busy cores) and
            // every replica has the body in its cache, as in a deployment that has been up.
            let measure = || -> Vec<Result<Wrk, String>> {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = servers
                        .iter()
                        .map(|s| {
                            let url = s.url(&path);
                            let pid = s.pid().unwrap_or(0);
                            scope.spawn(move || wrk(&url, script, threads, pid))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join()
                                .unwrap_or_else(|_| Err("wrk thread panicked".into()))
                        })
                        .collect()
                })
            };
            measure().into_iter().collect::<Result<Vec<_>, _>>()?;
            let runs = measure();
            let runs = runs.into_iter().collect::<Result<Vec<_>, _>>()?;
            let rps: f64 = runs.iter().map(|w| w.rps).sum();
            if baseline.len() <= row {
                baseline.push(rps);
            }
            let each =
                |f: &dyn Fn(&Wrk) -> String| runs.iter().map(f).collect::<Vec<_>>().join(", ");
            println!(
                "| {what} | {database} | {n} | {rps:.0} | {} | {} | {:.2} |",
                each(&|w| w.transfer.clone()),
                each(&|w| w.p99.clone()),
                rps / baseline[row]
            );
        }
    }
    Ok(())
}
