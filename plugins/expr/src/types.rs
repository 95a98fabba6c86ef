//! Static types, as PostgreSQL resolves them before running a query. What PostgreSQL would
//! refuse with "operator does not exist" (for example `env->'os' = 'linux'`: json has no `=`)
//! is refused here when the expression is written, with the position of the operator.
//! String literals start as `unknown` and are coerced where PostgreSQL coerces them
//! (`'1' = 1` compares numbers; `'yes' AND …` is a boolean); the AST is rewritten so the
//! evaluator never meets a mixed comparison.

use crate::ast::{IsTest, Kind, Node};
use crate::error::ParseError;
use crate::pgtext;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Json,
    Text,
    Num,
    Bool,
    /// A string literal whose type the context decides.
    Unknown,
    /// The `NULL` literal.
    Null,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Json => "json",
            Ty::Text => "text",
            Ty::Num => "numeric",
            Ty::Bool => "boolean",
            Ty::Unknown | Ty::Null => "unknown",
        }
    }
}

/// Type-checks a whole targeting expression (it must be boolean) and returns the functions
/// it calls, sorted and without repeats.
pub fn check_expression(node: &mut Node<'_>) -> Result<Vec<String>, ParseError> {
    let mut functions = Vec::new();
    expect_bool(node, "a targeting expression", &mut functions)?;
    functions.sort();
    functions.dedup();
    Ok(functions)
}

fn expect_bool(
    node: &mut Node<'_>,
    what: &str,
    functions: &mut Vec<String>,
) -> Result<(), ParseError> {
    match check(node, functions)? {
        Ty::Bool | Ty::Null => Ok(()),
        Ty::Unknown => coerce_bool(node),
        ty => Err(ParseError::new(
            node.pos,
            format!("{what} must be type boolean, not type {}", ty.name()),
        )),
    }
}

fn coerce_bool(node: &mut Node<'_>) -> Result<(), ParseError> {
    if let Kind::Str(s) = &node.kind {
        match pgtext::boolean(s) {
            Some(b) => node.kind = Kind::Bool(b),
            None => {
                return Err(ParseError::new(
                    node.pos,
                    format!("invalid input syntax for type boolean: \"{s}\""),
                ))
            }
        }
    }
    Ok(())
}

fn coerce_num(node: &mut Node<'_>) -> Result<(), ParseError> {
    if let Kind::Str(s) = &node.kind {
        match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => node.kind = Kind::Num(v),
            _ => {
                return Err(ParseError::new(
                    node.pos,
                    format!("invalid input syntax for type numeric: \"{s}\""),
                ))
            }
        }
    }
    Ok(())
}

/// Resolves `left = right` (also used by `IN`): both sides end up the same type or NULL.
fn resolve_equality(
    pos: usize,
    op: &str,
    left: &mut Node,
    lt: Ty,
    right: &mut Node,
    rt: Ty,
) -> Result<(), ParseError> {
    use Ty::*;
    let refuse = || {
        let hint = if lt == Json || rt == Json {
            " (json has no equality: extract text with ->> or #>>)"
        } else {
            ""
        };
        Err(ParseError::new(
            pos,
            format!(
                "operator does not exist: {} {op} {}{hint}",
                lt.name(),
                rt.name()
            ),
        ))
    };
    match (lt, rt) {
        (Json, _) | (_, Json) => refuse(),
        (Text | Unknown | Null, Text | Unknown | Null) => Ok(()),
        (Num, Num | Null) | (Null, Num) | (Bool, Bool | Null) | (Null, Bool) => Ok(()),
        (Num, Unknown) => coerce_num(right),
        (Unknown, Num) => coerce_num(left),
        (Bool, Unknown) => coerce_bool(right),
        (Unknown, Bool) => coerce_bool(left),
        _ => refuse(),
    }
}

fn check(node: &mut Node<'_>, functions: &mut Vec<String>) -> Result<Ty, ParseError> {
    let pos = node.pos;
    Ok(match &mut node.kind {
        Kind::Column(c) => match c {
            crate::ast::Column::Name | crate::ast::Column::LoaderName => Ty::Text,
            _ => Ty::Json,
        },
        Kind::Str(_) => Ty::Unknown,
        Kind::Num(_) => Ty::Num,
        Kind::Bool(_) => Ty::Bool,
        Kind::Null => Ty::Null,
        Kind::Get { base, as_text, .. } | Kind::Path { base, as_text, .. } => {
            let bt = check(base, functions)?;
            if bt != Ty::Json {
                return Err(ParseError::new(
                    pos,
                    format!(
                        "operator does not exist: {} on the left of a json operator (use env, tags, attributes or the result of -> / #>)",
                        bt.name()
                    ),
                ));
            }
            if *as_text {
                Ty::Text
            } else {
                Ty::Json
            }
        }
        Kind::Cmp { equal, left, right } => {
            let lt = check(left, functions)?;
            let rt = check(right, functions)?;
            resolve_equality(pos, if *equal { "=" } else { "<>" }, left, lt, right, rt)?;
            Ty::Bool
        }
        Kind::Like {
            insensitive,
            left,
            pattern,
            ..
        } => {
            let lt = check(left, functions)?;
            let rt = check(pattern, functions)?;
            let texty = |t: Ty| matches!(t, Ty::Text | Ty::Unknown | Ty::Null);
            let op = if *insensitive { "ILIKE" } else { "LIKE" };
            if !texty(lt) || !texty(rt) {
                return Err(ParseError::new(
                    pos,
                    format!("operator does not exist: {} {op} {}", lt.name(), rt.name()),
                ));
            }
            if let Kind::Str(p) = &pattern.kind {
                crate::like::compile(p).map_err(|m| ParseError::new(pattern.pos, m))?;
            }
            Ty::Bool
        }
        Kind::In { left, list, .. } => {
            let mut lt = check(left, functions)?;
            for item in list.iter_mut() {
                let it = check(item, functions)?;
                resolve_equality(item.pos, "=", left, lt, item, it)?;
                // A literal on the left may just have been coerced by this element.
                lt = match left.kind {
                    Kind::Num(_) => Ty::Num,
                    Kind::Bool(_) => Ty::Bool,
                    _ => lt,
                };
            }
            Ty::Bool
        }
        Kind::Is { test, operand, .. } => {
            match test {
                IsTest::Null => {
                    check(operand, functions)?;
                }
                _ => expect_bool(operand, "the argument of IS TRUE/FALSE/UNKNOWN", functions)?,
            }
            Ty::Bool
        }
        Kind::Not(inner) => {
            expect_bool(inner, "the argument of NOT", functions)?;
            Ty::Bool
        }
        Kind::And(items) | Kind::Or(items) => {
            for item in items.iter_mut() {
                expect_bool(item, "an argument of AND/OR", functions)?;
            }
            Ty::Bool
        }
        Kind::Call { name, args } => {
            functions.push(name.to_string());
            for a in args.iter_mut() {
                check(a, functions)?;
            }
            Ty::Bool
        }
    })
}
