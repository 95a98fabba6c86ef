//! What administrator authentication (admin_auth.rs) checks with and keeps (docs/design.md §3.8):
//!
//! - `X-PGPAUTHORIZATION: 2;<ts>;<nonce>;<audience>;<de-armored signature over
//!   "2;<ts>;<nonce>;<audience>\n">`, the audience this API's (App::audience), verified against the keys of *active* investigators read from the database on every
//!   request (a disabled investigator is refused at once), timestamp within ±tokenduration, and
//!   every (key, nonce) remembered for 2×tokenduration in the database, so a token cannot be
//!   replayed: not after a restart, nor to another mig-api process on the same database.
//! - `X-MIGAPIKEY: <40 alphanumerics>`: looked up by its 8-character prefix, PBKDF2-checked in
//!   constant time (see `keys`).
//! - Permissions: MIG's bits; every endpoint checks its own bit (docs/design.md §3.9).

use crate::config::TokenBounds;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::investigators;
use crate::params;
use mig_protocol::signature::Keyring;
use std::sync::Mutex;

/// Who may take the reserve of the nonce pool (`[authentication] reservedtokens`): the bits that
/// stop something in an incident (disable a manifest, a loader, an investigator). docs/design.md
/// §3.8: investigators who can only read or search cannot lock these out by filling the pool.
pub const RESERVE_PERMISSIONS: [Perm; 3] = [
    Perm::ManifestStatus,
    Perm::LoaderStatus,
    Perm::InvestigatorUpdate,
];

/// What a route requires: one of MIG's permission bits.
pub use mig_protocol::Permission as Perm;

/// Every bit: what the "authentication disabled" caller holds.
pub fn all_permissions() -> u64 {
    Perm::all_bits()
}

/// An authenticated administrator.
#[derive(Debug, Clone)]
pub struct Caller {
    /// 0 when authentication is disabled.
    pub id: u64,
    pub name: String,
    pub perms: u64,
}

impl Caller {
    /// 403 naming the bit when the caller lacks it.
    pub fn require(&self, p: Perm) -> Result<()> {
        if p.granted_by(self.perms) {
            Ok(())
        } else {
            Err(Error::forbidden(
                "permission",
                format!(
                    "investigator {:?} (id {}) lacks the permission {}",
                    self.name,
                    self.id,
                    p.name()
                ),
            ))
        }
    }

    /// Label for the request log.
    pub fn label(&self) -> String {
        format!("investigator:{}", self.id)
    }
}

/// `(fingerprint, nonce)` of every token accepted, kept in the database (`token_nonces`) until
/// it may be forgotten: its timestamp is then outside the window anyway. While the disk under
/// the database is full, nonces are kept in this process's memory instead, so administrators can
/// still read (docs/api.md: a full disk stops writes, not reads); a token is then refused on its
/// replay to this process, and only to it. Either way [`admit`] bounds what is kept.
pub struct NonceCache {
    keep_secs: u64,
    bounds: TokenBounds,
    in_memory: Mutex<std::collections::HashMap<(String, String), u64>>,
}

fn replayed(fingerprint: &str, nonce: &str) -> Error {
    Error::unauthorized(
        "token_replayed",
        "token replayed",
        format!("nonce {nonce:?} of {fingerprint} was already used"),
    )
}

