//! If-Match / If-None-Match / If-(Un)Modified-Since parsing and RFC 9110 evaluation order.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| statuslab_server::fuzzing::conditions(data));
