//! Signing helpers so tests elsewhere can build webhooks the providers would send.
//!
//! Enabled by the `testing` feature. They use the same HMAC as verification, so this
//! crate's own tests also check them against an independent HMAC.

use crate::signature::hmac_sha256;

/// A `Stripe-Signature` header value (`t={t},v1={hex}`) for `body` signed at Unix time `t`.
pub fn stripe_signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    let timestamp = t.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]);
    format!("t={timestamp},v1={}", hex::encode(mac))
}

/// An `X-Razorpay-Signature` header value for `body`.
pub fn razorpay_signature(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
}

/// The `razorpay_signature` Checkout.js would hand back for this order and payment.
pub fn razorpay_payment_signature(key_secret: &str, order_id: &str, payment_id: &str) -> String {
    let message = format!("{order_id}|{payment_id}");
    hex::encode(hmac_sha256(key_secret.as_bytes(), &[message.as_bytes()]))
}

/// The `razorpay_signature` Razorpay appends to a Payment Link's callback URL.
pub fn razorpay_payment_link_signature(
    key_secret: &str,
    link_id: &str,
    reference_id: &str,
    status: &str,
    payment_id: &str,
) -> String {
    let message = format!("{link_id}|{reference_id}|{status}|{payment_id}");
    hex::encode(hmac_sha256(key_secret.as_bytes(), &[message.as_bytes()]))
}
