//! Splitting a command into words, and separating `--flags` from positional words.
//!
//! An interactive line is split on whitespace; double quotes group words (`"a b"`). Single
//! quotes are kept as they are, because target and expectenv expressions use them
//! (`env#>>'{os}'='linux'`). A command that takes an expression reads the raw rest of the line.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// The words of one command, with where each started in the raw line (interactive mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    words: Vec<String>,
    /// The raw line and each word's byte span in it; `None` for script arguments.
    raw: Option<(String, Vec<(usize, usize)>)>,
}

impl Words {
    /// Words from the command line of a script (the shell already split them).
    pub fn from_args(args: Vec<String>) -> Self {
        Words {
            words: args,
            raw: None,
        }
    }

    /// Splits an interactive line.
    pub fn from_line(line: &str) -> Result<Self> {
        let mut words = Vec::new();
        let mut spans = Vec::new();
        let mut chars = line.char_indices().peekable();
        loop {
            while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
            let Some(&(start, _)) = chars.peek() else {
                break;
            };
            let mut word = String::new();
            let mut quoted = false;
            let mut end = line.len();
            while let Some(&(i, c)) = chars.peek() {
                if !quoted && c.is_whitespace() {
                    end = i;
                    break;
                }
                chars.next();
                match c {
                    '"' => quoted = !quoted,
                    '\\' if quoted => match chars.next() {
                        Some((_, e @ ('"' | '\\'))) => word.push(e),
                        Some((_, other)) => {
                            word.push('\\');
                            word.push(other);
                        }
                        None => word.push('\\'),
                    },
                    c => word.push(c),
                }
            }
            if quoted {
                return Err(Error::Usage(format!(
                    "unclosed double quote in {:?}",
                    &line[start..]
                )));
            }
            words.push(word);
            spans.push((start, end));
        }
        Ok(Words {
            words,
            raw: Some((line.to_string(), spans)),
        })
    }

    /// All words.
    pub fn all(&self) -> &[String] {
        &self.words
    }

    /// Word `i`, if present.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }

    /// The number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when there are no words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The text of words `from..to` as typed (raw, quotes and spacing kept) in interactive mode,
    /// or joined by single spaces for script arguments.
    pub fn text(&self, from: usize, to: usize) -> String {
        if from >= to || from >= self.words.len() {
            return String::new();
        }
        let to = to.min(self.words.len());
        match &self.raw {
            Some((line, spans)) => line[spans[from].0..spans[to - 1].1].to_string(),
            None => self.words[from..to].join(" "),
        }
    }
}

/// Switches every command accepts.
pub const GLOBAL_SWITCHES: &[&str] = &["--json", "--yes", "-y"];

/// A command's words after flags were taken out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags {
    pub positional: Vec<String>,
    pub values: BTreeMap<&'static str, String>,
    pub switches: Vec<&'static str>,
}

impl Flags {
    /// Separates `words` into positionals, `--flag value` / `--flag=value` for `with_value`, and
    /// switches (`switches` plus [`GLOBAL_SWITCHES`]). `--` ends the flags. `command` names
    /// the command in errors.
    pub fn parse(
        words: &[String],
        with_value: &[&'static str],
        switches: &[&'static str],
        command: &str,
    ) -> Result<Self> {
        let mut f = Flags::default();
        let mut it = words.iter();
        while let Some(w) = it.next() {
            if w == "--" {
                f.positional.extend(it.cloned());
                break;
            }
            if !w.starts_with('-') || w.len() == 1 {
                f.positional.push(w.clone());
                continue;
            }
            let (name, inline) = match w.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (w.as_str(), None),
            };
            if let Some(flag) = with_value.iter().find(|f| **f == name) {
                let v = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| Error::Usage(format!("{command}: {flag} needs a value")))?,
                };
                if f.values.insert(flag, v).is_some() {
                    return Err(Error::Usage(format!("{command}: {flag} given twice")));
                }
            } else if let Some(s) = switches
                .iter()
                .chain(GLOBAL_SWITCHES)
                .find(|s| **s == name && inline.is_none())
            {
                f.switches.push(s);
            } else {
                let mut known: Vec<&str> = with_value.iter().chain(switches).copied().collect();
                known.extend(["--json", "--yes"]);
                return Err(Error::Usage(format!(
                    "{command}: unknown option {name} (known: {})",
                    known.join(" ")
                )));
            }
        }
        Ok(f)
    }

    /// Whether a switch was given.
    pub fn has(&self, s: &str) -> bool {
        self.switches.contains(&s)
    }

    /// Takes a flag's value.
    pub fn take(&mut self, flag: &str) -> Option<String> {
        self.values.remove(flag)
    }

    /// True when no flag of the command itself (global switches aside) was given.
    pub fn none_given(&self) -> bool {
        self.values.is_empty() && self.switches.iter().all(|s| GLOBAL_SWITCHES.contains(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_spaces_with_double_quotes_and_keep_single_quotes() {
        let w = Words::from_line(
            r#"  create loader --name "corbomite internal"   --expectenv tags#>>'{operator}'='myorg' "#,
        )
        .unwrap();
        assert_eq!(
            w.all(),
            [
                "create",
                "loader",
                "--name",
                "corbomite internal",
                "--expectenv",
                "tags#>>'{operator}'='myorg'"
            ]
        );
        assert!(Words::from_line("a \"b").is_err());
        assert!(Words::from_line("   ").unwrap().is_empty());
    }

    #[test]
    fn raw_text_keeps_what_was_typed() {
        let w = Words::from_line("expectenv  tags#>>'{a}'='b'   AND  name = \"x\"").unwrap();
        assert_eq!(w.text(1, w.len()), "tags#>>'{a}'='b'   AND  name = \"x\"");
        let a = Words::from_args(vec!["expectenv".into(), "a = 'b c'".into()]);
        assert_eq!(a.text(1, a.len()), "a = 'b c'");
        assert_eq!(a.text(2, 2), "");
    }

    #[test]
    fn flags_values_switches_and_mistakes() {
        let words: Vec<String> = ["N", "--name=x", "--content", "f.tgz", "--json", "--", "--z"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut f = Flags::parse(&words, &["--name", "--content"], &["--force"], "t").unwrap();
        assert_eq!(f.positional, ["N", "--z"]);
        assert_eq!(f.take("--name").as_deref(), Some("x"));
        assert_eq!(f.take("--content").as_deref(), Some("f.tgz"));
        assert!(f.has("--json"));
        assert!(!f.none_given() || f.values.is_empty());
        let e = Flags::parse(&["--nmae".into()], &["--name"], &[], "create loader").unwrap_err();
        assert!(e.to_string().contains("unknown option --nmae"), "{e}");
        let e = Flags::parse(&["--name".into()], &["--name"], &[], "create loader").unwrap_err();
        assert!(e.to_string().contains("--name needs a value"), "{e}");
    }
}
