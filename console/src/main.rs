//! `mig-console`: see the crate's README and `console::cli`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    console::cli::main()
}
