//! Test helpers: real fixtures from Debian's wallpaper package, and small synthetic images.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::PathBuf;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

pub const BACKGROUNDS: &str = "/usr/share/backgrounds/mate";

/// A file from the `mate-backgrounds` package, e.g. `nature/Garden.jpg`.
///
/// Missing files skip the test locally (returns `None` with a note) but fail it under
/// `CI=true`, so a CI machine without `tests/fixtures.sh` cannot pass by skipping.
pub fn wallpaper(rel: &str) -> Option<Vec<u8>> {
    let path = PathBuf::from(BACKGROUNDS).join(rel);
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "fixture {} is missing ({e}); run crates/pixeld-imaging/tests/fixtures.sh",
                    path.display()
                );
            }
            eprintln!(
                "skipping: {} missing; run tests/fixtures.sh",
                path.display()
            );
            None
        }
    }
}

/// The second decoder: the `image` crate (zune-jpeg, image-webp, png), not mozjpeg.
pub fn second_decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("the output decodes with a second decoder")
}

pub fn encode(img: &DynamicImage, fmt: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, fmt).expect("encode fixture");
    out.into_inner()
}

/// A 60×40 landscape: left half red, right half blue; top row of the left half green so
/// that orientation errors are visible as colour errors.
pub fn landscape() -> RgbImage {
    RgbImage::from_fn(60, 40, |x, y| {
        if x < 30 {
            if y < 10 {
                Rgb([0, 200, 0])
            } else {
                Rgb([220, 0, 0])
            }
        } else {
            Rgb([0, 0, 220])
        }
    })
}

/// An EXIF block (TIFF structure) with orientation, camera, date and a GPS position.
pub fn exif_block(orientation: u16, gps: bool) -> Vec<u8> {
    use exif::{Field, In, Rational, Tag, Value};
    let mut fields = vec![
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![orientation]),
        },
        Field {
            tag: Tag::Make,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"Pixeld Optics".to_vec()]),
        },
        Field {
            tag: Tag::Model,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"PX-1".to_vec()]),
        },
        Field {
            tag: Tag::DateTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"2024:05:06 07:08:09".to_vec()]),
        },
    ];
    if gps {
        let r = |n| Rational { num: n, denom: 1 };
        fields.push(Field {
            tag: Tag::GPSLatitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"N".to_vec()]),
        });
        fields.push(Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![r(48), r(51), r(24)]),
        });
        fields.push(Field {
            tag: Tag::GPSLongitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"E".to_vec()]),
        });
        fields.push(Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![r(2), r(21), r(3)]),
        });
    }
    let mut w = exif::experimental::Writer::new();
    for f in &fields {
        w.push_field(f);
    }
    let mut out = Cursor::new(Vec::new());
    w.write(&mut out, false).expect("write exif");
    out.into_inner()
}

/// Puts an APP1 segment holding `payload` right after the SOI marker of a JPEG.
pub fn with_app1(jpeg: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(payload);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&seg);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A JPEG of [`landscape`] carrying EXIF `orientation` (and GPS if asked).
pub fn jpeg_with_exif(orientation: u16, gps: bool) -> Vec<u8> {
    let jpeg = encode(&DynamicImage::ImageRgb8(landscape()), ImageFormat::Jpeg);
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&exif_block(orientation, gps));
    with_app1(&jpeg, &payload)
}

/// A 64×64 PNG: an opaque red disc on a fully transparent background whose hidden colour
/// is bright green (a resizer that ignores premultiplication bleeds green into the edge).
pub fn red_disc_png() -> Vec<u8> {
    let img = RgbaImage::from_fn(64, 64, |x, y| {
        let (dx, dy) = (x as f32 - 31.5, y as f32 - 31.5);
        if dx * dx + dy * dy < 24.0 * 24.0 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 255, 0, 0])
        }
    });
    encode(&DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

/// A valid PNG whose header claims `width`×`height`, 1-bit grey, all zeros: tiny on disk,
/// `width × height × 4` bytes once decoded to RGBA.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::High);
        let mut w = enc.write_header().expect("header");
        let mut stream = w.stream_writer().expect("stream");
        let row = vec![0u8; (width as usize).div_ceil(8)];
        for _ in 0..height {
            std::io::Write::write_all(&mut stream, &row).expect("row");
        }
        stream.finish().expect("finish");
    }
    out
}

fn bmff_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

/// A minimal HEIF file with the given major brand: `ftyp`, then a `meta` box whose primary
/// item (type `item_type`) has a 4032×3024 `ispe`, and no coded data.
pub fn isobmff(brand: &[u8; 4]) -> Vec<u8> {
    let item_type: &[u8; 4] = if brand == b"avif" { b"av01" } else { b"hvc1" };
    let mut ftyp = brand.to_vec();
    ftyp.extend_from_slice(&0u32.to_be_bytes());
    ftyp.extend_from_slice(b"mif1");
    ftyp.extend_from_slice(brand);
    let pitm = bmff_box(b"pitm", &[0, 0, 0, 0, 0, 1]);
    let mut infe = vec![2, 0, 0, 0, 0, 1, 0, 0];
    infe.extend_from_slice(item_type);
    let mut iinf = vec![0, 0, 0, 0, 0, 1];
    iinf.extend_from_slice(&bmff_box(b"infe", &infe));
    let mut ispe = vec![0u8; 4];
    ispe.extend_from_slice(&4032u32.to_be_bytes());
    ispe.extend_from_slice(&3024u32.to_be_bytes());
    let ipco = bmff_box(b"ipco", &bmff_box(b"ispe", &ispe));
    // Version 0, one entry: item 1 has property 1.
    let ipma = bmff_box(b"ipma", &[0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1]);
    let iprp = bmff_box(b"iprp", &[ipco, ipma].concat());
    let meta = bmff_box(
        b"meta",
        &[vec![0, 0, 0, 0], pitm, bmff_box(b"iinf", &iinf), iprp].concat(),
    );
    [bmff_box(b"ftyp", &ftyp), meta].concat()
}

/// Whether an encoded image carries EXIF or GPS anywhere (APP1 Exif, eXIf chunk, EXIF
/// chunk), by looking at the bytes a user would download.
pub fn has_exif(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w == b"Exif\0\0")
        || bytes.windows(4).any(|w| w == b"eXIf" || w == b"EXIF")
}
