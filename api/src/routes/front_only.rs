//! Rocket listens on loopback behind the public socket (front/mod.rs). A request that did not
//! come through it (a local process that found the port) lacks the front's secret: it is turned
//! into a request for [`FRONT_ONLY_PATH`], which answers 403, so it can neither skip the
//! connection bounds nor claim another client address.

use crate::front::FRONT_HEADER;
use mig_protocol::loader::ErrorBody;
use rocket::data::Data;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::uri::Origin;
use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::serde::json::Json;
use rocket::{get, routes, Route};
use subtle::ConstantTimeEq;

const FRONT_ONLY_PATH: &str = "/.mig-api-front-only";

pub struct FrontOnly {
    secret: Vec<u8>,
}

impl FrontOnly {
    pub fn new(secret: &str) -> FrontOnly {
        FrontOnly {
            secret: secret.as_bytes().to_vec(),
        }
    }
}

#[rocket::async_trait]
impl Fairing for FrontOnly {
    fn info(&self) -> Info {
        Info {
            name: "requests only through the public socket",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        let given = req.headers().get_one(FRONT_HEADER).unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(&self.secret)) {
            req.set_method(Method::Get);
            req.set_uri(Origin::const_new(FRONT_ONLY_PATH, None));
        }
    }
}

#[get("/.mig-api-front-only")]
fn front_only() -> (Status, Json<ErrorBody>) {
    (
        Status::Forbidden,
        Json(ErrorBody::new(
            403,
            "mig-api answers only on its public socket",
        )),
    )
}

pub fn routes() -> Vec<Route> {
    routes![front_only]
}
