//! The one error type of the crate, with a stable slug per variant.

/// Result alias used by every public function of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while probing, processing or analysing an image.
///
/// Each variant maps to one stable, user-facing [`Error::kind`] slug, which the HTTP layer
/// turns into a problem+json `type`; the `Display` text is meant for the user.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input was zero bytes long.
    #[error("the input is empty (0 bytes)")]
    Empty,
    /// The bytes are not an image format this crate can read.
    #[error("unsupported image format: {0}")]
    UnsupportedFormat(String),
    /// The input is larger than [`crate::Limits::max_input_bytes`].
    #[error("the input is {bytes} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Size of the input in bytes.
        bytes: u64,
        /// The configured limit.
        max: u64,
    },
    /// The image (or the requested output) has more pixels than [`crate::Limits::max_pixels`].
    #[error("the image is {width}×{height} ({pixels} pixels); the limit is {max} pixels")]
    TooManyPixels {
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
        /// width × height.
        pixels: u64,
        /// The configured limit.
        max: u64,
    },
    /// One side of the image (or of the requested output) exceeds [`crate::Limits::max_dimension`].
    #[error("the image is {width}×{height}; no side may exceed {max} pixels")]
    DimensionTooLarge {
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
        /// The configured limit.
        max: u32,
    },
    /// An animation's frame count × canvas size exceeds [`crate::Limits::max_frame_pixels`]
    /// (e.g. a GIF with thousands of full-size frames).
    #[error(
        "the animation has {frames} frames of {width}×{height} ({pixels} pixels in all); the limit is {max} pixels"
    )]
    TooManyFrames {
        /// Number of frames.
        frames: u32,
        /// Canvas width in pixels.
        width: u32,
        /// Canvas height in pixels.
        height: u32,
        /// frames × width × height.
        pixels: u64,
        /// The configured limit.
        max: u64,
    },
    /// The image claims a known format but its data is truncated or malformed.
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
    /// Decoding needed more memory than the limits allow (e.g. a decompression bomb that
    /// hides its size from the header).
    #[error("decoding the image would exceed the memory limit: {0}")]
    ResourceLimit(String),
    /// The processing options are invalid; the message names the option and the rule.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The encoder failed; not the user's fault.
    #[error("encoding failed: {0}")]
    Encode(String),
}

impl Error {
    /// Stable, machine-readable slug for this error, e.g. `"too-many-pixels"`.
    ///
    /// These strings are part of the public API: clients match on them.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Empty => "empty-input",
            Error::UnsupportedFormat(_) => "unsupported-format",
            Error::TooLarge { .. } => "too-large",
            Error::TooManyPixels { .. } => "too-many-pixels",
            Error::TooManyFrames { .. } => "too-many-frames",
            Error::DimensionTooLarge { .. } => "dimension-too-large",
            Error::Corrupt(_) => "corrupt-image",
            Error::ResourceLimit(_) => "resource-limit",
            Error::InvalidOptions(_) => "invalid-options",
            Error::Encode(_) => "encode-failed",
        }
    }

    /// Whether the caller (rather than this service) is at fault; an HTTP layer answers 4xx
    /// for these and 5xx otherwise.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Error::Encode(_))
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidOptions(msg.into())
    }

    pub(crate) fn corrupt(msg: impl std::fmt::Display) -> Self {
        Error::Corrupt(msg.to_string())
    }

    /// Maps an `image` crate error to ours, keeping limit errors apart from corrupt data.
    pub(crate) fn from_image(err: image::ImageError) -> Self {
        use image::ImageError as E;
        match err {
            E::Limits(l) => Error::ResourceLimit(l.to_string()),
            E::Unsupported(u) => Error::UnsupportedFormat(u.to_string()),
            E::Decoding(d) => Error::Corrupt(d.to_string()),
            E::IoError(e) => Error::Corrupt(e.to_string()),
            E::Parameter(p) => Error::Corrupt(p.to_string()),
            E::Encoding(e) => Error::Encode(e.to_string()),
        }
    }
}
