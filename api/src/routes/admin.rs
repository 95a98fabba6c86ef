//! Administrator endpoints (docs/api.md). Each handler authenticates, checks its own permission
//! bit, then reads its body: nobody unauthenticated makes the API read a large upload.

use super::{
    created, ok, parse_id, parse_json, read_body, Admin, Answer, ContentLength, FileBody, OpenFile,
    RangeHeaders,
};
use crate::app::App;
use crate::error::{Error, Result};
use crate::{investigators, loaders, manifests, plugins, roots};
use base64::Engine as _;
use mig_protocol::admin::{
    parse_permissions, ApiKeyIssued, Attributes, ExpectEnv, HaltChange, InvestigatorRecord,
    LoaderKeyIssued, LoaderRecord, ManifestRecord, NewInvestigator, NewLoader, NewManifest,
    NewPlugin, NewSignature, PermissionChange, PluginRecord, StatusChange,
};
use mig_protocol::root::{NewRoot, NewRootSignature, RootRecord};
use mig_protocol::time::Timestamp;
use mig_protocol::Permission;
use rocket::data::Data;
use rocket::http::{ContentType, Status};
use rocket::serde::json::{Json, Value};
use rocket::{delete, get, post, routes, Route, State};
use std::collections::HashMap;

/// Largest body of the small JSON endpoints (status, signature, permissions…).
const SMALL_BODY: u64 = 64 * 1024;
/// Largest `POST roots` body: the largest document, JSON-escaped (each newline two bytes).
const ROOT_BODY: u64 = 2 * mig_protocol::root::MAX_DOCUMENT_BYTES as u64 + 1024;
/// Default and largest search `limit`.
const SEARCH_DEFAULT: u64 = 100;
const SEARCH_MAX: u64 = 1000;

pub fn routes() -> Vec<Route> {
    routes![
        health,
        ip,
        metrics,
        manifest_create,
        manifest_get,
        manifest_statement,
        manifest_archive,
        manifest_sign,
        manifest_status,
        manifest_halt,
        manifest_renew,
        manifest_loaders,
        manifest_rollout,
        adoption,
        rollout,
        freshness,
        search,
        loader_create,
        loader_get,
        loader_reports,
        loader_status,
        loader_expectenv,
        loader_attributes,
        loader_key,
        investigator_create,
        investigator_me,
        investigator_get,
        investigator_permissions,
        investigator_status,
        investigator_apikey,
        plugin_list,
        plugin_upload,
        plugin_delete,
        root_list,
        root_get,
        root_propose,
        root_sign,
    ]
}

/// The same metrics at `/metrics`, where a Prometheus scrape looks by default.
pub fn root_routes() -> Vec<Route> {
    routes![metrics]
}

async fn small_json<T: serde::de::DeserializeOwned>(
    data: Data<'_>,
    len: ContentLength,
    what: &str,
) -> Result<T> {
    let body = read_body(data, len, SMALL_BODY, what).await?;
    parse_json(&body, what)
}

/// MIG's `ip` route: the address the request came from, for the loader's optional public-IP
/// discovery. It is the TCP peer of the public socket (behind a reverse proxy, the proxy): the
/// only header trusted is the one the front sets and Rocket accepts only with its secret
/// (routes/front_only.rs).
#[get("/ip")]
fn ip(remote: std::net::IpAddr) -> String {
    remote.to_string()
}

#[get("/health")]
async fn health(app: &State<App>) -> Answer<Value> {
    app.run(|a| {
        a.db.with(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(Error::db("health check"))
        })
    })
    .await?;
    ok(serde_json::json!({"status": "ok"}))
}

/// Serials `/metrics` shows loaders on: the newest ones, a bounded label set.
const METRICS_SERIALS: i64 = 20;

#[get("/metrics")]
async fn metrics(app: &State<App>) -> Result<(ContentType, String)> {
    let now = Timestamp::now();
    let (fleet, expiring) = app
        .run(move |a| {
            a.db.with(|c| {
                Ok((
                    crate::reports::by_serial(c, METRICS_SERIALS)?,
                    crate::expiry::listed(c, now, None)?,
                ))
            })
        })
        .await?;
    Ok((
        ContentType::new("text", "plain").with_params(("version", "0.0.4")),
        app.metrics.render(
            &app.engine.stats(),
            &[("poll", app.poll.stats()), ("apikey", app.api_keys.stats())],
            &fleet,
            &expiring,
            &freshness_state(app),
            now,
        ),
    ))
}

