//! Loader endpoints (docs/design.md §3.2–§3.6): `loader/manifest`, `loader/files/<sha256>`, `loader/report`.

use super::{parse_json, read_body, ContentLength, FileBody, Loader, OpenFile, RangeHeaders};
use crate::app::App;
use crate::error::Result;
use crate::loaders;
use mig_protocol::loader::{ManifestRequest, ManifestResponse, Report};
use rocket::data::Data;
use rocket::http::ContentType;
use rocket::serde::json::{Json, Value};
use rocket::{get, post, routes, Route, State};

/// Largest manifest request or report body (a real one is about 1 KiB).
pub const LOADER_BODY: u64 = 64 * 1024;

pub fn routes() -> Vec<Route> {
    routes![manifest, files, report]
}

#[post("/loader/manifest", data = "<data>")]
async fn manifest(
    app: &State<App>,
    auth: Loader,
    len: ContentLength,
    data: Data<'_>,
) -> Result<Json<ManifestResponse>> {
    // At most 64 KiB read before the key is checked, in the same blocking task as the work.
    let body = read_body(data, len, LOADER_BODY, "manifest request").await?;
    let res = app
        .run(move |a| {
            let who = auth.authenticate(a)?;
            let req: ManifestRequest = parse_json(&body, "ManifestRequest")?;
            loaders::manifest_request(a, &who, &req)
        })
        .await?;
    Ok(Json(res))
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
        let given = loaders::file(a, &who, &sha)?;
        FileBody::new(given.path, given.size, ContentType::Binary)
            .content_addressed(&sha, &ranges, given.secret)
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
        loaders::report(a, &who, &r)
    })
    .await?;
    Ok(Json(serde_json::json!({})))
}
