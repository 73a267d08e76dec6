#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| panoptes_storage::fuzzing::segment_scan(data));
