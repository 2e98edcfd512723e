//! Benchmark driver for `bench/render/run.sh`: renders one card template to PNG in-process and
//! prints timings as JSON lines. Not a public tool.
//!
//! ```text
//! bench_card run <template.json> <data.json> <runs> <out.png> [src=path ...]
//! bench_card phases <template.json> <data.json> <runs> <out-dir> [src=path ...]
//! bench_card diff <a.png> <b.png>
//! bench_card noop
//! ```
//!
//! `run`: one line per render (`{"engine":"ours","run":0,"ms":…}`; run 0 is the cold render,
//! with the image decodes), then a summary line with the output size and the process's peak
//! RSS (`VmHWM`). `src=path` pairs are the fetched bytes of image layers (the `Images` map).
//!
//! `diff`: mean absolute difference per RGB channel (0–255) and the share of pixels that differ
//! by more than 32 in some channel, between two PNGs of the same size: a check that the peers
//! drew the same card.
//!
//! `phases`: where a warm render's time goes. The public API gives the whole render, bind
//! (`image_sources`) and check; the rest is measured on a replica of `src/compile.rs` for the
//! layer types a card uses (frame-less text and image layers on a painted page), built on the
//! same takumi with the same bundled fonts; its pixels are compared with the real render's so
//! the replica cannot drift silently. Encoders are timed on the same pixels: what the renderer
//! uses, `pixeld_imaging::encode_png_fast` (one filter chosen from a row sample; unfiltered
//! rows through pixeld-imaging's own deflate, filtered ones through libdeflate level 5), checked
//! to decode to the exact pixels; libdeflate at levels 1, 5 and 9 on the same unfiltered rows
//! (level 5 was the renderer's only deflate before); pixeld-imaging's upload encoder at efforts
//! 0, 1 and 3 (oxipng presets 0, 1, 1+); takumi's own `write_image`; and the `image` crate's
//! PNG encoder (png 0.18) at a few filter and zlib-level settings.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use pixeld_render::template::{
    Image, ImageFit, Layer, LayerKind, Length, Paint, Stop, Template, Text, TextAlign,
};
use pixeld_render::{
    Data, Format, Images, Input, Limits, OutputOptions, Renderer, data_from_json, parse,
};
use takumi::prelude::{
    FontResource, Fonts, ImageData, ImageSourceInput, Node, OutputFormat, RenderOptions, RgbaImage,
    Style, Viewport,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") if args.len() >= 5 => {
            let job = Job::load(&args[1], &args[2], &args[5..]);
            run(&job, args[3].parse().expect("runs"), &args[4]);
        }
        Some("phases") if args.len() >= 5 => {
            let job = Job::load(&args[1], &args[2], &args[5..]);
            phases(&job, args[3].parse().expect("runs"), Path::new(&args[4]));
        }
        Some("diff") if args.len() == 3 => diff(&args[1], &args[2]),
        Some("noop") => {}
        _ => {
            eprintln!(
                "usage: bench_card run|phases <template.json> <data.json> <runs> <out> [src=path ...] | bench_card diff <a> <b> | bench_card noop"
            );
            std::process::exit(2);
        }
    }
}

struct Job {
    template: Template,
    data: Data,
    images: Images,
}

impl Job {
    fn load(template: &str, data: &str, srcs: &[String]) -> Job {
        let template = parse(
            &std::fs::read(template).expect("read template"),
            &Limits::default(),
        )
        .expect("valid template");
        let data: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data).expect("read data")).expect("data is JSON");
        let data = data_from_json(&data).expect("data object");
        let mut images = Images::new();
        for s in srcs {
            let (src, path) = s.split_once('=').expect("src=path");
            let bytes: Arc<[u8]> = std::fs::read(path).expect("read image").into();
            images.insert(src.to_owned(), bytes);
        }
        Job {
            template,
            data,
            images,
        }
    }

    fn input(&self) -> Input<'_> {
        Input {
            data: &self.data,
            modifications: &[],
            images: &self.images,
        }
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The data of render `i`: every value with " #i" after it, as `peers.mjs` does for the
/// peers, so that no engine renders the same picture twice.
fn run_data(data: &Data, i: usize) -> Data {
    data.iter()
        .map(|(k, v)| (k.clone(), format!("{v} #{i}")))
        .collect()
}

