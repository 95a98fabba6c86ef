//! Root: which keys and threshold count this run (docs/design.md §4.21). The built-in root is
//! version 1; every root accepted since is kept as one file per version in the state directory
//! (`mig-loader.roots/<version>`, the API's answer as received) and verified again from the
//! built-in root on every run, so a file changed on disk can never add a key. Then the API is
//! asked for the next version until it has none, at most
//! [`mig_protocol::root::MAX_STEPS_PER_RUN`] per run.

use crate::error::{Error, Result};
use crate::fsutil::{atomic_write, read_small, remove_if_present};
use crate::limits::Limits;
use crate::log;
use mig_http::{Client, Method};
use mig_protocol::loader::{LoaderKey, LOADER_KEY_HEADER};
use mig_protocol::root::{Accepted, Root, Signed, MAX_RESPONSE_BYTES, MAX_STEPS_PER_RUN, PATH};
use std::path::Path;

/// The file of root `version` in `dir`.
fn file(dir: &Path, version: u64) -> std::path::PathBuf {
    dir.join(version.to_string())
}

/// The newest root the files in `dir` reach from `built_in`, each verified by
/// [`Root::accept_next`]. A file that does not verify is refused with a warning naming it, and
/// it and every later file are removed: the run goes on with the last root that verified (the
/// built-in one when the first file fails), never with fewer checks, and the walk fetches the
/// rest again.
pub fn load(dir: &Path, built_in: Root) -> Result<Root> {
    let mut root = built_in;
    loop {
        let next = root.version + 1;
        let path = file(dir, next);
        let Some(text) = read_small(&path, MAX_RESPONSE_BYTES)? else {
            return Ok(root);
        };
        let accepted = Signed::parse(&path.display().to_string(), text.as_bytes())
            .and_then(|signed| root.accept_next(&signed));
        match accepted {
            Ok(a) => root = a.root,
            Err(e) => {
                log::warn(format!(
                    "refusing the root of trust kept in {}: {e}; using root {} and fetching the \
                     rest of the chain again",
                    path.display(),
                    root.version
                ));
                remove_from(dir, next)?;
                return Ok(root);
            }
        }
    }
}

/// Removes the files of `version` and every later one.
fn remove_from(dir: &Path, version: u64) -> Result<()> {
    let mut v = version;
    while remove_if_present(&file(dir, v))? {
        v += 1;
    }
    Ok(())
}

/// Why a walk stopped without reaching the end of the chain.
#[derive(Debug)]
pub enum Stopped {
    /// The API could not be asked (network, a status other than 404, a malformed answer).
    Request(Error),
    /// The API offered a root that does not count, or the chain is longer than one run walks.
    Refused(Error),
}

/// Asks `GET loader/root/<version+1>` until the API answers 404, accepting each root and
/// keeping it in `dir` before asking for the next. Returns the last root: the one statements are
/// verified with. Stops, after keeping what it accepted, when the chain goes on past
/// [`MAX_STEPS_PER_RUN`] roots: no statement is believed until a run reaches the end of the
/// chain, so a key removed further on never counts again (docs/design.md §4.21).
pub fn walk(
    api: &Client,
    key: &LoaderKey,
    dir: &Path,
    mut root: Root,
    limits: &Limits,
) -> std::result::Result<Root, Stopped> {
    let start = root.version;
    for _ in 0..MAX_STEPS_PER_RUN {
        let next = root.version + 1;
        let Some(signed) = fetch(api, key, next, limits).map_err(Stopped::Request)? else {
            if root.version > start {
                log::step(format!("root of trust is now version {}", root.version));
            }
            return Ok(root);
        };
        let Accepted {
            root: accepted,
            by_previous,
            by_itself,
            ..
        } = root
            .accept_next(&signed)
            .map_err(|e| Stopped::Refused(e.into()))?;
        let body = serde_json::to_vec(&signed)
            .map_err(|e| Stopped::Request(Error::Config(format!("root {next}: {e}"))))?;
        crate::state::ensure_dir(dir)
            .and_then(|()| atomic_write(&file(dir, next), &body))
            .map_err(Stopped::Request)?;
        log::step(format!(
            "accepted root of trust {next}: signed by {} of root {} ({}) and {} of its own ({}); \
             threshold {} of {} keys",
            by_previous.valid.len(),
            root.version,
            by_previous.valid.join(", "),
            by_itself.valid.len(),
            by_itself.valid.join(", "),
            accepted.threshold,
            accepted.keyring.len()
        ));
        root = accepted;
    }
    Err(Stopped::Refused(Error::Config(format!(
        "the root of trust chain goes on past root {}: walked {MAX_STEPS_PER_RUN} roots this run, \
         the most one run walks (docs/design.md §4.21); no statement is believed until a run \
         reaches the end of the chain, the next run continues from root {}",
        root.version, root.version
    ))))
}

