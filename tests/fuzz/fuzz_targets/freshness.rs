//! The freshness document (mig_protocol::freshness, docs/design.md §4.20): the input is split at
//! the first NUL into a document's text and its armored signature. `Document::parse` and its round
//! trip, then `FreshnessKey::check` with the development freshness key over the seeds' statement,
//! as a loader checks an answer: what it accepts is over exactly that statement and serial.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mig_protocol::freshness::{Document, Freshness};
use mig_protocol::time::Timestamp;
use mig_protocol::{Serial, Sha256};

fuzz_target!(|data: &[u8]| {
    let (text, signature) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Ok(doc) = Document::parse(text) {
        let again = doc.to_text().expect("a parsed document serialises");
        assert_eq!(
            Document::parse(&again).expect("a serialised document parses"),
            doc
        );
        assert!(doc.expires > doc.issued);
    }
    let f = Freshness {
        document: text.to_string(),
        signature: String::from_utf8_lossy(signature).into_owned(),
    };
    let serial = Serial::new(mig_fuzz::FRESHNESS_SERIAL);
    if let Ok(doc) = mig_fuzz::dev_freshness_key().check(
        Some(&f),
        mig_fuzz::FRESHNESS_STATEMENT,
        serial,
        Timestamp::now(),
    ) {
        assert_eq!(doc.statement, Sha256::of(mig_fuzz::FRESHNESS_STATEMENT));
        assert_eq!(doc.serial, serial);
        assert_eq!(Document::parse(text).ok(), Some(doc));
    }
});
