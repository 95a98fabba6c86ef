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
use rocket::tokio::sync::oneshot;
use rocket::{catchers, Build, Rocket};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// The line printed once the socket is bound (tests and scripts wait for it).
pub const LISTENING: &str = "mig-api listening on ";

/// Serves `app` until the process is told to stop: the public socket (`front`) in front of
/// Rocket on a loopback port of its own.
pub fn run(app: App) -> Result<()> {
    let cfg = app.cfg.clone();
    let bounds = front::Bounds::from(&cfg.limits).fit_to_descriptors();
    let tls = cfg.tls.as_ref().map(front::acceptor).transpose()?;
    let secret = front::secret();
    let rocket = build(app.clone(), &secret)?;
    rocket::execute(async move {
        let public = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| Error::Internal(format!("binding {}: {e}", cfg.listen)))?;
        let addr = public
            .local_addr()
            .map_err(|e| Error::Internal(format!("address of {}: {e}", cfg.listen)))?;
        let audience = app.bound(addr)?.to_string();
        logging::event("info", "token_audience", &[("audience", &audience)]);
        let (bound, on_bound) = oneshot::channel();
        let rocket = rocket.attach(AdHoc::on_liftoff("bound", move |r| {
            let inner = SocketAddr::new(r.config().address, r.config().port);
            Box::pin(async move {
                let _ = bound.send(inner);
            })
        }));
        let server = rocket::tokio::spawn(rocket.launch());
        rocket::tokio::spawn(crate::reports::pruner(app.clone()));
        rocket::tokio::spawn(crate::poll::flusher(app.clone()));
        rocket::tokio::spawn(crate::expiry::watch(app.clone()));
        let inner = on_bound
            .await
            .map_err(|_| Error::Internal("the server stopped before it listened".into()))?;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{LISTENING}{}", cfg.url(addr));
            let _ = out.flush();
        }
        rocket::tokio::select! {
            ended = server => match ended {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(Error::Internal(format!("server: {e}"))),
                Err(e) => Err(Error::Internal(format!("server: {e}"))),
            },
            ended = front::serve(public, bounds, tls, inner, &secret, app) => ended,
        }
    })
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
        .attach(crate::poll::Invalidate))
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
