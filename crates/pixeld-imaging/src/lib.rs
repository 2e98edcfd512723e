//! pixeld's imaging engine: decode → transform → encode → analyze.
//!
//! Synchronous, bytes in / bytes out, no I/O. Three entry points:
//!
//! - [`probe`] reads the header only (format, size, alpha, EXIF summary);
//! - [`process`] resizes, crops, rotates, converts and re-encodes according to [`Options`];
//! - [`analyze`] reports hashes, colours and a photo/graphic guess ([`Analysis`]).
//!
//! Inputs: JPEG, PNG, WebP, GIF, AVIF (libdav1d, feature `avif-decode`), TIFF and BMP.
//! HEIC is recognised and probed but refused: no permissively licensed decoder exists.
//! Animated GIF and WebP stay animated when the output keeps their format (every frame
//! resized alike, delays and loop count kept); other outputs get the first frame.
//!
//! Every function checks [`Limits`] against the header before decoding any pixel, so a
//! decompression bomb gets [`Error::TooManyPixels`] instead of exhausting memory. Errors
//! carry a stable slug ([`Error::kind`]) for machine consumers.
//!
//! ```no_run
//! use pixeld_imaging::{process, Limits, Options};
//! # let jpeg_bytes: Vec<u8> = Vec::new();
//! let opts = Options::from_query("w=800&format=webp&q=80")?;
//! let out = process(&jpeg_bytes, &opts, &Limits::default())?;
//! assert_eq!(out.width, 800);
//! # Ok::<(), pixeld_imaging::Error>(())
//! ```
#![warn(missing_docs)]

mod analyze;
mod anim;
#[cfg(feature = "avif")]
mod av1enc;
#[cfg(feature = "avif-decode")]
mod avif;
mod color;
pub mod compare;
mod decode;
mod encode;
mod error;
mod fast_png;
mod format;
mod heif;
mod jpeg_scaled;
mod limits;
mod metadata;
mod options;
mod pipeline;
mod raw;
mod transform;
mod vp8l;
mod zlib;

pub use analyze::{Analysis, ImageKind, PaletteColor, blurhash_png, hamming_distance};
pub use error::{Error, Result};
pub use fast_png::{PngBase, encode_png_fast};
pub use format::SourceFormat;
pub use limits::Limits;
pub use metadata::ExifSummary;
pub use options::{
    Chroma, Color, CropRect, Fit, Format, Gravity, IccMode, Options, OutputFormat, Rotation,
    accepts,
};
pub use pipeline::{Output, Probe, analyze, probe, process};
pub use raw::{Rgba, decode_rgba, encode_rgba, resize_rgba};
