//! Fuzz target `encoded_json`: see `ringtrail::fuzz::encoded_json` (src/fuzz.rs), whose
//! check this calls; `cargo test` replays `tests/fuzz_corpus/encoded_json/`
//! through the same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = ringtrail::fuzz::encoded_json(data) {
        panic!("encoded_json check failed: {e}");
    }
});
