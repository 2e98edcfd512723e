//! Processing stories on small synthetic images where the right answer is known exactly.

mod common;

use image::{DynamicImage, GenericImageView, ImageFormat};
use pixeld_imaging::{Limits, Options, OutputFormat, probe, process};

fn run(bytes: &[u8], query: &str) -> pixeld_imaging::Output {
    process(
        bytes,
        &Options::from_query(query).unwrap(),
        &Limits::default(),
    )
    .unwrap()
}

fn px(img: &DynamicImage, x: u32, y: u32) -> [u8; 3] {
    let p = img.get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) < 40)
}

#[test]
fn a_photo_taken_sideways_comes_out_upright() {
    // Orientation 6: the stored 60×40 picture is displayed rotated 90° clockwise, 40×60.
    let jpeg = common::jpeg_with_exif(6, false);
    assert_eq!(probe(&jpeg, &Limits::default()).unwrap().width, 40);
    let out = run(&jpeg, "format=png");
    assert_eq!((out.width, out.height), (40, 60));
    let img = common::second_decode(&out.bytes);
    // Stored top-left (green strip, red below) is now at the top-right; blue at the bottom.
    assert!(close(px(&img, 35, 2), [0, 200, 0]), "{:?}", px(&img, 35, 2));
    assert!(
        close(px(&img, 10, 10), [220, 0, 0]),
        "{:?}",
        px(&img, 10, 10)
    );
    assert!(
        close(px(&img, 20, 55), [0, 0, 220]),
        "{:?}",
        px(&img, 20, 55)
    );
}

#[test]
fn every_exif_orientation_gives_the_same_upright_picture() {
    let upright =
        common::second_decode(&run(&common::jpeg_with_exif(1, false), "format=png").bytes);
    for o in 2..=8u16 {
        // Build a stored image that, displayed with orientation `o`, looks like `upright`.
        let base = DynamicImage::ImageRgb8(common::landscape());
        let stored = match o {
            2 => base.fliph(),
            3 => base.rotate180(),
            4 => base.flipv(),
            5 => base.rotate90().fliph(),
            6 => base.rotate270(),
            7 => base.rotate270().fliph(),
            _ => base.rotate90(),
        };
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&common::exif_block(o, false));
        let jpeg = common::with_app1(&common::encode(&stored, ImageFormat::Jpeg), &payload);
        let out = common::second_decode(&run(&jpeg, "format=png").bytes);
        assert_eq!(out.dimensions(), (60, 40), "orientation {o}");
        for (x, y) in [(5, 3), (20, 30), (50, 20)] {
            assert!(
                close(px(&out, x, y), px(&upright, x, y)),
                "orientation {o} at {x},{y}"
            );
        }
    }
}

#[test]
fn metadata_is_stripped_by_default() {
    let jpeg = common::jpeg_with_exif(6, true);
    for f in ["jpeg", "png", "webp"] {
        let out = run(&jpeg, &format!("format={f}"));
        assert!(!common::has_exif(&out.bytes), "{f} output carries EXIF");
        let p = probe(&out.bytes, &Limits::default()).unwrap();
        assert_eq!(p.exif, None);
    }
}

#[test]
fn kept_metadata_loses_gps_and_orientation_unless_gps_is_asked_for() {
    let jpeg = common::jpeg_with_exif(6, true);
    for f in ["jpeg", "png", "webp"] {
        let out = run(&jpeg, &format!("format={f}&metadata=keep"));
        let exif = probe(&out.bytes, &Limits::default())
            .unwrap()
            .exif
            .expect("EXIF kept");
        assert_eq!(exif.make.as_deref(), Some("Pixeld Optics"), "{f}");
        assert_eq!(exif.taken_at.as_deref(), Some("2024-05-06 07:08:09"));
        assert!(!exif.gps, "{f}: GPS must be removed");
        // The pixels are already upright, so the output must not be rotated again.
        assert_eq!(exif.orientation, 1);
        assert_eq!((out.width, out.height), (40, 60));

        let with_gps = run(&jpeg, &format!("format={f}&metadata=keep&keep_gps=1"));
        assert!(
            probe(&with_gps.bytes, &Limits::default())
                .unwrap()
                .exif
                .unwrap()
                .gps,
            "{f}"
        );
    }
}

#[test]
fn transparent_edges_do_not_bleed_hidden_colour_when_resized() {
    let png = common::red_disc_png();
    let out = run(&png, "w=23&format=png");
    let img = common::second_decode(&out.bytes).to_rgba8();
    for p in img.pixels() {
        // Any visible pixel is red; premultiplied resizing never lets the hidden green in.
        if p.0[3] > 16 {
            assert!(p.0[1] < 40 && p.0[0] > 180, "green bleed: {:?}", p.0);
        }
    }
    assert!(
        img.pixels().any(|p| p.0[3] == 0),
        "transparency kept in PNG"
    );
}

