//! The console's vocabulary as one table: every command of the top level and of the three
//! readers, with its words, arguments, flags and one line of help. The parser takes each
//! command's flags from here ([`flags`]), the help text is rendered from here ([`help`]) and tab
//! completion offers what follows from here ([`candidates`]); the tests below prove the three
//! agree for every command and flag.

use super::{DEFAULT_HOURS, DEFAULT_STALE_HOURS};

/// Where a command is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `mig>` and a script's arguments.
    Top,
    /// `manifest 34>`.
    Manifest,
    /// `loader 12>`.
    Loader,
    /// `investigator 2>`.
    Investigator,
}

/// One flag of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    pub name: &'static str,
    /// What its value is called in the help; `None` for a switch.
    pub value: Option<&'static str>,
    /// The command fails without it.
    pub required: bool,
    /// Its value when it is not given, shown in the help.
    pub default: Option<u64>,
}

const fn value(name: &'static str, value: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        required: false,
        default: None,
    }
}

const fn switch(name: &'static str) -> Flag {
    Flag {
        name,
        value: None,
        required: false,
        default: None,
    }
}

const fn required(f: Flag) -> Flag {
    Flag {
        required: true,
        ..f
    }
}

const fn default(f: Flag, d: u64) -> Flag {
    Flag {
        default: Some(d),
        ..f
    }
}

/// One command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The words that name it (`create manifest`).
    pub words: &'static [&'static str],
    /// What follows the words, as the help shows it (`ID [SUBCOMMAND]`).
    pub args: &'static str,
    /// Its flags; [`crate::words::GLOBAL_SWITCHES`] apart, which every command takes.
    pub flags: &'static [Flag],
    /// Words completed after the command's words (permission names, search keys with `=`).
    pub values: &'static [&'static str],
    /// The reader that `words ID` enters, whose commands may follow the ID.
    pub reader: Option<Place>,
    /// Its line of help.
    pub about: &'static str,
    /// Arguments that make a valid command with its words, for the agreement test.
    pub example: &'static str,
}

const fn cmd(words: &'static [&'static str], about: &'static str) -> Spec {
    Spec {
        words,
        args: "",
        flags: &[],
        values: &[],
        reader: None,
        about,
        example: "",
    }
}

/// The filter keys of `search manifest`.
pub const MANIFEST_KEYS: &[&str] = &[
    "manifestid",
    "manifestname",
    "status",
    "before",
    "after",
    "limit",
];
/// The filter keys of `search loader`.
pub const LOADER_KEYS: &[&str] = &[
    "loaderid",
    "loadername",
    "agentname",
    "serial",
    "result",
    "limit",
];
/// The permission names `setperms` completes.
const PERMISSIONS: &[&str] = &["PermManifest", "PermLoader", "PermAdmin", "PermSearch"];

