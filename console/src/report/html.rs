//! The report as one self-contained HTML page: inline CSS and SVG, no script, no font, no
//! image and no link, and a Content-Security-Policy that forbids loading anything, so it can be
//! mailed or opened offline. Every text from the API (names, messages, hosts) is escaped.

use crate::table::{called_out, clean, days_left};
use mig_protocol::admin::{Adoption, LoaderRecord, Rollout};
use mig_protocol::time::Timestamp;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Colours of the adoption lines, newest serial first.
pub const SERIES_COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];
/// The result bars: what each segment counts and its colour.
pub const BAR_SEGMENTS: [(&str, &str); 5] = [
    ("on_it", "#2ca02c"),
    ("older", "#c7c7c7"),
    ("failed", "#d62728"),
    ("rolled_back", "#ff7f0e"),
    ("rejected", "#9467bd"),
];

/// Chart geometry (SVG user units).
const CHART_W: f64 = 900.0;
const CHART_H: f64 = 300.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 220.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 40.0;
const BAR_ROW: f64 = 28.0;

/// What the page shows.
pub struct Report<'a> {
    pub api: &'a str,
    pub generated: Timestamp,
    pub stale_hours: u64,
    pub rollouts: &'a [Rollout],
    pub adoption: &'a Adoption,
    pub stale: &'a [LoaderRecord],
    /// At most this many stale hosts were asked for.
    pub stale_limit: usize,
}

