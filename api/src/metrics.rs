//! Prometheus counters kept in memory and rendered as text at `GET metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Every counter the API exports.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    selections: Mutex<BTreeMap<&'static str, u64>>,
    signatures: Mutex<BTreeMap<&'static str, u64>>,
    failures: Mutex<BTreeMap<&'static str, u64>>,
    connections: Mutex<BTreeMap<&'static str, u64>>,
    reports: Mutex<BTreeMap<&'static str, u64>>,
    pbkdf2: Mutex<BTreeMap<&'static str, u64>>,
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K) {
    if let Ok(mut m) = m.lock() {
        *m.entry(k).or_insert(0) += 1;
    }
}

impl Metrics {
    /// One request; `endpoint` is the route (`POST /manifests/<id>/signatures`), never the
    /// concrete path, so the label set stays bounded.
    pub fn request(&self, endpoint: &str, status: u16) {
        bump(&self.requests, (endpoint.to_string(), status));
    }

    /// One manifest selection: `selected`, `none` or `expectenv_denied`.
    pub fn selection(&self, result: &'static str) {
        bump(&self.selections, result);
    }

    /// One signature verification: `valid` or `invalid`.
    pub fn signature(&self, result: &'static str) {
        bump(&self.signatures, result);
    }

    /// One failed request, by [`crate::error::Error::reason`].
    pub fn failure(&self, reason: &'static str) {
        bump(&self.failures, reason);
    }

    /// One event on the public socket (front/mod.rs): `accepted`, `refused_total`,
    /// `refused_peer`, `head_deadline`, `idle_deadline`, `tls_failed`, `accept_failed`.
    pub fn connection(&self, event: &'static str) {
        bump(&self.connections, event);
    }

    /// One loader report, by its result (`installed`, `rolled_back`, …).
    pub fn report(&self, result: &'static str) {
        bump(&self.reports, result);
    }

    /// One PBKDF2 run checking a key: `loader` (keys::check_row) or `apikey`.
    pub fn pbkdf2(&self, key: &'static str) {
        bump(&self.pbkdf2, key);
    }

