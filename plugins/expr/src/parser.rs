//! Recursive-descent parser with PostgreSQL's precedence (lowest first): `OR`, `AND`,
//! `NOT`, `IS …`, comparison (`=`, `<>`, `!=`; non-associative), `[NOT] LIKE|ILIKE|IN`
//! (non-associative), the json operators (`->`, `->>`, `#>`, `#>>`; left-associative),
//! unary minus, then literals, columns, function calls and parentheses. So
//! `env#>>'{os}'='linux'` is `(env #>> '{os}') = 'linux'`, and `A OR B AND C` is
//! `A OR (B AND C)`.

use std::borrow::Cow;

use crate::ast::{Column, IsTest, Key, Kind, Node};
use crate::error::ParseError;
use crate::lexer::{fold, lex, Tok, Token};
use crate::pgtext;

/// Nesting deeper than this is refused (it would only exhaust the guest's stack).
const MAX_DEPTH: usize = 64;

/// Keywords that cannot name a function.
const RESERVED: &[&str] = &[
    "and", "or", "not", "in", "is", "null", "true", "false", "like", "ilike", "unknown",
];

/// SQL that PostgreSQL accepts but this language does not: named in the error.
const UNSUPPORTED: &[&str] = &[
    "between", "similar", "escape", "case", "when", "select", "exists", "any", "all", "some",
    "cast", "collate", "isnull", "notnull", "array", "overlaps",
];

/// The operators the language has; any other is named as unsupported.
const OPERATORS: &[&str] = &["=", "<>", "->", "->>", "#>", "#>>", "-"];

