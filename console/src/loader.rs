//! `create loader` and the loader reader (`loader 12>`): enable, disable, key, expectenv,
//! attributes.

use crate::api::typed;
use crate::error::{Error, Result};
use crate::grammar::vocab::{self, Place};
use crate::grammar::{AttributesOp, LoaderAction, NewLoaderArgs};
use crate::session::{Flow, Session};
use crate::table::{clean, pretty};
use mig_protocol::admin::{
    Attributes, ExpectEnv, LoaderKeyIssued, LoaderRecord, NewLoader, StatusChange,
};
use mig_protocol::loader::LoaderKey;
use serde_json::Value;

/// Checks the key the API issued before it is shown (it must be 40 alphanumerics).
fn issued_key(v: &Value, what: &str) -> Result<LoaderKeyIssued> {
    let issued: LoaderKeyIssued = typed(v, what)?;
    LoaderKey::parse(&issued.key).map_err(|e| Error::BadAnswer {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    Ok(issued)
}

/// `create loader`: `name>` and `expectenv>` as in MIG; the key is shown once.
pub fn create(s: &mut Session, a: NewLoaderArgs) -> Result<()> {
    let mig = a.prompt_all && s.ui.can_prompt();
    if mig {
        s.ui.say("Entering loader creation mode.");
    }
    let name = s.ui.name(
        a.name,
        "loader",
        "Please provide the name of the new entry",
        "the loader's name",
    )?;
    let expectenv = match a.expectenv {
        Some(e) => Some(e),
        None if mig => Some(s.ui.ask(
            "Provide expected environment target string, or enter for none",
            "expectenv> ",
            "--expectenv",
            "the expected environment",
        )?),
        None => None,
    }
    .map(|e| e.trim().to_string())
    .filter(|e| !e.is_empty());
    let new = NewLoader { name, expectenv };
    if s.ui.can_prompt() && !s.ui.opts.yes {
        s.ui.say(pretty(&new));
        s.ui.say("Server will assign prefix and key on creation");
    }
    s.ui.confirm("create loader entry?")?;
    let v = s.api()?.post("loaders", &new)?;
    let issued = issued_key(&v, "POST loaders")?;
    if s.ui.opts.json {
        s.ui.json(&v);
    } else {
        s.ui.say(format!(
            "Loader key including prefix to supply to client will be \"{}\"",
            issued.key
        ));
        s.ui.say(format!(
            "New entry successfully created (id {}) but is {}",
            issued.loader.id,
            if issued.loader.enabled {
                "enabled"
            } else {
                "disabled"
            }
        ));
    }
    Ok(())
}

/// An open loader.
pub struct Reader {
    id: u64,
    record: LoaderRecord,
    raw: Value,
}

impl Reader {
    /// Fetches loader `id`.
    pub fn load(s: &mut Session, id: u64) -> Result<Self> {
        let raw = s.api()?.get(&format!("loaders/{id}"))?;
        let record = typed(&raw, &format!("GET loaders/{id}"))?;
        Ok(Reader { id, record, raw })
    }

    fn replace(&mut self, v: Value, what: &str) -> Result<()> {
        self.record = typed(&v, what)?;
        self.raw = v;
        Ok(())
    }

    /// `loader 12> `.
    pub fn prompt(&self) -> String {
        format!("loader {}> ", self.id)
    }

    /// What MIG printed on entering the reader.
    pub fn banner(&self, s: &mut Session) {
        s.ui.say("Entering loader reader mode. Type exit or press ctrl+d to leave. help may help.");
        s.ui.say(format!("Loader: '{}'.", clean(&self.record.name)));
        s.ui.say(format!("Status '{}'.", status(&self.record)));
    }

    fn post<T: serde::Serialize>(&mut self, s: &mut Session, what: &str, body: &T) -> Result<()> {
        let path = format!("loaders/{}/{what}", self.id);
        let v = s.api()?.post(&path, body)?;
        self.replace(v, &format!("POST {path}"))
    }

    /// The record in JSON mode, otherwise the messages.
    fn report(&self, s: &mut Session, lines: &[String]) {
        if s.ui.opts.json {
            s.ui.json(&self.raw);
        } else {
            for l in lines {
                s.ui.say(l);
            }
        }
    }

    /// Runs one reader command.
    pub fn run(&mut self, s: &mut Session, a: LoaderAction) -> Result<Flow> {
        let id = self.id;
        match a {
            LoaderAction::Enable | LoaderAction::Disable => {
                let on = a == LoaderAction::Enable;
                let word = if on { "enabled" } else { "disabled" };
                self.post(
                    s,
                    "status",
                    &StatusChange {
                        status: word.into(),
                    },
                )?;
                self.report(s, &[format!("Loader has been {word}"), "reloaded".into()]);
            }
            LoaderAction::Key => {
                s.ui.confirm(&format!(
                    "issue a new key for loader {id}? Its current key stops working."
                ))?;
                let path = format!("loaders/{id}/key");
                let v = s.api()?.post(&path, &serde_json::json!({}))?;
                let issued = issued_key(&v, &format!("POST {path}"))?;
                self.record = issued.loader;
                self.raw = v["loader"].clone();
                if s.ui.opts.json {
                    s.ui.json(&v);
                } else {
                    s.ui.say(format!(
                        "Loader key including prefix to supply to client will be \"{}\"",
                        issued.key
                    ));
                }
            }
            LoaderAction::ExpectEnv(e) => {
                let expectenv = Some(e.clone()).filter(|e| !e.is_empty());
                self.post(s, "expectenv", &ExpectEnv { expectenv })?;
                let msg = if e.is_empty() {
                    "expectenv cleared".to_string()
                } else {
                    format!("expectenv set to '{}'", clean(&e))
                };
                self.report(s, &[msg, "reloaded".into()]);
            }
            LoaderAction::Attributes(AttributesOp::Show) => {
                if s.ui.opts.json {
                    s.ui.json(&self.raw["attributes"]);
                } else if self.record.attributes.is_empty() {
                    s.ui.say(format!("Loader {id} has no attributes."));
                } else {
                    for (k, v) in &self.record.attributes {
                        s.ui.say(format!("{} = {}", clean(k), clean(v)));
                    }
                }
            }
            LoaderAction::Attributes(AttributesOp::Replace(attributes)) => {
                self.post(s, "attributes", &Attributes { attributes })?;
                let shown: Vec<String> = self
                    .record
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{}={}", clean(k), clean(v)))
                    .collect();
                self.report(
                    s,
                    &[if shown.is_empty() {
                        "attributes cleared".to_string()
                    } else {
                        format!("attributes set: {}", shown.join(" "))
                    }],
                );
            }
            LoaderAction::Json => {
                if s.ui.opts.json {
                    s.ui.json(&self.raw);
                } else {
                    s.ui.say(pretty(&self.record));
                }
            }
            LoaderAction::Reload => {
                *self = Reader::load(s, id)?;
                self.report(s, &["reloaded".into()]);
            }
            LoaderAction::Help => s.ui.say(vocab::help(Place::Loader)),
            LoaderAction::Exit => return Ok(Flow::Leave),
        }
        Ok(Flow::Continue)
    }
}

fn status(l: &LoaderRecord) -> &'static str {
    if l.enabled {
        "enabled"
    } else {
        "disabled"
    }
}