fn run(job: &Job, runs: usize, out: &str) {
    let t = Instant::now();
    let renderer = Renderer::new().expect("bundled fonts load");
    let setup_ms = ms(t);
    let opts = OutputOptions {
        format: Format::Png,
        quality: None,
        scale: 1.0,
    };
    let mut last = None;
    for i in 0..=runs {
        // Every render has its own data, as a server's renders do (see run_data).
        let data = run_data(&job.data, i);
        let t = Instant::now();
        let r = renderer
            .render(
                &job.template,
                Input {
                    data: &data,
                    ..job.input()
                },
                &opts,
            )
            .expect("renders");
        println!("{{\"engine\":\"ours\",\"run\":{i},\"ms\":{:.3}}}", ms(t));
        last = Some(r);
    }
    let r = last.expect("rendered");
    std::fs::write(out, &r.bytes).expect("write output");
    println!(
        "{{\"engine\":\"ours\",\"summary\":true,\"setup_ms\":{setup_ms:.2},\"bytes\":{},\"width\":{},\"height\":{},\"vm_hwm_kb\":{}}}",
        r.bytes.len(),
        r.width,
        r.height,
        vm_hwm_kb()
    );
}

fn diff(a: &str, b: &str) {
    let load = |p: &str| image::open(p).expect("a PNG").into_rgb8();
    let (a, b) = (load(a), load(b));
    assert_eq!(a.dimensions(), b.dimensions(), "same size");
    let (mut sum, mut far) = (0u64, 0u64);
    for (p, q) in a.pixels().zip(b.pixels()) {
        let d = (0..3).map(|i| p.0[i].abs_diff(q.0[i])).collect::<Vec<_>>();
        sum += d.iter().map(|&v| u64::from(v)).sum::<u64>();
        far += u64::from(d.iter().any(|&v| v > 32));
    }
    let n = u64::from(a.width()) * u64::from(a.height());
    println!(
        "{{\"mean_abs_diff\":{:.3},\"pixels_off_by_32\":{:.4}}}",
        sum as f64 / (n * 3) as f64,
        far as f64 / n as f64
    );
}

/// Median of `runs` timings of `f` (after one untimed call), and its last result.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut last = f();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        last = f();
        times.push(ms(t));
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], last)
}

fn phase(name: &str, median_ms: f64, extra: &str) {
    println!("{{\"phase\":\"{name}\",\"ms\":{median_ms:.3}{extra}}}");
}