#[test]
fn a_photo_shrunk_to_webp_keeps_its_exif_without_gps_when_asked() {
    // 2560×1600 → 320 px: shrunk to 1/4 on decode, so the JPEG's own YCbCr goes straight to
    // libwebp (src/pipeline.rs, `process_planar`); metadata must survive that route too.
    let Some(garden) = common::wallpaper("nature/Garden.jpg") else {
        return;
    };
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&common::exif_block(1, true));
    let jpeg = common::with_app1(&garden, &payload);
    let out = run(&jpeg, "w=320&format=webp&metadata=keep");
    assert_eq!((out.width, out.height), (320, 200));
    assert_eq!(
        &out.bytes[12..16],
        b"VP8X",
        "EXIF needs the extended container"
    );
    let exif = probe(&out.bytes, &Limits::default())
        .unwrap()
        .exif
        .expect("EXIF kept");
    assert_eq!(exif.make.as_deref(), Some("Pixeld Optics"));
    assert!(!exif.gps, "GPS must be removed");
    let img = common::second_decode(&out.bytes);
    assert_eq!(img.dimensions(), (320, 200));

    let stripped = run(&jpeg, "w=320&format=webp");
    assert!(!common::has_exif(&stripped.bytes));
    assert_eq!(&stripped.bytes[12..16], b"VP8 ");
}

#[test]
fn lossy_webp_keeps_transparency_and_colour() {
    // Lossy pictures go to libwebp as YUV plus an alpha plane (vendor/webp/PIXELD.md).
    let png = common::red_disc_png();
    let out = run(&png, "format=webp&q=80");
    assert_eq!(out.format, OutputFormat::Webp);
    assert_eq!(
        &out.bytes[12..16],
        b"VP8X",
        "an alpha WebP has the extended header"
    );
    let img = common::second_decode(&out.bytes).to_rgba8();
    let (w, h) = img.dimensions();
    assert_eq!(img.get_pixel(0, 0).0[3], 0, "corner stays transparent");
    let centre = img.get_pixel(w / 2, h / 2).0;
    assert_eq!(centre[3], 255, "disc stays opaque");
    assert!(
        centre[0] > 200 && centre[1] < 40 && centre[2] < 40,
        "disc stays red: {centre:?}"
    );
}
#[test]
fn transparency_is_flattened_onto_the_background_for_jpeg() {
    let png = common::red_disc_png();
    let out = run(&png, "format=jpeg&bg=%230000ff");
    let img = common::second_decode(&out.bytes);
    assert!(
        close(px(&img, 1, 1), [0, 0, 255]),
        "corner is the background: {:?}",
        px(&img, 1, 1)
    );
    assert!(close(px(&img, 32, 32), [255, 0, 0]));
    let white = common::second_decode(&run(&png, "format=jpeg").bytes);
    assert!(close(px(&white, 1, 1), [255, 255, 255]), "white by default");
}

#[test]
fn every_fit_gives_the_documented_size() {
    let jpeg = common::jpeg_with_exif(1, false); // 60×40
    for (q, size) in [
        ("w=30", (30, 20)),
        ("h=10", (15, 10)),
        ("w=30&h=30&fit=inside", (30, 20)),
        ("w=30&h=30&fit=outside", (45, 30)),
        ("w=30&h=30&fit=cover", (30, 30)),
        ("w=30&h=30&fit=contain", (30, 30)),
        ("w=30&h=30&fit=fill", (30, 30)),
        ("w=120", (60, 40)),
        ("w=120&enlarge=1", (120, 80)),
        ("crop=10,10,20,20", (20, 20)),
        ("rotate=90", (40, 60)),
        ("w=30&rotate=270", (30, 45)),
    ] {
        let out = run(&jpeg, &format!("{q}&format=png"));
        assert_eq!((out.width, out.height), size, "{q}");
        assert_eq!(common::second_decode(&out.bytes).dimensions(), size, "{q}");
    }
}

#[test]
fn cover_with_gravity_keeps_the_asked_side() {
    let jpeg = common::jpeg_with_exif(1, false); // red left, blue right
    let west =
        common::second_decode(&run(&jpeg, "w=20&h=20&fit=cover&gravity=west&format=png").bytes);
    let east =
        common::second_decode(&run(&jpeg, "w=20&h=20&fit=cover&gravity=east&format=png").bytes);
    assert!(close(px(&west, 10, 15), [220, 0, 0]));
    assert!(close(px(&east, 10, 15), [0, 0, 220]));
}

