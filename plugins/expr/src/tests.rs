//! The language against PostgreSQL: `testdata/postgresql.json` holds what a real
//! PostgreSQL 15 answered for every expression of `testdata/expressions.txt` (the target
//! strings of the MIG reference docs and every operator) against every loader of
//! `testdata/loaders.json` (`testdata/pg-generate.py` regenerates it).

use mig_plugin_sdk::{serde_json, Input, Loader, Reply, Value};

use crate::{check, compact, compile, evaluate, handle};

/// Expressions PostgreSQL accepts that this language refuses when they are written (it is
/// stricter, never different), each with the reason (`testdata/stricter.json`).
pub fn stricter() -> Vec<String> {
    let v: Vec<Value> = serde_json::from_str(include_str!("../testdata/stricter.json")).unwrap();
    v.iter()
        .map(|c| c["expr"].as_str().unwrap().to_string())
        .collect()
}

pub fn loaders() -> Vec<(String, Loader)> {
    let v: serde_json::Map<String, Value> =
        serde_json::from_str(include_str!("../testdata/loaders.json")).unwrap();
    v.into_iter()
        .map(|(k, l)| (k, serde_json::from_value(l).unwrap()))
        .collect()
}

fn no_functions(name: &str, _: &[Value]) -> mig_plugin_sdk::CallResult {
    Err(format!("unknown function {name}"))
}

fn eval(src: &str, loader: &Loader) -> Result<Option<bool>, String> {
    evaluate(src, loader, &mut no_functions)
}

fn as_pg(r: Option<bool>) -> &'static str {
    match r {
        Some(true) => "true",
        Some(false) => "false",
        None => "null",
    }
}

#[test]
fn every_expression_evaluates_as_postgresql_did() {
    let table: Value = serde_json::from_str(include_str!("../testdata/postgresql.json")).unwrap();
    let loaders = loaders();
    let cases = table["cases"].as_array().unwrap();
    assert!(cases.len() > 150);
    for case in cases {
        let src = case["expr"].as_str().unwrap();
        let pg = case["pg"].as_object().unwrap();
        let pg_refused = pg.values().any(|v| v == "error");
        if pg_refused || stricter().iter().any(|s| s == src) {
            assert!(
                check(src).is_err(),
                "{src:?} must be refused (PostgreSQL: {:?})",
                case.get("error")
            );
            continue;
        }
        let (_, form) = compile(src).unwrap_or_else(|e| panic!("{src:?} refused: {e}"));
        let form = form.unwrap_or_else(|| panic!("{src:?} has no compiled form"));
        // The form reads back to the same tree: written again, it is the same text.
        let tree = compact::decode(&form).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(
            compact::encode(&tree).as_deref(),
            Some(form.as_str()),
            "{src:?}"
        );
        for (key, loader) in &loaders {
            let ours =
                eval(src, loader).unwrap_or_else(|e| panic!("{src:?} failed for {key}: {e}"));
            assert_eq!(as_pg(ours), pg[key], "{src:?} for loader {key}");
            assert_eq!(eval(&form, loader), Ok(ours), "{src:?} compiled, for {key}");
        }
    }
}

