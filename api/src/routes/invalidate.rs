//! The fairing that keeps poll.rs's first rule: an administrator request that is not a read
//! makes the kept poll outcomes it can change stale, here and on the other replicas. A write
//! that touches one loader's row and nothing selection reads for another loader
//! ([`loader_only`]) forgets that loader's outcome only; every other write, whatever it
//! changed, makes every outcome stale.

use crate::app::App;
use crate::{logging, replicas};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Method;
use rocket::{Request, Response};

/// Bumps the generation after every administrator request that is not a read, but for those
/// that change only one loader's status, key, expectenv or attributes, or enrol a loader.
pub struct Invalidate;

/// A write whose only effect on poll outcomes is on one loader's own.
enum OneLoader {
    /// An enrolment: the new loader has no outcome yet.
    New,
    /// A status change, key rotation, expectenv or attributes of this loader.
    Id(u64),
}

/// The loader whose own outcome is all a request can change, when that is so: an enrolment, or
/// a status change, key rotation, expectenv or attributes of a valid id (any other is treated
/// as a broad write). A disabled loader or a rotated key is refused by authentication, which
/// reads the row on every request on every replica, before any outcome is looked up. Expectenv
/// and attributes are read by selection, but only for their own loader: their write advances
/// the row's `selection_rev`, read with the key, so that loader's outcome is stale on every
/// replica (poll.rs) and the forgetting here only frees its memory. Routes are known by their
/// handler's name in routes/admin.rs, so a handler renamed or added falls back to making
/// everything stale, never to keeping a stale outcome.
fn loader_only(req: &Request<'_>) -> Option<OneLoader> {
    if req.method() != Method::Post {
        return None;
    }
    match req.route()?.name.as_deref()? {
        "loader_create" => Some(OneLoader::New),
        // `loaders/<id>/…`: the id is the segment after `loaders`.
        "loader_status" | "loader_key" | "loader_expectenv" | "loader_attributes" => {
            req.param::<u64>(1)?.ok().map(OneLoader::Id)
        }
        _ => None,
    }
}

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
        let Some(app) = req.rocket().state::<App>() else {
            return;
        };
        match loader_only(req) {
            Some(OneLoader::New) => return,
            Some(OneLoader::Id(id)) => return app.poll.forget(id),
            None => {}
        }
        if let Err(e) = app.run(replicas::changed).await {
            // This replica's generation moved; the others catch up at the next write.
            logging::event("error", "shared_generation_failed", &[("error", &e)]);
        }
    }
}
