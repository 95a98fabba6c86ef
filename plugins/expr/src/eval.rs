//! Evaluation with PostgreSQL's semantics on `json` columns: `->`/`#>` give json, `->>`/`#>>`
//! give text, a missing key or a JSON `null` read as text gives SQL NULL, comparisons with
//! NULL are unknown, and AND/OR/NOT use three-valued logic. An unknown result is "no match".

use std::borrow::Cow;

use mig_plugin_sdk::{CallResult, Loader, Value};

use crate::ast::{Column, IsTest, Key, Kind, Node};
use crate::pgtext;

/// Runs the functions of other plugins (`mig.call` in the sandbox; a table in tests).
pub trait Functions {
    fn call(&mut self, name: &str, args: &[Value]) -> CallResult;
}

impl<F: FnMut(&str, &[Value]) -> CallResult> Functions for F {
    fn call(&mut self, name: &str, args: &[Value]) -> CallResult {
        self(name, args)
    }
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
enum V<'a> {
    Null,
    Text(Cow<'a, str>),
    Json(&'a Value),
    Num(f64),
    Bool(bool),
}

/// Evaluates a type-checked expression: `Some(true)`, `Some(false)` or `None` (unknown).
pub fn eval(
    node: &Node,
    loader: &Loader,
    functions: &mut dyn Functions,
) -> Result<Option<bool>, String> {
    match value(node, loader, functions)? {
        V::Bool(b) => Ok(Some(b)),
        V::Null => Ok(None),
        other => Err(format!("internal error: expected a boolean, got {other:?}")),
    }
}

fn boolean(
    node: &Node<'_>,
    loader: &Loader,
    f: &mut dyn Functions,
) -> Result<Option<bool>, String> {
    eval(node, loader, f)
}

fn from_opt<'a>(b: Option<bool>) -> V<'a> {
    b.map_or(V::Null, V::Bool)
}

/// JSON as text, as `->>` returns it: strings unquoted, `null` is SQL NULL, containers as
/// compact JSON.
fn json_text(v: &Value) -> V<'_> {
    match v {
        Value::Null => V::Null,
        Value::String(s) => V::Text(Cow::Borrowed(s)),
        Value::Bool(b) => V::Text(Cow::Borrowed(if *b { "true" } else { "false" })),
        other => V::Text(Cow::Owned(other.to_string())),
    }
}

fn index(items: &[Value], i: i64) -> Option<&Value> {
    let i = if i < 0 { i + items.len() as i64 } else { i };
    usize::try_from(i).ok().and_then(|i| items.get(i))
}

fn get<'a>(v: &'a Value, key: &Key<'_>) -> Option<&'a Value> {
    match (v, key) {
        (Value::Object(m), Key::Field(k)) => m.get(k.as_ref()),
        (Value::Array(a), Key::Index(i)) => index(a, *i),
        _ => None,
    }
}

fn walk<'a>(mut v: &'a Value, path: &[Option<String>]) -> Option<&'a Value> {
    for step in path {
        let step = step.as_deref()?;
        v = match v {
            Value::Object(m) => m.get(step)?,
            Value::Array(a) => index(a, pgtext::path_index(step)?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn equal(l: &V, r: &V) -> Result<Option<bool>, String> {
    Ok(match (l, r) {
        (V::Null, _) | (_, V::Null) => None,
        (V::Text(a), V::Text(b)) => Some(a == b),
        (V::Num(a), V::Num(b)) => Some(a == b),
        (V::Bool(a), V::Bool(b)) => Some(a == b),
        _ => return Err(format!("internal error: cannot compare {l:?} with {r:?}")),
    })
}

fn to_json(v: &V) -> Value {
    match v {
        V::Null => Value::Null,
        V::Text(s) => Value::String(s.to_string()),
        V::Json(j) => (*j).clone(),
        V::Bool(b) => Value::Bool(*b),
        V::Num(n) if n.fract() == 0.0 && n.abs() < 9e15 => Value::from(*n as i64),
        V::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
    }
}

fn value<'a>(
    node: &'a Node<'_>,
    loader: &'a Loader,
    f: &mut dyn Functions,
) -> Result<V<'a>, String> {
    Ok(match &node.kind {
        Kind::Column(c) => match c {
            Column::Env => V::Json(&loader.env),
            Column::Tags => V::Json(&loader.tags),
            Column::Attributes => V::Json(&loader.attributes),
            Column::Name => V::Text(Cow::Borrowed(&loader.name)),
            Column::LoaderName => V::Text(Cow::Borrowed(&loader.loadername)),
        },
        Kind::Str(s) => V::Text(Cow::Borrowed(s.as_ref())),
        Kind::Num(n) => V::Num(*n),
        Kind::Bool(b) => V::Bool(*b),
        Kind::Null => V::Null,
        Kind::Get { base, key, as_text } => match value(base, loader, f)? {
            V::Json(j) => match get(j, key) {
                Some(x) if *as_text => json_text(x),
                Some(x) => V::Json(x),
                None => V::Null,
            },
            _ => V::Null,
        },
        Kind::Path {
            base,
            path,
            as_text,
        } => match (value(base, loader, f)?, path) {
            (V::Json(j), Some(path)) => match walk(j, path) {
                Some(x) if *as_text => json_text(x),
                Some(x) => V::Json(x),
                None => V::Null,
            },
            _ => V::Null,
        },
        Kind::Cmp {
            equal: eq,
            left,
            right,
        } => {
            let l = value(left, loader, f)?;
            let r = value(right, loader, f)?;
            from_opt(equal(&l, &r)?.map(|b| b == *eq))
        }
        Kind::Like {
            negated,
            insensitive,
            left,
            pattern,
        } => match (value(left, loader, f)?, value(pattern, loader, f)?) {
            (V::Text(t), V::Text(p)) => {
                V::Bool(crate::like::matches(&t, &p, *insensitive)? != *negated)
            }
            _ => V::Null,
        },
        Kind::In {
            negated,
            left,
            list,
        } => {
            let l = value(left, loader, f)?;
            let mut result = Some(false);
            for item in list {
                match equal(&l, &value(item, loader, f)?)? {
                    Some(true) => {
                        result = Some(true);
                        break;
                    }
                    None => result = None,
                    Some(false) => {}
                }
            }
            from_opt(result.map(|b| b != *negated))
        }
        Kind::Is {
            negated,
            test,
            operand,
        } => {
            let hit = match test {
                IsTest::Null => value(operand, loader, f)? == V::Null,
                IsTest::True => boolean(operand, loader, f)? == Some(true),
                IsTest::False => boolean(operand, loader, f)? == Some(false),
                IsTest::Unknown => boolean(operand, loader, f)?.is_none(),
            };
            V::Bool(hit != *negated)
        }
        Kind::Not(inner) => from_opt(boolean(inner, loader, f)?.map(|b| !b)),
        // Three-valued AND/OR; stop early on a deciding operand (PostgreSQL does not promise
        // an order, and no operand here can fail except a plugin call).
        Kind::And(items) => {
            let mut result = Some(true);
            for item in items {
                match boolean(item, loader, f)? {
                    Some(false) => return Ok(V::Bool(false)),
                    None => result = None,
                    Some(true) => {}
                }
            }
            from_opt(result)
        }
        Kind::Or(items) => {
            let mut result = Some(false);
            for item in items {
                match boolean(item, loader, f)? {
                    Some(true) => return Ok(V::Bool(true)),
                    None => result = None,
                    Some(false) => {}
                }
            }
            from_opt(result)
        }
        Kind::Call { name, args } => {
            let mut json = Vec::with_capacity(args.len());
            for a in args {
                json.push(to_json(&value(a, loader, f)?));
            }
            from_opt(f.call(name, &json).map_err(|e| format!("{name}(): {e}"))?)
        }
    })
}