/// Whether one more nonce of `who` may be kept when `kept` are kept in all and `kept_by_who` of
/// them are its own (docs/design.md §3.8): each investigator has its own bound, and the last
/// `reserved` of the pool are only for those holding one of [`RESERVE_PERMISSIONS`].
fn admit(
    bounds: &TokenBounds,
    who: &investigators::Active,
    kept: u64,
    kept_by_who: u64,
) -> Result<()> {
    if kept_by_who >= bounds.per_investigator {
        return Err(Error::TooMany {
            reason: "investigator_token_bound",
            // Its oldest tokens are forgotten one by one within 2×tokenduration: a minute is
            // a fair first wait.
            retry_after: 60,
            message: format!(
                "investigator {:?} (id {}) has {kept_by_who} live tokens, its bound \
                 ([authentication] maxtokensperinvestigator = {}): retry when older ones have \
                 expired (2×tokenduration), or use an API key for scripts",
                who.name, who.id, bounds.per_investigator
            ),
        });
    }
    if kept >= bounds.total {
        return Err(Error::Unavailable(format!(
            "all {} live tokens of this API are taken ([authentication] maxtokens); \
             retry later",
            bounds.total
        )));
    }
    let open = bounds.total - bounds.reserved;
    let privileged = RESERVE_PERMISSIONS.iter().any(|p| p.granted_by(who.perms));
    if kept >= open && !privileged {
        let names: Vec<&str> = RESERVE_PERMISSIONS.iter().map(|p| p.name()).collect();
        return Err(Error::Unavailable(format!(
            "{kept} of this API's {} live tokens are taken; the last {} ([authentication] \
             reservedtokens) are kept for investigators holding {}, which investigator {:?} \
             (id {}) does not: retry later",
            bounds.total,
            bounds.reserved,
            names.join(" or "),
            who.name,
            who.id
        )));
    }
    Ok(())
}

