//! Fuzz target `fields_json`: field lists built from the input bytes go
//! through `ringtrail::encode::json::write_fields`; the output must be one
//! JSON object that `jsonb` accepts (no `\u0000`, no bare NaN/Infinity, no
//! raw control characters) and that holds every field, in order, with the
//! documented mapping of NUL and non-finite floats. The check logic lives in
//! `ringtrail_testkit::fuzz_checks`, shared with `cargo test`.

#![no_main]

use ringtrail_testkit::fuzz_checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = fuzz_checks::fields_json(data) {
        panic!("fields_json check failed: {e}");
    }
});
