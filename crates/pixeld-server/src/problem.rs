//! Errors as RFC 9457 `application/problem+json`, one stable `type` per outcome.
//!
//! Every problem `type` is `/problems/{slug}` relative to the server, and that URL serves a
//! page explaining it. The `request_id` member is added by the request-id middleware.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pixeld_core::error::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem; stable across versions.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation")]
    pub type_: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, in words a user understands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Each invalid input field (for `validation`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
    /// The scope that is missing (for `missing-scope`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The id of this request, to quote when asking for help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One invalid field.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ProblemField {
    /// The field's name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Every problem kind the API answers with: slug, status, title.
pub const KINDS: &[(&str, u16, &str)] = &[
    ("bad-request", 400, "The request is malformed"),
    ("validation", 422, "The input is not valid"),
    ("bad-credentials", 401, "The credentials are not valid"),
    ("unauthenticated", 401, "Authentication required"),
    ("missing-scope", 403, "The token lacks a scope"),
    ("forbidden", 403, "Not allowed"),
    ("csrf", 403, "Cross-site request refused"),
    ("email-not-verified", 403, "Email address not verified"),
    ("account-disabled", 403, "Account disabled"),
    ("not-found", 404, "Not found"),
    ("method-not-allowed", 405, "Method not allowed"),
    ("conflict", 409, "Already exists"),
    ("state-conflict", 409, "Not possible in the current state"),
    (
        "idempotency-in-flight",
        409,
        "A request with this Idempotency-Key is still running",
    ),
    (
        "invalid-token",
        400,
        "The link or code is invalid or has expired",
    ),
    ("payload-too-large", 413, "The request body is too large"),
    ("unsupported-media-type", 415, "Unsupported content type"),
    (
        "idempotency-key-reused",
        422,
        "The Idempotency-Key was used with a different request",
    ),
    ("rate-limited", 429, "Too many requests"),
    ("empty-input", 422, "The image is empty"),
    ("unsupported-format", 415, "Unsupported image format"),
    ("too-large", 413, "The image is too large"),
    ("too-many-pixels", 422, "The image has too many pixels"),
    (
        "too-many-frames",
        422,
        "The animation has too many frames for its size",
    ),
    (
        "dimension-too-large",
        422,
        "The image is too wide or too tall",
    ),
    ("corrupt-image", 422, "The image is corrupt or truncated"),
    (
        "resource-limit",
        422,
        "Decoding the image would exceed the memory limit",
    ),
    ("invalid-options", 422, "The processing options are invalid"),
    ("encode-failed", 500, "Encoding failed"),
    ("fetch-failed", 422, "The URL could not be fetched"),
    ("invalid-template", 422, "The template is not valid"),
    (
        "invalid-render-data",
        422,
        "The data does not fit the template",
    ),
    (
        "render-image-failed",
        422,
        "An image layer's source could not be used",
    ),
    (
        "unknown-font",
        422,
        "The template names a font that is not available",
    ),
    ("invalid-font", 422, "The font file could not be read"),
    ("render-failed", 500, "The render failed"),
    (
        "insufficient-credits",
        402,
        "The balance does not cover this",
    ),
    (
        "payment-provider",
        502,
        "The payment provider did not complete the request",
    ),
    ("invalid-signature", 400, "The signature does not verify"),
    (
        "processing-restricted",
        403,
        "Processing of this data is restricted",
    ),
    (
        "not-configured",
        409,
        "This feature is not set up on this instance",
    ),
    (
        "ai-provider",
        502,
        "The AI provider did not complete the request",
    ),
    ("internal", 500, "Internal error"),
    ("timeout", 503, "The request took too long"),
];

/// An error answer of the HTTP API.
#[derive(Debug)]
pub struct ApiError {
    slug: &'static str,
    detail: Option<String>,
    errors: Option<Vec<FieldError>>,
    scope: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A problem of a kind from [`KINDS`] with a detail message.
    pub fn new(slug: &'static str, detail: impl Into<String>) -> Self {
        debug_assert!(
            KINDS.iter().any(|k| k.0 == slug),
            "unknown problem kind {slug}"
        );
        Self {
            slug,
            detail: Some(detail.into()),
            errors: None,
            scope: None,
            retry_after: None,
        }
    }

    /// A 400 for malformed input.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new("bad-request", detail)
    }

    /// A 429 that tells the client when to retry.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new("rate-limited", "slow down and retry later")
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        let (_, status, title) = KINDS.iter().find(|k| k.0 == self.slug).copied().unwrap_or((
            "internal",
            500,
            "Internal error",
        ));
        Problem {
            type_: format!("/problems/{}", self.slug),
            title: title.into(),
            status,
            detail: self.detail.clone(),
            errors: self.errors.as_ref().map(|v| {
                v.iter()
                    .map(|e| ProblemField {
                        field: e.field.clone(),
                        message: e.message.clone(),
                    })
                    .collect()
            }),
            scope: self.scope.clone(),
            request_id: None,
        }
    }
}

impl From<pixeld_core::Error> for ApiError {
    fn from(e: pixeld_core::Error) -> Self {
        use pixeld_core::Error as E;
        let slug = e.kind();
        match e {
            E::Invalid(errors) => {
                let detail = errors
                    .iter()
                    .map(|f| format!("{} {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                Self {
                    errors: Some(errors),
                    ..Self::new(slug, detail)
                }
            }
            E::MissingScope(scope) => Self {
                scope: Some(scope.to_string()),
                ..Self::new(
                    slug,
                    format!("this token lacks the `{scope}` scope; create a token that has it"),
                )
            },
            E::Internal(msg) => {
                // Details go to the log, never to the client.
                tracing::error!(error = %msg, "internal error");
                Self::new(
                    slug,
                    "something went wrong on our side; quote the request_id when reporting it",
                )
            }
            other => {
                let detail = other.to_string();
                Self::new(slug, detail)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let p = self.problem();
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&p).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if p.status == 401 {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pixeld\""),
            );
        }
        resp
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Turns a plain error answer (from axum's own extractors or the router) into a problem, so every
/// error a client sees has the same shape.
pub fn problem_for_status(status: StatusCode, detail: Option<String>) -> ApiError {
    let slug = match status.as_u16() {
        400 => "bad-request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not-found",
        405 => "method-not-allowed",
        413 => "payload-too-large",
        415 => "unsupported-media-type",
        422 => "validation",
        429 => "rate-limited",
        503 | 408 => "timeout",
        _ => "internal",
    };
    let detail = detail.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    ApiError::new(slug, detail)
}
