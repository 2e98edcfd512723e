//! `pixeld optimize` and `pixeld analyze`: the imaging engine on local files, on all cores.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pixeld_imaging::{Limits, Options};
use rayon::prelude::*;

const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "webp", "gif", "avif", "tif", "tiff", "bmp", "heic", "heif",
];

/// Processing options, named as in the URL query (`w=`, `format=`…) so all three ways of asking
/// mean the same thing.
#[derive(Args, Debug, Default)]
pub struct OptionFlags {
    /// Target width in pixels.
    #[arg(long, short = 'W')]
    width: Option<u32>,
    /// Target height in pixels.
    #[arg(long, short = 'H')]
    height: Option<u32>,
    /// cover, contain, fill, inside (default), outside.
    #[arg(long)]
    fit: Option<String>,
    /// Where to crop for cover: centre (default), north, …, entropy/smart.
    #[arg(long)]
    gravity: Option<String>,
    /// Crop x,y,w,h of the source first.
    #[arg(long)]
    crop: Option<String>,
    /// Rotate clockwise: 90, 180, 270.
    #[arg(long)]
    rotate: Option<String>,
    /// Mirror vertically.
    #[arg(long)]
    flip: bool,
    /// Mirror horizontally.
    #[arg(long)]
    flop: bool,
    /// Background colour for flattening and padding (e.g. ffffff).
    #[arg(long)]
    bg: Option<String>,
    /// Gaussian blur sigma.
    #[arg(long)]
    blur: Option<f32>,
    /// Sharpen sigma.
    #[arg(long)]
    sharpen: Option<f32>,
    /// jpeg, png, webp, avif, or auto (default: keep the kind of image).
    #[arg(long, short = 'f')]
    format: Option<String>,
    /// Quality 1-100.
    #[arg(long, short = 'q')]
    quality: Option<u8>,
    /// Lossless WebP/PNG.
    #[arg(long)]
    lossless: bool,
    /// Progressive JPEG / interlaced PNG (true/false).
    #[arg(long)]
    progressive: Option<bool>,
    /// CPU effort 0 (fast) to 9 (small).
    #[arg(long)]
    effort: Option<u8>,
    /// Chroma subsampling for JPEG and AVIF: auto (default: 420 below quality 90), 420 or 444.
    #[arg(long)]
    chroma: Option<String>,
    /// mozjpeg trellis quantisation (smaller JPEGs at the same quality setting, slower).
    #[arg(long)]
    trellis: bool,
    /// JPEG shrink-on-decode straight to the target size, as sharp does (default: stop at 2×
    /// the target at 1/8 and 1/4 scale, 1.5× at 3/8, and let Lanczos3 do the rest, which is
    /// sharper).
    #[arg(long)]
    fast_shrink: bool,
    /// Lossless PNG palette / bit-depth reduction when the image allows it (true/false;
    /// default true).
    #[arg(long)]
    palette: Option<bool>,
    /// Allow upscaling.
    #[arg(long)]
    enlarge: bool,
    /// Keep EXIF and ICC (GPS still removed unless --keep-gps).
    #[arg(long)]
    keep_metadata: bool,
    /// Keep GPS tags too (needs --keep-metadata).
    #[arg(long)]
    keep_gps: bool,
    /// ICC handling: srgb (default) or keep.
    #[arg(long)]
    icc: Option<String>,
}