/// One root from the API; `None` when it has no such version (404).
fn fetch(api: &Client, key: &LoaderKey, version: u64, limits: &Limits) -> Result<Option<Signed>> {
    let path = format!("{PATH}{version}");
    let resp = api.request(
        Method::Get,
        &path,
        &[(LOADER_KEY_HEADER, key.as_str())],
        None,
    )?;
    if resp.status == 404 {
        return Ok(None);
    }
    let resp = resp.error_for_status(limits.error_body)?;
    let url = resp.url().to_string();
    let body = resp.read_capped(MAX_RESPONSE_BYTES)?;
    Signed::parse(&format!("root {version} from {url}"), &body)
        .map(Some)
        .map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig_protocol::root::{Document, RootKey};
    use mig_protocol::signature::{generate_key, sign_detached, Keyring};
    use mig_protocol::time::Timestamp;

    /// Root 1 of keys a and b (threshold 1), then roots 2 and 3 of key b alone.
    #[test]
    fn kept_roots_are_verified_again_and_a_changed_file_falls_back_to_the_last_that_verifies() {
        let (a, a_pub) = generate_key("a").unwrap();
        let (b, b_pub) = generate_key("b").unwrap();
        let built_in = || {
            Root::built_in(
                Keyring::from_armored([("a", a_pub.as_str()), ("b", b_pub.as_str())]).unwrap(),
                1,
            )
            .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let roots = dir.path().join("mig-loader.roots");
        std::fs::create_dir(&roots).unwrap();
        let doc = |version| {
            Document {
                version,
                expires: Timestamp(4_000_000_000),
                threshold: 1,
                keys: vec![RootKey::from_armored("b", &b_pub).unwrap()],
            }
            .to_text()
            .unwrap()
        };
        let put = |version: u64, by: &pgp::composed::SignedSecretKey| {
            let text = doc(version);
            let signed = Signed {
                signatures: vec![sign_detached(by, "", text.as_bytes()).unwrap()],
                document: text,
            };
            std::fs::write(file(&roots, version), serde_json::to_vec(&signed).unwrap()).unwrap();
        };
        assert_eq!(load(&roots, built_in()).unwrap().version, 1);
        put(2, &b);
        put(3, &b);
        let root = load(&roots, built_in()).unwrap();
        assert_eq!((root.version, root.keyring.len()), (3, 1));
        // Root 3 re-signed by a, whom root 2 removed: refused, and root 2 is the one used.
        put(3, &a);
        put(4, &b);
        let root = load(&roots, built_in()).unwrap();
        assert_eq!(root.version, 2);
        assert!(file(&roots, 2).exists());
        assert!(!file(&roots, 3).exists() && !file(&roots, 4).exists());
        // A file that is not a root at all: the built-in root.
        std::fs::write(file(&roots, 2), b"garbage").unwrap();
        assert_eq!(load(&roots, built_in()).unwrap().version, 1);
        assert!(!file(&roots, 2).exists());
    }
}
