//! The one error type of the use cases. Each variant is one user-facing outcome; the server maps
//! each to one problem `type` and HTTP status.

use serde::Serialize;

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The input field, e.g. `password`.
    pub field: String,
    /// What is wrong with it, in words a user understands.
    pub message: String,
}

/// Everything a use case can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is malformed or breaks a rule; every problem is listed.
    #[error("invalid input: {}", .0.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// Email/password (or code) did not match. Deliberately says no more than that.
    #[error("the credentials are not valid")]
    BadCredentials,
    /// No valid authentication was presented (missing, malformed, unknown, expired or revoked).
    #[error("authentication required")]
    Unauthenticated,
    /// Authenticated, but the token lacks a scope.
    #[error("this token lacks the `{0}` scope")]
    MissingScope(&'static str),
    /// Authenticated, but the caller's role does not allow this.
    #[error("your role does not allow this: {0}")]
    Forbidden(String),
    /// The account must verify its email first.
    #[error("verify your email address before signing in")]
    EmailNotVerified,
    /// The account was disabled by an operator.
    #[error("this account is disabled")]
    AccountDisabled,
    /// The thing does not exist, or belongs to someone else (never distinguish the two).
    #[error("not found")]
    NotFound,
    /// A unique thing already exists (e.g. an email address).
    #[error("{0}")]
    Conflict(String),
    /// A link or code is unknown, already used or expired.
    #[error("this link or code is invalid or has expired")]
    InvalidToken,
    /// The request is valid but contradicts the current state (e.g. 2FA already on).
    #[error("{0}")]
    State(String),
    /// The image could not be read or processed; the imaging error says why.
    #[error("{0}")]
    Image(pixeld_imaging::Error),
    /// A template, its data or a render was refused; the render error says why.
    #[error("{0}")]
    Render(pixeld_render::Error),
    /// A URL given to fetch was refused or could not be fetched.
    #[error("{0}")]
    Fetch(String),
    /// The organisation's balance does not cover the work; nothing was done or charged.
    #[error(
        "this needs {needed} credits and the balance is {balance}: buy credits or wait for the monthly grant"
    )]
    InsufficientCredits {
        /// Credits the work costs.
        needed: i64,
        /// Credits available.
        balance: i64,
    },
    /// The payment provider refused or failed a call; its message says why.
    #[error("{0}")]
    Payment(String),
    /// A signed message (a webhook, a payment confirmation) does not verify.
    #[error("{0}")]
    BadSignature(String),
    /// The user restricted processing or objected to this use of their data; nothing was sent
    /// or charged.
    #[error("{0}")]
    ProcessingRestricted(String),
    /// The feature needs something this instance has not set up (named in the message).
    #[error("{0}")]
    NotConfigured(String),
    /// An AI provider refused or failed the call; its message says why. Nothing was charged.
    #[error("{0}")]
    AiProvider(String),
    /// Storage or another dependency failed; details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// A stable slug for this outcome; the server builds the problem `type` from it.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "validation",
            Error::BadCredentials => "bad-credentials",
            Error::Unauthenticated => "unauthenticated",
            Error::MissingScope(_) => "missing-scope",
            Error::Forbidden(_) => "forbidden",
            Error::EmailNotVerified => "email-not-verified",
            Error::AccountDisabled => "account-disabled",
            Error::NotFound => "not-found",
            Error::Conflict(_) => "conflict",
            Error::InvalidToken => "invalid-token",
            Error::State(_) => "state-conflict",
            Error::Image(e) => e.kind(),
            Error::Render(e) => e.kind(),
            Error::Fetch(_) => "fetch-failed",
            Error::InsufficientCredits { .. } => "insufficient-credits",
            Error::Payment(_) => "payment-provider",
            Error::BadSignature(_) => "invalid-signature",
            Error::ProcessingRestricted(_) => "processing-restricted",
            Error::NotConfigured(_) => "not-configured",
            Error::AiProvider(_) => "ai-provider",
            Error::Internal(_) => "internal",
        }
    }
}

impl From<pixeld_imaging::Error> for Error {
    fn from(e: pixeld_imaging::Error) -> Self {
        if e.is_client_error() {
            Error::Image(e)
        } else {
            Error::Internal(e.to_string())
        }
    }
}

impl From<pixeld_render::Error> for Error {
    fn from(e: pixeld_render::Error) -> Self {
        match e {
            pixeld_render::Error::Render(m) | pixeld_render::Error::Encode(m) => Error::Internal(m),
            e => Error::Render(e),
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::NotFound => Error::NotFound,
            crate::store::StoreError::Conflict(what) => Error::Conflict(what),
            crate::store::StoreError::Backend(msg) => Error::Internal(msg),
        }
    }
}

/// Result of a use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;
