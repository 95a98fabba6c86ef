//! The compiled form of an expression: its type-checked tree written out once, so an evaluation
//! reads it back in one pass instead of lexing, parsing and type-checking the source again.
//! The host keeps the form `check` answers (api/src/targeting/engine.rs) and sends it, after
//! [`MARKER`], in place of the source. A source can never begin with the marker (the lexer
//! refuses control characters), so the two cannot be confused.
//!
//! The form is ASCII tags and decimal numbers; strings are `<byte length>:<bytes>`. It comes
//! back from the host, so it is decoded as strictly as any input: every tag, length and count
//! is checked, nesting is bounded, and anything else is an error, never a panic.

use std::borrow::Cow;

use crate::ast::{Column, IsTest, Key, Kind, Node};

/// Starts a compiled form where an expression's source would be.
pub const MARKER: char = '\u{1}';

/// Trees deeper than this are not compiled (the host then sends the source) nor decoded.
const MAX_DEPTH: usize = 256;

/// The compiled form of a type-checked tree, marker included; `None` if it nests too deep.
pub fn encode(node: &Node<'_>) -> Option<String> {
    let mut out = String::with_capacity(64);
    out.push(MARKER);
    node_into(node, &mut out, 0)?;
    Some(out)
}

fn text_into(s: &str, out: &mut String) {
    out.push_str(&s.len().to_string());
    out.push(':');
    out.push_str(s);
}

fn count_into(n: usize, out: &mut String) {
    out.push_str(&n.to_string());
    out.push(';');
}

fn flag(b: bool) -> char {
    if b {
        '1'
    } else {
        '0'
    }
}

fn nodes_into(nodes: &[Node<'_>], out: &mut String, depth: usize) -> Option<()> {
    count_into(nodes.len(), out);
    nodes.iter().try_for_each(|n| node_into(n, out, depth))
}

fn node_into(node: &Node<'_>, out: &mut String, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let d = depth + 1;
    match &node.kind {
        Kind::Column(c) => {
            out.push('c');
            out.push(match c {
                Column::Env => 'e',
                Column::Tags => 't',
                Column::Attributes => 'a',
                Column::Name => 'n',
                Column::LoaderName => 'l',
            });
        }
        Kind::Str(s) => {
            out.push('s');
            text_into(s, out);
        }
        Kind::Num(n) => {
            // `{:?}` of an f64 reads back as the same f64.
            out.push('n');
            text_into(&format!("{n:?}"), out);
        }
        Kind::Bool(b) => out.push(if *b { 'T' } else { 'F' }),
        Kind::Null => out.push('N'),
        Kind::Get { base, key, as_text } => {
            out.push('g');
            out.push(flag(*as_text));
            match key {
                Key::Field(f) => {
                    out.push('f');
                    text_into(f, out);
                }
                Key::Index(i) => {
                    out.push('i');
                    text_into(&i.to_string(), out);
                }
                Key::Null => out.push('N'),
            }
            node_into(base, out, d)?;
        }
        Kind::Path {
            base,
            path,
            as_text,
        } => {
            out.push('p');
            out.push(flag(*as_text));
            match path {
                None => out.push('N'),
                Some(items) => {
                    out.push('[');
                    count_into(items.len(), out);
                    for item in items {
                        match item {
                            None => out.push('N'),
                            Some(s) => {
                                out.push('s');
                                text_into(s, out);
                            }
                        }
                    }
                }
            }
            node_into(base, out, d)?;
        }
        Kind::Cmp { equal, left, right } => {
            out.push('=');
            out.push(flag(*equal));
            node_into(left, out, d)?;
            node_into(right, out, d)?;
        }
        Kind::Like {
            negated,
            insensitive,
            left,
            pattern,
        } => {
            out.push('~');
            out.push(flag(*negated));
            out.push(flag(*insensitive));
            node_into(left, out, d)?;
            node_into(pattern, out, d)?;
        }
        Kind::In {
            negated,
            left,
            list,
        } => {
            out.push('I');
            out.push(flag(*negated));
            node_into(left, out, d)?;
            nodes_into(list, out, d)?;
        }
        Kind::Is {
            negated,
            test,
            operand,
        } => {
            out.push('?');
            out.push(flag(*negated));
            out.push(match test {
                IsTest::Null => 'n',
                IsTest::True => 't',
                IsTest::False => 'f',
                IsTest::Unknown => 'u',
            });
            node_into(operand, out, d)?;
        }
        Kind::Not(inner) => {
            out.push('!');
            node_into(inner, out, d)?;
        }
        Kind::And(items) => {
            out.push('&');
            nodes_into(items, out, d)?;
        }
        Kind::Or(items) => {
            out.push('|');
            nodes_into(items, out, d)?;
        }
        Kind::Call { name, args } => {
            out.push('f');
            text_into(name, out);
            nodes_into(args, out, d)?;
        }
    }
    Some(())
}

/// Reads a compiled form (marker included) back into its tree.
pub fn decode(form: &str) -> Result<Node<'_>, String> {
    let body = form
        .strip_prefix(MARKER)
        .ok_or("a compiled form must begin with its marker")?;
    let mut r = Reader { s: body, i: 0 };
    let node = r.node(0)?;
    if r.i != r.s.len() {
        return Err(format!(
            "compiled form has {} bytes after its end",
            r.s.len() - r.i
        ));
    }
    Ok(node)
}

