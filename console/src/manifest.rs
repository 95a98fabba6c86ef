//! `create manifest` and the manifest reader (`manifest 34>`): sign with care, inspect, fetch,
//! renew, disable, reset.

use crate::api::typed;
use crate::archive;
use crate::error::{Error, Result};
use crate::grammar::vocab::{self, Place};
use crate::grammar::{ManifestAction, NewManifestArgs};
use crate::session::{Flow, Session};
use crate::table::{self, clean, clean_text, pretty};
use base64::Engine;
use mig_protocol::admin::{
    HaltChange, LoaderRecord, ManifestRecord, NewManifest, NewSignature, RenewManifest,
    StatusChange,
};
use mig_protocol::dictionary::{self, DictName};
use mig_protocol::statement::{Entry, Platform, Statement, MAX_STATEMENT_BYTES};
use mig_protocol::time::Timestamp;
use serde_json::Value;
use std::path::Path;

/// `create manifest`: MIG's three prompts (name, target, content path) for what flags did not
/// give; platform and validity from flags or defaults.
pub fn create(s: &mut Session, a: NewManifestArgs) -> Result<()> {
    if a.prompt_all && s.ui.can_prompt() {
        s.ui.say("Entering manifest creation mode.");
    }
    let name = s.ui.name(
        a.name,
        "manifest",
        "Please provide the name of the new manifest",
        "the manifest's name",
    )?;
    let target = match a.target {
        Some(t) => t,
        None => {
            let t = s.ui.ask(
                "Please provide loader targeting string for manifest.",
                "target> ",
                "--target",
                "the target expression",
            )?;
            s.ui.say(format!("Target: '{t}'"));
            t
        }
    };
    if target.trim().is_empty() {
        return Err(Error::Usage("the target expression is empty".into()));
    }
    let content = match a.content {
        Some(p) => p,
        None => crate::config::expand_home(&s.ui.ask(
            "Please enter path to new manifest archive content.",
            "contentpath> ",
            "--content",
            "the manifest archive (tar.gz)",
        )?),
    };
    let host = Platform::host();
    let platform = Platform {
        os: a.os.unwrap_or(host.os),
        arch: a.arch.unwrap_or(host.arch),
    };
    // Refused here too, before a large archive is read and uploaded.
    platform.check_spelling()?;
    // The archive is checked here so a wrong file is refused before it is uploaded.
    let bytes = archive::read_capped(&content)?;
    let entries = archive::entries(&bytes[..], &content.display().to_string())?;
    if entries.is_empty() {
        return Err(Error::Archive(format!(
            "{} holds no file",
            content.display()
        )));
    }
    if let Some(bad) = entries.iter().find(|e| DictName::parse(&e.name).is_none()) {
        let names: Vec<&str> = dictionary::ALL.iter().map(|d| d.as_str()).collect();
        return Err(Error::Archive(format!(
            "{}: {:?} is not a file a manifest may hold ({})",
            content.display(),
            bad.name,
            names.join(", ")
        )));
    }
    let mut new = NewManifest {
        name,
        target,
        platform,
        valid_days: a.valid_days,
        halt: a.halt,
        v1: a.v1,
        archive: "...".into(),
    };
    if s.ui.can_prompt() && !s.ui.opts.yes {
        s.ui.say(pretty(&new));
        s.ui.say(format!("{} ({} bytes):", content.display(), bytes.len()));
        s.ui.say_raw(&table::entries(&entries));
    }
    s.ui.confirm("create manifest?")?;
    new.archive = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let progress = s.ui.shows_progress("uploading the manifest");
    let v = s.api()?.upload("manifests", &new, progress)?;
    let rec: ManifestRecord = typed(&v, "POST manifests")?;
    if s.ui.opts.json {
        s.ui.json(&v);
    } else {
        s.ui.say(format!(
            "Manifest successfully created with ID {} (status {})",
            rec.id,
            clean(rec.status.as_str())
        ));
    }
    Ok(())
}

