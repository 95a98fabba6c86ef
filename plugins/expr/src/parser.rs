//! Recursive-descent parser with PostgreSQL's precedence (lowest first): `OR`, `AND`,
//! `NOT`, `IS …`, comparison (`=`, `<>`, `!=`; non-associative), `[NOT] LIKE|ILIKE|IN`
//! (non-associative), the json operators (`->`, `->>`, `#>`, `#>>`; left-associative),
//! unary minus, then literals, columns, function calls and parentheses. So
//! `env#>>'{os}'='linux'` is `(env #>> '{os}') = 'linux'`, and `A OR B AND C` is
//! `A OR (B AND C)`.

use crate::ast::{Column, IsTest, Key, Kind, Node};
use crate::error::ParseError;
use crate::lexer::{lex, Tok, Token};
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

/// Parses one expression (no type check; see [`crate::types::check`]).
pub fn parse(src: &str) -> Result<Node, ParseError> {
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

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn peek2(&self) -> &Tok {
        &self.toks[(self.i + 1).min(self.toks.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(w) if w == kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.bump();
        }
        hit
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(&self.peek().tok, Tok::Op(o) if o == op)
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        let t = self.peek();
        let mut msg = format!(
            "syntax error: expected {expected}, found {}",
            t.tok.describe()
        );
        if let Tok::Ident(w) = &t.tok {
            if UNSUPPORTED.contains(&w.as_str()) {
                msg = format!(
                    "{} is not supported by the targeting language",
                    w.to_uppercase()
                );
            }
        }
        if let Tok::Op(o) = &t.tok {
            if !matches!(o.as_str(), "=" | "<>" | "->" | "->>" | "#>" | "#>>") {
                msg = format!(
                    "operator {o} is not supported (the language has =, <>, !=, ->, ->>, #>, #>>, LIKE, ILIKE, IN, IS)"
                );
            }
        }
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

    fn or(&mut self) -> Result<Node, ParseError> {
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

    fn and(&mut self) -> Result<Node, ParseError> {
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

    fn not(&mut self) -> Result<Node, ParseError> {
        if self.is_kw("not") {
            let pos = self.bump().pos;
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

    fn is(&mut self) -> Result<Node, ParseError> {
        let mut node = self.cmp()?;
        while self.is_kw("is") {
            let pos = self.bump().pos;
            let negated = self.eat_kw("not");
            let test = match &self.peek().tok {
                Tok::Ident(w) if w == "null" => IsTest::Null,
                Tok::Ident(w) if w == "true" => IsTest::True,
                Tok::Ident(w) if w == "false" => IsTest::False,
                Tok::Ident(w) if w == "unknown" => IsTest::Unknown,
                _ => return Err(self.unexpected("NULL, TRUE, FALSE or UNKNOWN after IS")),
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

    fn cmp(&mut self) -> Result<Node, ParseError> {
        let left = self.like()?;
        let equal = match &self.peek().tok {
            Tok::Op(o) if o == "=" => true,
            Tok::Op(o) if o == "<>" => false,
            _ => return Ok(left),
        };
        let pos = self.bump().pos;
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

    fn like(&mut self) -> Result<Node, ParseError> {
        let left = self.json()?;
        let negated = self.is_kw("not")
            && matches!(self.peek2(), Tok::Ident(w) if w == "like" || w == "ilike" || w == "in");
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
            let open = self.bump().pos;
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

    fn json(&mut self) -> Result<Node, ParseError> {
        let mut node = self.unary()?;
        loop {
            let op = match &self.peek().tok {
                Tok::Op(o) if matches!(o.as_str(), "->" | "->>" | "#>" | "#>>") => o.clone(),
                _ => return Ok(node),
            };
            let pos = self.bump().pos;
            let as_text = op.ends_with(">>");
            node = if op.starts_with('-') {
                let key = self.key(&op)?;
                Node {
                    pos,
                    kind: Kind::Get {
                        base: Box::new(node),
                        key,
                        as_text,
                    },
                }
            } else {
                let path = self.path(&op)?;
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
    fn key(&mut self, op: &str) -> Result<Key, ParseError> {
        let t = self.peek().clone();
        let expected = format!("a string, an integer or NULL after {op}");
        let negative = self.is_op("-");
        if negative {
            self.bump();
        }
        let key = match &self.peek().tok {
            Tok::Str(s) if !negative => Key::Field(s.clone()),
            Tok::Ident(w) if w == "null" && !negative => Key::Null,
            Tok::Num(n) => {
                let v: i64 = n
                    .parse()
                    .ok()
                    .filter(|v: &i64| i32::try_from(*v).is_ok())
                    .ok_or_else(|| ParseError::new(t.pos, format!("operator does not exist: json {op} numeric ({n} is not an integer array index)")))?;
                Key::Index(if negative { -v } else { v })
            }
            _ => return Err(self.unexpected(&expected)),
        };
        self.bump();
        Ok(key)
    }

    /// The right side of `#>`/`#>>`: a `text[]` literal such as `'{aws,instanceid}'`, or NULL.
    fn path(&mut self, op: &str) -> Result<Option<Vec<Option<String>>>, ParseError> {
        let t = self.peek().clone();
        let path = match &t.tok {
            Tok::Str(s) => Some(pgtext::text_array(s).map_err(|m| ParseError::new(t.pos, m))?),
            Tok::Ident(w) if w == "null" => None,
            _ => return Err(self.unexpected(&format!("a path such as '{{os}}' after {op}"))),
        };
        self.bump();
        Ok(path)
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if self.is_op("-") {
            let pos = self.bump().pos;
            return match self.peek().tok.clone() {
                Tok::Num(n) => {
                    self.bump();
                    Ok(Node {
                        pos,
                        kind: Kind::Num(-number(&n, pos)?),
                    })
                }
                _ => Err(self.unexpected("a number after unary '-'")),
            };
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let t = self.peek().clone();
        let pos = t.pos;
        let kind = match t.tok {
            Tok::Str(s) => {
                self.bump();
                Kind::Str(s)
            }
            Tok::Num(n) => {
                self.bump();
                Kind::Num(number(&n, pos)?)
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
            Tok::Ident(w) if w == "not" => return self.not(),
            Tok::Ident(w) if w == "null" => {
                self.bump();
                Kind::Null
            }
            Tok::Ident(w) if w == "true" || w == "false" => {
                self.bump();
                Kind::Bool(w == "true")
            }
            Tok::Ident(w)
                if RESERVED.contains(&w.as_str()) || UNSUPPORTED.contains(&w.as_str()) =>
            {
                return Err(self.unexpected("an expression"));
            }
            Tok::Ident(w) | Tok::QuotedIdent(w) => {
                self.bump();
                if self.peek().tok == Tok::LParen {
                    return self.call(w, pos);
                }
                self.column(w, pos)?
            }
            _ => return Err(self.unexpected("an expression")),
        };
        Ok(Node { pos, kind })
    }

    fn column(&mut self, word: String, pos: usize) -> Result<Kind, ParseError> {
        // `loaders.env`: MIG spliced targets into `SELECT … FROM loaders WHERE …`.
        let word = if word == "loaders" && self.peek().tok == Tok::Dot {
            self.bump();
            match self.bump().tok {
                Tok::Ident(w) | Tok::QuotedIdent(w) => w,
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

    fn call(&mut self, name: String, pos: usize) -> Result<Node, ParseError> {
        let open = self.bump().pos;
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

    fn kind(src: &str) -> Kind {
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
        assert_eq!((name.as_str(), args.len()), ("rollout", 2));
        assert!(matches!(kind("loaders.loadername = 'x'"), Kind::Cmp { .. }));
        assert!(matches!(kind("\"env\"->>'os' = 'x'"), Kind::Cmp { .. }));
    }
}
