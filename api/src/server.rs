//! Runs the server from the configuration: the public socket (front/mod.rs) and Rocket behind
//! it. Rocket's own configuration is made here in code, never read from Rocket.toml or ROCKET_*
//! variables.

use crate::app::App;
use crate::error::{Error, Result};
use crate::front;
use crate::investigators;
use crate::logging;
use crate::routes;
use rocket::config::{Ident, LogLevel};
use rocket::fairing::AdHoc;
use rocket::tokio::net::TcpListener;
use rocket::tokio::signal::unix::{signal, SignalKind};
use rocket::tokio::sync::{oneshot, watch};
use rocket::{catchers, Build, Rocket};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// The line printed once the socket is bound (tests and scripts wait for it).
pub const LISTENING: &str = "mig-api listening on ";

/// What a process does with a freshly opened [`App`] before it serves or imports: the engine
/// gets the stored plugins, and file bodies no manifest names any more are removed.
pub fn start_up(app: &App) -> Result<()> {
    crate::plugins::sync(app)?;
    let referenced = crate::manifests::referenced_blobs(app)?;
    let removed = app.blobs.collect_garbage(&referenced)?;
    if removed > 0 {
        logging::event(
            "info",
            "blob_gc",
            &[("removed", &removed), ("dir", &app.blobs.dir().display())],
        );
    }
    Ok(())
}

/// Serves `app` until SIGTERM or SIGINT, then stops in order (docs/design.md §6.1): the public
/// socket stops accepting, the requests in flight are answered (for at most
/// [`front::DRAIN_GRACE`]), Rocket and the background tasks end, and then, outside the async
/// runtime, the `lastseen` still held in memory is written and the database connections are
/// closed. A PostgreSQL connection's close blocks on a runtime of its own, which cannot run on
/// one of Rocket's workers; this function keeps a handle on `app` so the last one is dropped
/// here, never inside the runtime.
pub fn run(app: App) -> Result<()> {
    let served = rocket::execute(serve(app.clone()));
    let flushed = app.poll.flush(&app.db);
    app.db.close();
    match &flushed {
        Ok(n) => logging::event("info", "stopped", &[("lastseen_written", n)]),
        Err(e) => logging::event("error", "lastseen_flush_failed", &[("error", e)]),
    }
    served.and(flushed.map(drop))
}

/// The public socket (`front`) in front of Rocket on a loopback port of its own, until a
/// stop signal has been handled.
async fn serve(app: App) -> Result<()> {
    let cfg = app.cfg.clone();
    let bounds = front::Bounds::from(&cfg.limits).fit_to_descriptors();
    let tls = cfg.tls.as_ref().map(front::acceptor).transpose()?;
    let secret = front::secret();
    // Installed before the address is announced: from then on a signal stops the server in
    // order instead of killing the process.
    let (stop, stopping) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::Internal(format!("handling SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Error::Internal(format!("handling SIGINT: {e}")))?;
    rocket::tokio::spawn(async move {
        let name = rocket::tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        logging::event("info", "stopping", &[("signal", &name)]);
        let _ = stop.send(true);
    });
    let public = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| Error::Internal(format!("binding {}: {e}", cfg.listen)))?;
    let addr = public
        .local_addr()
        .map_err(|e| Error::Internal(format!("address of {}: {e}", cfg.listen)))?;
    let audience = app.bound(addr)?.to_string();
    logging::event("info", "token_audience", &[("audience", &audience)]);
    let (bound, on_bound) = oneshot::channel();
    let rocket = build(app.clone(), &secret)?
        .attach(AdHoc::on_liftoff("bound", move |r| {
            let inner = SocketAddr::new(r.config().address, r.config().port);
            Box::pin(async move {
                let _ = bound.send(inner);
            })
        }))
        .ignite()
        .await
        .map_err(|e| Error::Internal(format!("server: {e}")))?;
    let rocket_stop = rocket.shutdown();
    let mut server = rocket::tokio::spawn(rocket.launch());
    let background = [
        rocket::tokio::spawn(crate::tasks::report_pruner(app.clone(), stopping.clone())),
        rocket::tokio::spawn(crate::tasks::lastseen_flusher(
            app.clone(),
            stopping.clone(),
        )),
        rocket::tokio::spawn(crate::tasks::expiry_log(app.clone(), stopping.clone())),
    ];
    let inner = on_bound
        .await
        .map_err(|_| Error::Internal("the server stopped before it listened".into()))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{LISTENING}{}", cfg.url(addr));
        let _ = out.flush();
    }
    let front = front::serve(public, bounds, tls, inner, &secret, app, stopping);
    let served = rocket::tokio::select! {
        ended = &mut server => Err(match ended {
            Ok(Ok(_)) => Error::Internal("server: Rocket stopped by itself".into()),
            Ok(Err(e)) => Error::Internal(format!("server: {e}")),
            Err(e) => Error::Internal(format!("server: {e}")),
        }),
        // Returns once the stop signal came and the connections were drained.
        ended = front => ended,
    };
    // Nothing comes through the front any more: Rocket has no request left to finish.
    rocket_stop.notify();
    let _ = server.await;
    // They end at their next turn; a flush under way is finished, not cut.
    for task in background {
        let _ = task.await;
    }
    served
}

