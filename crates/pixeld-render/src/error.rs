//! Render errors, each with a stable slug for machine consumers.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template is not valid JSON or breaks the schema or a limit; lists every problem.
    #[error("invalid template: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The template could not be read (not JSON, wrong shape).
    #[error("invalid template: {0}")]
    Template(String),
    /// The data or modifications do not fit the template (missing variables, unknown layers).
    #[error("{0}")]
    Data(String),
    /// An image layer's source could not be used.
    #[error("image layer {layer}: {reason}")]
    Image {
        /// The layer's name.
        layer: String,
        /// Why.
        reason: String,
    },
    /// A font family the template names is not available.
    #[error("unknown font families: {}", .0.join(", "))]
    UnknownFonts(Vec<String>),
    /// A font file could not be read.
    #[error("font: {0}")]
    Font(String),
    /// Layout or rasterisation failed.
    #[error("render failed: {0}")]
    Render(String),
    /// Encoding the output failed.
    #[error("encoding failed: {0}")]
    Encode(String),
}

impl Error {
    /// A stable slug naming the kind of error (used as the problem type by the server).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(_) | Error::Template(_) => "invalid-template",
            Error::Data(_) => "invalid-render-data",
            Error::Image { .. } => "render-image-failed",
            Error::UnknownFonts(_) => "unknown-font",
            Error::Font(_) => "invalid-font",
            Error::Render(_) | Error::Encode(_) => "render-failed",
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
