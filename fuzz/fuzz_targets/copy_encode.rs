//! Fuzz target `copy_encode`: rows built from the input bytes go through
//! `CopyEncoder` in one or more batches; every batch must decode, with the
//! independent decoder in `ringtrail_testkit::copy_decoder`, to exactly the
//! rows pushed, apart from the documented sanitizing. The check logic lives
//! in `ringtrail_testkit::fuzz_checks` so `cargo test` replays the corpus
//! through the same code (`tests/encode_fuzz_regressions.rs`).

#![no_main]

use ringtrail_testkit::fuzz_checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = fuzz_checks::copy_encode(data) {
        panic!("copy_encode check failed: {e}");
    }
});
