#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mlflow_archive::fuzzing::parse_records(data);
});
