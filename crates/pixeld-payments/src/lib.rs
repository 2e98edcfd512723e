//! pixeld's payment providers: Stripe and Razorpay over their REST APIs.
//!
//! The crate does two things and keeps no state:
//! - it opens a hosted checkout ([`PaymentProvider::create_checkout`]) and, on Stripe, a
//!   customer portal session ([`PaymentProvider::portal_url`]);
//! - it verifies a provider's signed webhook exactly as the provider documents and turns it
//!   into a [`PaymentEvent`] ([`PaymentProvider::parse_webhook`]).
//!
//! What it deliberately does not do:
//! - touch card data: customers pay on the provider's page (Stripe Checkout) or in the
//!   provider's widget (Razorpay Checkout.js); pixeld only ever sees ids and amounts;
//! - store anything: there is no database here. De-duplicating webhooks (by
//!   [`PaymentEvent::id`]) and processing each event idempotently are the caller's job,
//!   because providers deliver at least once and retry;
//! - depend on pixeld's domain: bytes and plain structs in, plain structs out.
//!
//! The caller passes in the `reqwest::Client`, so it controls TLS, proxies and timeouts.

mod checkout;
mod error;
mod event;
mod razorpay;
mod rest;
mod signature;
mod stripe;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use checkout::{Checkout, CheckoutItem, CheckoutRequest};
pub use error::{PaymentError, WebhookError};
pub use event::{EventKind, PaymentEvent};
pub use razorpay::{Razorpay, RazorpayConfig};
pub use stripe::{STRIPE_WEBHOOK_TOLERANCE_SECS, Stripe, StripeConfig};

use async_trait::async_trait;

/// One payment provider: hosted checkouts out, verified webhook events in.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// The provider's stable name, as stored with orders and events ("stripe", "razorpay").
    fn name(&self) -> &'static str;

    /// Opens a hosted checkout for one order; `req.order_id` is the idempotency key.
    async fn create_checkout(&self, req: &CheckoutRequest) -> Result<Checkout, PaymentError>;

    /// Opens a self-service billing portal for an existing provider customer.
    async fn portal_url(
        &self,
        customer_ref: &str,
        return_url: &str,
    ) -> Result<String, PaymentError>;

    /// Verifies a webhook's signature against the raw body, then parses the event.
    fn parse_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: time::OffsetDateTime,
    ) -> Result<PaymentEvent, WebhookError>;
}
