//! ICC colour management: embedded profiles are converted to sRGB with moxcms (pure Rust).

use image::DynamicImage;
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

/// Converts the pixels from the embedded profile to sRGB in place.
///
/// Returns a warning when the profile is unusable; the pixels are then left as they are,
/// which is what every browser does with a broken profile too.
pub(crate) fn convert_to_srgb(img: &mut DynamicImage, icc: &[u8]) -> Result<(), String> {
    let src = ColorProfile::new_from_slice(icc).map_err(|e| format!("ICC profile ignored: {e}"))?;
    if src.color_space != DataColorSpace::Rgb {
        // Grey and CMYK profiles describe data we already expanded to RGB ourselves.
        return Ok(());
    }
    if crate::metadata::icc_description(icc).is_some_and(|d| d.contains("sRGB")) {
        // Already sRGB: skip a no-op transform over every pixel.
        return Ok(());
    }
    let dst = ColorProfile::new_srgb();
    let layout = if img.color().has_alpha() {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let transform = src
        .create_transform_8bit(layout, &dst, layout, TransformOptions::default())
        .map_err(|e| format!("ICC profile ignored: {e}"))?;
    let buf: &mut [u8] = match img {
        DynamicImage::ImageRgb8(i) => i,
        DynamicImage::ImageRgba8(i) => i,
        _ => return Ok(()),
    };
    let src_px = buf.to_vec();
    transform
        .transform(&src_px, buf)
        .map_err(|e| format!("ICC conversion failed: {e}"))
}
