//! Stripe: Checkout Sessions, Billing Portal sessions and `Stripe-Signature` webhooks.

use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use subtle::Choice;

use crate::event::{Fields, parse_json};
use crate::signature::{hex_matches, hmac_sha256};
use crate::{
    Checkout, CheckoutItem, CheckoutRequest, EventKind, PaymentError, PaymentEvent,
    PaymentProvider, WebhookError, rest,
};

/// How far a webhook's signed timestamp may be from now, either way (Stripe's default).
pub const STRIPE_WEBHOOK_TOLERANCE_SECS: u64 = 300;

/// Credentials and endpoint for [`Stripe`].
#[derive(Clone)]
pub struct StripeConfig {
    /// API root, `https://api.stripe.com` unless a test points it elsewhere.
    pub api_base: String,
    /// Secret API key `sk_…` (or a restricted `rk_…`).
    pub secret_key: String,
    /// The webhook endpoint's signing secret `whsec_…`.
    pub webhook_secret: String,
}

impl StripeConfig {
    /// Stripe's production API with the given secrets.
    pub fn new(secret_key: impl Into<String>, webhook_secret: impl Into<String>) -> Self {
        Self {
            api_base: "https://api.stripe.com".to_owned(),
            secret_key: secret_key.into(),
            webhook_secret: webhook_secret.into(),
        }
    }
}

// Secrets stay out of logs.
impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("secret_key", &"<redacted>")
            .field("webhook_secret", &"<redacted>")
            .finish()
    }
}

/// Stripe as a [`PaymentProvider`].
#[derive(Debug, Clone)]
pub struct Stripe {
    config: StripeConfig,
    http: reqwest::Client,
}

impl Stripe {
    /// A Stripe client over the caller's HTTP client.
    pub fn new(config: StripeConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    fn post_form(&self, path: &str, form: &[(&str, String)]) -> reqwest::RequestBuilder {
        let base = self.config.api_base.trim_end_matches('/');
        self.http
            .post(format!("{base}{path}"))
            .bearer_auth(&self.config.secret_key)
            .form(form)
    }
}

#[derive(Deserialize)]
struct SessionAnswer {
    id: String,
    url: Option<String>,
}

#[derive(Deserialize)]
struct PortalAnswer {
    url: String,
}

fn stripe_error_message(body: &Value) -> Option<&str> {
    body.pointer("/error/message")?.as_str()
}

#[async_trait]
impl PaymentProvider for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    /// `POST /v1/checkout/sessions`: a hosted page in `payment` mode for packs (inline
    /// price data) or `subscription` mode for plans (the plan's Stripe price).
    async fn create_checkout(&self, req: &CheckoutRequest) -> Result<Checkout, PaymentError> {
        let order_id = req.order_id.to_string();
        let mut form: Vec<(&str, String)> = Vec::with_capacity(14);
        match &req.item {
            CheckoutItem::Pack { name, .. } => {
                form.push(("mode", "payment".to_owned()));
                form.push((
                    "line_items[0][price_data][currency]",
                    req.currency.to_ascii_lowercase(),
                ));
                form.push((
                    "line_items[0][price_data][unit_amount]",
                    req.amount_minor.to_string(),
                ));
                form.push((
                    "line_items[0][price_data][product_data][name]",
                    name.clone(),
                ));
            }
            CheckoutItem::Subscription {
                provider_price_id, ..
            } => {
                form.push(("mode", "subscription".to_owned()));
                form.push(("line_items[0][price]", provider_price_id.clone()));
            }
        }
        form.push(("line_items[0][quantity]", "1".to_owned()));
        form.push(("client_reference_id", order_id.clone()));
        form.push(("metadata[order_id]", order_id.clone()));
        form.push(("metadata[org_id]", req.org_id.to_string()));
        form.push(("success_url", req.success_url.clone()));
        form.push(("cancel_url", req.cancel_url.clone()));
        // Stripe refuses both at once; a known customer wins over a pre-filled email.
        if let Some(customer) = &req.customer_ref {
            form.push(("customer", customer.clone()));
        } else if let Some(email) = &req.customer_email {
            form.push(("customer_email", email.clone()));
        }

        let request = self
            .post_form("/v1/checkout/sessions", &form)
            .header("Idempotency-Key", order_id);
        let session: SessionAnswer = rest::call(request, stripe_error_message).await?;
        Ok(Checkout {
            provider_ref: session.id,
            url: session.url,
            client_payload: None,
        })
    }

    /// `POST /v1/billing_portal/sessions` for the customer; answers the portal's URL.
    async fn portal_url(
        &self,
        customer_ref: &str,
        return_url: &str,
    ) -> Result<String, PaymentError> {
        let form = [
            ("customer", customer_ref.to_owned()),
            ("return_url", return_url.to_owned()),
        ];
        let request = self.post_form("/v1/billing_portal/sessions", &form);
        let portal: PortalAnswer = rest::call(request, stripe_error_message).await?;
        Ok(portal.url)
    }