fn phases(job: &Job, runs: usize, out_dir: &Path) {
    std::fs::create_dir_all(out_dir).expect("out dir");
    let opts = OutputOptions::default();

    let t = Instant::now();
    let renderer = Renderer::new().expect("bundled fonts load");
    phase("startup: Renderer::new (parse bundled fonts)", ms(t), "");

    let mut n = 0;
    let (total, rendered) = time(runs, || {
        n += 1;
        let data = run_data(&job.data, n);
        let input = Input {
            data: &data,
            ..job.input()
        };
        renderer
            .render(&job.template, input, &opts)
            .expect("renders")
    });
    phase(
        "whole warm render, new data each time (Renderer::render, PNG)",
        total,
        &format!(",\"bytes\":{}", rendered.bytes.len()),
    );
    let (same, rendered) = time(runs, || {
        renderer
            .render(&job.template, job.input(), &opts)
            .expect("renders")
    });
    phase(
        "whole warm render, the same data again (every PNG span copied)",
        same,
        &format!(",\"bytes\":{}", rendered.bytes.len()),
    );
    let (bind, _) = time(runs, || {
        renderer
            .image_sources(&job.template, &job.data, &[])
            .expect("binds")
    });
    phase("bind (template → JSON → placeholders → template)", bind, "");
    let (check, _) = time(runs, || {
        pixeld_render::check(&job.template, &Limits::default()).expect("checks")
    });
    phase("check (limits)", check, "");

    // The replica: same fonts, same CSS, same decoded images.
    let fonts = bundled_fonts();
    let bound = bind_text(&job.template, &job.data);
    let lookup = Decoded::new(job, &bound);
    phase(
        "cold: decode images (pixeld-imaging, shrink-on-decode)",
        lookup.decode_ms,
        "",
    );
    let (compile, _) = time(runs, || compile_page(&bound, &lookup));
    phase(
        "compile (CSS strings → takumi Style, node tree)",
        compile,
        "",
    );
    let (raster, bitmap) = time(runs, || {
        let (node, viewport) = compile_page(&bound, &lookup);
        let opts = RenderOptions::builder()
            .viewport(viewport)
            .node(node)
            .fonts(&fonts)
            .build();
        takumi::render(opts).expect("takumi renders")
    });
    phase(
        "compile + takumi::render (layout, shaping, raster)",
        raster,
        "",
    );

    // The replica must paint what the renderer paints.
    let real = image::load_from_memory(&rendered.bytes)
        .expect("our PNG decodes")
        .into_rgba8();
    let diff = real
        .as_raw()
        .iter()
        .zip(bitmap.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(255);
    phase(
        "replica check: max channel difference vs Renderer output",
        0.0,
        &format!(",\"max_diff\":{diff}"),
    );

    let pixels = || pixeld_imaging::Rgba {
        width: bitmap.width(),
        height: bitmap.height(),
        data: bitmap.as_raw().to_vec(),
    };
    let (copy, _) = time(runs, pixels);
    let (enc, bytes) = time(runs, || {
        pixeld_imaging::encode_png_fast(pixels()).expect("encodes")
    });
    phase(
        "encode PNG: pixeld-imaging encode_png_fast (what render uses)",
        enc - copy,
        &format!(",\"bytes\":{}", bytes.len()),
    );
    std::fs::write(out_dir.join("ours-fast.png"), &bytes).expect("write");
    let lossless = image::load_from_memory(&bytes)
        .expect("the fast PNG decodes")
        .into_rgba8();
    let diff = lossless
        .as_raw()
        .iter()
        .zip(bitmap.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(255);
    phase(
        "lossless check: max channel difference, encode_png_fast decoded vs its input",
        0.0,
        &format!(",\"max_diff\":{diff}"),
    );
    // libdeflate on the unfiltered RGB rows: the zlib stream alone (a PNG adds ~60 bytes).
    let rows: Vec<u8> = bitmap
        .as_raw()
        .chunks_exact(4 * bitmap.width() as usize)
        .flat_map(|row| {
            std::iter::once(0).chain(row.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]))
        })
        .collect();
    for level in [1, 5, 9] {
        let (enc, len) = time(runs, || {
            let mut z = libdeflater::Compressor::new(
                libdeflater::CompressionLvl::new(level).expect("a libdeflate level"),
            );
            let mut out = vec![0; z.zlib_compress_bound(rows.len())];
            z.zlib_compress(&rows, &mut out).expect("compresses")
        });
        phase(
            &format!("deflate only: libdeflate level {level}, unfiltered RGB rows"),
            enc,
            &format!(",\"bytes\":{len}"),
        );
    }
    for effort in [0u8, 1, 3] {
        let eopts = pixeld_imaging::Options {
            effort: Some(effort),
            ..Default::default()
        };
        let (enc, bytes) = time(runs, || {
            pixeld_imaging::encode_rgba(pixels(), pixeld_imaging::OutputFormat::Png, &eopts)
                .expect("encodes")
        });
        let name = format!(
            "encode PNG: pixeld-imaging encode_rgba effort {effort}{}",
            if effort == 0 {
                " (uploads' fastest: oxipng preset 0)"
            } else {
                ""
            }
        );
        phase(&name, enc - copy, &format!(",\"bytes\":{}", bytes.len()));
        std::fs::write(out_dir.join(format!("ours-effort{effort}.png")), &bytes).expect("write");
    }
    let (enc, bytes) = time(runs, || {
        let mut v = Vec::new();
        takumi::write_image(&bitmap, &mut v, OutputFormat::Png).expect("encodes");
        v
    });
    phase(
        "encode PNG: takumi::write_image",
        enc,
        &format!(",\"bytes\":{}", bytes.len()),
    );
    std::fs::write(out_dir.join("takumi-write-image.png"), &bytes).expect("write");
    // The image crate's PNG encoder (png 0.18; its deflate is fdeflate for `Fast`, else
    // flate2 on zlib-rs, the backend takumi switches on), opaque pixels written as RGB.
    use image::codecs::png::{CompressionType as C, FilterType as F};
    for (name, compression, filter) in [
        ("Fast (fdeflate), adaptive filter", C::Fast, F::Adaptive),
        ("no filter, zlib level 1", C::Level(1), F::NoFilter),
        ("no filter, zlib level 3", C::Level(3), F::NoFilter),
        ("no filter, zlib level 6", C::Level(6), F::NoFilter),
        ("adaptive filter, zlib level 3", C::Level(3), F::Adaptive),
    ] {
        let (enc, bytes) = time(runs, || image_png(&bitmap, compression, filter));
        phase(
            &format!("encode PNG: image crate, {name}"),
            enc,
            &format!(",\"bytes\":{}", bytes.len()),
        );
    }
    phase(
        "copy of the pixel buffer (subtracted from pixeld-imaging rows)",
        copy,
        "",
    );
}

