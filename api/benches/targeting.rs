//! Targeting benchmark (docs/design.md §9.1: "manifest selection with 100 active manifests in WASM:
//! well under a millisecond per request"). Run with
//!
//!     cargo bench -p api --bench targeting
//!
//! and copy the output into BENCHMARKS.md. Plain timing loops (no harness): each figure is
//! the median of several rounds, so one noisy round does not move it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use api::targeting::{Engine, LoaderFacts};
use serde_json::json;

/// Times `f` in rounds of about `round` each; returns the median time per call.
fn per_call(round: Duration, mut f: impl FnMut()) -> Duration {
    // Warm up and size the rounds.
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < round / 4 || calls < 3 {
        f();
        calls += 1;
    }
    let per_round = (calls * 4).max(3);
    let mut rounds: Vec<Duration> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            t.elapsed() / per_round
        })
        .collect();
    rounds.sort();
    rounds[rounds.len() / 2]
}

fn loader() -> LoaderFacts {
    LoaderFacts {
        name: "web1.example.org".into(),
        loadername: "web1".into(),
        env: json!({
            "os": "linux", "arch": "amd64", "ident": "Debian GNU/Linux 12 (bookworm)", "init": "systemd",
            "isproxied": false, "addresses": ["10.0.0.5/24", "fe80::1/64"], "publicip": "203.0.113.7",
            "aws": {"instanceid": "i-0abc", "localipv4": "10.0.0.5", "amiid": "ami-1", "instancetype": "t3.small"}
        }),
        tags: json!({"operator": "myorg", "env": "prod"}),
        attributes: json!({"group": "canary"}),
    }
}

/// `n` realistic targets, newest first, of which only the last (oldest) matches.
fn targets(n: usize) -> Vec<String> {
    let mut t: Vec<String> = (0..n.saturating_sub(1))
        .map(|i| match i % 5 {
            0 => format!("env#>>'{{os}}'='darwin' AND tags#>>'{{operator}}'='team-{i}'"),
            1 => format!("env->>'arch' = 'arm64' AND name LIKE 'db{i}%'"),
            2 => format!("tags#>>'{{operator}}' IN ('team-{i}', 'team-{}')", i + 1),
            3 => {
                format!("env#>>'{{ident}}' ILIKE '%windows%' OR attributes->>'group' = 'wave-{i}'")
            }
            _ => format!("env#>>'{{aws,instanceid}}' = 'i-{i:05}' AND NOT env->>'os' = 'windows'"),
        })
        .collect();
    t.push("env#>>'{os}'='linux' AND tags#>>'{operator}'='myorg'".into());
    t
}

fn main() {
    let t = Instant::now();
    let engine = Engine::new().expect("engine");
    let sources = Engine::sending_sources().expect("engine");
    println!(
        "Engine::new (compile expr, rollout, semver): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let facts = loader();
    let round = Duration::from_millis(300);

    println!(
        "\nSelection for one loader, only the oldest candidate matches (one instance per request), \
         with compiled forms and, alternating with it in the same run, with every target sent as \
         source and parsed again:"
    );
    println!("| active manifests | compiled: per request | per candidate | sources: per request | compiled / sources |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [1usize, 10, 100, 1000] {
        let owned = targets(n);
        let candidates: Vec<(u64, &str)> = owned
            .iter()
            .enumerate()
            .map(|(i, e)| ((n - i) as u64, e.as_str()))
            .collect();
        assert_eq!(engine.select(&facts, &candidates), Some(1));
        assert_eq!(sources.select(&facts, &candidates), Some(1));
        // Alternating rounds, so a noisy moment of the machine falls on both.
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            fast.push(per_call(round, || {
                black_box(engine.select(black_box(&facts), black_box(&candidates)));
            }));
            slow.push(per_call(round, || {
                black_box(sources.select(black_box(&facts), black_box(&candidates)));
            }));
        }
        fast.sort();
        slow.sort();
        let (d, s) = (fast[1], slow[1]);
        println!(
            "| {n} | {:.1} µs | {:.2} µs | {:.1} µs | {:.2} |",
            d.as_secs_f64() * 1e6,
            d.as_secs_f64() * 1e6 / n as f64,
            s.as_secs_f64() * 1e6,
            d.as_secs_f64() / s.as_secs_f64()
        );
    }

    let with_rollout: Vec<String> = (0..100)
        .map(|i| format!("rollout('wave-{i}', 50) AND env->>'os' = 'darwin'"))
        .collect();
    let candidates: Vec<(u64, &str)> = with_rollout
        .iter()
        .enumerate()
        .map(|(i, e)| (i as u64, e.as_str()))
        .collect();
    let d = per_call(round, || {
        black_box(engine.select(&facts, &candidates));
    });
    println!(
        "| 100, each calling rollout() (a fresh rollout instance per call) | {:.1} µs | {:.2} µs |",
        d.as_secs_f64() * 1e6,
        d.as_secs_f64() * 1e6 / 100.0
    );

    println!("\nThroughput on one core (this thread only):");
    let owned = targets(100);
    let batch: Vec<&str> = owned.iter().map(String::as_str).collect();
    let d = per_call(round, || {
        black_box(engine.evaluate(&facts, &batch));
    });
    println!(
        "- evaluations/s in batches of 100: {:.0}",
        100.0 / d.as_secs_f64()
    );
    let one = "env#>>'{os}'='linux' AND tags#>>'{operator}'='myorg'";
    let d = per_call(round, || {
        black_box(engine.matches(&facts, one).ok());
    });
    println!(
        "- evaluations/s one per instance (matches): {:.0} ({:.1} µs each)",
        1.0 / d.as_secs_f64(),
        d.as_secs_f64() * 1e6
    );

    println!("\nCost of one instantiation (fresh Store with fuel, memory cap and deadline + instance, pooling allocator):");
    for p in ["expr", "rollout"] {
        let d = per_call(round, || engine.instantiate_once(p).expect("instantiate"));
        println!("- {p}: {:.1} µs", d.as_secs_f64() * 1e6);
    }
    let d = per_call(round, || {
        black_box(engine.validate(one).ok());
    });
    println!(
        "- validate one expression (instance + parse + check): {:.1} µs",
        d.as_secs_f64() * 1e6
    );
    let s = engine.stats();
    println!(
        "\nstats: {} evaluations, {} failures",
        s.evaluations, s.failures
    );
}
