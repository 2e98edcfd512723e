//! The two ways this crate fails: calling a provider, and accepting a webhook.

/// A provider API call that did not give us what we asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The provider (or this crate for it) does not offer this operation.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// The provider refused the request; `message` is the provider's own explanation.
    #[error("the payment provider answered {status}: {message}")]
    Provider {
        /// HTTP status of the provider's answer.
        status: u16,
        /// Stripe's `error.message` or Razorpay's `error.description`.
        message: String,
    },
    /// The provider could not be reached or the answer could not be read.
    #[error("could not reach the payment provider: {0}")]
    Transport(String),
    /// The provider accepted the request but its answer is not what it documents.
    #[error("unexpected answer from the payment provider: {0}")]
    Malformed(String),
}

/// A webhook that must not be acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The signature header is missing, malformed, or does not match the body.
    #[error("webhook signature rejected: {0}")]
    BadSignature(String),
    /// The signature is good but its timestamp is outside the tolerance (a replay).
    #[error("webhook timestamp is outside the tolerance")]
    StaleTimestamp,
    /// The signature is good but the body is not the event the provider documents.
    #[error("malformed webhook: {0}")]
    Malformed(String),
}