#[test]
fn smart_crop_finds_the_detailed_part() {
    // Flat grey everywhere except a noisy patch on the right.
    let img = image::RgbImage::from_fn(300, 100, |x, y| {
        if x > 220 {
            let v = ((x * 7919 + y * 104_729) % 251) as u8;
            image::Rgb([v, v / 2, 255 - v])
        } else {
            image::Rgb([128, 128, 128])
        }
    });
    let png = common::encode(&DynamicImage::ImageRgb8(img), ImageFormat::Png);
    let out =
        common::second_decode(&run(&png, "w=100&h=100&fit=cover&gravity=smart&format=png").bytes);
    let grey = (0..100)
        .filter(|&x| px(&out, x, 50) == [128, 128, 128])
        .count();
    assert!(
        grey < 30,
        "the crop should sit on the detail, found {grey} grey columns"
    );
}

#[test]
fn contain_pads_with_the_background() {
    let jpeg = common::jpeg_with_exif(1, false);
    let out =
        common::second_decode(&run(&jpeg, "w=60&h=60&fit=contain&bg=%2300ff00&format=jpeg").bytes);
    assert!(close(px(&out, 30, 2), [0, 255, 0]), "{:?}", px(&out, 30, 2));
    assert!(close(px(&out, 10, 30), [220, 0, 0]));
    let png = run(&jpeg, "w=60&h=60&fit=contain&format=png");
    let rgba = common::second_decode(&png.bytes).to_rgba8();
    assert_eq!(
        rgba.get_pixel(30, 2).0[3],
        0,
        "PNG padding is transparent by default"
    );
}

#[test]
fn flip_flop_and_rotate_move_the_pixels() {
    let jpeg = common::jpeg_with_exif(1, false);
    let flop = common::second_decode(&run(&jpeg, "flop&format=png").bytes);
    assert!(close(px(&flop, 5, 20), [0, 0, 220]));
    let flip = common::second_decode(&run(&jpeg, "flip&format=png").bytes);
    assert!(close(px(&flip, 5, 38), [0, 200, 0]));
    let r180 = common::second_decode(&run(&jpeg, "rotate=180&format=png").bytes);
    assert!(close(px(&r180, 55, 38), [0, 200, 0]));
}

#[test]
fn each_output_format_is_what_it_claims() {
    let jpeg = common::jpeg_with_exif(1, false);
    for (q, fmt, magic) in [
        ("format=jpeg", OutputFormat::Jpeg, &b"\xFF\xD8\xFF"[..]),
        ("format=png", OutputFormat::Png, &b"\x89PNG"[..]),
        ("format=webp", OutputFormat::Webp, &b"RIFF"[..]),
        ("format=webp&lossless", OutputFormat::Webp, &b"RIFF"[..]),
        ("format=avif&effort=9", OutputFormat::Avif, &b"\0\0\0"[..]),
    ] {
        let out = run(&jpeg, q);
        assert_eq!(out.format, fmt);
        assert!(out.bytes.starts_with(magic), "{q}");
    }
}

#[test]
fn webp_lossless_round_trips_exactly() {
    let png = common::red_disc_png();
    let out = run(&png, "format=webp&lossless");
    let back = common::second_decode(&out.bytes).to_rgba8();
    let orig = image::load_from_memory(&png).unwrap().to_rgba8();
    // Visible pixels are exact; fully transparent ones may change their hidden colour.
    for (a, b) in back.pixels().zip(orig.pixels()) {
        assert_eq!(a.0[3], b.0[3]);
        if b.0[3] > 0 {
            assert_eq!(a.0, b.0);
        }
    }
}

/// The luma component's sampling factors from a baseline JPEG's SOF0: 0x22 means the chroma
/// is at half resolution both ways (4:2:0), 0x11 full resolution (4:4:4).
fn jpeg_luma_sampling(jpeg: &[u8]) -> u8 {
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    // FF C0, length (2), precision, height (2), width (2), components, then id + sampling.
    assert_eq!(jpeg[sof + 9], 3, "three components");
    jpeg[sof + 11]
}

#[test]
fn jpeg_colour_is_subsampled_below_q90_unless_asked_otherwise() {
    let jpeg = common::jpeg_with_exif(1, false);
    for (query, want) in [
        ("format=jpeg&q=80", 0x22),
        ("format=jpeg&q=90", 0x11),
        ("format=jpeg&q=80&chroma=444", 0x11),
        ("format=jpeg&q=95&chroma=420", 0x22),
    ] {
        let out = run(&jpeg, query);
        assert_eq!(jpeg_luma_sampling(&out.bytes), want, "{query}");
        let img = common::second_decode(&out.bytes);
        assert_eq!(img.dimensions(), (60, 40), "{query}");
    }
    // Full colour costs bytes: the same picture at the same quality is larger.
    let photo = common::encode(
        &DynamicImage::ImageRgb8(common::landscape()),
        ImageFormat::Png,
    );
    let small = run(&photo, "format=jpeg&q=80").bytes.len();
    let full = run(&photo, "format=jpeg&q=80&chroma=444").bytes.len();
    assert!(full > small, "{full} vs {small}");
}

