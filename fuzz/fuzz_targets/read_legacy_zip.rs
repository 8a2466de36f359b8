#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mlflow_archive::fuzzing::read_legacy_zip(data);
});