#[test]
fn stricter_list_is_still_accepted_by_postgresql() {
    // Keeps stricter.json honest: each entry is in the table and PostgreSQL did accept it.
    let table: Value = serde_json::from_str(include_str!("../testdata/postgresql.json")).unwrap();
    for src in stricter() {
        let case = table["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["expr"] == src.as_str())
            .unwrap();
        assert!(
            case["pg"]
                .as_object()
                .unwrap()
                .values()
                .all(|v| v != "error"),
            "{src}"
        );
    }
}

#[test]
fn or_never_matches_through_another_loader() {
    // MIG spliced `id=$1 AND A OR B`: B alone matched every loader once any row had it.
    let table: Value = serde_json::from_str(include_str!("../testdata/postgresql.json")).unwrap();
    let src = "env#>>'{os}'='darwin' OR tags#>>'{operator}'='myorg'";
    let case = table["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["expr"] == src)
        .unwrap();
    assert_eq!(case["mig"]["windows"], "row", "the table shows MIG's bug");
    for (key, loader) in loaders() {
        let ours = eval(src, &loader).unwrap();
        let own_facts = loader.env["os"] == "darwin" || loader.tags["operator"] == "myorg";
        assert_eq!(ours == Some(true), own_facts, "{key}");
    }
}

#[test]
fn check_lists_called_functions_once() {
    assert_eq!(
        check("rollout('a', 10) AND (semver(tags->>'v', '>=1') OR rollout('b', 5))").unwrap(),
        vec!["rollout", "semver"]
    );
    assert_eq!(check("env->>'os' = 'linux'").unwrap(), Vec::<String>::new());
}

#[test]
fn type_errors_point_at_the_operator() {
    let e = check("env->>'os' = 'linux' AND env->'os' = 'linux'").unwrap_err();
    assert_eq!(e.position, 36);
    assert!(
        e.message
            .contains("operator does not exist: json = unknown"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("->>"),
        "the message suggests the fix: {}",
        e.message
    );
    let e = check("env#>>'{os}'").unwrap_err();
    assert!(
        e.message.contains("must be type boolean, not type text"),
        "{}",
        e.message
    );
}

#[test]
fn function_calls_get_json_arguments_and_three_valued_results() {
    let all = loaders();
    let loader = &all.iter().find(|(k, _)| k == "linux").unwrap().1;
    let seen = std::cell::RefCell::new(Vec::new());
    let mut f = |name: &str, args: &[Value]| -> mig_plugin_sdk::CallResult {
        seen.borrow_mut().push((name.to_string(), args.to_vec()));
        match name {
            "yes" => Ok(Some(true)),
            "maybe" => Ok(None),
            _ => Err("boom".into()),
        }
    };
    assert_eq!(
        evaluate(
            "yes('w', 10, 1.5, NULL, env->'aws'->'amiid', env->>'os', true)",
            loader,
            &mut f
        ),
        Ok(Some(true))
    );
    assert_eq!(
        seen.borrow()[0].1,
        serde_json::json!(["w", 10, 1.5, null, "ami-1", "linux", true])
            .as_array()
            .unwrap()
            .clone()
    );
    assert_eq!(evaluate("NOT maybe()", loader, &mut f), Ok(None));
    assert_eq!(
        evaluate("fails() OR true", loader, &mut f),
        Err("fails(): boom".into())
    );
    // A deciding operand stops evaluation: no call is made.
    let calls = seen.borrow().len();
    assert_eq!(evaluate("true OR fails()", loader, &mut f), Ok(Some(true)));
    assert_eq!(
        evaluate("false AND fails()", loader, &mut f),
        Ok(Some(false))
    );
    assert_eq!(seen.borrow().len(), calls);
}

#[test]
fn eval_op_reports_each_expression_and_stops_at_first_match_when_asked() {
    let input = |first: bool| {
        Input::parse(
            serde_json::json!({
                "abi": 1, "op": "eval", "first_match": first,
                "loader": serde_json::from_str::<Value>(include_str!("../testdata/loaders.json")).unwrap()["linux"],
                "exprs": ["env->>'os'='darwin'", "env->>'x'='y'", "env->'os'='x'", "env->>'os'='linux'", "true"],
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    };
    let Reply::Ok(Value::Array(all)) = handle(input(false), &mut no_functions) else {
        panic!()
    };
    assert_eq!(all.len(), 5);
    assert_eq!(
        (&all[0], &all[1], &all[3], &all[4]),
        (
            &Value::Bool(false),
            &Value::Null,
            &Value::Bool(true),
            &Value::Bool(true)
        )
    );
    assert!(all[2]["error"]
        .as_str()
        .unwrap()
        .contains("operator does not exist"));
    let Reply::Ok(Value::Array(first)) = handle(input(true), &mut no_functions) else {
        panic!()
    };
    assert_eq!(first.len(), 4);
}

#[test]
fn eval_op_gates_stop_at_the_first_gate_that_is_not_true() {
    let linux = serde_json::from_str::<Value>(include_str!("../testdata/loaders.json")).unwrap()
        ["linux"]
        .clone();
    let run = |gates: usize, exprs: &[&str]| {
        let input = Input::parse(
            serde_json::json!({
                "abi": 1, "op": "eval", "first_match": true, "gates": gates,
                "loader": linux, "exprs": exprs,
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let Reply::Ok(Value::Array(out)) = handle(input, &mut no_functions) else {
            panic!()
        };
        out
    };
    let t = Value::Bool(true);
    let f = Value::Bool(false);
    // A true gate: selection goes on to the first match after it.
    assert_eq!(
        run(1, &["true", "false", "true", "true"]),
        [t.clone(), f.clone(), t.clone()]
    );
    // A false, unknown or failing gate: nothing after it is evaluated.
    assert_eq!(run(1, &["false", "true"]), [f.clone()]);
    assert_eq!(run(1, &["env->>'x' = 'y'", "true"]), [Value::Null]);
    assert_eq!(run(1, &["env->'os' = 'x'", "true"]).len(), 1);
    // Two gates, the second false.
    assert_eq!(run(2, &["true", "false", "true"]), [t.clone(), f.clone()]);
    // No gate: the first true ends it, as after the gates above.
    assert_eq!(run(0, &["true", "true"]), [t]);
}

#[test]
fn check_op_answers_position_and_message() {
    let input = Input::parse(br#"{"abi":1,"op":"check","expr":"env#>>'{os}' = = 'x'"}"#).unwrap();
    let Reply::Error { message, position } = handle(input, &mut no_functions) else {
        panic!()
    };
    assert_eq!(position, Some(16));
    assert!(
        message.contains("expected an expression, found '='"),
        "{message}"
    );
}

#[test]
fn a_damaged_compiled_form_is_an_error_never_a_panic_or_another_answer() {
    let loader = &loaders()[0].1;
    let (_, form) = compile(
        "env#>>'{os}'='linux' AND (tags->>'x' IN ('a', 'b') OR name ILIKE 'w%') AND NOT f(1.5, env->0) IS TRUE",
    )
    .unwrap();
    let form = form.unwrap();
    let whole = eval(&form, loader);
    // Every truncation, and every byte replaced by each tag and digit, decodes to an error
    // or to a tree that is itself a well-formed form: nothing panics or reads out of bounds.
    for cut in 0..form.len() {
        assert!(compact::decode(&form[..cut]).is_err(), "cut at {cut}");
    }
    for at in 1..form.len() {
        for b in "cstTFNgp=~I?!&|f0123456789:;[x".bytes() {
            let mut bytes = form.clone().into_bytes();
            bytes[at] = b;
            if let Ok(s) = String::from_utf8(bytes) {
                if let Ok(tree) = compact::decode(&s) {
                    let again = compact::encode(&tree).unwrap();
                    assert!(compact::decode(&again).is_ok());
                }
            }
        }
    }
    assert!(compact::decode("x").is_err(), "no marker");
    assert!(
        compact::decode(&format!("{form}T")).is_err(),
        "trailing bytes"
    );
    // A count or length past the end is refused before anything is allocated for it.
    assert!(compact::decode("\u{1}&999999999;").is_err());
    assert!(compact::decode("\u{1}s999999999:x").is_err());
    // Nesting is bounded both ways: too deep to compile means the source is sent instead.
    let deep = format!("\u{1}{}T", "!".repeat(300));
    let err = compact::decode(&deep).unwrap_err();
    assert!(err.contains("deeper"), "{err}");
    let src = format!("{}true", "NOT ".repeat(60));
    assert!(compile(&src).unwrap().1.is_some());
    let src = format!("env{}", "->'a'".repeat(300));
    let src = format!("({src}) IS NULL");
    assert_eq!(compile(&src).unwrap().1, None);
    assert_eq!(whole, eval(&form, loader));
}
