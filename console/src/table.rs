//! Readable tables, as in MIG's transcripts. Every cell comes from the API, so control
//! characters are replaced before they reach the terminal and long cells are cut.

use mig_protocol::admin::{FreshnessState, LoaderRecord, ManifestRecord, PluginRecord, Rollout};
use mig_protocol::statement::Entry;
use mig_protocol::time::Timestamp;

/// Replaces control characters (escape sequences, carriage returns) with `?`.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Cleans each line of a multi-line text (pretty JSON, a statement), keeping the newlines.
pub fn clean_text(text: &str) -> String {
    text.lines().map(clean).collect::<Vec<_>>().join("\n")
}

/// A JSON value (or any serializable record, fields in their order), pretty and cleaned, for
/// a human.
pub fn pretty<T: serde::Serialize + ?Sized>(v: &T) -> String {
    clean_text(&serde_json::to_string_pretty(v).unwrap_or_default())
}

/// `s` cleaned, cut to `width` characters (ending in `...` when cut) and padded to it.
pub fn cell(s: &str, width: usize) -> String {
    let s = clean(s);
    let n = s.chars().count();
    if n <= width {
        format!("{s}{}", " ".repeat(width - n))
    } else {
        let keep = width.saturating_sub(3);
        format!("{}...", s.chars().take(keep).collect::<String>())
    }
}

/// MIG's manifest search table.
pub fn manifests(rows: &[ManifestRecord]) -> String {
    let mut out = String::from(
        "- ID - + ----      Name      ---- + -- Status -- + -------------- Target -------- + ---- Timestamp ---\n",
    );
    for m in rows {
        out.push_str(&format!(
            "{:>6}   {}   {}   {}   {}\n",
            m.id,
            cell(&m.name, 24),
            cell(m.status.as_str(), 12),
            cell(&m.target, 30),
            m.created
        ));
    }
    out
}

/// MIG's loader search table, with the protocol each loader last spoke (`v1`: still MIG's Go
/// loader, docs/design.md §8.3).
pub fn loaders(rows: &[LoaderRecord]) -> String {
    let mut out = String::from(
        "- ID - + ----      Name      ---- + ----   Agent Name   ---- + -- Enabled - + Protocol + -- Last Used ---\n",
    );
    for l in rows {
        let last = l
            .lastseen
            .map_or_else(|| "never".to_string(), |t| t.to_string());
        out.push_str(&format!(
            "{:>6}   {}   {}   {}   {}   {}\n",
            l.id,
            cell(&l.name, 24),
            cell(l.agentname.as_deref().unwrap_or("unset"), 24),
            cell(if l.enabled { "true" } else { "false" }, 12),
            cell(l.protocol.as_deref().unwrap_or("-"), 6),
            last
        ));
    }
    out
}

/// How long before its expiry a manifest is called out, as the API's log does.
pub use mig_protocol::admin::EXPIRY_WARNING as WARN_BEFORE;

/// Rollouts: one line per manifest with the days left before its expiry, then its halt, its
/// expiry when within [`WARN_BEFORE`], and its commonest failures.
pub fn rollouts(rows: &[Rollout], now: Timestamp) -> String {
    let mut out = String::from(
        "- ID - + ----      Name      ---- + -- Status -- + Given + On it + Older + Failed + Rolled back + Rejected + Stale + Days left\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{:>6}   {}   {}   {:>5}   {:>5}   {:>5}   {:>6}   {:>11}   {:>8}   {:>5}   {:>9}\n",
            r.manifest,
            cell(&r.name, 24),
            cell(r.status.as_str(), 12),
            r.given,
            r.on_it,
            r.older,
            r.failed,
            r.rolled_back,
            r.rejected,
            r.stale,
            days_left(r.expires, now)
        ));
    }
    for r in rows {
        match (&r.halted, &r.halt) {
            (Some(h), _) => out.push_str(&format!(
                "Manifest {} HALTED at {}: {}. `manifest {} resume` goes on, `disable` ends it.\n",
                r.manifest,
                h.at,
                clean(&h.reason),
                r.manifest
            )),
            (None, Some(rule)) => out.push_str(&format!(
                "Manifest {} halts after {rule} failed or rolled back.\n",
                r.manifest
            )),
            (None, None) => {}
        }
    }
    for r in rows {
        if let Some(line) = expiry_line(r, now) {
            out.push_str(&line);
        }
    }
    for r in rows {
        if let Some(line) = stale_answers(r) {
            out.push_str(&format!("{line}\n"));
        }
    }
    for r in rows.iter().filter(|r| !r.failures.is_empty()) {
        out.push_str(&format!("Commonest failures of manifest {}:\n", r.manifest));
        for f in &r.failures {
            out.push_str(&format!(
                "{:>8}  {}  {}\n",
                f.loaders,
                cell(&f.result, 11),
                clean(&f.message)
            ));
        }
    }
    if let Some(r) = rows.first() {
        out.push_str(&format!(
            "Stale: given the manifest and not seen for more than {} h.\n",
            r.stale_after / 3600
        ));
    }
    out
}

