//! A small reader for MIG's INI style (gcfg): `[section]`, `key = value`, `;` or `#` comments
//! (whole-line or after the value), optional double quotes around a value, case-insensitive
//! section and key names, indentation ignored.

use std::collections::BTreeMap;

/// Sections → keys → values, all names lower-cased.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ini {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Ini {
    /// Parses `text`; the error names the line that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ini = Ini::default();
        let mut current: Option<String> = None;
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = strip_comment(rest).trim_end();
                let name = name
                    .strip_suffix(']')
                    .ok_or_else(|| format!("line {line_no}: section header without ']'"))?;
                let name = name.trim().to_ascii_lowercase();
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(format!("line {line_no}: invalid section name {name:?}"));
                }
                ini.sections.entry(name.clone()).or_default();
                current = Some(name);
                continue;
            }
            let section = current
                .clone()
                .ok_or_else(|| format!("line {line_no}: a key before any [section]"))?;
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {line_no}: expected key = value"))?;
            let key = key.trim().to_ascii_lowercase();
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!("line {line_no}: invalid key name {key:?}"));
            }
            let value = parse_value(value.trim()).map_err(|m| format!("line {line_no}: {m}"))?;
            ini.sections.entry(section).or_default().insert(key, value);
        }
        Ok(ini)
    }

    /// The value of `key` in `section`, if set and not empty.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The keys of `section` (to refuse misspelled ones).
    pub fn keys(&self, section: &str) -> impl Iterator<Item = &str> {
        self.sections
            .get(section)
            .into_iter()
            .flat_map(|s| s.keys().map(String::as_str))
    }

    /// The section names present.
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }
}

/// Cuts a trailing `; comment` or `# comment` (one preceded by whitespace or at the start).
fn strip_comment(s: &str) -> &str {
    let b = s.as_bytes();
    for i in 0..b.len() {
        if (b[i] == b';' || b[i] == b'#') && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &s[..i];
        }
    }
    s
}

/// A value: either `"quoted"` (with `\"` and `\\` escapes, then an optional comment) or bare
/// text up to a comment.
fn parse_value(v: &str) -> Result<String, String> {
    let Some(rest) = v.strip_prefix('"') else {
        return Ok(strip_comment(v).trim().to_string());
    };
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                _ => return Err("invalid escape in quoted value".into()),
            },
            '"' => {
                let after = strip_comment(&rest[i + 1..]).trim();
                if !after.is_empty() {
                    return Err(format!("text {after:?} after the closing quote"));
                }
                return Ok(out);
            }
            c => out.push(c),
        }
    }
    Err("quoted value without its closing quote".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mig_style_with_comments_quotes_and_indentation() {
        let ini = Ini::parse(
            "; console configuration\n\
             [api]\n    url = \"https://api.example.net:443/api/v2/\"\n\
             \tcacert = /etc/mig/ca.pem   ; optional\n\
             [GPG]\n    KeyID = 37050AE08CB33351018A809EFD575A3E1CEB348D # admin1\n\
             # comment\n[signing]\nkeyfile =\n",
        )
        .unwrap();
        assert_eq!(
            ini.get("api", "url"),
            Some("https://api.example.net:443/api/v2/")
        );
        assert_eq!(ini.get("api", "cacert"), Some("/etc/mig/ca.pem"));
        assert_eq!(
            ini.get("gpg", "keyid"),
            Some("37050AE08CB33351018A809EFD575A3E1CEB348D")
        );
        assert_eq!(ini.get("signing", "keyfile"), None, "empty means unset");
        assert_eq!(
            ini.sections().collect::<Vec<_>>(),
            ["api", "gpg", "signing"]
        );
    }

    #[test]
    fn a_hash_inside_a_value_is_kept_when_not_after_a_space() {
        let ini = Ini::parse("[api]\nurl = http://h/a#b ; c\nq = \"x ; y\" ; z\n").unwrap();
        assert_eq!(ini.get("api", "url"), Some("http://h/a#b"));
        assert_eq!(ini.get("api", "q"), Some("x ; y"));
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        for (text, needle) in [
            ("url = x\n", "line 1: a key before any [section]"),
            ("[api\n", "line 1: section header"),
            ("[api]\njunk\n", "line 2: expected key = value"),
            ("[api]\nurl = \"open\n", "line 2: quoted value without"),
            ("[api]\nurl = \"a\" b\n", "line 2: text \"b\""),
            ("[a b]\n", "invalid section name"),
        ] {
            let e = Ini::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