/// The top level.
pub const TOP: &[Spec] = &[
    Spec {
        args: "",
        flags: &[
            value("--name", "N"),
            value("--target", "T"),
            value("--content", "FILE.tar.gz"),
            value("--os", "OS"),
            value("--arch", "ARCH"),
            value("--valid-days", "D"),
            value("--halt-after", "5%|3"),
            value("--halt-min", "N"),
            switch("--v1"),
        ],
        ..cmd(
            &["create", "manifest"],
            "a manifest; MIG's prompts ask for name, target and content when no flag is given",
        )
    },
    Spec {
        flags: &[value("--name", "N"), value("--expectenv", "EXPR")],
        ..cmd(&["create", "loader"], "a loader; its key is shown once")
    },
    Spec {
        flags: &[
            value("--name", "N"),
            value("--pubkey", "FILE.asc"),
            value("--perms", "SET,BIT,..."),
        ],
        ..cmd(&["create", "investigator"], "an investigator")
    },
    Spec {
        args: "where manifestid=34 [and status=staged ...]",
        values: MANIFEST_KEYS,
        example: "where manifestid=34",
        ..cmd(&["search", "manifest"], "keys: KEYS")
    },
    Spec {
        args: "where loadername=%corb%",
        values: LOADER_KEYS,
        example: "where loadername=%corb%",
        ..cmd(&["search", "loader"], "keys: KEYS")
    },
    Spec {
        args: "[manifest ID]",
        flags: &[default(value("--stale-hours", "H"), DEFAULT_STALE_HOURS)],
        ..cmd(
            &["status"],
            "per active manifest (or one): loaders given it, on it, older, failed, rolled back, \
             rejected, not seen for H hours",
        )
    },
    Spec {
        flags: &[
            required(value("--html", "FILE")),
            default(value("--hours", "H"), DEFAULT_HOURS),
            default(value("--stale-hours", "H"), DEFAULT_STALE_HOURS),
        ],
        example: "--html r.html",
        ..cmd(
            &["report"],
            "one self-contained HTML file: adoption over H hours, results, failures, stale hosts",
        )
    },
    Spec {
        args: "ID [SUBCOMMAND]",
        reader: Some(Place::Manifest),
        example: "34",
        ..cmd(&["manifest"], "reader: READER")
    },
    Spec {
        args: "ID [SUBCOMMAND]",
        reader: Some(Place::Loader),
        example: "12",
        ..cmd(&["loader"], "reader: READER")
    },
    Spec {
        args: "ID|me [SUBCOMMAND]",
        reader: Some(Place::Investigator),
        example: "me",
        ..cmd(&["investigator"], "reader: READER")
    },
    Spec {
        args: "NAME FILE.wasm",
        example: "rollout rollout.wasm",
        ..cmd(&["plugin", "upload"], "add or replace a targeting plugin")
    },
    cmd(&["plugin", "list"], "the targeting plugins"),
    Spec {
        args: "NAME",
        example: "rollout",
        ..cmd(&["plugin", "delete"], "remove a targeting plugin")
    },
    cmd(&["help"], "these commands"),
    cmd(&["exit"], "leave (or ctrl+d)"),
];

/// The manifest reader.
pub const MANIFEST: &[Spec] = &[
    Spec {
        flags: &[value("--content", "FILE")],
        ..cmd(
            &["sign"],
            "show the statement and sign it (with --content, only if FILE has the same entries)",
        )
    },
    cmd(&["json"], "the manifest record, statement as text"),
    cmd(&["entry"], "the files: name, size, sha256"),
    cmd(&["shasum"], "sha256  name, sorted"),
    Spec {
        args: "PATH",
        example: "out.tar.gz",
        ..cmd(&["fetch"], "write the archive to PATH (never overwrites)")
    },
    cmd(&["loaders"], "loaders this manifest targets now"),
    Spec {
        args: "5%|3|off",
        flags: &[value("--min", "N")],
        example: "5%",
        ..cmd(
            &["halt-after"],
            "halt the rollout when this many (or this share) of the loaders that reported \
             failed or rolled back, after at least N reports; halt-after off clears it",
        )
    },
    cmd(
        &["resume"],
        "a halted manifest goes on; only reports from now on count",
    ),
    Spec {
        flags: &[value("--valid-days", "D")],
        example: "--valid-days 90",
        ..cmd(
            &["renew"],
            "a new staged manifest with the same entries, target, platform and halt rule, a new \
             serial and expiry in D days; signed by the threshold it replaces this one",
        )
    },
    cmd(&["disable"], "disable the manifest (final)"),
    cmd(&["reset"], "back to staged; removes its signatures"),
    cmd(&["r"], "reload"),
    cmd(&["help"], "these commands"),
    cmd(&["exit"], "leave (or ctrl+d)"),
];

/// The loader reader.
pub const LOADER: &[Spec] = &[
    cmd(&["enable"], "turn the loader on"),
    cmd(&["disable"], "turn the loader off"),
    cmd(&["key"], "issue a new key (the old one stops working)"),
    Spec {
        args: "[EXPR]",
        ..cmd(
            &["expectenv"],
            "set the expected environment; no EXPR clears it",
        )
    },
    Spec {
        args: "[k=v ...]",
        flags: &[switch("--clear")],
        example: "owner=ops",
        ..cmd(
            &["attributes"],
            "show, or replace, the administrator-owned attributes (--clear empties them)",
        )
    },
    cmd(&["json"], "the loader record"),
    cmd(&["r"], "reload"),
    cmd(&["help"], "these commands"),
    cmd(&["exit"], "leave (or ctrl+d)"),
];

