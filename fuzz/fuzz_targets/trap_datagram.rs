#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| panoptes::fuzzing::trap_datagram(data));
