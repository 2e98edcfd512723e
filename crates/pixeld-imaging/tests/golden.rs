//! Golden tests on real photographs and graphics from Debian's `mate-backgrounds`
//! (installed by `tests/fixtures.sh`). Outputs are checked the way a user would: size,
//! colours against a full-quality reference decode (SSIM), metadata, and a second decoder.

mod common;

use image::GenericImageView;
use pixeld_imaging::compare::{decode_reference, mean_abs_error, resize_exact, ssim};
use pixeld_imaging::{
    ImageKind, Limits, Options, OutputFormat, analyze, hamming_distance, process,
};

const PHOTOS: [&str; 4] = [
    "nature/Garden.jpg",
    "nature/LadyBird.jpg",
    "nature/Storm.jpg",
    "abstract/Elephants_5640x3172.jpg",
];
const GRAPHICS: [&str; 2] = [
    "desktop/MATE-Stripes-Dark.png",
    "desktop/Float-into-MATE.png",
];

fn limits() -> Limits {
    Limits::default()
}

/// SSIM of an output against the original decoded at full resolution, resized with
/// Lanczos3 to the output's size (no shrink-on-decode, no lossy encode).
fn ssim_vs_reference(original: &[u8], output: &[u8]) -> f64 {
    let out = common::second_decode(output);
    let reference = decode_reference(original, &limits()).unwrap();
    let reference = resize_exact(&reference, out.width(), out.height()).unwrap();
    ssim(&reference, &out).unwrap()
}

#[test]
fn photos_resized_to_800_wide_jpeg_keep_their_look() {
    for name in PHOTOS {
        let Some(src) = common::wallpaper(name) else {
            return;
        };
        let full = decode_reference(&src, &limits()).unwrap();
        let out = process(
            &src,
            &Options::from_query("w=800&format=jpeg&q=80").unwrap(),
            &limits(),
        )
        .unwrap();
        let expect_h = (f64::from(full.height()) * 800.0 / f64::from(full.width())).round() as u32;
        assert_eq!((out.width, out.height), (800, expect_h), "{name}");
        assert_eq!(
            common::second_decode(&out.bytes).dimensions(),
            (800, expect_h)
        );
        let s = ssim_vs_reference(&src, &out.bytes);
        assert!(s > 0.90, "{name}: SSIM {s:.4}");
        assert!(!common::has_exif(&out.bytes));
        assert!(
            out.bytes.len() < src.len(),
            "{name}: smaller than the original"
        );
    }
}

#[test]
fn photos_converted_to_webp_and_avif_decode_and_keep_their_look() {
    let Some(src) = common::wallpaper("nature/Garden.jpg") else {
        return;
    };
    let webp = process(
        &src,
        &Options::from_query("w=640&format=webp&q=80").unwrap(),
        &limits(),
    )
    .unwrap();
    assert_eq!(
        (webp.format, webp.width, webp.height),
        (OutputFormat::Webp, 640, 400)
    );
    let s = ssim_vs_reference(&src, &webp.bytes);
    assert!(s > 0.90, "webp SSIM {s:.4}");

    let avif = process(
        &src,
        &Options::from_query("w=320&format=avif&effort=9").unwrap(),
        &limits(),
    )
    .unwrap();
    assert_eq!((avif.width, avif.height), (320, 200));
    assert!(
        avif.bytes.windows(4).any(|w| w == b"avif"),
        "an AVIF brand in ftyp"
    );
    assert!(avif.bytes.len() < webp.bytes.len());
}

#[test]
fn shrink_on_decode_matches_a_full_decode() {
    // 5640 → 700 lets mozjpeg decode at 1/4; the result must look like a full decode.
    let Some(src) = common::wallpaper("abstract/Elephants_5640x3172.jpg") else {
        return;
    };
    let out = process(
        &src,
        &Options::from_query("w=700&format=png").unwrap(),
        &limits(),
    )
    .unwrap();
    let lossless = common::second_decode(&out.bytes);
    let reference = resize_exact(
        &decode_reference(&src, &limits()).unwrap(),
        out.width,
        out.height,
    )
    .unwrap();
    let s = ssim(&reference, &lossless).unwrap();
    let mae = mean_abs_error(&reference, &lossless).unwrap();
    assert!(s > 0.98 && mae < 2.0, "SSIM {s:.4}, MAE {mae:.2}");
}

