//! Razorpay: Orders for Checkout.js, Payment Links for a hosted page, payment and callback
//! signatures, and `X-Razorpay-Signature` webhooks.

use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::event::{Fields, parse_json};
use crate::signature::{hex_matches, hmac_sha256};
use crate::{
    Checkout, CheckoutItem, CheckoutRequest, EventKind, PaymentError, PaymentEvent,
    PaymentProvider, WebhookError, rest,
};

/// Credentials and endpoint for [`Razorpay`].
#[derive(Clone)]
pub struct RazorpayConfig {
    /// API root, `https://api.razorpay.com` unless a test points it elsewhere.
    pub api_base: String,
    /// Public key id `rzp_live_…`, also handed to Checkout.js.
    pub key_id: String,
    /// Secret paired with the key id; never leaves the server.
    pub key_secret: String,
    /// The secret set on the webhook in Razorpay's dashboard.
    pub webhook_secret: String,
}

impl RazorpayConfig {
    /// Razorpay's production API with the given credentials.
    pub fn new(
        key_id: impl Into<String>,
        key_secret: impl Into<String>,
        webhook_secret: impl Into<String>,
    ) -> Self {
        Self {
            api_base: "https://api.razorpay.com".to_owned(),
            key_id: key_id.into(),
            key_secret: key_secret.into(),
            webhook_secret: webhook_secret.into(),
        }
    }
}

// Secrets stay out of logs; the key id is public.
impl fmt::Debug for RazorpayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RazorpayConfig")
            .field("api_base", &self.api_base)
            .field("key_id", &self.key_id)
            .field("key_secret", &"<redacted>")
            .field("webhook_secret", &"<redacted>")
            .finish()
    }
}

/// Razorpay as a [`PaymentProvider`], for credit packs only.
///
/// Subscriptions and the customer portal answer [`PaymentError::Unsupported`]: Razorpay
/// subscriptions are a separate Plans/Subscriptions API this crate does not drive, and
/// Razorpay has no hosted portal.
#[derive(Debug, Clone)]
pub struct Razorpay {
    config: RazorpayConfig,
    http: reqwest::Client,
}

impl Razorpay {
    /// A Razorpay client over the caller's HTTP client.
    pub fn new(config: RazorpayConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// Checks what Checkout.js hands the browser after a payment: `razorpay_signature` must
    /// be hex HMAC-SHA256 of `"{razorpay_order_id}|{razorpay_payment_id}"` under the key
    /// secret. Compared in constant time.
    pub fn verify_payment_signature(
        &self,
        order_id: &str,
        payment_id: &str,
        signature: &str,
    ) -> bool {
        let expected = hmac_sha256(
            self.config.key_secret.as_bytes(),
            &[order_id.as_bytes(), b"|", payment_id.as_bytes()],
        );
        hex_matches(&expected, signature).into()
    }
}

impl Razorpay {
    /// A Payment Link: Razorpay's own hosted page, for sites that load no third-party script
    /// (Checkout.js comes from Razorpay's CDN). `POST /v1/payment_links` with our order id as
    /// `reference_id`; the buyer comes back to `success_url` with a signed callback (see
    /// [`Razorpay::verify_payment_link_signature`]) and the `payment_link.paid` webhook follows.
    /// Razorpay sends no email or SMS of its own for it.
    pub async fn create_payment_link(
        &self,
        req: &CheckoutRequest,
    ) -> Result<Checkout, PaymentError> {
        let (credits, name) = match &req.item {
            CheckoutItem::Pack { credits, name } => (credits, name),
            CheckoutItem::Subscription { .. } => {
                return Err(PaymentError::Unsupported(
                    "subscriptions on Razorpay (credit packs only)",
                ));
            }
        };
        let mut body = json!({
            "amount": req.amount_minor,
            "currency": req.currency.to_ascii_uppercase(),
            "accept_partial": false,
            "reference_id": req.order_id.to_string(),
            "description": format!("{name}: {credits} credits"),
            "notify": {"sms": false, "email": false},
            "reminder_enable": false,
            "notes": {
                "order_id": req.order_id.to_string(),
                "org_id": req.org_id.to_string(),
            },
            "callback_url": req.success_url,
            "callback_method": "get",
        });
        if let Some(email) = &req.customer_email {
            body["customer"] = json!({ "email": email });
        }
        let base = self.config.api_base.trim_end_matches('/');
        let request = self
            .http
            .post(format!("{base}/v1/payment_links"))
            .basic_auth(&self.config.key_id, Some(&self.config.key_secret))
            .json(&body);
        let link: LinkAnswer = rest::call(request, razorpay_error_message).await?;
        Ok(Checkout {
            provider_ref: link.id,
            url: Some(link.short_url),
            client_payload: None,
        })
    }

    /// Checks the query Razorpay adds to a Payment Link's callback URL: `razorpay_signature`
    /// must be hex HMAC-SHA256 of
    /// `"{payment_link_id}|{payment_link_reference_id}|{payment_link_status}|{payment_id}"`
    /// under the key secret. Compared in constant time.
    pub fn verify_payment_link_signature(
        &self,
        link_id: &str,
        reference_id: &str,
        status: &str,
        payment_id: &str,
        signature: &str,
    ) -> bool {
        let expected = hmac_sha256(
            self.config.key_secret.as_bytes(),
            &[
                link_id.as_bytes(),
                b"|",
                reference_id.as_bytes(),
                b"|",
                status.as_bytes(),
                b"|",
                payment_id.as_bytes(),
            ],
        );
        hex_matches(&expected, signature).into()
    }
}

#[derive(Deserialize)]
struct LinkAnswer {
    id: String,
    short_url: String,
}

#[derive(Deserialize)]
struct OrderAnswer {
    id: String,
    amount: i64,
    currency: String,
}

fn razorpay_error_message(body: &Value) -> Option<&str> {
    body.pointer("/error/description")?.as_str()
}

#[async_trait]
impl PaymentProvider for Razorpay {
    fn name(&self) -> &'static str {
        "razorpay"
    }

