//! pixeld's AI providers.
//!
//! Today: image descriptions (alt text and tags) from any vision model behind an
//! OpenAI-compatible Chat Completions endpoint ([`OpenAiVision`]): OpenAI itself, or a model
//! served on your own machines (Ollama, vLLM, llama.cpp's server, LocalAI), so that images never
//! leave them.
//!
//! What a provider receives is decided here, once, for every caller:
//! - the picture the caller hands over (pixeld sends a small JPEG re-encoded without any
//!   metadata, so no EXIF, GPS position or file name goes out) and a fixed instruction;
//! - no user, organisation or account identifier;
//! - the provider's "do not store" flag (`"store": false`), which tells OpenAI not to keep the
//!   request or its answer for distillation or evaluations. OpenAI does not train on API data;
//!   other OpenAI-compatible servers ignore the flag.
//!
//! Whether a user's data may go to a provider at all (the restriction switch and objections) is
//! decided by the caller (`pixeld-core`), before anything is sent.
//!
//! The crate does no I/O of its own beyond the HTTP calls, on a `reqwest::Client` the caller
//! gives it (timeouts, proxies and TLS are the caller's).

pub mod vision;

#[cfg(feature = "testing")]
pub mod testing;

pub use vision::{Describer, Description, ImageInput, OpenAiVision, VisionConfig};

/// What can go wrong when calling an AI provider.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// The provider answered with an error status; `message` is its own explanation.
    #[error("the AI provider answered {status}: {message}")]
    Provider {
        /// HTTP status.
        status: u16,
        /// The provider's error message (or the start of its body).
        message: String,
    },
    /// The provider could not be reached or the connection failed.
    #[error("the AI provider could not be reached: {0}")]
    Transport(String),
    /// The provider answered, but not with what was asked for.
    #[error("the AI provider's answer could not be used: {0}")]
    Malformed(String),
    /// The model declined to describe the picture.
    #[error("the AI model declined to describe the image: {0}")]
    Refused(String),
}
