//! Geometry and pixel operations: orientation, crop, rotate, resize/fit, blur, flatten.

use fast_image_resize as fr;
use image::{DynamicImage, GenericImageView, Rgb, RgbImage, Rgba, RgbaImage};

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::options::{Color, CropRect, Fit, Options, Rotation};

/// Applies EXIF orientation 1-8.
pub(crate) fn orient(img: &mut DynamicImage, exif_orientation: u8) {
    if let Some(o) = image::metadata::Orientation::from_exif(exif_orientation) {
        img.apply_orientation(o);
    }
}

/// Size after EXIF orientation (5-8 swap the axes).
pub(crate) fn oriented_size(w: u32, h: u32, exif_orientation: u8) -> (u32, u32) {
    if (5..=8).contains(&exif_orientation) {
        (h, w)
    } else {
        (w, h)
    }
}

/// Crops a rectangle given in full-resolution (oriented) coordinates out of an image that
/// the decoder may have shrunk.
pub(crate) fn crop(img: &DynamicImage, rect: CropRect, full: (u32, u32)) -> Result<DynamicImage> {
    crop_fits(rect, full)?;
    let (fw, fh) = full;
    let (iw, ih) = img.dimensions();
    // The decoded image is ceil(full / shrink); map the rectangle proportionally.
    let map = |v: u32, full: u32, dec: u32| {
        ((f64::from(v) * f64::from(dec) / f64::from(full)).round() as u32).min(dec)
    };
    let x = map(rect.x, fw, iw);
    let y = map(rect.y, fh, ih);
    let w = map(rect.width, fw, iw).clamp(1, iw - x.min(iw - 1));
    let h = map(rect.height, fh, ih).clamp(1, ih - y.min(ih - 1));
    Ok(img.crop_imm(x.min(iw - 1), y.min(ih - 1), w, h))
}

/// Checks that a crop rectangle lies inside the (oriented) image.
pub(crate) fn crop_fits(rect: CropRect, full: (u32, u32)) -> Result<()> {
    let (fw, fh) = full;
    if u64::from(rect.x) + u64::from(rect.width) > u64::from(fw)
        || u64::from(rect.y) + u64::from(rect.height) > u64::from(fh)
    {
        return Err(Error::invalid(format!(
            "crop {},{},{},{} falls outside the {fw}×{fh} image",
            rect.x, rect.y, rect.width, rect.height
        )));
    }
    Ok(())
}

/// User rotation then flip (vertical) and flop (horizontal).
pub(crate) fn rotate_flip(img: DynamicImage, opts: &Options) -> DynamicImage {
    let img = match opts.rotate {
        Rotation::None => img,
        Rotation::Cw90 => img.rotate90(),
        Rotation::Cw180 => img.rotate180(),
        Rotation::Cw270 => img.rotate270(),
    };
    let img = if opts.flip { img.flipv() } else { img };
    if opts.flop { img.fliph() } else { img }
}

/// The size arithmetic of a resize, done on dimensions only so that it can run before
/// decoding (to pick the JPEG shrink) and again after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Geometry {
    /// Size the whole source would be scaled to.
    pub scaled: (u32, u32),
    /// Final canvas size.
    pub out: (u32, u32),
    pub mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Resize to `scaled` (== `out`).
    Resize,
    /// Resize to `scaled` and keep an `out`-sized window of it (cover).
    Cover,
    /// Resize to `scaled` and pad to `out` (contain).
    Pad,
}

fn round_dim(v: f64) -> u32 {
    (v.round() as u32).max(1)
}

