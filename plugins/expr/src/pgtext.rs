//! PostgreSQL's text input rules where the language needs them: `text[]` literals for
//! `#>`/`#>>` paths (`array_in`), boolean literals (`boolin`) and array subscripts inside
//! json paths (`strtoint`).

/// Parses a one-dimensional `text[]` literal such as `{os}` or `{aws,"instance id"}`;
/// `None` elements are unquoted `NULL`s. The error is PostgreSQL's reason.
pub fn text_array(src: &str) -> Result<Vec<Option<String>>, String> {
    let malformed = |why: &str| format!("malformed array literal: \"{src}\" ({why})");
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if chars.get(i) == Some(&'[') {
        return Err(malformed(
            "dimension decorations are not supported in paths",
        ));
    }
    if chars.get(i) != Some(&'{') {
        return Err(malformed("array value must start with \"{\""));
    }
    i += 1;
    let mut out = Vec::new();
    skip_ws(&mut i);
    if chars.get(i) == Some(&'}') {
        i += 1;
    } else {
        loop {
            skip_ws(&mut i);
            let (elem, quoted_or_escaped) = match chars.get(i) {
                None => return Err(malformed("unexpected end of input")),
                Some('{') => return Err(malformed("a path must be a one-dimensional array")),
                Some('"') => {
                    i += 1;
                    let mut s = String::new();
                    loop {
                        match chars.get(i) {
                            None => return Err(malformed("unexpected end of input")),
                            Some('\\') => {
                                let Some(c) = chars.get(i + 1) else {
                                    return Err(malformed("unexpected end of input"));
                                };
                                s.push(*c);
                                i += 2;
                            }
                            Some('"') => {
                                i += 1;
                                break;
                            }
                            Some(c) => {
                                s.push(*c);
                                i += 1;
                            }
                        }
                    }
                    skip_ws(&mut i);
                    (s, true)
                }
                Some(_) => {
                    let mut s = String::new();
                    // Whitespace written through a backslash is kept when trimming.
                    let mut keep = 0;
                    let mut escaped = false;
                    loop {
                        match chars.get(i) {
                            None => return Err(malformed("unexpected end of input")),
                            Some(',') | Some('}') => break,
                            Some('"') | Some('{') => return Err(malformed("unexpected character")),
                            Some('\\') => {
                                let Some(c) = chars.get(i + 1) else {
                                    return Err(malformed("unexpected end of input"));
                                };
                                s.push(*c);
                                keep = s.len();
                                escaped = true;
                                i += 2;
                            }
                            Some(c) => {
                                s.push(*c);
                                if !c.is_whitespace() {
                                    keep = s.len();
                                }
                                i += 1;
                            }
                        }
                    }
                    s.truncate(keep);
                    if s.is_empty() && !escaped {
                        return Err(malformed("empty element"));
                    }
                    (s, escaped)
                }
            };
            if !quoted_or_escaped && elem.eq_ignore_ascii_case("null") {
                out.push(None);
            } else {
                out.push(Some(elem));
            }
            match chars.get(i) {
                Some(',') => i += 1,
                Some('}') => {
                    i += 1;
                    break;
                }
                _ => return Err(malformed("unexpected character")),
            }
        }
    }
    skip_ws(&mut i);
    if i != chars.len() {
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
