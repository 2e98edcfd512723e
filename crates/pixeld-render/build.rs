//! Lists the bundled fonts (`fonts/*/*.woff2`) for `include_bytes!`, so adding a font to the
//! folder (with `scripts/fonts`) needs no code change.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fonts");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).expect("fonts/ exists").flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", dir.path().display());
        for f in std::fs::read_dir(dir.path()).expect("readable").flatten() {
            let p = f.path();
            if p.extension()
                .is_some_and(|e| e == "woff2" || e == "ttf" || e == "otf")
            {
                files.push((dir.file_name().to_string_lossy().into_owned(), p));
            }
        }
    }
    // A stable order keeps the fallback chain, and so the output bytes, deterministic.
    files.sort();
    let mut out = String::from(
        "/// Bundled fonts: (folder, bytes).\npub(crate) static BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for (folder, path) in &files {
        writeln!(
            out,
            "    ({folder:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("bundled_fonts.rs");
    std::fs::write(dest, out).unwrap();
}