/// The freshness key as this replica holds it, and the signatures it hands out.
fn freshness_state(app: &App) -> mig_protocol::admin::FreshnessState {
    mig_protocol::admin::FreshnessState {
        fingerprint: app.freshness.as_ref().map(|f| f.fingerprint().to_string()),
        lifetime: app.freshness.as_ref().map_or(0, |f| f.lifetime()),
        signatures: app.poll.signatures(),
    }
}

/// `GET freshness`: the online freshness key's state (docs/design.md §4.20), for
/// `mig-console status`.
#[get("/freshness")]
async fn freshness(app: &State<App>, auth: Admin) -> Answer<mig_protocol::admin::FreshnessState> {
    auth.require(Permission::ManifestLoaders)?;
    ok(freshness_state(app))
}

// ---- roots of trust (roots.rs) ----

#[get("/roots")]
async fn root_list(app: &State<App>, auth: Admin) -> Answer<Vec<RootRecord>> {
    auth.require(Permission::Manifest)?;
    ok(app.run(move |a| a.db.with(|c| roots::list(c))).await?)
}

#[get("/roots/<version>")]
async fn root_get(app: &State<App>, auth: Admin, version: &str) -> Answer<RootRecord> {
    auth.require(Permission::Manifest)?;
    let version = parse_id("root", version)?;
    ok(app
        .run(move |a| a.db.with(|c| roots::get(c, version)))
        .await?)
}

