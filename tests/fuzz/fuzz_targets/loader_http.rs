//! The loader's HTTP response handling: the fuzzer's bytes are the whole answer of the API (status
//! line, headers, body) to `POST loader/manifest` (first byte even) or to `GET loader/files/…`
//! (odd), through the real client over loopback.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mig_protocol::loader::{LoaderKey, ManifestRequest};
use mig_protocol::statement::Entry;
use std::sync::OnceLock;

fn staged() -> &'static std::path::Path {
    static P: OnceLock<std::path::PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mig-fuzz-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        dir.join("agent.mig-new")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, answer)) = data.split_first() else {
        return;
    };
    let server = mig_fuzz::raw_server();
    server.set_answer(answer);
    let client = mig_http::Client::new(&mig_fuzz::fuzz_http(), &server.base_url())
        .expect("a client for loopback");
    let key = LoaderKey::parse("abcdefghABCDEFGH0123456789abcdefghABCDEF").expect("a loader key");
    let limits = mig_fuzz::fuzz_limits();
    if which % 2 == 0 {
        let _ = loader_min::statement::request(&client, &key, &ManifestRequest::default(), &limits);
    } else {
        let body = b"the agent";
        let entry = Entry {
            name: "mig-agent".into(),
            sha256: mig_protocol::Sha256::of(body),
            size: body.len() as u64,
        };
        let path = staged();
        if loader_min::fetch::stage(&client, &key, &entry, path, 0o600, &limits).is_ok() {
            // Only the signed bytes may ever be kept.
            assert_eq!(std::fs::read(path).expect("staged file"), body);
        } else {
            assert!(!path.exists(), "a failed download leaves nothing staged");
        }
        let _ = std::fs::remove_file(path);
    }
});
