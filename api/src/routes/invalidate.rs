//! The fairing that keeps poll.rs's first rule: every administrator request that is not a read
//! makes the kept poll outcomes stale, here and on the other replicas.

use crate::app::App;
use crate::{logging, replicas};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Method;
use rocket::{Request, Response};

/// Bumps the generation after every administrator request that is not a read.
pub struct Invalidate;

#[rocket::async_trait]
impl Fairing for Invalidate {
    fn info(&self) -> Info {
        Info {
            name: "targeting generation",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        if matches!(req.method(), Method::Get | Method::Head | Method::Options) {
            return;
        }
        // Refused before any write (no route, no or bad credentials, no permission): an
        // unauthenticated client cannot make every loader's next poll expensive. A loader's
        // own requests, v2 or MIG's v1 (whose routes are not under `loader/`), change nothing
        // targeting depends on.
        if req.route().is_none() || super::is_loader_request(req) {
            return;
        }
        // 503: the database could not be reached, so nothing was written either.
        if matches!(res.status().code, 401 | 403 | 503) {
            return;
        }
        if let Some(app) = req.rocket().state::<App>() {
            if let Err(e) = app.run(replicas::changed).await {
                // This replica's generation moved; the others catch up at the next write.
                logging::event("error", "shared_generation_failed", &[("error", &e)]);
            }
        }
    }
}
