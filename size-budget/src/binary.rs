//! What size-budget checks in a loader of any of its formats: ELF (Linux), Mach-O (macOS) and PE
//! (Windows), read through the `object` crate like [`crate::elf`] (every read bounds-checked, a
//! malformed file an error). Each format has its own rule for "links nothing that is not on every
//! such system"; the symbol attribution by crate stays ELF-only ([`crate::elf`]).

use mig_test_support::targets::Target;
use object::macho;
use object::read::macho::{LoadCommandVariant, MachHeader};
use object::{Endianness, FileKind, Object};

/// What one loader file is and links.
#[derive(Debug)]
pub struct Checked {
    /// `ELF`, `Mach-O` or `PE`.
    pub format: &'static str,
    /// One line saying what it links at run time.
    pub links: String,
    /// Every rule it breaks, each a sentence.
    pub problems: Vec<String>,
}

/// Checks `data`, the loader built for `target`.
pub fn check(data: &[u8], target: &Target) -> Result<Checked, String> {
    match FileKind::parse(data).map_err(|e| format!("unknown file format: {e}"))? {
        FileKind::Elf64 | FileKind::Elf32 => {
            let elf = crate::elf::Elf::parse(data)?;
            let is_static = elf.is_static()?;
            Ok(Checked {
                format: "ELF",
                links: if is_static {
                    "static: yes (no PT_INTERP)".into()
                } else {
                    "static: NO".into()
                },
                problems: if is_static {
                    Vec::new()
                } else {
                    vec!["it is dynamically linked".into()]
                },
            })
        }
        FileKind::MachO64 => macho(data, target),
        FileKind::Pe64 => pe(data),
        other => Err(format!("not ELF, Mach-O 64 or PE32+ but {other:?}")),
    }
}

/// The newest minimum macOS a loader may ask for: `MACOSX_DEPLOYMENT_TARGET` of
/// `.cargo/config.toml` (11.0, `0x000b_0000` in Mach-O's xxxx.yy.zz encoding).
pub const MACOS_MIN: u32 = 0x000b_0000;

/// Mach-O: an executable for the target's CPU, position independent, built for macOS 11 or
/// older, linking only the system's own libraries (libSystem is always dynamic on macOS,
/// nothing else may be), and on arm64 signed (ad hoc, by the linker), without which Apple
/// silicon refuses to run it (Intel Macs run unsigned programs).
fn macho(data: &[u8], target: &Target) -> Result<Checked, String> {
    let header = macho::MachHeader64::<Endianness>::parse(data, 0)
        .map_err(|e| format!("not a Mach-O 64 file: {e}"))?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    let want_cpu = match target.go_arch {
        "arm64" => macho::CPU_TYPE_ARM64,
        "amd64" => macho::CPU_TYPE_X86_64,
        other => return Err(format!("no Mach-O CPU type for GOARCH {other}")),
    };
    if header.cputype(endian) != want_cpu {
        problems.push(format!(
            "its CPU type is {:#x}, not {want_cpu:#x} ({})",
            header.cputype(endian),
            target.go_arch
        ));
    }
    if header.filetype(endian) != macho::MH_EXECUTE {
        problems.push("it is not an executable (MH_EXECUTE)".into());
    }
    if header.flags(endian) & macho::MH_PIE == 0 {
        problems.push("it is not position independent (MH_PIE)".into());
    }
    let mut dylibs = Vec::new();
    let (mut macos, mut signed) = (false, false);
    let mut minos = None;
    let mut commands = header
        .load_commands(endian, data, 0)
        .map_err(|e| format!("load commands: {e}"))?;
    while let Some(cmd) = commands.next().map_err(|e| format!("load command: {e}"))? {
        if cmd.cmd() == macho::LC_CODE_SIGNATURE {
            signed = true;
        }
        match cmd.variant().map_err(|e| format!("load command: {e}"))? {
            LoadCommandVariant::Dylib(d) => {
                let name = cmd
                    .string(endian, d.dylib.name)
                    .map_err(|e| format!("dylib name: {e}"))?;
                dylibs.push(String::from_utf8_lossy(name).into_owned());
            }
            LoadCommandVariant::BuildVersion(b) => {
                macos |= b.platform.get(endian) == macho::PLATFORM_MACOS;
                minos = Some(b.minos.get(endian));
            }
            _ => {}
        }
    }
    if !macos {
        problems.push("it has no LC_BUILD_VERSION for macOS".into());
    }
    if let Some(v) = minos.filter(|v| *v > MACOS_MIN) {
        problems.push(format!(
            "it needs macOS {}.{} or later, not 11.0 (MACOSX_DEPLOYMENT_TARGET)",
            v >> 16,
            (v >> 8) & 0xff
        ));
    }
    if target.go_arch == "arm64" && !signed {
        problems.push("it has no code signature (LC_CODE_SIGNATURE)".into());
    }
    for d in &dylibs {
        if !(d.starts_with("/usr/lib/") || d.starts_with("/System/Library/")) {
            problems.push(format!("it links {d}, which is not part of macOS"));
        }
    }
    Ok(Checked {
        format: "Mach-O",
        links: format!(
            "macOS {}.{} or later; links only: {}",
            minos.unwrap_or(0) >> 16,
            (minos.unwrap_or(0) >> 8) & 0xff,
            dylibs.join(", ")
        ),
        problems,
    })
}

