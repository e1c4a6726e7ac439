//! Fuzz target `stored_tuple`: see `ringtrail::fuzz::stored_tuple` (src/fuzz.rs), whose
//! check this calls; `cargo test` replays `tests/fuzz_corpus/stored_tuple/`
//! through the same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = ringtrail::fuzz::stored_tuple(data) {
        panic!("stored_tuple check failed: {e}");
    }
});
