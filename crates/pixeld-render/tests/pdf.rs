//! What a reader of a PDF render sees: a page of the template's size in points, text that
//! poppler extracts in reading order, the same picture as the PNG, and the same bytes twice.
//!
//! The poppler tools (`pdftotext`, `pdftoppm`; Debian's `poppler-utils`, installed by
//! `scripts/setup test`) read the PDFs back. Without them these checks are skipped with a
//! message, except under `CI=true`, where a missing tool fails the test.

use std::io::Cursor;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use image::{DynamicImage, GenericImageView, Rgba, RgbaImage};
use pixeld_render::{
    Data, Format, Images, Input, Limits, OutputOptions, Renderer, Template, parse,
};
use serde_json::{Value, json};

fn renderer() -> &'static Renderer {
    static R: OnceLock<Renderer> = OnceLock::new();
    R.get_or_init(|| Renderer::new().expect("bundled fonts load"))
}

fn template(v: Value) -> Template {
    parse(v.to_string().as_bytes(), &Limits::default()).expect("valid template")
}

fn render_on(renderer: &Renderer, t: &Template, format: Format, scale: f32) -> Vec<u8> {
    renderer
        .render(
            t,
            Input {
                data: &Data::new(),
                modifications: &[],
                images: &Images::new(),
            },
            &OutputOptions {
                format,
                scale,
                ..Default::default()
            },
        )
        .expect("renders")
        .bytes
}

fn render(t: &Template, format: Format) -> Vec<u8> {
    render_on(renderer(), t, format, 1.0)
}

/// The page's `/MediaBox`, in points.
fn media_box(pdf: &[u8]) -> [f32; 4] {
    let at = pdf
        .windows(10)
        .position(|w| w == b"/MediaBox ")
        .expect("a MediaBox");
    let rest = &pdf[at + 10..];
    let end = rest
        .iter()
        .position(|&b| b == b']')
        .expect("a closed array");
    let numbers: Vec<f32> = std::str::from_utf8(&rest[1..end])
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    numbers.try_into().expect("four numbers")
}

/// The poppler tool `name`, or `None` (after saying why) when it is missing outside CI.
fn poppler(name: &str) -> Option<&str> {
    let found = Command::new(name)
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(name);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is missing: install poppler-utils (scripts/setup test)");
    }
    eprintln!("skipped: {name} is missing (install poppler-utils, or run scripts/setup test)");
    None
}

/// A PDF written to a scratch file that is removed when dropped.
struct PdfFile(PathBuf);