/// PE: the DLLs it imports; a MinGW runtime DLL (`libgcc_s_seh-1.dll`, `libwinpthread-1.dll`,
/// all named `lib*`) is not on Windows, so the loader must not need one.
fn pe(data: &[u8]) -> Result<Checked, String> {
    let file = object::File::parse(data).map_err(|e| format!("not a PE file: {e}"))?;
    let mut dlls: Vec<String> = file
        .imports()
        .map_err(|e| format!("imports: {e}"))?
        .iter()
        .map(|i| String::from_utf8_lossy(i.library()).to_ascii_lowercase())
        .collect();
    dlls.sort();
    dlls.dedup();
    let problems = dlls
        .iter()
        .filter(|d| d.starts_with("lib"))
        .map(|d| format!("it imports {d}, a MinGW runtime DLL that Windows does not have"))
        .collect();
    Ok(Checked {
        format: "PE",
        links: format!("imports: {}", dlls.join(", ")),
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig_test_support::targets::TARGETS;

    fn target(os: &str, arch: &str) -> Target {
        *TARGETS
            .iter()
            .find(|t| t.go_os == os && t.go_arch == arch)
            .unwrap()
    }

    #[test]
    fn anything_else_is_an_error_that_says_so() {
        let t = target("linux", "amd64");
        assert!(check(b"#!/bin/sh\n", &t).is_err());
        assert!(check(b"", &t).is_err());
        // A Mach-O magic with nothing behind it.
        let e = check(&[0xcf, 0xfa, 0xed, 0xfe, 0, 0], &target("darwin", "arm64")).unwrap_err();
        assert!(!e.is_empty());
    }

    /// A hand-made Mach-O header: arm64, MH_EXECUTE, PIE, one LC_LOAD_DYLIB `name`, an
    /// LC_BUILD_VERSION for macOS, and an LC_CODE_SIGNATURE when `signed`.
    fn macho_file(cpu: u32, name: &str, signed: bool) -> Vec<u8> {
        macho_file_for(cpu, name, signed, MACOS_MIN)
    }

    fn macho_file_for(cpu: u32, name: &str, signed: bool, minos: u32) -> Vec<u8> {
        let mut cmds: Vec<u8> = Vec::new();
        let mut ncmds = 0u32;
        let mut push = |cmds: &mut Vec<u8>, words: &[u32], tail: &[u8]| {
            let mut c: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            c.extend_from_slice(tail);
            while !c.len().is_multiple_of(8) {
                c.push(0);
            }
            let size = c.len() as u32;
            c[4..8].copy_from_slice(&size.to_le_bytes());
            cmds.extend(c);
            ncmds += 1;
        };
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        // cmd, cmdsize, name offset 24, timestamp, current, compatibility
        push(&mut cmds, &[macho::LC_LOAD_DYLIB, 0, 24, 2, 0, 0], &n);
        // cmd, cmdsize, platform, minos, sdk, ntools
        push(
            &mut cmds,
            &[
                macho::LC_BUILD_VERSION,
                0,
                macho::PLATFORM_MACOS,
                minos,
                0,
                0,
            ],
            &[],
        );
        if signed {
            push(&mut cmds, &[macho::LC_CODE_SIGNATURE, 0, 0, 0], &[]);
        }
        let mut f: Vec<u8> = [
            macho::MH_MAGIC_64,
            cpu,
            0,
            macho::MH_EXECUTE,
            ncmds,
            cmds.len() as u32,
            macho::MH_PIE,
            0,
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
        f.extend(cmds);
        f
    }

    #[test]
    fn a_mach_o_loader_links_only_macos_is_signed_and_for_its_cpu() {
        let arm = target("darwin", "arm64");
        let good = check(
            &macho_file(macho::CPU_TYPE_ARM64, "/usr/lib/libSystem.B.dylib", true),
            &arm,
        )
        .unwrap();
        assert_eq!(good.format, "Mach-O");
        assert!(good.problems.is_empty(), "{:?}", good.problems);
        assert!(good.links.contains("/usr/lib/libSystem.B.dylib"));

        let p = |f: Vec<u8>| check(&f, &arm).unwrap().problems.join("; ");
        assert!(p(macho_file(
            macho::CPU_TYPE_X86_64,
            "/usr/lib/libSystem.B.dylib",
            true
        ))
        .contains("CPU type"));
        assert!(p(macho_file(
            macho::CPU_TYPE_ARM64,
            "/opt/homebrew/lib/libssl.3.dylib",
            true
        ))
        .contains("not part of macOS"));
        assert!(p(macho_file(
            macho::CPU_TYPE_ARM64,
            "/usr/lib/libSystem.B.dylib",
            false
        ))
        .contains("code signature"));
    }
}
