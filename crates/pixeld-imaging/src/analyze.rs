//! Analysis: hashes, colours and a photo/graphic guess, from one small decode.

use image::{DynamicImage, GenericImageView, RgbaImage};
use serde::{Deserialize, Serialize};

use crate::format::SourceFormat;
use crate::metadata::ExifSummary;
use crate::options::Color;

/// Everything [`crate::analyze`] reports about an image. Serialisable as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Detected format.
    pub format: SourceFormat,
    /// Width as displayed (after EXIF orientation).
    pub width: u32,
    /// Height as displayed (after EXIF orientation).
    pub height: u32,
    /// Whether any pixel is not fully opaque.
    pub has_alpha: bool,
    /// Whether the file holds more than one frame (only the first is analysed).
    pub animated: bool,
    /// Camera, date and whether a GPS position is present; `None` without (valid) EXIF.
    pub exif: Option<ExifSummary>,
    /// Description of the embedded ICC profile, e.g. `Display P3`.
    pub icc_profile: Option<String>,
    /// BlurHash (4×3 components) for placeholders.
    pub blurhash: String,
    /// ThumbHash, base64.
    pub thumbhash: String,
    /// 64-bit DCT perceptual hash as 16 hex digits; compare with [`crate::hamming_distance`].
    pub phash: String,
    /// The colour covering the largest area.
    pub dominant_color: Color,
    /// Up to five main colours, largest share first.
    pub palette: Vec<PaletteColor>,
    /// Mean luminance from 0 (black) to 1 (white).
    pub brightness: f32,
    /// Photograph or graphic (illustration, screenshot, logo).
    pub kind: ImageKind,
    /// Things that were ignored on the way (e.g. a corrupt EXIF block).
    pub warnings: Vec<String>,
}

/// One colour of the palette.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PaletteColor {
    /// The colour.
    pub color: Color,
    /// Share of the (opaque) image area, 0-1.
    pub share: f32,
}

/// The photo/graphic guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    /// Continuous tones and sensor noise: best as JPEG/lossy WebP/AVIF.
    Photo,
    /// Flat colours and sharp edges: best as PNG/lossless WebP.
    Graphic,
}

pub(crate) struct Measures {
    pub blurhash: String,
    pub thumbhash: String,
    pub phash: String,
    pub dominant_color: Color,
    pub palette: Vec<PaletteColor>,
    pub brightness: f32,
    pub kind: ImageKind,
    pub has_alpha: bool,
}

/// All pixel measures from the decoded (possibly DCT-shrunk), upright image.
pub(crate) fn measure(img: &DynamicImage, lossless_source: bool) -> crate::Result<Measures> {
    let (w, h) = img.dimensions();
    let fit = |max: u32| -> (u32, u32) {
        let f = (f64::from(max) / f64::from(w.max(h))).min(1.0);
        (
            ((f64::from(w) * f).round() as u32).max(1),
            ((f64::from(h) * f).round() as u32).max(1),
        )
    };
    let kind = classify(img, lossless_source);
    let small = crate::transform::resize(img, None, fit(128))?.to_rgba8();
    let has_alpha = small.pixels().any(|p| p.0[3] < 255);

    let (tw, th) = fit(100);
    let thumb = crate::transform::resize(img, None, (tw, th))?.to_rgba8();
    let thumbhash = base64(&thumbhash::rgba_to_thumb_hash(
        tw as usize,
        th as usize,
        thumb.as_raw(),
    ));

    let (bw, bh) = fit(32);
    let bsmall = crate::transform::resize(img, None, (bw, bh))?.to_rgba8();
    let blurhash = blurhash::encode(4, 3, bw, bh, bsmall.as_raw())
        .map_err(|e| crate::Error::Encode(format!("blurhash: {e}")))?;

    let phash = phash(img)?;
    let brightness = brightness(&small);
    let palette = palette(&small, 5);
    let dominant_color = palette.first().map_or(Color::WHITE, |p| p.color);
    Ok(Measures {
        blurhash,
        thumbhash,
        phash,
        dominant_color,
        palette,
        brightness,
        kind,
        has_alpha,
    })
}

