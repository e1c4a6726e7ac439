//! Fuzz target `cursor`: see `ringtrail::fuzz::cursor` (src/fuzz.rs), whose
//! check this calls; `cargo test` replays `tests/fuzz_corpus/cursor/`
//! through the same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = ringtrail::fuzz::cursor(data) {
        panic!("cursor check failed: {e}");
    }
});
