//! What a template author sees: the pixels of rendered templates, and the errors of bad ones.

use std::sync::{Arc, OnceLock};

use image::{DynamicImage, GenericImageView, Rgba};
use pixeld_render::{
    Data, Error, Format, Images, Input, Limits, Modification, OutputOptions, Renderer, Template,
    parse,
};
use serde_json::{Value, json};

fn renderer() -> &'static Renderer {
    static R: OnceLock<Renderer> = OnceLock::new();
    R.get_or_init(|| Renderer::new().expect("bundled fonts load"))
}

fn template(v: Value) -> Template {
    parse(v.to_string().as_bytes(), &Limits::default()).expect("valid template")
}

fn render_with(
    t: &Template,
    data: &[(&str, &str)],
    mods: &[Modification],
    images: &Images,
    format: Format,
) -> Vec<u8> {
    let data: Data = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    renderer()
        .render(
            t,
            Input {
                data: &data,
                modifications: mods,
                images,
            },
            &OutputOptions {
                format,
                ..Default::default()
            },
        )
        .expect("renders")
        .bytes
}

fn render_png(v: Value) -> DynamicImage {
    let t = template(v);
    image::load_from_memory(&render_with(&t, &[], &[], &Images::new(), Format::Png)).expect("a PNG")
}

fn render_err(v: Value, data: &[(&str, &str)], mods: &[Modification]) -> Error {
    let t = match parse(v.to_string().as_bytes(), &Limits::default()) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let data: Data = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    renderer()
        .render(
            &t,
            Input {
                data: &data,
                modifications: mods,
                images: &Images::new(),
            },
            &OutputOptions::default(),
        )
        .expect_err("the render is refused")
}

/// Bounding box (x0, y0, x1, y1) of pixels that differ from `bg` by more than 60 in any channel.
fn ink(img: &DynamicImage, bg: [u8; 3]) -> Option<(u32, u32, u32, u32)> {
    let mut b: Option<(u32, u32, u32, u32)> = None;
    for (x, y, Rgba(p)) in img.pixels() {
        let d = (0..3)
            .map(|i| (i32::from(p[i]) - i32::from(bg[i])).abs())
            .max()
            .unwrap_or(0);
        if d > 60 && p[3] > 128 {
            b = Some(match b {
                None => (x, y, x, y),
                Some((a, c, e, f)) => (a.min(x), c.min(y), e.max(x), f.max(y)),
            });
        }
    }
    b
}

fn px(img: &DynamicImage, x: u32, y: u32) -> [u8; 4] {
    img.get_pixel(x, y).0
}

fn close(a: [u8; 4], b: [u8; 4], tol: i32) -> bool {
    (0..4).all(|i| (i32::from(a[i]) - i32::from(b[i])).abs() <= tol)
}

fn text_page(layer: Value) -> Value {
    json!({"page": {"width": 600, "height": 300, "background": "#ffffff"}, "layers": [layer]})
}

#[test]
fn a_card_renders_its_background_gradient_frame_and_text() {
    let img = render_png(json!({
        "page": {"width": 1200, "height": 630,
                 "background": {"linear": {"angle": 90, "stops": [{"color": "#ff0000"}, {"color": "#0000ff"}]}}},
        "layers": [
            {"type": "frame", "name": "panel", "x": 100, "y": 100, "width": 400, "height": 200,
             "background": "#00ff00", "radius": 24},
            {"type": "text", "name": "title", "x": 600, "y": 100, "width": 500, "text": "Hello",
             "size": 80, "color": "#000000"}
        ]
    }));
    assert_eq!(img.dimensions(), (1200, 630));
    // The gradient runs red (left) to blue (right).
    assert!(
        close(px(&img, 2, 600), [255, 0, 0, 255], 12),
        "{:?}",
        px(&img, 2, 600)
    );
    assert!(
        close(px(&img, 1197, 600), [0, 0, 255, 255], 12),
        "{:?}",
        px(&img, 1197, 600)
    );
    // The frame is green inside, and its corner is rounded away.
    assert!(close(px(&img, 300, 200), [0, 255, 0, 255], 2));
    assert!(!close(px(&img, 101, 101), [0, 255, 0, 255], 30));
    // The title's black ink sits inside its box.
    let dark = (600..1100)
        .flat_map(|x| (100..200).map(move |y| (x, y)))
        .filter(|&(x, y)| px(&img, x, y)[..3].iter().all(|&c| c < 40))
        .count();
    assert!(dark > 500, "title ink pixels: {dark}");
}

