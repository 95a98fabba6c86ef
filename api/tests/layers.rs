//! mig-api is built in layers whose arrows point down (docs/design.md §6.8): this test reads every
//! file of `api/src`, collects its `crate::…`, `super::…` and `self::…` references (in `use`
//! trees and in expressions), and draws the module graph one directory at a time: at the top the
//! nodes are `app`, `db`, `routes`, …; inside `routes/` they are `admin`, `loader`, …. A module
//! and its own submodules are one node one level up. Any cycle fails the test, printed with the
//! file and line of each arrow in it, unless its arrow is in `BACK_ARROWS` below.
//!
//! `cargo test -p api --test layers -- --nocapture` prints the graph's size and its cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Arrows that point up, each with why it must. docs/design.md §6.8 names every one.
const BACK_ARROWS: &[(&str, &str)] = &[
    // The types are one recursion: a plugin's compiled module (registry.rs) is instantiated
    // with the store state of sandbox.rs, and the evaluator's store state holds the registry
    // snapshot that `mig.call` looks its functions up in (docs/design.md §6.8).
    ("targeting::registry", "targeting::sandbox"),
];

type ModPath = Vec<String>;

/// One arrow between siblings of a directory, with where it was first seen.
#[derive(Default)]
struct Graph {
    edges: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(&'static str),
}

/// Rust source to identifiers and the punctuation the paths need, with line numbers; comments,
/// strings, characters and lifetimes are skipped.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if src[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if src[i..].starts_with("/*") {
            let mut depth = 0;
            while i < b.len() {
                if src[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if src[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(b[i] == b'\n');
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&src[i..]) {
            // r"…", r#"…"#, br#"…"#: no escapes, ends at the quote and as many hashes.
            i += src[i..].find('"').unwrap() + 1;
            let end = format!("\"{}", "#".repeat(hashes));
            let len = src[i..].find(&end).expect("unterminated raw string");
            line += src[i..i + len].matches('\n').count();
            i += len + end.len();
        } else if c == b'"' || (c == b'b' && b.get(i + 1) == Some(&b'"')) {
            i += if c == b'b' { 2 } else { 1 };
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                line += usize::from(b.get(i) == Some(&b'\n'));
                i += 1;
            }
            i += 1;
        } else if c == b'\'' || (c == b'b' && b.get(i + 1) == Some(&b'\'')) {
            // A character ('a', '\n', '\u{1F600}', b'x') or a lifetime ('a, 'static).
            let start = if c == b'b' { i + 2 } else { i + 1 };
            if b.get(start) == Some(&b'\\') {
                i = start + src[start..].find('\'').map_or(1, |p| p.max(2)) + 1;
                while i < b.len() && b[i - 1] != b'\'' {
                    i += 1;
                }
            } else {
                let ch = src[start..].chars().next().map_or(1, char::len_utf8);
                if b.get(start + ch) == Some(&b'\'') {
                    i = start + ch + 1;
                } else {
                    i = start;
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                        i += 1;
                    }
                }
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(src[s..i].to_string()), line));
        } else if src[i..].starts_with("::") {
            out.push((Tok::Punct("::"), line));
            i += 2;
        } else {
            let p = match c {
                b'{' => "{",
                b'}' => "}",
                b',' => ",",
                b'$' => "$",
                b'*' => "*",
                b';' => ";",
                _ => "other",
            };
            out.push((Tok::Punct(p), line));
            i += if c.is_ascii() {
                1
            } else {
                src[i..].chars().next().unwrap().len_utf8()
            };
        }
    }
    out
}

fn raw_string_start(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("br").or_else(|| s.strip_prefix('r'))?;
    let hashes = rest.len() - rest.trim_start_matches('#').len();
    rest[hashes..].starts_with('"').then_some(hashes)
}

