//! The API's manifest archive intake (mig-archive, api/archive): gzip, then tar, under the caps,
//! into a store that keeps members in memory.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mig_archive::{extract, Caps, Store};
use mig_protocol::Sha256;
use std::io::Read;

struct Memory;

impl Store for Memory {
    type Error = std::io::Error;
    fn store(&self, member: &mut dyn Read) -> Result<(Sha256, u64), std::io::Error> {
        let mut data = Vec::new();
        member.read_to_end(&mut data)?;
        Ok((Sha256::of(&data), data.len() as u64))
    }
}

const CAPS: Caps = Caps {
    entries: 8,
    file_size: 1 << 20,
    total_size: 4 << 20,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(files) = extract(data, &CAPS, &Memory) {
        assert!(!files.is_empty() && files.len() <= CAPS.entries);
        assert!(files.iter().all(|f| f.size <= CAPS.file_size));
        assert!(files.iter().all(|f| f.dict_name().is_some()));
    }
});