#[test]
fn placeholders_and_modifications_change_what_is_drawn() {
    let t = template(json!({
        "page": {"width": 400, "height": 200, "background": "#ffffff"},
        "variables": {"name": {"default": "nobody"}},
        "layers": [
            {"type": "text", "name": "greeting", "x": 10, "y": 10, "width": 380, "text": "Hi {{name}}", "size": 40},
            {"type": "shape", "name": "dot", "x": 300, "y": 120, "width": 60, "height": 60, "fill": "#ff0000"}
        ]
    }));
    let none = Images::new();
    let default = render_with(&t, &[], &[], &none, Format::Png);
    let named = render_with(&t, &[("name", "Ada")], &[], &none, Format::Png);
    assert_ne!(default, named, "the variable's value is drawn");
    let mods = [
        Modification {
            name: "dot".into(),
            color: Some("#0000ff".into()),
            ..Default::default()
        },
        Modification {
            name: "greeting".into(),
            hidden: Some(true),
            ..Default::default()
        },
    ];
    let img = image::load_from_memory(&render_with(
        &t,
        &[("name", "Ada")],
        &mods,
        &none,
        Format::Png,
    ))
    .unwrap();
    assert!(
        close(px(&img, 330, 150), [0, 0, 255, 255], 2),
        "the dot is recoloured"
    );
    assert_eq!(
        ink(&img.crop_imm(0, 0, 400, 100), [255, 255, 255]),
        None,
        "the greeting is hidden"
    );
}

#[test]
fn missing_variables_and_unknown_layers_are_all_listed() {
    let v = json!({
        "page": {"width": 100, "height": 100},
        "layers": [{"type": "text", "name": "t", "text": "{{a}} {{b}} {{c}}"}]
    });
    let e = render_err(v.clone(), &[("b", "x")], &[]);
    assert_eq!(e.kind(), "invalid-render-data");
    assert!(e.to_string().contains("missing variables: a, c"), "{e}");
    let mods = [
        Modification {
            name: "nope".into(),
            text: Some("x".into()),
            ..Default::default()
        },
        Modification {
            name: "ghost".into(),
            hidden: Some(true),
            ..Default::default()
        },
    ];
    let e = render_err(v, &[("a", "1"), ("b", "2"), ("c", "3")], &mods);
    assert!(e.to_string().contains("unknown layers: ghost, nope"), "{e}");
}

#[test]
fn the_same_template_and_data_give_the_same_bytes() {
    let t = template(json!({
        "page": {"width": 640, "height": 360, "background": {"radial": {"stops": [{"color": "#fff"}, {"color": "#333"}]}}},
        "layers": [
            {"type": "text", "name": "t", "x": 20, "y": 20, "width": 600, "height": 120, "fit": "shrink",
             "text": "Deterministic output: same template, same data, same fonts", "size": 90},
            {"type": "qr", "name": "q", "x": 500, "y": 220, "width": 120, "height": 120, "data": "https://pixeld.example/"}
        ]
    }));
    for format in [Format::Png, Format::Webp, Format::Jpeg, Format::Svg] {
        let a = render_with(&t, &[], &[], &Images::new(), format);
        let b = render_with(&t, &[], &[], &Images::new(), format);
        assert_eq!(a, b, "{format:?} output is reproducible");
    }
}

#[test]
fn shrink_fits_long_text_inside_its_box() {
    let long = "A title far too long to be set at ninety-six pixels inside this small box";
    let img = render_png(text_page(json!({
        "type": "text", "name": "t", "x": 50, "y": 50, "width": 300, "height": 100,
        "fit": "shrink", "min_size": 8, "size": 96, "text": long
    })));
    let (x0, y0, x1, y1) = ink(&img, [255, 255, 255]).expect("text is drawn");
    assert!(
        x0 >= 50 && x1 < 351 && y0 >= 50 && y1 < 151,
        "ink {x0},{y0}–{x1},{y1} stays in the box"
    );
    // And it was not shrunk needlessly: it fills most of the box's height.
    assert!(y1 - y0 > 50, "ink height {}", y1 - y0);
}