impl OptionFlags {
    /// The options, through the same parser as the URL query.
    pub fn to_options(&self) -> Result<Options, pixeld_imaging::Error> {
        let mut q: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                q.push((k.into(), v));
            }
        };
        push("w", self.width.map(|v| v.to_string()));
        push("h", self.height.map(|v| v.to_string()));
        push("fit", self.fit.clone());
        push("gravity", self.gravity.clone());
        push("crop", self.crop.clone());
        push("rotate", self.rotate.clone());
        push("flip", self.flip.then(|| "true".into()));
        push("flop", self.flop.then(|| "true".into()));
        push("bg", self.bg.clone());
        push("blur", self.blur.map(|v| v.to_string()));
        push("sharpen", self.sharpen.map(|v| v.to_string()));
        push("format", self.format.clone());
        push("q", self.quality.map(|v| v.to_string()));
        push("lossless", self.lossless.then(|| "true".into()));
        push("progressive", self.progressive.map(|v| v.to_string()));
        push("effort", self.effort.map(|v| v.to_string()));
        push("chroma", self.chroma.clone());
        push("trellis", self.trellis.then(|| "true".into()));
        push("fast_shrink", self.fast_shrink.then(|| "true".into()));
        push("palette", self.palette.map(|v| v.to_string()));
        push("enlarge", self.enlarge.then(|| "true".into()));
        push("metadata", self.keep_metadata.then(|| "keep".into()));
        push("keep_gps", self.keep_gps.then(|| "true".into()));
        push("icc", self.icc.clone());
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish();
        let opts = Options::from_query(&query)?;
        opts.validate()?;
        Ok(opts)
    }
}

/// `pixeld optimize`.
#[derive(Args, Debug)]
pub struct OptimizeArgs {
    /// Files or directories (searched recursively for images).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output directory (created if missing).
    #[arg(short, long)]
    out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Largest input in megapixels.
    #[arg(long, default_value_t = 50)]
    max_megapixels: u64,
    #[command(flatten)]
    options: OptionFlags,
}

/// Bytes before, bytes after and the file written; or why not.
type Outcome = Result<(u64, u64, PathBuf), String>;

struct Job {
    input: PathBuf,
    relative: PathBuf,
}

