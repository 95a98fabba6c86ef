//! `mig-api [--config FILE]` serves; `mig-api [--config FILE] investigator add --name N
//! --pubkey FILE --perms A,B` adds an investigator directly in the database (the bootstrap of
//! the first administrator, on the server); `mig-api [--config FILE] import-mig --from URL`
//! imports a MIG database (docs/design.md §8.4).
#![forbid(unsafe_code)]

use api::app::App;
use api::config::Config;
use api::db::Db;
use api::error::{Error, Result};
use api::{import_mig, investigators, server};
use mig_protocol::statement::Platform;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage:
  mig-api [--config FILE]
      serve (default: 127.0.0.1:1664, /api/v2, ./mig-api.db)
  mig-api [--config FILE] investigator add --name NAME --pubkey FILE.asc --perms SET,BIT,...
      add an active investigator directly in the database (e.g. the first administrator:
      --perms PermAdmin,PermManifest,PermLoader)
  mig-api [--config FILE] import-mig --from postgresql://USER@HOST/DB [--platform OS/ARCH]
          [--cafile CA.pem] [--max-rows N] [--yes]
      import MIG's investigators, loaders (their keys keep working) and manifests (for OS/ARCH,
      default linux/amd64) from MIG's PostgreSQL database; the password is read from
      PGPASSWORD; a database not on this machine is reached over TLS verified against
      --cafile (default: [database] cafile); a table of more than N rows (default 100000) is
      refused; the investigators it will create are shown first, and it goes on when
      confirmed on the terminal or given --yes; running it again imports nothing twice
  mig-api freshness-key new --out FILE
      generate the online freshness key (Ed25519): its secret half to FILE (mode 0600, never
      over an existing file), for [freshness] key of every replica; its armored public half on
      stdout, for [freshness] key of the loaders' build configuration";

enum Command {
    Serve,
    AddInvestigator {
        name: String,
        pubkey: PathBuf,
        perms: Vec<String>,
    },
    ImportMig {
        from: String,
        cafile: Option<PathBuf>,
        yes: bool,
        opts: import_mig::Options,
    },
    NewFreshnessKey {
        out: PathBuf,
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
    let (mut from, mut platform) = (None, None);
    let (mut cafile, mut max_rows, mut yes) = (None, None, false);
    let mut out = None;
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "--name" => name = Some(value("--name")?),
            "--pubkey" => pubkey = Some(PathBuf::from(value("--pubkey")?)),
            "--perms" => perms = Some(value("--perms")?),
            "--from" => from = Some(value("--from")?),
            "--platform" => platform = Some(value("--platform")?),
            "--cafile" => cafile = Some(PathBuf::from(value("--cafile")?)),
            "--max-rows" => max_rows = Some(value("--max-rows")?),
            "--yes" => yes = true,
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => words.push(s.to_string()),
        }
    }
    let command = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["freshness-key", "new"] => Command::NewFreshnessKey {
            out: out.ok_or("freshness-key new needs --out FILE")?,
        },
        _ if out.is_some() => return Err("--out belongs to `freshness-key new`".into()),
        ["import-mig"] => {
            let platform = platform.unwrap_or_else(|| "linux/amd64".into());
            let (os, arch) = platform
                .split_once('/')
                .ok_or_else(|| format!("--platform {platform:?} is not OS/ARCH"))?;
            let max_rows = match max_rows {
                Some(n) => n
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--max-rows {n:?} is not a positive number"))?,
                None => import_mig::DEFAULT_MAX_ROWS,
            };
            Command::ImportMig {
                from: from.ok_or("import-mig needs --from postgresql://USER@HOST/DB")?,
                cafile,
                yes,
                opts: import_mig::Options {
                    platform: Platform {
                        os: os.into(),
                        arch: arch.into(),
                    },
                    max_rows,
                },
            }
        }
        _ if from.is_some()
            || platform.is_some()
            || cafile.is_some()
            || max_rows.is_some()
            || yes =>
        {
            return Err(
                "--from, --platform, --cafile, --max-rows and --yes belong to `import-mig`".into(),
            )
        }
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
    server::start_up(&app)?;
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
    let db = Db::open(&cfg.database())?;
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

/// Shows the investigators `import-mig` will create, with their permissions, and asks on the
/// terminal unless `--yes` was given; without a terminal it stops there.
fn confirm(plan: &[import_mig::Planned], yes: bool) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Read, Write};
    if plan.is_empty() {
        println!("import-mig will create no investigator");
    } else {
        println!("import-mig will create these investigators:");
    }
    for p in plan {
        let perms = mig_protocol::admin::permission_names(p.permissions);
        println!(
            "  MIG investigator {} {:?} ({}), fingerprint {}: {}",
            p.mig_id,
            p.name,
            if p.disabled { "disabled" } else { "active" },
            p.fingerprint,
            if perms.is_empty() {
                "no permissions".to_string()
            } else {
                perms.join(",")
            }
        );
    }
    if yes {
        return Ok(true);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!("mig-api: nothing imported: give --yes to import without a terminal");
        return Ok(false);
    }
    print!("import them, and MIG's loaders and manifests? [y/N] ");
    std::io::stdout()
        .flush()
        .map_err(|e| Error::Config(format!("writing to the terminal: {e}")))?;
    let mut answer = String::new();
    // One short line is all an answer is; a longer one is not "y".
    stdin
        .lock()
        .take(64)
        .read_line(&mut answer)
        .map_err(|e| Error::Config(format!("reading the answer: {e}")))?;
    let agreed = matches!(answer.trim(), "y" | "Y" | "yes");
    if !agreed {
        eprintln!("mig-api: nothing imported");
    }
    Ok(agreed)
}

fn import_mig(
    cfg: Config,
    from: &str,
    cafile: Option<&Path>,
    yes: bool,
    opts: &import_mig::Options,
) -> Result<bool> {
    let ca = import_mig::source_ca(&cfg, cafile)?;
    let mut client = import_mig::connect(from, ca.as_ref())?;
    let app = App::open(cfg)?;
    server::start_up(&app)?;
    let Some(s) = import_mig::run(&app, &mut client, opts, |plan| confirm(plan, yes))? else {
        return Ok(false);
    };
    for note in &s.notes {
        println!("{note}");
    }
    println!(
        "imported from MIG: {} investigators, {} loaders, {} manifests; {} already here; {} notes",
        s.investigators,
        s.loaders,
        s.manifests,
        s.already,
        s.notes.len()
    );
    Ok(true)
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
        Command::Serve => serve(cfg).map(|()| true),
        Command::AddInvestigator {
            name,
            pubkey,
            perms,
        } => add_investigator(cfg, name, pubkey, perms).map(|()| true),
        Command::ImportMig {
            from,
            cafile,
            yes,
            opts,
        } => import_mig(cfg, from, cafile.as_deref(), *yes, opts),
        Command::NewFreshnessKey { out } => api::freshness::generate(out).map(|public| {
            eprintln!(
                "mig-api: freshness key written to {} (mode 0600); its public half follows: \
                 name it in the loaders' build configuration ([freshness] key)",
                out.display()
            );
            print!("{public}");
            true
        }),
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("mig-api: {e}");
            ExitCode::FAILURE
        }
    }
}
