//! Encoders: mozjpeg, oxipng, libwebp, our own lossless WebP (`vp8l`) and rav1e (via ravif).

use image::DynamicImage;
#[cfg(feature = "avif")]
use rgb::FromSlice;

use crate::error::{Error, Result};
use crate::options::{Options, OutputFormat};

/// Metadata that survives into the output (only when the caller asked to keep it).
#[derive(Default, Clone)]
pub(crate) struct Keep {
    pub icc: Option<Vec<u8>>,
    /// TIFF structure, without the `Exif\0\0` preamble.
    pub exif: Option<Vec<u8>>,
}

pub(crate) fn encode(
    img: &DynamicImage,
    format: OutputFormat,
    opts: &Options,
    keep: &Keep,
) -> Result<Vec<u8>> {
    match format {
        OutputFormat::Jpeg => encode_jpeg(img, opts, keep),
        OutputFormat::Png => encode_png(img, opts, keep),
        OutputFormat::Webp => encode_webp(img, opts, keep),
        OutputFormat::Avif => encode_avif(img, opts, keep),
        OutputFormat::Gif => crate::anim::encode_gif(img),
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "encoder error".to_owned())
}

fn encode_jpeg(img: &DynamicImage, opts: &Options, keep: &Keep) -> Result<Vec<u8>> {
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    jpeg_encode(mozjpeg::ColorSpace::JCS_RGB, (w, h), opts, keep, |s| {
        s.write_scanlines(rgb.as_raw())
    })
}

/// Whether a JPEG written with `opts` keeps chroma at half resolution (4:2:0) rather than
/// full (4:4:4).
pub(crate) fn jpeg_subsampled(opts: &Options) -> bool {
    let quality = opts.quality_for(OutputFormat::Jpeg);
    opts.chroma.subsampled(quality, false, OutputFormat::Jpeg)
}

/// JPEG from JFIF (BT.601 full range) Y, Cb and Cr planes of a `size` picture, tightly
/// packed, the chroma planes at half resolution (rounded up) when [`jpeg_subsampled`] and
/// full resolution otherwise: handed to mozjpeg as they are, with the same settings as
/// [`encode_jpeg`].
pub(crate) fn encode_jpeg_ycc(
    planes: [Vec<u8>; 3],
    size: (u32, u32),
    opts: &Options,
    keep: &Keep,
) -> Result<Vec<u8>> {
    let f = if jpeg_subsampled(opts) { 2 } else { 1 };
    let (w, h) = (size.0 as usize, size.1 as usize);
    let dims = [
        (w, h),
        (w.div_ceil(f), h.div_ceil(f)),
        (w.div_ceil(f), h.div_ceil(f)),
    ];
    jpeg_encode(mozjpeg::ColorSpace::JCS_YCbCr, size, opts, keep, |s| {
        // mozjpeg takes whole blocks: each plane is padded to its component's size in
        // blocks, repeating the last column and row as libjpeg's own edge expansion does.
        let padded: Vec<Vec<u8>> = s
            .components()
            .iter()
            .zip(&planes)
            .zip(dims)
            .map(|((c, plane), (pw, ph))| {
                use mozjpeg::CompInfoExt;
                let (stride, rows) = (c.row_stride(), c.col_stride());
                let mut out = Vec::with_capacity(stride * rows);
                for y in 0..rows {
                    let row = &plane[y.min(ph - 1) * pw..][..pw];
                    out.extend_from_slice(row);
                    out.resize(out.len() + stride - pw, row[pw - 1]);
                }
                out
            })
            .collect();
        let refs: Vec<&[u8]> = padded.iter().map(Vec::as_slice).collect();
        if s.write_raw_data(&refs) {
            Ok(())
        } else {
            Err(std::io::Error::other("libjpeg took no raw data"))
        }
    })
}

