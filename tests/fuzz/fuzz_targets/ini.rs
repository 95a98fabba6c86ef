//! MIG's INI dialect (mig_protocol::ini), shared by api.cfg, ~/.migrc and mig-loader.cfg.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mig_protocol::ini::Ini;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ini) = Ini::parse(text) {
        let _ = ini.check(&[
            ("server", &["listen", "baseroute"]),
            ("limits", &["entries"]),
        ]);
        for e in ini.entries() {
            assert!(e.line >= 1);
        }
    }
});
