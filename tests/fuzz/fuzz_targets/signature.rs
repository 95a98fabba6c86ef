//! Armored signatures and M-of-N verification (mig_protocol::signature): the input is split at
//! NUL bytes into signed data and signatures; nothing that was not made by a development key
//! may count, and MIG's de-armored form round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mig_protocol::signature::{dearmor, rearmor, verify};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let signed = parts.next().unwrap_or_default();
    let sigs: Vec<String> = parts
        .take(4)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let verdict = verify(mig_fuzz::dev_keyring(), signed, &sigs);
    assert!(verdict.valid.len() <= sigs.len());
    assert!(verdict
        .valid
        .iter()
        .all(|f| mig_fuzz::dev_keyring().fingerprints().contains(f)));
    for s in &sigs {
        if let Ok(flat) = dearmor(s) {
            let _ = rearmor(&flat);
        }
        let _ = mig_protocol::signature::parse_public_key("fuzz", s);
    }
});