/// One JPEG of `size` from pixels in `space`, written by `write` once the headers and
/// metadata are out; mozjpeg's settings for `opts` (quality, chroma, progressive, trellis).
fn jpeg_encode(
    space: mozjpeg::ColorSpace,
    (w, h): (u32, u32),
    opts: &Options,
    keep: &Keep,
    write: impl FnOnce(&mut mozjpeg::compress::CompressStarted<Vec<u8>>) -> std::io::Result<()>,
) -> Result<Vec<u8>> {
    let quality = opts.quality_for(OutputFormat::Jpeg);
    let progressive = opts.progressive.unwrap_or(false);
    let trellis = opts.trellis;
    let subsampled = jpeg_subsampled(opts);
    // mozjpeg reports errors by unwinding through libjpeg; the closure owns nothing that a
    // half-finished unwind could leave inconsistent.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || -> std::io::Result<Vec<u8>> {
            let mut c = mozjpeg::Compress::new(space);
            if !trellis {
                // libjpeg-turbo behaviour: no trellis, no scan search; still Huffman-optimised.
                c.set_fastest_defaults();
                c.set_optimize_coding(true);
            }
            c.set_size(w as usize, h as usize);
            c.set_quality(f32::from(quality));
            // Luma is never subsampled; chroma at 1×1 (4:4:4) or 2×2 (4:2:0) pixels.
            let cs = if subsampled { (2, 2) } else { (1, 1) };
            c.set_chroma_sampling_pixel_sizes(cs, cs);
            if progressive {
                c.set_progressive_mode();
            } else {
                c.set_optimize_scans(false);
            }
            // YCbCr comes as planes at their own resolutions (`encode_jpeg_ycc`). Last, since
            // libjpeg's defaults (set again by the calls above) clear it.
            c.set_raw_data_in(space == mozjpeg::ColorSpace::JCS_YCbCr);
            let mut s = c.start_compress(Vec::with_capacity((w * h / 4) as usize))?;
            if let Some(icc) = &keep.icc {
                s.write_icc_profile(icc);
            }
            if let Some(exif) = &keep.exif {
                // One APP1 segment holds at most 64 KiB; a larger EXIF block is dropped whole
                // rather than cut.
                if exif.len() + 8 < 65_533 {
                    let mut app1 = b"Exif\0\0".to_vec();
                    app1.extend_from_slice(exif);
                    s.write_marker(mozjpeg::Marker::APP(1), &app1);
                }
            }
            write(&mut s)?;
            s.finish()
        },
    ));
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::Encode(e.to_string())),
        Err(p) => Err(Error::Encode(panic_message(p))),
    }
}

/// Effort 0-9 to an oxipng preset 0-6.
fn oxipng_level(effort: u8) -> u8 {
    [0, 1, 1, 2, 2, 3, 3, 4, 5, 6][usize::from(effort.min(9))]
}

fn encode_png(img: &DynamicImage, opts: &Options, keep: &Keep) -> Result<Vec<u8>> {
    let alpha = img.color().has_alpha();
    let (w, h) = (img.width(), img.height());
    let (color_type, data) = if alpha {
        (oxipng::ColorType::RGBA, img.to_rgba8().into_raw())
    } else {
        (
            oxipng::ColorType::RGB {
                transparent_color: None,
            },
            img.to_rgb8().into_raw(),
        )
    };
    let mut raw = oxipng::RawImage::new(w, h, color_type, oxipng::BitDepth::Eight, data)
        .map_err(|e| Error::Encode(e.to_string()))?;
    if let Some(icc) = &keep.icc {
        raw.add_icc_profile(icc);
    }
    if let Some(exif) = &keep.exif {
        raw.add_png_chunk(*b"eXIf", exif.clone());
    }
    let mut o = oxipng::Options::from_preset(oxipng_level(opts.effort()));
    o.interlace = Some(opts.progressive.unwrap_or(false));
    // Only chunks we added ourselves exist, and those are wanted.
    o.strip = oxipng::StripChunks::None;
    if !opts.palette {
        o.palette_reduction = false;
        o.color_type_reduction = false;
        o.bit_depth_reduction = false;
        o.grayscale_reduction = false;
    }
    raw.create_optimized_png(&o)
        .map_err(|e| Error::Encode(e.to_string()))
}

/// Effort 0-9 to a libwebp method 0-6 (4, libwebp's default, at effort 4).
fn webp_method(effort: u8) -> i32 {
    [0, 1, 2, 3, 4, 4, 5, 5, 6, 6][usize::from(effort.min(9))]
}

