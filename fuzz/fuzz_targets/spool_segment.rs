//! Fuzz target `spool_segment`: see `ringtrail::fuzz::spool_segment`
//! (src/fuzz.rs), whose check this calls; `cargo test` replays
//! `tests/fuzz_corpus/spool_segment/` through the same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = ringtrail::fuzz::spool_segment(data) {
        panic!("spool_segment check failed: {e}");
    }
});
