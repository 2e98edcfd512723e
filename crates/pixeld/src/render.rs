//! `pixeld render`: one template with one data set, or every row of a CSV on all cores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pixeld_core::objects::Fetcher as _;
use pixeld_render::{Data, Format, Images, Input, Modification, OutputOptions, Renderer, Template};
use rayon::prelude::*;

/// Arguments of `pixeld render`.
#[derive(Args, Debug)]
pub struct RenderArgs {
    /// The template (JSON).
    template: PathBuf,
    /// Variable values: a JSON object, or `{"data": {…}, "modifications": [...]}`.
    #[arg(long, conflicts_with = "csv")]
    data: Option<PathBuf>,
    /// Render every row of this CSV (the header names the variables) into the `-o` folder.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Output file, or folder with `--csv`.
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// File name per CSV row, with `{{column}}` placeholders and `{{row}}` (the row number).
    #[arg(long, default_value = "{{row}}.png")]
    name: String,
    /// png, jpeg, webp, avif, svg or pdf (default: from the output's extension, else png).
    #[arg(long, short = 'f')]
    format: Option<String>,
    /// Quality 1–100 for jpeg, webp, avif.
    #[arg(long, short = 'q')]
    quality: Option<u8>,
    /// Device pixel ratio 1–4 (2 = retina).
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
}

fn format_for(explicit: Option<&str>, path: &Path) -> anyhow::Result<Format> {
    if let Some(f) = explicit {
        return Format::parse(f).with_context(|| {
            format!("unknown format {f:?}: use png, jpeg, webp, avif, svg or pdf")
        });
    }
    Ok(path
        .extension()
        .and_then(|e| e.to_str())
        .and_then(Format::parse)
        .unwrap_or(Format::Png))
}

/// Reads image layers' sources: `http(s)://` through the SSRF-safe fetcher, anything else as a
/// file path relative to the template.
fn fetch_images(
    renderer: &Renderer,
    template: &Template,
    base: &Path,
    data: &Data,
    mods: &[Modification],
    cache: &mut BTreeMap<String, Arc<[u8]>>,
) -> anyhow::Result<Images> {
    let mut images = Images::new();
    for src in renderer.image_sources(template, data, mods)? {
        if let Some(bytes) = cache.get(&src) {
            images.insert(src, bytes.clone());
            continue;
        }
        let bytes: Arc<[u8]> = if src.starts_with("http://") || src.starts_with("https://") {
            let fetcher = pixeld_server::fetch::SafeFetcher::new(
                &pixeld_server::config::FetchConfig::default(),
            )?;
            let handle = tokio::runtime::Handle::current();
            let got = handle
                .block_on(fetcher.fetch(&src, 50 << 20))
                .map_err(|e| anyhow::anyhow!("{src}: {e}"))?;
            Arc::from(got.bytes)
        } else if src.starts_with("asset:") {
            bail!("{src}: uploaded assets are only available through the server");
        } else {
            let path = base.join(&src);
            Arc::from(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
        };
        cache.insert(src.clone(), bytes.clone());
        images.insert(src, bytes);
    }
    Ok(images)
}

fn read_template(path: &Path, renderer: &Renderer) -> anyhow::Result<Template> {
    let json = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    pixeld_render::parse(&json, renderer.limits())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A CSV row's outcome: the file written and its size, or why not.
type RowResult = Result<(PathBuf, usize), String>;

/// Runs `pixeld render`.
pub fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let renderer = Renderer::new()?;
    let template = read_template(&args.template, &renderer)?;
    let base = args
        .template
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let out_opts = |format| OutputOptions {
        format,
        quality: args.quality,
        scale: args.scale,
    };
    let Some(csv_path) = &args.csv else {
        let (data, mods) = match &args.data {
            Some(p) => {
                let v: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                )
                .with_context(|| format!("{} is not JSON", p.display()))?;
                split_data(&v)?
            }
            None => (Data::new(), Vec::new()),
        };
        let images = fetch_images(
            &renderer,
            &template,
            &base,
            &data,
            &mods,
            &mut BTreeMap::new(),
        )?;
        let format = format_for(args.format.as_deref(), &args.output)?;
        let out = renderer.render(
            &template,
            Input {
                data: &data,
                modifications: &mods,
                images: &images,
            },
            &out_opts(format),
        )?;
        std::fs::write(&args.output, &out.bytes)
            .with_context(|| format!("writing {}", args.output.display()))?;
        println!(
            "{}: {}×{} {}, {} bytes",
            args.output.display(),
            out.width,
            out.height,
            format.extension(),
            out.bytes.len()
        );
        return Ok(ExitCode::SUCCESS);
    };

    // CSV batch.
    let mut reader = csv::Reader::from_path(csv_path)
        .with_context(|| format!("reading {}", csv_path.display()))?;
    let headers: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", csv_path.display(), i + 1))?;
        let mut data: Data = headers
            .iter()
            .cloned()
            .zip(rec.iter().map(str::to_owned))
            .collect();
        data.insert("row".to_owned(), (i + 1).to_string());
        rows.push(data);
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    // Images are fetched once per distinct source, before the parallel part.
    let mut cache = BTreeMap::new();
    let mut jobs = Vec::new();
    let mut failures: Vec<(usize, String)> = Vec::new();
    for (i, data) in rows.into_iter().enumerate() {
        match fetch_images(&renderer, &template, &base, &data, &[], &mut cache) {
            Ok(images) => jobs.push((i + 1, data, images)),
            Err(e) => failures.push((i + 1, format!("{e:#}"))),
        }
    }
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let results: Vec<(usize, RowResult)> = jobs
        .par_iter()
        .map(|(row, data, images)| {
            let r = (|| {
                let name = pixeld_render::fill_placeholders(&args.name, data);
                let name = sanitize_file_name(&name)?;
                let path = args.output.join(&name);
                let format =
                    format_for(args.format.as_deref(), &path).map_err(|e| e.to_string())?;
                let out = renderer
                    .render(
                        &template,
                        Input {
                            data,
                            modifications: &[],
                            images,
                        },
                        &out_opts(format),
                    )
                    .map_err(|e| e.to_string())?;
                std::fs::write(&path, &out.bytes)
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                Ok((path, out.bytes.len()))
            })();
            bar.inc(1);
            (*row, r)
        })
        .collect();
    bar.finish_and_clear();
    let mut ok = 0;
    for (row, r) in results {
        match r {
            Ok(_) => ok += 1,
            Err(e) => failures.push((row, e)),
        }
    }
    failures.sort();
    println!(
        "rendered {ok} of {} rows into {}",
        ok + failures.len(),
        args.output.display()
    );
    for (row, e) in &failures {
        eprintln!("row {row}: {e}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A file name from a filled `--name` pattern: no separators or parent references.
fn sanitize_file_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(format!("{name:?} is not a usable file name"));
    }
    Ok(name.to_owned())
}

/// `{"data": {...}, "modifications": [...]}` or a bare data object.
fn split_data(v: &serde_json::Value) -> anyhow::Result<(Data, Vec<Modification>)> {
    let wrapped = v.as_object().is_some_and(|o| {
        o.contains_key("modifications") || o.get("data").is_some_and(|d| d.is_object())
    });
    if wrapped {
        let data = match v.get("data") {
            Some(d) => pixeld_render::data_from_json(d)?,
            None => Data::new(),
        };
        let mods = match v.get("modifications") {
            Some(m) => serde_json::from_value(m.clone()).context("modifications")?,
            None => Vec::new(),
        };
        Ok((data, mods))
    } else {
        Ok((pixeld_render::data_from_json(v)?, Vec::new()))
    }
}
