//! The targeting expression language (plugins/expr), lexer and parser built natively: `check`
//! is what the API runs on every uploaded target and expectenv.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let _ = expr::check(src);
});
