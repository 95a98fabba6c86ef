//! Renewal (docs/design.md §3.2): a new `staged` manifest with the entries, target, platform,
//! halt rule and v1 text of an active one, under a new serial and expiry. No archive is sent
//! and no blob is stored: the new rows name the blobs the renewed manifest names. Signed by the
//! threshold, it is the newest manifest with that target, so selection gives it to every loader
//! that had the renewed one; its entries are identical, so a loader fetches no file. The renewed
//! manifest is then disabled (signing.rs), so it is neither offered nor warned about again.

use super::upload::{insert, valid_days, NewRow, StoredArchive};
use super::{entries, get};
use crate::app::App;
use crate::auth::Caller;
use crate::db::{parsed_column, OptionalExtension};
use crate::error::{Error, Result};
use crate::{halt, params};
use mig_protocol::admin::ManifestRecord;
use mig_protocol::halt::HaltRule;
use mig_protocol::statement::Platform;
use mig_protocol::time::Timestamp;
use mig_protocol::ManifestStatus;

/// What a renewal copies from the manifest it renews.
struct Renewed {
    status: ManifestStatus,
    name: String,
    target: String,
    platform: Platform,
    halt: Option<HaltRule>,
    archive_sha256: String,
    archive_size: u64,
    v1_text: Option<String>,
}

/// Makes the renewal of manifest `id`, valid for `asked` days (`[manifest] validdays` when
/// absent); only an active manifest is renewed.
pub fn renew(app: &App, caller: &Caller, id: u64, asked: Option<u32>) -> Result<ManifestRecord> {
    let valid = valid_days(app, asked)?;
    let now = Timestamp::now();
    let new_id = app.db.with(|conn| {
        let tx = conn
            .transaction()
            .map_err(Error::db("renewing a manifest"))?;
        let old = tx
            .query_row(
                "SELECT status, name, target, os, arch, halt_after, halt_min, archive_sha256,
                   archive_size, v1_text
                 FROM manifests WHERE id = ?1",
                params![id as i64],
                |r| {
                    Ok(Renewed {
                        status: parsed_column(r, 0)?,
                        name: r.get(1)?,
                        target: r.get(2)?,
                        platform: Platform {
                            os: r.get(3)?,
                            arch: r.get(4)?,
                        },
                        halt: halt::stored_rule(r, 5)?,
                        archive_sha256: r.get(7)?,
                        archive_size: r.get::<_, i64>(8)?.max(0) as u64,
                        v1_text: r.get(9)?,
                    })
                },
            )
            .optional()
            .map_err(Error::db("reading the manifest to renew"))?
            .ok_or_else(|| Error::NotFound(format!("manifest {id} does not exist")))?;
        if old.status != ManifestStatus::Active {
            return Err(Error::Conflict(format!(
                "manifest {id} is {}: only an active manifest is renewed (resume a halted one \
                 first; a staged one is signed as it is)",
                old.status.as_str()
            )));
        }
        let archive = StoredArchive {
            entries: entries(&tx, id)?,
            sha256: mig_protocol::Sha256::parse(&old.archive_sha256).map_err(|e| {
                Error::Internal(format!("manifest {id}: stored archive sha256: {e}"))
            })?,
            size: old.archive_size,
        };
        let new_id = insert(
            &tx,
            &NewRow {
                name: &old.name,
                target: &old.target,
                status: ManifestStatus::Staged,
                platform: &old.platform,
                created: now,
                issued: now,
                expires: now.plus(valid),
                archive: &archive,
                creator: caller.id,
                halt: old.halt,
                v1_text: old.v1_text.as_deref(),
                renews: Some(id),
            },
        )?;
        tx.commit().map_err(Error::db("renewing a manifest"))?;
        Ok(new_id)
    })?;
    app.db.with(|c| get(c, new_id))
}
