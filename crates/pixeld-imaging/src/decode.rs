//! Pixel decoding: mozjpeg for JPEG (shrink-on-decode at 1/8, 1/4 and 3/8 of sequential
//! JPEGs by our own [`crate::jpeg_scaled`]), libdav1d for AVIF, the
//! `image` crate for the rest. Always called after [`crate::format::read_header`] has checked the limits.

use image::{DynamicImage, RgbImage};

use crate::error::{Error, Result};
use crate::format::{self, Header, SourceFormat};
use crate::limits::Limits;

/// Decodes to 8-bit RGB or RGBA. JPEGs are scaled to `eighths`/8 (1 to 8; 8 is full size)
/// in the DCT domain, the fastest way to a smaller image; other formats ignore it.
pub(crate) fn decode(
    bytes: &[u8],
    header: &Header,
    limits: &Limits,
    eighths: u32,
) -> Result<DynamicImage> {
    if !header.format.is_decodable() {
        return Err(format::unsupported_decode(header.format));
    }
    #[cfg(feature = "avif-decode")]
    if header.format == SourceFormat::Avif {
        return crate::avif::decode(bytes, header.width, header.height, limits);
    }
    // CMYK/YCCK JPEGs need a colour conversion libjpeg does not do; zune-jpeg does.
    if header.format == SourceFormat::Jpeg && header.jpeg_components != 4 {
        if !format::jpeg_has_end_marker(bytes, header.jpeg_scan_start) {
            return Err(Error::corrupt(
                "the JPEG is truncated (no end-of-image marker)",
            ));
        }
        return decode_jpeg(bytes, eighths);
    }
    let dec = format::image_decoder(bytes, header.format, limits)?;
    let img = DynamicImage::from_decoder(dec).map_err(|e| match Error::from_image(e) {
        // The header was readable, so "unsupported" here means a broken stream.
        Error::UnsupportedFormat(m) => Error::Corrupt(m),
        e => e,
    })?;
    Ok(normalize(img))
}

/// A YCbCr JPEG's own planes, luma at `eighths`/8 (1 to 3) and chroma at `chroma_eighths`/8,
/// by [`crate::jpeg_scaled`]; `None` for anything it leaves to libjpeg-turbo, and for a
/// truncated file (whose error the RGB route reports).
pub(crate) fn decode_jpeg_ycc(
    bytes: &[u8],
    header: &Header,
    eighths: u32,
    chroma_eighths: u32,
) -> Option<crate::jpeg_scaled::Ycc> {
    if header.format != SourceFormat::Jpeg
        || header.jpeg_components != 3
        || !format::jpeg_has_end_marker(bytes, header.jpeg_scan_start)
    {
        return None;
    }
    crate::jpeg_scaled::decode_ycc(bytes, eighths, chroma_eighths)
}

/// Every later step works on 8-bit RGB or RGBA only.
pub(crate) fn normalize(img: DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => img,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}

fn decode_jpeg(bytes: &[u8], eighths: u32) -> Result<DynamicImage> {
    // Shrink-on-decode of sequential JPEGs at 1/8, 1/4 and 3/8: our own decoder, which skips
    // the coefficients the smaller picture does not need. Whatever it does not cover (and
    // 1/2 and full size) goes to libjpeg-turbo.
    if eighths <= crate::jpeg_scaled::MAX_EIGHTHS
        && let Some(d) = crate::jpeg_scaled::decode(bytes, eighths)
        && let Some(img) = RgbImage::from_raw(d.width, d.height, d.rgb)
    {
        return Ok(DynamicImage::ImageRgb8(img));
    }
    // mozjpeg reports libjpeg errors by unwinding; catch them here so that no broken file
    // can take the process down.
    let result = std::panic::catch_unwind(|| -> std::io::Result<(usize, usize, Vec<u8>)> {
        let mut d = mozjpeg::Decompress::new_mem(bytes)?;
        d.scale(eighths.clamp(1, 8) as u8);
        let mut started = d.rgb()?;
        let (w, h) = (started.width(), started.height());
        let px: Vec<u8> = started.read_scanlines()?;
        // Trailing garbage after the image is harmless; the pixels are complete.
        let _ = started.finish();
        Ok((w, h, px))
    });
    let (w, h, px) = match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return Err(Error::corrupt(e)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "libjpeg error".to_owned());
            return Err(Error::Corrupt(msg));
        }
    };
    let img = RgbImage::from_raw(w as u32, h as u32, px)
        .ok_or_else(|| Error::corrupt("the JPEG decoded to fewer pixels than its size"))?;
    Ok(DynamicImage::ImageRgb8(img))
}
