//! Analysis stories: what a user learns about an uploaded image.

mod common;

use image::{DynamicImage, ImageFormat};
use pixeld_imaging::{ImageKind, Limits, SourceFormat, analyze, hamming_distance};

#[test]
fn a_photo_with_exif_reports_camera_date_and_gps_presence() {
    let a = analyze(&common::jpeg_with_exif(6, true), &Limits::default()).unwrap();
    assert_eq!((a.format, a.width, a.height), (SourceFormat::Jpeg, 40, 60));
    let exif = a.exif.clone().expect("exif summary");
    assert_eq!(exif.make.as_deref(), Some("Pixeld Optics"));
    assert_eq!(exif.model.as_deref(), Some("PX-1"));
    assert_eq!(exif.taken_at.as_deref(), Some("2024-05-06 07:08:09"));
    assert!(exif.gps);
    // The position itself is never part of the report.
    let json = serde_json::to_string(&a.exif).unwrap();
    assert!(!json.contains("48"), "{json}");
}

#[test]
fn the_analysis_is_json_with_hashes_and_colours() {
    let a = analyze(&common::red_disc_png(), &Limits::default()).unwrap();
    assert!(a.has_alpha);
    assert_eq!(a.phash.len(), 16);
    assert!(!a.blurhash.is_empty() && !a.thumbhash.is_empty());
    assert_eq!(a.dominant_color.to_string(), "#ff0000");
    assert!(a.palette.len() <= 5 && !a.palette.is_empty());
    assert_eq!(a.kind, ImageKind::Graphic);
    let v: serde_json::Value = serde_json::to_value(&a).unwrap();
    assert_eq!(v["format"], "png");
    assert_eq!(v["dominant_color"], "#ff0000");
    assert_eq!(v["kind"], "graphic");
}

#[test]
fn brightness_tells_dark_from_light() {
    let dark = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        40,
        40,
        image::Rgb([20, 20, 20]),
    ));
    let light = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        40,
        40,
        image::Rgb([235, 235, 235]),
    ));
    let d = analyze(&common::encode(&dark, ImageFormat::Png), &Limits::default()).unwrap();
    let l = analyze(
        &common::encode(&light, ImageFormat::Png),
        &Limits::default(),
    )
    .unwrap();
    assert!(
        d.brightness < 0.15 && l.brightness > 0.85,
        "{} {}",
        d.brightness,
        l.brightness
    );
}

#[test]
fn hamming_distance_compares_hashes() {
    assert_eq!(
        hamming_distance("0000000000000000", "000000000000000f"),
        Some(4)
    );
    assert_eq!(hamming_distance("xyz", "000000000000000f"), None);
}
