//! What a freshness signature costs (BENCHMARKS.md "Freshness signature"):
//!
//!     cargo bench -p mig-protocol --features sign --bench freshness
//!
//! With the development freshness key (Ed25519, conf/dev-keys/freshness) and a statement of the
//! size the walk-through's manifest has: making one freshness signature (what mig-api does once
//! per manifest and generation, and again every half lifetime, never per poll), checking one
//! (what a loader built with a freshness key does once per run), and how many bytes it adds to
//! an answer.

use mig_protocol::freshness::{Document, Freshness, FreshnessKey};
use mig_protocol::signature::{parse_secret_key, sign_detached, Keyring};
use mig_protocol::time::Timestamp;
use mig_protocol::{Serial, Sha256};
use std::time::Instant;

const ROUNDS: u32 = 2000;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/dev-keys");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("a development key");
    let secret = parse_secret_key("freshness", &read("freshness.sec.asc")).expect("parses");
    let key = FreshnessKey::new(
        "freshness",
        &read("freshness.pub.asc"),
        &Keyring::from_keys(vec![]),
    )
    .expect("parses");
    // The walk-through's statement has six entries: about 900 bytes.
    let statement = format!(
        "{{\"format\":1,\"serial\":7,\"name\":\"a new manifest\",\"platform\":{{\"os\":\"linux\",\"arch\":\"amd64\"}},\"issued\":\"2026-12-07T00:00:00Z\",\"expires\":\"2027-03-07T00:00:00Z\",\"entries\":[{}]}}",
        (0..6)
            .map(|i| format!("{{\"name\":\"entry{i}\",\"sha256\":\"{}\",\"size\":1000}}", "a".repeat(64)))
            .collect::<Vec<_>>()
            .join(",")
    );
    let now = Timestamp::now();
    let sign = || {
        let text = Document {
            statement: Sha256::of(statement.as_bytes()),
            serial: Serial::new(7),
            issued: now,
            expires: now.plus(86_400),
        }
        .to_text()
        .expect("a document");
        Freshness {
            signature: sign_detached(&secret, "", text.as_bytes()).expect("signs"),
            document: text,
        }
    };
    let f = sign();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(sign());
    }
    let signing = started.elapsed() / ROUNDS;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(
            key.check(Some(&f), statement.as_bytes(), Serial::new(7), now)
                .expect("checks"),
        );
    }
    let checking = started.elapsed() / ROUNDS;
    let added = serde_json::to_string(&serde_json::json!({ "freshness": f }))
        .expect("json")
        .len()
        - 2;
    println!("| what | mean of {ROUNDS} |");
    println!("|---|---|");
    println!("| make one freshness signature (document, SHA-256, Ed25519, armor) | {signing:?} |");
    println!("| check one (verify by the one rule, parse, compare) | {checking:?} |");
    println!("| bytes added to a manifest answer | {added} |");
    println!("| statement bytes | {} |", statement.len());
}