/// Whole days until `expires` (`0` in its last day), `expired` after it, `-` when the API did not
/// say.
pub fn days_left(expires: Option<Timestamp>, now: Timestamp) -> String {
    match expires {
        None => "-".into(),
        Some(e) if e <= now => "expired".into(),
        Some(e) => ((e.0 - now.0) / 86_400).to_string(),
    }
}

/// The seconds left before `expires` (0 once expired) when that is within [`WARN_BEFORE`] of
/// `now`: a manifest to renew now (`status` and the HTML report call it out).
pub fn called_out(expires: Option<Timestamp>, now: Timestamp) -> Option<u64> {
    let left = expires?.0.saturating_sub(now.0);
    (left < WARN_BEFORE).then_some(left)
}

/// A line for a manifest whose statement expired or expires within [`WARN_BEFORE`]: after that
/// no loader installs it.
fn expiry_line(r: &Rollout, now: Timestamp) -> Option<String> {
    let expires = r.expires?;
    Some(match called_out(r.expires, now)? {
        0 => format!(
            "Manifest {} EXPIRED at {expires}: no loader installs it; `manifest {} renew`.\n",
            r.manifest, r.manifest
        ),
        left => format!(
            "Manifest {} expires in {} d {} h ({expires}): `manifest {} renew` before then.\n",
            r.manifest,
            left / 86_400,
            left % 86_400 / 3600,
            r.manifest
        ),
    })
}

/// The API's online freshness key (docs/design.md §4.20, `GET freshness`): its fingerprint and
/// lifetime, and when the signature in each manifest's answer was made and expires. A signature
/// the replica still keeps past its expiry means no loader was given that answer since.
pub fn freshness(f: &FreshnessState, now: Timestamp) -> String {
    use mig_protocol::freshness::ago;
    let Some(fp) = &f.fingerprint else {
        return "Freshness key: none ([freshness] key unset): answers carry no freshness \
                signature, and a loader built with a freshness key refuses them.\n"
            .into();
    };
    let mut out = format!(
        "Freshness key {} (lifetime {}): signs each manifest's answer once, again after {}.\n",
        clean(fp),
        ago(f.lifetime),
        ago(f.lifetime / 2)
    );
    if f.signatures.is_empty() {
        out.push_str("  No answer signed yet by this replica.\n");
    }
    for s in &f.signatures {
        let made = ago(now.0.saturating_sub(s.issued.0));
        out.push_str(&if s.expires > now {
            format!(
                "  Manifest {}: signed {made} ago, expires in {} ({}).\n",
                s.manifest,
                ago(s.expires.0 - now.0),
                s.expires
            )
        } else {
            format!(
                "  Manifest {}: signed {made} ago, EXPIRED {} ago ({}): signed afresh at its next poll.\n",
                s.manifest,
                ago(now.0 - s.expires.0),
                s.expires
            )
        });
    }
    out
}

/// The hosts that refused manifest `r` because the freshness signature they were given had
/// lapsed (docs/design.md §4.20): everything reaching them is stale. `status` and the HTML report
/// say so in one sentence.
pub fn stale_answers(r: &Rollout) -> Option<String> {
    (r.freshness_expired > 0).then(|| {
        format!(
            "Manifest {}: {} host(s) refuse it, freshness expired: no answer the API's freshness \
             key vouched for reached them within its lifetime (a freeze, a replay, or an API \
             without its key); they keep their running agent.",
            r.manifest, r.freshness_expired
        )
    })
}