#[test]
fn clip_keeps_overflowing_text_inside_its_box() {
    let words = "word ".repeat(80);
    let layer = |fit: &str| {
        json!({"type": "text", "name": "t", "x": 20, "y": 20, "width": 400, "height": 45,
               "fit": fit, "size": 20, "line_height": 1.5, "text": words})
    };
    let clipped = render_png(text_page(layer("clip")));
    let (_, y0, _, y1) = ink(&clipped, [255, 255, 255]).expect("text is drawn");
    assert!(y0 >= 20 && y1 < 65, "ink rows {y0}–{y1} stay inside 20–65");
    // The box's height alone does not stop the text: `grow` lets it run on.
    let grown = render_png(text_page(layer("grow")));
    let (_, _, _, g1) = ink(&grown, [255, 255, 255]).unwrap();
    assert!(g1 > 100, "grow runs past the box, to row {g1}");
}

#[test]
fn ellipsis_cuts_text_at_max_lines() {
    let words = "word ".repeat(80);
    let img = render_png(text_page(json!({
        "type": "text", "name": "t", "x": 20, "y": 20, "width": 400, "fit": "ellipsis",
        "max_lines": 2, "size": 20, "line_height": 1.5, "text": words
    })));
    let (_, y0, _, y1) = ink(&img, [255, 255, 255]).expect("text is drawn");
    assert!(
        y1 - y0 < 2 * 30 + 4,
        "two lines of 30 px at most, got {}",
        y1 - y0
    );
    // Without a clamp the same text runs much further down.
    let grown = render_png(text_page(json!({
        "type": "text", "name": "t", "x": 20, "y": 20, "width": 400, "size": 20,
        "line_height": 1.5, "text": words
    })));
    let (_, g0, _, g1) = ink(&grown, [255, 255, 255]).unwrap();
    assert!(
        g1 - g0 > 3 * 30,
        "grow mode shows every line, got {}",
        g1 - g0
    );
}

#[test]
fn hebrew_and_arabic_start_at_the_right_edge() {
    for text in ["שלום עולם", "مرحبا بالعالم"] {
        let img = render_png(text_page(json!({
            "type": "text", "name": "t", "x": 0, "y": 20, "width": 600, "text": text, "size": 40
        })));
        let (x0, _, x1, _) = ink(&img, [255, 255, 255]).expect("glyphs are drawn");
        assert!(
            x1 > 560 && x0 > 200,
            "{text}: ink from {x0} to {x1} hugs the right edge"
        );
    }
}

#[test]
fn devanagari_cjk_and_emoji_have_glyphs_not_boxes() {
    // Distinct characters of a script draw distinct shapes when the font covers them (missing
    // glyphs all draw the same .notdef box).
    for (a, b) in [("नमस्ते", "धन्यवाद"), ("你好世界", "谢谢朋友"), ("😀", "🚀")]
    {
        let ra = render_png(text_page(
            json!({"type": "text", "name": "t", "x": 10, "y": 10, "width": 580, "text": a, "size": 64}),
        ));
        let rb = render_png(text_page(
            json!({"type": "text", "name": "t", "x": 10, "y": 10, "width": 580, "text": b, "size": 64}),
        ));
        assert!(ink(&ra, [255, 255, 255]).is_some(), "{a} is drawn");
        assert_ne!(
            ra.to_rgba8().into_raw(),
            rb.to_rgba8().into_raw(),
            "{a} and {b} differ"
        );
    }
    // Emoji are in colour.
    let img = render_png(text_page(
        json!({"type": "text", "name": "t", "x": 10, "y": 10, "width": 580, "text": "😀", "size": 96}),
    ));
    let colourful = img.pixels().filter(|(_, _, Rgba(p))| {
        let (mx, mn) = (p[..3].iter().max().unwrap(), p[..3].iter().min().unwrap());
        mx - mn > 100
    });
    assert!(colourful.count() > 200, "the emoji is drawn in colour");
}

