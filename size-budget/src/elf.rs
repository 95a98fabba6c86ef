//! Just enough ELF64 reading to say whether a binary is static and which crates its symbols
//! come from. Everything read is bounds-checked: the file is input like any other.

use std::collections::BTreeMap;

pub struct Elf<'a> {
    data: &'a [u8],
}

#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub kind: u32,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
    pub entsize: u64,
}

const PT_INTERP: u32 = 3;
const SHT_SYMTAB: u32 = 2;

fn rd<const N: usize>(d: &[u8], off: u64) -> Result<[u8; N], String> {
    let off = usize::try_from(off).map_err(|_| "offset overflow".to_string())?;
    d.get(off..off.checked_add(N).ok_or("offset overflow")?)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("ELF truncated at byte {off}"))
}
fn u16_at(d: &[u8], off: u64) -> Result<u16, String> {
    Ok(u16::from_le_bytes(rd::<2>(d, off)?))
}
fn u32_at(d: &[u8], off: u64) -> Result<u32, String> {
    Ok(u32::from_le_bytes(rd::<4>(d, off)?))
}
fn u64_at(d: &[u8], off: u64) -> Result<u64, String> {
    Ok(u64::from_le_bytes(rd::<8>(d, off)?))
}

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, String> {
        if data.get(..4) != Some(b"\x7fELF") || data.get(4) != Some(&2) || data.get(5) != Some(&1) {
            return Err("not a little-endian ELF64 file".into());
        }
        Ok(Elf { data })
    }

    /// True when no program header asks for a dynamic loader (PT_INTERP): static or static-pie.
    pub fn is_static(&self) -> Result<bool, String> {
        let phoff = u64_at(self.data, 0x20)?;
        let phentsize = u64::from(u16_at(self.data, 0x36)?);
        let phnum = u64::from(u16_at(self.data, 0x38)?);
        for i in 0..phnum {
            if u32_at(self.data, phoff + i * phentsize)? == PT_INTERP {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub fn sections(&self) -> Result<Vec<Section>, String> {
        let shoff = u64_at(self.data, 0x28)?;
        let shentsize = u64::from(u16_at(self.data, 0x3a)?);
        let shnum = u64::from(u16_at(self.data, 0x3c)?);
        let shstrndx = u64::from(u16_at(self.data, 0x3e)?);
        let mut raw = Vec::new();
        for i in 0..shnum {
            let b = shoff + i * shentsize;
            raw.push((
                u32_at(self.data, b)?,
                Section {
                    name: String::new(),
                    kind: u32_at(self.data, b + 4)?,
                    offset: u64_at(self.data, b + 0x18)?,
                    size: u64_at(self.data, b + 0x20)?,
                    link: u32_at(self.data, b + 0x28)?,
                    entsize: u64_at(self.data, b + 0x38)?,
                },
            ));
        }
        let names = raw
            .get(shstrndx as usize)
            .map(|(_, s)| s.clone())
            .ok_or("no section name table")?;
        raw.into_iter()
            .map(|(name_off, mut s)| {
                s.name = self.cstr(names.offset + u64::from(name_off))?;
                Ok(s)
            })
            .collect()
    }

    fn cstr(&self, off: u64) -> Result<String, String> {
        let start = usize::try_from(off).map_err(|_| "offset overflow")?;
        let rest = self.data.get(start..).ok_or("string offset past the end")?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("unterminated string")?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    /// Bytes of function and object symbols per crate, from `.symtab` (absent once stripped).
    pub fn bytes_by_crate(&self) -> Result<BTreeMap<String, u64>, String> {
        let sections = self.sections()?;
        let symtab = sections
            .iter()
            .find(|s| s.kind == SHT_SYMTAB)
            .ok_or("no .symtab (binary is stripped)")?;
        let strtab = sections
            .get(symtab.link as usize)
            .ok_or("symtab without string table")?;
        let mut out = BTreeMap::new();
        let n = symtab.size.checked_div(symtab.entsize).unwrap_or(0);
        for i in 0..n {
            let b = symtab.offset + i * symtab.entsize;
            let name = self.cstr(strtab.offset + u64::from(u32_at(self.data, b)?))?;
            let size = u64_at(self.data, b + 16)?;
            if size > 0 {
                *out.entry(crate_of(&name)).or_insert(0) += size;
            }
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
        let e = Elf::parse(&fake).unwrap();
        assert!(e.is_static().is_err(), "truncated headers must not panic");
    }

    #[test]
    fn this_test_binary_is_read() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let elf = Elf::parse(&exe).unwrap();
        let names: Vec<String> = elf
            .sections()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert!(names.iter().any(|n| n == ".text"));
        let by_crate = elf.bytes_by_crate().unwrap();
        assert!(
            by_crate.get("size_budget").copied().unwrap_or(0) > 0,
            "{by_crate:?}"
        );
    }
}
