//! `create investigator` and the investigator reader (`investigator 2>`): setperms, enable,
//! disable, apikey.

use crate::api::typed;
use crate::error::{Error, Result};
use crate::grammar::vocab::{self, Place};
use crate::grammar::{split_list, InvestigatorAction, InvestigatorRef, NewInvestigatorArgs};
use crate::session::{Flow, Session};
use crate::table::{clean, pretty};
use mig_protocol::admin::{
    parse_permissions, permission_names, ApiKeyIssued, InvestigatorRecord, NewInvestigator,
    PermissionChange, StatusChange,
};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// The largest public key file read.
const MAX_PUBKEY: u64 = 256 * 1024;
const PERMS_INTRO: &str =
    "Permissions: sets or bits, comma-separated (PermManifest, PermLoader, PermAdmin, PermSearch, ...); Default is always kept";

/// Reads an armored public key and returns it with its fingerprint.
fn read_public_key(path: &Path) -> Result<(String, String)> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PUBKEY + 1).read_to_string(&mut text))
        .map_err(|e| Error::io("read public key", path, e))?;
    if text.len() as u64 > MAX_PUBKEY {
        return Err(Error::TooLarge {
            what: path.display().to_string(),
            limit: MAX_PUBKEY,
        });
    }
    let key = mig_protocol::signature::parse_public_key(&path.display().to_string(), &text)?;
    let fp = mig_protocol::signature::fingerprint_hex(&key);
    Ok((text, fp))
}

/// Checks permission names locally so a typo is named before anything is sent.
fn checked_permissions(perms: &[String]) -> Result<Vec<String>> {
    let mask = parse_permissions(perms).map_err(|e| Error::Usage(e.to_string()))?;
    Ok(permission_names(mask))
}

/// `create investigator`.
pub fn create(s: &mut Session, a: NewInvestigatorArgs) -> Result<()> {
    let mig = a.prompt_all && s.ui.can_prompt();
    if mig {
        s.ui.say("Entering investigator creation mode.");
    }
    let name = s.ui.name(
        a.name,
        "investigator",
        "Please provide the name of the new investigator",
        "the investigator's name",
    )?;
    let pubkey = match a.pubkey {
        Some(p) => p,
        None => crate::config::expand_home(&s.ui.ask(
            "Please provide the path to the investigator's armored public key",
            "pubkey> ",
            "--pubkey",
            "the investigator's public key file",
        )?),
    };
    let (publickey, fingerprint) = read_public_key(&pubkey)?;
    s.ui.say(format!("Public key fingerprint: {fingerprint}"));
    let permissions = match a.perms {
        Some(p) => p,
        None if mig => {
            split_list(&[s
                .ui
                .ask(PERMS_INTRO, "perms> ", "--perms", "the permissions")?])
        }
        None => Vec::new(),
    };
    let expanded = checked_permissions(&permissions)?;
    let mut new = NewInvestigator {
        name,
        publickey: "...".into(),
        permissions,
    };
    if s.ui.can_prompt() && !s.ui.opts.yes {
        s.ui.say(pretty(&new));
        s.ui.say(format!("Permission bits: {}", expanded.join(", ")));
    }
    s.ui.confirm("create investigator?")?;
    new.publickey = publickey;
    let v = s.api()?.post("investigators", &new)?;
    let rec: InvestigatorRecord = typed(&v, "POST investigators")?;
    if s.ui.opts.json {
        s.ui.json(&v);
    } else {
        s.ui.say(format!(
            "Investigator '{}' successfully created with ID {} (fingerprint {})",
            clean(&rec.name),
            rec.id,
            clean(&rec.fingerprint)
        ));
    }
    Ok(())
}

/// An open investigator.
pub struct Reader {
    id: u64,
    record: InvestigatorRecord,
    raw: Value,
}

