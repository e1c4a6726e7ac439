//! Fuzz target `checkpoint_note`: see `ringtrail::fuzz::checkpoint_note` (src/fuzz.rs), whose
//! check this calls; `cargo test` replays `tests/fuzz_corpus/checkpoint_note/`
//! through the same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = ringtrail::fuzz::checkpoint_note(data) {
        panic!("checkpoint_note check failed: {e}");
    }
});
