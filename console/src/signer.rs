//! The investigator's signing identity: the local `gpg` (gpg-agent, pinentry, smartcards) or
//! an armored secret key file. Both make armored detached signatures over exact bytes.

use crate::config::Identity;
use crate::error::{Error, Result};
use crate::process;
use pgp::composed::SignedSecretKey;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Environment variable holding the key file's passphrase, for automation.
pub const ENV_PASSPHRASE: &str = "MIG_PASSPHRASE";
/// The largest secret key file read.
const MAX_KEY_FILE: u64 = 256 * 1024;
/// How long gpg may take (a smartcard may wait for a touch or a PIN).
const GPG_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest signature accepted from gpg.
const MAX_SIGNATURE: usize = 16 * 1024;

/// Asks for a passphrase when one is needed; `None` when no one can be asked.
pub type PassphrasePrompt<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A ready signer.
pub enum Signer {
    Gpg {
        keyid: String,
        home: Option<PathBuf>,
        program: String,
    },
    KeyFile {
        path: PathBuf,
        key: Box<SignedSecretKey>,
        passphrase: String,
    },
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the passphrase or the key material.
        write!(f, "Signer({})", self.describe())
    }
}

impl Signer {
    /// Prepares `identity`: a key file is read and parsed now, and its passphrase settled
    /// (`MIG_PASSPHRASE`, else `prompt`, else empty) so every later signature is silent.
    pub fn new(identity: &Identity, prompt: PassphrasePrompt<'_>) -> Result<Self> {
        match identity {
            Identity::Gpg {
                keyid,
                home,
                program,
            } => Ok(Signer::Gpg {
                keyid: keyid.clone(),
                home: home.clone(),
                program: program.clone(),
            }),
            Identity::KeyFile { path } => {
                let armored = read_key_file(path)?;
                let key = mig_protocol::signature::parse_secret_key(
                    &path.display().to_string(),
                    &armored,
                )?;
                let encrypted = key.primary_key.secret_params().is_encrypted();
                let passphrase = match std::env::var(ENV_PASSPHRASE) {
                    Ok(p) => p,
                    Err(_) if encrypted => prompt(&format!("passphrase for {}: ", path.display()))
                        .ok_or_else(|| {
                            Error::Sign(format!(
                                "{} is protected by a passphrase: set {ENV_PASSPHRASE} or run from a terminal",
                                path.display()
                            ))
                        })?,
                    Err(_) => String::new(),
                };
                Ok(Signer::KeyFile {
                    path: path.clone(),
                    key: Box::new(key),
                    passphrase,
                })
            }
        }
    }

    /// Who signs, for messages.
    pub fn describe(&self) -> String {
        match self {
            Signer::Gpg { keyid, .. } => format!("gpg key {keyid}"),
            Signer::KeyFile { path, key, .. } => format!(
                "key file {} ({})",
                path.display(),
                mig_protocol::signature::fingerprint_hex(&key.primary_key)
            ),
        }
    }

    /// An armored detached signature over exactly `data`, refused when its hash would make
    /// every verifier ignore it (docs/design.md §4.2): gpg picks the hash from its configuration
    /// and the key's preferences.
    pub fn sign(&self, data: &[u8]) -> Result<String> {
        let sig = self.sign_unchecked(data)?;
        mig_protocol::signature::check_strength(&sig).map_err(|e| match e {
            mig_protocol::Error::Sign(why) => Error::Sign(format!(
                "{} made a signature that would not count ({why}): set \
                 `personal-digest-preferences SHA512 SHA384 SHA256` in gpg.conf",
                self.describe()
            )),
            other => other.into(),
        })?;
        Ok(sig)
    }

    fn sign_unchecked(&self, data: &[u8]) -> Result<String> {
        match self {
            Signer::KeyFile {
                path,
                key,
                passphrase,
            } => mig_protocol::signature::sign_detached(key, passphrase, data).map_err(|e| {
                Error::Sign(format!(
                    "with {}: {e} (is {ENV_PASSPHRASE} right?)",
                    path.display()
                ))
            }),
            Signer::Gpg {
                keyid,
                home,
                program,
            } => gpg_sign(program, home.as_deref(), keyid, data),
        }
    }
}