fn brightness(img: &RgbaImage) -> f32 {
    let (mut sum, mut weight) = (0.0f64, 0.0f64);
    for p in img.pixels() {
        let a = f64::from(p.0[3]) / 255.0;
        let l =
            0.2126 * f64::from(p.0[0]) + 0.7152 * f64::from(p.0[1]) + 0.0722 * f64::from(p.0[2]);
        sum += l * a;
        weight += a;
    }
    if weight == 0.0 {
        0.0
    } else {
        (sum / weight / 255.0) as f32
    }
}

/// DCT pHash: 32×32 grey, 2-D DCT, the 8×8 lowest frequencies compared with their median.
fn phash(img: &DynamicImage) -> crate::Result<String> {
    let g = crate::transform::resize(img, None, (32, 32))?.to_luma8();
    let px: Vec<f64> = g.pixels().map(|p| f64::from(p.0[0])).collect();
    const N: usize = 32;
    let cos: Vec<f64> = (0..8 * N)
        .map(|i| {
            let (u, x) = (i / N, i % N);
            (std::f64::consts::PI / N as f64 * (x as f64 + 0.5) * u as f64).cos()
        })
        .collect();
    // Rows first (only the 8 lowest frequencies are needed), then columns.
    let mut rows = vec![0.0; N * 8];
    for y in 0..N {
        for u in 0..8 {
            rows[y * 8 + u] = (0..N).map(|x| px[y * N + x] * cos[u * N + x]).sum();
        }
    }
    let mut coeffs = [0.0f64; 64];
    for v in 0..8 {
        for u in 0..8 {
            coeffs[v * 8 + u] = (0..N).map(|y| rows[y * 8 + u] * cos[v * N + y]).sum();
        }
    }
    // The DC term is the mean brightness, not structure: leave it out of the median.
    let mut sorted: Vec<f64> = coeffs[1..].to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let bits = coeffs.iter().enumerate().fold(0u64, |acc, (i, &c)| {
        if c > median {
            acc | (1 << (63 - i))
        } else {
            acc
        }
    });
    Ok(format!("{bits:016x}"))
}

/// Number of differing bits between two hex perceptual hashes (0 = same picture; up to
/// about 10 = likely the same picture re-encoded or resized). `None` if either is not a
/// 16-digit hex hash.
pub fn hamming_distance(a: &str, b: &str) -> Option<u32> {
    let pa = u64::from_str_radix(a, 16).ok().filter(|_| a.len() == 16)?;
    let pb = u64::from_str_radix(b, 16).ok().filter(|_| b.len() == 16)?;
    Some((pa ^ pb).count_ones())
}

