//! Tokens of the targeting language, following PostgreSQL's lexer (`scan.l`) for the parts
//! MIG targets use: identifiers fold to lower case, `'…'` strings double `''`, operators are
//! the longest run of operator characters (trimmed of a trailing `+`/`-` as PostgreSQL does),
//! `--` and `/* */` are comments. Tokens borrow from the source: lexing allocates only for
//! the token list and for strings with a doubled quote.

use std::borrow::Cow;

use crate::error::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok<'a> {
    /// Unquoted identifier or keyword, as written (compare with [`Tok::is_word`]).
    Ident(&'a str),
    /// `"Quoted"` identifier, case kept.
    QuotedIdent(Cow<'a, str>),
    /// `'string'` literal, quotes removed.
    Str(Cow<'a, str>),
    /// Numeric literal as written.
    Num(&'a str),
    /// Operator (`=`, `<>`, `->>`, …); `!=` is reported as `<>`.
    Op(&'a str),
    LParen,
    RParen,
    Comma,
    Dot,
    Eof,
}

impl Tok<'_> {
    /// True for the unquoted identifier or keyword `word` (given in lower case).
    pub fn is_word(&self, word: &str) -> bool {
        matches!(self, Tok::Ident(w) if w.eq_ignore_ascii_case(word))
    }

    /// How the token is named in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{}'", s.to_ascii_lowercase()),
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

/// PostgreSQL folds unquoted identifiers to lower case (ASCII only under UTF-8).
pub fn fold(word: &str) -> Cow<'_, str> {
    if word.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(word.to_ascii_lowercase())
    } else {
        Cow::Borrowed(word)
    }
}

/// A token and the 1-based character position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token<'a> {
    pub tok: Tok<'a>,
    pub pos: usize,
}

const OP_CHARS: &[u8] = b"~!@#^&|`?+-*/%<>=";
/// An operator containing one of these may end in `+` or `-` (PostgreSQL's rule).
const OP_SPECIAL: &[u8] = b"~!@#^&|`?";

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// Non-ASCII bytes belong to identifiers, as in PostgreSQL.
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_byte(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// A cursor over the bytes of the source that also counts characters for positions.
struct Cursor<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    /// 1-based character position of byte `i`.
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    /// Advances `n` bytes (never inside a character: callers step over ASCII or whole runs).
    fn advance(&mut self, n: usize) {
        let end = (self.i + n).min(self.b.len());
        self.pos += self.b[self.i..end]
            .iter()
            .filter(|&&c| c & 0xC0 != 0x80)
            .count();
        self.i = end;
    }
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub fn lex(src: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let mut c = Cursor {
        src,
        b: src.as_bytes(),
        i: 0,
        pos: 1,
    };
    let mut out = Vec::with_capacity(src.len() / 3 + 2);
    while let Some(b) = c.at(0) {
        let pos = c.pos;
        let next = c.at(1);
        let tok = if is_space(b) {
            c.advance(1);
            continue;
        } else if b == b'-' && next == Some(b'-') {
            let len = c.b[c.i..]
                .iter()
                .position(|&x| x == b'\n' || x == b'\r')
                .unwrap_or(c.b.len() - c.i);
            c.advance(len);
            continue;
        } else if b == b'/' && next == Some(b'*') {
            skip_block_comment(&mut c)?;
            continue;
        } else if b == b'\'' {
            Tok::Str(quoted(&mut c, b'\'', "unterminated quoted string")?)
        } else if b == b'"' {
            let s = quoted(&mut c, b'"', "unterminated quoted identifier")?;
            if s.is_empty() {
                return Err(ParseError::new(pos, "zero-length delimited identifier"));
            }
            Tok::QuotedIdent(s)
        } else if b.is_ascii_digit() || (b == b'.' && next.is_some_and(|n| n.is_ascii_digit())) {
            Tok::Num(number(&mut c)?)
        } else if is_ident_start(b) {
            let len = c.b[c.i..]
                .iter()
                .position(|&x| !is_ident_byte(x))
                .unwrap_or(c.b.len() - c.i);
            let word = &src[c.i..c.i + len];
            c.advance(len);
            Tok::Ident(word)
        } else if OP_CHARS.contains(&b) {
            Tok::Op(operator(&mut c))
        } else {
            let tok = match b {
                b'(' => Tok::LParen,
                b')' => Tok::RParen,
                b',' => Tok::Comma,
                b'.' => Tok::Dot,
                _ => {
                    let ch = src[c.i..].chars().next().unwrap_or('?');
                    return Err(ParseError::new(pos, format!("unexpected character {ch:?}")));
                }
            };
            c.advance(1);
            tok
        };
        out.push(Token { tok, pos });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: c.pos,
    });
    Ok(out)
}

fn skip_block_comment(c: &mut Cursor<'_>) -> Result<(), ParseError> {
    // PostgreSQL's block comments nest.
    let start = c.pos;
    let mut depth = 0usize;
    while let Some(b) = c.at(0) {
        match (b, c.at(1)) {
            (b'/', Some(b'*')) => {
                depth += 1;
                c.advance(2);
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                c.advance(2);
                if depth == 0 {
                    return Ok(());
                }
            }
            _ => c.advance(1),
        }
    }
    Err(ParseError::new(start, "unterminated /* comment"))
}

/// A `'…'` or `"…"` token; a doubled quote stands for one.
fn quoted<'a>(c: &mut Cursor<'a>, q: u8, unterminated: &str) -> Result<Cow<'a, str>, ParseError> {
    let start = c.pos;
    c.advance(1);
    let mut owned: Option<String> = None;
    let mut from = c.i;
    loop {
        let Some(len) = c.b[c.i..].iter().position(|&x| x == q) else {
            return Err(ParseError::new(start, unterminated));
        };
        c.advance(len);
        if c.at(1) == Some(q) {
            let s = owned.get_or_insert_with(String::new);
            s.push_str(&c.src[from..=c.i]);
            c.advance(2);
            from = c.i;
            continue;
        }
        let tail = &c.src[from..c.i];
        c.advance(1);
        return Ok(match owned {
            Some(mut s) => {
                s.push_str(tail);
                Cow::Owned(s)
            }
            None => Cow::Borrowed(tail),
        });
    }
}