#[test]
fn fast_shrink_is_close_to_the_default_and_never_changes_the_size() {
    let Some(src) = common::wallpaper("abstract/Elephants_5640x3172.jpg") else {
        return;
    };
    let fast = process(
        &src,
        &Options::from_query("w=700&format=png&fast_shrink").unwrap(),
        &limits(),
    )
    .unwrap();
    assert_eq!((fast.width, fast.height), (700, 394));
    let reference = resize_exact(&decode_reference(&src, &limits()).unwrap(), 700, 394).unwrap();
    let s = ssim(&reference, &common::second_decode(&fast.bytes)).unwrap();
    assert!(s > 0.93, "SSIM {s:.4}");
}

#[test]
fn cover_crops_of_photos_have_the_exact_size() {
    let Some(src) = common::wallpaper("nature/LadyBird.jpg") else {
        return;
    };
    for (q, size) in [
        ("w=300&h=300&fit=cover", (300, 300)),
        ("w=300&h=300&fit=cover&gravity=smart", (300, 300)),
        ("w=1000&h=200&fit=cover", (1000, 200)),
    ] {
        let out = process(
            &src,
            &Options::from_query(&format!("{q}&format=jpeg")).unwrap(),
            &limits(),
        )
        .unwrap();
        assert_eq!((out.width, out.height), size, "{q}");
        assert_eq!(common::second_decode(&out.bytes).dimensions(), size);
    }
}

#[test]
fn graphics_survive_lossless_webp_and_png_pixel_for_pixel() {
    for name in GRAPHICS {
        let Some(src) = common::wallpaper(name) else {
            return;
        };
        let reference = decode_reference(&src, &limits()).unwrap();
        for q in ["format=webp&lossless", "format=png&effort=1"] {
            let out = process(&src, &Options::from_query(q).unwrap(), &limits()).unwrap();
            let back = common::second_decode(&out.bytes);
            assert_eq!(back.dimensions(), reference.dimensions());
            let mae = mean_abs_error(&reference, &back).unwrap();
            assert!(mae < 0.01, "{name} {q}: MAE {mae}");
        }
    }
}

#[test]
fn photos_survive_lossless_webp_pixel_for_pixel() {
    // Resized photographs have many thousands of colours: they take pixeld's own lossless
    // WebP encoder, not libwebp's palette path. PNG output of the same job is the reference.
    for name in &PHOTOS[..2] {
        let Some(src) = common::wallpaper(name) else {
            return;
        };
        let job = |q: &str| {
            let out = process(&src, &Options::from_query(q).unwrap(), &limits()).unwrap();
            common::second_decode(&out.bytes).to_rgba8()
        };
        let webp = job("w=640&format=webp&lossless");
        let png = job("w=640&format=png&effort=1");
        assert_eq!(webp.dimensions(), png.dimensions(), "{name}");
        assert!(webp == png, "{name}: lossless WebP differs from PNG");
    }
}

#[test]
fn photos_are_told_from_graphics() {
    for name in PHOTOS {
        let Some(src) = common::wallpaper(name) else {
            return;
        };
        assert_eq!(
            analyze(&src, &limits()).unwrap().kind,
            ImageKind::Photo,
            "{name}"
        );
    }
    for name in GRAPHICS {
        let Some(src) = common::wallpaper(name) else {
            return;
        };
        assert_eq!(
            analyze(&src, &limits()).unwrap().kind,
            ImageKind::Graphic,
            "{name}"
        );
    }
}

