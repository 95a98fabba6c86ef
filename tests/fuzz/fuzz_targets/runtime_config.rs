//! The loader's run-time configuration file (loader_min::config, MIG's gcfg subset).
#![no_main]
use libfuzzer_sys::fuzz_target;
use loader_min::config::RuntimeConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = RuntimeConfig::parse(text) {
        if let Some(api) = &cfg.api {
            assert!(!api.chars().any(char::is_whitespace));
        }
    }
});
