//! Authorization (Basic, Bearer), Accept negotiation, and location= (never an open redirect).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| statuslab_server::fuzzing::header_values(data));