/// libwebp settings for `opts` (quality or lossless effort, method).
pub(crate) fn webp_config(opts: &Options) -> Result<webp::WebPConfig> {
    let mut cfg = webp::WebPConfig::new()
        .map_err(|()| Error::Encode("libwebp version mismatch".to_owned()))?;
    let effort = opts.effort();
    cfg.method = webp_method(effort);
    if opts.lossless {
        cfg.lossless = 1;
        // For lossless, libwebp's "quality" is compression effort.
        cfg.quality = [0.0, 10.0, 25.0, 50.0, 75.0, 80.0, 85.0, 90.0, 95.0, 100.0]
            [usize::from(effort.min(9))];
        cfg.exact = 0;
    } else {
        cfg.quality = f32::from(opts.quality_for(OutputFormat::Webp));
        cfg.alpha_compression = 1;
    }
    Ok(cfg)
}

/// One simple (RIFF/VP8 or VP8L) WebP with the given settings. Lossless pictures of more
/// than 256 colours go to our own VP8L encoder at `effort` (see `vp8l`); libwebp keeps
/// lossy ones and palette pictures, which its colour-indexing transform packs into bits.
pub(crate) fn webp_encode(
    img: &DynamicImage,
    cfg: &webp::WebPConfig,
    effort: u8,
) -> Result<Vec<u8>> {
    let layout = if img.color().has_alpha() {
        webp::PixelLayout::Rgba
    } else {
        webp::PixelLayout::Rgb
    };
    let buf: &[u8] = match img {
        DynamicImage::ImageRgb8(i) => i.as_raw(),
        DynamicImage::ImageRgba8(i) => i.as_raw(),
        _ => return Err(Error::Encode("unexpected pixel layout".to_owned())),
    };
    let channels = if img.color().has_alpha() { 4 } else { 3 };
    if cfg.lossless == 1
        && img.width() <= crate::vp8l::MAX_SIZE
        && img.height() <= crate::vp8l::MAX_SIZE
        && !crate::vp8l::fits_palette(buf, channels)
    {
        let settings = crate::vp8l::Settings::for_effort(effort);
        return Ok(crate::vp8l::encode(
            buf,
            channels,
            img.width(),
            img.height(),
            settings,
        ));
    }
    let mem = webp::Encoder::new(buf, layout, img.width(), img.height())
        .encode_advanced(cfg)
        .map_err(|e| Error::Encode(format!("libwebp: {e:?}")))?;
    Ok(mem.to_vec())
}

fn encode_webp(img: &DynamicImage, opts: &Options, keep: &Keep) -> Result<Vec<u8>> {
    let alpha = img.color().has_alpha();
    let (w, h) = (img.width(), img.height());
    let bytes = webp_encode(img, &webp_config(opts)?, opts.effort())?;
    if keep.icc.is_none() && keep.exif.is_none() {
        return Ok(bytes);
    }
    webp_with_metadata(&bytes, w, h, alpha, keep)
}

pub(crate) fn riff_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

/// Lossy WebP from BT.601 full-range (JFIF) Y, Cb and Cr planes of a `size` picture, the
/// chroma planes at half resolution (rounded up): mapped to VP8's limited range and coded
/// with the same settings as [`encode_webp`].
pub(crate) fn encode_webp_ycc(
    planes: [Vec<u8>; 3],
    size: (u32, u32),
    opts: &Options,
    keep: &Keep,
) -> Result<Vec<u8>> {
    // Y' = 16 + 219/255 Y and C' = 128 + 224/255 (C − 128), rounded: the same as libwebp's
    // own RGB → YUV, which applies these factors to the BT.601 equations.
    let luma: [u8; 256] = std::array::from_fn(|v| (16.0 + v as f64 * 219.0 / 255.0).round() as u8);
    let chroma: [u8; 256] =
        std::array::from_fn(|v| (128.0 + (v as f64 - 128.0) * 224.0 / 255.0).round() as u8);
    let [mut y, mut u, mut v] = planes;
    y.iter_mut().for_each(|p| *p = luma[usize::from(*p)]);
    for p in u.iter_mut().chain(v.iter_mut()) {
        *p = chroma[usize::from(*p)];
    }
    let cfg = webp_config(opts)?;
    let bytes = webp::encode_yuv420(&y, &u, &v, size.0, size.1, &cfg)
        .map_err(|e| Error::Encode(format!("libwebp: {e:?}")))?
        .to_vec();
    if keep.icc.is_none() && keep.exif.is_none() {
        return Ok(bytes);
    }
    webp_with_metadata(&bytes, size.0, size.1, false, keep)
}

