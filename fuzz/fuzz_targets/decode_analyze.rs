#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pixeld_fuzz::decode_analyze(data);
});