/// k-means in RGB on the opaque pixels of a small copy, seeded deterministically with the
/// farthest-point rule so that the same image always gives the same palette.
fn palette(img: &RgbaImage, k: usize) -> Vec<PaletteColor> {
    let pts: Vec<[f32; 3]> = img
        .pixels()
        .filter(|p| p.0[3] >= 128)
        .map(|p| [f32::from(p.0[0]), f32::from(p.0[1]), f32::from(p.0[2])])
        .collect();
    if pts.is_empty() {
        return Vec::new();
    }
    let d2 = |a: &[f32; 3], b: &[f32; 3]| (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f32>();
    let mean = pts
        .iter()
        .fold([0.0f32; 3], |m, p| [m[0] + p[0], m[1] + p[1], m[2] + p[2]]);
    let n = pts.len() as f32;
    let mut centres = vec![[mean[0] / n, mean[1] / n, mean[2] / n]];
    while centres.len() < k {
        let far = pts
            .iter()
            .map(|p| (centres.iter().map(|c| d2(p, c)).fold(f32::MAX, f32::min), p))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .expect("non-empty");
        if far.0 < 1.0 {
            break; // fewer distinct colours than k
        }
        centres.push(*far.1);
    }
    let mut assign = vec![0usize; pts.len()];
    for _ in 0..12 {
        for (i, p) in pts.iter().enumerate() {
            assign[i] = (0..centres.len())
                .min_by(|&a, &b| d2(p, &centres[a]).total_cmp(&d2(p, &centres[b])))
                .expect("k >= 1");
        }
        let mut sums = vec![[0.0f32; 4]; centres.len()];
        for (p, &c) in pts.iter().zip(&assign) {
            for i in 0..3 {
                sums[c][i] += p[i];
            }
            sums[c][3] += 1.0;
        }
        for (c, s) in centres.iter_mut().zip(&sums) {
            if s[3] > 0.0 {
                *c = [s[0] / s[3], s[1] / s[3], s[2] / s[3]];
            }
        }
    }
    let mut counts = vec![0usize; centres.len()];
    for &a in &assign {
        counts[a] += 1;
    }
    let mut out: Vec<PaletteColor> = centres
        .iter()
        .zip(&counts)
        .filter(|(_, c)| **c > 0)
        .map(|(c, &count)| PaletteColor {
            color: Color {
                r: c[0].round() as u8,
                g: c[1].round() as u8,
                b: c[2].round() as u8,
                a: 255,
            },
            share: count as f32 / n,
        })
        .collect();
    out.sort_by(|a, b| b.share.total_cmp(&a.share));
    out
}

/// Photos have sensor noise: neighbouring pixels rarely match exactly and there are many
/// distinct colours. Graphics have flat areas. Sampled on a nearest-neighbour grid of the
/// decoded image, because any resampling filter would blur flat areas into gradients.
/// Thresholds were tuned on Debian's wallpaper packages; smooth renders in a lossless
/// format lean graphic, JPEG's bokeh and skies lean photo.
fn classify(img: &DynamicImage, lossless_source: bool) -> ImageKind {
    let (w, h) = img.dimensions();
    let n = 128u32;
    let (sx, sy) = ((w / n).max(1), (h / n).max(1));
    let mut equal = 0u32;
    let mut total = 0u32;
    let mut colours = std::collections::HashSet::new();
    let mut y = 0;
    while y < h {
        let mut x = 0;
        while x + 1 < w {
            let a = img.get_pixel(x, y).0;
            let b = img.get_pixel(x + 1, y).0;
            if a == b {
                equal += 1;
            }
            colours.insert([a[0], a[1], a[2]]);
            total += 1;
            x += sx;
        }
        y += sy;
    }
    let flat = f64::from(equal) / f64::from(total.max(1));
    let distinct = colours.len() as f64 / f64::from(total.max(1));
    let flat_limit = if lossless_source { 0.45 } else { 0.6 };
    if flat > flat_limit || distinct < 0.05 {
        ImageKind::Graphic
    } else {
        ImageKind::Photo
    }
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes a BlurHash (from [`Analysis::blurhash`]) into a small PNG, at most 64 pixels on a
/// side, to show while the image loads.
pub fn blurhash_png(hash: &str, width: u32, height: u32) -> crate::Result<Vec<u8>> {
    let (width, height) = (width.clamp(1, 64), height.clamp(1, 64));
    let data = blurhash::decode(hash, width, height, 1.0)
        .map_err(|e| crate::Error::InvalidOptions(format!("blurhash: {e}")))?;
    crate::encode_png_fast(crate::Rgba {
        width,
        height,
        data,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn a_blurhash_decodes_to_a_small_png_placeholder() {
        let png = super::blurhash_png("LEHV6nWB2yk8pyo0adR*.7kCMdnj", 32, 200).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        // At most 64 pixels on a side, whatever is asked.
        assert_eq!((img.width(), img.height()), (32, 64));
        assert!(super::blurhash_png("not a hash", 8, 8).is_err());
    }
}
