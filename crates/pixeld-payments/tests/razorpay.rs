//! Razorpay as pixeld sees it: the real client against a local server speaking Razorpay's
//! wire format, Checkout.js payment signatures, and webhooks signed the way Razorpay signs.

mod common;

use std::sync::Arc;

use base64::Engine;
use common::{FakeProvider, http_client, now};
use http::HeaderMap;
use pixeld_payments::testing::{
    razorpay_payment_link_signature, razorpay_payment_signature, razorpay_signature,
};
use pixeld_payments::{
    CheckoutItem, CheckoutRequest, EventKind, PaymentError, PaymentProvider, Razorpay,
    RazorpayConfig, WebhookError,
};
use serde_json::{Value, json};
use uuid::Uuid;

const KEY_ID: &str = "rzp_test_1DP5mmOlF5G5ag";
const KEY_SECRET: &str = "thisisthekeysecretofpixeld";
const WEBHOOK_SECRET: &str = "pixeld-razorpay-webhook-secret";

fn order_id() -> Uuid {
    "0197c8a4-6f10-7d3e-9a2b-1c4d5e6f7a8b".parse().unwrap()
}

fn org_id() -> Uuid {
    "0197c8a4-0000-7000-8000-000000000042".parse().unwrap()
}

fn razorpay(api_base: &str) -> Razorpay {
    let mut config = RazorpayConfig::new(KEY_ID, KEY_SECRET, WEBHOOK_SECRET);
    config.api_base = api_base.to_owned();
    Razorpay::new(config, http_client())
}

fn pack_request() -> CheckoutRequest {
    CheckoutRequest {
        order_id: order_id(),
        org_id: org_id(),
        item: CheckoutItem::Pack {
            credits: 500,
            name: "500 credits".to_owned(),
        },
        amount_minor: 149900,
        currency: "inr".to_owned(),
        customer_email: Some("ada@example.com".to_owned()),
        customer_ref: None,
        success_url: "https://pixeld.example/billing/done".to_owned(),
        cancel_url: "https://pixeld.example/billing".to_owned(),
    }
}

/// An order entity as Razorpay's Orders API reference shows it, freshly created.
fn order_answer() -> Value {
    json!({
        "id": "order_IluGWxBm9U8zJ8",
        "entity": "order",
        "amount": 149900,
        "amount_paid": 0,
        "amount_due": 149900,
        "currency": "INR",
        "receipt": order_id().to_string(),
        "offer_id": null,
        "status": "created",
        "attempts": 0,
        "notes": { "order_id": order_id().to_string(), "org_id": org_id().to_string() },
        "created_at": 1751400000
    })
}

#[tokio::test]
async fn buying_a_pack_creates_an_order_for_checkout_js() {
    let server = FakeProvider::answering(200, order_answer()).await;

    let checkout = razorpay(&server.base_url)
        .create_checkout(&pack_request())
        .await
        .expect("a checkout");

    assert_eq!(checkout.provider_ref, "order_IluGWxBm9U8zJ8");
    assert_eq!(checkout.url, None);
    assert_eq!(
        checkout.client_payload,
        Some(json!({
            "key": KEY_ID,
            "order_id": "order_IluGWxBm9U8zJ8",
            "amount": 149900,
            "currency": "INR",
            "name": "500 credits",
            "description": "500 credits",
            "notes": { "order_id": order_id().to_string(), "org_id": org_id().to_string() },
            "prefill": { "email": "ada@example.com" }
        }))
    );

    let sent = server.only_request();
    assert_eq!(sent.method, http::Method::POST);
    assert_eq!(sent.path, "/v1/orders");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{KEY_ID}:{KEY_SECRET}"));
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.json(),
        json!({
            "amount": 149900,
            "currency": "INR",
            "receipt": order_id().to_string(),
            "notes": { "order_id": order_id().to_string(), "org_id": org_id().to_string() }
        })
    );
}

#[tokio::test]
async fn the_browser_payload_never_carries_the_key_secret() {
    let server = FakeProvider::answering(200, order_answer()).await;

    let checkout = razorpay(&server.base_url)
        .create_checkout(&pack_request())
        .await
        .unwrap();

    let payload = checkout.client_payload.unwrap().to_string();
    assert!(!payload.contains(KEY_SECRET));
    assert!(!payload.contains(WEBHOOK_SECRET));
}