/// Re-wraps a simple WebP in the extended (VP8X) container so it can carry ICC and EXIF;
/// the `webp` crate does not expose libwebp's mux API.
fn webp_with_metadata(simple: &[u8], w: u32, h: u32, alpha: bool, keep: &Keep) -> Result<Vec<u8>> {
    let mut chunks: Vec<([u8; 4], &[u8])> = Vec::new();
    let mut pos = 12;
    while pos + 8 <= simple.len() {
        let fourcc: [u8; 4] = simple[pos..pos + 4].try_into().expect("4 bytes");
        let len =
            u32::from_le_bytes(simple[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let data = simple
            .get(pos + 8..pos + 8 + len)
            .ok_or_else(|| Error::Encode("libwebp wrote a truncated chunk".to_owned()))?;
        if &fourcc != b"VP8X" {
            chunks.push((fourcc, data));
        }
        pos += 8 + len + (len & 1);
    }
    let mut flags = 0u8;
    if keep.icc.is_some() {
        flags |= 0x20;
    }
    if alpha {
        flags |= 0x10;
    }
    if keep.exif.is_some() {
        flags |= 0x08;
    }
    let mut vp8x = vec![flags, 0, 0, 0];
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    riff_chunk(&mut body, b"VP8X", &vp8x);
    if let Some(icc) = &keep.icc {
        riff_chunk(&mut body, b"ICCP", icc);
    }
    for (fourcc, data) in chunks {
        riff_chunk(&mut body, &fourcc, data);
    }
    if let Some(exif) = &keep.exif {
        riff_chunk(&mut body, b"EXIF", exif);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(not(feature = "avif"))]
fn encode_avif(_: &DynamicImage, _: &Options, _: &Keep) -> Result<Vec<u8>> {
    Err(Error::UnsupportedFormat(
        "AVIF output is not compiled into this build (feature \"avif\")".to_owned(),
    ))
}

/// Effort 0-9 to a rav1e speed: 10, 10, 9, 8, 7 (default), 6, … 2. rav1e's presets are
/// tuned for video: for one still picture speed 7 came within 0.2–0.5 % of speed 6's bytes at
/// equal SSIM on the bench photographs in 60 % of its time, so the default sits there.
#[cfg(feature = "avif")]
fn avif_speed(effort: u8) -> u8 {
    (11 - effort.min(9)).min(10)
}

#[cfg(feature = "avif")]
fn encode_avif(img: &DynamicImage, opts: &Options, keep: &Keep) -> Result<Vec<u8>> {
    let quality = opts.quality_for(OutputFormat::Avif);
    let alpha = img.color().has_alpha();
    if opts.chroma.subsampled(quality, alpha, OutputFormat::Avif) {
        return crate::av1enc::encode_420(
            img,
            f32::from(quality),
            avif_speed(opts.effort()),
            keep.exif.as_deref(),
        );
    }
    let q = f32::from(quality);
    let mut enc = ravif::Encoder::new()
        .with_quality(q)
        .with_alpha_quality(q)
        .with_speed(avif_speed(opts.effort()))
        // Transparent pixels' colour is invisible; let the encoder pick what compresses best.
        .with_alpha_color_mode(ravif::AlphaColorMode::UnassociatedClean);
    if let Some(exif) = &keep.exif {
        enc = enc.with_exif(exif.clone());
    }
    let (w, h) = (img.width() as usize, img.height() as usize);
    let encoded = match img {
        DynamicImage::ImageRgba8(i) => enc.encode_rgba(ravif::Img::new(i.as_raw().as_rgba(), w, h)),
        DynamicImage::ImageRgb8(i) => enc.encode_rgb(ravif::Img::new(i.as_raw().as_rgb(), w, h)),
        other => enc.encode_rgb(ravif::Img::new(other.to_rgb8().as_raw().as_rgb(), w, h)),
    }
    .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(encoded.avif_file)
}
