//! Builds the built-in targeting plugins (`plugins/`, its own workspace) for
//! wasm32-unknown-unknown and copies the `.wasm` files into OUT_DIR, where
//! `src/targeting/builtin.rs` embeds them. So a plain `cargo build -p api` works on a fresh
//! clone; `cargo build --manifest-path plugins/Cargo.toml --target wasm32-unknown-unknown
//! --release` is the same build run by hand.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The built-in plugins: crate directories whose cdylib is named the same.
const PLUGINS: &[&str] = &["expr", "rollout", "semver"];

/// Environment a nested cargo may inherit: where crates come from and how to reach them.
/// Every other `CARGO_*` variable describes *this* build (its target, profile, flags,
/// target dir) and would confuse the plugin build.
fn keep(name: &str) -> bool {
    !name.starts_with("CARGO_")
        || name == "CARGO_HOME"
        || [
            "CARGO_NET_",
            "CARGO_HTTP_",
            "CARGO_REGISTRIES_",
            "CARGO_REGISTRY_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
}

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let plugins = manifest_dir.join("..").join("plugins");
    for p in [
        "Cargo.toml",
        "Cargo.lock",
        "sdk",
        "expr",
        "rollout",
        "semver",
    ] {
        println!("cargo:rerun-if-changed={}", plugins.join(p).display());
    }
    let target_dir = plugins.join("target");
    build(&plugins, &target_dir);
    let release = target_dir.join("wasm32-unknown-unknown").join("release");
    for name in PLUGINS {
        let from = release.join(format!("{name}.wasm"));
        let to = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
    }
}

fn build(plugins: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(plugins)
        .arg("build")
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .args([
            "--target",
            "wasm32-unknown-unknown",
            "--release",
            "--locked",
        ]);
    for (name, _) in env::vars_os() {
        let n = name.to_string_lossy();
        // Flags meant for the host (and clippy's driver) must not reach the wasm build.
        if !keep(&n)
            || [
                "RUSTFLAGS",
                "RUSTDOCFLAGS",
                "RUSTC_WORKSPACE_WRAPPER",
                "CLIPPY_ARGS",
            ]
            .contains(&n.as_ref())
        {
            cmd.env_remove(&name);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir);
    let status = cmd.status().unwrap_or_else(|e| {
        panic!(
            "running cargo to build the targeting plugins in {}: {e}",
            plugins.display()
        )
    });
    if !status.success() {
        panic!(
            "building the targeting plugins failed ({status}); run `cargo build --manifest-path plugins/Cargo.toml \
             --target wasm32-unknown-unknown --release` to see why (needs `rustup target add wasm32-unknown-unknown`)"
        );
    }
}