fn number<'a>(c: &mut Cursor<'a>) -> Result<&'a str, ParseError> {
    let (start, pos) = (c.i, c.pos);
    let digits = |c: &mut Cursor<'_>| {
        while c.at(0).is_some_and(|b| b.is_ascii_digit()) {
            c.advance(1);
        }
    };
    digits(c);
    if c.at(0) == Some(b'.') {
        c.advance(1);
        digits(c);
    }
    if matches!(c.at(0), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(c.at(1), Some(b'+' | b'-')));
        if c.at(1 + sign).is_some_and(|b| b.is_ascii_digit()) {
            c.advance(1 + sign);
            digits(c);
        }
    }
    if c.at(0).is_some_and(is_ident_start) {
        return Err(ParseError::new(pos, "trailing junk after numeric literal"));
    }
    Ok(&c.src[start..c.i])
}

fn operator<'a>(c: &mut Cursor<'a>) -> &'a str {
    let start = c.i;
    let mut end = start;
    while end < c.b.len() && OP_CHARS.contains(&c.b[end]) {
        // A comment start ends the operator.
        if end > start
            && ((c.b[end] == b'-' && c.b.get(end + 1) == Some(&b'-'))
                || (c.b[end] == b'/' && c.b.get(end + 1) == Some(&b'*')))
        {
            break;
        }
        end += 1;
    }
    let run = &c.b[start..end];
    let mut len = run.len();
    if len > 1 && !run.iter().any(|x| OP_SPECIAL.contains(x)) {
        while len > 1 && (run[len - 1] == b'+' || run[len - 1] == b'-') {
            len -= 1;
        }
    }
    c.advance(len);
    match &c.src[start..start + len] {
        "!=" => "<>",
        op => op,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn mig_target_lexes_like_postgresql() {
        assert_eq!(
            toks("env#>>'{os}'='linux'"),
            vec![
                Tok::Ident("env"),
                Tok::Op("#>>"),
                Tok::Str("{os}".into()),
                Tok::Op("="),
                Tok::Str("linux".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn operators_follow_postgresql_trimming() {
        assert_eq!(
            toks("a=-1")[1..4],
            [Tok::Op("="), Tok::Op("-"), Tok::Num("1")]
        );
        assert_eq!(toks("a->-1")[1..3], [Tok::Op("->"), Tok::Op("-")]);
        assert_eq!(toks("a!='x'")[1], Tok::Op("<>"));
        assert_eq!(
            toks("a=--c\n'x'"),
            vec![
                Tok::Ident("a"),
                Tok::Op("="),
                Tok::Str("x".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn strings_identifiers_comments_and_positions() {
        assert_eq!(
            toks("'it''s' \"Env\" NAME /* a /* nested */ c */")[..3],
            [
                Tok::Str("it's".into()),
                Tok::QuotedIdent("Env".into()),
                Tok::Ident("NAME")
            ]
        );
        assert!(toks("NAME")[0].is_word("name"));
        assert_eq!(lex("'open").unwrap_err().position, 1);
        assert_eq!(lex("a = /* x").unwrap_err().position, 5);
        assert!(lex("12abc").unwrap_err().message.contains("trailing junk"));
        assert_eq!(lex("a ; b").unwrap_err().position, 3);
        // Positions count characters, not bytes.
        let t = lex("'Zürich' = x").unwrap();
        assert_eq!((t[0].pos, t[1].pos, t[2].pos), (1, 10, 12));
    }
}