/// The investigator reader.
pub const INVESTIGATOR: &[Spec] = &[
    Spec {
        args: "SET,BIT,...",
        values: PERMISSIONS,
        example: "PermManifest",
        ..cmd(
            &["setperms"],
            "replace the permissions (Default is always kept)",
        )
    },
    cmd(&["enable"], "activate the investigator"),
    cmd(&["disable"], "disable the investigator"),
    cmd(&["apikey"], "issue an API key (shown once)"),
    cmd(&["json"], "the investigator record"),
    cmd(&["r"], "reload"),
    cmd(&["help"], "these commands"),
    cmd(&["exit"], "leave (or ctrl+d)"),
];

impl Place {
    /// The commands typed here.
    pub fn table(self) -> &'static [Spec] {
        match self {
            Place::Top => TOP,
            Place::Manifest => MANIFEST,
            Place::Loader => LOADER,
            Place::Investigator => INVESTIGATOR,
        }
    }
}

/// The command of `place` named by exactly `words`.
pub fn spec(place: Place, words: &[&str]) -> Option<&'static Spec> {
    place.table().iter().find(|s| s.words == words)
}

/// The value flags and the switches of the command `words` of `place` (none for a command that
/// is not in the table).
pub fn flags(place: Place, words: &[&str]) -> (Vec<&'static str>, Vec<&'static str>) {
    let all = spec(place, words).map_or(&[][..], |s| s.flags);
    split(all.iter())
}

/// The value flags and the switches any command of `place` takes: a reader parses its line with
/// these, then names a flag its command does not take.
pub fn reader_flags(place: Place) -> (Vec<&'static str>, Vec<&'static str>) {
    split(place.table().iter().flat_map(|s| s.flags))
}

fn split<'a>(flags: impl Iterator<Item = &'a Flag>) -> (Vec<&'static str>, Vec<&'static str>) {
    let (mut values, mut switches) = (Vec::new(), Vec::new());
    for f in flags {
        let list = if f.value.is_some() {
            &mut values
        } else {
            &mut switches
        };
        if !list.contains(&f.name) {
            list.push(f.name);
        }
    }
    (values, switches)
}

/// A command's synopsis: its words, arguments and flags.
fn synopsis(s: &Spec) -> String {
    let mut out = s.words.join(" ");
    if !s.args.is_empty() {
        out.push(' ');
        out.push_str(s.args);
    }
    for f in s.flags {
        let shown = match (f.value, f.default) {
            (Some(v), Some(d)) => format!("{} {v} ({d})", f.name),
            (Some(v), None) => format!("{} {v}", f.name),
            (None, _) => f.name.to_string(),
        };
        if f.required {
            out.push_str(&format!(" {shown}"));
        } else {
            out.push_str(&format!(" [{shown}]"));
        }
    }
    out
}