/// Parses one expression (no type check; see [`crate::types::check_expression`]).
pub fn parse(src: &str) -> Result<Node<'_>, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    let node = p.or()?;
    if p.peek().tok != Tok::Eof {
        return Err(p.unexpected("AND, OR or the end of the expression"));
    }
    Ok(node)
}

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token<'a> {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn peek2(&self) -> &Tok<'a> {
        &self.toks[(self.i + 1).min(self.toks.len() - 1)].tok
    }

    /// Moves past the current token and returns it (the list keeps a placeholder: the
    /// parser never looks back).
    fn take(&mut self) -> Token<'a> {
        let last = self.toks.len() - 1;
        if self.i >= last {
            return self.toks[last].clone();
        }
        let pos = self.toks[self.i].pos;
        let tok = std::mem::replace(&mut self.toks[self.i].tok, Tok::Eof);
        self.i += 1;
        Token { tok, pos }
    }

    /// Moves past the current token; returns its position.
    fn bump(&mut self) -> usize {
        let pos = self.peek().pos;
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        pos
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.peek().tok.is_word(kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.bump();
        }
        hit
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(&self.peek().tok, Tok::Op(o) if *o == op)
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        let t = self.peek();
        let msg = match &t.tok {
            Tok::Ident(w) if UNSUPPORTED.contains(&fold(w).as_ref()) => {
                format!("{} is not supported by the targeting language", w.to_uppercase())
            }
            Tok::Op(o) if !OPERATORS.contains(o) => format!(
                "operator {o} is not supported (the language has =, <>, !=, ->, ->>, #>, #>>, LIKE, ILIKE, IN, IS)"
            ),
            other => format!("syntax error: expected {expected}, found {}", other.describe()),
        };
        ParseError::new(t.pos, msg)
    }

    fn deeper(&mut self, pos: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(
                pos,
                format!("expression nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node<'a>, ParseError> {
        let first = self.and()?;
        if !self.is_kw("or") {
            return Ok(first);
        }
        let pos = first.pos;
        let mut items = vec![first];
        while self.eat_kw("or") {
            items.push(self.and()?);
        }
        Ok(Node {
            pos,
            kind: Kind::Or(items),
        })
    }

    fn and(&mut self) -> Result<Node<'a>, ParseError> {
        let first = self.not()?;
        if !self.is_kw("and") {
            return Ok(first);
        }
        let pos = first.pos;
        let mut items = vec![first];
        while self.eat_kw("and") {
            items.push(self.not()?);
        }
        Ok(Node {
            pos,
            kind: Kind::And(items),
        })
    }

    fn not(&mut self) -> Result<Node<'a>, ParseError> {
        if self.is_kw("not") {
            let pos = self.bump();
            self.deeper(pos)?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Node {
                pos,
                kind: Kind::Not(Box::new(inner)),
            });
        }
        self.is()
    }

    fn is(&mut self) -> Result<Node<'a>, ParseError> {
        let mut node = self.cmp()?;
        while self.is_kw("is") {
            let pos = self.bump();
            let negated = self.eat_kw("not");
            let t = &self.peek().tok;
            let test = if t.is_word("null") {
                IsTest::Null
            } else if t.is_word("true") {
                IsTest::True
            } else if t.is_word("false") {
                IsTest::False
            } else if t.is_word("unknown") {
                IsTest::Unknown
            } else {
                return Err(self.unexpected("NULL, TRUE, FALSE or UNKNOWN after IS"));
            };
            self.bump();
            node = Node {
                pos,
                kind: Kind::Is {
                    negated,
                    test,
                    operand: Box::new(node),
                },
            };
        }
        Ok(node)
    }

    fn cmp(&mut self) -> Result<Node<'a>, ParseError> {
        let left = self.like()?;
        let equal = match &self.peek().tok {
            Tok::Op("=") => true,
            Tok::Op("<>") => false,
            _ => return Ok(left),
        };
        let pos = self.bump();
        let right = self.like()?;
        Ok(Node {
            pos,
            kind: Kind::Cmp {
                equal,
                left: Box::new(left),
                right: Box::new(right),
            },
        })
    }

    fn like(&mut self) -> Result<Node<'a>, ParseError> {
        let left = self.json()?;
        let next = self.peek2();
        let negated = self.is_kw("not")
            && (next.is_word("like") || next.is_word("ilike") || next.is_word("in"));
        if negated {
            self.bump();
        }
        let pos = self.peek().pos;
        if self.is_kw("like") || self.is_kw("ilike") {
            let insensitive = self.is_kw("ilike");
            self.bump();
            let pattern = self.json()?;
            return Ok(Node {
                pos,
                kind: Kind::Like {
                    negated,
                    insensitive,
                    left: Box::new(left),
                    pattern: Box::new(pattern),
                },
            });
        }
        if self.eat_kw("in") {
            if self.peek().tok != Tok::LParen {
                return Err(self.unexpected("'(' after IN"));
            }
            let open = self.bump();
            self.deeper(open)?;
            let mut list = vec![self.or()?];
            while self.peek().tok == Tok::Comma {
                self.bump();
                list.push(self.or()?);
            }
            if self.peek().tok != Tok::RParen {
                return Err(self.unexpected("',' or ')' in the IN list"));
            }
            self.bump();
            self.depth -= 1;
            return Ok(Node {
                pos,
                kind: Kind::In {
                    negated,
                    left: Box::new(left),
                    list,
                },
            });
        }
        Ok(left)
    }

    fn json(&mut self) -> Result<Node<'a>, ParseError> {
        let mut node = self.unary()?;
        loop {
            let op = match self.peek().tok {
                Tok::Op(o @ ("->" | "->>" | "#>" | "#>>")) => o,
                _ => return Ok(node),
            };
            let pos = self.bump();
            let as_text = op.ends_with(">>");
            node = if op.starts_with('-') {
                let key = self.key(op)?;
                Node {
                    pos,
                    kind: Kind::Get {
                        base: Box::new(node),
                        key,
                        as_text,
                    },
                }
            } else {
                let path = self.path(op)?;
                Node {
                    pos,
                    kind: Kind::Path {
                        base: Box::new(node),
                        path,
                        as_text,
                    },
                }
            };
        }
    }

    /// The right side of `->`/`->>`: a string, an integer (maybe negative) or NULL.
    fn key(&mut self, op: &str) -> Result<Key<'a>, ParseError> {
        let negative = self.is_op("-");
        if negative {
            self.bump();
        }
        let t = self.peek();
        let pos = t.pos;
        match &t.tok {
            Tok::Str(_) if !negative => {}
            t if t.is_word("null") && !negative => {
                self.bump();
                return Ok(Key::Null);
            }
            Tok::Num(n) => {
                let v = n.parse::<i64>().ok().filter(|v| i32::try_from(*v).is_ok()).ok_or_else(|| {
                    ParseError::new(
                        pos,
                        format!("operator does not exist: json {op} numeric ({n} is not an integer array index)"),
                    )
                })?;
                self.bump();
                return Ok(Key::Index(if negative { -v } else { v }));
            }
            _ => return Err(self.unexpected(&format!("a string, an integer or NULL after {op}"))),
        }
        match self.take().tok {
            Tok::Str(s) => Ok(Key::Field(s)),
            _ => unreachable!("checked above"),
        }
    }

    /// The right side of `#>`/`#>>`: a `text[]` literal such as `'{aws,instanceid}'`, or NULL.
    fn path(&mut self, op: &str) -> Result<Option<Vec<Option<String>>>, ParseError> {
        let t = self.peek();
        let path = match &t.tok {
            Tok::Str(s) => Some(pgtext::text_array(s).map_err(|m| ParseError::new(t.pos, m))?),
            t if t.is_word("null") => None,
            _ => return Err(self.unexpected(&format!("a path such as '{{os}}' after {op}"))),
        };
        self.bump();
        Ok(path)
    }

    fn unary(&mut self) -> Result<Node<'a>, ParseError> {
        if self.is_op("-") {
            let pos = self.bump();
            return match self.peek().tok {
                Tok::Num(n) => {
                    self.bump();
                    Ok(Node {
                        pos,
                        kind: Kind::Num(-number(n, pos)?),
                    })
                }
                _ => Err(self.unexpected("a number after unary '-'")),
            };
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node<'a>, ParseError> {
        let t = self.peek();
        let pos = t.pos;
        let kind = match &t.tok {
            Tok::Str(_) => match self.take().tok {
                Tok::Str(s) => Kind::Str(s),
                _ => unreachable!("checked above"),
            },
            Tok::Num(n) => {
                let v = number(n, pos)?;
                self.bump();
                Kind::Num(v)
            }
            Tok::LParen => {
                self.bump();
                self.deeper(pos)?;
                let inner = self.or()?;
                if self.peek().tok != Tok::RParen {
                    return Err(self.unexpected("')'"));
                }
                self.bump();
                self.depth -= 1;
                return Ok(inner);
            }
            // `x = NOT y` is valid SQL: NOT binds looser than `=` but may start an operand.
            w if w.is_word("not") => return self.not(),
            w if w.is_word("null") => {
                self.bump();
                Kind::Null
            }
            w if w.is_word("true") || w.is_word("false") => {
                let b = w.is_word("true");
                self.bump();
                Kind::Bool(b)
            }
            Tok::Ident(w)
                if RESERVED.contains(&fold(w).as_ref())
                    || UNSUPPORTED.contains(&fold(w).as_ref()) =>
            {
                return Err(self.unexpected("an expression"));
            }
            Tok::Ident(_) | Tok::QuotedIdent(_) => {
                let word = match self.take().tok {
                    Tok::Ident(w) => fold(w),
                    Tok::QuotedIdent(w) => w,
                    _ => unreachable!("checked above"),
                };
                if self.peek().tok == Tok::LParen {
                    return self.call(word, pos);
                }
                self.column(word, pos)?
            }
            _ => return Err(self.unexpected("an expression")),
        };
        Ok(Node { pos, kind })
    }

    fn column(&mut self, word: Cow<'a, str>, pos: usize) -> Result<Kind<'a>, ParseError> {
        // `loaders.env`: MIG spliced targets into `SELECT … FROM loaders WHERE …`.
        let word = if word == "loaders" && self.peek().tok == Tok::Dot {
            self.bump();
            match self.take().tok {
                Tok::Ident(w) => fold(w),
                Tok::QuotedIdent(w) => w,
                other => {
                    return Err(ParseError::new(
                        pos,
                        format!(
                            "syntax error: expected a column after 'loaders.', found {}",
                            other.describe()
                        ),
                    ))
                }
            }
        } else {
            word
        };
        match Column::from_name(&word) {
            Some(c) => Ok(Kind::Column(c)),
            None => Err(ParseError::new(
                pos,
                format!("column \"{word}\" does not exist (targeting reads env, tags, name, loadername and attributes)"),
            )),
        }
    }

    fn call(&mut self, name: Cow<'a, str>, pos: usize) -> Result<Node<'a>, ParseError> {
        let open = self.bump();
        self.deeper(open)?;
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            args.push(self.or()?);
            while self.peek().tok == Tok::Comma {
                self.bump();
                args.push(self.or()?);
            }
        }
        if self.peek().tok != Tok::RParen {
            return Err(self.unexpected(&format!("',' or ')' in the arguments of {name}()")));
        }
        self.bump();
        self.depth -= 1;
        Ok(Node {
            pos,
            kind: Kind::Call { name, args },
        })
    }
}

