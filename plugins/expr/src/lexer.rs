//! Tokens of the targeting language, following PostgreSQL's lexer (`scan.l`) for the parts
//! MIG targets use: identifiers fold to lower case, `'…'` strings double `''`, operators are
//! the longest run of operator characters (trimmed of a trailing `+`/`-` as PostgreSQL does),
//! `--` and `/* */` are comments.

use crate::error::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Unquoted identifier or keyword, folded to lower case.
    Ident(String),
    /// `"Quoted"` identifier, case kept.
    QuotedIdent(String),
    /// `'string'` literal, quotes removed.
    Str(String),
    /// Numeric literal as written.
    Num(String),
    /// Operator (`=`, `<>`, `->>`, …); `!=` is reported as `<>`.
    Op(String),
    LParen,
    RParen,
    Comma,
    Dot,
    Eof,
}

impl Tok {
    /// How the token is named in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::QuotedIdent(s) => format!("identifier \"{s}\""),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Num(s) => format!("number {s}"),
            Tok::Op(s) => format!("'{s}'"),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Dot => "'.'".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

/// A token and the 1-based character position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

const OP_CHARS: &str = "~!@#^&|`?+-*/%<>=";
/// An operator containing one of these may end in `+` or `-` (PostgreSQL's rule).
const OP_SPECIAL: &str = "~!@#^&|`?";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '$'
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        let next = chars.get(i + 1).copied();
        if is_space(c) {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = skip_block_comment(&chars, i)?;
        } else if c == '\'' {
            let (s, end) = string_literal(&chars, i)?;
            out.push(Token {
                tok: Tok::Str(s),
                pos,
            });
            i = end;
        } else if c == '"' {
            let (s, end) = quoted_ident(&chars, i)?;
            out.push(Token {
                tok: Tok::QuotedIdent(s),
                pos,
            });
            i = end;
        } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let (s, end) = number(&chars, i)?;
            out.push(Token {
                tok: Tok::Num(s),
                pos,
            });
            i = end;
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            // PostgreSQL folds unquoted identifiers to lower case (ASCII only under UTF-8).
            let word: String = chars[start..i]
                .iter()
                .map(|c| c.to_ascii_lowercase())
                .collect();
            out.push(Token {
                tok: Tok::Ident(word),
                pos,
            });
        } else if OP_CHARS.contains(c) {
            let (op, end) = operator(&chars, i);
            out.push(Token {
                tok: Tok::Op(op),
                pos,
            });
            i = end;
        } else {
            let tok = match c {
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                ',' => Tok::Comma,
                '.' => Tok::Dot,
                _ => return Err(ParseError::new(pos, format!("unexpected character {c:?}"))),
            };
            out.push(Token { tok, pos });
            i += 1;
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: chars.len() + 1,
    });
    Ok(out)
}

fn skip_block_comment(chars: &[char], start: usize) -> Result<usize, ParseError> {
    // PostgreSQL's block comments nest.
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            ('/', Some('*')) => {
                depth += 1;
                i += 2;
            }
            ('*', Some('/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err(ParseError::new(start + 1, "unterminated /* comment"))
}

fn string_literal(chars: &[char], start: usize) -> Result<(String, usize), ParseError> {
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                s.push('\'');
                i += 2;
                continue;
            }
            return Ok((s, i + 1));
        }
        s.push(chars[i]);
        i += 1;
    }
    Err(ParseError::new(start + 1, "unterminated quoted string"))
}

fn quoted_ident(chars: &[char], start: usize) -> Result<(String, usize), ParseError> {
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '"' {
            if chars.get(i + 1) == Some(&'"') {
                s.push('"');
                i += 2;
                continue;
            }
            if s.is_empty() {
                return Err(ParseError::new(
                    start + 1,
                    "zero-length delimited identifier",
                ));
            }
            return Ok((s, i + 1));
        }
        s.push(chars[i]);
        i += 1;
    }
    Err(ParseError::new(start + 1, "unterminated quoted identifier"))
}

fn number(chars: &[char], start: usize) -> Result<(String, usize), ParseError> {
    let mut i = start;
    let digits = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    digits(&mut i);
    if i < chars.len() && chars[i] == '.' {
        i += 1;
        digits(&mut i);
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            i = j;
            digits(&mut i);
        }
    }
    if i < chars.len() && is_ident_start(chars[i]) {
        return Err(ParseError::new(
            start + 1,
            "trailing junk after numeric literal",
        ));
    }
    Ok((chars[start..i].iter().collect(), i))
}

fn operator(chars: &[char], start: usize) -> (String, usize) {
    let mut end = start;
    while end < chars.len() && OP_CHARS.contains(chars[end]) {
        // A comment start ends the operator.
        if end > start
            && ((chars[end] == '-' && chars.get(end + 1) == Some(&'-'))
                || (chars[end] == '/' && chars.get(end + 1) == Some(&'*')))
        {
            break;
        }
        end += 1;
    }
    let run = &chars[start..end];
    let mut len = run.len();
    if len > 1 && !run.iter().any(|c| OP_SPECIAL.contains(*c)) {
        while len > 1 && (run[len - 1] == '+' || run[len - 1] == '-') {
            len -= 1;
        }
    }
    let op: String = run[..len].iter().collect();
    let op = if op == "!=" { "<>".to_string() } else { op };
    (op, start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn mig_target_lexes_like_postgresql() {
        assert_eq!(
            toks("env#>>'{os}'='linux'"),
            vec![
                Tok::Ident("env".into()),
                Tok::Op("#>>".into()),
                Tok::Str("{os}".into()),
                Tok::Op("=".into()),
                Tok::Str("linux".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn operators_follow_postgresql_trimming() {
        assert_eq!(
            toks("a=-1")[1..4],
            [
                Tok::Op("=".into()),
                Tok::Op("-".into()),
                Tok::Num("1".into())
            ]
        );
        assert_eq!(
            toks("a->-1")[1..3],
            [Tok::Op("->".into()), Tok::Op("-".into())]
        );
        assert_eq!(toks("a!='x'")[1], Tok::Op("<>".into()));
        assert_eq!(
            toks("a=--c\n'x'"),
            vec![
                Tok::Ident("a".into()),
                Tok::Op("=".into()),
                Tok::Str("x".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn strings_identifiers_comments() {
        assert_eq!(
            toks("'it''s' \"Env\" NAME /* a /* nested */ c */")[..3],
            [
                Tok::Str("it's".into()),
                Tok::QuotedIdent("Env".into()),
                Tok::Ident("name".into())
            ]
        );
        assert_eq!(lex("'open").unwrap_err().position, 1);
        assert_eq!(lex("a = /* x").unwrap_err().position, 5);
        assert!(lex("12abc").unwrap_err().message.contains("trailing junk"));
        assert_eq!(lex("a ; b").unwrap_err().position, 3);
    }
}