#[tokio::test]
async fn a_subscription_on_razorpay_is_unsupported_and_sends_nothing() {
    let server = FakeProvider::answering(200, order_answer()).await;
    let request = CheckoutRequest {
        item: CheckoutItem::Subscription {
            plan_id: "pro".to_owned(),
            provider_price_id: "plan_PixeldPro".to_owned(),
        },
        ..pack_request()
    };

    let err = razorpay(&server.base_url)
        .create_checkout(&request)
        .await
        .unwrap_err();

    assert!(matches!(err, PaymentError::Unsupported(_)), "{err:?}");
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn a_refused_order_reports_razorpays_own_description() {
    let server = FakeProvider::answering(
        400,
        json!({
            "error": {
                "code": "BAD_REQUEST_ERROR",
                "description": "The amount must be atleast INR 1.00",
                "source": "business",
                "step": "payment_initiation",
                "reason": "input_validation_failed",
                "metadata": {},
                "field": "amount"
            }
        }),
    )
    .await;

    let err = razorpay(&server.base_url)
        .create_checkout(&pack_request())
        .await
        .unwrap_err();

    assert_eq!(
        err,
        PaymentError::Provider {
            status: 400,
            message: "The amount must be atleast INR 1.00".to_owned()
        }
    );
}

#[tokio::test]
async fn razorpay_has_no_customer_portal() {
    let provider: Arc<dyn PaymentProvider> = Arc::new(razorpay("http://127.0.0.1:9"));

    let err = provider
        .portal_url("cust_1Aa00000000001", "https://pixeld.example/billing")
        .await
        .unwrap_err();

    assert_eq!(provider.name(), "razorpay");
    assert!(matches!(err, PaymentError::Unsupported(_)), "{err:?}");
}

#[test]
fn a_checkout_js_payment_signature_is_verified() {
    let provider = razorpay("http://127.0.0.1:9");
    let signature =
        razorpay_payment_signature(KEY_SECRET, "order_IluGWxBm9U8zJ8", "pay_29QQoUBi66xm2f");

    assert!(provider.verify_payment_signature(
        "order_IluGWxBm9U8zJ8",
        "pay_29QQoUBi66xm2f",
        &signature
    ));
    assert!(!provider.verify_payment_signature(
        "order_IluGWxBm9U8zJ8",
        "pay_someoneelse",
        &signature
    ));
    assert!(!provider.verify_payment_signature("order_other", "pay_29QQoUBi66xm2f", &signature));
    let forged = razorpay_payment_signature(
        "not-our-secret",
        "order_IluGWxBm9U8zJ8",
        "pay_29QQoUBi66xm2f",
    );
    assert!(!provider.verify_payment_signature(
        "order_IluGWxBm9U8zJ8",
        "pay_29QQoUBi66xm2f",
        &forged
    ));
    assert!(!provider.verify_payment_signature(
        "order_IluGWxBm9U8zJ8",
        "pay_29QQoUBi66xm2f",
        "not hex"
    ));
    assert!(!provider.verify_payment_signature("order_IluGWxBm9U8zJ8", "pay_29QQoUBi66xm2f", ""));
}

// --- webhooks ---

/// A `payment.captured` event as Razorpay's webhook reference shows it.
fn payment_captured(notes: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "entity": "event",
        "account_id": "acc_BFQ7uQEaa7j2z7",
        "event": "payment.captured",
        "contains": ["payment"],
        "payload": {
            "payment": {
                "entity": {
                    "id": "pay_DESlfW9H8K9uqM",
                    "entity": "payment",
                    "amount": 149900,
                    "currency": "INR",
                    "base_amount": 149900,
                    "status": "captured",
                    "order_id": "order_IluGWxBm9U8zJ8",
                    "invoice_id": null,
                    "international": false,
                    "method": "upi",
                    "amount_refunded": 0,
                    "amount_transferred": 0,
                    "refund_status": null,
                    "captured": true,
                    "description": "500 credits",
                    "card_id": null,
                    "bank": null,
                    "wallet": null,
                    "vpa": "gaurav.kumar@exampleupi",
                    "email": "ada@example.com",
                    "contact": "+919876543210",
                    "notes": notes,
                    "fee": 3538,
                    "tax": 540,
                    "error_code": null,
                    "error_description": null,
                    "error_source": null,
                    "error_step": null,
                    "error_reason": null,
                    "acquirer_data": { "rrn": "018103412373" },
                    "created_at": 1751399980
                }
            }
        },
        "created_at": 1751399990
    }))
    .unwrap()
}