pub(crate) fn geometry(src: (u32, u32), opts: &Options, limits: &Limits) -> Result<Geometry> {
    let (sw, sh) = (f64::from(src.0), f64::from(src.1));
    let cap = |f: f64| if opts.enlarge { f } else { f.min(1.0) };
    let g = match (opts.width, opts.height) {
        (None, None) => Geometry {
            scaled: src,
            out: src,
            mode: Mode::Resize,
        },
        (Some(w), None) => {
            let f = cap(f64::from(w) / sw);
            let s = (round_dim(sw * f), round_dim(sh * f));
            Geometry {
                scaled: s,
                out: s,
                mode: Mode::Resize,
            }
        }
        (None, Some(h)) => {
            let f = cap(f64::from(h) / sh);
            let s = (round_dim(sw * f), round_dim(sh * f));
            Geometry {
                scaled: s,
                out: s,
                mode: Mode::Resize,
            }
        }
        (Some(w), Some(h)) => {
            let (fx, fy) = (f64::from(w) / sw, f64::from(h) / sh);
            match opts.fit {
                Fit::Fill => {
                    let s = if opts.enlarge {
                        (w, h)
                    } else {
                        (w.min(src.0), h.min(src.1))
                    };
                    Geometry {
                        scaled: s,
                        out: s,
                        mode: Mode::Resize,
                    }
                }
                Fit::Inside | Fit::Outside => {
                    let f = cap(if opts.fit == Fit::Inside {
                        fx.min(fy)
                    } else {
                        fx.max(fy)
                    });
                    // Snap the constrained side to the exact request despite rounding.
                    let s = (round_dim(sw * f), round_dim(sh * f));
                    Geometry {
                        scaled: s,
                        out: s,
                        mode: Mode::Resize,
                    }
                }
                Fit::Cover => {
                    let f = cap(fx.max(fy));
                    let mut s = (round_dim(sw * f), round_dim(sh * f));
                    if fx >= fy && f == fx {
                        s.0 = w;
                    } else if f == fy {
                        s.1 = h;
                    }
                    let out = (w.min(s.0), h.min(s.1));
                    Geometry {
                        scaled: s,
                        out,
                        mode: Mode::Cover,
                    }
                }
                Fit::Contain => {
                    let f = cap(fx.min(fy));
                    let s = (round_dim(sw * f).min(w), round_dim(sh * f).min(h));
                    Geometry {
                        scaled: s,
                        out: (w, h),
                        mode: Mode::Pad,
                    }
                }
            }
        }
    };
    limits.check_dimensions(g.out.0, g.out.1)?;
    limits.check_dimensions(g.scaled.0, g.scaled.1)?;
    Ok(g)
}

fn pixel_type(img: &DynamicImage) -> fr::PixelType {
    if img.color().has_alpha() {
        fr::PixelType::U8x4
    } else {
        fr::PixelType::U8x3
    }
}

fn raw(img: &DynamicImage) -> &[u8] {
    match img {
        DynamicImage::ImageRgb8(i) => i.as_raw(),
        DynamicImage::ImageRgba8(i) => i.as_raw(),
        other => other.as_bytes(),
    }
}

fn from_raw(w: u32, h: u32, alpha: bool, data: Vec<u8>) -> Result<DynamicImage> {
    let img = if alpha {
        RgbaImage::from_raw(w, h, data).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(w, h, data).map(DynamicImage::ImageRgb8)
    };
    img.ok_or_else(|| Error::Encode("resize produced a buffer of the wrong size".to_owned()))
}

/// Lanczos3 resize of the `src_crop` window (x, y, w, h in source pixels) to `dst`. The
/// resizer premultiplies alpha before filtering and divides after, so transparent pixels
/// do not bleed their (invisible) colour into the edges.
pub(crate) fn resize(
    img: &DynamicImage,
    src_crop: Option<(f64, f64, f64, f64)>,
    dst: (u32, u32),
) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    if src_crop.is_none() && (w, h) == dst {
        return Ok(img.clone());
    }
    let pt = pixel_type(img);
    let src =
        fr::images::ImageRef::new(w, h, raw(img), pt).map_err(|e| Error::Encode(e.to_string()))?;
    let mut out = fr::images::Image::new(dst.0, dst.1, pt);
    let mut ro = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
        .use_alpha(true);
    if let Some((x, y, cw, ch)) = src_crop {
        ro = ro.crop(x, y, cw, ch);
    }
    fr::Resizer::new()
        .resize(&src, &mut out, &ro)
        .map_err(|e| Error::Encode(e.to_string()))?;
    from_raw(dst.0, dst.1, pt == fr::PixelType::U8x4, out.into_vec())
}

