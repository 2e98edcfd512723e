//! Bad inputs get a clear error with a stable kind, before any large allocation; nothing
//! panics.

mod common;

use pixeld_imaging::{Error, Limits, Options, analyze, probe, process};

fn kinds(bytes: &[u8], limits: &Limits) -> [&'static str; 3] {
    let p = probe(bytes, limits).err().map_or("ok", |e| e.kind());
    let a = analyze(bytes, limits).err().map_or("ok", |e| e.kind());
    let r = process(bytes, &Options::default(), limits)
        .err()
        .map_or("ok", |e| e.kind());
    [p, a, r]
}

#[test]
fn zero_bytes_are_refused_as_empty_input() {
    assert_eq!(kinds(&[], &Limits::default()), ["empty-input"; 3]);
    assert_eq!(
        process(&[], &Options::default(), &Limits::default())
            .unwrap_err()
            .to_string(),
        "the input is empty (0 bytes)"
    );
}

#[test]
fn text_with_an_image_extension_is_an_unsupported_format() {
    let not_an_image = b"<html><body>definitely.jpg</body></html>";
    assert_eq!(
        kinds(not_an_image, &Limits::default()),
        ["unsupported-format"; 3]
    );
}

#[test]
fn random_garbage_is_an_unsupported_format() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert_eq!(
        kinds(&garbage, &Limits::default()),
        ["unsupported-format"; 3]
    );
}

#[test]
fn a_png_bomb_is_refused_before_decoding() {
    let bomb = common::png_bomb(20_000, 20_000);
    assert!(
        bomb.len() < 200_000,
        "the bomb is small on disk: {} bytes",
        bomb.len()
    );
    let err = process(&bomb, &Options::default(), &Limits::default()).unwrap_err();
    assert_eq!(err.kind(), "too-many-pixels");
    assert_eq!(
        err,
        Error::TooManyPixels {
            width: 20_000,
            height: 20_000,
            pixels: 400_000_000,
            max: 50_000_000
        }
    );
    assert_eq!(kinds(&bomb, &Limits::default()), ["too-many-pixels"; 3]);
}

#[test]
fn a_one_by_hundred_thousand_image_is_refused_for_its_dimension() {
    let strip = common::png_bomb(1, 100_000);
    let err = process(&strip, &Options::default(), &Limits::default()).unwrap_err();
    assert_eq!(err.kind(), "dimension-too-large");
    assert!(err.to_string().contains("1×100000"), "{err}");
}

#[test]
fn an_input_over_the_byte_limit_is_refused_as_too_large() {
    let jpeg = common::jpeg_with_exif(1, false);
    let limits = Limits {
        max_input_bytes: 100,
        ..Limits::default()
    };
    let err = process(&jpeg, &Options::default(), &limits).unwrap_err();
    assert_eq!(err.kind(), "too-large");
}

#[test]
fn a_truncated_jpeg_is_corrupt() {
    let jpeg =
        common::wallpaper("nature/Garden.jpg").unwrap_or_else(|| common::jpeg_with_exif(1, false));
    for cut in [jpeg.len() / 2, jpeg.len() - 10, 300, 20, 4] {
        let kinds = kinds(&jpeg[..cut], &Limits::default());
        // The header may still be readable (probe succeeds), but pixels are not.
        assert_eq!(kinds[1..], ["corrupt-image"; 2], "cut at {cut}");
        assert!(
            matches!(kinds[0], "ok" | "corrupt-image"),
            "cut at {cut}: {kinds:?}"
        );
    }
}

#[test]
fn a_truncated_png_webp_and_gif_are_corrupt() {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 255) as u8])
    }));
    for fmt in [
        image::ImageFormat::Png,
        image::ImageFormat::WebP,
        image::ImageFormat::Gif,
        image::ImageFormat::Tiff,
        image::ImageFormat::Bmp,
    ] {
        let bytes = common::encode(&img, fmt);
        let cut = &bytes[..bytes.len() * 2 / 3];
        let err = process(cut, &Options::default(), &Limits::default()).unwrap_err();
        assert_eq!(err.kind(), "corrupt-image", "{fmt:?}: {err}");
    }
}

#[test]
fn corrupt_exif_is_ignored_with_a_warning_and_the_image_still_processes() {
    let jpeg = common::encode(
        &image::DynamicImage::ImageRgb8(common::landscape()),
        image::ImageFormat::Jpeg,
    );
    let broken = common::with_app1(&jpeg, b"Exif\0\0MM\0*\0\0\xff\xff\xff\xf0garbage");
    let out = process(&broken, &Options::default(), &Limits::default()).expect("still processed");
    assert_eq!((out.width, out.height), (60, 40));
    assert!(
        out.warnings.iter().any(|w| w.contains("EXIF")),
        "{:?}",
        out.warnings
    );
    assert!(!common::has_exif(&out.bytes));
    let a = analyze(&broken, &Limits::default()).expect("still analysed");
    assert_eq!(a.exif, None);
    assert!(!a.warnings.is_empty());
}

#[test]
fn heic_is_recognised_and_refused_with_a_clear_message() {
    let heic = common::isobmff(b"heic");
    let err = process(&heic, &Options::default(), &Limits::default()).unwrap_err();
    assert_eq!(err.kind(), "unsupported-format");
    assert!(err.to_string().contains("HEIC"), "{err}");
    let p = probe(&heic, &Limits::default()).expect("header is readable");
    assert_eq!((p.width, p.height, p.decodable), (4032, 3024, false));
}

#[test]
fn a_request_for_an_enormous_output_is_refused() {
    let jpeg = common::jpeg_with_exif(1, false);
    let opts = Options::from_query("w=16000&h=16000&fit=fill&enlarge=1").unwrap();
    let err = process(&jpeg, &opts, &Limits::default()).unwrap_err();
    assert_eq!(err.kind(), "too-many-pixels");
}

#[test]
fn every_prefix_of_a_small_jpeg_and_png_fails_cleanly() {
    // A poor man's fuzz run that always executes: no prefix may panic.
    for bytes in [common::jpeg_with_exif(6, true), common::red_disc_png()] {
        for cut in 0..bytes.len() {
            let _ = probe(&bytes[..cut], &Limits::default());
            let _ = process(&bytes[..cut], &Options::default(), &Limits::default());
        }
    }
}