#[test]
fn a_qr_layer_scans_back_to_its_data() {
    let img = render_png(json!({
        "page": {"width": 300, "height": 300, "background": "#ffffff"},
        "layers": [{"type": "qr", "name": "q", "x": 25, "y": 25, "width": 250, "height": 250,
                    "data": "https://pixeld.example/r/42?utm=qr", "level": "H"}]
    }));
    let luma = img.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(300, 300, |x, y| {
        luma.get_pixel(x as u32, y as u32).0[0]
    });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().expect("decodes");
    assert_eq!(content, "https://pixeld.example/r/42?utm=qr");
}

#[test]
fn an_ean13_barcode_has_its_guard_bars_and_check_digit() {
    // 95 modules + 20 quiet: at 2 px per module the bars can be read back from one row.
    let img = render_png(json!({
        "page": {"width": 230, "height": 60, "background": "#ffffff"},
        "layers": [{"type": "barcode", "name": "b", "x": 0, "y": 0, "width": 230, "height": 60,
                    "symbology": "ean13", "data": "400638133393"}]
    }));
    let row: Vec<u8> = (0..115)
        .map(|m| u8::from(px(&img, m * 2 + 1, 30)[0] < 128))
        .collect();
    assert_eq!(&row[10..13], &[1, 0, 1], "start guard");
    assert_eq!(&row[55..60], &[0, 1, 0, 1, 0], "centre guard");
    assert_eq!(&row[102..105], &[1, 0, 1], "end guard");
    let e = render_err(
        json!({"page": {"width": 10, "height": 10}, "layers": [
        {"type": "barcode", "name": "b", "symbology": "upc_a", "data": "12AB"}]}),
        &[],
        &[],
    );
    assert!(e.to_string().contains("UPC-A takes 11 digits"), "{e}");
}

#[test]
fn images_fill_their_box_by_fit_mode_and_unfetched_sources_are_named() {
    // A 2×1 image: left half red, right half blue.
    let mut src = image::RgbaImage::new(200, 100);
    for (x, _, p) in src.enumerate_pixels_mut() {
        *p = if x < 100 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 255, 255])
        };
    }
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(src)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut images = Images::new();
    images.insert("https://img.example/a.png".into(), Arc::from(png.clone()));
    let page = |fit: &str, focal: Value| {
        template(json!({
            "page": {"width": 100, "height": 100, "background": "#ffffff"},
            "layers": [{"type": "image", "name": "pic", "x": 0, "y": 0, "width": 100, "height": 100,
                        "src": "https://img.example/a.png", "fit": fit, "focal": focal}]
        }))
    };
    let draw = |t: &Template| {
        image::load_from_memory(&render_with(t, &[], &[], &images, Format::Png)).unwrap()
    };
    // cover + focal on the right: all blue.
    let img = draw(&page("cover", json!({"x": 1.0, "y": 0.5})));
    assert!(
        close(px(&img, 10, 50), [0, 0, 255, 255], 8)
            && close(px(&img, 90, 50), [0, 0, 255, 255], 8)
    );
    // contain: letterboxed, white above and below, red then blue across.
    let img = draw(&page("contain", json!({"x": 0.5, "y": 0.5})));
    assert!(close(px(&img, 50, 5), [255, 255, 255, 255], 8));
    assert!(
        close(px(&img, 10, 50), [255, 0, 0, 255], 8)
            && close(px(&img, 90, 50), [0, 0, 255, 255], 8)
    );
    // The same image as a data URI needs no fetching.
    use base64::Engine as _;
    let uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    );
    let t = template(json!({"page": {"width": 100, "height": 100},
        "layers": [{"type": "image", "name": "pic", "width": 100, "height": 100, "src": uri, "fit": "fill"}]}));
    let img =
        image::load_from_memory(&render_with(&t, &[], &[], &Images::new(), Format::Png)).unwrap();
    assert!(close(px(&img, 10, 50), [255, 0, 0, 255], 8));
    // A source the caller did not fetch, and bytes that are no image, name the layer.
    let t = page("cover", json!({"x": 0.5, "y": 0.5}));
    assert_eq!(
        renderer().image_sources(&t, &Data::new(), &[]).unwrap(),
        vec!["https://img.example/a.png"]
    );
    let e = renderer()
        .render(
            &t,
            Input {
                data: &Data::new(),
                modifications: &[],
                images: &Images::new(),
            },
            &OutputOptions::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("image layer pic"), "{e}");
    let mut broken = Images::new();
    broken.insert(
        "https://img.example/a.png".into(),
        Arc::from(&b"<html>not found</html>"[..]),
    );
    let e = renderer()
        .render(
            &t,
            Input {
                data: &Data::new(),
                modifications: &[],
                images: &broken,
            },
            &OutputOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), "render-image-failed", "{e}");
}

