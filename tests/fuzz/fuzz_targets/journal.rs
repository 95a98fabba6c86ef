//! The loader's install journal (loader_min::journal), read back from disk after a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;
use loader_min::journal::Journal;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(j) = Journal::parse(text) {
        let again = Journal::parse(&j.to_text()).expect("a written journal parses");
        assert_eq!(again.to_text(), j.to_text());
    }
});
