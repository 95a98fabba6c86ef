//! Writes each target's seed corpus (`corpus/<target>/`) from real inputs, made by the product's
//! own code and tools: a statement as the API makes it, signatures by the development keys,
//! a journal as the loader writes it, the shipped configuration files, a GNU tar archive, the
//! expressions of the plugins' tests, and the API's answers. Run before fuzzing, so the seeds
//! follow the formats as they change: `cargo run --release --bin seeds`.

use base64::Engine as _;
use mig_protocol::admin::AuthToken;
use mig_protocol::dictionary::DictName;
use mig_protocol::loader::{ManifestRequest, ManifestResponse, Report, ReportResult};
use mig_protocol::signature::{parse_secret_key, sign_detached};
use mig_protocol::statement::{Entry, Platform, Statement, FORMAT};
use mig_protocol::time::Timestamp;
use mig_protocol::{Serial, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(name), bytes).expect("seed file");
}

fn http(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn main() {
    let agent = b"the agent";
    let statement = Statement {
        format: FORMAT,
        serial: Serial::new(7),
        name: "fleet-2026-12".into(),
        platform: Platform::host(),
        issued: Timestamp::now(),
        expires: Timestamp::now().plus(86_400),
        entries: vec![
            Entry {
                name: "mig-agent".into(),
                sha256: Sha256::of(agent),
                size: agent.len() as u64,
            },
            Entry {
                name: "configuration".into(),
                sha256: Sha256::of(b"[agent]\n"),
                size: 8,
            },
        ],
    };
    let bytes = statement.to_bytes().expect("the seed statement is valid");
    write("statement", "statement.json", &bytes);

    let mut signatures = Vec::new();
    for admin in ["admin1", "admin2"] {
        let path = root().join(format!("conf/dev-keys/{admin}.sec.asc"));
        let armored = std::fs::read_to_string(path).expect("development secret key");
        let key = parse_secret_key(admin, &armored).expect("secret key parses");
        signatures.push(sign_detached(&key, "", &bytes).expect("signs"));
    }
    let mut sig_seed = bytes.clone();
    for s in &signatures {
        sig_seed.push(0);
        sig_seed.extend_from_slice(s.as_bytes());
    }
    write("signature", "two-of-three.bin", &sig_seed);
    let flat = mig_protocol::signature::dearmor(&signatures[0]).expect("dearmors");
    write("signature", "mig-flat.bin", format!("x\0{flat}").as_bytes());

    use loader_min::journal::{Journal, JournalEntry, Phase};
    let journal = Journal {
        serial: Serial::new(7),
        phase: Phase::Swapped,
        entries: vec![
            JournalEntry {
                name: DictName::MigAgent,
                existed: true,
            },
            JournalEntry {
                name: DictName::Configuration,
                existed: false,
            },
        ],
    };
    write("journal", "swapped.txt", journal.to_text().as_bytes());

    write(
        "runtime_config",
        "mig-loader.cfg",
        b"[loader]\napi = https://api.example.net/api/v2/\ntags = operator:IT\ntags = env:prod\n\
          discoverpublicip = on\ndiscoverawsmeta = off\n[logging]\nmode = stdout\n",
    );
    for (name, file) in [("api.cfg", "conf/api.cfg"), ("migrc", "conf/migrc.example")] {
        let text = std::fs::read(root().join(file)).expect("shipped configuration");
        write("ini", name, &text);
    }

    let token = AuthToken::new(
        Timestamp::now(),
        "5f0e1d2c3b4a".into(),
        "https://mig-api.example.net:1664/api/v2/".into(),
    );
    write("admin_token", "token.txt", token.header_value().as_bytes());

    let request = ManifestRequest::default();
    let request_json = serde_json::to_vec(&request).expect("json");
    write("wire_json", "manifest-request.json", &request_json);
    // MIG's v1 protocol: a Go loader's form body, the v1 text of the statement's entries, a
    // Collection+JSON answer and a signature.
    let form = mig_protocol::mig_v1::form_body(&String::from_utf8_lossy(&request_json));
    write("mig_v1", "form.txt", form.as_bytes());
    let v1_text = mig_protocol::mig_v1::signed_text(
        statement
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.sha256.as_str())),
    )
    .expect("a v1 text");
    write("mig_v1", "v1-text.json", v1_text.as_bytes());
    let answer = mig_protocol::mig_v1::Collection::item(
        "/api/v1/manifest/agent/",
        "manifest",
        serde_json::json!({"loader_name": "l", "entries": [], "signatures": []}),
    );
    write(
        "mig_v1",
        "collection.json",
        &serde_json::to_vec(&answer).expect("json"),
    );
    write("mig_v1", "signature.asc", signatures[0].as_bytes());
    let rsa = std::fs::read_to_string(root().join("conf/dev-keys/rsa1.sec.asc")).expect("rsa1");
    let rsa = parse_secret_key("rsa1", &rsa).expect("rsa1 parses");
    let rsa_sig = sign_detached(&rsa, "", v1_text.as_bytes()).expect("signs");
    write("mig_v1", "rsa-signature.asc", rsa_sig.as_bytes());
    let response = ManifestResponse {
        statement: String::from_utf8(bytes.clone()).expect("utf-8"),
        signatures: signatures.clone(),
        freshness: None,
        root: None,
    };
    let response_json = serde_json::to_vec(&response).expect("json");
    write("wire_json", "manifest-response.json", &response_json);

    // A freshness document as mig-api signs one (api/src/freshness.rs: `Document::to_text`, then
    // a detached signature by the freshness key), over the freshness target's statement, and the
    // answer that carries it.
    let now = Timestamp::now();
    let document = mig_protocol::freshness::Document {
        statement: Sha256::of(mig_fuzz::FRESHNESS_STATEMENT),
        serial: Serial::new(mig_fuzz::FRESHNESS_SERIAL),
        issued: now,
        expires: now.plus(86_400),
    }
    .to_text()
    .expect("the seed document is valid");
    let armored = std::fs::read_to_string(root().join("conf/dev-keys/freshness.sec.asc"))
        .expect("development freshness key");
    let fresh_key = parse_secret_key("freshness", &armored).expect("secret key parses");
    let fresh_sig = sign_detached(&fresh_key, "", document.as_bytes()).expect("signs");
    write(
        "freshness",
        "signed.bin",
        format!("{document}\0{fresh_sig}").as_bytes(),
    );
    write("freshness", "document.txt", document.as_bytes());
    let fresh_answer = ManifestResponse {
        statement: String::from_utf8(mig_fuzz::FRESHNESS_STATEMENT.to_vec()).expect("utf-8"),
        signatures: signatures.clone(),
        freshness: Some(mig_protocol::freshness::Freshness {
            document,
            signature: fresh_sig,
        }),
        root: Some(2),
    };
    write(
        "wire_json",
        "manifest-response-freshness.json",
        &serde_json::to_vec(&fresh_answer).expect("json"),
    );
    let report = Report {
        serial: Serial::new(7),
        result: ReportResult::Installed,
        message: "installed".into(),
        files: [("mig-agent".to_string(), Sha256::of(agent).to_string())].into(),
    };
    write(
        "wire_json",
        "report.json",
        &serde_json::to_vec(&report).expect("json"),
    );

    for (i, e) in [
        "env->>'os' = 'linux'",
        "env#>>'{os}'='darwin' OR tags#>>'{operator}'='myorg'",
        "rollout('a', 10) AND (semver(tags->>'v', '>=1') OR rollout('b', 5))",
        "name LIKE 'web-%' AND NOT (tags->>'env' IN ('dev', 'test'))",
    ]
    .iter()
    .enumerate()
    {
        write("expr", &format!("expr-{i}.txt"), e.as_bytes());
    }

    let dir = std::env::temp_dir().join(format!("mig-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    std::fs::write(dir.join("mig-agent"), agent).expect("file");
    std::fs::write(dir.join("configuration"), b"[agent]\n").expect("file");
    let tgz = dir.join("m.tar.gz");
    let ok = Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&dir)
        .args(["mig-agent", "configuration"])
        .status()
        .expect("GNU tar runs");
    assert!(ok.success(), "tar failed");
    let archive = std::fs::read(&tgz).expect("archive");
    write("archive", "gnu-tar.tar.gz", &archive);
    let _ = std::fs::remove_dir_all(&dir);
    let new_manifest = serde_json::json!({
        "name": "m",
        "target": "env->>'os' = 'linux'",
        "platform": {"os": "linux", "arch": "amd64"},
        "archive": base64::engine::general_purpose::STANDARD.encode(&archive),
    });
    write(
        "wire_json",
        "new-manifest.json",
        new_manifest.to_string().as_bytes(),
    );

    let mut manifest = vec![0u8];
    manifest.extend(http("200 OK", "application/json", &response_json));
    write("loader_http", "manifest-200.bin", &manifest);
    let mut refused = vec![0u8];
    refused.extend(http(
        "401 Unauthorized",
        "application/json",
        br#"{"error":{"code":401,"message":"loader authentication failed"}}"#,
    ));
    write("loader_http", "manifest-401.bin", &refused);
    let mut file = vec![1u8];
    file.extend(http("200 OK", "application/octet-stream", agent));
    write("loader_http", "file-200.bin", &file);
    let mut chunked = vec![1u8];
    chunked.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nthe \r\n5\r\nagent\r\n0\r\n\r\n",
    );
    write("loader_http", "file-chunked.bin", &chunked);
    println!("seeds written under {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
