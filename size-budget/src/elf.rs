//! What size-budget reads from the loader's ELF file, through the `object` crate (already in the
//! lockfile through wasmtime): whether it is static, its section names, and its symbols' bytes per
//! crate. The file is input like any other: `object` bounds-checks every read, and a malformed
//! file is an error, never a panic.

use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol};
use std::collections::BTreeMap;

const PT_INTERP: u32 = 3;

pub struct Elf<'a> {
    file: ElfFile64<'a, Endianness>,
}

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, String> {
        ElfFile64::parse(data)
            .map(|file| Elf { file })
            .map_err(|e| format!("not an ELF64 file: {e}"))
    }

    /// True when no program header asks for a dynamic loader (PT_INTERP): static or static-pie.
    pub fn is_static(&self) -> Result<bool, String> {
        let endian = self.file.endian();
        Ok(!self
            .file
            .elf_program_headers()
            .iter()
            .any(|ph| ph.p_type(endian) == PT_INTERP))
    }

    /// The section names, in file order.
    pub fn section_names(&self) -> Vec<String> {
        self.file
            .sections()
            .filter_map(|s| s.name().ok().map(str::to_string))
            .collect()
    }

    /// Bytes of function and object symbols per crate, from `.symtab` (absent once stripped).
    pub fn bytes_by_crate(&self) -> Result<BTreeMap<String, u64>, String> {
        if self.file.symbol_table().is_none() {
            return Err("no .symtab (binary is stripped)".into());
        }
        let mut out = BTreeMap::new();
        for sym in self.file.symbols() {
            let size = sym.size();
            if size == 0 {
                continue;
            }
            let name = sym.name().map_err(|e| format!("symbol name: {e}"))?;
            *out.entry(crate_of(name)).or_insert(0) += size;
        }
        Ok(out)
    }
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
