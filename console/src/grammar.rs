//! MIG's console grammar, the same for an interactive line and a script's arguments:
//! `create manifest`, `search loader where loadername=%corb%`, `manifest 34 sign`, …

pub mod vocab;

use crate::error::{Error, Result};
use crate::words::{Flags, Words};
use mig_protocol::admin::{HaltAfter, HaltRule};
use std::collections::BTreeMap;
use std::path::PathBuf;
use vocab::Place;

/// The most hours `--hours` and `--stale-hours` take: the API keeps at most ten years of history.
pub const MAX_HOURS: u64 = 3650 * 24;
/// `report`'s window when `--hours` is not given: a week.
pub const DEFAULT_HOURS: u64 = 168;
/// `status` and `report` count a loader as stale after this many hours without a report, when
/// `--stale-hours` is not given.
pub const DEFAULT_STALE_HOURS: u64 = 24;
/// The most days `create manifest --valid-days` takes (ten years).
pub const MAX_VALID_DAYS: u32 = 3650;
/// Names shorter than this are refused, as MIG did (manifests, loaders, investigators).
pub const MIN_NAME: usize = 3;

/// Per-command switches.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Opts {
    /// Print the API's JSON document and nothing else on stdout.
    pub json: bool,
    /// Answer yes to confirmations.
    pub yes: bool,
}

impl Opts {
    fn from(f: &Flags) -> Self {
        Opts {
            json: f.has("--json"),
            yes: f.has("--yes") || f.has("-y"),
        }
    }
}

/// `create manifest` values; the missing ones are prompted or refused.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NewManifestArgs {
    pub name: Option<String>,
    pub target: Option<String>,
    pub content: Option<PathBuf>,
    pub os: Option<String>,
    pub arch: Option<String>,
    pub valid_days: Option<u32>,
    /// `--halt-after 5%|3 [--halt-min N]`.
    pub halt: Option<HaltRule>,
    /// `--v1`: also for MIG's Go loaders (a second text to sign, docs/design.md §8.3).
    pub v1: bool,
    /// No flag was given: MIG's three prompts, in order.
    pub prompt_all: bool,
}

/// `create loader` values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NewLoaderArgs {
    pub name: Option<String>,
    pub expectenv: Option<String>,
    pub prompt_all: bool,
}

/// `create investigator` values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NewInvestigatorArgs {
    pub name: Option<String>,
    pub pubkey: Option<PathBuf>,
    pub perms: Option<Vec<String>>,
    pub prompt_all: bool,
}

/// What a search looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    Manifest,
    Loader,
}

impl SearchKind {
    /// The API's `type=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchKind::Manifest => "manifest",
            SearchKind::Loader => "loader",
        }
    }

    /// Filter keys the API accepts for this kind.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            SearchKind::Manifest => vocab::MANIFEST_KEYS,
            SearchKind::Loader => vocab::LOADER_KEYS,
        }
    }
}

/// Commands of the manifest reader (`manifest 34>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestAction {
    Sign {
        content: Option<PathBuf>,
    },
    Json,
    Entry,
    Shasum,
    Fetch(PathBuf),
    Loaders,
    Disable,
    Reset,
    /// `halted` → `active`.
    Resume,
    /// `halt-after 5%|3 [--min N]`, or `halt-after off` (`None`).
    HaltAfter(Option<HaltRule>),
    /// `renew [--valid-days D]`: a new manifest with the same entries, a new serial and expiry.
    Renew {
        valid_days: Option<u32>,
    },
    Reload,
    Help,
    Exit,
}

/// What `attributes` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributesOp {
    Show,
    Replace(BTreeMap<String, String>),
}

/// Commands of the loader reader (`loader 12>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoaderAction {
    Enable,
    Disable,
    Key,
    /// Empty clears it.
    ExpectEnv(String),
    Attributes(AttributesOp),
    Json,
    Reload,
    Help,
    Exit,
}

/// Which investigator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvestigatorRef {
    Id(u64),
    Me,
}

/// Commands of the investigator reader (`investigator 2>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvestigatorAction {
    /// Empty: prompted.
    SetPerms(Vec<String>),
    Enable,
    Disable,
    ApiKey,
    Json,
    Reload,
    Help,
    Exit,
}

