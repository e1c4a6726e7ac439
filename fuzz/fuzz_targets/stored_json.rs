//! Fuzz target `stored_json`: see `ringtrail::fuzz::stored_json` (src/fuzz.rs), whose
//! check this calls; `cargo test` replays `tests/fuzz_corpus/stored_json/`
//! through the same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = ringtrail::fuzz::stored_json(data) {
        panic!("stored_json check failed: {e}");
    }
});