/// Resizes one 8-bit plane (`src` is `size.0 × size.1`, tightly packed) so that its
/// `window` (width and height in source pixels, from the top-left corner) becomes `dst`,
/// with `filter` (widened when shrinking, as [`resize`] does with Lanczos3). A window larger
/// than the plane reaches past its right or bottom edge, which repeats.
pub(crate) fn resize_plane(
    src: &[u8],
    size: (u32, u32),
    window: (f64, f64),
    dst: (u32, u32),
    filter: fr::FilterType,
) -> Result<Vec<u8>> {
    let whole = window == (f64::from(size.0), f64::from(size.1));
    if whole && size == dst {
        return Ok(src.to_vec());
    }
    let need = (window.0.ceil() as u32, window.1.ceil() as u32);
    let padded;
    let (src, size) = if need.0 > size.0 || need.1 > size.1 {
        let (w, h) = (size.0 as usize, size.1 as usize);
        let (pw, ph) = (need.0.max(size.0), need.1.max(size.1));
        let mut p = Vec::with_capacity(pw as usize * ph as usize);
        for y in 0..ph as usize {
            let row = &src[y.min(h - 1) * w..][..w];
            p.extend_from_slice(row);
            p.resize(p.len() + pw as usize - w, row[w - 1]);
        }
        padded = p;
        (&padded[..], (pw, ph))
    } else {
        (src, size)
    };
    let pt = fr::PixelType::U8;
    let src = fr::images::ImageRef::new(size.0, size.1, src, pt)
        .map_err(|e| Error::Encode(e.to_string()))?;
    let mut out = fr::images::Image::new(dst.0, dst.1, pt);
    let mut ro = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(filter));
    if !whole {
        ro = ro.crop(0.0, 0.0, window.0, window.1);
    }
    fr::Resizer::new()
        .resize(&src, &mut out, &ro)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(out.into_vec())
}

/// Applies a [`Geometry`] computed for this image's size. `smart` caches the window that
/// `gravity=smart` picks, so that every frame of an animation is cut the same way.
pub(crate) fn fit(
    img: DynamicImage,
    g: &Geometry,
    opts: &Options,
    pad_alpha: bool,
    smart: &mut Option<(f64, f64)>,
) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    match g.mode {
        Mode::Resize => resize(&img, None, g.scaled),
        Mode::Cover => {
            // The window of the source that maps onto the output.
            let fx = f64::from(g.scaled.0) / f64::from(w);
            let fy = f64::from(g.scaled.1) / f64::from(h);
            let cw = (f64::from(g.out.0) / fx).min(f64::from(w));
            let ch = (f64::from(g.out.1) / fy).min(f64::from(h));
            let (ax, ay) = match opts.gravity.anchor() {
                Some(a) => a,
                None => *smart.get_or_insert_with(|| smart_anchor(&img, cw, ch)),
            };
            let x = (f64::from(w) - cw) * ax;
            let y = (f64::from(h) - ch) * ay;
            resize(&img, Some((x, y, cw, ch)), g.out)
        }
        Mode::Pad => {
            let scaled = resize(&img, None, g.scaled)?;
            let bg = opts.background.unwrap_or(if pad_alpha {
                Color::TRANSPARENT
            } else {
                Color::WHITE
            });
            let (ax, ay) = opts.gravity.anchor().unwrap_or((0.5, 0.5));
            let x = (f64::from(g.out.0 - g.scaled.0) * ax).round() as i64;
            let y = (f64::from(g.out.1 - g.scaled.1) * ay).round() as i64;
            if pad_alpha && (bg.a < 255 || scaled.color().has_alpha()) {
                let mut canvas =
                    RgbaImage::from_pixel(g.out.0, g.out.1, Rgba([bg.r, bg.g, bg.b, bg.a]));
                image::imageops::overlay(&mut canvas, &scaled.to_rgba8(), x, y);
                Ok(DynamicImage::ImageRgba8(canvas))
            } else {
                let flat = flatten(scaled, bg);
                let mut canvas = RgbImage::from_pixel(g.out.0, g.out.1, Rgb([bg.r, bg.g, bg.b]));
                image::imageops::replace(&mut canvas, &flat.to_rgb8(), x, y);
                Ok(DynamicImage::ImageRgb8(canvas))
            }
        }
    }
}

