//! Loader endpoints (docs/design.md §3.2–§3.6): `loader/manifest`, `loader/files/<sha256>`, `loader/report`.

use super::{parse_json, read_body, ContentLength, FileBody, Loader, OpenFile, RangeHeaders};
use crate::app::App;
use crate::error::{Error, Result};
use crate::poll::Outcome;
use crate::serve::{self, LOADER_BODY};
use mig_protocol::loader::Report;
use rocket::data::Data;
use rocket::http::ContentType;
use rocket::response::Responder;
use rocket::serde::json::{Json, Value};
use rocket::{get, post, routes, Request, Route, State};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    routes![manifest, files, report, root]
}

/// The statement's bytes, made once per manifest and shared by every loader given it.
pub struct ManifestAnswer(Arc<[u8]>);

impl<'r> Responder<'r, 'static> for ManifestAnswer {
    fn respond_to(self, _: &'r Request<'_>) -> rocket::response::Result<'static> {
        let len = self.0.len();
        rocket::Response::build()
            .header(ContentType::JSON)
            .sized_body(len, std::io::Cursor::new(self.0))
            .ok()
    }
}

#[post("/loader/manifest", data = "<data>")]
async fn manifest(
    app: &State<App>,
    auth: Loader,
    len: ContentLength,
    data: Data<'_>,
) -> Result<ManifestAnswer> {
    // At most 64 KiB read before the key is checked, in the same blocking task as the work.
    let body = read_body(data, len, LOADER_BODY, "manifest request").await?;
    let outcome = app
        .run(move |a| {
            let who = auth.authenticate(a)?;
            serve::manifest_request(a, &who, &body, |b| parse_json(b, "ManifestRequest"))
        })
        .await?;
    match outcome {
        Outcome::Given(_, body) => Ok(ManifestAnswer(body)),
        Outcome::NoneMatched(m) => Err(Error::NotFound(m)),
        Outcome::Denied(m) => Err(Error::forbidden("expectenv", m)),
    }
}

#[get("/loader/files/<sha256>")]
async fn files(
    app: &State<App>,
    auth: Loader,
    sha256: &str,
    ranges: RangeHeaders,
) -> Result<OpenFile> {
    let sha = sha256.to_string();
    app.run(move |a| {
        let who = auth.authenticate(a)?;
        let given = serve::file(a, &who, &sha)?;
        FileBody::new(given.path, given.size, ContentType::Binary)
            .content_addressed(&sha, &ranges, given.secret)
            .handed_off_by(&a.file_cache)
            .open()
    })
    .await
}

#[post("/loader/report", data = "<data>")]
async fn report(
    app: &State<App>,
    auth: Loader,
    len: ContentLength,
    data: Data<'_>,
) -> Result<Json<Value>> {
    let body = read_body(data, len, LOADER_BODY, "report").await?;
    app.run(move |a| {
        let who = auth.authenticate(a)?;
        let r: Report = parse_json(&body, "Report")?;
        serve::report(a, &who, &r)
    })
    .await?;
    Ok(Json(serde_json::json!({})))
}

/// `GET loader/root/<version>`: an accepted root of trust and its signatures (roots.rs); 404
/// when there is none, which ends a loader's walk.
#[get("/loader/root/<version>")]
async fn root(
    app: &State<App>,
    auth: Loader,
    version: &str,
) -> Result<Json<mig_protocol::root::Signed>> {
    let version = super::parse_id("root", version)?;
    app.run(move |a| {
        auth.authenticate(a)?;
        crate::roots::serve(a, version)
    })
    .await
    .map(Json)
}
