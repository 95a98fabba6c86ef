//! `LIKE` / `ILIKE` as PostgreSQL runs them: `%` any run of characters, `_` exactly one
//! character, `\` takes the next character literally, and a pattern may not end with `\`.
//! Matching is linear backtracking on the last `%` (never exponential).

#[derive(Debug, Clone, Copy, PartialEq)]
enum P {
    Lit(char),
    One,
    Many,
}

/// Splits a pattern; the error is PostgreSQL's.
pub fn compile(pattern: &str) -> Result<Vec<char>, String> {
    tokens(pattern).map(|_| pattern.chars().collect())
}

fn tokens(pattern: &str) -> Result<Vec<P>, String> {
    let mut out = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        out.push(match c {
            '%' => P::Many,
            '_' => P::One,
            '\\' => P::Lit(
                it.next()
                    .ok_or("LIKE pattern must not end with escape character")?,
            ),
            c => P::Lit(c),
        });
    }
    Ok(out)
}

/// Lower case for ILIKE, one character for one (as PostgreSQL's per-character `towlower`).
fn fold(c: char) -> char {
    let mut l = c.to_lowercase();
    match (l.next(), l.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

/// True when `text` matches `pattern`; `insensitive` for ILIKE.
pub fn matches(text: &str, pattern: &str, insensitive: bool) -> Result<bool, String> {
    let mut pat = tokens(pattern)?;
    let mut text: Vec<char> = text.chars().collect();
    if insensitive {
        text.iter_mut().for_each(|c| *c = fold(*c));
        pat.iter_mut().for_each(|p| {
            if let P::Lit(c) = p {
                *c = fold(*c)
            }
        });
    }
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(P::One) => {
                t += 1;
                p += 1;
            }
            Some(P::Lit(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(P::Many) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return Ok(false),
            },
        }
    }
    Ok(pat[p..].iter().all(|x| *x == P::Many))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn like_semantics() {
        let cases = [
            ("linux", "linux", false, true),
            ("linux", "lin%", false, true),
            ("linux", "%nu%", false, true),
            ("linux", "l_nux", false, true),
            ("linux", "l_ux", false, false),
            ("Linux", "linux", false, false),
            ("Linux", "linux", true, true),
            ("LINUX", "%n_X", true, true),
            ("a_b", r"a\_b", false, true),
            ("axb", r"a\_b", false, false),
            ("100%", r"100\%", false, true),
            ("", "%", false, true),
            ("", "_", false, false),
            ("abc", "", false, false),
            ("aXbXc", "a%b%c", false, true),
            ("mississippi", "%iss%ppi", false, true),
            ("été", "_t_", false, true),
            ("ÉTÉ", "été", true, true),
        ];
        for (text, pat, ci, want) in cases {
            assert_eq!(matches(text, pat, ci), Ok(want), "{text} {pat} {ci}");
        }
        assert!(matches("a", "a\\", false).is_err());
    }

    #[test]
    fn many_percent_signs_stay_linear() {
        let text = "a".repeat(5000);
        let pat = format!("{}b", "%a".repeat(200));
        assert_eq!(matches(&text, &pat, false), Ok(false));
    }
}
