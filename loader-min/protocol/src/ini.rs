//! The one reader of MIG's INI style (gcfg), for mig-api's `api.cfg`, mig-console's `~/.migrc`
//! and mig-loader's run-time `mig-loader.cfg`: `[section]`, `key = value`, `;` or `#` comments
//! (whole-line, or after whitespace outside quotes), optional double quotes around a value (with
//! `\"`, `\\`, `\n`, `\t`), case-insensitive section and key names, indentation ignored.
//!
//! [`Ini::parse`] checks only the syntax and keeps every entry in order with its line number, so a
//! caller can report `file:line`, allow a repeatable key (the loader's `tags`) or, through
//! [`Ini::check`], refuse unknown sections, unknown keys and keys set twice.

use std::fmt;

/// A syntax or schema error, with the 1-based line it is on (0 when it concerns the whole text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for IniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for IniError {}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniEntry {
    pub line: usize,
    /// Lower-cased.
    pub section: String,
    /// Lower-cased.
    pub key: String,
    /// Unquoted; may be empty.
    pub value: String,
}

/// Sections a file may hold, each with the keys it may hold.
pub type Schema<'a> = &'a [(&'a str, &'a [&'a str])];

/// A parsed file: section headers and entries in file order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ini {
    sections: Vec<(usize, String)>,
    entries: Vec<IniEntry>,
}

fn err(line: usize, message: String) -> IniError {
    IniError { line, message }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Ini {
    /// Parses `text`; the error names the line that is wrong.
    pub fn parse(text: &str) -> Result<Self, IniError> {
        let mut ini = Ini::default();
        let mut current: Option<String> = None;
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = strip_comment(rest)
                    .trim_end()
                    .strip_suffix(']')
                    .ok_or_else(|| err(line_no, format!("section header {line:?} lacks its ']'")))?
                    .trim()
                    .to_ascii_lowercase();
                if !is_name(&name) {
                    return Err(err(line_no, format!("invalid section name {name:?}")));
                }
                ini.sections.push((line_no, name.clone()));
                current = Some(name);
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| {
                err(
                    line_no,
                    format!("expected `key = value`, found {:?}", strip_comment(line)),
                )
            })?;
            let key = key.trim().to_ascii_lowercase();
            if !is_name(&key) {
                return Err(err(line_no, format!("invalid key name {key:?}")));
            }
            let section = current
                .clone()
                .ok_or_else(|| err(line_no, format!("key {key:?} outside of any [section]")))?;
            let value = parse_value(value.trim()).map_err(|m| err(line_no, m))?;
            ini.entries.push(IniEntry {
                line: line_no,
                section,
                key,
                value,
            });
        }
        Ok(ini)
    }

    /// Refuses a section or key that `schema` does not list, and a key set twice.
    pub fn check(&self, schema: Schema<'_>) -> Result<(), IniError> {
        let known = |s: &str| schema.iter().find(|(n, _)| *n == s).map(|(_, k)| *k);
        for (line, name) in &self.sections {
            if known(name).is_none() {
                return Err(err(
                    *line,
                    format!(
                        "unknown section [{name}] (known: {})",
                        schema
                            .iter()
                            .map(|(s, _)| format!("[{s}]"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                ));
            }
        }
        for (i, e) in self.entries.iter().enumerate() {
            let keys = known(&e.section).unwrap_or(&[]);
            if !keys.contains(&e.key.as_str()) {
                return Err(err(
                    e.line,
                    format!(
                        "unknown key {:?} in [{}] (known: {})",
                        e.key,
                        e.section,
                        keys.join(", ")
                    ),
                ));
            }
            if self.entries[..i]
                .iter()
                .any(|p| p.section == e.section && p.key == e.key)
            {
                return Err(err(
                    e.line,
                    format!("[{}] {} is set twice", e.section, e.key),
                ));
            }
        }
        Ok(())
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[IniEntry] {
        &self.entries
    }

    /// The last value of `key` in `section`, if set and not empty.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.section == section && e.key == key)
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every section header with its line, in file order.
    pub fn sections_at(&self) -> impl Iterator<Item = (usize, &str)> {
        self.sections.iter().map(|(l, s)| (*l, s.as_str()))
    }

    /// The section names present, each once, in file order.
    pub fn sections(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (_, s) in &self.sections {
            if !out.contains(&s.as_str()) {
                out.push(s);
            }
        }
        out
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
        assert_eq!(ini.sections(), ["api", "gpg", "signing"]);
        assert_eq!(ini.entries()[3].line, 9);
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
            ("url = x\n", "line 1: key \"url\" outside of any [section]"),
            ("[api\n", "line 1: section header"),
            ("[api]\njunk\n", "line 2: expected `key = value`"),
            ("[api]\nurl = \"open\n", "line 2: quoted value without"),
            ("[api]\nurl = \"a\" b\n", "line 2: text \"b\""),
            ("[a b]\n", "invalid section name"),
        ] {
            let e = Ini::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_schema_refuses_strangers_and_repeats() {
        let schema: Schema = &[("api", &["url", "cacert"]), ("gpg", &["keyid"])];
        assert!(Ini::parse("[api]\nurl = x\n[gpg]\nkeyid = y\n")
            .unwrap()
            .check(schema)
            .is_ok());
        for (text, needle) in [
            (
                "[bogus]\n",
                "line 1: unknown section [bogus] (known: [api] [gpg])",
            ),
            (
                "[api]\ncolour = red\n",
                "line 2: unknown key \"colour\" in [api]",
            ),
            (
                "[api]\nurl = a\nURL = b\n",
                "line 3: [api] url is set twice",
            ),
        ] {
            let e = Ini::parse(text).unwrap().check(schema).unwrap_err();
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
    }
}