fn read_key_file(path: &std::path::Path) -> Result<String> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("open key file", path, e))?;
    let mut text = String::new();
    f.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::io("read key file", path, e))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(Error::TooLarge {
            what: format!("key file {}", path.display()),
            limit: MAX_KEY_FILE,
        });
    }
    Ok(text)
}

/// `gpg --batch --yes --armor --detach-sign --local-user KEYID`, data on stdin.
fn gpg_sign(
    program: &str,
    home: Option<&std::path::Path>,
    keyid: &str,
    data: &[u8],
) -> Result<String> {
    let mut cmd = Command::new(program);
    if let Some(h) = home {
        cmd.arg("--homedir").arg(h);
    }
    cmd.args([
        "--batch",
        "--yes",
        "--armor",
        "--detach-sign",
        "--local-user",
        keyid,
    ]);
    let what = format!("{program} --detach-sign --local-user {keyid}");
    let done =
        process::run(cmd, data, GPG_TIMEOUT).map_err(|e| Error::Sign(format!("{what}: {e}")))?;
    let stderr = String::from_utf8_lossy(&done.stderr).trim().to_string();
    if !done.status.success() {
        return Err(Error::Sign(format!(
            "{what} failed ({}): {stderr}",
            done.status
        )));
    }
    let out = String::from_utf8(done.stdout)
        .map_err(|_| Error::Sign(format!("{what} wrote something that is not text")))?;
    if out.len() > MAX_SIGNATURE
        || !out
            .trim_start()
            .starts_with("-----BEGIN PGP SIGNATURE-----")
    {
        return Err(Error::Sign(format!(
            "{what} did not write an armored signature; stderr: {stderr}"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig_protocol::signature::{armor_secret_key, generate_key, verify, Keyring};

    fn no_prompt(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_key_file_signs_exact_bytes_that_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (sec, public) = generate_key("t <t@example.org>").unwrap();
        let path = dir.path().join("t.sec.asc");
        std::fs::write(&path, armor_secret_key(&sec).unwrap()).unwrap();
        let s = Signer::new(&Identity::KeyFile { path: path.clone() }, &no_prompt).unwrap();
        assert!(s.describe().contains("t.sec.asc"));
        let sig = s.sign(b"1;2026-11-30T04:33:36Z;abc\n").unwrap();
        let ring = Keyring::from_armored([("t", public.as_str())]).unwrap();
        assert_eq!(
            verify(
                &ring,
                b"1;2026-11-30T04:33:36Z;abc\n",
                std::slice::from_ref(&sig)
            )
            .valid
            .len(),
            1
        );
        assert!(verify(&ring, b"1;2026-11-30T04:33:36Z;abd\n", &[sig])
            .valid
            .is_empty());
    }

    #[test]
    fn junk_and_missing_key_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.asc");
        std::fs::write(&path, "not a key").unwrap();
        let e = Signer::new(&Identity::KeyFile { path }, &no_prompt)
            .unwrap_err()
            .to_string();
        assert!(e.contains("junk.asc"), "{e}");
        let e = Signer::new(
            &Identity::KeyFile {
                path: dir.path().join("absent.asc"),
            },
            &no_prompt,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("absent.asc"), "{e}");
    }

    #[test]
    fn a_failing_gpg_shows_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let s = Signer::new(
            &Identity::Gpg {
                keyid: "0000000000000000000000000000000000000000".into(),
                home: Some(dir.path().to_path_buf()),
                program: "gpg".into(),
            },
            &no_prompt,
        )
        .unwrap();
        let e = s.sign(b"data").unwrap_err().to_string();
        assert!(
            e.contains("0000000000000000000000000000000000000000"),
            "{e}"
        );
        assert!(e.contains("failed"), "{e}");
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(dir.path())
            .args(["--kill", "all"])
            .status();
    }
}
