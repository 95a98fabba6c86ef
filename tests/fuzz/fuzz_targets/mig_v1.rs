//! MIG's v1 protocol (docs/design.md §8.3): the form a Go loader posts, a v1 signed text read
//! back into entries (which must rebuild it exactly), a Collection+JSON document, and the
//! one-line signature form sent to Go loaders.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mig_protocol::mig_v1::{entries_of, parse_form, signed_text, Collection};

fuzz_target!(|data: &[u8]| {
    let _ = parse_form(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(entries) = entries_of(text) {
        let again = signed_text(entries.iter().map(|e| (e.name.as_str(), e.sha256.as_str())))
            .expect("the entries of a canonical text make a text");
        assert_eq!(again, text, "a canonical text rebuilds itself");
    }
    if let Ok(c) = serde_json::from_str::<Collection>(text) {
        let _ = c.value();
        serde_json::to_string(&c).expect("a parsed collection serialises");
    }
    let _ = mig_protocol::signature::go_flat(text);
});
