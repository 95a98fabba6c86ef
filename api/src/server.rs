//! Builds the Rocket server from the configuration: Rocket's own configuration is made here in
//! code, never read from Rocket.toml or ROCKET_* variables.

use crate::app::App;
use crate::error::{Error, Result};
use crate::investigators;
use crate::logging;
use crate::routes;
use rocket::config::{Ident, LogLevel, TlsConfig};
use rocket::fairing::AdHoc;
use rocket::{catchers, Build, Rocket};
use std::io::Write;
use std::net::SocketAddr;

/// The line printed once the socket is bound (tests and scripts wait for it).
pub const LISTENING: &str = "mig-api listening on ";

/// A ready-to-launch server for `app`.
pub fn build(app: App) -> Result<Rocket<Build>> {
    let cfg = &app.cfg;
    let mut rc = rocket::Config {
        address: cfg.listen.ip(),
        port: cfg.listen.port(),
        log_level: LogLevel::Off,
        cli_colors: false,
        ident: Ident::try_new("mig-api")
            .map_err(|e| Error::Internal(format!("server identity: {e}")))?,
        ..rocket::Config::release_default()
    };
    if let Some(tls) = &cfg.tls {
        rc.tls = Some(TlsConfig::from_paths(&tls.cert, &tls.key));
    }
    let base = cfg.baseroute.clone();
    let url_cfg = cfg.clone();
    Ok(rocket::custom(rc)
        .manage(app)
        .mount(base.as_str(), routes::admin::routes())
        .mount(base.as_str(), routes::loader::routes())
        .mount("/", routes::admin::root_routes())
        .register(base.as_str(), catchers![routes::default_catcher])
        .register("/", catchers![routes::default_catcher])
        .attach(routes::RequestLogger)
        .attach(AdHoc::on_liftoff("announce", move |r| {
            Box::pin(async move {
                let addr = SocketAddr::new(r.config().address, r.config().port);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{LISTENING}{}", url_cfg.url(addr));
                let _ = out.flush();
            })
        })))
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
