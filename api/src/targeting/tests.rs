//! The engine through the real built-in plugins (compiled to wasm32 by build.rs) and real
//! hostile modules (written in WAT, assembled by the `wat` crate).

use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};

use super::limits::{MAX_EXPRESSION_LEN, MEMORY_CAP, OUTPUT_CAP};
use super::{Engine, LoaderFacts, TargetingError};

const PG_TABLE: &str = include_str!("../../../plugins/expr/testdata/postgresql.json");
const PG_LOADERS: &str = include_str!("../../../plugins/expr/testdata/loaders.json");
const STRICTER: &str = include_str!("../../../plugins/expr/testdata/stricter.json");

/// One engine for the tests that do not count or change plugins (compiling the built-ins
/// takes a moment in a debug build).
fn shared() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().unwrap())
}

fn pg_loaders() -> Vec<(String, LoaderFacts)> {
    let v: serde_json::Map<String, Value> = serde_json::from_str(PG_LOADERS).unwrap();
    v.into_iter()
        .map(|(k, l)| {
            let facts = LoaderFacts {
                name: l["name"].as_str().unwrap().into(),
                loadername: l["loadername"].as_str().unwrap().into(),
                env: l["env"].clone(),
                tags: l["tags"].clone(),
                attributes: l["attributes"].clone(),
            };
            (k, facts)
        })
        .collect()
}

fn loader(key: &str) -> LoaderFacts {
    pg_loaders().into_iter().find(|(k, _)| k == key).unwrap().1
}

fn named(loadername: &str) -> LoaderFacts {
    LoaderFacts {
        loadername: loadername.into(),
        ..loader("linux")
    }
}

// ---------------------------------------------------------------- language and built-ins

#[test]
fn engine_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Engine>();
}

#[test]
fn builtins_are_listed_with_their_hash_and_functions() {
    let plugins: Vec<_> = shared()
        .plugins()
        .into_iter()
        .filter(|p| p.builtin)
        .collect();
    let names: Vec<(&str, &[String], bool)> = plugins
        .iter()
        .map(|p| (p.name.as_str(), p.functions.as_slice(), p.builtin))
        .collect();
    assert_eq!(
        names,
        vec![
            ("expr", &[][..], true),
            ("rollout", &["rollout".to_string()][..], true),
            ("semver", &["semver".to_string()][..], true)
        ]
    );
    for p in &plugins {
        let (_, bytes) = super::builtin::BUILTIN
            .iter()
            .find(|(n, _)| *n == p.name)
            .unwrap();
        assert_eq!(p.sha256, hex_sha256(bytes));
        assert_eq!(p.size, bytes.len() as u64);
    }
}

fn hex_sha256(b: &[u8]) -> String {
    mig_protocol::Sha256::of(b).into()
}

/// Every expression of the table, every loader, through the wasm evaluator: true, false
/// and NULL exactly as PostgreSQL 15 answered (NULL seen through `IS UNKNOWN`), and
/// everything PostgreSQL refused is refused at write time.
#[test]
fn every_reference_target_evaluates_as_postgresql_did() {
    let table: Value = serde_json::from_str(PG_TABLE).unwrap();
    let stricter: Vec<Value> = serde_json::from_str(STRICTER).unwrap();
    let engine = shared();
    let mut accepted = Vec::new();
    for case in table["cases"].as_array().unwrap() {
        let src = case["expr"].as_str().unwrap();
        let refused = case["pg"]
            .as_object()
            .unwrap()
            .values()
            .any(|v| v == "error")
            || stricter.iter().any(|s| s["expr"] == src);
        match engine.validate(src) {
            Err(TargetingError::Parse { position, message }) if refused => {
                assert!(position >= 1 && !message.is_empty(), "{src}")
            }
            Ok(()) if !refused => accepted.push(case),
            other => panic!(
                "{src:?}: validate gave {other:?}, PostgreSQL: {}",
                case["pg"]
            ),
        }
    }
    assert!(accepted.len() > 120, "{}", accepted.len());
    // The MIG docs' own examples are among them.
    for doc in ["env#>>'{os}'='linux'", "tags#>>'{operator}'='myorg'"] {
        assert!(accepted.iter().any(|c| c["expr"] == doc), "{doc}");
    }
    for (key, facts) in pg_loaders() {
        let mut exprs: Vec<String> = accepted
            .iter()
            .map(|c| c["expr"].as_str().unwrap().to_string())
            .collect();
        // Newlines keep a trailing `--` comment from swallowing the parenthesis.
        exprs.extend(
            accepted
                .iter()
                .map(|c| format!("(\n{}\n) IS UNKNOWN", c["expr"].as_str().unwrap())),
        );
        let refs: Vec<&str> = exprs.iter().map(String::as_str).collect();
        let results = engine.evaluate(&facts, &refs);
        let n = accepted.len();
        for (i, case) in accepted.iter().enumerate() {
            let is_true = results[i]
                .as_ref()
                .unwrap_or_else(|e| panic!("{}: {e}", case["expr"]));
            let is_null = results[n + i].as_ref().unwrap();
            let ours = match (is_true, is_null) {
                (true, false) => "true",
                (false, false) => "false",
                (false, true) => "null",
                _ => unreachable!(),
            };
            assert_eq!(ours, case["pg"][&key], "{} for loader {key}", case["expr"]);
        }
    }
}

