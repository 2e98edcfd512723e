//! Raw pixel entry points for other engines (the renderer): decode to RGBA, encode RGBA.

use image::{DynamicImage, RgbaImage};

use crate::encode::{self, Keep};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::options::{IccMode, Options, OutputFormat};
use crate::pipeline::decode_upright;

/// Upright sRGB pixels, 8-bit RGBA with straight (not premultiplied) alpha, row-major.
#[derive(Debug, Clone)]
pub struct Rgba {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes.
    pub data: Vec<u8>,
}

/// Decodes any readable image to upright sRGB RGBA. With `at_least`, a JPEG may be shrunk in
/// the DCT domain while staying at least that large (the caller scales the rest of the way),
/// which is most of the cost saved when a 12 MP photo fills a 200 px avatar.
pub fn decode_rgba(bytes: &[u8], limits: &Limits, at_least: Option<(u32, u32)>) -> Result<Rgba> {
    let header = crate::format::read_header(bytes, limits)?;
    let scale = at_least.map(|(w, h)| {
        (f64::from(w.max(1)) / f64::from(header.width.max(1)))
            .max(f64::from(h.max(1)) / f64::from(header.height.max(1)))
            .min(1.0)
    });
    let up = decode_upright(bytes, limits, scale.map(|s| (s, IccMode::Srgb)), false)?;
    let img = up.image.into_rgba8();
    let (width, height) = img.dimensions();
    Ok(Rgba {
        width,
        height,
        data: img.into_raw(),
    })
}

/// Resizes straight-alpha RGBA pixels to `width` × `height` with Lanczos3, alpha
/// premultiplied while filtering so that transparent pixels lend no colour to the edges.
pub fn resize_rgba(pixels: Rgba, width: u32, height: u32) -> Result<Rgba> {
    let Rgba {
        width: w,
        height: h,
        data,
    } = pixels;
    let img = RgbaImage::from_raw(w, h, data)
        .ok_or_else(|| Error::Encode("pixel buffer does not match its dimensions".to_owned()))?;
    let out = crate::transform::resize(&DynamicImage::ImageRgba8(img), None, (width, height))?
        .into_rgba8();
    Ok(Rgba {
        width,
        height,
        data: out.into_raw(),
    })
}

/// Encodes straight-alpha RGBA pixels with the encoder settings of `opts` (quality, lossless,
/// effort, progressive, palette). Opaque images are written without an alpha channel; JPEG
/// flattens onto `opts.background` (white by default).
pub fn encode_rgba(pixels: Rgba, format: OutputFormat, opts: &Options) -> Result<Vec<u8>> {
    opts.validate()?;
    let Rgba {
        width,
        height,
        data,
    } = pixels;
    let img = RgbaImage::from_raw(width, height, data)
        .ok_or_else(|| Error::Encode("pixel buffer does not match its dimensions".to_owned()))?;
    let mut img = DynamicImage::ImageRgba8(img);
    if format == OutputFormat::Jpeg {
        img = crate::transform::flatten(img, opts.background.unwrap_or(crate::Color::WHITE));
    }
    let img = crate::transform::drop_opaque_alpha(img);
    encode::encode(&img, format, opts, &Keep::default())
}
