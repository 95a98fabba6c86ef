//! `mig-api [--config FILE]` serves; `mig-api [--config FILE] investigator add --name N
//! --pubkey FILE --perms A,B` adds an investigator directly in the database (the bootstrap of
//! the first administrator, on the server).
#![forbid(unsafe_code)]

use api::app::App;
use api::config::Config;
use api::db::Db;
use api::error::{Error, Result};
use api::{investigators, server};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  mig-api [--config FILE]
      serve (default: 127.0.0.1:1664, /api/v2, ./mig-api.db)
  mig-api [--config FILE] investigator add --name NAME --pubkey FILE.asc --perms SET,BIT,...
      add an active investigator directly in the database (e.g. the first administrator:
      --perms PermAdmin,PermManifest,PermLoader)";

enum Command {
    Serve,
    AddInvestigator {
        name: String,
        pubkey: PathBuf,
        perms: Vec<String>,
    },
}

struct Args {
    config: Option<PathBuf>,
    command: Command,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> std::result::Result<Args, String> {
    let mut config = None;
    let mut words = Vec::new();
    let (mut name, mut pubkey, mut perms) = (None, None, None);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "--name" => name = Some(value("--name")?),
            "--pubkey" => pubkey = Some(PathBuf::from(value("--pubkey")?)),
            "--perms" => perms = Some(value("--perms")?),
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => words.push(s.to_string()),
        }
    }
    let command = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {
            if name.is_some() || pubkey.is_some() || perms.is_some() {
                return Err("--name, --pubkey and --perms belong to `investigator add`".into());
            }
            Command::Serve
        }
        ["investigator", "add"] => Command::AddInvestigator {
            name: name.ok_or("investigator add needs --name")?,
            pubkey: pubkey.ok_or("investigator add needs --pubkey")?,
            perms: perms
                .ok_or("investigator add needs --perms (e.g. PermAdmin,PermManifest,PermLoader)")?
                .split(',')
                .map(|s| s.trim().to_string())
                .collect(),
        },
        _ => return Err(format!("unknown command {:?}", words.join(" "))),
    };
    Ok(Args { config, command })
}

fn load_config(path: &Option<PathBuf>) -> Result<Config> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::default()),
    }
}

fn serve(cfg: Config) -> Result<()> {
    let app = App::open(cfg)?;
    server::announce(&app)?;
    server::run(app)
}

fn add_investigator(cfg: Config, name: &str, pubkey: &PathBuf, perms: &[String]) -> Result<()> {
    let meta = std::fs::metadata(pubkey).map_err(Error::io("reading", pubkey))?;
    if meta.len() > investigators::MAX_PUBLIC_KEY_BYTES as u64 {
        return Err(Error::TooLarge(format!(
            "{}: larger than {} bytes",
            pubkey.display(),
            investigators::MAX_PUBLIC_KEY_BYTES
        )));
    }
    let armored = std::fs::read_to_string(pubkey).map_err(Error::io("reading", pubkey))?;
    let mask = mig_protocol::admin::parse_permissions(perms)
        .map_err(|e| Error::Config(format!("--perms: {e}")))?;
    let db = Db::open(&cfg.db_path)?;
    let rec = db.with(|c| investigators::add(c, name, &armored, mask))?;
    println!(
        "investigator {} added: name={:?} fingerprint={} permissions={}",
        rec.id,
        rec.name,
        rec.fingerprint,
        rec.permissions.join(",")
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mig-api: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = load_config(&args.config).and_then(|cfg| match &args.command {
        Command::Serve => serve(cfg),
        Command::AddInvestigator {
            name,
            pubkey,
            perms,
        } => add_investigator(cfg, name, pubkey, perms),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mig-api: {e}");
            ExitCode::FAILURE
        }
    }
}
