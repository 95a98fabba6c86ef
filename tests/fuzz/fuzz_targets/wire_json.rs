//! The JSON documents that cross the wire: the loader's manifest request, response and report,
//! and the administrators' manifest, loader and investigator documents.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mig_protocol::admin::{NewInvestigator, NewLoader, NewManifest, NewPlugin, NewSignature};
use mig_protocol::loader::{ManifestRequest, ManifestResponse, Report};

fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned>(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        let text = serde_json::to_vec(&v).expect("a parsed document serialises");
        serde_json::from_slice::<T>(&text).expect("a serialised document parses");
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = ManifestResponse::parse(data);
    roundtrip::<ManifestRequest>(data);
    roundtrip::<Report>(data);
    roundtrip::<NewManifest>(data);
    roundtrip::<NewSignature>(data);
    roundtrip::<NewLoader>(data);
    roundtrip::<NewInvestigator>(data);
    roundtrip::<NewPlugin>(data);
});
