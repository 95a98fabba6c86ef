//! PostgreSQL's text input rules where the language needs them: `text[]` literals for
//! `#>`/`#>>` paths (`array_in`), boolean literals (`boolin`) and array subscripts inside
//! json paths (`strtoint`).

/// PostgreSQL's `scanner_isspace`: ASCII whitespace only.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Parses a one-dimensional `text[]` literal such as `{os}` or `{aws,"instance id"}`;
/// `None` elements are unquoted `NULL`s. The error is PostgreSQL's reason.
pub fn text_array(src: &str) -> Result<Vec<Option<String>>, String> {
    let malformed = |why: &str| format!("malformed array literal: \"{src}\" ({why})");
    let mut it = src.chars().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while it.next_if(|c| is_space(*c)).is_some() {}
    };
    skip_ws(&mut it);
    match it.next() {
        Some('{') => {}
        Some('[') => {
            return Err(malformed(
                "dimension decorations are not supported in paths",
            ))
        }
        _ => return Err(malformed("array value must start with \"{\"")),
    }
    let mut out = Vec::new();
    skip_ws(&mut it);
    if it.next_if_eq(&'}').is_none() {
        loop {
            skip_ws(&mut it);
            let mut s = String::new();
            let quoted_or_escaped = match it.peek() {
                None => return Err(malformed("unexpected end of input")),
                Some('{') => return Err(malformed("a path must be a one-dimensional array")),
                Some('"') => {
                    it.next();
                    loop {
                        match it.next() {
                            None => return Err(malformed("unexpected end of input")),
                            Some('\\') => s.push(
                                it.next()
                                    .ok_or_else(|| malformed("unexpected end of input"))?,
                            ),
                            Some('"') => break,
                            Some(c) => s.push(c),
                        }
                    }
                    skip_ws(&mut it);
                    true
                }
                Some(_) => {
                    // Whitespace written through a backslash is kept when trimming.
                    let mut keep = 0;
                    let mut escaped = false;
                    loop {
                        match it.peek() {
                            None => return Err(malformed("unexpected end of input")),
                            Some(',' | '}') => break,
                            Some('"' | '{') => return Err(malformed("unexpected character")),
                            Some('\\') => {
                                it.next();
                                s.push(
                                    it.next()
                                        .ok_or_else(|| malformed("unexpected end of input"))?,
                                );
                                keep = s.len();
                                escaped = true;
                            }
                            Some(&c) => {
                                it.next();
                                s.push(c);
                                if !is_space(c) {
                                    keep = s.len();
                                }
                            }
                        }
                    }
                    s.truncate(keep);
                    if s.is_empty() && !escaped {
                        return Err(malformed("empty element"));
                    }
                    escaped
                }
            };
            out.push(if !quoted_or_escaped && s.eq_ignore_ascii_case("null") {
                None
            } else {
                Some(s)
            });
            match it.next() {
                Some(',') => {}
                Some('}') => break,
                _ => return Err(malformed("unexpected character")),
            }
        }
    }
    skip_ws(&mut it);
    if it.next().is_some() {
        return Err(malformed("junk after closing right brace"));
    }
    Ok(out)
}

/// PostgreSQL's `boolin`: `t`, `true`, `yes`, `on`, `1` and their negatives, any case,
/// unique prefixes allowed, surrounding whitespace ignored.
pub fn boolean(src: &str) -> Option<bool> {
    let s = src.trim().to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| s.len() >= min && word.starts_with(s.as_str());
    match s.chars().next()? {
        't' if prefix_of("true", 1) => Some(true),
        'f' if prefix_of("false", 1) => Some(false),
        'y' if prefix_of("yes", 1) => Some(true),
        'n' if prefix_of("no", 1) => Some(false),
        'o' if prefix_of("on", 2) => Some(true),
        'o' if prefix_of("off", 2) => Some(false),
        '1' if s.len() == 1 => Some(true),
        '0' if s.len() == 1 => Some(false),
        _ => None,
    }
}

/// An array subscript inside a json path: C `strtol` rules (leading whitespace, a sign,
/// digits, nothing after), within `i32`; anything else never matches an array element.
pub fn path_index(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = t.parse().ok()?;
    (i64::from(i32::MIN)..=i64::from(i32::MAX))
        .contains(&v)
        .then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(s: &str) -> Vec<Option<String>> {
        text_array(s).unwrap()
    }

    #[test]
    fn array_literals() {
        assert_eq!(arr("{os}"), vec![Some("os".into())]);
        assert_eq!(
            arr(" { aws , instanceid } "),
            vec![Some("aws".into()), Some("instanceid".into())]
        );
        assert_eq!(
            arr(r#"{"a,b", c d ,NULL,"NULL"}"#),
            vec![
                Some("a,b".into()),
                Some("c d".into()),
                None,
                Some("NULL".into())
            ]
        );
        assert_eq!(
            arr(r"{a\,b,\ x\ }"),
            vec![Some("a,b".into()), Some(" x ".into())]
        );
        assert_eq!(arr("{}"), Vec::<Option<String>>::new());
        for bad in [
            "os",
            "{os",
            "{a,}",
            "{,a}",
            "{{a}}",
            "{a}x",
            "[1:1]={a}",
            r#"{a"b}"#,
        ] {
            assert!(
                text_array(bad)
                    .unwrap_err()
                    .starts_with("malformed array literal"),
                "{bad}"
            );
        }
    }

    #[test]
    fn booleans() {
        for t in ["t", "TRUE", " yes ", "on", "1", "tr"] {
            assert_eq!(boolean(t), Some(true), "{t}");
        }
        for f in ["f", "False", "no", "off", "0"] {
            assert_eq!(boolean(f), Some(false), "{f}");
        }
        for x in ["", "o", "2", "truex", "yess"] {
            assert_eq!(boolean(x), None, "{x}");
        }
    }

    #[test]
    fn indexes() {
        assert_eq!(path_index("0"), Some(0));
        assert_eq!(path_index(" -1"), Some(-1));
        assert_eq!(path_index("+2"), Some(2));
        assert_eq!(path_index("1 "), None);
        assert_eq!(path_index("a"), None);
        assert_eq!(path_index("99999999999"), None);
    }
}
