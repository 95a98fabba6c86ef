//! `mig-console report --html FILE` against a real mig-api and a fleet of simulated loaders (real
//! keys, real HTTP), opened in real headless Chromium (Debian's `chromium`): the rendered page's
//! numbers are the API's, hostile text stays text, and the screenshot shows the charts.

mod support;

use e2e::deployment::Deployment;
use e2e::ApiOptions;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{json, loader_asks, loader_reports};

/// A failure message a hostile loader might send.
const HOSTILE: &str = "<img src=x onerror=alert(1)> agent unhealthy";

/// Runs headless Chromium on `page` with `args`; returns its stdout.
fn chromium(page: &Path, profile: &Path, args: &[&str]) -> String {
    let mut c = Command::new("chromium");
    // Root in CI: Chromium refuses to run as root with its sandbox. The page is our own file
    // and loads nothing (its CSP forbids it).
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(format!("file://{}", page.display()))
    .env("HOME", profile);
    let o = e2e::process::run(c, None, Duration::from_secs(120));
    assert!(o.status.success(), "chromium {args:?}: {o}");
    o.stdout
}

/// The `data-count` of each result bar segment: (manifest, kind) → count.
fn bar_counts(dom: &str) -> BTreeMap<(u64, String), u64> {
    let mut out = BTreeMap::new();
    for seg in dom.split("<rect class=\"seg\" ").skip(1) {
        let attr = |name: &str| {
            let at = seg.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            seg[at..at + seg[at..].find('"').unwrap()].to_string()
        };
        out.insert(
            (attr("data-manifest").parse().unwrap(), attr("data-kind")),
            attr("data-count").parse().unwrap(),
        );
    }
    out
}

/// The number each adoption line ends on: serial → loaders.
fn last_points(dom: &str) -> BTreeMap<u64, u64> {
    dom.split("<tspan class=\"last\" data-serial=\"")
        .skip(1)
        .map(|rest| {
            let (serial, rest) = rest.split_once("\">").unwrap();
            let n = &rest[..rest.find('<').unwrap()];
            (serial.parse().unwrap(), n.parse().unwrap())
        })
        .collect()
}

/// Pixels of exactly `hex` (`#rrggbb`) in an RGB or RGBA PNG.
fn pixels_of(png_path: &Path, hex: &str) -> usize {
    let want: Vec<u8> = (1..7)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("screenshot colour type {other:?}"),
    };
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p[..3] == want[..])
        .count()
}

#[test]
fn the_html_report_renders_in_chromium_with_the_apis_numbers() {
    let d = Deployment::start(ApiOptions {
        required_signatures: 1,
        ..ApiOptions::default()
    });
    let host = mig_protocol::statement::Platform::host();
    let platform = (host.os.as_str(), host.arch.as_str());
    let base = d.api.base_url.clone();
    let publish = |name: &str, agent: &[u8], days: &str| {
        let archive = d.archive(name, &[("mig-agent", agent)]);
        let id = d.create_manifest_with(name, "true", &archive, platform, &["--valid-days", days]);
        assert_eq!(d.sign(id, &archive, &[&d.admin1]), "active");
        id
    };
    let old = publish("steady", b"agent v1\n", "90");
    let fleet: Vec<String> = (0..24)
        .map(|i| d.enrol_loader(&format!("host{i:02}.example.net"), None).1)
        .collect();
    for key in &fleet {
        assert_eq!(loader_asks(&base, key), 200);
        assert_eq!(loader_reports(&base, key, old, "installed", ""), 200);
    }
    // The canary expires in 10 days: the page marks it, and not the steady one.
    let new = publish("canary", b"agent v2\n", "10");
    // 16 of the 24 are given the canary: 10 install it, 3 fail, 2 roll back (saying something
    // hostile), 1 rejects it; the other 8 stay on the old one.
    for (i, key) in fleet[..16].iter().enumerate() {
        assert_eq!(loader_asks(&base, key), 200);
        let (result, message) = match i {
            0..=9 => ("installed", ""),
            10..=12 => ("failed", "disk full"),
            13 | 14 => ("rolled_back", HOSTILE),
            _ => ("rejected", "got 1 signature, need 2"),
        };
        assert_eq!(loader_reports(&base, key, new, result, message), 200);
    }
    // Two hosts enrolled and never heard from: the stale ones.
    for name in ["quiet1.example.net", "quiet2.example.net"] {
        d.enrol_loader(name, None);
    }

    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("fleet.html");
    let page_arg = page.to_str().unwrap();
    let o = d
        .admin1
        .run(&["report", "--html", page_arg, "--stale-hours", "1"]);
    assert!(
        o.ok()
            .stdout
            .contains("2 manifests, 2 serials over 168 h, 2 stale hosts"),
        "{o}"
    );
    let o = d.admin1.run(&["report", "--html", page_arg]);
    assert!(o.failed().stderr.contains("refusing to overwrite"), "{o}");
    let html = std::fs::read_to_string(&page).unwrap();
    for banned in ["<script", "<link", "<img", "<iframe", "url(", "@import"] {
        assert!(!html.contains(banned), "{banned} in the page");
    }

    // What Chromium made of it, against what the API says.
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(&page, profile.path(), &["--dump-dom"]);
    let rollouts = json(&d.admin1.run(&["--json", "status"]));
    let mut want_bars = BTreeMap::new();
    let mut want_last = BTreeMap::new();
    for r in rollouts.as_array().unwrap() {
        let m = r["manifest"].as_u64().unwrap();
        for kind in ["on_it", "older", "failed", "rolled_back", "rejected"] {
            let n = r[kind].as_u64().unwrap();
            if n > 0 {
                want_bars.insert((m, kind.to_string()), n);
            }
        }
        want_last.insert(m, r["on_it"].as_u64().unwrap());
    }
    assert_eq!(
        want_last,
        BTreeMap::from([(old, 8), (new, 10)]),
        "the fleet as built"
    );
    assert_eq!(bar_counts(&dom), want_bars, "{dom}");
    assert_eq!(last_points(&dom), want_last, "{dom}");
    assert!(
        !dom.contains("<img"),
        "hostile text became an element: {dom}"
    );
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt; agent unhealthy"));
    for name in ["quiet1.example.net", "quiet2.example.net"] {
        assert!(dom.contains(name), "{name} among the stale hosts");
    }
    assert!(
        dom.contains(&format!("<tr data-manifest=\"{new}\" class=\"expiring\">")),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            "<p class=\"expiring\" data-manifest=\"{new}\">Manifest {new} expires in 9 d "
        )),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("<tr data-manifest=\"{old}\"><")),
        "{dom}"
    );
    assert!(
        !dom.contains(&format!("data-manifest=\"{old}\">Manifest")),
        "{dom}"
    );

    // The picture: the newest serial's line (drawn over the older ones) and the installed bars.
    let shot = work.path().join("fleet.png");
    chromium(
        &page,
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1100,1800",
        ],
    );
    let line = pixels_of(&shot, console::report::html::SERIES_COLOURS[0]);
    let bars = pixels_of(&shot, console::report::html::BAR_SEGMENTS[0].1);
    assert!(line > 500, "{line} pixels of the canary's line");
    assert!(bars > 2000, "{bars} pixels of installed bars");
}