/// Text made safe for HTML content and attribute values (control characters shown as `?`).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clean(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn render(r: &Report<'_>) -> String {
    let mut h = String::new();
    let when = r.generated.to_string();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>MIG fleet report {when}</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>MIG fleet report</h1>\n<p class=\"meta\">From <code>{}</code> at {when}. Stale: not \
         heard from for more than {} h.</p>\n",
        esc(r.api),
        r.stale_hours
    );
    rollout_table(&mut h, r.rollouts, r.generated);
    h.push_str("<h2>Adoption</h2>\n");
    adoption_chart(&mut h, r.adoption, &names(r.rollouts));
    h.push_str("<h2>Results per serial</h2>\n");
    result_bars(&mut h, r.rollouts);
    failure_table(&mut h, r.rollouts);
    stale_table(&mut h, r.stale, r.stale_limit);
    h.push_str("</body></html>\n");
    h
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222}\
table{border-collapse:collapse;margin:8px 0 24px}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.halted{color:#d62728;font-weight:bold}.meta{color:#555}\
.expiring{color:#b35900;font-weight:bold}tr.expiring td{background:#fff3e0}\
svg text{font-family:sans-serif;font-size:12px;fill:#222}";

fn names(rollouts: &[Rollout]) -> HashMap<u64, &str> {
    rollouts
        .iter()
        .map(|r| (r.manifest, r.name.as_str()))
        .collect()
}

/// One row per manifest with the days left before its expiry; a manifest that expires within
/// `table::WARN_BEFORE` (or expired) is marked, row and line.
fn rollout_table(h: &mut String, rollouts: &[Rollout], now: Timestamp) {
    h.push_str("<h2>Rollouts</h2>\n");
    if rollouts.is_empty() {
        h.push_str("<p>No active manifest.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"rollouts\"><tr><th>ID</th><th>Name</th><th>Status</th><th>Platform</th>\
         <th>Given</th><th>On it</th><th>Older</th><th>Failed</th><th>Rolled back</th>\
         <th>Rejected</th><th>Stale</th><th>Days left</th></tr>\n",
    );
    for r in rollouts {
        let _ = write!(
            h,
            "<tr data-manifest=\"{}\"{}><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}/{}</td>",
            r.manifest,
            if called_out(r.expires, now).is_some() {
                " class=\"expiring\""
            } else {
                ""
            },
            r.manifest,
            esc(&r.name),
            esc(r.status.as_str()),
            esc(&r.platform.os),
            esc(&r.platform.arch)
        );
        for (kind, n) in [
            ("given", r.given),
            ("on_it", r.on_it),
            ("older", r.older),
            ("failed", r.failed),
            ("rolled_back", r.rolled_back),
            ("rejected", r.rejected),
            ("stale", r.stale),
        ] {
            let _ = write!(h, "<td class=\"n\" data-kind=\"{kind}\">{n}</td>");
        }
        let _ = writeln!(
            h,
            "<td class=\"n\" data-kind=\"days_left\">{}</td></tr>",
            days_left(r.expires, now)
        );
    }
    h.push_str("</table>\n");
    for r in rollouts {
        let (Some(left), Some(at)) = (called_out(r.expires, now), r.expires) else {
            continue;
        };
        let when = if left == 0 {
            format!("expired at {at}: no loader installs it")
        } else {
            format!(
                "expires in {} d {} h ({at})",
                left / 86_400,
                left % 86_400 / 3600
            )
        };
        let _ = writeln!(
            h,
            "<p class=\"expiring\" data-manifest=\"{}\">Manifest {} {when}: renew it with \
             <code>manifest {} renew</code>.</p>",
            r.manifest, r.manifest, r.manifest
        );
    }
    for r in rollouts {
        if let Some(line) = crate::table::stale_answers(r) {
            let _ = writeln!(
                h,
                "<p class=\"expiring\" data-stale-answers=\"{}\">{}</p>",
                r.manifest,
                esc(&line)
            );
        }
    }
    for r in rollouts {
        if let Some(x) = &r.halted {
            let _ = writeln!(
                h,
                "<p class=\"halted\">Manifest {} halted at {}: {}.</p>",
                r.manifest,
                x.at,
                esc(&x.reason)
            );
        } else if let Some(rule) = &r.halt {
            let _ = writeln!(
                h,
                "<p>Manifest {} halts after {} failed or rolled back.</p>",
                r.manifest,
                esc(&rule.to_string())
            );
        }
    }
}

/// The smallest of 1, 2, 5 × 10^k at or above `n` (at least 1): the y axis's top.
fn axis_top(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if let Some(top) = step.checked_mul(m) {
                if top >= n {
                    return top;
                }
            }
        }
        match step.checked_mul(10) {
            Some(s) => step = s,
            None => return u64::MAX,
        }
    }
}

/// The y axis's labels from 0 to `top` (from [`axis_top`]) in equal whole steps.
fn ticks(top: u64) -> Vec<u64> {
    let parts = [5, 4, 2]
        .into_iter()
        .find(|p| top.is_multiple_of(*p))
        .unwrap_or(1);
    (0..=parts).map(|i| top / parts * i).collect()
}

/// `MM-DD HH:MM` of a timestamp (`YYYY-MM-DDTHH:MM:SSZ`).
fn short_time(t: Timestamp) -> String {
    let s = t.to_string();
    match (s.get(5..10), s.get(11..16)) {
        (Some(d), Some(hm)) => format!("{d} {hm}"),
        _ => s,
    }
}

fn adoption_chart(h: &mut String, a: &Adoption, names: &HashMap<u64, &str>) {
    if a.series.is_empty() || a.times.len() < 2 {
        h.push_str("<p>No loader reported being on any serial in this time.</p>\n");
        return;
    }
    let max = a
        .series
        .iter()
        .flat_map(|s| s.loaders.iter().copied())
        .max()
        .unwrap_or(0);
    let top = axis_top(max);
    let (t0, t1) = (a.times[0].0, a.times[a.times.len() - 1].0);
    let plot_w = CHART_W - LEFT - RIGHT;
    let plot_h = CHART_H - TOP - BOTTOM;
    let x = |t: u64| LEFT + plot_w * (t.saturating_sub(t0)) as f64 / (t1 - t0).max(1) as f64;
    let y = |n: u64| TOP + plot_h * (1.0 - n as f64 / top as f64);
    let _ = writeln!(
        h,
        "<svg id=\"adoption\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{CHART_W}\" \
         height=\"{CHART_H}\" viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" \
         aria-label=\"loaders on each serial over time\">"
    );
    for n in ticks(top) {
        let yy = y(n);
        let _ = writeln!(
            h,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\
             <text class=\"ytick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{n}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    let mid = a.times[a.times.len() / 2];
    for (t, anchor) in [
        (a.times[0], "start"),
        (mid, "middle"),
        (a.times[a.times.len() - 1], "end"),
    ] {
        let _ = writeln!(
            h,
            "<text class=\"xtick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            x(t.0),
            CHART_H - BOTTOM + 18.0,
            short_time(t)
        );
    }
    // Oldest first, so the newest serial's line is drawn over the others.
    for (i, s) in a.series.iter().enumerate().rev() {
        let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
        let points: Vec<String> = a
            .times
            .iter()
            .zip(&s.loaders)
            .map(|(t, n)| format!("{:.1},{:.1}", x(t.0), y(*n)))
            .collect();
        let _ = writeln!(
            h,
            "<polyline class=\"series\" data-serial=\"{}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"4\" stroke-linejoin=\"round\" points=\"{}\"/>",
            s.serial,
            points.join(" ")
        );
        let last = s.loaders.last().copied().unwrap_or(0);
        let ly = TOP + 18.0 * i as f64;
        let lx = CHART_W - RIGHT + 16.0;
        let name = names.get(&s.serial).map(|n| esc(n)).unwrap_or_default();
        let _ = writeln!(
            h,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\" fill=\"{colour}\"/>\
             <text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\">{} {name}: \
             <tspan class=\"last\" data-serial=\"{}\">{last}</tspan></text>",
            ly - 9.0,
            lx + 20.0,
            ly,
            s.serial,
            s.serial
        );
    }
    h.push_str(
        "</svg>\n<p class=\"meta\">Loaders whose latest report then was installed or \
                unchanged for each serial; the numbers are now.</p>\n",
    );
}

fn result_bars(h: &mut String, rollouts: &[Rollout]) {
    if rollouts.is_empty() {
        h.push_str("<p>No active manifest.</p>\n");
        return;
    }
    let count = |r: &Rollout, kind: &str| match kind {
        "on_it" => r.on_it,
        "older" => r.older,
        "failed" => r.failed,
        "rolled_back" => r.rolled_back,
        _ => r.rejected,
    };
    let total = |r: &Rollout| BAR_SEGMENTS.iter().map(|(k, _)| count(r, k)).sum::<u64>();
    let widest = rollouts.iter().map(total).max().unwrap_or(0).max(1);
    let height = TOP + BAR_ROW * rollouts.len() as f64 + BOTTOM;
    let plot_w = CHART_W - LEFT - RIGHT;
    let _ = writeln!(
        h,
        "<svg id=\"results\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{CHART_W}\" \
         height=\"{height}\" viewBox=\"0 0 {CHART_W} {height}\" role=\"img\" \
         aria-label=\"results per serial\">"
    );
    for (row, r) in rollouts.iter().enumerate() {
        let yy = TOP + BAR_ROW * row as f64;
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            yy + 15.0,
            r.manifest
        );
        let mut xx = LEFT;
        for (kind, colour) in BAR_SEGMENTS {
            let n = count(r, kind);
            if n == 0 {
                continue;
            }
            let w = plot_w * n as f64 / widest as f64;
            let _ = writeln!(
                h,
                "<rect class=\"seg\" data-manifest=\"{}\" data-kind=\"{kind}\" data-count=\"{n}\" \
                 x=\"{xx:.1}\" y=\"{yy:.1}\" width=\"{w:.1}\" height=\"20\" fill=\"{colour}\">\
                 <title>{kind}: {n}</title></rect>",
                r.manifest
            );
            xx += w;
        }
    }
    let ly = height - BOTTOM + 20.0;
    let mut lx = LEFT;
    for (kind, colour) in BAR_SEGMENTS {
        let _ = writeln!(
            h,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{ly:.1}\">{}</text>",
            ly - 9.0,
            lx + 18.0,
            kind.replace('_', " ")
        );
        lx += 110.0;
    }
    h.push_str("</svg>\n");
}

fn failure_table(h: &mut String, rollouts: &[Rollout]) {
    h.push_str("<h2>Commonest failures</h2>\n");
    let rows: Vec<_> = rollouts
        .iter()
        .flat_map(|r| r.failures.iter().map(move |f| (r.manifest, f)))
        .collect();
    if rows.is_empty() {
        h.push_str("<p>None.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"failures\"><tr><th>Manifest</th><th>Loaders</th><th>Result</th>\
         <th>Message</th></tr>\n",
    );
    for (m, f) in rows {
        let _ = writeln!(
            h,
            "<tr><td class=\"n\">{m}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            f.loaders,
            esc(&f.result),
            esc(&f.message)
        );
    }
    h.push_str("</table>\n");
}

fn stale_table(h: &mut String, stale: &[LoaderRecord], limit: usize) {
    h.push_str("<h2>Stale hosts</h2>\n");
    if stale.is_empty() {
        h.push_str("<p>None.</p>\n");
        return;
    }
    if stale.len() >= limit {
        let _ = writeln!(h, "<p class=\"meta\">The first {limit} only.</p>");
    }
    h.push_str(
        "<table id=\"stale\"><tr><th>ID</th><th>Name</th><th>Agent</th><th>Last seen</th>\
         <th>Last report</th></tr>\n",
    );
    for l in stale {
        let seen = l
            .lastseen
            .map_or_else(|| "never".to_string(), |t| t.to_string());
        let report = l
            .last_report
            .as_ref()
            .map_or_else(String::new, |r| format!("{} {}", r.serial, r.result));
        let _ = writeln!(
            h,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{seen}</td><td>{}</td></tr>",
            l.id,
            esc(&l.name),
            esc(l.agentname.as_deref().unwrap_or("")),
            esc(&report)
        );
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig_protocol::admin::{AdoptionSeries, FailureCount};
    use mig_protocol::statement::Platform;

    fn rollout(id: u64, message: &str) -> Rollout {
        Rollout {
            manifest: id,
            name: "canary <b>".into(),
            status: mig_protocol::ManifestStatus::Active,
            platform: Platform {
                os: "linux".into(),
                arch: "amd64".into(),
            },
            given: 10,
            on_it: 7,
            older: 1,
            failed: 1,
            rolled_back: 1,
            rejected: 0,
            stale: 2,
            stale_after: 86_400,
            failures: vec![FailureCount {
                result: "failed".into(),
                message: message.into(),
                loaders: 1,
            }],
            halt: None,
            halted: None,
            expires: None,
            freshness_expired: 0,
        }
    }

    #[test]
    fn hostile_text_is_escaped_and_nothing_is_loaded() {
        let rollouts = [rollout(
            34,
            "<img src=x onerror=alert(1)> & \"quotes\"\u{7}",
        )];
        let adoption = Adoption {
            times: vec![Timestamp(1_700_000_000), Timestamp(1_700_003_600)],
            series: vec![AdoptionSeries {
                serial: 34,
                loaders: vec![3, 7],
            }],
        };
        let page = render(&Report {
            api: "https://api.example.org/api/v2/",
            generated: Timestamp(1_700_003_600),
            stale_hours: 24,
            rollouts: &rollouts,
            adoption: &adoption,
            stale: &[],
            stale_limit: 1000,
        });
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;?"));
        assert!(page.contains("canary &lt;b&gt;"));
        assert!(!page.contains("<img") && !page.contains("<b>"), "{page}");
        for banned in ["<script", "<link", "<img", "<iframe", "url(", "@import"] {
            assert!(!page.contains(banned), "{banned} in the page");
        }
        assert!(page.contains("default-src 'none'"));
        assert!(page.contains("<tspan class=\"last\" data-serial=\"34\">7</tspan>"));
        assert!(page.contains("data-kind=\"on_it\" data-count=\"7\""));
    }

    #[test]
    fn manifests_expiring_within_14_days_are_marked() {
        let now = Timestamp(1_700_000_000);
        let mut soon = rollout(1, "");
        soon.expires = Some(Timestamp(now.0 + 3 * 86_400 + 7200));
        let mut later = rollout(2, "");
        later.expires = Some(Timestamp(now.0 + 15 * 86_400));
        let mut gone = rollout(3, "");
        gone.expires = Some(Timestamp(now.0 - 1));
        let page = render(&Report {
            api: "https://api.example.org/api/v2/",
            generated: now,
            stale_hours: 24,
            rollouts: &[soon, later, gone],
            adoption: &Adoption {
                times: vec![],
                series: vec![],
            },
            stale: &[],
            stale_limit: 1000,
        });
        assert!(
            page.contains("<tr data-manifest=\"1\" class=\"expiring\">"),
            "{page}"
        );
        assert!(page.contains("<tr data-manifest=\"2\"><"), "{page}");
        assert!(
            page.contains("<tr data-manifest=\"3\" class=\"expiring\">"),
            "{page}"
        );
        assert!(page
            .contains("<p class=\"expiring\" data-manifest=\"1\">Manifest 1 expires in 3 d 2 h ("));
        assert!(page.contains("<p class=\"expiring\" data-manifest=\"3\">Manifest 3 expired at "));
        assert!(!page.contains("data-manifest=\"2\">Manifest 2"), "{page}");
        assert!(page.contains("data-kind=\"days_left\">15</td>"), "{page}");
        assert!(!page.contains("data-stale-answers"), "{page}");
        let mut frozen = rollout(4, "");
        frozen.freshness_expired = 7;
        let page = render(&Report {
            api: "https://api.example.org/api/v2/",
            generated: now,
            stale_hours: 24,
            rollouts: &[frozen],
            adoption: &Adoption {
                times: vec![],
                series: vec![],
            },
            stale: &[],
            stale_limit: 1000,
        });
        assert!(
            page.contains(
                "<p class=\"expiring\" data-stale-answers=\"4\">Manifest 4: 7 host(s) refuse it, \
                 freshness expired: "
            ),
            "{page}"
        );
    }

    #[test]
    fn the_axis_tops_are_round_numbers() {
        let tops: Vec<u64> = [0, 1, 3, 7, 10, 11, 180, 2001].map(axis_top).to_vec();
        assert_eq!(tops, [1, 1, 5, 10, 10, 20, 200, 5000]);
        assert_eq!(axis_top(u64::MAX), u64::MAX);
        assert_eq!(ticks(10), [0, 2, 4, 6, 8, 10]);
        assert_eq!(ticks(20), [0, 4, 8, 12, 16, 20]);
        assert_eq!(ticks(2), [0, 1, 2]);
        assert_eq!(ticks(1), [0, 1]);
    }
}