impl PdfFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let path =
            std::env::temp_dir().join(format!("pixeld-pdf-{}-{name}.pdf", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        PdfFile(path)
    }

    /// The standard output of `tool` run with `args` on the file.
    fn run(&self, tool: &str, args: &[&str]) -> Vec<u8> {
        let mut command = Command::new(tool);
        command.args(args).arg(&self.0);
        if tool == "pdftotext" {
            command.arg("-");
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{tool} complained about the PDF: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for PdfFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A page with Latin, Arabic and CJK text, top to bottom, at 96 dpi.
fn three_scripts() -> Template {
    template(json!({
        "page": {"width": 1200, "height": 630, "background": "#ffffff", "dpi": 96},
        "layers": [
            {"type": "text", "name": "latin", "x": 60, "y": 40, "width": 1080,
             "text": "Quarterly results are ready", "size": 56, "color": "#111111"},
            {"type": "text", "name": "arabic", "x": 60, "y": 200, "width": 1080,
             "text": "مرحبا بالعالم", "size": 56, "color": "#111111"},
            {"type": "text", "name": "cjk", "x": 60, "y": 360, "width": 1080,
             "text": "你好世界，欢迎光临", "size": 56, "color": "#111111"},
            {"type": "text", "name": "paragraph", "x": 60, "y": 470, "width": 500,
             "text": "A paragraph that wraps over several lines keeps its words in order",
             "size": 28, "color": "#333333"}
        ]
    }))
}

#[test]
fn a_pdf_has_the_template_page_size_in_points() {
    assert_eq!(Format::parse("PDF"), Some(Format::Pdf));
    assert_eq!(Format::Pdf.extension(), "pdf");
    assert_eq!(Format::Pdf.content_type(), "application/pdf");

    let t = three_scripts();
    let pdf = render(&t, Format::Pdf);
    assert!(pdf.starts_with(b"%PDF-"), "{:?}", &pdf[..8]);
    // 1200 × 630 CSS px at 96 dpi: 12.5 × 6.5625 in.
    assert_eq!(media_box(&pdf), [0.0, 0.0, 900.0, 472.5]);
    // The device pixel ratio sharpens images; the page stays the same size.
    assert_eq!(
        media_box(&render_on(renderer(), &t, Format::Pdf, 2.0)),
        [0.0, 0.0, 900.0, 472.5]
    );

    // Without a `dpi`, a CSS pixel is a point.
    let plain = template(json!({
        "page": {"width": 600, "height": 300},
        "layers": [{"type": "text", "name": "t", "x": 10, "y": 10, "text": "hi", "size": 20}]
    }));
    assert_eq!(
        media_box(&render(&plain, Format::Pdf)),
        [0.0, 0.0, 600.0, 300.0]
    );
}

#[test]
fn pdftotext_reads_the_words_and_the_cjk_characters_in_reading_order() {
    let Some(tool) = poppler("pdftotext") else {
        return;
    };
    let file = PdfFile::new("scripts", &render(&three_scripts(), Format::Pdf));
    let text = String::from_utf8(file.run(tool, &["-enc", "UTF-8"])).unwrap();
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} is not in the extracted text:\n{text}"))
    };
    let latin = at("Quarterly results are ready");
    let cjk = at("你好世界，欢迎光临");
    let paragraph = at("A paragraph that wraps");
    assert!(latin < cjk && cjk < paragraph, "top to bottom:\n{text}");
    let words: Vec<&str> = text[paragraph..].split_whitespace().collect();
    assert_eq!(
        words,
        "A paragraph that wraps over several lines keeps its words in order"
            .split_whitespace()
            .collect::<Vec<_>>(),
        "the wrapped lines in order"
    );
    // Right-to-left text comes back with its letters (poppler orders them visually or
    // logically depending on its version, so only the letters are compared).
    let mut arabic: Vec<char> = "مرحبابالعالم".chars().collect();
    let mut found: Vec<char> = text
        .chars()
        .filter(|c| ('\u{0600}'..='\u{06FF}').contains(c))
        .collect();
    arabic.sort_unstable();
    found.sort_unstable();
    assert_eq!(found, arabic, "the Arabic letters:\n{text}");
}

/// Word boxes from `pdftotext -bbox`: (word, xMin, yMin, xMax, yMax) in points.
fn word_boxes(file: &PdfFile, tool: &str) -> Vec<(String, [f32; 4])> {
    let html = String::from_utf8(file.run(tool, &["-bbox", "-enc", "UTF-8"])).unwrap();
    html.lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("<word ")?;
            let attr = |name: &str| -> f32 {
                let at = l.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                l[at..].split('"').next().unwrap().parse().unwrap()
            };
            let word = l.split('>').nth(1)?.split('<').next()?.to_owned();
            Some((
                word,
                [attr("xMin"), attr("yMin"), attr("xMax"), attr("yMax")],
            ))
        })
        .collect()
}

/// Bounding box (x0, y0, x1, y1) of the pixels darker than mid-grey.
fn ink(img: &DynamicImage) -> (u32, u32, u32, u32) {
    let mut b: Option<(u32, u32, u32, u32)> = None;
    for (x, y, Rgba(p)) in img.pixels() {
        if p[..3].iter().all(|&c| c < 128) {
            b = Some(match b {
                None => (x, y, x, y),
                Some((a, c, e, f)) => (a.min(x), c.min(y), e.max(x), f.max(y)),
            });
        }
    }
    b.expect("ink")
}

