//! An HTTP/1.1 request head: parse, limits, answers independent of how the bytes are split, Host values.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| statuslab_server::fuzzing::request_head(data));
