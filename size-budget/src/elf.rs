//! What size-budget reads from the loader's ELF file, through the `object` crate (already in the
//! lockfile through wasmtime): whether it is static, its section names, and its symbols' bytes per
//! crate. The file is input like any other: `object` bounds-checks every read, and a malformed
//! file is an error, never a panic.

use object::read::elf::{ElfFile, ElfFile32, ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, FileKind, Object, ObjectSection, ObjectSymbol};
use std::collections::BTreeMap;

const PT_INTERP: u32 = 3;

/// 64-bit targets (x86_64, arm64) and 32-bit ones (ARMv7, ARMv6).
enum Class<'a> {
    Elf32(ElfFile32<'a, Endianness>),
    Elf64(ElfFile64<'a, Endianness>),
}

pub struct Elf<'a> {
    file: Class<'a>,
}

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, String> {
        let file = match FileKind::parse(data) {
            Ok(FileKind::Elf32) => ElfFile32::parse(data).map(Class::Elf32),
            Ok(FileKind::Elf64) => ElfFile64::parse(data).map(Class::Elf64),
            _ => return Err("not an ELF file".into()),
        };
        file.map(|file| Elf { file })
            .map_err(|e| format!("not an ELF file: {e}"))
    }

    /// True when no program header asks for a dynamic loader (PT_INTERP): static or static-pie.
    pub fn is_static(&self) -> Result<bool, String> {
        Ok(match &self.file {
            Class::Elf32(f) => !has_interp(f),
            Class::Elf64(f) => !has_interp(f),
        })
    }

    /// The section names, in file order.
    pub fn section_names(&self) -> Vec<String> {
        match &self.file {
            Class::Elf32(f) => section_names(f),
            Class::Elf64(f) => section_names(f),
        }
    }

    /// Bytes of function and object symbols per crate, from `.symtab` (absent once stripped).
    pub fn bytes_by_crate(&self) -> Result<BTreeMap<String, u64>, String> {
        match &self.file {
            Class::Elf32(f) => bytes_by_crate(f),
            Class::Elf64(f) => bytes_by_crate(f),
        }
    }
}

fn has_interp<H: FileHeader<Endian = Endianness>>(f: &ElfFile<'_, H>) -> bool {
    let endian = f.endian();
    f.elf_program_headers()
        .iter()
        .any(|ph| ph.p_type(endian) == PT_INTERP)
}

fn section_names<H: FileHeader<Endian = Endianness>>(f: &ElfFile<'_, H>) -> Vec<String> {
    f.sections()
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect()
}

fn bytes_by_crate<H: FileHeader<Endian = Endianness>>(
    f: &ElfFile<'_, H>,
) -> Result<BTreeMap<String, u64>, String> {
    if f.symbol_table().is_none() {
        return Err("no .symtab (binary is stripped)".into());
    }
    let mut out = BTreeMap::new();
    for sym in f.symbols() {
        let size = sym.size();
        if size == 0 {
            continue;
        }
        let name = sym.name().map_err(|e| format!("symbol name: {e}"))?;
        *out.entry(crate_of(name)).or_insert(0) += size;
    }
    Ok(out)
}

/// The crate a symbol belongs to: the first path segment of a Rust legacy (`_ZN`) or v0 (`_R`)
/// mangled name; ring's C and assembly carry a `ring_core_` prefix; other C symbols (musl,
/// libunwind) are grouped as `[C/asm]`.
pub fn crate_of(sym: &str) -> String {
    fn first_ident(s: &str) -> Option<String> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        let len: usize = digits.parse().ok()?;
        s.get(digits.len()..digits.len() + len).map(str::to_string)
    }
    if let Some(rest) = sym.strip_prefix("_ZN") {
        let id = first_ident(rest).unwrap_or_default();
        // `_ZN4core3ptr..` is attributed by its first word, and an impl such as
        // `_ZN100_$LT$$RF$mut$u20$serde_json..ser..Serializer..` by the first path inside it.
        let words = id
            .replace("$LT$", " ")
            .replace("$RF$", " ")
            .replace("$u20$", " ")
            .replace("$u5b$", " ");
        let first = words
            .split(' ')
            .flat_map(|w| w.split(".."))
            .map(|w| w.trim_start_matches('_'))
            .find(|w| !w.is_empty() && !matches!(*w, "mut" | "dyn" | "const"));
        if let Some(w) = first {
            return w.split('$').next().unwrap_or(w).to_string();
        }
    }
    if sym.starts_with("ring_core_") {
        return "ring".to_string();
    }
    if let Some(rest) = sym.strip_prefix("_R") {
        // v0: `_RNvCs<hash>_<len><crate>` — find the first `C` path root.
        if let Some(p) = rest.find('C') {
            let after = &rest[p + 1..];
            let after = after
                .strip_prefix('s')
                .map(|a| &a[a.find('_').map_or(0, |i| i + 1)..])
                .unwrap_or(after);
            if let Some(id) = first_ident(after) {
                return id;
            }
        }
    }
    "[C/asm]".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_are_read_from_mangled_names() {
        assert_eq!(
            crate_of("_ZN3pgp6packet9signature5parse17h0123456789abcdefE"),
            "pgp"
        );
        assert_eq!(crate_of("_ZN4core3fmt5write17h1E"), "core");
        assert_eq!(crate_of("ring_core_0_17_14__bn_mul_mont"), "ring");
        assert_eq!(crate_of("memcpy"), "[C/asm]");
        assert_eq!(
            crate_of("_ZN100_$LT$$RF$mut$u20$serde_json..ser..Serializer$LT$W$GT$$u20$as$u20$serde_core..ser..Serializer$GT$13serialize_map17he4a54aa6f783f4aeE"),
            "serde_json"
        );
        assert_eq!(
            crate_of("_ZN50_$LT$pgp..types..Foo$u20$as$u20$core..Bar$GT$3foo17h0E"),
            "pgp"
        );
        assert_eq!(crate_of("_RNvCs1234_6rustls6client"), "rustls");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Elf::parse(b"MZ\x90\x00").is_err());
        let mut fake = b"\x7fELF\x02\x01".to_vec();
        fake.resize(16, 0);
        assert!(
            Elf::parse(&fake).is_err(),
            "truncated headers must not panic"
        );
    }

    /// A 32-bit little-endian ARM executable header (the ARMv7 and ARMv6 loaders' class) with
    /// neither program nor section headers: read as static, with no symbol table to attribute.
    #[test]
    fn a_32_bit_arm_elf_is_read() {
        let mut h = vec![0u8; 52];
        h[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
        h[16] = 2; // e_type: ET_EXEC
        h[18] = 40; // e_machine: EM_ARM
        h[20] = 1; // e_version
        h[40] = 52; // e_ehsize
        let elf = Elf::parse(&h).unwrap();
        assert!(elf.is_static().unwrap());
        assert!(elf.bytes_by_crate().unwrap_err().contains("no .symtab"));
    }

    #[test]
    fn this_test_binary_is_read() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let elf = Elf::parse(&exe).unwrap();
        let names = elf.section_names();
        assert!(elf.is_static().is_ok());
        assert!(names.iter().any(|n| n == ".text"));
        let by_crate = elf.bytes_by_crate().unwrap();
        assert!(
            by_crate.get("size_budget").copied().unwrap_or(0) > 0,
            "{by_crate:?}"
        );
    }
}