fn ident(toks: &[(Tok, usize)], i: usize) -> Option<&str> {
    match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn punct(toks: &[(Tok, usize)], i: usize, p: &str) -> bool {
    matches!(toks.get(i), Some((Tok::Punct(q), _)) if *q == p)
}

/// A path or use tree after `crate::` (or `super::`, `self::`): every path it names, each the
/// segments after `prefix`; returns the index after it.
fn tree(toks: &[(Tok, usize)], mut i: usize, prefix: &ModPath, out: &mut Vec<ModPath>) -> usize {
    if punct(toks, i, "{") {
        i += 1;
        while !punct(toks, i, "}") && i < toks.len() {
            i = tree(toks, i, prefix, out);
            // The comma after an item, or a token no path takes (`as`, a renamed import).
            if !punct(toks, i, "}") {
                i += 1;
            }
        }
        return i + 1;
    }
    if punct(toks, i, "*") {
        out.push(prefix.clone());
        return i + 1;
    }
    let mut path = prefix.clone();
    while let Some(name) = ident(toks, i) {
        if name != "self" {
            path.push(name.to_string());
        }
        i += 1;
        if punct(toks, i, "::") && (ident(toks, i + 1).is_some() || punct(toks, i + 1, "{")) {
            i += 1;
            if punct(toks, i, "{") {
                return tree(toks, i, &path, out);
            }
        } else {
            if punct(toks, i, "::") && punct(toks, i + 1, "*") {
                i += 2;
            }
            break;
        }
    }
    out.push(path);
    i
}

/// Every module path a file refers to, with the line.
fn references(src: &str, module: &ModPath) -> Vec<(ModPath, usize)> {
    let toks = lex(src);
    let mut refs = Vec::new();
    // Inline modules (`mod tests { use super::*; }`): their `super` is the file's module.
    let mut scope: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        if punct(&toks, i, "{") {
            depth += 1;
        } else if punct(&toks, i, "}") {
            depth -= 1;
            if scope.last().is_some_and(|(_, d)| *d == depth) {
                scope.pop();
            }
        } else if ident(&toks, i) == Some("mod") && punct(&toks, i + 2, "{") {
            if let Some(name) = ident(&toks, i + 1) {
                scope.push((name.to_string(), depth));
            }
        }
        let here: ModPath = module
            .iter()
            .cloned()
            .chain(scope.iter().map(|(n, _)| n.clone()))
            .collect();
        let after_path = i > 0 && (punct(&toks, i - 1, "::") || punct(&toks, i - 1, "$"));
        let start = match ident(&toks, i) {
            Some("crate") if !after_path => Some(Vec::new()),
            Some("self") if !after_path => Some(here.clone()),
            Some("super") if !after_path => {
                let mut base = here.clone();
                base.pop();
                Some(base)
            }
            _ => None,
        };
        if let (Some(mut base), true) = (start, punct(&toks, i + 1, "::")) {
            let line = toks[i].1;
            let mut j = i + 2;
            while ident(&toks, j) == Some("super") && punct(&toks, j + 1, "::") {
                base.pop();
                j += 2;
            }
            let mut paths = Vec::new();
            let end = tree(&toks, j, &base, &mut paths);
            refs.extend(paths.into_iter().map(|p| (p, line)));
            // A tree's braces are its own; the loop resumes after it.
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    refs
}

/// Every `.rs` file of the library, with its module path (`lib.rs` is the root; `main.rs` is
/// the binary, a separate crate that uses the library from outside).
fn modules(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut mods = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap().with_extension("");
        let mut parts: ModPath = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts == ["main"] {
            continue;
        }
        if parts == ["lib"] || parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        mods.insert(parts, file);
    }
    mods
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let mut g = Graph::default();
    for (module, file) in &mods {
        let text = std::fs::read_to_string(file).unwrap();
        for (path, line) in references(&text, module) {
            // The longest prefix of the path that is a module of this crate; an item of the
            // crate root (`crate::Error`) is nobody's arrow.
            let Some(target) = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| mods.contains_key(p))
            else {
                continue;
            };
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common == module.len() || common == target.len() {
                continue; // itself, its own submodule or its parent
            }
            let from = module[..=common].join("::");
            let to = target[..=common].join("::");
            let at = format!("{}:{line}", file.strip_prefix(&src).unwrap().display());
            g.edges.entry(from).or_default().entry(to).or_insert(at);
        }
    }
    g
}