impl Reader {
    /// Fetches an investigator (`me`: the caller).
    pub fn load(s: &mut Session, who: InvestigatorRef) -> Result<Self> {
        let path = match who {
            InvestigatorRef::Id(id) => format!("investigators/{id}"),
            InvestigatorRef::Me => "investigators/me".to_string(),
        };
        let raw = s.api()?.get(&path)?;
        let record: InvestigatorRecord = typed(&raw, &format!("GET {path}"))?;
        Ok(Reader {
            id: record.id,
            record,
            raw,
        })
    }

    /// `investigator 2> `.
    pub fn prompt(&self) -> String {
        format!("investigator {}> ", self.id)
    }

    /// Who this is.
    pub fn banner(&self, s: &mut Session) {
        s.ui.say("Entering investigator mode. Type exit or press ctrl+d to leave. help may help.");
        self.summary(s);
    }

    fn summary(&self, s: &mut Session) {
        let r = &self.record;
        s.ui.say(format!(
            "Investigator {} named '{}', status '{}', fingerprint {}",
            r.id,
            clean(&r.name),
            clean(r.status.as_str()),
            clean(&r.fingerprint)
        ));
        s.ui.say(format!("Permissions: {}", clean(&r.permissions.join(", "))));
    }

    fn post<T: serde::Serialize>(&mut self, s: &mut Session, what: &str, body: &T) -> Result<()> {
        let path = format!("investigators/{}/{what}", self.id);
        let v = s.api()?.post(&path, body)?;
        self.record = typed(&v, &format!("POST {path}"))?;
        self.raw = v;
        Ok(())
    }

    fn report(&self, s: &mut Session, message: String) {
        if s.ui.opts.json {
            s.ui.json(&self.raw);
        } else {
            s.ui.say(message);
            self.summary(s);
        }
    }

    /// Runs one reader command.
    pub fn run(&mut self, s: &mut Session, a: InvestigatorAction) -> Result<Flow> {
        let id = self.id;
        match a {
            InvestigatorAction::SetPerms(mut perms) => {
                if perms.is_empty() {
                    perms = split_list(&[s.ui.ask(
                        PERMS_INTRO,
                        "perms> ",
                        "setperms SET,...",
                        "the permissions",
                    )?]);
                }
                let expanded = checked_permissions(&perms)?;
                s.ui.confirm(&format!(
                    "set the permissions of investigator {id} to {}?",
                    expanded.join(", ")
                ))?;
                self.post(s, "permissions", &PermissionChange { permissions: perms })?;
                self.report(s, format!("Permissions of investigator {id} updated"));
            }
            InvestigatorAction::Enable | InvestigatorAction::Disable => {
                let status = if a == InvestigatorAction::Enable {
                    "active"
                } else {
                    "disabled"
                };
                if status == "disabled" {
                    s.ui.confirm(&format!("disable investigator {id}?"))?;
                }
                self.post(
                    s,
                    "status",
                    &StatusChange {
                        status: status.into(),
                    },
                )?;
                self.report(s, format!("Investigator {id} is now {status}"));
            }
            InvestigatorAction::ApiKey => {
                s.ui.confirm(&format!(
                    "issue an API key for investigator {id}? A previous one stops working."
                ))?;
                let path = format!("investigators/{id}/apikey");
                let v = s.api()?.post(&path, &serde_json::json!({}))?;
                let issued: ApiKeyIssued = typed(&v, &format!("POST {path}"))?;
                if s.ui.opts.json {
                    s.ui.json(&v);
                } else {
                    s.ui.say(format!(
                        "API key of investigator {id} (shown once): {}",
                        clean(&issued.apikey)
                    ));
                }
            }
            InvestigatorAction::Json => {
                if s.ui.opts.json {
                    s.ui.json(&self.raw);
                } else {
                    s.ui.say(pretty(&self.record));
                }
            }
            InvestigatorAction::Reload => {
                *self = Reader::load(s, InvestigatorRef::Id(id))?;
                self.report(s, "reloaded".into());
            }
            InvestigatorAction::Help => s.ui.say(vocab::help(Place::Investigator)),
            InvestigatorAction::Exit => return Ok(Flow::Leave),
        }
        Ok(Flow::Continue)
    }
}
