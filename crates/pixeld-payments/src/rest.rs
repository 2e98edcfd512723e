//! Sending one REST call and reading the provider's answer or its error object.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::PaymentError;

/// Longest slice of a non-JSON error body quoted back in [`PaymentError::Provider`].
const QUOTED_BODY_CHARS: usize = 200;

/// Sends `request` and decodes a 2xx answer as `T`; any other status becomes
/// [`PaymentError::Provider`] with the message `error_message` finds in the error object.
pub(crate) async fn call<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    error_message: fn(&Value) -> Option<&str>,
) -> Result<T, PaymentError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    if !status.is_success() {
        let parsed = serde_json::from_slice::<Value>(&body).ok();
        let message = match parsed.as_ref().and_then(error_message) {
            Some(message) => message.to_owned(),
            None => {
                let text = String::from_utf8_lossy(&body);
                let quoted: String = text.chars().take(QUOTED_BODY_CHARS).collect();
                if quoted.trim().is_empty() {
                    status.canonical_reason().unwrap_or("no message").to_owned()
                } else {
                    quoted
                }
            }
        };
        return Err(PaymentError::Provider {
            status: status.as_u16(),
            message,
        });
    }
    serde_json::from_slice(&body).map_err(|e| PaymentError::Malformed(e.to_string()))
}

/// Describes a transport failure with its causes (reqwest's own message is terse).
fn transport(error: reqwest::Error) -> PaymentError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    PaymentError::Transport(message)
}