fn our_notes() -> Value {
    json!({ "order_id": order_id().to_string(), "org_id": org_id().to_string() })
}

fn signed(body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-razorpay-signature",
        razorpay_signature(WEBHOOK_SECRET, body).parse().unwrap(),
    );
    headers.insert("x-razorpay-event-id", "KSiBzpoP6xlBsk".parse().unwrap());
    headers
}

#[test]
fn a_captured_payment_webhook_names_the_order_it_pays_for() {
    let body = payment_captured(our_notes());

    let event = razorpay("http://127.0.0.1:9")
        .parse_webhook(&signed(&body), &body, now())
        .expect("a verified event");

    assert_eq!(event.id, "KSiBzpoP6xlBsk");
    assert_eq!(event.provider, "razorpay");
    assert_eq!(event.event_type, "payment.captured");
    assert_eq!(event.created, Some(1751399990));
    assert_eq!(
        event.kind,
        EventKind::PaymentCaptured {
            order_ref: Some("order_IluGWxBm9U8zJ8".to_owned()),
            payment_ref: "pay_DESlfW9H8K9uqM".to_owned(),
            amount_minor: 149900,
            currency: "INR".to_owned(),
            order_id: Some(order_id()),
        }
    );
}

#[test]
fn a_payment_with_empty_notes_parses_without_an_order_id() {
    // Razorpay sends empty notes as a JSON array.
    let body = payment_captured(json!([]));

    let event = razorpay("http://127.0.0.1:9")
        .parse_webhook(&signed(&body), &body, now())
        .unwrap();

    assert!(matches!(
        event.kind,
        EventKind::PaymentCaptured { order_id: None, .. }
    ));
}

#[test]
fn a_razorpay_webhook_signed_with_another_secret_is_refused() {
    let body = payment_captured(our_notes());
    let mut headers = signed(&body);
    headers.insert(
        "x-razorpay-signature",
        razorpay_signature("someone-else", &body).parse().unwrap(),
    );

    let err = razorpay("http://127.0.0.1:9")
        .parse_webhook(&headers, &body, now())
        .unwrap_err();

    assert!(matches!(err, WebhookError::BadSignature(_)), "{err:?}");
}

#[test]
fn a_tampered_razorpay_body_is_refused() {
    let body = payment_captured(our_notes());
    let headers = signed(&body);
    let tampered = String::from_utf8(body)
        .unwrap()
        .replace("\"amount\":149900", "\"amount\":14990000");
    assert!(tampered.contains("14990000"));

    let err = razorpay("http://127.0.0.1:9")
        .parse_webhook(&headers, tampered.as_bytes(), now())
        .unwrap_err();

    assert!(matches!(err, WebhookError::BadSignature(_)), "{err:?}");
}

#[test]
fn a_razorpay_webhook_without_a_signature_is_refused_with_a_clear_message() {
    let body = payment_captured(our_notes());
    let mut headers = signed(&body);
    headers.remove("x-razorpay-signature");

    let err = razorpay("http://127.0.0.1:9")
        .parse_webhook(&headers, &body, now())
        .unwrap_err();

    assert_eq!(
        err,
        WebhookError::BadSignature("the X-Razorpay-Signature header is missing".to_owned())
    );
}

#[test]
fn a_razorpay_webhook_without_an_event_id_cannot_be_deduplicated_so_is_refused() {
    let body = payment_captured(our_notes());
    let mut headers = signed(&body);
    headers.remove("x-razorpay-event-id");

    let err = razorpay("http://127.0.0.1:9")
        .parse_webhook(&headers, &body, now())
        .unwrap_err();

    assert!(matches!(err, WebhookError::Malformed(m) if m.contains("X-Razorpay-Event-Id")));
}

#[test]
fn an_old_razorpay_delivery_is_accepted_because_razorpay_signs_no_timestamp() {
    let body = payment_captured(our_notes());
    let a_day_later = now() + time::Duration::days(1);

    assert!(
        razorpay("http://127.0.0.1:9")
            .parse_webhook(&signed(&body), &body, a_day_later)
            .is_ok()
    );
}

