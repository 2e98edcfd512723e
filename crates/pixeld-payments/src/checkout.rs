//! What the caller asks a provider to sell, and what the provider hands back.

use uuid::Uuid;

/// A request to open a hosted checkout for one of our orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// Our order id: sent as the idempotency key and in metadata/notes for the webhook.
    pub order_id: Uuid,
    /// The organisation that pays, sent in metadata/notes next to the order id.
    pub org_id: Uuid,
    /// What is being bought.
    pub item: CheckoutItem,
    /// Price in minor units (cents, paise); for Stripe subscriptions the price object wins.
    pub amount_minor: i64,
    /// ISO 4217 code in any case; each provider gets the case it wants.
    pub currency: String,
    /// Pre-fills the payer's email when no provider customer exists yet.
    pub customer_email: Option<String>,
    /// An existing provider customer id (Stripe `cus_…`), preferred over the email.
    pub customer_ref: Option<String>,
    /// Where the provider sends the payer after paying (Stripe).
    pub success_url: String,
    /// Where the provider sends the payer who gives up (Stripe).
    pub cancel_url: String,
}

/// What a checkout sells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutItem {
    /// A one-off pack of credits.
    Pack {
        /// Credits the pack adds to the balance.
        credits: i64,
        /// Name shown to the payer.
        name: String,
    },
    /// A recurring plan, priced by a price object that lives at the provider.
    Subscription {
        /// Our plan id.
        plan_id: String,
        /// The provider's price id (Stripe `price_…`).
        provider_price_id: String,
    },
}

/// An opened checkout.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkout {
    /// The provider's id for it: a Stripe session `cs_…` or a Razorpay order `order_…`.
    pub provider_ref: String,
    /// Hosted page to redirect the payer to (Stripe).
    pub url: Option<String>,
    /// Options for the provider's browser widget (Razorpay Checkout.js); holds no secret.
    pub client_payload: Option<serde_json::Value>,
}