#[test]
fn the_invisible_text_lies_over_its_glyphs_even_in_nested_and_rotated_layers() {
    let Some(tool) = poppler("pdftotext") else {
        return;
    };
    // Text inside two padded frames: if takumi's measured transforms were relative to the
    // parent, the words would land at the inner frame's offset from its parent, not on the page.
    let nested = |rotation: f32| {
        template(json!({
            "page": {"width": 800, "height": 600, "background": "#ffffff"},
            "layers": [{"type": "frame", "name": "outer", "x": 150, "y": 190, "padding": 30,
                        "layout": "column",
                        "children": [{"type": "frame", "name": "inner", "padding": [20, 0, 0, 40],
                                      "layout": "column",
                                      "children": [{"type": "text", "name": "word", "width": 400,
                                                    "text": "Margins", "size": 64,
                                                    "rotation": rotation, "color": "#000000"}]}]}]
        }))
    };
    for (rotation, slack) in [(0.0, 6.0), (90.0, 10.0)] {
        let t = nested(rotation);
        let png = image::load_from_memory(&render(&t, Format::Png)).unwrap();
        let (x0, y0, x1, y1) = ink(&png);
        let file = PdfFile::new(&format!("nested-{rotation}"), &render(&t, Format::Pdf));
        let words = word_boxes(&file, tool);
        let [wx0, wy0, wx1, wy1] = words
            .iter()
            .find(|(w, _)| w == "Margins")
            .unwrap_or_else(|| panic!("no Margins in {words:?}"))
            .1;
        // The word box (the line box, so a little taller than the ink) contains the ink and
        // hugs it horizontally (or vertically, turned a quarter).
        let (ink_w, ink_h) = ((x1 - x0) as f32, (y1 - y0) as f32);
        assert!(
            wx0 <= x0 as f32 + slack
                && wy0 <= y0 as f32 + slack
                && wx1 >= x1 as f32 - slack
                && wy1 >= y1 as f32 - slack,
            "rotated {rotation}: word {:?} vs ink {:?}",
            [wx0, wy0, wx1, wy1],
            (x0, y0, x1, y1)
        );
        // At twice the pixels the words stay where they were (glyphs snap to the finer grid).
        let sharper = PdfFile::new(
            &format!("nested-{rotation}-x2"),
            &render_on(renderer(), &t, Format::Pdf, 2.0),
        );
        let boxes = word_boxes(&sharper, tool);
        assert!(
            boxes.iter().any(|(w, b)| w == "Margins"
                && b.iter()
                    .zip([wx0, wy0, wx1, wy1])
                    .all(|(a, b)| (a - b).abs() <= 1.0)),
            "rotated {rotation}, scale 2: {boxes:?}"
        );
        let (long_word, long_ink) = if rotation == 0.0 {
            (wx1 - wx0, ink_w)
        } else {
            (wy1 - wy0, ink_h)
        };
        assert!(
            (long_word - long_ink).abs() < 2.0 * slack,
            "rotated {rotation}: the word spans its glyphs: {long_word} vs {long_ink}"
        );
    }
}

/// A PNG data URI of a 40×40 image in four coloured quarters.
fn quarters() -> String {
    let img = RgbaImage::from_fn(40, 40, |x, y| match (x < 20, y < 20) {
        (true, true) => Rgba([220, 30, 30, 255]),
        (false, true) => Rgba([30, 160, 60, 255]),
        (true, false) => Rgba([30, 60, 200, 255]),
        (false, false) => Rgba([240, 200, 20, 255]),
    });
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(img)
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// A card with a gradient, translucent, rounded and shadowed frames, shapes, images (one grey
/// and blurred), an SVG layer, a QR code and text in three scripts.
fn card() -> Template {
    template(json!({
        "page": {"width": 640, "height": 360, "dpi": 96,
                 "background": {"linear": {"angle": 135, "stops": [{"color": "#0f172a"}, {"color": "#4338ca"}]}}},
        "layers": [
            {"type": "frame", "name": "tag", "x": 40, "y": 30, "layout": "row", "padding": [6, 12, 6, 12],
             "radius": 999, "background": "rgba(255,255,255,0.2)",
             "children": [{"type": "text", "name": "tag-text", "text": "ENGINEERING", "size": 16,
                           "font": {"weight": 700}, "color": "#c7d2fe", "letter_spacing": 2}]},
            {"type": "text", "name": "title", "x": 40, "y": 80, "width": 400,
             "text": "Render images from templates, fast", "size": 40, "line_height": 1.1,
             "font": {"weight": 700}, "color": "#ffffff"},
            {"type": "text", "name": "cjk", "x": 40, "y": 220, "width": 400, "text": "你好世界 مرحبا",
             "size": 28, "color": "#a5b4fc"},
            {"type": "shape", "name": "dot", "x": 470, "y": 40, "width": 60, "height": 60,
             "shape": "ellipse", "fill": "#f59e0b", "opacity": 0.8},
            {"type": "shape", "name": "tri", "x": 550, "y": 40, "width": 60, "height": 60,
             "shape": "path", "d": "M0 60 L30 0 L60 60 Z", "fill": "#10b981"},
            {"type": "image", "name": "pic", "x": 470, "y": 120, "width": 140, "height": 90,
             "src": quarters(), "fit": "cover", "radius": 12},
            {"type": "svg", "name": "logo", "x": 40, "y": 280, "width": 50, "height": 50,
             "svg": "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 10 10'><circle cx='5' cy='5' r='5' fill='#e11d48'/></svg>"},
            {"type": "qr", "name": "qr", "x": 520, "y": 240, "width": 90, "height": 90,
             "data": "https://pixeld.example", "color": "#0f172a", "background": "#ffffff"},
            {"type": "frame", "name": "panel", "x": 120, "y": 280, "width": 140, "height": 50,
             "background": "#ffffff", "radius": 8,
             "shadow": {"x": 0, "y": 6, "blur": 16, "color": "rgba(0,0,0,0.6)"}, "children": []},
            {"type": "image", "name": "grey", "x": 300, "y": 275, "width": 120, "height": 60,
             "src": quarters(), "fit": "cover", "grayscale": true, "blur": 2}
        ]
    }))
}

#[test]
fn pdftoppm_draws_the_pdf_like_the_png() {
    let Some(tool) = poppler("pdftoppm") else {
        return;
    };
    let t = card();
    let png = image::load_from_memory(&render(&t, Format::Png))
        .unwrap()
        .to_rgb8();
    let file = PdfFile::new("card", &render(&t, Format::Pdf));
    // 96 dpi on a 96-dpi page: one CSS pixel per device pixel, as in the PNG.
    let ppm = image::load_from_memory(&file.run(tool, &["-r", "96", "-png"]))
        .unwrap()
        .to_rgb8();
    assert_eq!(ppm.dimensions(), png.dimensions());
    // Mean absolute difference per channel over a rectangle.
    let diff = |x0: u32, y0: u32, w: u32, h: u32| {
        let mut sum = [0u64; 3];
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                let (a, b) = (png.get_pixel(x, y), ppm.get_pixel(x, y));
                for c in 0..3 {
                    sum[c] += u64::from(a[c].abs_diff(b[c]));
                }
            }
        }
        sum.map(|s| s as f64 / f64::from(w * h))
    };
    // Two rasterisers anti-alias glyph and shape edges differently and step gradients at
    // different places: over this page that is about 1.5 levels per channel. Leaving out the
    // photo alone (5 % of the page) costs 5–6, the grey image (3 %) about 2, so the page must
    // stay below 3.
    let (w, h) = png.dimensions();
    let page = diff(0, 0, w, h);
    assert!(page.iter().all(|&m| m < 3.0), "page: {page:?} per channel");
    // And locally, so a small element cannot go missing: in 40 px tiles the worst is the QR
    // code (modules on a 3.1 px grid, every edge anti-aliased) at about 17 levels, while a tile
    // of a missing or misplaced element differs by 100 or more.
    for y in (0..h - 39).step_by(40) {
        for x in (0..w - 39).step_by(40) {
            let tile = diff(x, y, 40, 40);
            assert!(
                tile.iter().sum::<f64>() / 3.0 < 40.0,
                "tile at {x},{y}: {tile:?} per channel"
            );
        }
    }
}

