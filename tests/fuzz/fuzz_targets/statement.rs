//! The signed statement (mig_protocol::statement): parse, validate, and a parsed statement
//! survives its own serialisation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mig_protocol::statement::Statement;

fuzz_target!(|data: &[u8]| {
    if let Ok(st) = Statement::parse(data) {
        let _ = st.validate();
        let bytes = st.to_bytes().expect("a parsed statement serialises");
        let again = Statement::parse(&bytes).expect("a serialised statement parses");
        assert_eq!(again.to_bytes().expect("serialises"), bytes);
    }
});
