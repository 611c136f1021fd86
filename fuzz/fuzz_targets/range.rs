//! Range headers: bounded, coalesced ranges and well-formed 206 parts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| statuslab_server::fuzzing::range(data));