#[post("/roots", data = "<data>")]
async fn root_propose(
    app: &State<App>,
    auth: Admin,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<RootRecord> {
    auth.require(Permission::ManifestNew)?;
    let body = read_body(data, len, ROOT_BODY, "NewRoot").await?;
    let new: NewRoot = parse_json(&body, "NewRoot")?;
    created(app.run(move |a| roots::propose(a, &new)).await?)
}

#[post("/roots/<version>/signatures", data = "<data>")]
async fn root_sign(
    app: &State<App>,
    auth: Admin,
    version: &str,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<RootRecord> {
    auth.require(Permission::ManifestSign)?;
    let version = parse_id("root", version)?;
    let sig: NewRootSignature = small_json(data, len, "NewRootSignature").await?;
    ok(app.run(move |a| roots::sign(a, version, &sig)).await?)
}

// ---- manifests ----

#[post("/manifests", data = "<data>")]
async fn manifest_create(
    app: &State<App>,
    auth: Admin,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<ManifestRecord> {
    let caller = auth.require(Permission::ManifestNew)?;
    let body = read_body(data, len, app.cfg.limits.upload, "manifest upload").await?;
    let rec = app
        .run(move |a| {
            let req: NewManifest = parse_json(&body, "NewManifest")?;
            drop(body);
            manifests::create(a, &caller, req)
        })
        .await?;
    created(rec)
}

#[get("/manifests/<id>")]
async fn manifest_get(app: &State<App>, auth: Admin, id: &str) -> Answer<ManifestRecord> {
    auth.require(Permission::Manifest)?;
    let id = parse_id("manifest", id)?;
    ok(app
        .run(move |a| a.db.with(|c| manifests::get(c, id)))
        .await?)
}

#[get("/manifests/<id>/statement")]
async fn manifest_statement(
    app: &State<App>,
    auth: Admin,
    id: &str,
) -> Result<(ContentType, String)> {
    auth.require(Permission::Manifest)?;
    let id = parse_id("manifest", id)?;
    let m = app
        .run(move |a| a.db.with(|c| manifests::get(c, id)))
        .await?;
    Ok((ContentType::Plain, m.statement))
}

#[get("/manifests/<id>/archive")]
async fn manifest_archive(
    app: &State<App>,
    auth: Admin,
    id: &str,
    ranges: RangeHeaders,
) -> Result<OpenFile> {
    auth.require(Permission::Manifest)?;
    let id = parse_id("manifest", id)?;
    app.run(move |a| {
        let sha = a.db.with(|c| manifests::archive_sha256(c, id))?;
        let path = crate::blobs::local(&a.blobs, &a.db, &sha)?;
        let size = std::fs::metadata(&path)
            .map_err(Error::io("reading metadata of", &path))?
            .len();
        FileBody::new(path, size, ContentType::GZIP)
            // The archive holds the agent key and configuration: never cacheable.
            .content_addressed(&sha, &ranges, true)
            .attachment(&format!("manifest-{id}.tar.gz"))
            .open()
    })
    .await
}

#[post("/manifests/<id>/signatures", data = "<data>")]
async fn manifest_sign(
    app: &State<App>,
    auth: Admin,
    id: &str,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<ManifestRecord> {
    let caller = auth.require(Permission::ManifestSign)?;
    let id = parse_id("manifest", id)?;
    let sig: NewSignature = small_json(data, len, "NewSignature").await?;
    ok(app
        .run(move |a| manifests::add_signature(a, &caller, id, &sig))
        .await?)
}

#[post("/manifests/<id>/status", data = "<data>")]
async fn manifest_status(
    app: &State<App>,
    auth: Admin,
    id: &str,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<ManifestRecord> {
    auth.require(Permission::ManifestStatus)?;
    let id = parse_id("manifest", id)?;
    let change: StatusChange = small_json(data, len, "StatusChange").await?;
    ok(app
        .run(move |a| a.db.with(|c| manifests::set_status(c, id, &change.status)))
        .await?)
}

/// Sets or clears a manifest's halt rule (docs/design.md §6.4).
#[post("/manifests/<id>/halt", data = "<data>")]
async fn manifest_halt(
    app: &State<App>,
    auth: Admin,
    id: &str,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<ManifestRecord> {
    auth.require(Permission::ManifestStatus)?;
    let id = parse_id("manifest", id)?;
    let change: HaltChange = small_json(data, len, "HaltChange").await?;
    ok(app
        .run(move |a| {
            a.db.with(|c| {
                crate::halt::set_rule(c, id, change.halt)?;
                manifests::get(c, id)
            })
        })
        .await?)
}

/// A new staged manifest with the same entries, target, platform and halt rule, under a new
/// serial and expiry (manifests/renew.rs).
#[post("/manifests/<id>/renew", data = "<data>")]
async fn manifest_renew(
    app: &State<App>,
    auth: Admin,
    id: &str,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<ManifestRecord> {
    let caller = auth.require(Permission::ManifestNew)?;
    let id = parse_id("manifest", id)?;
    let req: mig_protocol::admin::RenewManifest = small_json(data, len, "RenewManifest").await?;
    let rec = app
        .run(move |a| manifests::renew(a, &caller, id, req.valid_days))
        .await?;
    created(rec)
}

#[get("/manifests/<id>/loaders")]
async fn manifest_loaders(app: &State<App>, auth: Admin, id: &str) -> Answer<Vec<LoaderRecord>> {
    auth.require(Permission::ManifestLoaders)?;
    let id = parse_id("manifest", id)?;
    ok(app.run(move |a| loaders::targeted_loaders(a, id)).await?)
}

// ---- rollouts and reports ----

/// `stale` when the query leaves it out: a loader not heard from for a day (seconds).
const STALE_DEFAULT: u64 = 86_400;
/// Default and largest `limit` of a loader's report history.
const REPORTS_DEFAULT: u64 = 100;
const REPORTS_MAX: u64 = 10_000;

/// A bounded whole-number query parameter, `default` when absent; `reason` names a bad one.
fn bounded(
    v: Option<&str>,
    key: &str,
    default: u64,
    max: u64,
    reason: &'static str,
) -> Result<u64> {
    match v {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(Error::invalid(
                reason,
                format!("{key} {v:?} must be a whole number in 1..={max}"),
            )),
        },
    }
}

/// Every active manifest's rollout, newest first.
#[get("/rollout?<stale>")]
async fn rollout(
    app: &State<App>,
    auth: Admin,
    stale: Option<&str>,
) -> Answer<Vec<mig_protocol::admin::Rollout>> {
    auth.require(Permission::ManifestLoaders)?;
    let stale = bounded(stale, "stale", STALE_DEFAULT, 3650 * 86_400, "bad_query")?;
    ok(app
        .run(move |a| {
            a.db.with(|c| crate::reports::rollouts(c, Timestamp::now(), stale))
        })
        .await?)
}

/// One manifest's rollout, whatever its status.
#[get("/manifests/<id>/rollout?<stale>")]
async fn manifest_rollout(
    app: &State<App>,
    auth: Admin,
    id: &str,
    stale: Option<&str>,
) -> Answer<mig_protocol::admin::Rollout> {
    auth.require(Permission::ManifestLoaders)?;
    let id = parse_id("manifest", id)?;
    let stale = bounded(stale, "stale", STALE_DEFAULT, 3650 * 86_400, "bad_query")?;
    ok(app
        .run(move |a| {
            a.db.with(|c| crate::reports::rollout(c, id, Timestamp::now(), stale))
        })
        .await?)
}

/// Default and largest `points` of `GET adoption`.
const ADOPTION_POINTS: u64 = 48;
const ADOPTION_POINTS_MAX: u64 = 500;
/// Default `hours` of `GET adoption`: a week.
const ADOPTION_HOURS: u64 = 168;

/// Loaders on each recent serial over the last `hours`, at `points` instants.
#[get("/adoption?<hours>&<points>")]
async fn adoption(
    app: &State<App>,
    auth: Admin,
    hours: Option<&str>,
    points: Option<&str>,
) -> Answer<mig_protocol::admin::Adoption> {
    auth.require(Permission::ManifestLoaders)?;
    // The history holds no more than `[reports] keepdays`.
    let max_hours = app.cfg.reports.keep_days * 24;
    let hours = bounded(
        hours,
        "hours",
        ADOPTION_HOURS.min(max_hours),
        max_hours,
        "bad_query",
    )?;
    let points = bounded(
        points,
        "points",
        ADOPTION_POINTS,
        ADOPTION_POINTS_MAX,
        "bad_query",
    )?;
    if points < 2 {
        return Err(Error::invalid("bad_query", "points must be at least 2"));
    }
    ok(app
        .run(move |a| {
            a.db.with(|c| {
                crate::reports::adoption::adoption(c, Timestamp::now(), hours * 3600, points)
            })
        })
        .await?)
}

/// A loader's reports, newest first.
#[get("/loaders/<id>/reports?<limit>")]
async fn loader_reports(
    app: &State<App>,
    auth: Admin,
    id: &str,
    limit: Option<&str>,
) -> Answer<Vec<mig_protocol::admin::ReportRecord>> {
    auth.require(Permission::Loader)?;
    let id = parse_id("loader", id)?;
    let limit = bounded(limit, "limit", REPORTS_DEFAULT, REPORTS_MAX, "bad_query")?;
    ok(app
        .run(move |a| {
            a.db.with(|c| {
                loaders::get(c, id)?;
                crate::reports::history(c, id, limit)
            })
        })
        .await?)
}

// ---- search ----

fn take_param(params: &mut HashMap<String, String>, key: &str) -> Option<String> {
    params.remove(key).filter(|v| !v.is_empty())
}

fn take_id(params: &mut HashMap<String, String>, key: &str) -> Result<Option<u64>> {
    take_param(params, key)
        .map(|v| parse_id(key, &v))
        .transpose()
}

fn take_time(params: &mut HashMap<String, String>, key: &str) -> Result<Option<Timestamp>> {
    take_param(params, key)
        .map(|v| {
            Timestamp::parse(&v).map_err(|_| {
                Error::invalid(
                    "bad_search",
                    format!("{key} {v:?} is not YYYY-MM-DDTHH:MM:SSZ"),
                )
            })
        })
        .transpose()
}

/// `search` answers manifests or loaders depending on `type`.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Found {
    Manifests(Vec<ManifestRecord>),
    Loaders(Vec<LoaderRecord>),
}

#[get("/search?<params..>")]
async fn search(app: &State<App>, auth: Admin, params: HashMap<String, String>) -> Answer<Found> {
    auth.require(Permission::Search)?;
    let mut params = params;
    let kind = params.remove("type").unwrap_or_default();
    let limit = bounded(
        take_param(&mut params, "limit").as_deref(),
        "limit",
        SEARCH_DEFAULT,
        SEARCH_MAX,
        "bad_search",
    )?;
    let found = match kind.as_str() {
        "manifest" => {
            let s = manifests::Search {
                id: take_id(&mut params, "manifestid")?,
                name: take_param(&mut params, "manifestname"),
                status: take_param(&mut params, "status"),
                before: take_time(&mut params, "before")?,
                after: take_time(&mut params, "after")?,
                limit,
            };
            if let Some(st) = &s.status {
                mig_protocol::ManifestStatus::parse(st)
                    .map_err(|e| Error::invalid("bad_search", e.to_string()))?;
            }
            reject_unknown(&params)?;
            Found::Manifests(
                app.run(move |a| a.db.with(|c| manifests::search(c, &s)))
                    .await?,
            )
        }
        "loader" => {
            let s = loaders::Search {
                id: take_id(&mut params, "loaderid")?,
                name: take_param(&mut params, "loadername"),
                agentname: take_param(&mut params, "agentname"),
                serial: take_id(&mut params, "serial")?,
                result: take_param(&mut params, "result")
                    .map(|r| {
                        mig_protocol::loader::ReportResult::parse(&r).ok_or_else(|| {
                            Error::invalid(
                                "bad_search",
                                format!(
                                    "result {r:?} is none of {}",
                                    mig_protocol::loader::ReportResult::ALL
                                        .map(|r| r.as_str())
                                        .join(", ")
                                ),
                            )
                        })
                    })
                    .transpose()?,
                seen_before: take_time(&mut params, "seenbefore")?,
                limit,
            };
            reject_unknown(&params)?;
            Found::Loaders(
                app.run(move |a| a.db.with(|c| loaders::search(c, &s)))
                    .await?,
            )
        }
        other => {
            return Err(Error::invalid(
                "bad_search",
                format!("search type {other:?} must be manifest or loader"),
            ))
        }
    };
    ok(found)
}

fn reject_unknown(params: &HashMap<String, String>) -> Result<()> {
    match params.keys().next() {
        Some(k) => Err(Error::invalid(
            "bad_search",
            format!("unknown search parameter {k:?} for this type"),
        )),
        None => Ok(()),
    }
}

// ---- loaders ----

#[post("/loaders", data = "<data>")]
async fn loader_create(
    app: &State<App>,
    auth: Admin,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<LoaderKeyIssued> {
    auth.require(Permission::LoaderNew)?;
    let req: NewLoader = small_json(data, len, "NewLoader").await?;
    created(
        app.run(move |a| loaders::create(a, &req.name, req.expectenv))
            .await?,
    )
}

#[get("/loaders/<id>")]
async fn loader_get(app: &State<App>, auth: Admin, id: &str) -> Answer<LoaderRecord> {
    auth.require(Permission::Loader)?;
    let id = parse_id("loader", id)?;
    ok(app.run(move |a| a.db.with(|c| loaders::get(c, id))).await?)
}

#[post("/loaders/<id>/status", data = "<data>")]
async fn loader_status(
    app: &State<App>,
    auth: Admin,
    id: &str,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<LoaderRecord> {
    auth.require(Permission::LoaderStatus)?;
    let id = parse_id("loader", id)?;
    let change: StatusChange = small_json(data, len, "StatusChange").await?;
    ok(app
        .run(move |a| a.db.with(|c| loaders::set_status(c, id, &change.status)))
        .await?)
}

#[post("/loaders/<id>/expectenv", data = "<data>")]
async fn loader_expectenv(
    app: &State<App>,
    auth: Admin,
    id: &str,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<LoaderRecord> {
    auth.require(Permission::LoaderExpect)?;
    let id = parse_id("loader", id)?;
    let e: ExpectEnv = small_json(data, len, "ExpectEnv").await?;
    ok(app
        .run(move |a| loaders::set_expectenv(a, id, e.expectenv))
        .await?)
}

#[post("/loaders/<id>/attributes", data = "<data>")]
async fn loader_attributes(
    app: &State<App>,
    auth: Admin,
    id: &str,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<LoaderRecord> {
    auth.require(Permission::LoaderExpect)?;
    let id = parse_id("loader", id)?;
    let attrs: Attributes = small_json(data, len, "Attributes").await?;
    ok(app
        .run(move |a| {
            a.db.with(|c| loaders::set_attributes(c, id, &attrs.attributes))
        })
        .await?)
}

#[post("/loaders/<id>/key")]
async fn loader_key(app: &State<App>, auth: Admin, id: &str) -> Answer<LoaderKeyIssued> {
    auth.require(Permission::LoaderKey)?;
    let id = parse_id("loader", id)?;
    ok(app
        .run(move |a| a.db.with(|c| loaders::rotate_key(c, id)))
        .await?)
}

// ---- investigators ----

fn permission_mask(names: &[String]) -> Result<u64> {
    parse_permissions(names).map_err(|e| Error::invalid("bad_permissions", e.to_string()))
}

#[post("/investigators", data = "<data>")]
async fn investigator_create(
    app: &State<App>,
    auth: Admin,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<InvestigatorRecord> {
    auth.require(Permission::InvestigatorCreate)?;
    let req: NewInvestigator = small_json(data, len, "NewInvestigator").await?;
    let mask = permission_mask(&req.permissions)?;
    created(
        app.run(move |a| {
            a.db.with(|c| investigators::add(c, &req.name, &req.publickey, mask))
        })
        .await?,
    )
}

#[get("/investigators/me")]
async fn investigator_me(app: &State<App>, auth: Admin) -> Answer<InvestigatorRecord> {
    let caller = auth.authenticated()?;
    if caller.id == 0 {
        // Authentication is off: there is no investigator row behind the caller.
        return ok(InvestigatorRecord {
            id: 0,
            name: caller.name,
            fingerprint: String::new(),
            status: mig_protocol::InvestigatorStatus::Active,
            permissions: mig_protocol::admin::permission_names(caller.perms),
            created: app.started,
            has_apikey: false,
        });
    }
    ok(app
        .run(move |a| a.db.with(|c| investigators::get(c, caller.id)))
        .await?)
}

#[get("/investigators/<id>", rank = 2)]
async fn investigator_get(app: &State<App>, auth: Admin, id: &str) -> Answer<InvestigatorRecord> {
    auth.require(Permission::Investigator)?;
    let id = parse_id("investigator", id)?;
    ok(app
        .run(move |a| a.db.with(|c| investigators::get(c, id)))
        .await?)
}

#[post("/investigators/<id>/permissions", data = "<data>")]
async fn investigator_permissions(
    app: &State<App>,
    auth: Admin,
    id: &str,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<InvestigatorRecord> {
    auth.require(Permission::InvestigatorUpdate)?;
    let id = parse_id("investigator", id)?;
    let req: PermissionChange = small_json(data, len, "PermissionChange").await?;
    let mask = permission_mask(&req.permissions)?;
    ok(app
        .run(move |a| a.db.with(|c| investigators::set_permissions(c, id, mask)))
        .await?)
}

#[post("/investigators/<id>/status", data = "<data>")]
async fn investigator_status(
    app: &State<App>,
    auth: Admin,
    id: &str,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<InvestigatorRecord> {
    auth.require(Permission::InvestigatorUpdate)?;
    let id = parse_id("investigator", id)?;
    let change: StatusChange = small_json(data, len, "StatusChange").await?;
    ok(app
        .run(move |a| {
            a.db.with(|c| investigators::set_status(c, id, &change.status))
        })
        .await?)
}

#[post("/investigators/<id>/apikey")]
async fn investigator_apikey(app: &State<App>, auth: Admin, id: &str) -> Answer<ApiKeyIssued> {
    auth.require(Permission::InvestigatorUpdate)?;
    let id = parse_id("investigator", id)?;
    let apikey = app
        .run(move |a| a.db.with(|c| investigators::issue_apikey(c, id)))
        .await?;
    ok(ApiKeyIssued { apikey })
}

// ---- plugins ----

#[get("/plugins")]
async fn plugin_list(app: &State<App>, auth: Admin) -> Answer<Vec<PluginRecord>> {
    auth.require(Permission::Search)?;
    ok(app.run(plugins::list).await?)
}

#[post("/plugins", data = "<data>")]
async fn plugin_upload(
    app: &State<App>,
    auth: Admin,
    len: ContentLength,
    data: Data<'_>,
) -> Answer<PluginRecord> {
    auth.require(Permission::Plugin)?;
    let body = read_body(data, len, app.cfg.limits.upload, "plugin upload").await?;
    let rec = app
        .run(move |a| {
            let req: NewPlugin = parse_json(&body, "NewPlugin")?;
            let wasm = base64::engine::general_purpose::STANDARD
                .decode(req.wasm.as_bytes())
                .map_err(|e| {
                    Error::invalid("bad_plugin", format!("wasm: not standard base64: {e}"))
                })?;
            plugins::upload(a, &req.name, &wasm)
        })
        .await?;
    created(rec)
}

#[delete("/plugins/<name>")]
async fn plugin_delete(app: &State<App>, auth: Admin, name: &str) -> Answer<Value> {
    auth.require(Permission::Plugin)?;
    let name = name.to_string();
    app.run(move |a| plugins::remove(a, &name)).await?;
    Ok((Status::Ok, Json(serde_json::json!({}))))
}