fn image_png(
    bitmap: &takumi::prelude::Bitmap,
    compression: image::codecs::png::CompressionType,
    filter: image::codecs::png::FilterType,
) -> Vec<u8> {
    let mut v = Vec::new();
    let rgb = image::DynamicImage::ImageRgba8(
        image::RgbaImage::from_raw(bitmap.width(), bitmap.height(), bitmap.as_raw().to_vec())
            .expect("fits"),
    )
    .into_rgb8();
    let enc = image::codecs::png::PngEncoder::new_with_quality(&mut v, compression, filter);
    image::ImageEncoder::write_image(
        enc,
        rgb.as_raw(),
        rgb.width(),
        rgb.height(),
        image::ExtendedColorType::Rgb8,
    )
    .expect("encodes");
    v
}

/// The bundled fonts registered as `FontLibrary::bundled` does (same files, same order).
fn bundled_fonts() -> Fonts {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fonts");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).expect("fonts/").flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).expect("readable").flatten() {
            let p = f.path();
            if p.extension()
                .is_some_and(|e| e == "woff2" || e == "ttf" || e == "otf")
            {
                files.push((dir.file_name().to_string_lossy().into_owned(), p));
            }
        }
    }
    files.sort();
    let mut fonts = Fonts::default();
    for (_, p) in files {
        fonts
            .register(FontResource::new(std::fs::read(p).expect("font")))
            .expect("font registers");
    }
    fonts
}