/// The signature over the v1 text, made again (a second later, so over another creation time)
/// while its RSA integer is shorter than the statement's by the same key: MIG's Go loaders
/// refuse such a signature, one in 256 (mig_protocol::signature::go_check, which the API
/// applies).
fn v1_signature(signer: &crate::signer::Signer, text: &str, statement_sig: &str) -> Result<String> {
    use mig_protocol::signature::rsa_signature_len;
    let full = rsa_signature_len(statement_sig);
    let mut sig = signer.sign(text.as_bytes())?;
    for _ in 0..8 {
        if rsa_signature_len(&sig) >= full {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
        sig = signer.sign(text.as_bytes())?;
    }
    Ok(sig)
}

/// How the entries of a renewal differ from those of the manifest it renews: nothing when they
/// are the same names, hashes and sizes in the same order.
fn entry_differences(renewed: &[Entry], renewal: &[Entry]) -> Vec<String> {
    if renewed == renewal {
        return Vec::new();
    }
    let diffs = archive::differences(renewed, renewal);
    if diffs.is_empty() {
        vec!["the same entries in another order".into()]
    } else {
        diffs
    }
}

/// An open manifest.
pub struct Reader {
    id: u64,
    record: ManifestRecord,
    raw: Value,
}

impl Reader {
    /// Fetches manifest `id`.
    pub fn load(s: &mut Session, id: u64) -> Result<Self> {
        let raw = s.api()?.get(&format!("manifests/{id}"))?;
        let record = typed(&raw, &format!("GET manifests/{id}"))?;
        Ok(Reader { id, record, raw })
    }

    fn reload(&mut self, s: &mut Session) -> Result<()> {
        *self = Reader::load(s, self.id)?;
        Ok(())
    }

    fn replace(&mut self, v: Value, what: &str) -> Result<()> {
        self.record = typed(&v, what)?;
        self.raw = v;
        Ok(())
    }

    /// `manifest 34> `.
    pub fn prompt(&self) -> String {
        format!("manifest {}> ", self.id)
    }

    /// What MIG printed on entering the reader.
    pub fn banner(&self, s: &mut Session) {
        s.ui.say(
            "Entering manifest reader mode. Type exit or press ctrl+d to leave. help may help.",
        );
        s.ui.say(format!("Manifest: '{}'.", clean(&self.record.name)));
        s.ui.say(format!("Status '{}'.", clean(self.record.status.as_str())));
        if let Some(h) = &self.record.halted {
            s.ui.say(format!("Halted at {}: {}.", h.at, clean(&h.reason)));
        }
        if let Some(rule) = &self.record.halt {
            s.ui.say(format!("Halt rule: {rule} failed or rolled back."));
        }
    }

    /// Runs one reader command.
    pub fn run(&mut self, s: &mut Session, a: ManifestAction) -> Result<Flow> {
        let id = self.id;
        match a {
            ManifestAction::Sign { content } => self.sign(s, content.as_deref())?,
            ManifestAction::Json => {
                if s.ui.opts.json {
                    s.ui.json(&self.raw);
                } else {
                    // The typed record keeps the fields in their order; the statement follows
                    // as text, since its exact bytes are what is signed.
                    let mut shown = self.record.clone();
                    shown.statement = "(below)".into();
                    s.ui.say(pretty(&shown));
                    s.ui.say("statement:");
                    s.ui.say(clean_text(&self.record.statement));
                }
            }
            ManifestAction::Entry | ManifestAction::Shasum => {
                if s.ui.opts.json {
                    s.ui.json(&self.raw["entries"]);
                } else if a == ManifestAction::Entry {
                    s.ui.say_raw(&table::entries(&self.record.entries));
                } else {
                    s.ui.say_raw(&table::shasum(&self.record.entries));
                }
            }
            ManifestAction::Fetch(path) => self.fetch(s, &path)?,
            ManifestAction::Loaders => {
                let v = s.api()?.get(&format!("manifests/{id}/loaders"))?;
                let rows: Vec<LoaderRecord> = typed(&v, &format!("GET manifests/{id}/loaders"))?;
                if s.ui.opts.json {
                    s.ui.json(&v);
                } else if rows.is_empty() {
                    s.ui.say(format!(
                        "No enabled loader matches the target of manifest {id} now."
                    ));
                } else {
                    s.ui.say_raw(&table::loaders(&rows));
                }
            }
            ManifestAction::Disable => {
                s.ui.confirm(&format!("disable manifest {id}? This is final."))?;
                self.set_status(s, "disabled")?;
                self.report(s, format!("Manifest {id} has been disabled"));
            }
            ManifestAction::Reset => {
                s.ui.confirm(&format!(
                    "reset manifest {id} to staged, removing its signatures?"
                ))?;
                self.set_status(s, "staged")?;
                self.report(
                    s,
                    format!("Manifest {id} has been reset to staged; its signatures were removed"),
                );
            }
            ManifestAction::Resume => {
                s.ui.confirm(&format!(
                    "resume manifest {id}? It is offered again to every loader it targets."
                ))?;
                self.set_status(s, "active")?;
                self.report(
                    s,
                    format!("Manifest {id} resumed; its halt rule counts reports from now on"),
                );
            }
            ManifestAction::HaltAfter(rule) => {
                let path = format!("manifests/{id}/halt");
                let v = s.api()?.post(&path, &HaltChange { halt: rule })?;
                self.replace(v, &format!("POST {path}"))?;
                let message = match (&self.record.halt, &self.record.halted) {
                    (_, Some(h)) => format!("Manifest {id} is halted: {}", clean(&h.reason)),
                    (Some(r), None) => {
                        format!("Manifest {id} halts after {r} failed or rolled back")
                    }
                    (None, None) => format!("Manifest {id} has no halt rule"),
                };
                self.report(s, message);
            }
            ManifestAction::Renew { valid_days } => self.renew(s, valid_days)?,
            ManifestAction::Reload => {
                self.reload(s)?;
                self.report(s, "reloaded".into());
            }
            ManifestAction::Help => s.ui.say(vocab::help(Place::Manifest)),
            ManifestAction::Exit => return Ok(Flow::Leave),
        }
        Ok(Flow::Continue)
    }

    /// `POST manifests/<id>/renew`: a new staged manifest over the same entries. The answer is
    /// checked to renew this manifest with exactly its entries before it is reported.
    fn renew(&mut self, s: &mut Session, valid_days: Option<u32>) -> Result<()> {
        let id = self.id;
        let validity = match valid_days {
            Some(d) => format!("{d} days"),
            None => "the API's default validity".to_string(),
        };
        s.ui.confirm(&format!(
            "renew manifest {id}: a new staged manifest with its {} entries, target, platform \
             and halt rule, valid for {validity}?",
            self.record.entries.len()
        ))?;
        let path = format!("manifests/{id}/renew");
        let v = s.api()?.post(&path, &RenewManifest { valid_days })?;
        let what = format!("POST {path}");
        let new: ManifestRecord = typed(&v, &what)?;
        let diffs = entry_differences(&self.record.entries, &new.entries);
        if new.renews != Some(id) || !diffs.is_empty() {
            return Err(Error::BadAnswer {
                what,
                reason: format!(
                    "manifest {} is not a renewal of manifest {id} with the same entries{}",
                    new.id,
                    diffs.iter().map(|d| format!("; {d}")).collect::<String>()
                ),
            });
        }
        if s.ui.opts.json {
            s.ui.json(&v);
        } else {
            s.ui.say(format!(
                "Manifest {} renews manifest {id}: the same {} entries, expires {} (status {}). \
                 Once signed by the threshold (`manifest {} sign`) it replaces manifest {id}.",
                new.id,
                new.entries.len(),
                new.expires,
                clean(new.status.as_str()),
                new.id
            ));
        }
        Ok(())
    }

    /// The record in JSON mode, otherwise `message`.
    fn report(&self, s: &mut Session, message: String) {
        if s.ui.opts.json {
            s.ui.json(&self.raw);
        } else {
            s.ui.say(message);
        }
    }

    fn set_status(&mut self, s: &mut Session, status: &str) -> Result<()> {
        let path = format!("manifests/{}/status", self.id);
        let v = s.api()?.post(
            &path,
            &StatusChange {
                status: status.into(),
            },
        )?;
        self.replace(v, &format!("POST {path}"))
    }

    /// Shows the statement, checks it (and the local archive with --content), confirms, then
    /// signs exactly the bytes the API serves.
    fn sign(&mut self, s: &mut Session, content: Option<&Path>) -> Result<()> {
        let id = self.id;
        let path = format!("manifests/{id}/statement");
        let bytes = s.api()?.get_bytes(&path, MAX_STATEMENT_BYTES as u64)?;
        self.reload(s)?;
        if self.record.statement.as_bytes() != bytes.as_slice() {
            return Err(Error::BadAnswer {
                what: format!("GET {path}"),
                reason: "the statement differs from the one in the manifest record; not signing"
                    .into(),
            });
        }
        let st = Statement::parse(&bytes).map_err(|e| Error::BadAnswer {
            what: format!("GET {path}"),
            reason: e.to_string(),
        })?;
        if st.serial.get() != id {
            return Err(Error::BadAnswer {
                what: format!("GET {path}"),
                reason: format!(
                    "the statement's serial {} is not manifest {id}; not signing",
                    st.serial.get()
                ),
            });
        }
        self.show_statement(s, &st, &bytes);
        if let Some(renewed) = self.record.renews {
            self.check_renewal(s, &st, renewed)?;
        }
        // Asking gpg (a smartcard touch, a PIN) for a signature the API must refuse helps nobody.
        if self.record.status == mig_protocol::ManifestStatus::Disabled {
            return Err(Error::Usage(format!(
                "refusing to sign manifest {id}: it is disabled, and that is final"
            )));
        }
        if let Some(local) = content {
            let here = archive::entries_of_file(local)?;
            let diffs = archive::differences(&st.entries, &here);
            if !diffs.is_empty() {
                return Err(Error::Archive(format!(
                    "refusing to sign manifest {id}: {} differs from the statement:\n  {}",
                    local.display(),
                    diffs.join("\n  ")
                )));
            }
            s.ui.say(format!(
                "The local archive {} holds the same {} entries, byte for byte.",
                local.display(),
                here.len()
            ));
        }
        let now = Timestamp::now();
        if st.expires <= now {
            return Err(Error::Usage(format!(
                "refusing to sign manifest {id}: its statement expired at {}",
                st.expires
            )));
        }
        // docs/design.md §4.6: the API picks the serial; one far above what this console signed
        // for this API before is a fast-forward, refused before anything is signed.
        let state = crate::serials::default_path()?;
        let mut seen = crate::serials::Seen::load(&state)?;
        let api_url = s.config()?.audience.clone();
        seen.check(&state, &api_url, st.serial)?;
        let v1_text = self.v1_text_to_sign(s, &st)?;
        let signer = s.signer()?;
        s.ui.confirm(&format!("sign manifest {id} with {}?", signer.describe()))?;
        let signature = signer.sign(&bytes)?;
        // docs/design.md §8.3: the same key signs the text Go loaders verify, when they can
        // verify this key's signatures at all (RSA, DSA, ECDSA; no Ed25519).
        let v1_signature = match (&v1_text, mig_protocol::signature::go_flat(&signature)) {
            (None, _) => None,
            (Some(text), Ok(_)) => Some(v1_signature(signer.as_ref(), text, &signature)?),
            (Some(_), Err(e)) => {
                s.ui.warn(format!(
                    "manifest {id} is also for MIG's Go loaders, but they cannot verify this \
                     key's signatures ({e}): signing the statement only; the v1 text needs \
                     signatures from administrators with RSA, DSA or ECDSA keys"
                ));
                None
            }
        };
        let path = format!("manifests/{id}/signatures");
        let v = s.api()?.post(
            &path,
            &NewSignature {
                signature,
                v1_signature,
            },
        )?;
        self.replace(v, &format!("POST {path}"))?;
        // The signature is in: a state file that cannot be written only lowers the next check's
        // floor, so it is said, not failed.
        if let Err(e) = seen.record(&state, &api_url, st.serial) {
            s.ui.warn(format!(
                "signed, but the highest serial was not recorded: {e}"
            ));
        }
        if s.ui.opts.json {
            s.ui.json(&self.raw);
        } else {
            s.ui.say("Manifest signature has been accepted");
            s.ui.say(format!(
                "Status '{}', signed by: {}",
                clean(self.record.status.as_str()),
                clean(&self.record.signers.join(", "))
            ));
            if self.record.v1_text.is_some() {
                s.ui.say(format!(
                    "For MIG's Go loaders, signed by: {}",
                    clean(&self.record.v1_signers.join(", "))
                ));
            }
        }
        Ok(())
    }

    /// The manifest's v1 text, when it has one, after checking that it lists exactly the
    /// statement's entries in the statement's order (the console signs only what it checked),
    /// and shown.
    fn v1_text_to_sign(&self, s: &mut Session, st: &Statement) -> Result<Option<String>> {
        let Some(text) = &self.record.v1_text else {
            return Ok(None);
        };
        let id = self.id;
        let expected = mig_protocol::mig_v1::signed_text(
            st.entries
                .iter()
                .map(|e| (e.name.as_str(), e.sha256.as_str())),
        )?;
        if &expected != text {
            return Err(Error::BadAnswer {
                what: format!("GET manifests/{id}"),
                reason: "the v1 text does not list the statement's entries; not signing".into(),
            });
        }
        s.ui.say("For MIG's Go loaders (v1), the same entries as they verify them:");
        s.ui.say(clean_text(text));
        Ok(Some(text.clone()))
    }

    /// A renewal is signed only when its statement has exactly the entries, and its record the
    /// target, platform and halt rule, of the manifest it renews; the signer is shown so.
    fn check_renewal(&self, s: &mut Session, st: &Statement, renewed: u64) -> Result<()> {
        let id = self.id;
        let path = format!("manifests/{renewed}/statement");
        let bytes = s.api()?.get_bytes(&path, MAX_STATEMENT_BYTES as u64)?;
        let old = Statement::parse(&bytes).map_err(|e| Error::BadAnswer {
            what: format!("GET {path}"),
            reason: e.to_string(),
        })?;
        let raw = s.api()?.get(&format!("manifests/{renewed}"))?;
        let record: ManifestRecord = typed(&raw, &format!("GET manifests/{renewed}"))?;
        let mut diffs = entry_differences(&old.entries, &st.entries);
        if old.platform != st.platform {
            diffs.push(format!(
                "platform {} instead of {}",
                clean(&st.platform.to_string()),
                clean(&old.platform.to_string())
            ));
        }
        if record.target != self.record.target {
            diffs.push("another target".into());
        }
        if record.halt != self.record.halt {
            diffs.push("another halt rule".into());
        }
        if !diffs.is_empty() {
            return Err(Error::BadAnswer {
                what: format!("GET manifests/{id}"),
                reason: format!(
                    "manifest {id} says it renews manifest {renewed}, but differs from it; not \
                     signing:\n  {}",
                    diffs.join("\n  ")
                ),
            });
        }
        s.ui.say(format!(
            "Manifest {id} renews manifest {renewed} (expires {}): every one of its {} entries \
             is identical, byte for byte, and so are its target, platform and halt rule.",
            old.expires,
            st.entries.len()
        ));
        Ok(())
    }

    fn show_statement(&self, s: &mut Session, st: &Statement, bytes: &[u8]) {
        let digest = mig_protocol::Sha256::of(bytes);
        s.ui.say(format!(
            "Statement of manifest {} ({} bytes, sha256 {digest}):",
            self.id,
            bytes.len()
        ));
        s.ui.say(format!("  name:     {}", clean(&st.name)));
        s.ui.say(format!("  serial:   {}", st.serial.get()));
        s.ui.say(format!("  platform: {}", clean(&st.platform.to_string())));
        s.ui.say(format!("  issued:   {}", st.issued));
        s.ui.say(format!("  expires:  {}", st.expires));
        s.ui.say(format!("  target:   {}", clean(&self.record.target)));
        if let Some(renewed) = self.record.renews {
            s.ui.say(format!("  renews:   manifest {renewed}"));
        }
        let signers = if self.record.signers.is_empty() {
            "nobody yet".to_string()
        } else {
            clean(&self.record.signers.join(", "))
        };
        s.ui.say(format!(
            "  status:   {}, signed by {signers}",
            clean(self.record.status.as_str())
        ));
        s.ui.say(format!("  entries ({}):", st.entries.len()));
        s.ui.say_raw(&table::entries(&st.entries));
    }

    /// Writes the archive to `path` (never over an existing file) and checks its entries
    /// against the statement.
    fn fetch(&self, s: &mut Session, path: &Path) -> Result<()> {
        let id = self.id;
        let mut f = crate::newfile::create_new(path)?;
        let written = s
            .api()?
            .download(
                &format!("manifests/{id}/archive"),
                archive::MAX_ARCHIVE,
                &mut f,
            )
            .and_then(|n| {
                f.sync_all()
                    .map(|_| n)
                    .map_err(|e| Error::io("sync", path, e))
            });
        let n = match written {
            Ok(n) => n,
            Err(e) => {
                drop(f);
                let _ = std::fs::remove_file(path);
                return Err(e);
            }
        };
        let entries = archive::entries_of_file(path)?;
        let diffs = archive::differences(&self.record.entries, &entries);
        if !diffs.is_empty() {
            return Err(Error::Archive(format!(
                "the archive written to {} differs from the statement of manifest {id}:\n  {}",
                path.display(),
                diffs.join("\n  ")
            )));
        }
        if s.ui.opts.json {
            s.ui.json(
                &serde_json::json!({"path": path, "bytes": n, "entries": self.raw["entries"]}),
            );
        } else {
            s.ui.say(format!(
                "Archive of manifest {id} written to {} ({n} bytes); its {} entries match the statement.",
                path.display(),
                entries.len()
            ));
        }
        Ok(())
    }
}
