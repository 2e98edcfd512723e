//! Verified webhook events, reduced to what a credit ledger needs.

use serde_json::Value;
use uuid::Uuid;

use crate::WebhookError;

/// A webhook event whose signature has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEvent {
    /// The provider's event id, the key to de-duplicate redeliveries by.
    pub id: String,
    /// Which provider sent it ("stripe", "razorpay").
    pub provider: &'static str,
    /// The provider's raw event type (`checkout.session.completed`, `payment.captured`).
    pub event_type: String,
    /// When the provider created the event, in Unix seconds.
    pub created: Option<i64>,
    /// What happened, in the fields a ledger acts on.
    pub kind: EventKind,
}

/// What an event means for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Stripe `checkout.session.completed` (and `checkout.session.async_payment_succeeded`).
    CheckoutCompleted {
        /// Our order id, from `metadata.order_id` or `client_reference_id`.
        order_id: Option<Uuid>,
        /// The checkout session id `cs_…`.
        provider_ref: String,
        /// The Stripe customer `cus_…`.
        customer_ref: Option<String>,
        /// The subscription `sub_…` the session started, for subscription checkouts.
        subscription_ref: Option<String>,
        /// The payment intent `pi_…`, for one-off payments.
        payment_ref: Option<String>,
        /// Total charged, in minor units.
        amount_minor: Option<i64>,
        /// Currency of the total, as Stripe writes it (lowercase).
        currency: Option<String>,
        /// True when `payment_status` is `paid` or `no_payment_required`.
        paid: bool,
    },
    /// Stripe `invoice.paid`: a subscription period has been paid for.
    InvoicePaid {
        /// The invoice `in_…`.
        invoice_ref: String,
        /// The Stripe customer `cus_…`.
        customer_ref: String,
        /// The subscription `sub_…` (top-level in old API versions, under `parent` in new).
        subscription_ref: Option<String>,
        /// Amount paid, in minor units.
        amount_minor: i64,
        /// Currency, as Stripe writes it (lowercase).
        currency: String,
        /// Start of the billed period (first line item), Unix seconds.
        period_start: Option<i64>,
        /// End of the billed period (first line item), Unix seconds.
        period_end: Option<i64>,
        /// The price `price_…` of the first line item.
        price_ref: Option<String>,
    },
    /// Stripe `customer.subscription.created` or `customer.subscription.updated`.
    SubscriptionUpdated {
        /// The subscription `sub_…`.
        subscription_ref: String,
        /// The Stripe customer `cus_…`.
        customer_ref: String,
        /// Stripe's status (`active`, `past_due`, `canceled`, …).
        status: String,
        /// The price `price_…` of the first item.
        price_ref: Option<String>,
        /// End of the current period (top-level in old API versions, per item in new).
        current_period_end: Option<i64>,
        /// True when the subscription ends at the end of the current period.
        cancel_at_period_end: bool,
    },
    /// Stripe `customer.subscription.deleted`: the subscription has ended.
    SubscriptionDeleted {
        /// The subscription `sub_…`.
        subscription_ref: String,
        /// The Stripe customer `cus_…`.
        customer_ref: String,
    },
    /// Stripe `charge.refunded`.
    ChargeRefunded {
        /// The payment intent `pi_…` the charge belongs to.
        payment_ref: Option<String>,
        /// The charge `ch_…`.
        charge_ref: String,
        /// Total refunded so far on this charge, in minor units.
        amount_refunded_minor: i64,
        /// Currency, as Stripe writes it (lowercase).
        currency: String,
    },
    /// Razorpay `payment.captured`: the money is ours.
    PaymentCaptured {
        /// The Razorpay order `order_…` (absent for payments made without an order).
        order_ref: Option<String>,
        /// The payment `pay_…`.
        payment_ref: String,
        /// Amount captured, in minor units.
        amount_minor: i64,
        /// Currency, as Razorpay writes it (uppercase).
        currency: String,
        /// Our order id, from `notes.order_id`.
        order_id: Option<Uuid>,
    },
    /// Razorpay `refund.processed`.
    RefundProcessed {
        /// The payment `pay_…` refunded.
        payment_ref: String,
        /// The refund `rfnd_…`.
        refund_ref: String,
        /// Amount of this refund, in minor units.
        amount_minor: i64,
        /// Currency, as Razorpay writes it (uppercase).
        currency: String,
    },
    /// An event type this crate does not handle: acknowledge it and log `event_type`.
    Other,
}

/// Reads fields of an event's JSON, naming the event and the field when one is missing.
pub(crate) struct Fields<'a> {
    event_type: &'a str,
    object: &'a Value,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(event_type: &'a str, object: &'a Value) -> Self {
        Self { event_type, object }
    }

    /// The value at a JSON pointer, `None` for absent or null.
    pub(crate) fn get(&self, pointer: &str) -> Option<&'a Value> {
        self.object.pointer(pointer).filter(|v| !v.is_null())
    }

    pub(crate) fn opt_str(&self, pointer: &str) -> Option<String> {
        self.get(pointer)?.as_str().map(str::to_owned)
    }

    /// An id that Stripe sends as a string, or as an object when the field is expanded.
    pub(crate) fn opt_ref(&self, pointer: &str) -> Option<String> {
        let value = self.get(pointer)?;
        value
            .as_str()
            .or_else(|| value.get("id").and_then(Value::as_str))
            .map(str::to_owned)
    }

    pub(crate) fn opt_i64(&self, pointer: &str) -> Option<i64> {
        self.get(pointer)?.as_i64()
    }

    pub(crate) fn opt_uuid(&self, pointer: &str) -> Option<Uuid> {
        self.get(pointer)?.as_str()?.parse().ok()
    }

    pub(crate) fn str(&self, pointer: &str) -> Result<String, WebhookError> {
        self.opt_str(pointer).ok_or_else(|| self.missing(pointer))
    }

    pub(crate) fn reference(&self, pointer: &str) -> Result<String, WebhookError> {
        self.opt_ref(pointer).ok_or_else(|| self.missing(pointer))
    }

    pub(crate) fn i64(&self, pointer: &str) -> Result<i64, WebhookError> {
        self.opt_i64(pointer).ok_or_else(|| self.missing(pointer))
    }

    fn missing(&self, pointer: &str) -> WebhookError {
        WebhookError::Malformed(format!(
            "{} event has no {pointer} of the documented type",
            self.event_type
        ))
    }
}

/// Parses a verified body as a JSON object.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, WebhookError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("body is not JSON: {e}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(WebhookError::Malformed(
            "body is not a JSON object".to_owned(),
        ))
    }
}