/// Targeting plugins.
pub fn plugins(rows: &[PluginRecord]) -> String {
    let mut out = String::from(
        "----      Name      ---- + ---- SHA256 ---- + --- Size --- + Builtin + ---- Functions ----\n",
    );
    for p in rows {
        out.push_str(&format!(
            "{}   {}   {:>12}   {}   {}\n",
            cell(&p.name, 24),
            cell(&p.sha256, 16),
            p.size,
            cell(if p.builtin { "yes" } else { "no" }, 7),
            clean(&p.functions.join(", "))
        ));
    }
    out
}

/// A manifest's files as the loader is given them: name, size, sha256.
pub fn entries(rows: &[Entry]) -> String {
    let mut out = String::from("----   Name   ---- + ---- Size ---- + ---------------------------- SHA256 ----------------------------\n");
    for e in rows {
        out.push_str(&format!(
            "{}   {:>14}   {}\n",
            cell(&e.name, 18),
            e.size,
            clean(e.sha256.as_str())
        ));
    }
    out
}

/// `sha256  name`, sorted by name, as `sha256sum` prints.
pub fn shasum(rows: &[Entry]) -> String {
    let mut sorted: Vec<&Entry> = rows.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted
        .iter()
        .map(|e| format!("{}  {}\n", clean(e.sha256.as_str()), clean(&e.name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig_protocol::statement::Platform;
    use mig_protocol::time::Timestamp;

    fn manifest(name: &str, target: &str) -> ManifestRecord {
        ManifestRecord {
            id: 34,
            name: name.into(),
            target: target.into(),
            status: mig_protocol::ManifestStatus::Staged,
            platform: Platform {
                os: "linux".into(),
                arch: "amd64".into(),
            },
            created: Timestamp::parse("2016-05-12T19:56:20Z").unwrap(),
            issued: Timestamp(0),
            expires: Timestamp(1),
            signers: vec![],
            entries: vec![],
            halt: None,
            halted: None,
            statement: String::new(),
            v1_text: None,
            v1_signers: vec![],
            renews: None,
        }
    }

    #[test]
    fn the_freshness_key_shows_its_lifetime_and_each_signature_made_and_expiring() {
        use mig_protocol::admin::{FreshnessSignature, FreshnessState};
        let now = Timestamp(1_800_000_000);
        let none = FreshnessState {
            fingerprint: None,
            lifetime: 0,
            signatures: vec![],
        };
        assert!(freshness(&none, now).starts_with("Freshness key: none"));
        let f = FreshnessState {
            fingerprint: Some("ABCD\u{1b}[2J".into()),
            lifetime: 86_400,
            signatures: vec![
                FreshnessSignature {
                    manifest: 3,
                    issued: Timestamp(now.0 - 600),
                    expires: Timestamp(now.0 - 600 + 86_400),
                },
                FreshnessSignature {
                    manifest: 4,
                    issued: Timestamp(now.0 - 26 * 3600 - 86_400),
                    expires: Timestamp(now.0 - 26 * 3600),
                },
            ],
        };
        let t = freshness(&f, now);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "Freshness key ABCD?[2J (lifetime 24 h): signs each manifest's answer once, again after 12 h."
        );
        assert_eq!(
            lines[1],
            format!(
                "  Manifest 3: signed 10 min ago, expires in 23 h ({}).",
                Timestamp(now.0 - 600 + 86_400)
            )
        );
        assert!(
            lines[2].starts_with("  Manifest 4: signed 50 h ago, EXPIRED 26 h ago"),
            "{t}"
        );
        let empty = FreshnessState {
            signatures: vec![],
            ..f
        };
        assert!(freshness(&empty, now).contains("No answer signed yet"));
    }

    #[test]
    fn manifest_rows_line_up_as_in_the_transcript() {
        let t = manifests(&[manifest("a new manifest", "env#>>'{os}'='linux'")]);
        assert_eq!(
            t.lines().nth(1).unwrap(),
            "    34   a new manifest             staged         env#>>'{os}'='linux'             2016-05-12T19:56:20Z"
        );
    }

    #[test]
    fn long_cells_are_cut_and_escapes_neutralised() {
        let t = manifests(&[manifest(
            &"n".repeat(40),
            "\x1b[2Jenv#>>'{os}'='linux' AND tags#>>'{x}'='y'",
        )]);
        let row = t.lines().nth(1).unwrap();
        assert!(row.contains(&format!("{}...", "n".repeat(21))), "{row}");
        assert!(!row.contains('\x1b'), "{row}");
        assert!(row.contains("?[2Jenv"), "{row}");
        assert_eq!(cell("abc", 5), "abc  ");
    }

    #[test]
    fn loader_rows_show_unset_agent_and_never_seen() {
        let l = LoaderRecord {
            id: 12,
            name: "corbomite.internal".into(),
            prefix: "abcdefgh".into(),
            agentname: None,
            enabled: false,
            expectenv: None,
            attributes: Default::default(),
            lastseen: None,
            environment: None,
            tags: Default::default(),
            last_report: None,
            protocol: None,
        };
        assert_eq!(
            loaders(std::slice::from_ref(&l)).lines().nth(1).unwrap(),
            "    12   corbomite.internal         unset                      false          -        never"
        );
        let v1 = LoaderRecord {
            protocol: Some("v1".into()),
            ..l
        };
        assert!(loaders(&[v1]).lines().nth(1).unwrap().contains(" v1 "));
    }

    #[test]
    fn shasum_is_sorted_by_name() {
        let e = |n: &str, c: char| Entry {
            name: n.into(),
            sha256: mig_protocol::Sha256::parse(&c.to_string().repeat(64)).unwrap(),
            size: 1,
        };
        let s = shasum(&[e("mig-agent", 'b'), e("configuration", 'a')]);
        assert_eq!(
            s,
            format!(
                "{}  configuration\n{}  mig-agent\n",
                "a".repeat(64),
                "b".repeat(64)
            )
        );
    }

    #[test]
    fn rollouts_call_out_an_expiry_within_14_days_and_an_expired_manifest() {
        let day = 86_400;
        let now = Timestamp(1000 * day);
        let row = |id: u64, expires: Option<u64>| Rollout {
            manifest: id,
            name: format!("m{id}"),
            status: mig_protocol::ManifestStatus::Active,
            platform: Platform {
                os: "linux".into(),
                arch: "amd64".into(),
            },
            given: 0,
            on_it: 0,
            older: 0,
            failed: 0,
            rolled_back: 0,
            rejected: 0,
            stale: 0,
            stale_after: day,
            failures: vec![],
            halt: None,
            halted: None,
            expires: expires.map(|d| Timestamp(now.0 + d)),
            freshness_expired: 0,
        };
        let t = rollouts(
            &[
                row(1, Some(90 * day)),
                row(2, Some(3 * day + 7200)),
                row(3, Some(0)),
                row(4, None),
            ],
            now,
        );
        let days: Vec<&str> = t
            .lines()
            .skip(1)
            .take(4)
            .map(|l| l.split_whitespace().last().unwrap())
            .collect();
        assert_eq!(days, ["90", "3", "expired", "-"], "{t}");
        assert!(!t.contains("freshness expired"), "{t}");
        let stale = Rollout {
            rejected: 3,
            freshness_expired: 2,
            ..row(5, Some(90 * day))
        };
        let st = rollouts(&[stale], now);
        assert!(
            st.lines().any(|l| l.starts_with(
                "Manifest 5: 2 host(s) refuse it, freshness expired: no answer the API's \
                 freshness key vouched for reached them"
            )),
            "{st}"
        );
        assert!(!t.contains("Manifest 1 "), "{t}");
        assert!(t.contains("Manifest 2 expires in 3 d 2 h ("), "{t}");
        assert!(t.contains("Manifest 3 EXPIRED at "), "{t}");
        assert!(!t.contains("Manifest 4 "), "{t}");
    }
}