#[test]
fn the_same_template_gives_the_same_pdf_bytes() {
    let t = card();
    let a = render(&t, Format::Pdf);
    // Another renderer: nothing carried over from the first render.
    let other = Renderer::new().unwrap();
    let b = render_on(&other, &t, Format::Pdf, 1.0);
    assert!(a == b, "two renders differ");
    let c = render(&t, Format::Pdf);
    assert!(a == c, "a second render on the same renderer differs");
    for stamp in [&b"/CreationDate"[..], b"/ModDate", b"/ID"] {
        assert!(
            !a.windows(stamp.len()).any(|w| w == stamp),
            "{} is written",
            String::from_utf8_lossy(stamp)
        );
    }
}

#[test]
fn image_layers_are_embedded_in_the_vector_formats() {
    // takumi's SVG backend only embeds encoded images, so vector renders get the decoded
    // pixels re-encoded: JPEG when opaque (embedded as is in the PDF), PNG with alpha.
    let t = card();
    let svg = String::from_utf8(render(&t, Format::Svg)).unwrap();
    assert!(
        svg.contains("data:image/jpeg;base64,"),
        "the photo is in the SVG"
    );
    let pdf = render(&t, Format::Pdf);
    let has = |needle: &[u8]| pdf.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"/DCTDecode"), "the photo is a JPEG in the PDF");

    let translucent = template(json!({
        "page": {"width": 100, "height": 100},
        "layers": [{"type": "image", "name": "pic", "x": 0, "y": 0, "width": 100, "height": 100,
                    "src": format!("data:image/png;base64,{}", {
                        let img = RgbaImage::from_pixel(10, 10, Rgba([200, 0, 0, 128]));
                        let mut png = Vec::new();
                        DynamicImage::ImageRgba8(img)
                            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
                            .unwrap();
                        base64::engine::general_purpose::STANDARD.encode(png)
                    })}]
    }));
    let svg = String::from_utf8(render(&translucent, Format::Svg)).unwrap();
    assert!(svg.contains("data:image/png;base64,"), "with its alpha");
    let pdf = render(&translucent, Format::Pdf);
    assert!(
        pdf.windows(6).any(|w| w == b"/SMask"),
        "the alpha is a soft mask in the PDF"
    );
}