impl NonceCache {
    pub fn new(keep_secs: u64, bounds: TokenBounds) -> Self {
        NonceCache {
            keep_secs,
            bounds,
            in_memory: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Records a nonce of `who`, whose key is `fingerprint`; an error when it was seen before
    /// or [`admit`] refuses it.
    pub fn check_and_insert(
        &self,
        db: &crate::db::Db,
        fingerprint: &str,
        who: &investigators::Active,
        nonce: &str,
        now: u64,
    ) -> Result<()> {
        let mut memory = self
            .in_memory
            .lock()
            .map_err(|_| Error::Internal("nonce memory lock poisoned".into()))?;
        memory.retain(|_, until| *until >= now);
        let key = (fingerprint.to_string(), nonce.to_string());
        if memory.contains_key(&key) {
            return Err(replayed(fingerprint, nonce));
        }
        match self.remember(db, fingerprint, who, nonce, now) {
            Err(e) if e.is_storage_full() => {
                let own = memory.keys().filter(|(f, _)| f == fingerprint).count();
                admit(&self.bounds, who, memory.len() as u64, own as u64)?;
                crate::logging::event(
                    "warn",
                    "nonce_in_memory",
                    &[("reason", &e), ("fingerprint", &fingerprint)],
                );
                memory.insert(key, now.saturating_add(self.keep_secs));
                Ok(())
            }
            other => other,
        }
    }

    /// One immediate transaction, so two processes cannot both accept the same token.
    fn remember(
        &self,
        db: &crate::db::Db,
        fingerprint: &str,
        who: &investigators::Active,
        nonce: &str,
        now: u64,
    ) -> Result<()> {
        let what = || Error::db("remembering a token's nonce");
        db.with(|c| {
            let tx = c.transaction().map_err(what())?;
            tx.execute(
                "DELETE FROM token_nonces WHERE until < ?1",
                params![now as i64],
            )
            .map_err(what())?;
            let kept: i64 = tx
                .query_row("SELECT COUNT(*) FROM token_nonces", [], |r| r.get(0))
                .map_err(what())?;
            let own: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM token_nonces WHERE fingerprint = ?1",
                    params![fingerprint],
                    |r| r.get(0),
                )
                .map_err(what())?;
            admit(&self.bounds, who, kept as u64, own as u64)?;
            let added = tx
                .execute(
                    "INSERT INTO token_nonces (fingerprint, nonce, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (fingerprint, nonce) DO NOTHING",
                    params![
                        fingerprint,
                        nonce,
                        now.saturating_add(self.keep_secs) as i64
                    ],
                )
                .map_err(what())?;
            if added == 0 {
                return Err(replayed(fingerprint, nonce));
            }
            tx.commit().map_err(what())
        })
    }
}

/// (id, fingerprint) of each active investigator, in id order.
type ActiveSet = Vec<(u64, String)>;

/// The keyring of active investigators, rebuilt when the set of (id, fingerprint) changes.
#[derive(Default)]
pub struct KeyringCache {
    cached: Mutex<Option<(ActiveSet, Keyring)>>,
}

impl KeyringCache {
    /// The keyring for exactly the active investigators `active` (id, fingerprint).
    pub fn get(&self, db: &Db, active: &[(u64, String)]) -> Result<Keyring> {
        if let Ok(c) = self.cached.lock() {
            if let Some((ids, ring)) = c.as_ref() {
                if ids == active {
                    return Ok(ring.clone());
                }
            }
        }
        let keys = db.with(|c| investigators::public_keys(c, active))?;
        let ring = Keyring::from_keys(keys);
        if let Ok(mut c) = self.cached.lock() {
            *c = Some((active.to_vec(), ring.clone()));
        }
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn each_investigator_has_its_own_bound_and_the_reserve_is_for_those_who_can_stop_things() {
        let bounds = TokenBounds {
            total: 10,
            per_investigator: 4,
            reserved: 3,
        };
        let reader = investigators::Active {
            id: 7,
            name: "reader".into(),
            perms: Perm::Search.bit(),
        };
        let admin = investigators::Active {
            id: 1,
            name: "admin".into(),
            perms: Perm::ManifestStatus.bit(),
        };
        admit(&bounds, &reader, 0, 3).unwrap();
        let e = admit(&bounds, &reader, 4, 4).unwrap_err();
        assert_eq!(e.status(), rocket::http::Status::TooManyRequests);
        assert!(e.to_string().contains("\"reader\" (id 7)"), "{e}");
        admit(&bounds, &reader, 6, 0).unwrap();
        let e = admit(&bounds, &reader, 7, 0).unwrap_err();
        assert_eq!(e.status(), rocket::http::Status::ServiceUnavailable);
        assert!(e.to_string().contains("reservedtokens"), "{e}");
        admit(&bounds, &admin, 9, 0).unwrap();
        let e = admit(&bounds, &admin, 10, 0).unwrap_err();
        assert!(e.to_string().contains("maxtokens"), "{e}");
        let e = admit(&bounds, &admin, 5, 4).unwrap_err();
        assert!(e.to_string().contains("maxtokensperinvestigator"), "{e}");
    }

    #[test]
    fn all_permissions_include_manifest_status() {
        // docs/design.md §3.9: MIG's CheckPermission forgot this one.
        let c = Caller {
            id: 1,
            name: "a".into(),
            perms: all_permissions(),
        };
        c.require(Perm::ManifestStatus).unwrap();
        let c = Caller {
            perms: all_permissions() & !Perm::ManifestStatus.bit(),
            ..c
        };
        let e = c.require(Perm::ManifestStatus).unwrap_err().to_string();
        assert!(e.contains("PermManifestStatus"), "{e}");
    }

    #[test]
    fn a_nonce_is_accepted_once_by_every_process_and_forgotten_after_its_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.db");
        // Two handles on one file: two mig-api processes, or one before and after a restart.
        let (a, b) = (
            crate::db::Db::open_sqlite(&path).unwrap(),
            crate::db::Db::open_sqlite(&path).unwrap(),
        );
        let n = NonceCache::new(1200, Config::default().tokens);
        let who = investigators::Active {
            id: 1,
            name: "a".into(),
            perms: 0,
        };
        n.check_and_insert(&a, "FP", &who, "abc", 1000).unwrap();
        let e = n.check_and_insert(&b, "FP", &who, "abc", 1001).unwrap_err();
        assert_eq!(e.reason(), "token_replayed");
        let e = n.check_and_insert(&a, "FP", &who, "abc", 2200).unwrap_err();
        assert_eq!(e.reason(), "token_replayed", "kept until its window ends");
        n.check_and_insert(&b, "OTHER", &who, "abc", 1001).unwrap();
        n.check_and_insert(&b, "FP", &who, "abc", 2201).unwrap();
        let kept: i64 = a
            .with(|c| {
                c.query_row("SELECT COUNT(*) FROM token_nonces", [], |r| r.get(0))
                    .map_err(Error::db("x"))
            })
            .unwrap();
        assert_eq!(
            kept, 2,
            "the expired entry went before the nonce was taken again"
        );
    }
}