#[test]
fn every_layer_type_and_output_format_renders() {
    let t = template(json!({
        "page": {"width": 320, "height": 240, "background": "#fafafa"},
        "layers": [
            {"type": "frame", "name": "row", "x": 10, "y": 10, "width": 300, "height": 60, "layout": "row",
             "gap": 10, "padding": 5, "align": "center", "border": {"width": 2, "color": "#333"},
             "shadow": {"x": 2, "y": 2, "blur": 4, "color": "rgba(0,0,0,0.4)"}, "clip": true,
             "children": [
                {"type": "shape", "name": "r", "width": 40, "height": 40, "fill": "#e33", "radius": 6},
                {"type": "shape", "name": "e", "width": 40, "height": 40, "shape": "ellipse", "fill": "#3e3"},
                {"type": "text", "name": "label", "grow": 1, "spans": [{"text": "bold ", "bold": true}, {"text": "blue", "color": "#00f"}], "size": 18}
             ]},
            {"type": "group", "name": "g", "x": 10, "y": 80, "children": [
                {"type": "shape", "name": "line", "x": 0, "y": 0, "width": 300, "height": 4, "shape": "line", "stroke": {"width": 4, "color": "#000"}},
                {"type": "shape", "name": "tri", "x": 0, "y": 10, "width": 50, "height": 50, "shape": "path", "d": "M0 50 L25 0 L50 50 Z", "fill": "#fa0"}
            ]},
            {"type": "svg", "name": "logo", "x": 100, "y": 90, "width": 50, "height": 50,
             "svg": "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 10 10'><circle cx='5' cy='5' r='5' fill='#808'/></svg>"},
            {"type": "frame", "name": "grid", "x": 170, "y": 90, "width": 140, "height": 60, "layout": "grid", "columns": 2, "gap": 4,
             "children": [
                {"type": "shape", "name": "g1", "height": 28, "fill": "#123"},
                {"type": "shape", "name": "g2", "height": 28, "fill": "#456"},
                {"type": "shape", "name": "g3", "height": 28, "fill": "#789"}
             ]},
            {"type": "barcode", "name": "code", "x": 10, "y": 160, "width": 200, "height": 60, "data": "PIXELD-1"},
            {"type": "qr", "name": "qr", "x": 240, "y": 160, "width": 70, "height": 70, "data": "hi", "rotation": 0, "opacity": 0.9}
        ]
    }));
    let img =
        image::load_from_memory(&render_with(&t, &[], &[], &Images::new(), Format::Png)).unwrap();
    assert!(
        close(px(&img, 35, 40), [0xee, 0x33, 0x33, 255], 4),
        "rect in the row: {:?}",
        px(&img, 35, 40)
    );
    assert!(
        close(px(&img, 125, 115), [0x88, 0x00, 0x88, 255], 4),
        "svg circle centre"
    );
    assert!(
        close(px(&img, 35, 135), [0xff, 0xaa, 0x00, 255], 4),
        "path triangle"
    );
    assert!(
        close(px(&img, 200, 105), [0x11, 0x22, 0x33, 255], 4),
        "grid cell 1"
    );
    assert!(
        close(px(&img, 280, 105), [0x44, 0x55, 0x66, 255], 4),
        "grid cell 2 is in the second column"
    );
    assert!(
        close(px(&img, 200, 137), [0x77, 0x88, 0x99, 255], 4),
        "grid cell 3 wraps to the second row"
    );
    assert!(
        px(&img, 150, 82)[0] < 60,
        "the line is drawn: {:?}",
        px(&img, 150, 82)
    );
    for (format, magic) in [
        (Format::Jpeg, &b"\xff\xd8"[..]),
        (Format::Webp, b"RIFF"),
        (Format::Avif, b"\0\0\0"),
        (Format::Svg, b"<svg"),
    ] {
        let bytes = render_with(&t, &[], &[], &Images::new(), format);
        assert!(bytes.starts_with(magic), "{format:?}");
        if format != Format::Svg && format != Format::Avif {
            assert_eq!(
                image::load_from_memory(&bytes).unwrap().dimensions(),
                (320, 240)
            );
        }
    }
}