#[test]
fn a_or_b_never_matches_through_another_loader() {
    // MIG ran `... WHERE id=$1 AND A OR B`: once any loader had B, every loader matched.
    let table: Value = serde_json::from_str(PG_TABLE).unwrap();
    let target = "env#>>'{os}'='darwin' OR tags#>>'{operator}'='myorg'";
    let mig = &table["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["expr"] == target)
        .unwrap()["mig"];
    assert_eq!(
        mig["windows"], "row",
        "MIG's splice matched the windows loader"
    );
    let engine = shared();
    assert!(!engine.matches(&loader("windows"), target).unwrap());
    assert!(engine.matches(&loader("linux"), target).unwrap());
    assert!(engine.matches(&loader("darwin"), target).unwrap());
    // The issue's own example: neither clause holds for this loader, whatever others have.
    let x = "env#>>'{os}'='darwin' OR tags#>>'{operator}'='x'";
    let others_would_match = LoaderFacts {
        tags: json!({"operator": "x"}),
        ..loader("windows")
    };
    assert!(engine.matches(&others_would_match, x).unwrap());
    assert!(!engine.matches(&loader("linux"), x).unwrap());
    assert_eq!(
        engine.select(&loader("linux"), &[(9, x), (8, "env->>'os' = 'linux'")]),
        Some(8)
    );
}

#[test]
fn validation_refuses_with_the_parsers_position_and_message() {
    let engine = shared();
    match engine.validate("env#>>'{os}' = = 'linux'") {
        Err(TargetingError::Parse {
            position: 16,
            message,
        }) => {
            assert!(
                message.contains("expected an expression, found '='"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    let e = engine.validate("env->'os' = 'linux'").unwrap_err();
    assert!(
        e.to_string()
            .contains("operator does not exist: json = unknown"),
        "{e}"
    );
    assert_eq!(
        engine.validate("nosuch('x') OR true"),
        Err(TargetingError::UnknownFunction("nosuch".into()))
    );
    assert_eq!(
        engine.validate("rollout('wave-1', 10) AND semver(tags->>'v', '>=1.2')"),
        Ok(())
    );
    let long = format!("name = '{}'", "x".repeat(MAX_EXPRESSION_LEN));
    assert!(
        matches!(engine.validate(&long), Err(TargetingError::Invalid(m)) if m.contains("limit"))
    );
}

/// Each expression is parsed and type-checked once (at validation or when first seen) and then
/// sent compiled; the answers stay those of the source, and a "compiled form" from anywhere
/// but the engine is refused.
#[test]
fn expressions_are_compiled_once_and_a_forged_compiled_form_is_refused() {
    let engine = Engine::new().unwrap();
    let linux = loader("linux");
    engine.validate("env->>'os' = 'linux'").unwrap();
    assert_eq!(engine.stats().compiled, 1);
    let exprs = [
        "env->>'os' = 'linux'",
        "tags->>'operator' IN ('x', 'myorg') AND NOT name LIKE 'db%'",
        "env->'os' = 'linux'", // a type error: kept as source, reported from it
    ];
    let first = engine.evaluate(&linux, &exprs);
    assert_eq!(engine.stats().compiled, 3);
    let again = engine.evaluate(&linux, &exprs);
    assert_eq!(engine.stats().compiled, 3, "nothing compiled twice");
    assert_eq!(first[..2], again[..2]);
    assert_eq!(first[0], Ok(true));
    for r in [&first[2], &again[2]] {
        assert!(
            matches!(r, Err(TargetingError::Evaluation(m)) if m.contains("operator does not exist")),
            "{r:?}"
        );
    }
    // "\u{1}T" is the compiled form of `true`: typed as a target it must not match anything.
    let forged = "\u{1}T";
    assert!(matches!(
        engine.validate(forged),
        Err(TargetingError::Invalid(m)) if m.contains("control character")
    ));
    assert!(matches!(
        &engine.evaluate(&linux, &[forged])[0],
        Err(TargetingError::Invalid(_))
    ));
    assert_eq!(engine.select(&linux, &[(1, forged)]), None);
}

/// A loader's expectenv and the selection run in one instance; no target is evaluated when the
/// expectenv is not true.
#[test]
fn expectenv_gates_selection_in_the_same_instance() {
    use super::Selection;
    let linux = loader("linux");
    let candidates = [(3, "env->>'os' = 'darwin'"), (2, "true"), (1, "true")];
    let engine = Engine::new().unwrap();
    let picked = engine.select_expecting(&linux, Some("env->>'os' = 'linux'"), &candidates);
    assert!(matches!(picked, Selection::Selected(Some(2))), "{picked:?}");
    // Gate, then candidates up to the first match.
    assert_eq!(engine.stats().evaluations, 3);
    for (expect, why) in [
        ("env->>'os' = 'windows'", None),
        ("env->>'nosuch' = 'x'", None),
        ("env->'os' = 'linux'", Some("operator does not exist")),
        ("nosuch()", Some("no loaded plugin provides nosuch()")),
    ] {
        let engine = Engine::new().unwrap();
        match engine.select_expecting(&linux, Some(expect), &candidates) {
            Selection::Refused(None) if why.is_none() => {}
            Selection::Refused(Some(e)) if why.is_some_and(|w| e.to_string().contains(w)) => {}
            other => panic!("{expect}: {other:?}"),
        }
        assert_eq!(
            engine.stats().evaluations,
            1,
            "{expect}: no target evaluated"
        );
    }
    let long = format!("name = '{}'", "x".repeat(MAX_EXPRESSION_LEN));
    assert!(matches!(
        shared().select_expecting(&linux, Some(&long), &candidates),
        Selection::Refused(Some(TargetingError::Invalid(_)))
    ));
    assert!(matches!(
        shared().select_expecting(&linux, None, &candidates[..1]),
        Selection::Selected(None)
    ));
}

/// An evaluator's answer must end exactly where evaluation stops.
#[test]
fn eval_answers_that_do_not_stop_where_they_should_are_garbage() {
    use super::abi::{parse_eval_output, Stop};
    let gated = Stop {
        first_match: true,
        gates: 1,
    };
    let ok = |a: &str, n: usize, s: Stop| parse_eval_output(a.as_bytes(), n, s).is_ok();
    assert!(ok(r#"{"ok":[true,false,true]}"#, 4, gated));
    assert!(ok(r#"{"ok":[false]}"#, 4, gated));
    assert!(ok(r#"{"ok":[null]}"#, 4, gated));
    assert!(ok(r#"{"ok":[true,false,false,false]}"#, 4, gated));
    // Stopped after a true gate, went on after a false one, or after the match.
    assert!(!ok(r#"{"ok":[true]}"#, 4, gated));
    assert!(!ok(r#"{"ok":[false,true]}"#, 4, gated));
    assert!(!ok(r#"{"ok":[true,true,false]}"#, 4, gated));
    assert!(!ok(r#"{"ok":[]}"#, 4, gated));
    assert!(ok(r#"{"ok":[true,true]}"#, 2, Stop::NEVER));
    assert!(!ok(r#"{"ok":[true]}"#, 2, Stop::NEVER));
}

#[test]
fn an_error_on_one_candidate_does_not_stop_selection() {
    let engine = Engine::new().unwrap();
    let linux = loader("linux");
    let long = format!("name = '{}'", "x".repeat(MAX_EXPRESSION_LEN));
    let candidates = [
        (5, "env->'os' = 'linux'"),  // refused type: evaluation error
        (4, long.as_str()),          // over the length limit
        (3, "nosuch() OR true"),     // unknown function at run time
        (2, "env->>'os' = 'linux'"), // the match
        (1, "true"),
    ];
    assert_eq!(engine.select(&linux, &candidates), Some(2));
    let stats = engine.stats();
    // Selection stops at the first match: 4 evaluated, 3 failed.
    assert_eq!((stats.evaluations, stats.failures), (4, 3));
    let all = engine.evaluate(&linux, &candidates.map(|(_, e)| e));
    assert_eq!(all.len(), 5);
    assert!(
        matches!(all[0], Err(TargetingError::Evaluation(ref m)) if m.contains("operator does not exist"))
    );
    assert!(matches!(all[1], Err(TargetingError::Invalid(_))));
    assert!(
        matches!(all[2], Err(TargetingError::Evaluation(ref m)) if m.contains("no loaded plugin provides nosuch()"))
    );
    assert_eq!((&all[3], &all[4]), (&Ok(true), &Ok(true)));
    assert_eq!(engine.select(&loader("bare"), &candidates[..3]), None);
}

#[test]
fn null_results_do_not_match() {
    let engine = shared();
    let bare = loader("bare");
    assert_eq!(engine.matches(&bare, "env->>'os' = 'linux'"), Ok(false));
    assert_eq!(engine.matches(&bare, "NOT env->>'os' = 'linux'"), Ok(false));
    assert_eq!(engine.matches(&bare, "env->>'os' IS NULL"), Ok(true));
}

// ---------------------------------------------------------------- rollout and semver

#[test]
fn rollout_is_stable_and_monotonic_through_the_sandbox() {
    let engine = shared();
    let percents = [0, 1, 5, 10, 30, 50, 90, 100];
    let exprs: Vec<String> = percents
        .iter()
        .map(|p| format!("rollout('wave-1', {p})"))
        .collect();
    let refs: Vec<&str> = exprs.iter().map(String::as_str).collect();
    let mut counts = vec![0usize; percents.len()];
    for i in 0..300 {
        let l = named(&format!("loader-{i:04}"));
        let row: Vec<bool> = engine
            .evaluate(&l, &refs)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            row,
            engine
                .evaluate(&l, &refs)
                .into_iter()
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
            "stable"
        );
        for w in row.windows(2) {
            assert!(
                !w[0] || w[1],
                "loader-{i:04} left the wave as PERCENT rose: {row:?}"
            );
        }
        for (c, hit) in counts.iter_mut().zip(&row) {
            *c += usize::from(*hit);
        }
    }
    assert_eq!((counts[0], counts[7]), (0, 300));
    assert!(
        (120..=180).contains(&counts[5]),
        "50% of 300 gave {}",
        counts[5]
    );
    // The wave name picks a different sample.
    let a: Vec<bool> = (0..100)
        .map(|i| {
            engine
                .matches(&named(&format!("l{i}")), "rollout('a', 50)")
                .unwrap()
        })
        .collect();
    let b: Vec<bool> = (0..100)
        .map(|i| {
            engine
                .matches(&named(&format!("l{i}")), "rollout('b', 50)")
                .unwrap()
        })
        .collect();
    assert_ne!(a, b);
    // The hostname a loader reports does not move it: only the loader entry's name counts.
    let mut moved = named("loader-0001");
    let before = engine.matches(&moved, "rollout('wave-1', 30)").unwrap();
    moved.name = "some-other-host".into();
    assert_eq!(
        engine.matches(&moved, "rollout('wave-1', 30)").unwrap(),
        before
    );
    assert!(
        matches!(engine.matches(&moved, "rollout('w', 101)"), Err(TargetingError::Evaluation(m)) if m.contains("between 0 and 100"))
    );
}

#[test]
fn semver_compares_reported_versions() {
    let engine = shared();
    let with = |v: Value| LoaderFacts {
        tags: json!({ "agent_version": v }),
        ..loader("linux")
    };
    let target = "semver(tags->>'agent_version', '>=1.4.0, <2')";
    assert!(engine.matches(&with(json!("1.10.2")), target).unwrap());
    assert!(!engine.matches(&with(json!("2.0.0")), target).unwrap());
    assert!(engine.matches(&with(json!("2.0.0-rc.1")), target).unwrap());
    // Garbage or missing versions are unknown: neither the target nor its negation match.
    assert!(!engine
        .matches(&with(json!("20160512-0.9fe5f23.dev")), target)
        .unwrap());
    assert!(!engine
        .matches(&with(json!("junk")), &format!("NOT {target}"))
        .unwrap());
    assert!(!engine
        .matches(&loader("bare"), &format!("NOT {target}"))
        .unwrap());
}

// ---------------------------------------------------------------- hostile plugins

fn wat_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A plugin module in WAT: `describe` is its `mig_describe` JSON (at byte 0), `invoke` the
/// body of `mig_invoke` (an i64), `output` bytes placed at 1024 for the body to return
/// through [`out`], `extra` more module fields (imports).
fn module(describe: &str, invoke: &str, output: &str, extra: &str) -> Vec<u8> {
    let src = format!(
        r#"(module
            {extra}
            (memory (export "memory") 2)
            (data (i32.const 0) "{d}")
            (data (i32.const 1024) "{o}")
            (func (export "mig_abi_version") (result i32) (i32.const 1))
            (func (export "mig_alloc") (param i32) (result i32) (i32.const 8192))
            (func (export "mig_describe") (result i64) (i64.const {dlen}))
            (func (export "mig_invoke") (param i32 i32) (result i64) {invoke}))"#,
        d = wat_string(describe),
        o = wat_string(output),
        dlen = describe.len(),
    );
    wat::parse_str(&src).unwrap()
}

/// The packed pointer/length of `output` at byte 1024.
fn out(output: &str) -> String {
    format!("(i64.const {})", (1024i64 << 32) | output.len() as i64)
}

fn function_plugin(function: &str, invoke: &str, output: &str) -> Vec<u8> {
    module(
        &format!(r#"{{"name":"h","functions":["{function}"]}}"#),
        invoke,
        output,
        "",
    )
}

/// Loads a hostile plugin (named after its function) into the shared engine, checks that
/// calling it fails with `reason` and that the engine still selects the good candidate
/// behind it and keeps working.
fn hostile_call_fails(function: &str, wasm: &[u8], reason: &str) {
    let engine = shared();
    engine.load_plugin(function, wasm).unwrap();
    let linux = loader("linux");
    let target = format!("{function}()");
    match engine.matches(&linux, &target) {
        Err(TargetingError::Evaluation(m)) => assert!(m.contains(reason), "{function}: {m}"),
        other => panic!("{function}: {other:?}"),
    }
    let before = engine.stats().failures;
    let picked = engine.select(
        &linux,
        &[(3, &target), (2, "env->>'os' = 'linux'"), (1, "true")],
    );
    assert_eq!(picked, Some(2), "{function}");
    assert!(engine.stats().failures > before);
    assert_eq!(engine.matches(&linux, "rollout('x', 100)"), Ok(true));
}

#[test]
fn a_well_behaved_wat_plugin_works() {
    let engine = shared();
    let ok = r#"{"ok":true}"#;
    let info = engine
        .load_plugin("always", &function_plugin("always", &out(ok), ok))
        .unwrap();
    assert_eq!(
        (info.functions, info.builtin),
        (vec!["always".to_string()], false)
    );
    assert_eq!(
        engine.matches(&loader("linux"), "always() AND env->>'os' = 'linux'"),
        Ok(true)
    );
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let wasm = function_plugin("spin", "(loop $l (br $l)) (i64.const 0)", "");
    hostile_call_fails("spin", &wasm, "ran out of fuel");
}

#[test]
fn memory_growth_hits_the_cap() {
    let wasm = function_plugin(
        "hog",
        "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) (i64.const 0)",
        "",
    );
    hostile_call_fails(
        "hog",
        &wasm,
        &format!("memory cap of {} MiB", MEMORY_CAP >> 20),
    );
}

#[test]
fn unreachable_traps() {
    hostile_call_fails(
        "boom",
        &function_plugin("boom", "(unreachable)", ""),
        "unreachable",
    );
}

#[test]
fn huge_or_stray_output_is_refused() {
    // A memory big enough to hold more than the cap, and an answer of cap + 1 bytes.
    let huge = format!("(i64.const {})", (1024i64 << 32) | (OUTPUT_CAP as i64 + 1));
    let big = wat::parse_str(format!(
        r#"(module
            (memory (export "memory") 40)
            (data (i32.const 0) "{d}")
            (func (export "mig_abi_version") (result i32) (i32.const 1))
            (func (export "mig_alloc") (param i32) (result i32) (i32.const 8192))
            (func (export "mig_describe") (result i64) (i64.const {dlen}))
            (func (export "mig_invoke") (param i32 i32) (result i64) {huge}))"#,
        d = wat_string(r#"{"name":"h","functions":["huge"]}"#),
        dlen = r#"{"name":"h","functions":["huge"]}"#.len(),
    ))
    .unwrap();
    hostile_call_fails("huge", &big, "output cap");
    let stray = format!("(i64.const {})", (0x7fff_0000i64 << 32) | 100);
    hostile_call_fails(
        "stray",
        &function_plugin("stray", &stray, ""),
        "outside its",
    );
}

#[test]
fn garbage_answers_are_refused() {
    for (f, output, reason) in [
        ("garbage", "not json at all", "invalid JSON"),
        (
            "number",
            r#"{"ok":5}"#,
            "where true, false or null was expected",
        ),
        ("extra", r#"{"ok":true,"also":1}"#, "neither"),
        ("arr", "[true]", "instead of a JSON object"),
    ] {
        hostile_call_fails(f, &function_plugin(f, &out(output), output), reason);
    }
}

#[test]
fn a_function_plugin_cannot_call_other_plugins() {
    let request = r#"{"function":"rollout","args":["w",100]}"#;
    let wasm = module(
        r#"{"name":"h","functions":["nest"]}"#,
        &format!(
            "(call $call (i32.const 1024) (i32.const {}))",
            request.len()
        ),
        request,
        r#"(import "mig" "call" (func $call (param i32 i32) (result i64)))"#,
    );
    hostile_call_fails("nest", &wasm, "only available to the evaluator");
}

fn refused(wasm: &[u8], reason: &str) {
    match shared().load_plugin("bad", wasm) {
        Err(TargetingError::Invalid(m)) => assert!(m.contains(reason), "{m}"),
        other => panic!("{reason}: {other:?}"),
    }
}

#[test]
fn modules_that_break_the_abi_are_refused_at_upload() {
    let d = r#"{"name":"h","functions":["f"]}"#;
    refused(b"this is not wasm", "not a WebAssembly module");
    refused(b"\0asm\x01\0\0\0\xff\xff", "not a valid WebAssembly module");
    refused(
        &wat::parse_str("(module (memory (export \"memory\") 1))").unwrap(),
        "does not export mig_abi_version",
    );
    let no_invoke = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "{}")
            (func (export "mig_abi_version") (result i32) (i32.const 1))
            (func (export "mig_alloc") (param i32) (result i32) (i32.const 0))
            (func (export "mig_describe") (result i64) (i64.const {})))"#,
        wat_string(d),
        d.len()
    ))
    .unwrap();
    refused(&no_invoke, "does not export mig_invoke");
    let wrong_type = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "{}")
            (func (export "mig_abi_version") (result i32) (i32.const 1))
            (func (export "mig_alloc") (param i32) (result i32) (i32.const 0))
            (func (export "mig_describe") (result i64) (i64.const {}))
            (func (export "mig_invoke") (param i32) (result i32) (i32.const 0)))"#,
        wat_string(d),
        d.len()
    ))
    .unwrap();
    refused(&wrong_type, "exports mig_invoke with the wrong type");
    let wasi = module(
        d,
        "(i64.const 0)",
        "",
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
    );
    refused(&wasi, "imports wasi_snapshot_preview1.fd_write");
    let bad_call = module(
        d,
        "(i64.const 0)",
        "",
        r#"(import "mig" "call" (func (param i32) (result i32)))"#,
    );
    refused(&bad_call, "mig.call with the wrong type");
    let v2 = wat::parse_str(
        r#"(module (memory (export "memory") 1)
            (func (export "mig_abi_version") (result i32) (i32.const 2))
            (func (export "mig_alloc") (param i32) (result i32) (i32.const 0))
            (func (export "mig_describe") (result i64) (i64.const 0))
            (func (export "mig_invoke") (param i32 i32) (result i64) (i64.const 0)))"#,
    )
    .unwrap();
    refused(&v2, "speaks ABI version 2");
    refused(
        &module("nonsense", "(i64.const 0)", "", ""),
        "mig_describe answered invalid JSON",
    );
    refused(
        &module(
            r#"{"name":"h","functions":["x"],"evaluator":true}"#,
            "(i64.const 0)",
            "",
            "",
        ),
        "only the built-in expr",
    );
    refused(
        &module(
            r#"{"name":"h","functions":["rollout"]}"#,
            "(i64.const 0)",
            "",
            "",
        ),
        "already provided by plugin rollout",
    );
    refused(
        &module(
            r#"{"name":"h","functions":["Bad-Name"]}"#,
            "(i64.const 0)",
            "",
            "",
        ),
        "function name",
    );
    refused(
        &module(
            r#"{"name":"h","functions":["and"]}"#,
            "(i64.const 0)",
            "",
            "",
        ),
        "keyword",
    );
    refused(
        &module(r#"{"name":"h","functions":[]}"#, "(i64.const 0)", "", ""),
        "declares no functions",
    );
    let describe_spins = wat::parse_str(
        r#"(module (memory (export "memory") 1)
            (func (export "mig_abi_version") (result i32) (i32.const 1))
            (func (export "mig_alloc") (param i32) (result i32) (i32.const 0))
            (func (export "mig_describe") (result i64) (loop $l (br $l)) (i64.const 0))
            (func (export "mig_invoke") (param i32 i32) (result i64) (i64.const 0)))"#,
    )
    .unwrap();
    refused(&describe_spins, "ran out of fuel");
    refused(&vec![0u8; super::limits::MAX_PLUGIN_SIZE + 1], "over the");
    // None of this touched the built-ins.
    assert_eq!(shared().plugins().iter().filter(|p| p.builtin).count(), 3);
    assert!(!shared().plugins().iter().any(|p| p.name == "bad"));
}

#[test]
fn names_builtins_replacement_and_removal() {
    let engine = shared();
    let ok = r#"{"ok":true}"#;
    let no = r#"{"ok":false}"#;
    let wasm = function_plugin("window", &out(ok), ok);
    assert!(matches!(
        engine.load_plugin("rollout", &wasm),
        Err(TargetingError::Builtin(_))
    ));
    assert!(matches!(
        engine.load_plugin("Bad Name", &wasm),
        Err(TargetingError::Invalid(_))
    ));
    assert!(matches!(
        engine.remove_plugin("expr"),
        Err(TargetingError::Builtin(_))
    ));
    assert!(matches!(
        engine.remove_plugin("nothing"),
        Err(TargetingError::UnknownPlugin(_))
    ));
    let first = engine.load_plugin("window", &wasm).unwrap();
    assert_eq!(engine.matches(&loader("linux"), "window()"), Ok(true));
    // Same name: replaced, new answer, new hash.
    let second = engine
        .load_plugin("window", &function_plugin("window", &out(no), no))
        .unwrap();
    assert_ne!(first.sha256, second.sha256);
    assert_eq!(engine.matches(&loader("linux"), "window()"), Ok(false));
    assert_eq!(
        engine
            .plugins()
            .iter()
            .filter(|p| p.name == "window")
            .count(),
        1
    );
    // Another plugin may not take its function; after removal the function is unknown.
    assert!(engine
        .load_plugin("other", &function_plugin("window", &out(ok), ok))
        .is_err());
    engine.remove_plugin("window").unwrap();
    assert_eq!(
        engine.validate("window()"),
        Err(TargetingError::UnknownFunction("window".into()))
    );
    assert!(
        matches!(engine.matches(&loader("linux"), "window()"), Err(TargetingError::Evaluation(m)) if m.contains("no loaded plugin"))
    );
    assert!(engine
        .load_plugin("other", &function_plugin("window", &out(ok), ok))
        .is_ok());
}

#[test]
fn an_evaluator_batch_that_fails_is_retried_one_by_one() {
    // A LIKE with thousands of `%` against a long reported value costs the evaluator more
    // fuel than a batch has: only that candidate fails, the others are still considered.
    let engine = shared();
    let heavy = LoaderFacts {
        env: json!({ "os": "linux", "big": "a".repeat(200_000) }),
        ..loader("linux")
    };
    let pattern = format!("env->>'big' LIKE '{}b'", "%a".repeat(2000));
    let picked = engine.select(
        &heavy,
        &[
            (3, pattern.as_str()),
            (2, "env->>'os' = 'linux'"),
            (1, "true"),
        ],
    );
    assert_eq!(picked, Some(2));
    let r = engine.matches(&heavy, &pattern);
    assert!(
        matches!(r, Err(TargetingError::Plugin { ref plugin, ref reason }) if plugin == "expr" && reason.contains("fuel")),
        "{r:?}"
    );
}

#[test]
fn many_threads_share_one_engine() {
    let engine = Arc::new(Engine::new().unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let l = named(&format!("t{t}-{i}"));
                    let got = engine.select(
                        &l,
                        &[(2, "env->>'os' = 'darwin'"), (1, "env->>'os' = 'linux'")],
                    );
                    assert_eq!(got, Some(1));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(engine.stats().evaluations, 4 * 25 * 2);
}

#[test]
fn instantiation_probe_works_for_every_builtin() {
    for p in ["expr", "rollout", "semver"] {
        shared().instantiate_once(p).unwrap();
    }
    assert!(matches!(
        shared().instantiate_once("nope"),
        Err(TargetingError::UnknownPlugin(_))
    ));
}

#[test]
fn repeated_calls_in_one_evaluation_run_once() {
    // 40 calls of the same function with the same arguments exceed the per-expression call
    // budget unless identical calls are answered from the evaluation's memo.
    let ok = r#"{"ok":true}"#;
    shared()
        .load_plugin("memo", &function_plugin("memo_fn", &out(ok), ok))
        .unwrap();
    let same = vec!["memo_fn('a', 1)"; 40].join(" AND ");
    assert_eq!(shared().matches(&loader("linux"), &same), Ok(true));
    let different: Vec<String> = (0..40).map(|i| format!("memo_fn('a', {i})")).collect();
    let r = shared().matches(&loader("linux"), &different.join(" AND "));
    assert!(
        matches!(r, Err(TargetingError::Evaluation(ref m)) if m.contains("too many plugin calls")),
        "{r:?}"
    );
}

#[test]
fn called_functions_spend_the_callers_fuel() {
    // Each call of a spinning function burns what fuel the batch has left; the batch then
    // fails as a whole, the expressions are retried one by one, each fails on its own, and
    // the good candidate behind them is still found.
    let spin = function_plugin("burn", "(loop $l (br $l)) (i64.const 0)", "");
    shared().load_plugin("burn", &spin).unwrap();
    let targets: Vec<String> = (0..30).map(|i| format!("burn('{i}')")).collect();
    let mut candidates: Vec<(u64, &str)> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (100 - i as u64, t.as_str()))
        .collect();
    candidates.push((1, "env->>'os' = 'linux'"));
    assert_eq!(shared().select(&loader("linux"), &candidates), Some(1));
    let sources = candidates.iter().map(|c| c.1).collect::<Vec<_>>();
    // The wall-clock deadline (limits.rs) is the backstop for what fuel does not count; on a
    // loaded machine a thread descheduled mid-spin can reach it before 10 M instructions. Such
    // a run measured the scheduler, not fuel: it is repeated (a few times at most).
    let deadline = |r: &Result<bool, TargetingError>| matches!(r, Err(TargetingError::Evaluation(m)) if m.contains("wall-clock deadline"));
    let mut results = shared().evaluate(&loader("linux"), &sources);
    for _ in 0..4 {
        if !results.iter().any(deadline) {
            break;
        }
        results = shared().evaluate(&loader("linux"), &sources);
    }
    assert_eq!(results.len(), 31);
    for r in &results[..30] {
        assert!(
            matches!(r, Err(TargetingError::Evaluation(m)) if m.contains("fuel")),
            "{r:?}"
        );
    }
    assert_eq!(results[30], Ok(true));
}

#[test]
fn a_plugin_stuck_in_host_calls_hits_the_deadline() {
    // Fuel counts wasm instructions, not time spent in the host: this plugin spins on
    // mig.call with a 1 MiB request (each call copies it, then is refused), so it would
    // burn seconds before running out of fuel. The epoch deadline stops it.
    let d = r#"{"name":"h","functions":["stuck"]}"#;
    let wasm = wat::parse_str(format!(
        r#"(module
            (import "mig" "call" (func $call (param i32 i32) (result i64)))
            (memory (export "memory") 20)
            (data (i32.const 0) "{}")
            (func (export "mig_abi_version") (result i32) (i32.const 1))
            (func (export "mig_alloc") (param i32) (result i32) (i32.const 0))
            (func (export "mig_describe") (result i64) (i64.const {}))
            (func (export "mig_invoke") (param i32 i32) (result i64)
                (loop $l (drop (call $call (i32.const 1024) (i32.const {}))) (br $l))
                (i64.const 0)))"#,
        wat_string(d),
        d.len(),
        OUTPUT_CAP
    ))
    .unwrap();
    hostile_call_fails("stuck", &wasm, "exceeded its wall-clock deadline");
}
