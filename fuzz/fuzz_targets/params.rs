//! Durations, sleep= / retry_after=, /status code lists and sequence code lists.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| statuslab_server::fuzzing::params(data));