/// Strongly connected components of more than one node (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct S<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut S<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in s.edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let lw = s.low[w.as_str()];
                s.low.entry(v).and_modify(|l| *l = (*l).min(lw));
            } else if s.stack.contains(&w.as_str()) {
                let iw = s.index[w.as_str()];
                s.low.entry(v).and_modify(|l| *l = (*l).min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let at = s.stack.iter().rposition(|x| *x == v).unwrap();
            let comp: Vec<String> = s.stack.drain(at..).map(str::to_string).collect();
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let mut s = S {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    for c in &mut s.out {
        c.sort();
    }
    s.out.sort();
    s.out
}

/// The shortest path from `from` to `to` inside `within` (breadth first).
fn path(
    edges: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
    within: &[String],
) -> Option<Vec<String>> {
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        for w in edges.get(v).into_iter().flatten() {
            if !within.contains(w) || prev.contains_key(w.as_str()) {
                continue;
            }
            prev.insert(w, v);
            if w == to {
                let mut p = vec![to.to_string()];
                let mut at = to;
                while at != from || p.len() == 1 {
                    at = prev[at];
                    p.push(at.to_string());
                    if at == from {
                        break;
                    }
                }
                p.reverse();
                return Some(p);
            }
            queue.push_back(w);
        }
    }
    None
}

fn plain(g: &Graph, skip: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    g.edges
        .iter()
        .map(|(a, tos)| {
            (
                a.clone(),
                tos.keys()
                    .filter(|b| !skip.contains(&(a.as_str(), b.as_str())))
                    .cloned()
                    .collect(),
            )
        })
        .collect()
}

fn describe(
    g: &Graph,
    edges: &BTreeMap<String, BTreeSet<String>>,
    comps: &[Vec<String>],
) -> String {
    let mut out = String::new();
    for comp in comps {
        out += &format!("cycle of {} modules: {}\n", comp.len(), comp.join(", "));
        // One concrete loop through its first member, then every arrow inside it.
        if let Some(p) = path(edges, &comp[0], &comp[0], comp) {
            out += &format!("  e.g. {}\n", p.join(" -> "));
        }
        for a in comp {
            for b in edges
                .get(a)
                .into_iter()
                .flatten()
                .filter(|b| comp.contains(b))
            {
                out += &format!("  {a} -> {b}   ({})\n", g.edges[a][b]);
            }
        }
    }
    out
}

#[test]
fn the_module_graph_of_api_src_has_no_cycle_but_the_named_back_arrows() {
    let g = graph();
    let all = plain(&g, &[]);
    let before = cycles(&all);
    let arrows: usize = all.values().map(BTreeSet::len).sum();
    eprintln!(
        "{} modules, {arrows} arrows; with every arrow: {} cycle(s) holding {} modules; {} arrow(s) allowed up",
        all.len(),
        before.len(),
        before.iter().map(Vec::len).sum::<usize>(),
        BACK_ARROWS.len()
    );
    eprint!("{}", describe(&g, &all, &before));
    let left = plain(&g, BACK_ARROWS);
    let after = cycles(&left);
    assert!(
        after.is_empty(),
        "import cycles in api/src (docs/design.md §6.8):\n{}",
        describe(&g, &left, &after)
    );
}

/// The layers `lib.rs` declares: its `mod` lines in groups, each group opened by a comment,
/// the foundations first.
fn declared_layers() -> Vec<Vec<String>> {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let mut layers: Vec<Vec<String>> = Vec::new();
    let mut open = true;
    for line in lib.lines().map(str::trim) {
        if line.starts_with("//") && !line.starts_with("//!") {
            open = true;
        } else if let Some(name) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
        {
            if open {
                layers.push(Vec::new());
                open = false;
            }
            layers
                .last_mut()
                .unwrap()
                .push(name.trim_end_matches(';').to_string());
        }
    }
    layers
}

#[test]
fn no_module_uses_a_later_layer_of_lib_rs() {
    let g = graph();
    let layers = declared_layers();
    let layer = |m: &str| layers.iter().position(|l| l.iter().any(|n| n == m));
    let mut up = Vec::new();
    for (a, tos) in &g.edges {
        for (b, at) in tos {
            if a.contains("::") {
                continue; // inside a directory: the cycle test's business
            }
            let (Some(la), Some(lb)) = (layer(a), layer(b)) else {
                panic!("{a} or {b} is not declared in lib.rs");
            };
            if lb > la {
                up.push(format!(
                    "{a} (layer {}) -> {b} (layer {})   ({at})",
                    la + 1,
                    lb + 1
                ));
            }
        }
    }
    assert!(
        layers.len() > 3,
        "lib.rs declares its layers as commented groups of modules"
    );
    assert!(
        up.is_empty(),
        "arrows to a later layer of lib.rs (docs/design.md §6.8):\n{}",
        up.join("\n")
    );
}

#[test]
fn every_allowed_back_arrow_exists_and_closes_a_cycle() {
    let g = graph();
    let all = plain(&g, &[]);
    for (a, b) in BACK_ARROWS {
        assert!(
            all.get(*a).is_some_and(|t| t.contains(*b)),
            "{a} -> {b} is allowed but no file draws it: drop it"
        );
        let everything: Vec<String> = all.keys().cloned().collect();
        assert!(
            path(&all, b, a, &everything).is_some(),
            "{a} -> {b} is allowed but closes no cycle: drop it"
        );
    }
}

#[test]
fn the_reader_sees_every_kind_of_reference() {
    let m = |s: &str| s.split("::").map(str::to_string).collect::<ModPath>();
    let src = r##"
        use crate::{app::App, db::{self, Db}, routes::admin::*};
        use super::sibling;
        // use crate::comment;
        /* crate::block */
        const S: &str = "crate::string";
        const R: &str = r#"crate::raw"#;
        fn f<'a>(x: &'a str) -> char { let _ = crate::error::Error::Io; 'c' }
        macro_rules! m { () => { $crate::hidden }; }
        mod tests { use super::*; use super::super::up; }
    "##;
    let got: Vec<ModPath> = references(src, &m("front::forward"))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        got,
        vec![
            m("app::App"),
            m("db"),
            m("db::Db"),
            m("routes::admin"),
            m("front::sibling"),
            m("error::Error::Io"),
            m("front::forward"),
            m("front::up"),
        ]
    );
}
