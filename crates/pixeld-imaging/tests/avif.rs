//! AVIF input: what our own encoder writes decodes back to the same picture, and broken or
//! oversized AVIF files get a clear error before the AV1 decoder allocates anything.
#![cfg(all(feature = "avif", feature = "avif-decode"))]

mod common;

use image::{DynamicImage, GenericImageView, ImageFormat};
use pixeld_imaging::compare::{decode_reference, mean_abs_error, ssim};
use pixeld_imaging::{Error, Limits, Options, analyze, probe, process};

fn run(bytes: &[u8], query: &str) -> pixeld_imaging::Output {
    process(
        bytes,
        &Options::from_query(query).unwrap(),
        &Limits::default(),
    )
    .unwrap()
}

/// A 96×64 photo-like test card: smooth gradients plus the flat red/green/blue areas of
/// [`common::landscape`], so that both structure and exact colours are checked.
fn card() -> DynamicImage {
    let flat = common::landscape();
    DynamicImage::ImageRgb8(image::RgbImage::from_fn(96, 64, |x, y| {
        if x < 60 && y < 40 {
            *flat.get_pixel(x, y)
        } else {
            image::Rgb([(x * 2) as u8, (y * 3 + 40) as u8, ((x + y) * 2) as u8])
        }
    }))
}

fn avif_of(img: &DynamicImage, query: &str) -> Vec<u8> {
    let png = common::encode(img, ImageFormat::Png);
    let out = run(&png, query);
    assert!(out.bytes.windows(4).any(|w| w == b"ftyp"));
    out.bytes
}

/// The card's flat green, red and blue areas, each within `tolerance` per channel.
fn assert_flat_colours(decoded: &DynamicImage, tolerance: u8) {
    for (x, y, want) in [
        (10, 3, [0, 200, 0]),
        (10, 30, [220, 0, 0]),
        (50, 30, [0, 0, 220]),
    ] {
        let got = decoded.get_pixel(x, y).0;
        let err = (0..3).map(|c| got[c].abs_diff(want[c])).max().unwrap();
        assert!(err <= tolerance, "({x},{y}): {got:?} vs {want:?}");
    }
}

/// Offset of the `ispe` width field in a file we wrote ourselves.
fn ispe_at(avif: &[u8]) -> usize {
    avif.windows(4).position(|w| w == b"ispe").expect("ispe") + 8
}

#[test]
fn an_avif_we_wrote_decodes_back_to_the_same_picture() {
    let src = card();
    let avif = avif_of(&src, "format=avif&q=90&effort=6");
    let p = probe(&avif, &Limits::default()).unwrap();
    assert_eq!((p.format.name(), p.width, p.height), ("avif", 96, 64));
    assert!(p.decodable && !p.has_alpha);

    let decoded = decode_reference(&avif, &Limits::default()).unwrap();
    assert_eq!(decoded.dimensions(), (96, 64));
    let s = ssim(&src, &decoded).unwrap();
    let mae = mean_abs_error(&src, &decoded).unwrap();
    assert!(s > 0.95 && mae < 4.0, "SSIM {s:.4}, MAE {mae:.2}");
    // Flat areas keep their colour: a wrong matrix, range or channel order shows here.
    assert_flat_colours(&decoded, 12);

    // And through the whole pipeline: AVIF in, resized PNG out.
    let out = run(&avif, "w=48&format=png");
    assert_eq!((out.width, out.height), (48, 32));
    let a = analyze(&avif, &Limits::default()).unwrap();
    assert_eq!((a.width, a.height, a.has_alpha), (96, 64, false));
}

#[test]
fn a_real_photo_survives_an_avif_round_trip() {
    let Some(src) = common::wallpaper("nature/Garden.jpg") else {
        return;
    };
    let avif = run(&src, "w=480&format=avif&q=80&effort=8").bytes;
    let reference = common::second_decode(&run(&src, "w=480&format=png").bytes);
    let decoded = decode_reference(&avif, &Limits::default()).unwrap();
    assert_eq!(decoded.dimensions(), reference.dimensions());
    let s = ssim(&reference, &decoded).unwrap();
    let mae = mean_abs_error(&reference, &decoded).unwrap();
    assert!(s > 0.93 && mae < 4.0, "SSIM {s:.4}, MAE {mae:.2}");
}

#[test]
fn avif_transparency_is_kept() {
    let png = common::red_disc_png();
    let avif = run(&png, "format=avif&q=90").bytes;
    assert!(probe(&avif, &Limits::default()).unwrap().has_alpha);
    let out = run(&avif, "format=png");
    let img = common::second_decode(&out.bytes).to_rgba8();
    assert_eq!(img.get_pixel(1, 1).0[3], 0, "corner stays transparent");
    let centre = img.get_pixel(32, 32).0;
    assert!(
        centre[3] == 255 && centre[0] > 230 && centre[1] < 30,
        "{centre:?}"
    );
    // format=auto without AVIF/WebP support must pick PNG, not flatten to JPEG.
    assert_eq!(run(&avif, "").format, pixeld_imaging::OutputFormat::Png);
}

#[test]
fn a_truncated_avif_is_corrupt() {
    let avif = avif_of(&card(), "format=avif&q=70");
    for cut in [avif.len() - 1, avif.len() - 40, avif.len() * 2 / 3, 200, 40] {
        let bytes = &avif[..cut];
        for err in [
            process(bytes, &Options::default(), &Limits::default()).unwrap_err(),
            analyze(bytes, &Limits::default()).unwrap_err(),
        ] {
            assert_eq!(err.kind(), "corrupt-image", "cut at {cut}: {err}");
        }
    }
}

