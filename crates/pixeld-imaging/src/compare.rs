//! Image similarity, for tests, benchmarks and quality checks: SSIM on luma.

use image::{DynamicImage, GenericImageView};

use crate::error::{Error, Result};
use crate::limits::Limits;

/// Structural similarity (SSIM) of two equally sized images, on Rec. 709 luma, with 8×8
/// windows every 4 pixels. 1.0 means identical; above ~0.95 differences are hard to see.
pub fn ssim(a: &DynamicImage, b: &DynamicImage) -> Result<f64> {
    if a.dimensions() != b.dimensions() {
        return Err(Error::invalid(format!(
            "cannot compare a {:?} image with a {:?} image",
            a.dimensions(),
            b.dimensions()
        )));
    }
    let (w, h) = a.dimensions();
    let la = luma(a);
    let lb = luma(b);
    let (win, step) = (8usize.min(w as usize), 4usize);
    let winh = 8usize.min(h as usize);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (w, h) = (w as usize, h as usize);
    let mut total = 0.0;
    let mut count = 0u64;
    let mut y = 0;
    while y + winh <= h {
        let mut x = 0;
        while x + win <= w {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for yy in y..y + winh {
                for xx in x..x + win {
                    let (pa, pb) = (la[yy * w + xx], lb[yy * w + xx]);
                    sa += pa;
                    sb += pb;
                    saa += pa * pa;
                    sbb += pb * pb;
                    sab += pa * pb;
                }
            }
            let n = (win * winh) as f64;
            let (ma, mb) = (sa / n, sb / n);
            let va = saa / n - ma * ma;
            let vb = sbb / n - mb * mb;
            let cov = sab / n - ma * mb;
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            count += 1;
            x += step;
        }
        y += step;
    }
    Ok(if count == 0 {
        1.0
    } else {
        total / count as f64
    })
}

fn luma(img: &DynamicImage) -> Vec<f64> {
    // Transparent pixels are compared as composited over white, as a viewer would see them.
    img.to_rgba8()
        .pixels()
        .map(|p| {
            let a = f64::from(p.0[3]) / 255.0;
            let c = |v: u8| f64::from(v) * a + 255.0 * (1.0 - a);
            0.2126 * c(p.0[0]) + 0.7152 * c(p.0[1]) + 0.0722 * c(p.0[2])
        })
        .collect()
}

/// Mean absolute difference per channel (0-255) of two equally sized images.
pub fn mean_abs_error(a: &DynamicImage, b: &DynamicImage) -> Result<f64> {
    if a.dimensions() != b.dimensions() {
        return Err(Error::invalid("images differ in size"));
    }
    let (ra, rb) = (a.to_rgb8(), b.to_rgb8());
    let sum: u64 = ra
        .as_raw()
        .iter()
        .zip(rb.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    Ok(sum as f64 / ra.as_raw().len().max(1) as f64)
}

/// Decodes an image fully (auto-oriented, converted to sRGB, no shrink-on-decode): the
/// reference against which processed outputs are compared.
pub fn decode_reference(bytes: &[u8], limits: &Limits) -> Result<DynamicImage> {
    crate::pipeline::decode_upright(bytes, limits, None, false).map(|d| d.image)
}

/// Resizes with Lanczos3 to exactly `width`×`height` (the reference for a processed
/// output of that size).
pub fn resize_exact(img: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage> {
    crate::transform::resize(img, None, (width, height))
}