/// One top-level command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Exit,
    CreateManifest(NewManifestArgs),
    CreateLoader(NewLoaderArgs),
    CreateInvestigator(NewInvestigatorArgs),
    Search {
        kind: SearchKind,
        filters: Vec<(String, String)>,
    },
    Manifest {
        id: u64,
        action: Option<ManifestAction>,
    },
    Loader {
        id: u64,
        action: Option<LoaderAction>,
    },
    Investigator {
        who: InvestigatorRef,
        action: Option<InvestigatorAction>,
    },
    PluginUpload {
        name: String,
        file: PathBuf,
    },
    PluginList,
    PluginDelete {
        name: String,
    },
    /// `status [manifest ID] [--stale-hours H]`.
    Status {
        manifest: Option<u64>,
        stale_hours: Option<u64>,
    },
    /// `report --html FILE [--hours H] [--stale-hours H]`.
    Report {
        html: PathBuf,
        hours: Option<u64>,
        stale_hours: Option<u64>,
    },
}

fn usage(m: impl Into<String>) -> Error {
    Error::Usage(m.into())
}

fn parse_id(w: Option<&str>, what: &str) -> Result<u64> {
    let w = w.ok_or_else(|| usage(format!("{what} needs an ID, e.g. `{what} 34`")))?;
    w.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| usage(format!("{what} ID {w:?} is not a positive number")))
}

