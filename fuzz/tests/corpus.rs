//! Replays the fuzz corpus (and every prefix of each seed) through the fuzz harness on
//! stable Rust, so the harness runs in `cargo test` even where libFuzzer cannot.

use std::path::Path;

#[test]
fn the_corpus_goes_through_probe_analyze_and_process_without_crashing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/decode_analyze");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read seed");
        pixeld_fuzz::decode_analyze(&bytes);
        pixeld_fuzz::process_all(&bytes);
        // Truncations are the most common real-world corruption.
        for cut in (0..bytes.len()).step_by(bytes.len() / 16 + 1) {
            pixeld_fuzz::decode_analyze(&bytes[..cut]);
        }
        n += 1;
    }
    assert!(n >= 5, "only {n} seeds in {}", dir.display());
}