/// A command's line of help, its placeholders filled: KEYS (the search keys), READER (the
/// reader's words).
fn about(s: &Spec) -> String {
    let reader = s.reader.map_or_else(String::new, |r| {
        r.table()
            .iter()
            .filter(|c| !matches!(c.words, ["help" | "exit"]))
            .map(|c| c.words.join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    });
    s.about
        .replace("KEYS", &s.values.join(" "))
        .replace("READER", &reader)
}

/// The help of `place`.
pub fn help(place: Place) -> String {
    let width: usize = 32;
    let mut out = String::new();
    if place == Place::Top {
        out.push_str("Commands (the same words work as mig-console arguments in scripts):\n");
    }
    for s in place.table() {
        let syn = synopsis(s);
        let pad = width.saturating_sub(syn.len()).max(2);
        out.push_str(&format!("  {syn}{}{}\n", " ".repeat(pad), about(s)));
    }
    if place == Place::Top {
        out.push_str(
            "Every command takes --json (print the API's JSON only) and --yes (no confirmation).\n\
             % and * are wildcards in names.\n",
        );
    }
    out.trim_end().to_string()
}

/// The words that may follow `before` (the complete words already typed) at `place`.
pub fn candidates(place: Place, before: &[&str]) -> Vec<String> {
    let table = place.table();
    // `manifest 34 …`: the words of the reader it enters.
    for s in table {
        let n = s.words.len();
        if let Some(reader) = s.reader {
            if before.len() > n && before[..n] == *s.words {
                return candidates(reader, &before[n + 1..]);
            }
        }
    }
    // The next word of the commands that start with `before`.
    let mut out: Vec<String> = Vec::new();
    for s in table {
        if before.len() < s.words.len() && s.words[..before.len()] == *before {
            let w = s.words[before.len()].to_string();
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    if !out.is_empty() {
        return out;
    }
    // After a command's words: a search's `where KEY= and KEY=`, or its values and flags.
    let Some(s) = table
        .iter()
        .find(|s| before.len() >= s.words.len() && before[..s.words.len()] == *s.words)
    else {
        return out;
    };
    let rest = &before[s.words.len()..];
    if s.words.first() == Some(&"search") {
        return match rest.last() {
            None => vec!["where".to_string()],
            Some(&"where" | &"and") => s.values.iter().map(|k| format!("{k}=")).collect(),
            Some(_) => vec!["and".to_string()],
        };
    }
    s.values
        .iter()
        .chain(s.flags.iter().map(|f| &f.name))
        .map(|w| w.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::Words;

    /// The line that starts a command of `place` at the top level.
    fn prefix(place: Place) -> &'static str {
        match place {
            Place::Top => "",
            Place::Manifest => "manifest 34 ",
            Place::Loader => "loader 12 ",
            Place::Investigator => "investigator me ",
        }
    }

    fn parse(line: &str) -> crate::Result<()> {
        super::super::parse(&Words::from_line(line).unwrap()).map(drop)
    }

    #[test]
    fn parser_help_and_completion_agree_on_every_command_and_flag() {
        for place in [
            Place::Top,
            Place::Manifest,
            Place::Loader,
            Place::Investigator,
        ] {
            let help = help(place);
            let top_before: Vec<&str> = prefix(place).split_whitespace().collect();
            for s in place.table() {
                let name = s.words.join(" ");
                // The help shows the command with its arguments and every flag.
                assert!(help.contains(&synopsis(s)), "{place:?} help lacks {name}");
                // Completion offers each of its words, here and from the top level.
                for i in 0..s.words.len() {
                    let offered = candidates(place, &s.words[..i]);
                    assert!(
                        offered.contains(&s.words[i].to_string()),
                        "{name}: {offered:?}"
                    );
                    let mut from_top = top_before.clone();
                    from_top.extend(&s.words[..i]);
                    let offered = candidates(Place::Top, &from_top);
                    assert!(
                        offered.contains(&s.words[i].to_string()),
                        "{name}: {offered:?}"
                    );
                }
                // The parser knows it, with its example arguments.
                let line = format!("{}{name} {}", prefix(place), s.example);
                parse(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
                // Completion after its words offers every flag, and the parser takes each.
                let offered = candidates(place, s.words);
                for f in s.flags {
                    assert!(offered.contains(&f.name.to_string()), "{name}: {offered:?}");
                    let given = match f.value {
                        Some(_) => format!("{line} {} x", f.name),
                        None => format!("{line} {}", f.name),
                    };
                    if let Err(e) = parse(&given) {
                        let e = e.to_string();
                        assert!(
                            !e.contains("unknown") && !e.contains("takes no"),
                            "{given}: {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn create_manifest_completes_its_halt_flags_and_v1() {
        let offered = candidates(Place::Top, &["create", "manifest", "--name", "x"]);
        for f in ["--halt-after", "--halt-min", "--v1"] {
            assert!(offered.contains(&f.to_string()), "{offered:?}");
        }
    }
}