/// `{{name}}` replaced by its value (as `src/bind.rs` does; unknown names become empty).
fn fill(s: &str, data: &Data) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = rest[start + 2..start + 2 + end].trim();
        out.push_str(data.get(name).map_or("", String::as_str));
        rest = &rest[start + 2 + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Placeholders filled in text layers and image sources (all a card uses).
fn bind_text(t: &Template, data: &Data) -> Template {
    let mut t = t.clone();
    fn walk(layers: &mut [Layer], data: &Data) {
        for l in layers {
            match &mut l.kind {
                LayerKind::Text(x) => {
                    if let Some(s) = &x.text {
                        x.text = Some(fill(s, data));
                    }
                }
                LayerKind::Image(i) => i.src = fill(&i.src, data),
                LayerKind::Frame(f) => walk(&mut f.children, data),
                LayerKind::Group(g) => walk(&mut g.children, data),
                _ => {}
            }
        }
    }
    walk(&mut t.layers, data);
    t
}

/// Images decoded once, as the renderer's cache holds them after the first render.
struct Decoded {
    by_layer: HashMap<String, RgbaImage>,
    decode_ms: f64,
}

impl Decoded {
    fn new(job: &Job, t: &Template) -> Decoded {
        let mut by_layer = HashMap::new();
        let t0 = Instant::now();
        for (_, l) in t.walk() {
            if let LayerKind::Image(i) = &l.kind {
                let bytes = job.images.get(i.src.trim()).expect("image fetched");
                let px = pixeld_imaging::decode_rgba(
                    bytes,
                    &pixeld_imaging::Limits::default(),
                    box_px(l),
                )
                .expect("decodes");
                // As the renderer does: pixels at the size they are drawn (never larger).
                let px = match box_px(l).and_then(|b| drawn_size(i.fit, b, (px.width, px.height))) {
                    Some((w, h)) => pixeld_imaging::resize_rgba(px, w, h).expect("resizes"),
                    None => px,
                };
                let img = RgbaImage::new(px.data, px.width, px.height, false).expect("rgba");
                by_layer.insert(l.common.name.clone(), img);
            }
        }
        Decoded {
            by_layer,
            decode_ms: ms(t0),
        }
    }
}

/// A replica of the renderer's rule: the size an image is drawn at in its box by `fit`, when
/// smaller than the image in both directions.
fn drawn_size(fit: ImageFit, (bw, bh): (u32, u32), (w, h): (u32, u32)) -> Option<(u32, u32)> {
    let (bw, bh, w, h) = (f64::from(bw), f64::from(bh), f64::from(w), f64::from(h));
    let (sx, sy) = match fit {
        ImageFit::Cover => ((bw / w).max(bh / h), (bw / w).max(bh / h)),
        ImageFit::Contain => ((bw / w).min(bh / h), (bw / w).min(bh / h)),
        ImageFit::Fill => (bw / w, bh / h),
    };
    let (tw, th) = ((w * sx).round().max(1.0), (h * sy).round().max(1.0));
    (tw < w && th < h).then_some((tw as u32, th as u32))
}

fn box_px(l: &Layer) -> Option<(u32, u32)> {
    match (&l.common.width, &l.common.height) {
        (Some(Length::Px(w)), Some(Length::Px(h))) => Some((w.ceil() as u32, h.ceil() as u32)),
        _ => None,
    }
}

// ---- A replica of src/compile.rs for pages of text and image layers (scale 1). ----

const FAMILIES: &str = r#""Inter", "Noto Sans Arabic", "Noto Sans Hebrew", "Noto Sans Devanagari", "Noto Sans SC", "Twemoji Mozilla""#;

fn style(css: &str) -> Style {
    Style::from_str(css).expect("CSS parses")
}

fn px(v: f32) -> String {
    let v = (v * 1000.0).round() / 1000.0;
    format!("{v}px")
}

fn stops_css(stops: &[Stop]) -> String {
    let n = stops.len().max(2) - 1;
    stops
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{} {}%",
                s.color.trim(),
                s.at.unwrap_or(i as f32 / n as f32) * 100.0
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn paint_css(p: &Paint) -> String {
    match p {
        Paint::Color(c) => format!("background-color:{};", c.trim()),
        Paint::Linear { linear: g } => format!(
            "background-image:linear-gradient({}deg,{});",
            g.angle,
            stops_css(&g.stops)
        ),
        Paint::Radial { radial: g } => format!(
            "background-image:radial-gradient(circle,{});",
            stops_css(&g.stops)
        ),
    }
}

fn compile_page(t: &Template, images: &Decoded) -> (Node, Viewport) {
    let mut css = format!(
        "display:flex;position:relative;overflow:hidden;width:{}px;height:{}px;",
        t.page.width, t.page.height
    );
    if let Some(bg) = &t.page.background {
        css.push_str(&paint_css(bg));
    }
    let children: Vec<Node> = t
        .layers
        .iter()
        .filter(|l| !l.common.hidden)
        .map(|l| layer(l, images))
        .collect();
    let root = Node::container(children).with_style(style(&css));
    (
        root,
        Viewport::new((t.page.width, t.page.height)).with_device_pixel_ratio(1.0),
    )
}

fn placement(l: &Layer) -> String {
    let c = &l.common;
    let mut css = format!(
        "position:absolute;left:{};top:{};",
        px(c.x.unwrap_or(0.0)),
        px(c.y.unwrap_or(0.0))
    );
    for (k, v) in [("width", &c.width), ("height", &c.height)] {
        if let Some(v) = v {
            let v = match v {
                Length::Px(p) => px(*p),
                Length::Keyword(k) => k.trim().to_owned(),
            };
            let _ = write!(css, "{k}:{v};");
        }
    }
    if let Some(o) = c.opacity {
        let _ = write!(css, "opacity:{o};");
    }
    css
}

fn layer(l: &Layer, images: &Decoded) -> Node {
    match &l.kind {
        LayerKind::Text(t) => text(l, t),
        LayerKind::Image(i) => image_node(l, i, images),
        other => panic!("the replica handles text and image layers only, not {other:?}"),
    }
}

fn text(l: &Layer, t: &Text) -> Node {
    assert!(
        t.spans.is_empty() && t.max_lines.is_none(),
        "plain text only"
    );
    let mut css = placement(l);
    css.push_str("display:flex;flex-direction:column;justify-content:flex-start;");
    if l.common.height.is_some() {
        css = css.replacen("height:", "min-height:", 1);
    }
    let mut inner = format!(
        "font-family:{FAMILIES};font-size:{};line-height:{};",
        px(t.size),
        t.line_height.unwrap_or(1.2)
    );
    if let Some(w) = t.font.weight {
        let _ = write!(inner, "font-weight:{w};");
    }
    if let Some(ls) = t.letter_spacing {
        let _ = write!(inner, "letter-spacing:{};", px(ls));
    }
    let _ = write!(
        inner,
        "color:{};",
        t.color.as_deref().unwrap_or("#000").trim()
    );
    let align = match t.align {
        TextAlign::Start => "start",
        TextAlign::Center => "center",
        TextAlign::End => "end",
        TextAlign::Justify => "justify",
    };
    let _ = write!(inner, "text-align:{align};width:100%;");
    let node = Node::text(t.text.clone().unwrap_or_default()).with_style(style(&inner));
    Node::container([node]).with_style(style(&css))
}

fn image_node(l: &Layer, i: &Image, images: &Decoded) -> Node {
    let mut css = placement(l);
    let fit = match i.fit {
        ImageFit::Cover => "cover",
        ImageFit::Contain => "contain",
        ImageFit::Fill => "fill",
    };
    let _ = write!(css, "object-fit:{fit};");
    if let Some(f) = i.focal {
        let _ = write!(css, "object-position:{}% {}%;", f.x * 100.0, f.y * 100.0);
    }
    if let Some(r) = i.radius {
        let _ = write!(css, "border-radius:{};overflow:hidden;", px(r));
    }
    let src = images
        .by_layer
        .get(&l.common.name)
        .expect("decoded")
        .clone();
    Node::image(ImageData {
        src: ImageSourceInput::Rgba(src),
        width: None,
        height: None,
    })
    .with_style(style(&css))
}
