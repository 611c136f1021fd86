//! Chunked content: the same result whole, byte by byte and in two pieces, within max_body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| statuslab_server::fuzzing::chunked(data));