#[test]
fn a_processed_refund_names_the_payment_refunded() {
    let body = serde_json::to_vec(&json!({
        "entity": "event",
        "account_id": "acc_BFQ7uQEaa7j2z7",
        "event": "refund.processed",
        "contains": ["refund", "payment"],
        "payload": {
            "refund": {
                "entity": {
                    "id": "rfnd_FP8QHiV938haTz",
                    "entity": "refund",
                    "amount": 50000,
                    "currency": "INR",
                    "payment_id": "pay_DESlfW9H8K9uqM",
                    "notes": [],
                    "receipt": null,
                    "acquirer_data": { "arn": null },
                    "created_at": 1751400100,
                    "batch_id": null,
                    "status": "processed",
                    "speed_processed": "normal",
                    "speed_requested": "normal"
                }
            },
            "payment": {
                "entity": {
                    "id": "pay_DESlfW9H8K9uqM",
                    "entity": "payment",
                    "amount": 149900,
                    "currency": "INR",
                    "status": "captured",
                    "order_id": "order_IluGWxBm9U8zJ8",
                    "amount_refunded": 50000,
                    "refund_status": "partial",
                    "notes": our_notes()
                }
            }
        },
        "created_at": 1751400110
    }))
    .unwrap();

    let event = razorpay("http://127.0.0.1:9")
        .parse_webhook(&signed(&body), &body, now())
        .unwrap();

    assert_eq!(
        event.kind,
        EventKind::RefundProcessed {
            payment_ref: "pay_DESlfW9H8K9uqM".to_owned(),
            refund_ref: "rfnd_FP8QHiV938haTz".to_owned(),
            amount_minor: 50000,
            currency: "INR".to_owned(),
        }
    );
}

#[test]
fn a_razorpay_event_type_we_do_not_handle_still_parses() {
    let body = serde_json::to_vec(&json!({
        "entity": "event",
        "account_id": "acc_BFQ7uQEaa7j2z7",
        "event": "order.paid",
        "contains": ["payment", "order"],
        "payload": {},
        "created_at": 1751399991
    }))
    .unwrap();

    let event = razorpay("http://127.0.0.1:9")
        .parse_webhook(&signed(&body), &body, now())
        .unwrap();

    assert_eq!(event.event_type, "order.paid");
    assert_eq!(event.kind, EventKind::Other);
}

#[test]
fn a_well_signed_razorpay_body_that_is_not_json_is_malformed() {
    let body = b"<html>not an event</html>".to_vec();

    let err = razorpay("http://127.0.0.1:9")
        .parse_webhook(&signed(&body), &body, now())
        .unwrap_err();

    assert!(matches!(err, WebhookError::Malformed(_)), "{err:?}");
}

// --- payment links ---

/// A Payment Link as Razorpay's Payment Links API reference shows it, freshly created.
fn link_answer() -> Value {
    json!({
        "accept_partial": false,
        "amount": 149900,
        "amount_paid": 0,
        "callback_method": "get",
        "callback_url": "https://pixeld.example/billing/done",
        "cancelled_at": 0,
        "created_at": 1751399980,
        "currency": "INR",
        "customer": { "email": "ada@example.com" },
        "description": "500 credits: 500 credits",
        "expire_by": 0,
        "expired_at": 0,
        "first_min_partial_amount": 0,
        "id": "plink_ExjpAUN3gVHrPJ",
        "notes": { "order_id": order_id().to_string(), "org_id": org_id().to_string() },
        "notify": { "email": false, "sms": false },
        "payments": null,
        "reference_id": order_id().to_string(),
        "reminder_enable": false,
        "reminders": [],
        "short_url": "https://rzp.io/i/nxrHnLJ",
        "status": "created",
        "updated_at": 1751399980,
        "user_id": ""
    })
}