fn number(text: &str, pos: usize) -> Result<f64, ParseError> {
    text.parse::<f64>()
        .map_err(|_| ParseError::new(pos, format!("invalid number {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(src: &str) -> Kind<'_> {
        parse(src).unwrap().kind
    }

    #[test]
    fn mig_example_is_a_comparison_of_a_path() {
        let Kind::Cmp {
            equal: true,
            left,
            right,
        } = kind("env#>>'{os}'='linux'")
        else {
            panic!()
        };
        assert!(
            matches!(left.kind, Kind::Path { as_text: true, path: Some(ref p), .. } if p == &vec![Some("os".to_string())])
        );
        assert_eq!(right.kind, Kind::Str("linux".into()));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let Kind::Or(items) = kind("name='a' OR name='b' AND name='c'") else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        assert!(matches!(items[1].kind, Kind::And(ref v) if v.len() == 2));
    }

    #[test]
    fn not_binds_looser_than_comparison_and_is() {
        assert!(
            matches!(kind("NOT name = 'a'"), Kind::Not(ref n) if matches!(n.kind, Kind::Cmp { .. }))
        );
        assert!(
            matches!(kind("NOT name IS NULL"), Kind::Not(ref n) if matches!(n.kind, Kind::Is { .. }))
        );
        assert!(matches!(
            kind("name NOT LIKE 'a%'"),
            Kind::Like { negated: true, .. }
        ));
        assert!(
            matches!(kind("name NOT IN ('a','b')"), Kind::In { negated: true, ref list, .. } if list.len() == 2)
        );
    }

    #[test]
    fn json_operators_chain_left_to_right() {
        let Kind::Get {
            base,
            key: Key::Field(k),
            as_text: true,
        } = kind("env->'aws'->>'region'")
        else {
            panic!()
        };
        assert_eq!(k, "region");
        assert!(
            matches!(base.kind, Kind::Get { key: Key::Field(ref a), as_text: false, .. } if a == "aws")
        );
        assert!(matches!(
            kind("env->'addresses'->-1 IS NULL"),
            Kind::Is { .. }
        ));
    }

    #[test]
    fn comparisons_do_not_associate() {
        let e = parse("name = 'a' = 'b'").unwrap_err();
        assert_eq!(e.position, 12);
        assert!(
            e.message.contains("expected AND, OR or the end"),
            "{}",
            e.message
        );
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        let e = parse("env#>>'{os}'=").unwrap_err();
        assert_eq!(
            (e.position, e.message.as_str()),
            (
                14,
                "syntax error: expected an expression, found end of input"
            )
        );
        let e = parse("env#>>'os'='linux'").unwrap_err();
        assert_eq!(e.position, 7);
        assert!(e.message.starts_with("malformed array literal"));
        let e = parse("env->>os = 'x'").unwrap_err();
        assert!(
            e.message.contains("a string, an integer or NULL after ->>"),
            "{}",
            e.message
        );
        let e = parse("(name = 'a'").unwrap_err();
        assert!(e.message.contains("expected ')'"), "{}", e.message);
        let e = parse("lastseen > 3").unwrap_err();
        assert!(
            e.message.contains("column \"lastseen\" does not exist"),
            "{}",
            e.message
        );
        let e = parse("name BETWEEN 'a' AND 'b'").unwrap_err();
        assert!(
            e.message.contains("BETWEEN is not supported"),
            "{}",
            e.message
        );
        let e = parse("name < 'b'").unwrap_err();
        assert!(
            e.message.contains("operator < is not supported"),
            "{}",
            e.message
        );
        assert!(parse("")
            .unwrap_err()
            .message
            .contains("expected an expression"));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let src = format!("{}true{}", "(".repeat(1000), ")".repeat(1000));
        assert!(parse(&src)
            .unwrap_err()
            .message
            .contains("nested more than"));
        let src = format!("{}true", "NOT ".repeat(1000));
        assert!(parse(&src)
            .unwrap_err()
            .message
            .contains("nested more than"));
    }

    #[test]
    fn calls_and_qualified_columns() {
        let Kind::Call { name, args } = kind("rollout('wave-1', 10)") else {
            panic!()
        };
        assert_eq!((name.as_ref(), args.len()), ("rollout", 2));
        assert!(matches!(kind("loaders.loadername = 'x'"), Kind::Cmp { .. }));
        assert!(matches!(kind("\"env\"->>'os' = 'x'"), Kind::Cmp { .. }));
    }
}
