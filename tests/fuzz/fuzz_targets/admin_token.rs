//! The administrators' `X-PGPAUTHORIZATION` token (mig_protocol::admin::AuthToken).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mig_protocol::admin::AuthToken;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = AuthToken::parse(text) {
        let _ = t.signed_data();
    }
    // The audience both the console and the API write from a URL.
    if let Ok(a) = mig_protocol::admin::audience(text) {
        assert_eq!(
            mig_protocol::admin::audience(&a).ok().as_deref(),
            Some(a.as_str())
        );
    }
});