fn collect(inputs: &[PathBuf]) -> (Vec<Job>, Vec<(PathBuf, String)>) {
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut stack = vec![input.clone()];
            while let Some(dir) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    errors.push((dir.clone(), "cannot read directory".into()));
                    continue;
                };
                for e in entries.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                        IMAGE_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str())
                    }) {
                        let relative = p.strip_prefix(input).unwrap_or(&p).to_path_buf();
                        jobs.push(Job { input: p, relative });
                    }
                }
            }
        } else if input.is_file() {
            jobs.push(Job {
                input: input.clone(),
                relative: PathBuf::from(input.file_name().unwrap_or_default()),
            });
        } else {
            errors.push((input.clone(), "no such file or directory".into()));
        }
    }
    jobs.sort_by(|a, b| a.input.cmp(&b.input));
    (jobs, errors)
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// Runs `pixeld optimize`.
pub fn optimize(args: OptimizeArgs) -> anyhow::Result<ExitCode> {
    let opts = match args.options.to_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?;
    let limits = Limits {
        max_pixels: args.max_megapixels * 1_000_000,
        ..Limits::default()
    };
    let (jobs, mut failures) = collect(&args.inputs);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()?;
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new(jobs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let done = AtomicUsize::new(0);
    let results: Vec<(PathBuf, Outcome)> = pool.install(|| {
        jobs.par_iter()
            .map(|job| {
                let r = (|| {
                    let bytes =
                        std::fs::read(&job.input).map_err(|e| format!("cannot read: {e}"))?;
                    let out = pixeld_imaging::process(&bytes, &opts, &limits)
                        .map_err(|e| e.to_string())?;
                    let target = args
                        .out
                        .join(&job.relative)
                        .with_extension(out.format.extension());
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                    }
                    std::fs::write(&target, &out.bytes)
                        .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
                    Ok((bytes.len() as u64, out.bytes.len() as u64, target))
                })();
                done.fetch_add(1, Ordering::Relaxed);
                bar.set_message(job.input.display().to_string());
                bar.inc(1);
                (job.input.clone(), r)
            })
            .collect()
    });
    bar.finish_and_clear();
    let (mut before, mut after, mut ok) = (0u64, 0u64, 0usize);
    println!(
        "{:<48} {:>12} {:>12} {:>8}",
        "file", "before", "after", "saved"
    );
    for (input, r) in results {
        match r {
            Ok((b, a, _target)) => {
                before += b;
                after += a;
                ok += 1;
                let saved = if b > 0 {
                    100.0 * (1.0 - a as f64 / b as f64)
                } else {
                    0.0
                };
                println!(
                    "{:<48} {:>12} {:>12} {:>7.1}%",
                    input.display(),
                    human(b),
                    human(a),
                    saved
                );
            }
            Err(e) => failures.push((input, e)),
        }
    }
    let saved = if before > 0 {
        100.0 * (1.0 - after as f64 / before as f64)
    } else {
        0.0
    };
    println!(
        "{:<48} {:>12} {:>12} {:>7.1}%",
        format!("total ({ok} optimized, {} failed)", failures.len()),
        human(before),
        human(after),
        saved
    );
    for (path, e) in &failures {
        eprintln!("error: {}: {e}", path.display());
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `pixeld analyze`.
#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Image files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

fn analyze_one(path: &Path) -> Result<serde_json::Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let a = pixeld_imaging::analyze(&bytes, &Limits::default()).map_err(|e| e.to_string())?;
    let mut v = serde_json::to_value(a).map_err(|e| e.to_string())?;
    v["file"] = serde_json::Value::String(path.display().to_string());
    v["bytes"] = serde_json::Value::from(bytes.len());
    Ok(v)
}

/// Runs `pixeld analyze`: one JSON document per input (pretty for one input, one per line for
/// several).
pub fn analyze(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let single = args.inputs.len() == 1;
    for path in &args.inputs {
        match analyze_one(path) {
            Ok(v) if single => println!("{}", serde_json::to_string_pretty(&v)?),
            Ok(v) => println!("{v}"),
            Err(e) => {
                failed = true;
                eprintln!("error: {}: {e}", path.display());
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `pixeld describe` arguments.
#[derive(clap::Args)]
pub struct DescribeArgs {
    /// Image files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// Runs `pixeld describe`: the configured vision provider's alt text and tags for each file, one
/// JSON document per file (pretty for one input, one per line for several). A file that fails
/// is named and the rest go on; the exit code is 1 if any failed, 2 without a provider.
pub async fn describe(
    config: &pixeld_server::config::Config,
    args: DescribeArgs,
) -> anyhow::Result<ExitCode> {
    let Some(vision) = pixeld_server::ai_providers(config)?.vision else {
        eprintln!(
            "error: no AI vision provider is configured; set [ai.vision] api_base and model \
             (or PIXELD_AI__VISION__API_BASE and PIXELD_AI__VISION__MODEL)"
        );
        return Ok(ExitCode::from(2));
    };
    let limits = Limits::default();
    let single = args.inputs.len() == 1;
    let mut failed = false;
    for path in &args.inputs {
        let result = async {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
            let copy = tokio::task::spawn_blocking(move || {
                pixeld_core::describe::provider_copy(&bytes, &limits)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            vision
                .describe(pixeld_ai::ImageInput {
                    bytes: &copy,
                    mime: "image/jpeg",
                })
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(d) => {
                let v = serde_json::json!({"file": path.display().to_string(), "alt_text": d.alt_text,
                                           "tags": d.tags, "model": d.model});
                if single {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    println!("{v}");
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {}: {e}", path.display());
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::OptionFlags;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: OptionFlags,
    }

    fn options(args: &[&str]) -> pixeld_imaging::Options {
        let argv = std::iter::once("pixeld").chain(args.iter().copied());
        Cli::parse_from(argv)
            .flags
            .to_options()
            .expect("valid flags")
    }

    #[test]
    fn the_encoder_and_decoder_switches_have_flags_like_the_query() {
        let o = options(&[
            "--trellis",
            "--fast-shrink",
            "--palette",
            "false",
            "-W",
            "300",
        ]);
        assert!(o.trellis && o.fast_shrink && !o.palette);
        assert_eq!(o.width, Some(300));
        let defaults = options(&[]);
        assert!(!defaults.trellis && !defaults.fast_shrink && defaults.palette);
    }
}