    /// `POST /v1/orders`, then the options Checkout.js needs to take the payment. Razorpay
    /// has no idempotency key for orders: our order id goes in `receipt` and `notes`.
    async fn create_checkout(&self, req: &CheckoutRequest) -> Result<Checkout, PaymentError> {
        let (credits, name) = match &req.item {
            CheckoutItem::Pack { credits, name } => (credits, name),
            CheckoutItem::Subscription { .. } => {
                return Err(PaymentError::Unsupported(
                    "subscriptions on Razorpay (credit packs only)",
                ));
            }
        };
        let notes = json!({
            "order_id": req.order_id.to_string(),
            "org_id": req.org_id.to_string(),
        });
        let body = json!({
            "amount": req.amount_minor,
            "currency": req.currency.to_ascii_uppercase(),
            "receipt": req.order_id.to_string(),
            "notes": notes,
        });
        let base = self.config.api_base.trim_end_matches('/');
        let request = self
            .http
            .post(format!("{base}/v1/orders"))
            .basic_auth(&self.config.key_id, Some(&self.config.key_secret))
            .json(&body);
        let order: OrderAnswer = rest::call(request, razorpay_error_message).await?;

        let mut payload = json!({
            "key": self.config.key_id,
            "order_id": order.id,
            "amount": order.amount,
            "currency": order.currency,
            "name": name,
            "description": format!("{credits} credits"),
            "notes": notes,
        });
        if let Some(email) = &req.customer_email {
            payload["prefill"] = json!({ "email": email });
        }
        Ok(Checkout {
            provider_ref: order.id,
            url: None,
            client_payload: Some(payload),
        })
    }

    async fn portal_url(
        &self,
        _customer_ref: &str,
        _return_url: &str,
    ) -> Result<String, PaymentError> {
        Err(PaymentError::Unsupported("a customer portal on Razorpay"))
    }

    /// Checks `X-Razorpay-Signature` = hex HMAC-SHA256 of the raw body under the webhook
    /// secret, as Razorpay documents. There is no timestamp check: Razorpay signs no
    /// timestamp, so replays are stopped only by de-duplicating on the event id, which
    /// comes from the `X-Razorpay-Event-Id` header (unsigned, so the ledger should also be
    /// idempotent on the payment id).
    fn parse_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        _now: time::OffsetDateTime,
    ) -> Result<PaymentEvent, WebhookError> {
        let signature = headers
            .get("x-razorpay-signature")
            .ok_or_else(|| {
                WebhookError::BadSignature("the X-Razorpay-Signature header is missing".to_owned())
            })?
            .to_str()
            .map_err(|_| {
                WebhookError::BadSignature(
                    "the X-Razorpay-Signature header is not ASCII".to_owned(),
                )
            })?;
        let expected = hmac_sha256(self.config.webhook_secret.as_bytes(), &[body]);
        if !bool::from(hex_matches(&expected, signature)) {
            return Err(WebhookError::BadSignature(
                "X-Razorpay-Signature does not match this body and secret".to_owned(),
            ));
        }
        let id = headers
            .get("x-razorpay-event-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                WebhookError::Malformed("the X-Razorpay-Event-Id header is missing".to_owned())
            })?
            .trim()
            .to_owned();
        parse_event(id, &parse_json(body)?)
    }
}

/// Reads a Razorpay event `{entity: "event", event, payload: {…}, created_at}`.
fn parse_event(id: String, event: &Value) -> Result<PaymentEvent, WebhookError> {
    let envelope = Fields::new("Razorpay", event);
    let event_type = envelope.str("/event")?;
    let created = envelope.opt_i64("/created_at");
    let e = Fields::new(&event_type, event);

    let kind = match event_type.as_str() {
        "payment.captured" => EventKind::PaymentCaptured {
            order_ref: e.opt_str("/payload/payment/entity/order_id"),
            payment_ref: e.str("/payload/payment/entity/id")?,
            amount_minor: e.i64("/payload/payment/entity/amount")?,
            currency: e.str("/payload/payment/entity/currency")?,
            // Razorpay sends empty notes as `[]`, which simply has no order_id.
            order_id: e.opt_uuid("/payload/payment/entity/notes/order_id"),
        },
        // A Payment Link paid: the link is what the order was opened with, and its
        // `reference_id` is our order id.
        "payment_link.paid" => EventKind::PaymentCaptured {
            order_ref: e.opt_str("/payload/payment_link/entity/id"),
            payment_ref: e.str("/payload/payment/entity/id")?,
            amount_minor: e.i64("/payload/payment/entity/amount")?,
            currency: e.str("/payload/payment/entity/currency")?,
            order_id: e.opt_uuid("/payload/payment_link/entity/reference_id"),
        },
        "refund.processed" => EventKind::RefundProcessed {
            payment_ref: e.str("/payload/refund/entity/payment_id")?,
            refund_ref: e.str("/payload/refund/entity/id")?,
            amount_minor: e.i64("/payload/refund/entity/amount")?,
            currency: e.str("/payload/refund/entity/currency")?,
        },
        _ => EventKind::Other,
    };
    Ok(PaymentEvent {
        id,
        provider: "razorpay",
        event_type,
        created,
        kind,
    })
}