/// Rocket for `app` on a loopback port of its own; it answers only requests that carry
/// `secret` (that came through the front).
pub fn build(app: App, secret: &str) -> Result<Rocket<Build>> {
    let rc = rocket::Config {
        address: IpAddr::from([127, 0, 0, 1]),
        port: 0,
        log_level: LogLevel::Off,
        cli_colors: false,
        ident: Ident::try_new("mig-api")
            .map_err(|e| Error::Internal(format!("server identity: {e}")))?,
        ip_header: Some(front::PEER_HEADER.into()),
        // The signals are handled in `serve`, which stops the front before Rocket.
        shutdown: rocket::config::Shutdown {
            ctrlc: false,
            signals: Default::default(),
            ..Default::default()
        },
        ..rocket::Config::release_default()
    };
    let base = app.cfg.baseroute.clone();
    let v1 = app.cfg.v1.enabled().then(|| app.cfg.v1.baseroute.clone());
    let mut rocket = rocket::custom(rc)
        .manage(app)
        .mount(base.as_str(), routes::admin::routes())
        .mount(base.as_str(), routes::loader::routes())
        .mount("/", routes::admin::root_routes())
        .mount("/", routes::front_only_routes())
        .register(base.as_str(), catchers![routes::default_catcher])
        .register("/", catchers![routes::default_catcher]);
    if let Some(v1) = v1 {
        // docs/design.md §8.3: MIG's routes for Go loaders, and ours beside them, so that a
        // migrated fleet whose /etc/mig/mig-loader.cfg names the v1 base keeps working.
        rocket = rocket
            .mount(v1.as_str(), routes::v1::routes())
            .mount(v1.as_str(), routes::loader::routes())
            .register(v1.as_str(), routes::v1::catchers());
    }
    Ok(rocket
        .attach(routes::FrontOnly::new(secret))
        .attach(routes::RequestLogger)
        .attach(crate::routes::Invalidate))
}

/// Start-up notices: authentication off (loudly), no administrator yet (how to create one).
pub fn announce(app: &App) -> Result<()> {
    if !app.cfg.auth_enabled {
        logging::event(
            "warn",
            "authentication_disabled",
            &[(
                "message",
                &"[authentication] enabled = off: EVERY REQUEST HAS EVERY PERMISSION; local experiments only",
            )],
        );
        println!("WARNING: authentication is disabled: every request has every permission");
    }
    if !app.db.with(investigators::has_admin)? {
        let config = app
            .cfg
            .source
            .as_ref()
            .map(|p| format!(" --config {}", p.display()))
            .unwrap_or_default();
        println!(
            "No administrator yet. Create the first one on this server with:\n  \
             mig-api{config} investigator add --name NAME --pubkey PUBKEY.asc \
             --perms PermAdmin,PermManifest,PermLoader"
        );
    }
    Ok(())
}
