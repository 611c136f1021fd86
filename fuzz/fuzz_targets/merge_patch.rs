//! JSON merge patch (RFC 7386): replace, remove, keep, idempotence.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| statuslab_server::fuzzing::merge_patch(data));
