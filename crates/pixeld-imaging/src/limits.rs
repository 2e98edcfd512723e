//! Resource limits, checked from the header before any pixel is decoded.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Resource limits for one job. Checked against the image header before decoding, and
/// against the requested output size before resizing, so a decompression bomb or an absurd
/// `w=` gets a clear error instead of exhausting memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted input, in bytes (default 64 MiB).
    pub max_input_bytes: u64,
    /// Largest accepted width × height, for input and output (default 50 megapixels).
    pub max_pixels: u64,
    /// Largest accepted width or height, for input and output (default 16384, the largest
    /// side WebP can encode).
    pub max_dimension: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 64 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_dimension: 16_384,
        }
    }
}

impl Limits {
    pub(crate) fn check_bytes(&self, len: usize) -> Result<()> {
        if len == 0 {
            return Err(Error::Empty);
        }
        if len as u64 > self.max_input_bytes {
            return Err(Error::TooLarge {
                bytes: len as u64,
                max: self.max_input_bytes,
            });
        }
        Ok(())
    }

    /// Checks a width × height against `max_pixels` then `max_dimension`.
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<()> {
        let (w, h) = (u64::from(width), u64::from(height));
        if w == 0 || h == 0 {
            return Err(Error::corrupt(format!(
                "the image claims a size of {w}×{h}"
            )));
        }
        if w * h > self.max_pixels {
            return Err(Error::TooManyPixels {
                width: w,
                height: h,
                pixels: w * h,
                max: self.max_pixels,
            });
        }
        if width > self.max_dimension || height > self.max_dimension {
            return Err(Error::DimensionTooLarge {
                width: w,
                height: h,
                max: self.max_dimension,
            });
        }
        Ok(())
    }

    /// Largest accepted frame count × canvas pixels of an animation, for input and output:
    /// ten full-size images' worth (500 megapixels by default). Frames are processed one at
    /// a time, so this bounds the work rather than the memory. Derived from `max_pixels`
    /// rather than a field of its own so that callers' struct literals keep compiling.
    pub fn max_frame_pixels(&self) -> u64 {
        self.max_pixels.saturating_mul(10)
    }

    /// Checks an animation's frame count × `width` × `height` against
    /// [`Limits::max_frame_pixels`].
    pub fn check_frames(&self, frames: u32, width: u32, height: u32) -> Result<()> {
        let pixels = u64::from(frames)
            .saturating_mul(u64::from(width))
            .saturating_mul(u64::from(height));
        if frames > 1 && pixels > self.max_frame_pixels() {
            return Err(Error::TooManyFrames {
                frames,
                width,
                height,
                pixels,
                max: self.max_frame_pixels(),
            });
        }
        Ok(())
    }

    /// Limits for the `image` crate's decoders: a backstop for formats whose header can lie
    /// (e.g. a GIF frame larger than its logical screen).
    pub(crate) fn image_limits(&self) -> image::Limits {
        let mut l = image::Limits::default();
        l.max_image_width = Some(self.max_dimension);
        l.max_image_height = Some(self.max_dimension);
        // RGBA16 worst case plus decoder scratch space.
        l.max_alloc = Some(self.max_pixels.saturating_mul(8).saturating_add(64 << 20));
        l
    }
}