    /// Checks `Stripe-Signature: t=…,v1=…` as Stripe documents: HMAC-SHA256 of
    /// `"{t}.{raw body}"` under the endpoint secret, any `v1` may match (secret rotation),
    /// and `t` within [`STRIPE_WEBHOOK_TOLERANCE_SECS`] of `now` so old deliveries cannot
    /// be replayed.
    fn parse_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: time::OffsetDateTime,
    ) -> Result<PaymentEvent, WebhookError> {
        let header = headers
            .get("stripe-signature")
            .ok_or_else(|| bad("the Stripe-Signature header is missing"))?
            .to_str()
            .map_err(|_| bad("the Stripe-Signature header is not ASCII"))?;
        let signed = SignatureHeader::parse(header)?;

        let expected = hmac_sha256(
            self.config.webhook_secret.as_bytes(),
            &[signed.timestamp_raw.as_bytes(), b".", body],
        );
        // Check every candidate, not stopping at the first match.
        let matched = signed.v1.iter().fold(Choice::from(0), |any, candidate| {
            any | hex_matches(&expected, candidate)
        });
        if !bool::from(matched) {
            return Err(bad(
                "no v1 signature in Stripe-Signature matches this body and secret",
            ));
        }
        if now.unix_timestamp().abs_diff(signed.timestamp) > STRIPE_WEBHOOK_TOLERANCE_SECS {
            return Err(WebhookError::StaleTimestamp);
        }

        parse_event(&parse_json(body)?)
    }
}

fn bad(message: &str) -> WebhookError {
    WebhookError::BadSignature(message.to_owned())
}

/// The parts of a `Stripe-Signature` header we use; `v0` and unknown schemes are ignored.
struct SignatureHeader<'a> {
    /// `t` exactly as sent: the signature covers these characters, not a re-formatted number.
    timestamp_raw: &'a str,
    timestamp: i64,
    v1: Vec<&'a str>,
}

impl<'a> SignatureHeader<'a> {
    fn parse(header: &'a str) -> Result<Self, WebhookError> {
        let mut timestamp_raw = None;
        let mut v1 = Vec::new();
        for element in header.split(',') {
            match element.trim().split_once('=') {
                Some(("t", value)) => timestamp_raw = Some(value),
                Some(("v1", value)) => v1.push(value),
                _ => {}
            }
        }
        let timestamp_raw =
            timestamp_raw.ok_or_else(|| bad("the Stripe-Signature header has no t= timestamp"))?;
        let timestamp = timestamp_raw
            .parse()
            .map_err(|_| bad("the Stripe-Signature timestamp t= is not a number"))?;
        if v1.is_empty() {
            return Err(bad("the Stripe-Signature header has no v1= signature"));
        }
        Ok(Self {
            timestamp_raw,
            timestamp,
            v1,
        })
    }
}

/// Reads a Stripe event envelope `{id, type, created, data: {object}}`.
fn parse_event(event: &Value) -> Result<PaymentEvent, WebhookError> {
    let envelope = Fields::new("Stripe", event);
    let id = envelope.str("/id")?;
    let event_type = envelope.str("/type")?;
    let created = envelope.opt_i64("/created");
    let object = event
        .pointer("/data/object")
        .filter(|o| o.is_object())
        .ok_or_else(|| WebhookError::Malformed(format!("{event_type} event has no data.object")))?;
    let o = Fields::new(&event_type, object);

    let kind = match event_type.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            let payment_status = o.opt_str("/payment_status");
            EventKind::CheckoutCompleted {
                order_id: o
                    .opt_uuid("/metadata/order_id")
                    .or_else(|| o.opt_uuid("/client_reference_id")),
                provider_ref: o.str("/id")?,
                customer_ref: o.opt_ref("/customer"),
                subscription_ref: o.opt_ref("/subscription"),
                payment_ref: o.opt_ref("/payment_intent"),
                amount_minor: o.opt_i64("/amount_total"),
                currency: o.opt_str("/currency"),
                paid: matches!(
                    payment_status.as_deref(),
                    Some("paid" | "no_payment_required")
                ),
            }
        }
        // The top-level invoice period is the period *before* the one a subscription
        // invoice bills for, so the period comes from the first line.
        "invoice.paid" => EventKind::InvoicePaid {
            invoice_ref: o.str("/id")?,
            customer_ref: o.reference("/customer")?,
            subscription_ref: o
                .opt_ref("/parent/subscription_details/subscription")
                .or_else(|| o.opt_ref("/subscription")),
            amount_minor: o.i64("/amount_paid")?,
            currency: o.str("/currency")?,
            period_start: o.opt_i64("/lines/data/0/period/start"),
            period_end: o.opt_i64("/lines/data/0/period/end"),
            price_ref: o
                .opt_ref("/lines/data/0/pricing/price_details/price")
                .or_else(|| o.opt_ref("/lines/data/0/price")),
        },
        "customer.subscription.created" | "customer.subscription.updated" => {
            EventKind::SubscriptionUpdated {
                subscription_ref: o.str("/id")?,
                customer_ref: o.reference("/customer")?,
                status: o.str("/status")?,
                price_ref: o.opt_ref("/items/data/0/price"),
                current_period_end: o
                    .opt_i64("/current_period_end")
                    .or_else(|| o.opt_i64("/items/data/0/current_period_end")),
                cancel_at_period_end: o
                    .get("/cancel_at_period_end")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }
        }
        "customer.subscription.deleted" => EventKind::SubscriptionDeleted {
            subscription_ref: o.str("/id")?,
            customer_ref: o.reference("/customer")?,
        },
        "charge.refunded" => EventKind::ChargeRefunded {
            payment_ref: o.opt_ref("/payment_intent"),
            charge_ref: o.str("/id")?,
            amount_refunded_minor: o.i64("/amount_refunded")?,
            currency: o.str("/currency")?,
        },
        _ => EventKind::Other,
    };
    Ok(PaymentEvent {
        id,
        provider: "stripe",
        event_type,
        created,
        kind,
    })
}