    /// The Prometheus text exposition; `engine` adds the targeting engine's own counters,
    /// `caches` each bounded cache's by name (`poll` first: its hits are also
    /// `mig_api_poll_cache_hits_total`), and `fleet` the loaders on each serial by their last result ([`crate::reports::by_serial`]).
    pub fn render(
        &self,
        engine: &crate::targeting::EngineStats,
        caches: &[(&'static str, crate::clock::Stats)],
        fleet: &[(u64, String, u64)],
        expiring: &[crate::expiry::Expiring],
        freshness: &mig_protocol::admin::FreshnessState,
        now: mig_protocol::time::Timestamp,
    ) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "mig_api_requests_total",
            "HTTP requests by endpoint and status.",
        );
        if let Ok(m) = self.requests.lock() {
            for ((endpoint, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "mig_api_requests_total{{endpoint=\"{}\",status=\"{status}\"}} {n}",
                    escape(endpoint)
                );
            }
        }
        for (name, help, label, map) in [
            (
                "mig_api_selections_total",
                "Loader manifest selections by result.",
                "result",
                &self.selections,
            ),
            (
                "mig_api_signature_verifications_total",
                "Manifest signature verifications by result.",
                "result",
                &self.signatures,
            ),
            (
                "mig_api_failures_total",
                "Failed requests by reason.",
                "reason",
                &self.failures,
            ),
            (
                "mig_api_loader_reports_total",
                "Loader reports received, by result.",
                "result",
                &self.reports,
            ),
            (
                "mig_api_connections_total",
                "Connections to the public socket by event (accepted, refused, closed by a deadline).",
                "event",
                &self.connections,
            ),
            (
                "mig_api_key_pbkdf2_total",
                "PBKDF2 runs checking a key, by key (loader: at most once per loader and key).",
                "key",
                &self.pbkdf2,
            ),
        ] {
            header(&mut out, name, help);
            if let Ok(m) = map.lock() {
                for (k, n) in m.iter() {
                    let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape(k));
                }
            }
        }
        header(
            &mut out,
            "mig_api_targeting_evaluations_total",
            "Target and expectenv evaluations in the WASM engine.",
        );
        let _ = writeln!(
            out,
            "mig_api_targeting_evaluations_total {}",
            engine.evaluations
        );
        header(
            &mut out,
            "mig_api_targeting_failures_total",
            "Evaluations that failed (trap, fuel, memory, parse): the manifest did not match.",
        );
        let _ = writeln!(out, "mig_api_targeting_failures_total {}", engine.failures);
        header(
            &mut out,
            "mig_api_poll_cache_hits_total",
            "Manifest requests answered from the poll cache: nothing changed since the last one.",
        );
        let poll_hits = caches
            .iter()
            .find(|(name, _)| *name == "poll")
            .map_or(0, |(_, s)| s.hits);
        let _ = writeln!(out, "mig_api_poll_cache_hits_total {poll_hits}");
        type Pick = fn(&crate::clock::Stats) -> u64;
        let series: [(&str, &str, &str, Pick); 6] = [
            ("mig_api_cache_hits_total", "counter", "Lookups that found a usable entry, by cache (poll: loaders' last outcomes; apikey: API keys that passed PBKDF2).", |s| s.hits),
            ("mig_api_cache_misses_total", "counter", "Lookups that found no usable entry, by cache.", |s| s.misses),
            ("mig_api_cache_evictions_total", "counter", "Entries evicted to make room (the coldest first), by cache.", |s| s.evictions),
            ("mig_api_cache_entries", "gauge", "Entries held, by cache.", |s| s.entries),
            ("mig_api_cache_bytes", "gauge", "Bytes held by the entries, by cache, as the cache counts them.", |s| s.bytes),
            ("mig_api_cache_capacity_bytes", "gauge", "The configured size, by cache ([limits] pollcache, apikeycache).", |s| s.capacity),
        ];
        for (name, kind, help, pick) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (cache, stats) in caches {
                let _ = writeln!(out, "{name}{{cache=\"{cache}\"}} {}", pick(stats));
            }
        }
        let name = "mig_api_loaders";
        let _ = writeln!(
            out,
            "# HELP {name} Loaders by the serial and result of their last report (newest serials).\n# TYPE {name} gauge"
        );
        for (serial, result, n) in fleet {
            let _ = writeln!(
                out,
                "{name}{{serial=\"{serial}\",result=\"{}\"}} {n}",
                escape(result)
            );
        }
        let name = "mig_api_manifest_expiry_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Seconds until the statement of each active or halted manifest expires (negative: expired), the 100 soonest.\n# TYPE {name} gauge"
        );
        for m in expiring {
            let _ = writeln!(
                out,
                "{name}{{manifest=\"{}\",name=\"{}\"}} {}",
                m.id,
                escape(&m.name),
                m.seconds_left(now)
            );
        }
        freshness_series(&mut out, freshness, now);
        out
    }
}

/// docs/design.md §4.20: the key's lifetime (only with `[freshness] key`), and the age and time
/// left of the freshness signature in each manifest's kept answer. An age past half the lifetime
/// means no loader was given that answer since; past the lifetime, none could use it.
fn freshness_series(
    out: &mut String,
    f: &mig_protocol::admin::FreshnessState,
    now: mig_protocol::time::Timestamp,
) {
    let name = "mig_api_freshness_lifetime_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} [freshness] lifetime: how long a freshness signature is good for (absent: no freshness key).\n# TYPE {name} gauge"
    );
    if f.fingerprint.is_some() {
        let _ = writeln!(out, "{name} {}", f.lifetime);
    }
    type Pick = fn(&mig_protocol::admin::FreshnessSignature, i64) -> i64;
    let series: [(&str, &str, Pick); 2] = [
        (
            "mig_api_freshness_signature_age_seconds",
            "Seconds since the freshness signature in each manifest's kept answer was made (made once per manifest and generation, again past half the lifetime).",
            |s, now| now - s.issued.0 as i64,
        ),
        (
            "mig_api_freshness_signature_expiry_seconds",
            "Seconds until the freshness signature in each manifest's kept answer expires (negative: expired).",
            |s, now| s.expires.0 as i64 - now,
        ),
    ];
    for (name, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in &f.signatures {
            let _ = writeln!(
                out,
                "{name}{{manifest=\"{}\"}} {}",
                s.manifest,
                value(s, now.0 as i64)
            );
        }
    }
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
