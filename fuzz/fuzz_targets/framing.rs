//! Message framing from Content-Length / Transfer-Encoding fields.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| statuslab_server::fuzzing::framing(data));