/// Where a `cw`×`ch` window has the most detail (highest luminance entropy): returns the
/// window's anchor as fractions for [`Gravity`]-style placement. Works on a small copy, so
/// it costs a few milliseconds whatever the image size.
pub(crate) fn smart_anchor(img: &DynamicImage, cw: f64, ch: f64) -> (f64, f64) {
    let (w, h) = img.dimensions();
    let free_x = f64::from(w) - cw;
    let free_y = f64::from(h) - ch;
    if free_x < 1.0 && free_y < 1.0 {
        return (0.5, 0.5);
    }
    let small_scale = (128.0 / f64::from(w.max(h))).min(1.0);
    let sw = round_dim(f64::from(w) * small_scale);
    let sh = round_dim(f64::from(h) * small_scale);
    let Ok(small) = resize(img, None, (sw, sh)) else {
        return (0.5, 0.5);
    };
    let luma = small.to_luma8();
    let win_w = round_dim(cw * small_scale).min(sw);
    let win_h = round_dim(ch * small_scale).min(sh);
    let steps = 16u32;
    let mut best = (f64::MIN, (0.5, 0.5));
    for i in 0..=steps {
        let t = f64::from(i) / f64::from(steps);
        let x = ((f64::from(sw - win_w)) * if free_x >= 1.0 { t } else { 0.5 }).round() as u32;
        let y = ((f64::from(sh - win_h)) * if free_y >= 1.0 { t } else { 0.5 }).round() as u32;
        let mut hist = [0u32; 64];
        for yy in y..y + win_h {
            for xx in x..x + win_w {
                hist[usize::from(luma.get_pixel(xx, yy).0[0] >> 2)] += 1;
            }
        }
        let n = f64::from(win_w * win_h);
        let entropy: f64 = hist
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = f64::from(c) / n;
                -p * p.log2()
            })
            .sum();
        // Ties go to the centre: a flat image should crop like gravity=center.
        let centred = -(t - 0.5).abs() * 1e-6;
        if entropy + centred > best.0 {
            let ax = if free_x >= 1.0 { t } else { 0.5 };
            let ay = if free_y >= 1.0 { t } else { 0.5 };
            best = (entropy + centred, (ax, ay));
        }
    }
    best.1
}

/// Gaussian blur and unsharp mask, on premultiplied pixels when there is alpha.
pub(crate) fn blur_sharpen(img: DynamicImage, opts: &Options) -> DynamicImage {
    if opts.blur.is_none() && opts.sharpen.is_none() {
        return img;
    }
    let alpha = img.color().has_alpha();
    let mut img = if alpha { premultiply(img, true) } else { img };
    if let Some(sigma) = opts.blur {
        img = img.fast_blur(sigma);
    }
    if let Some(sigma) = opts.sharpen {
        img = img.unsharpen(sigma, 1);
    }
    if alpha { premultiply(img, false) } else { img }
}

fn premultiply(img: DynamicImage, forward: bool) -> DynamicImage {
    let DynamicImage::ImageRgba8(mut rgba) = img else {
        return img;
    };
    for p in rgba.pixels_mut() {
        let a = u32::from(p.0[3]);
        for c in &mut p.0[..3] {
            *c = if forward {
                ((u32::from(*c) * a + 127) / 255) as u8
            } else {
                // Fully transparent pixels have no colour left to recover.
                (u32::from(*c) * 255 + a / 2)
                    .checked_div(a)
                    .map_or(0, |v| v.min(255) as u8)
            };
        }
    }
    DynamicImage::ImageRgba8(rgba)
}

/// Composites RGBA over an opaque background colour.
pub(crate) fn flatten(img: DynamicImage, bg: Color) -> DynamicImage {
    let DynamicImage::ImageRgba8(rgba) = img else {
        return img;
    };
    let (w, h) = rgba.dimensions();
    let mut out = Vec::with_capacity(w as usize * h as usize * 3);
    let bgc = [bg.r, bg.g, bg.b];
    for p in rgba.pixels() {
        let a = u32::from(p.0[3]);
        for (&c, &b) in p.0[..3].iter().zip(&bgc) {
            out.push(((u32::from(c) * a + u32::from(b) * (255 - a) + 127) / 255) as u8);
        }
    }
    DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, out).expect("sized above"))
}

/// Drops a fully opaque alpha channel (smaller and faster to encode).
pub(crate) fn drop_opaque_alpha(img: DynamicImage) -> DynamicImage {
    match &img {
        DynamicImage::ImageRgba8(rgba) if rgba.pixels().all(|p| p.0[3] == 255) => {
            DynamicImage::ImageRgb8(img.to_rgb8())
        }
        _ => img,
    }
}
