//! MIG's v1 loader routes, for the Go `mig-loader`s of a fleet moving to mig-api
//! (docs/design.md §8.3), under `[v1] baseroute`: `POST manifest/agent/`, `POST manifest/fetch/`
//! (form field `parameters`, key in `X-LOADERKEY`) and `GET ip`. Every answer, error or not, is
//! Collection+JSON, which is all a Go loader reads.

use super::{read_body, set_protocol, ContentLength, Loader};
use crate::app::App;
use crate::error::{Error, Result};
use crate::loaders;
use crate::poll::Outcome;
use crate::routes::loader::LOADER_BODY;
use base64::Engine as _;
use mig_protocol::loader::ManifestRequest;
use mig_protocol::mig_v1::{self, Collection, FetchValue};
use rocket::data::Data;
use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder, Response};
use rocket::{catch, catchers, get, post, routes, Catcher, Request, Route, State};
use std::io::Cursor;

pub fn routes() -> Vec<Route> {
    routes![manifest_agent, manifest_fetch, ip]
}

pub fn catchers() -> Vec<Catcher> {
    catchers![catcher]
}

/// A v1 answer: one named value, or the error, both as Collection+JSON.
pub struct V1(Result<(&'static str, serde_json::Value)>);

impl<'r> Responder<'r, 'static> for V1 {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        set_protocol(req, "v1");
        let href = req.uri().path().to_string();
        let (status, collection) = match self.0 {
            Ok((name, value)) => (Status::Ok, Collection::item(&href, name, value)),
            Err(e) => {
                super::note_failure(req, &e);
                let status = e.status();
                let c = Collection::error(&href, status.code, &e.public_message());
                (status, c)
            }
        };
        collection_response(status, &collection)
    }
}

fn collection_response(status: Status, c: &Collection) -> response::Result<'static> {
    let body = serde_json::to_vec(c).map_err(|_| Status::InternalServerError)?;
    Response::build()
        .status(status)
        .header(ContentType::JSON)
        .raw_header("Cache-Control", "no-cache")
        .sized_body(body.len(), Cursor::new(body))
        .ok()
}

/// Reads the form and authenticates, in the handler's blocking task.
async fn parameters(
    app: &State<App>,
    auth: Loader,
    len: ContentLength,
    data: Data<'_>,
    what: &'static str,
) -> Result<(loaders::Authenticated, mig_v1::ManifestParameters)> {
    let body = read_body(data, len, LOADER_BODY, what).await?;
    app.run(move |a| {
        let who = auth.authenticate(a)?;
        let p = mig_v1::parse_form(&body)
            .map_err(|e| Error::invalid("malformed_form", format!("{what}: {e}")))?;
        Ok((who, p))
    })
    .await
}

#[post("/manifest/agent", data = "<data>")]
async fn manifest_agent(app: &State<App>, auth: Loader, len: ContentLength, data: Data<'_>) -> V1 {
    V1(async {
        let (who, p) = parameters(app, auth, len, data, "manifest request").await?;
        let req = ManifestRequest {
            agent: p.agent,
            have: Default::default(),
        };
        let chosen = app
            .run(move |a| loaders::v1_manifest(a, &who, &req))
            .await?;
        match chosen {
            Ok(m) => serde_json::to_value(m)
                .map(|v| ("manifest", v))
                .map_err(|e| Error::Internal(format!("a v1 manifest: {e}"))),
            Err(Outcome::NoneMatched(m)) => Err(Error::NotFound(m)),
            Err(Outcome::Denied(m)) => Err(Error::forbidden("expectenv", m)),
            Err(Outcome::Given(id, _)) => Err(Error::Internal(format!(
                "manifest {id} came back as a refusal"
            ))),
        }
    }
    .await)
}

#[post("/manifest/fetch", data = "<data>")]
async fn manifest_fetch(app: &State<App>, auth: Loader, len: ContentLength, data: Data<'_>) -> V1 {
    V1(async {
        let (who, p) = parameters(app, auth, len, data, "fetch request").await?;
        if p.object.is_empty() {
            return Err(Error::invalid(
                "malformed_form",
                "fetch request: parameters has no object",
            ));
        }
        let gz = app
            .run(move |a| loaders::v1_fetch(a, &who, &p.object))
            .await?;
        let data = base64::engine::general_purpose::STANDARD.encode(&gz);
        serde_json::to_value(FetchValue { data })
            .map(|v| ("content", v))
            .map_err(|e| Error::Internal(format!("a v1 file body: {e}")))
    }
    .await)
}

/// The caller's address as text, which a Go loader asks for as `<base>//ip` when built to
/// discover its public address (Rocket matches the empty segment as `<base>/ip`).
#[get("/ip")]
fn ip(addr: std::net::IpAddr) -> (ContentType, String) {
    (ContentType::Plain, addr.to_string())
}

/// Rocket's own errors under the v1 base (no route, a guard's failure) as Collection+JSON too.
#[catch(default)]
fn catcher(status: Status, req: &Request<'_>) -> V1Error {
    let message = match status.code {
        404 => format!("no such endpoint: {} {}", req.method(), req.uri().path()),
        _ => status.reason_lossy().to_string(),
    };
    V1Error(status, message)
}

pub struct V1Error(Status, String);

impl<'r> Responder<'r, 'static> for V1Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        set_protocol(req, "v1");
        let c = Collection::error(req.uri().path().as_str(), self.0.code, &self.1);
        collection_response(self.0, &c)
    }
}