#[test]
fn every_prefix_of_a_small_avif_fails_cleanly() {
    let avif = avif_of(&card(), "format=avif&q=50");
    for cut in 0..avif.len() {
        let _ = probe(&avif[..cut], &Limits::default());
        let _ = process(&avif[..cut], &Options::default(), &Limits::default());
    }
}

#[test]
fn a_huge_ispe_is_refused_before_decoding() {
    let mut avif = avif_of(&card(), "format=avif&q=50");
    let at = ispe_at(&avif);
    avif[at..at + 4].copy_from_slice(&20_000u32.to_be_bytes());
    avif[at + 4..at + 8].copy_from_slice(&20_000u32.to_be_bytes());
    let want = Error::TooManyPixels {
        width: 20_000,
        height: 20_000,
        pixels: 400_000_000,
        max: 50_000_000,
    };
    assert_eq!(probe(&avif, &Limits::default()).unwrap_err(), want);
    assert_eq!(
        process(&avif, &Options::default(), &Limits::default()).unwrap_err(),
        want
    );
}

#[test]
fn an_av1_stream_larger_than_its_ispe_is_refused() {
    // The container claims 30×20 (within any limit) but the AV1 frame is 96×64: the decoded
    // size must never exceed what the limits were checked against.
    let mut avif = avif_of(&card(), "format=avif&q=50");
    let at = ispe_at(&avif);
    avif[at..at + 4].copy_from_slice(&30u32.to_be_bytes());
    avif[at + 4..at + 8].copy_from_slice(&20u32.to_be_bytes());
    let err = process(&avif, &Options::default(), &Limits::default()).unwrap_err();
    assert_eq!(err.kind(), "corrupt-image", "{err}");

    // The AV1 sequence header is checked against the limits too, before decoding.
    let small = Limits {
        max_pixels: 900,
        ..Limits::default()
    };
    let err = process(&avif, &Options::default(), &small).unwrap_err();
    assert_eq!(err.kind(), "too-many-pixels", "{err}");
}

/// `(subsampled x, subsampled y)` from the first `av1C` box (the colour item's).
fn av1c_chroma(avif: &[u8]) -> (bool, bool) {
    let at = avif.windows(4).position(|w| w == b"av1C").expect("av1C") + 4;
    let flags = avif[at + 2];
    (flags & 0x08 != 0, flags & 0x04 != 0)
}

#[test]
fn opaque_avif_below_q90_has_half_resolution_colour_and_looks_the_same() {
    let src = card();
    let avif = avif_of(&src, "format=avif&q=70");
    assert_eq!(av1c_chroma(&avif), (true, true), "4:2:0 by default");
    let p = probe(&avif, &Limits::default()).unwrap();
    assert_eq!((p.width, p.height, p.has_alpha), (96, 64, false));
    let decoded = decode_reference(&avif, &Limits::default()).unwrap();
    let s = ssim(&src, &decoded).unwrap();
    let mae = mean_abs_error(&src, &decoded).unwrap();
    assert!(s > 0.93 && mae < 5.0, "SSIM {s:.4}, MAE {mae:.2}");
    // The flat areas keep their colour: a wrong chroma plane size, matrix or range shows here.
    assert_flat_colours(&decoded, 14);
    // Odd sizes: the last chroma column and row cover one pixel.
    let odd =
        DynamicImage::ImageRgb8(image::imageops::crop_imm(&src.to_rgb8(), 0, 0, 95, 63).to_image());
    let avif = avif_of(&odd, "format=avif&q=70");
    let decoded = decode_reference(&avif, &Limits::default()).unwrap();
    assert_eq!(decoded.dimensions(), (95, 63));
    assert!(ssim(&odd, &decoded).unwrap() > 0.93);
}

#[test]
fn full_colour_avif_at_q90_on_request_and_with_transparency() {
    let src = card();
    assert_eq!(
        av1c_chroma(&avif_of(&src, "format=avif&q=90")),
        (false, false)
    );
    assert_eq!(
        av1c_chroma(&avif_of(&src, "format=avif&q=60&chroma=444")),
        (false, false)
    );
    assert_eq!(
        av1c_chroma(&avif_of(&src, "format=avif&q=95&chroma=420")),
        (true, true)
    );
    // Transparent images are mostly graphics: full colour unless asked otherwise.
    let disc = common::red_disc_png();
    assert_eq!(
        av1c_chroma(&run(&disc, "format=avif&q=60").bytes),
        (false, false)
    );
    // Asked for 4:2:0, the alpha plane still comes through.
    let avif = run(&disc, "format=avif&q=80&chroma=420").bytes;
    assert_eq!(av1c_chroma(&avif), (true, true));
    assert!(probe(&avif, &Limits::default()).unwrap().has_alpha);
    let img = common::second_decode(&run(&avif, "format=png").bytes).to_rgba8();
    assert_eq!(img.get_pixel(1, 1).0[3], 0, "corner stays transparent");
    let centre = img.get_pixel(32, 32).0;
    assert!(
        centre[3] == 255 && centre[0] > 220 && centre[1] < 40,
        "{centre:?}"
    );
}