/// Splits `SET,BIT` and `SET BIT` lists.
pub fn split_list<S: AsRef<str>>(items: &[S]) -> Vec<String> {
    items
        .iter()
        .flat_map(|s| {
            s.as_ref()
                .split(',')
                .map(|p| p.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// The words after the command `words` of `place`, parsed with that command's flags (from
/// [`vocab`]).
fn command_flags(rest: &[String], place: Place, words: &[&str]) -> Result<Flags> {
    let (values, switches) = vocab::flags(place, words);
    Flags::parse(rest, &values, &switches, &words.join(" "))
}

fn no_extra(f: &Flags, command: &str) -> Result<()> {
    match f.positional.first() {
        Some(w) => Err(usage(format!("{command}: unexpected {w:?}"))),
        None => Ok(()),
    }
}

/// Parses a top-level command.
pub fn parse(w: &Words) -> Result<(Command, Opts)> {
    let all = w.all();
    let first = w.get(0).unwrap_or("");
    let rest = &all[all.len().min(1)..];
    match first {
        "help" | "?" => {
            let f = Flags::parse(rest, &[], &[], "help")?;
            Ok((Command::Help, Opts::from(&f)))
        }
        "exit" | "quit" => Ok((Command::Exit, Opts::default())),
        "create" => parse_create(w),
        "search" => parse_search(w),
        "manifest" => {
            let id = parse_id(w.get(1), "manifest")?;
            let (action, opts) = parse_action(w, 2, parse_manifest_action)?;
            Ok((Command::Manifest { id, action }, opts))
        }
        "loader" => {
            let id = parse_id(w.get(1), "loader")?;
            let (action, opts) = parse_action(w, 2, parse_loader_action)?;
            Ok((Command::Loader { id, action }, opts))
        }
        "investigator" => {
            let who = match w.get(1) {
                Some("me") => InvestigatorRef::Me,
                other => InvestigatorRef::Id(parse_id(other, "investigator")?),
            };
            let (action, opts) = parse_action(w, 2, parse_investigator_action)?;
            Ok((Command::Investigator { who, action }, opts))
        }
        "plugin" | "plugins" => parse_plugin(rest),
        "status" => parse_status(rest),
        "report" => parse_report(rest),
        "" => Err(usage("no command given; try help")),
        other => Err(usage(format!("unknown command {other:?}; try help"))),
    }
}

/// A reader command from word `from` on, or `None` (with only global switches) to enter it.
fn parse_action<A>(
    w: &Words,
    from: usize,
    parse: fn(&Words, usize) -> Result<(A, Opts)>,
) -> Result<(Option<A>, Opts)> {
    let after = &w.all()[w.len().min(from)..];
    let f = Flags::parse(after, &[], &[], "reader")
        .ok()
        .filter(|f| f.positional.is_empty());
    match f {
        Some(f) => Ok((None, Opts::from(&f))),
        None => parse(w, from).map(|(a, o)| (Some(a), o)),
    }
}

fn parse_create(w: &Words) -> Result<(Command, Opts)> {
    let what = w.get(1).unwrap_or("");
    let rest = &w.all()[w.len().min(2)..];
    let command = format!("create {what}");
    match what {
        "manifest" => {
            let mut f = command_flags(rest, Place::Top, &["create", "manifest"])?;
            no_extra(&f, &command)?;
            let valid_days = valid_days(f.take("--valid-days"))?;
            let halt = match (f.take("--halt-after"), f.take("--halt-min")) {
                (Some(after), min) => Some(halt_rule(&after, min.as_deref(), "--halt-min")?),
                (None, Some(_)) => return Err(usage("--halt-min needs --halt-after")),
                (None, None) => None,
            };
            Ok((
                Command::CreateManifest(NewManifestArgs {
                    prompt_all: f.none_given() && halt.is_none(),
                    v1: f.has("--v1"),
                    halt,
                    name: f.take("--name"),
                    target: f.take("--target"),
                    content: f.take("--content").map(|p| crate::config::expand_home(&p)),
                    os: f.take("--os"),
                    arch: f.take("--arch"),
                    valid_days,
                }),
                Opts::from(&f),
            ))
        }
        "loader" => {
            let mut f = command_flags(rest, Place::Top, &["create", "loader"])?;
            no_extra(&f, &command)?;
            Ok((
                Command::CreateLoader(NewLoaderArgs {
                    prompt_all: f.none_given(),
                    name: f.take("--name"),
                    expectenv: f.take("--expectenv"),
                }),
                Opts::from(&f),
            ))
        }
        "investigator" => {
            let mut f = command_flags(rest, Place::Top, &["create", "investigator"])?;
            no_extra(&f, &command)?;
            Ok((
                Command::CreateInvestigator(NewInvestigatorArgs {
                    prompt_all: f.none_given(),
                    name: f.take("--name"),
                    pubkey: f.take("--pubkey").map(|p| crate::config::expand_home(&p)),
                    perms: f.take("--perms").map(|p| split_list(&[p])),
                }),
                Opts::from(&f),
            ))
        }
        _ => Err(usage(
            "create what? create manifest, create loader or create investigator",
        )),
    }
}

fn parse_search(w: &Words) -> Result<(Command, Opts)> {
    let kind = match w.get(1) {
        Some("manifest" | "manifests") => SearchKind::Manifest,
        Some("loader" | "loaders") => SearchKind::Loader,
        _ => {
            return Err(usage(
                "search what? search manifest where … or search loader where …",
            ))
        }
    };
    let rest = &w.all()[w.len().min(2)..];
    let f = command_flags(rest, Place::Top, &["search", kind.as_str()])?;
    let mut words = f.positional.iter().map(String::as_str).peekable();
    if words
        .peek()
        .is_some_and(|x| x.eq_ignore_ascii_case("where"))
    {
        words.next();
    }
    let mut filters: Vec<(String, String)> = Vec::new();
    let mut expect_pair = true;
    for word in words {
        if !expect_pair {
            if word.eq_ignore_ascii_case("and") {
                expect_pair = true;
                continue;
            }
            return Err(usage(format!("search: expected `and` before {word:?}")));
        }
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| usage(format!("search: {word:?} is not key=value")))?;
        let k = k.to_ascii_lowercase();
        // MIG's `name=` silently did nothing; here it means the record's name.
        let k = match (k.as_str(), kind) {
            ("name", SearchKind::Manifest) => "manifestname".to_string(),
            ("name", SearchKind::Loader) => "loadername".to_string(),
            ("id", SearchKind::Manifest) => "manifestid".to_string(),
            ("id", SearchKind::Loader) => "loaderid".to_string(),
            _ => k,
        };
        if !kind.keys().contains(&k.as_str()) {
            return Err(usage(format!(
                "search {}: unknown key {k:?} (known: {})",
                kind.as_str(),
                kind.keys().join(", ")
            )));
        }
        if v.is_empty() {
            return Err(usage(format!("search: {k}= needs a value")));
        }
        filters.push((k, v.replace('*', "%")));
        expect_pair = false;
    }
    if expect_pair && !filters.is_empty() {
        return Err(usage("search: a condition is missing after `and`"));
    }
    Ok((Command::Search { kind, filters }, Opts::from(&f)))
}

fn parse_status(rest: &[String]) -> Result<(Command, Opts)> {
    let mut f = command_flags(rest, Place::Top, &["status"])?;
    let manifest = match f.positional.as_slice() {
        [] => None,
        [what, id] if what == "manifest" => Some(parse_id(Some(id.as_str()), "status manifest")?),
        _ => return Err(usage("status [manifest ID] [--stale-hours H]")),
    };
    let stale_hours = hours(&mut f, "--stale-hours")?;
    Ok((
        Command::Status {
            manifest,
            stale_hours,
        },
        Opts::from(&f),
    ))
}

/// A number of hours from 1 to [`MAX_HOURS`] given with `flag`, if it was.
fn hours(f: &mut Flags, flag: &str) -> Result<Option<u64>> {
    f.take(flag)
        .map(|h| {
            h.parse::<u64>()
                .ok()
                .filter(|h| (1..=MAX_HOURS).contains(h))
                .ok_or_else(|| {
                    usage(format!(
                        "{flag} {h:?} is not a number of hours from 1 to {MAX_HOURS}"
                    ))
                })
        })
        .transpose()
}

fn parse_report(rest: &[String]) -> Result<(Command, Opts)> {
    let mut f = command_flags(rest, Place::Top, &["report"])?;
    no_extra(&f, "report")?;
    let html = f
        .take("--html")
        .map(|p| crate::config::expand_home(&p))
        .ok_or_else(|| usage("report needs --html FILE"))?;
    let hours_ = hours(&mut f, "--hours")?;
    let stale_hours = hours(&mut f, "--stale-hours")?;
    Ok((
        Command::Report {
            html,
            hours: hours_,
            stale_hours,
        },
        Opts::from(&f),
    ))
}

fn parse_plugin(rest: &[String]) -> Result<(Command, Opts)> {
    let f = Flags::parse(rest, &[], &[], "plugin")?;
    let p: Vec<&str> = f.positional.iter().map(String::as_str).collect();
    let cmd = match p.as_slice() {
        ["upload", name, file] => Command::PluginUpload {
            name: name.to_string(),
            file: crate::config::expand_home(file),
        },
        ["list"] => Command::PluginList,
        ["delete", name] => Command::PluginDelete {
            name: name.to_string(),
        },
        _ => {
            return Err(usage(
                "plugin upload NAME FILE.wasm | plugin list | plugin delete NAME",
            ))
        }
    };
    Ok((cmd, Opts::from(&f)))
}

/// `--valid-days D` of `create manifest` and `manifest 34 renew`: 1 to [`MAX_VALID_DAYS`].
fn valid_days(d: Option<String>) -> Result<Option<u32>> {
    d.map(|d| {
        d.parse::<u32>()
            .ok()
            .filter(|d| (1..=MAX_VALID_DAYS).contains(d))
            .ok_or_else(|| {
                usage(format!(
                    "--valid-days {d:?} is not a number of days from 1 to {MAX_VALID_DAYS}"
                ))
            })
    })
    .transpose()
}

/// A halt rule from `--halt-after` and its minimum (`flag` names the minimum's flag).
fn halt_rule(after: &str, min: Option<&str>, flag: &str) -> Result<HaltRule> {
    let after = HaltAfter::parse(after).map_err(|e| usage(e.to_string()))?;
    let min = min
        .map(|m| {
            m.parse::<u64>()
                .ok()
                .filter(|m| *m <= mig_protocol::halt::MAX_LOADERS)
                .ok_or_else(|| usage(format!("{flag} {m:?} is not a number of reports")))
        })
        .transpose()?;
    Ok(HaltRule { after, min })
}

/// A manifest reader command at word `from`.
pub fn parse_manifest_action(w: &Words, from: usize) -> Result<(ManifestAction, Opts)> {
    let word = w.get(from).unwrap_or("");
    let args = &w.all()[w.len().min(from + 1)..];
    let (values, switches) = vocab::reader_flags(Place::Manifest);
    let mut f = Flags::parse(args, &values, &switches, word)?;
    let a = match word {
        "sign" => ManifestAction::Sign {
            content: f.take("--content").map(|p| crate::config::expand_home(&p)),
        },
        "json" => ManifestAction::Json,
        "entry" | "entries" => ManifestAction::Entry,
        "shasum" => ManifestAction::Shasum,
        "fetch" => {
            let path = f
                .positional
                .first()
                .ok_or_else(|| usage("fetch needs a PATH to write the archive to"))?;
            let a = ManifestAction::Fetch(crate::config::expand_home(path));
            f.positional.remove(0);
            a
        }
        "loaders" => ManifestAction::Loaders,
        "disable" => ManifestAction::Disable,
        "reset" => ManifestAction::Reset,
        "resume" => ManifestAction::Resume,
        "halt-after" => {
            let after = f
                .positional
                .first()
                .cloned()
                .ok_or_else(|| usage("halt-after needs 5% or 3, or off"))?;
            f.positional.remove(0);
            let min = f.take("--min");
            if after == "off" {
                if min.is_some() {
                    return Err(usage("halt-after off takes no --min"));
                }
                ManifestAction::HaltAfter(None)
            } else {
                ManifestAction::HaltAfter(Some(halt_rule(&after, min.as_deref(), "--min")?))
            }
        }
        "renew" => ManifestAction::Renew {
            valid_days: valid_days(f.take("--valid-days"))?,
        },
        "r" | "reload" => ManifestAction::Reload,
        "help" | "?" => ManifestAction::Help,
        "exit" | "quit" => ManifestAction::Exit,
        other => {
            return Err(usage(format!(
                "unknown manifest command {other:?}; try help"
            )))
        }
    };
    if let Some(flag) = f.values.keys().next() {
        return Err(usage(format!("{word} takes no {flag}")));
    }
    no_extra(&f, word)?;
    Ok((a, Opts::from(&f)))
}

/// A loader reader command at word `from`.
pub fn parse_loader_action(w: &Words, from: usize) -> Result<(LoaderAction, Opts)> {
    let word = w.get(from).unwrap_or("");
    let args = &w.all()[w.len().min(from + 1)..];
    if word == "expectenv" {
        // The expression is the raw rest of the line; global switches may only come last.
        let mut end = w.len();
        let mut opts = Opts::default();
        while end > from + 1 {
            match w.get(end - 1) {
                Some("--json") => opts.json = true,
                Some("--yes" | "-y") => opts.yes = true,
                _ => break,
            }
            end -= 1;
        }
        return Ok((
            LoaderAction::ExpectEnv(w.text(from + 1, end).trim().to_string()),
            opts,
        ));
    }
    let (values, switches) = vocab::reader_flags(Place::Loader);
    let f = Flags::parse(args, &values, &switches, word)?;
    let a = match word {
        "enable" => LoaderAction::Enable,
        "disable" => LoaderAction::Disable,
        "key" => LoaderAction::Key,
        "attributes" | "attrs" => {
            if f.has("--clear") {
                LoaderAction::Attributes(AttributesOp::Replace(BTreeMap::new()))
            } else if f.positional.is_empty() {
                LoaderAction::Attributes(AttributesOp::Show)
            } else {
                let mut map = BTreeMap::new();
                for kv in &f.positional {
                    let (k, v) = kv
                        .split_once('=')
                        .filter(|(k, _)| !k.is_empty())
                        .ok_or_else(|| usage(format!("attributes: {kv:?} is not key=value")))?;
                    map.insert(k.to_string(), v.to_string());
                }
                return Ok((
                    LoaderAction::Attributes(AttributesOp::Replace(map)),
                    Opts::from(&f),
                ));
            }
        }
        "json" => LoaderAction::Json,
        "r" | "reload" => LoaderAction::Reload,
        "help" | "?" => LoaderAction::Help,
        "exit" | "quit" => LoaderAction::Exit,
        other => return Err(usage(format!("unknown loader command {other:?}; try help"))),
    };
    if f.has("--clear") && !matches!(a, LoaderAction::Attributes(_)) {
        return Err(usage(format!("{word} takes no --clear")));
    }
    no_extra(&f, word)?;
    Ok((a, Opts::from(&f)))
}

/// An investigator reader command at word `from`.
pub fn parse_investigator_action(w: &Words, from: usize) -> Result<(InvestigatorAction, Opts)> {
    let word = w.get(from).unwrap_or("");
    let args = &w.all()[w.len().min(from + 1)..];
    let (values, switches) = vocab::reader_flags(Place::Investigator);
    let f = Flags::parse(args, &values, &switches, word)?;
    let a = match word {
        "setperms" => {
            return Ok((
                InvestigatorAction::SetPerms(split_list(&f.positional)),
                Opts::from(&f),
            ))
        }
        "enable" => InvestigatorAction::Enable,
        "disable" => InvestigatorAction::Disable,
        "apikey" => InvestigatorAction::ApiKey,
        "json" => InvestigatorAction::Json,
        "r" | "reload" => InvestigatorAction::Reload,
        "help" | "?" => InvestigatorAction::Help,
        "exit" | "quit" => InvestigatorAction::Exit,
        other => {
            return Err(usage(format!(
                "unknown investigator command {other:?}; try help"
            )))
        }
    };
    no_extra(&f, word)?;
    Ok((a, Opts::from(&f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Result<(Command, Opts)> {
        parse(&Words::from_line(s).unwrap())
    }

    fn args(a: &[&str]) -> Result<(Command, Opts)> {
        parse(&Words::from_args(a.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn the_transcript_commands_parse() {
        assert_eq!(
            line("create manifest").unwrap().0,
            Command::CreateManifest(NewManifestArgs {
                prompt_all: true,
                ..Default::default()
            })
        );
        assert_eq!(
            line("search manifest where manifestid=34").unwrap().0,
            Command::Search {
                kind: SearchKind::Manifest,
                filters: vec![("manifestid".into(), "34".into())]
            }
        );
        assert_eq!(
            line("manifest 34").unwrap().0,
            Command::Manifest {
                id: 34,
                action: None
            }
        );
        assert_eq!(
            line("search loader where loadername=%corb%").unwrap().0,
            Command::Search {
                kind: SearchKind::Loader,
                filters: vec![("loadername".into(), "%corb%".into())]
            }
        );
        assert_eq!(
            line("loader 12").unwrap().0,
            Command::Loader {
                id: 12,
                action: None
            }
        );
    }

    #[test]
    fn renew_parses_with_and_without_its_validity() {
        let reader = |s: &str| match line(s).unwrap().0 {
            Command::Manifest { action, .. } => action,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reader("manifest 34 renew"),
            Some(ManifestAction::Renew { valid_days: None })
        );
        assert_eq!(
            reader("manifest 34 renew --valid-days 30"),
            Some(ManifestAction::Renew {
                valid_days: Some(30)
            })
        );
    }

    #[test]
    fn halt_rules_parse_in_create_and_in_the_reader() {
        let (c, _) = line("create manifest --name canary --halt-after 5% --halt-min 50").unwrap();
        let Command::CreateManifest(a) = c else {
            panic!("{c:?}")
        };
        assert_eq!(
            a.halt,
            Some(HaltRule {
                after: HaltAfter::BasisPoints(500),
                min: Some(50)
            })
        );
        assert!(!a.prompt_all);
        let reader = |s: &str| match line(s).unwrap().0 {
            Command::Manifest { action, .. } => action,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reader("manifest 34 halt-after 3"),
            Some(ManifestAction::HaltAfter(Some(HaltRule {
                after: HaltAfter::Loaders(3),
                min: None
            })))
        );
        assert_eq!(
            reader("manifest 34 halt-after 2.5% --min 10"),
            Some(ManifestAction::HaltAfter(Some(HaltRule {
                after: HaltAfter::BasisPoints(250),
                min: Some(10)
            })))
        );
        assert_eq!(
            reader("manifest 34 halt-after off"),
            Some(ManifestAction::HaltAfter(None))
        );
        assert_eq!(reader("manifest 34 resume"), Some(ManifestAction::Resume));
        assert_eq!(
            line("report --html ~/fleet.html --hours 24").unwrap().0,
            Command::Report {
                html: crate::config::expand_home("~/fleet.html"),
                hours: Some(24),
                stale_hours: None
            }
        );
    }

    #[test]
    fn script_words_parse_with_flags_and_switches() {
        let (c, o) = args(&[
            "create",
            "loader",
            "--name",
            "corbomite.internal",
            "--expectenv",
            "tags#>>'{operator}'='myorg'",
            "--json",
        ])
        .unwrap();
        assert_eq!(
            c,
            Command::CreateLoader(NewLoaderArgs {
                name: Some("corbomite.internal".into()),
                expectenv: Some("tags#>>'{operator}'='myorg'".into()),
                prompt_all: false
            })
        );
        assert!(o.json && !o.yes);
        let (c, o) = args(&["manifest", "34", "sign", "--content", "/tmp/x.tgz", "--yes"]).unwrap();
        assert_eq!(
            c,
            Command::Manifest {
                id: 34,
                action: Some(ManifestAction::Sign {
                    content: Some("/tmp/x.tgz".into())
                })
            }
        );
        assert!(o.yes);
        let (c, o) = args(&["manifest", "34", "--json"]).unwrap();
        assert_eq!(
            c,
            Command::Manifest {
                id: 34,
                action: None
            }
        );
        assert!(o.json);
        assert_eq!(
            args(&[
                "investigator",
                "2",
                "setperms",
                "PermManifest,PermLoader",
                "PermSearch"
            ])
            .unwrap()
            .0,
            Command::Investigator {
                who: InvestigatorRef::Id(2),
                action: Some(InvestigatorAction::SetPerms(vec![
                    "PermManifest".into(),
                    "PermLoader".into(),
                    "PermSearch".into()
                ]))
            }
        );
    }

    #[test]
    fn expectenv_takes_the_raw_rest_of_the_line() {
        let w = Words::from_line(
            "expectenv tags#>>'{operator}'='myorg' AND env#>>'{os}'='linux' --json",
        )
        .unwrap();
        let (a, o) = parse_loader_action(&w, 0).unwrap();
        assert_eq!(
            a,
            LoaderAction::ExpectEnv("tags#>>'{operator}'='myorg' AND env#>>'{os}'='linux'".into())
        );
        assert!(o.json);
        let w = Words::from_line("expectenv").unwrap();
        assert_eq!(
            parse_loader_action(&w, 0).unwrap().0,
            LoaderAction::ExpectEnv(String::new())
        );
    }

    #[test]
    fn search_filters_are_checked_and_wildcards_translated() {
        let (c, _) = line("search manifest where name=new* and status=active").unwrap();
        assert_eq!(
            c,
            Command::Search {
                kind: SearchKind::Manifest,
                filters: vec![
                    ("manifestname".into(), "new%".into()),
                    ("status".into(), "active".into())
                ]
            }
        );
        for (bad, needle) in [
            (
                "search manifest where loadername=x",
                "unknown key \"loadername\"",
            ),
            (
                "search loader where loadername=x status=y",
                "expected `and`",
            ),
            (
                "search loader where loadername=x and",
                "missing after `and`",
            ),
            ("search agent where x=y", "search what?"),
            ("search loader where loadername", "not key=value"),
        ] {
            let e = line(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, needle) in [
            ("manifest", "needs an ID"),
            ("manifest abc", "not a positive number"),
            ("manifest 3 sing", "unknown manifest command \"sing\""),
            ("manifest 3 fetch", "fetch needs a PATH"),
            ("manifest 3 json --content x", "takes no --content"),
            ("manifest 3 halt-after", "needs 5% or 3, or off"),
            ("manifest 3 halt-after 0", "like 3 or 5%"),
            ("manifest 3 halt-after off --min 3", "takes no --min"),
            (
                "manifest 3 halt-after 5% --min x",
                "--min \"x\" is not a number",
            ),
            ("manifest 3 resume --min 3", "resume takes no --min"),
            (
                "create manifest --halt-min 3",
                "--halt-min needs --halt-after",
            ),
            ("create manifest --halt-after 101%", "like 3 or 5%"),
            ("report", "report needs --html FILE"),
            (
                "report --html r.html --hours 0",
                "--hours \"0\" is not a number of hours",
            ),
            ("report --html r.html extra", "report: unexpected \"extra\""),
            ("loader 3 attributes novalue", "not key=value"),
            ("create thing", "create what?"),
            ("create manifest --name", "--name needs a value"),
            ("create manifest --valid-days 0", "from 1 to 3650"),
            ("manifest 3 renew --valid-days 3651", "from 1 to 3650"),
            ("manifest 3 renew extra", "renew: unexpected \"extra\""),
            ("frobnicate", "unknown command"),
            ("plugin upload x", "plugin upload NAME"),
        ] {
            let e = line(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