struct Reader<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .s
            .as_bytes()
            .get(self.i)
            .ok_or("compiled form ends early")?;
        self.i += 1;
        Ok(b)
    }

    fn flag(&mut self) -> Result<bool, String> {
        match self.byte()? {
            b'0' => Ok(false),
            b'1' => Ok(true),
            b => Err(format!(
                "compiled form has {:?} where a flag belongs",
                b as char
            )),
        }
    }

    /// Decimal digits up to `end`.
    fn number(&mut self, end: u8) -> Result<usize, String> {
        let rest = &self.s.as_bytes()[self.i..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 || rest.get(digits) != Some(&end) {
            return Err("compiled form has a malformed length or count".into());
        }
        let n = self.s[self.i..self.i + digits]
            .parse()
            .map_err(|_| "compiled form has a malformed length or count".to_string())?;
        self.i += digits + 1;
        Ok(n)
    }

    fn text(&mut self) -> Result<&'a str, String> {
        let len = self.number(b':')?;
        let end = self.i.checked_add(len).ok_or("compiled form overflows")?;
        let t = self
            .s
            .get(self.i..end)
            .ok_or("compiled form has a string past its end")?;
        self.i = end;
        Ok(t)
    }

    fn count(&mut self) -> Result<usize, String> {
        let n = self.number(b';')?;
        // Every item takes at least one byte: a count larger than what is left is a lie.
        if n > self.s.len() - self.i {
            return Err("compiled form has a count past its end".into());
        }
        Ok(n)
    }

    fn nodes(&mut self, depth: usize) -> Result<Vec<Node<'a>>, String> {
        let n = self.count()?;
        (0..n).map(|_| self.node(depth)).collect()
    }

    fn boxed(&mut self, depth: usize) -> Result<Box<Node<'a>>, String> {
        self.node(depth).map(Box::new)
    }

    fn node(&mut self, depth: usize) -> Result<Node<'a>, String> {
        if depth > MAX_DEPTH {
            return Err(format!("compiled form nests deeper than {MAX_DEPTH}"));
        }
        let d = depth + 1;
        let kind = match self.byte()? {
            b'c' => Kind::Column(match self.byte()? {
                b'e' => Column::Env,
                b't' => Column::Tags,
                b'a' => Column::Attributes,
                b'n' => Column::Name,
                b'l' => Column::LoaderName,
                _ => return Err("compiled form names an unknown column".into()),
            }),
            b's' => Kind::Str(Cow::Borrowed(self.text()?)),
            b'n' => Kind::Num(
                self.text()?
                    .parse()
                    .map_err(|_| "compiled form has a malformed number".to_string())?,
            ),
            b'T' => Kind::Bool(true),
            b'F' => Kind::Bool(false),
            b'N' => Kind::Null,
            b'g' => {
                let as_text = self.flag()?;
                let key = match self.byte()? {
                    b'f' => Key::Field(Cow::Borrowed(self.text()?)),
                    b'i' => Key::Index(
                        self.text()?
                            .parse()
                            .map_err(|_| "compiled form has a malformed index".to_string())?,
                    ),
                    b'N' => Key::Null,
                    _ => return Err("compiled form has an unknown key".into()),
                };
                Kind::Get {
                    base: self.boxed(d)?,
                    key,
                    as_text,
                }
            }
            b'p' => {
                let as_text = self.flag()?;
                let path = match self.byte()? {
                    b'N' => None,
                    b'[' => {
                        let n = self.count()?;
                        let mut items = Vec::with_capacity(n);
                        for _ in 0..n {
                            items.push(match self.byte()? {
                                b'N' => None,
                                b's' => Some(self.text()?.to_string()),
                                _ => return Err("compiled form has a bad path item".into()),
                            });
                        }
                        Some(items)
                    }
                    _ => return Err("compiled form has a bad path".into()),
                };
                Kind::Path {
                    base: self.boxed(d)?,
                    path,
                    as_text,
                }
            }
            b'=' => Kind::Cmp {
                equal: self.flag()?,
                left: self.boxed(d)?,
                right: self.boxed(d)?,
            },
            b'~' => Kind::Like {
                negated: self.flag()?,
                insensitive: self.flag()?,
                left: self.boxed(d)?,
                pattern: self.boxed(d)?,
            },
            b'I' => Kind::In {
                negated: self.flag()?,
                left: self.boxed(d)?,
                list: self.nodes(d)?,
            },
            b'?' => {
                let negated = self.flag()?;
                let test = match self.byte()? {
                    b'n' => IsTest::Null,
                    b't' => IsTest::True,
                    b'f' => IsTest::False,
                    b'u' => IsTest::Unknown,
                    _ => return Err("compiled form has an unknown IS test".into()),
                };
                Kind::Is {
                    negated,
                    test,
                    operand: self.boxed(d)?,
                }
            }
            b'!' => Kind::Not(self.boxed(d)?),
            b'&' => Kind::And(self.nodes(d)?),
            b'|' => Kind::Or(self.nodes(d)?),
            b'f' => Kind::Call {
                name: Cow::Borrowed(self.text()?),
                args: self.nodes(d)?,
            },
            b => return Err(format!("compiled form has an unknown tag {:?}", b as char)),
        };
        Ok(Node { pos: 0, kind })
    }
}
