//! Benchmark driver for `bench/imaging/run.sh`: times `pixeld_imaging::process` in-process
//! and computes SSIM against a full-quality reference. Not a public tool.
//!
//! ```text
//! bench run <input> <query> <runs> <output>   # median/min ms as JSON, writes the output
//! bench analyze <input> <runs>                 # median/min ms of `analyze` as JSON
//! bench noop                                  # does nothing: baseline RSS of the binary
//! bench ssim <original> <output>              # SSIM of output vs Lanczos3 of a full decode
//! ```

use std::time::Instant;

/// The `pixeld` binary's allocator, so that the bench measures what the server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use pixeld_imaging::compare::{decode_reference, resize_exact, ssim};
use pixeld_imaging::{Limits, Options, process};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") if args.len() == 5 => {
            run(&args[1], &args[2], args[3].parse().expect("runs"), &args[4])
        }
        Some("analyze") if args.len() == 3 => analyze(&args[1], args[2].parse().expect("runs")),
        Some("noop") => {}
        Some("ssim") if args.len() == 3 => {
            let limits = Limits::default();
            let original = std::fs::read(&args[1]).expect("read original");
            let output = std::fs::read(&args[2]).expect("read output");
            let out = image::load_from_memory(&output).expect("decode output");
            let reference = decode_reference(&original, &limits).expect("decode original");
            let reference = resize_exact(&reference, out.width(), out.height()).expect("resize");
            println!("{:.4}", ssim(&reference, &out).expect("ssim"));
        }
        _ => {
            eprintln!(
                "usage: bench run <input> <query> <runs> <output> | bench analyze <input> <runs> | bench noop | bench ssim <original> <output>"
            );
            std::process::exit(2);
        }
    }
}

fn run(input: &str, query: &str, runs: usize, output: &str) {
    let bytes = std::fs::read(input).expect("read input");
    let opts = Options::from_query(query).expect("options");
    let limits = Limits::default();
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let out = process(&bytes, &opts, &limits).expect("process");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        last = Some(out);
    }
    let out = last.expect("at least one run");
    std::fs::write(output, &out.bytes).expect("write output");
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"median_ms\":{:.2},\"min_ms\":{:.2},\"bytes\":{},\"width\":{},\"height\":{}}}",
        times[times.len() / 2],
        times[0],
        out.bytes.len(),
        out.width,
        out.height
    );
}

fn analyze(input: &str, runs: usize) {
    let bytes = std::fs::read(input).expect("read input");
    let limits = Limits::default();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let a = pixeld_imaging::analyze(&bytes, &limits).expect("analyze");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(a);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"median_ms\":{:.2},\"min_ms\":{:.2}}}",
        times[times.len() / 2],
        times[0]
    );
}