#[test]
fn scale_two_doubles_the_pixels() {
    let t = template(text_page(json!({"type": "text", "name": "t", "text": "x"})));
    let out = renderer()
        .render(
            &t,
            Input {
                data: &Data::new(),
                modifications: &[],
                images: &Images::new(),
            },
            &OutputOptions {
                scale: 2.0,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((out.width, out.height), (1200, 600));
}

#[test]
fn bad_templates_get_clear_errors_within_limits() {
    let page = |layers: Value| json!({"page": {"width": 100, "height": 100}, "layers": layers});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"page": {"width": 40000, "height": 40000}, "layers": []}),
            "outside 1–8192 pixels",
        ),
        (
            json!({"page": {"width": 8000, "height": 8000}, "layers": []}),
            "more than 40000000 pixels",
        ),
        (
            page(json!([{"type": "text", "name": "t", "text": "x", "colour": "red"}])),
            "unknown properties for a text: colour",
        ),
        (
            page(json!([{"type": "blob", "name": "t"}])),
            "unknown type \"blob\"",
        ),
        (
            page(
                json!([{"type": "text", "name": "t", "text": "x", "color": "red; position: fixed"}]),
            ),
            "is not a CSS colour",
        ),
        (
            page(
                json!([{"type": "text", "name": "a", "text": "x"}, {"type": "text", "name": "a", "text": "y"}]),
            ),
            "the name is used twice",
        ),
        (
            page(json!([{"type": "text", "name": "t", "text": "x", "size": -3}])),
            "size: -3 is outside",
        ),
        (
            page(
                json!([{"type": "text", "name": "t", "text": "x", "font": {"family": "Comic Sans MS"}}]),
            ),
            "unknown font families: Comic Sans MS",
        ),
        (
            page(json!([{"type": "text", "name": "t", "text": "x".repeat(10 << 20)}])),
            "at most",
        ),
    ];
    for (v, want) in cases {
        let e = render_err(v, &[], &[]);
        assert!(e.to_string().contains(want), "want {want:?}, got {e}");
    }
    // Nesting deeper than 32 levels.
    let mut deep = json!({"type": "group", "name": "g0", "children": []});
    for i in 1..40 {
        deep = json!({"type": "group", "name": format!("g{i}"), "children": [deep]});
    }
    let e = render_err(page(json!([deep])), &[], &[]);
    assert!(e.to_string().contains("nest more than 32 levels"), "{e}");
    // 50 000 layers.
    let many: Vec<Value> = (0..50_000)
        .map(|i| json!({"type": "shape", "name": format!("s{i}")}))
        .collect();
    let e = render_err(page(Value::Array(many)), &[], &[]);
    assert!(e.to_string().contains("at most"), "{e}");
    // Not JSON at all.
    let e = parse(b"{\"page\": ", &Limits::default()).unwrap_err();
    assert_eq!(e.kind(), "invalid-template");
}

#[test]
fn the_published_json_schema_matches_the_model() {
    let published: Value =
        serde_json::from_str(include_str!("../schema/template-v1.json")).unwrap();
    assert_eq!(
        published,
        pixeld_render::json_schema(),
        "run `PIXELD_WRITE_SCHEMA=1 cargo test -p pixeld-render` and commit schema/template-v1.json"
    );
}

#[test]
#[ignore = "writes schema/template-v1.json; run with PIXELD_WRITE_SCHEMA=1"]
fn write_schema() {
    if std::env::var_os("PIXELD_WRITE_SCHEMA").is_some() {
        let s = serde_json::to_string_pretty(&pixeld_render::json_schema()).unwrap();
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/schema/template-v1.json"),
            s + "\n",
        )
        .unwrap();
    }
}