#[test]
fn a_resized_copy_is_recognised_as_a_duplicate_and_other_photos_are_not() {
    let Some(src) = common::wallpaper("nature/Garden.jpg") else {
        return;
    };
    let Some(other) = common::wallpaper("nature/Storm.jpg") else {
        return;
    };
    let copy = process(
        &src,
        &Options::from_query("w=500&format=webp&q=60").unwrap(),
        &limits(),
    )
    .unwrap();
    let a = analyze(&src, &limits()).unwrap();
    let b = analyze(&copy.bytes, &limits()).unwrap();
    let c = analyze(&other, &limits()).unwrap();
    let same = hamming_distance(&a.phash, &b.phash).unwrap();
    let different = hamming_distance(&a.phash, &c.phash).unwrap();
    assert!(same <= 6, "re-encoded copy differs by {same} bits");
    assert!(
        different >= 16,
        "different photos differ by only {different} bits"
    );
    assert_eq!(a.palette.len(), 5);
    assert!(a.palette.windows(2).all(|w| w[0].share >= w[1].share));
}

#[test]
fn a_large_photo_is_analysed_with_its_full_dimensions() {
    // Analysis decodes a small copy (DCT scaling); how fast that is lives in bench/imaging,
    // not in a timed test. What the user sees is the real size and a full analysis.
    let Some(src) = common::wallpaper("abstract/Elephants_5640x3172.jpg") else {
        return;
    };
    let a = analyze(&src, &limits()).unwrap();
    assert_eq!((a.width, a.height), (5640, 3172));
    assert_eq!(a.palette.len(), 5);
    assert!(!a.blurhash.is_empty());
}

/// Thumbnails of baseline photographs go through our own 1/8, 1/4 and 3/8 decoder
/// (`src/jpeg_scaled.rs`): they must look like the full picture resized, keep EXIF rotation,
/// and keep their size under `fast_shrink` (which decodes to just above the target).
#[test]
fn thumbnails_shrunk_an_eighth_to_three_eighths_on_decode_keep_their_look() {
    for name in [
        "nature/Garden.jpg",
        "nature/Wood.jpg",
        "desktop/GreenTraditional.jpg",
    ] {
        let Some(src) = common::wallpaper(name) else {
            return;
        };
        let full = decode_reference(&src, &limits()).unwrap();
        // 2560 → 320 decodes at 1/4, → 160 at 1/8 (a 2× margin for Lanczos), → 600 at 3/8
        // (960, a 1.6× margin); 600 with fast_shrink decodes at 1/4 straight to 640.
        for query in ["w=320", "w=160", "w=600", "w=600&fast_shrink"] {
            let out = process(
                &src,
                &Options::from_query(&format!("{query}&format=png")).unwrap(),
                &limits(),
            )
            .unwrap();
            let w: u32 = query[2..].split('&').next().unwrap().parse().unwrap();
            let h = (f64::from(full.height()) * f64::from(w) / f64::from(full.width())).round();
            assert_eq!((out.width, out.height), (w, h as u32), "{name} {query}");
            let s = ssim_vs_reference(&src, &out.bytes);
            assert!(s > 0.95, "{name} {query}: SSIM {s:.4}");
        }
        // EXIF orientation 6 (rotate 90° clockwise to display) on the same scan.
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&common::exif_block(6, false));
        let rotated = common::with_app1(&src, &payload);
        let out = process(
            &rotated,
            &Options::from_query("h=320&format=png").unwrap(),
            &limits(),
        )
        .unwrap();
        let upright = common::second_decode(&out.bytes);
        let expect = image::imageops::rotate90(
            &common::second_decode(
                &process(
                    &src,
                    &Options::from_query("w=320&format=png").unwrap(),
                    &limits(),
                )
                .unwrap()
                .bytes,
            )
            .to_rgb8(),
        );
        assert_eq!(upright.dimensions(), expect.dimensions(), "{name}");
        let err = mean_abs_error(&upright, &image::DynamicImage::ImageRgb8(expect)).unwrap();
        assert!(err < 1.0, "{name}: rotated thumbnail differs by {err:.2}");
    }
}