#[test]
fn progressive_and_baseline_jpegs_are_both_possible() {
    let jpeg = common::jpeg_with_exif(1, false);
    let is_progressive = |b: &[u8]| b.windows(2).any(|w| w == [0xFF, 0xC2]);
    assert!(!is_progressive(&run(&jpeg, "format=jpeg").bytes));
    assert!(is_progressive(
        &run(&jpeg, "format=jpeg&progressive=1").bytes
    ));
    assert!(is_progressive(
        &run(&jpeg, "format=jpeg&progressive=1&trellis=1").bytes
    ));
    assert!(!is_progressive(
        &run(&jpeg, "format=jpeg&progressive=0").bytes
    ));
    assert!(!is_progressive(
        &run(&jpeg, "format=jpeg&progressive=0&trellis=1").bytes
    ));
}

#[test]
fn gif_bmp_and_tiff_inputs_are_read() {
    let img = DynamicImage::ImageRgb8(common::landscape());
    for fmt in [
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
        ImageFormat::WebP,
    ] {
        let out = run(&common::encode(&img, fmt), "w=30&format=png");
        assert_eq!((out.width, out.height), (30, 20), "{fmt:?}");
    }
}

#[test]
fn blur_and_sharpen_change_the_pixels_but_not_the_size() {
    let jpeg = common::jpeg_with_exif(1, false);
    let plain = run(&jpeg, "format=png");
    let blurred = run(&jpeg, "format=png&blur=3");
    let sharp = run(&jpeg, "format=png&sharpen=1");
    assert_eq!((blurred.width, blurred.height), (60, 40));
    assert_ne!(plain.bytes, blurred.bytes);
    assert_ne!(plain.bytes, sharp.bytes);
    let b = common::second_decode(&blurred.bytes);
    // On the red/blue border the blur mixes both.
    let mid = px(&b, 30, 25);
    assert!(mid[0] > 40 && mid[2] > 40, "{mid:?}");
}

fn adobe_rgb_png(rgb: [u8; 3]) -> (Vec<u8>, Vec<u8>) {
    use image::ImageEncoder;
    let icc = moxcms::ColorProfile::new_adobe_rgb().encode().unwrap();
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb(rgb));
    let mut png = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new(&mut png);
    enc.set_icc_profile(icc.clone()).unwrap();
    enc.write_image(img.as_raw(), 8, 8, image::ExtendedColorType::Rgb8)
        .unwrap();
    (png, icc)
}

#[test]
fn an_adobe_rgb_image_is_converted_to_srgb_and_its_profile_dropped() {
    let (png, icc) = adobe_rgb_png([100, 150, 50]);
    let out = run(&png, "format=png");
    assert!(
        !out.bytes.windows(4).any(|w| w == b"iCCP"),
        "profile dropped"
    );
    let got = px(&common::second_decode(&out.bytes), 4, 4);
    // What a colour-managed viewer would show, computed independently of the pipeline.
    let src = moxcms::ColorProfile::new_from_slice(&icc).unwrap();
    let t = src
        .create_transform_8bit(
            moxcms::Layout::Rgb,
            &moxcms::ColorProfile::new_srgb(),
            moxcms::Layout::Rgb,
            Default::default(),
        )
        .unwrap();
    let mut want = [0u8; 3];
    t.transform(&[100, 150, 50], &mut want).unwrap();
    assert_ne!(
        want,
        [100, 150, 50],
        "Adobe RGB and sRGB differ for this colour"
    );
    assert!(
        got.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 2),
        "got {got:?}, want {want:?}"
    );
}

#[test]
fn icc_keep_leaves_the_pixels_and_embeds_the_profile() {
    let (png, _) = adobe_rgb_png([100, 150, 50]);
    for f in ["png", "jpeg", "webp"] {
        let out = run(&png, &format!("format={f}&icc=keep"));
        assert!(
            out.bytes.windows(4).any(|w| w == b"iCCP" || w == b"ICCP")
                || out.bytes.windows(12).any(|w| w == b"ICC_PROFILE\0"),
            "{f}: profile embedded"
        );
        let got = px(&common::second_decode(&out.bytes), 4, 4);
        assert!(
            got.iter()
                .zip([100u8, 150, 50])
                .all(|(a, b)| a.abs_diff(b) <= 3),
            "{f}: {got:?}"
        );
    }
}