#[tokio::test]
async fn a_hosted_purchase_opens_a_payment_link_that_comes_back_to_us() {
    let server = FakeProvider::answering(200, link_answer()).await;

    let checkout = razorpay(&server.base_url)
        .create_payment_link(&pack_request())
        .await
        .expect("a payment link");

    assert_eq!(checkout.provider_ref, "plink_ExjpAUN3gVHrPJ");
    assert_eq!(checkout.url.as_deref(), Some("https://rzp.io/i/nxrHnLJ"));
    assert_eq!(checkout.client_payload, None);
    let sent = server.only_request();
    assert_eq!(sent.path, "/v1/payment_links");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{KEY_ID}:{KEY_SECRET}"));
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        sent.json(),
        json!({
            "amount": 149900,
            "currency": "INR",
            "accept_partial": false,
            "reference_id": order_id().to_string(),
            "description": "500 credits: 500 credits",
            "notify": { "sms": false, "email": false },
            "reminder_enable": false,
            "notes": { "order_id": order_id().to_string(), "org_id": org_id().to_string() },
            "callback_url": "https://pixeld.example/billing/done",
            "callback_method": "get",
            "customer": { "email": "ada@example.com" }
        })
    );
}

#[test]
fn a_payment_link_callback_signature_is_verified() {
    let provider = razorpay("http://127.0.0.1:9");
    let reference = order_id().to_string();
    let good = razorpay_payment_link_signature(
        KEY_SECRET,
        "plink_ExjpAUN3gVHrPJ",
        &reference,
        "paid",
        "pay_FHfqtkRzWvxky4",
    );
    assert!(provider.verify_payment_link_signature(
        "plink_ExjpAUN3gVHrPJ",
        &reference,
        "paid",
        "pay_FHfqtkRzWvxky4",
        &good
    ));
    // Any part changed, or another secret: refused.
    for (link, r, status, pay) in [
        (
            "plink_other",
            reference.as_str(),
            "paid",
            "pay_FHfqtkRzWvxky4",
        ),
        (
            "plink_ExjpAUN3gVHrPJ",
            "another-order",
            "paid",
            "pay_FHfqtkRzWvxky4",
        ),
        (
            "plink_ExjpAUN3gVHrPJ",
            reference.as_str(),
            "cancelled",
            "pay_FHfqtkRzWvxky4",
        ),
        (
            "plink_ExjpAUN3gVHrPJ",
            reference.as_str(),
            "paid",
            "pay_other",
        ),
    ] {
        assert!(!provider.verify_payment_link_signature(link, r, status, pay, &good));
    }
    let forged = razorpay_payment_link_signature(
        "not-our-secret",
        "plink_ExjpAUN3gVHrPJ",
        &reference,
        "paid",
        "pay_FHfqtkRzWvxky4",
    );
    assert!(!provider.verify_payment_link_signature(
        "plink_ExjpAUN3gVHrPJ",
        &reference,
        "paid",
        "pay_FHfqtkRzWvxky4",
        &forged
    ));
}

#[test]
fn a_paid_payment_link_webhook_names_the_link_and_our_order() {
    let body = serde_json::to_vec(&json!({
        "entity": "event",
        "account_id": "acc_BFQ7uQEaa7j2z7",
        "event": "payment_link.paid",
        "contains": ["payment_link", "order", "payment"],
        "payload": {
            "payment_link": { "entity": {
                "id": "plink_ExjpAUN3gVHrPJ", "amount": 149900, "amount_paid": 149900,
                "currency": "INR", "reference_id": order_id().to_string(), "status": "paid",
                "notes": our_notes(), "short_url": "https://rzp.io/i/nxrHnLJ"
            }},
            "order": { "entity": {
                "id": "order_ExjpPJjq1R3Nm2", "entity": "order", "amount": 149900,
                "amount_paid": 149900, "currency": "INR", "status": "paid"
            }},
            "payment": { "entity": {
                "id": "pay_FHfqtkRzWvxky4", "entity": "payment", "amount": 149900,
                "currency": "INR", "status": "captured", "order_id": "order_ExjpPJjq1R3Nm2",
                "method": "upi", "captured": true, "notes": []
            }}
        },
        "created_at": 1751399990
    }))
    .unwrap();
    let event = razorpay("http://127.0.0.1:9")
        .parse_webhook(&signed(&body), &body, now())
        .expect("a verified event");
    assert_eq!(event.event_type, "payment_link.paid");
    assert_eq!(
        event.kind,
        EventKind::PaymentCaptured {
            order_ref: Some("plink_ExjpAUN3gVHrPJ".into()),
            payment_ref: "pay_FHfqtkRzWvxky4".into(),
            amount_minor: 149900,
            currency: "INR".into(),
            order_id: Some(order_id()),
        }
    );
}
