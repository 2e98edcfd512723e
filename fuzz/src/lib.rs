//! The fuzz harness, shared by the libFuzzer target and the corpus replay test.

use pixeld_imaging::{Limits, Options};

/// Small limits so that every input is cheap and a limit bug shows up as a crash or OOM.
pub fn limits() -> Limits {
    Limits {
        max_input_bytes: 1 << 20,
        max_pixels: 1 << 20,
        max_dimension: 2048,
    }
}

/// Option sets exercised by the fuzzer; the first input byte picks one.
const QUERIES: &[&str] = &[
    "",
    "w=64&format=jpeg",
    "w=32&h=32&fit=cover&gravity=smart&format=png&effort=0",
    "w=40&h=20&fit=contain&format=webp&bg=%23102030",
    "format=webp&lossless&rotate=90&flip",
    "w=16&h=48&fit=fill&format=png&metadata=keep&blur=1&sharpen=1",
    "crop=0,0,8,8&format=jpeg&progressive&metadata=keep&keep_gps",
    "w=100&enlarge&format=png&icc=keep",
    // A JPEG shrunk to 1/8, 1/4 or 3/8 and only resized to lossy WebP or JPEG: its YCbCr
    // planes go to the encoder directly (pixeld-imaging's `process_planar`), odd sizes
    // included.
    "w=24&format=webp&q=70",
    "w=9&h=5&fit=fill&format=webp&fast_shrink&metadata=keep",
    "w=240&format=jpeg&q=85",
];

/// Probe, analyze and process one input: any outcome but a panic, an abort or an
/// out-of-memory is fine. The option set is picked by the input's length: every JPEG starts
/// with the same byte, so the first byte would give all of them one set.
pub fn decode_analyze(data: &[u8]) {
    let limits = limits();
    let _ = pixeld_imaging::probe(data, &limits);
    let _ = pixeld_imaging::analyze(data, &limits);
    process(data, QUERIES[data.len() % QUERIES.len()]);
}

/// Every option set on one input (the corpus replay test; the fuzzer picks one per input).
pub fn process_all(data: &[u8]) {
    for query in QUERIES {
        process(data, query);
    }
}

fn process(data: &[u8], query: &str) {
    let limits = limits();
    let opts = Options::from_query(query).expect("the fuzz option sets are valid");
    if let Ok(out) = pixeld_imaging::process(data, &opts, &limits) {
        // What we write, we must be able to read back.
        assert!(out.width > 0 && out.height > 0);
        pixeld_imaging::probe(&out.bytes, &limits).expect("our own output probes");
    }
}
