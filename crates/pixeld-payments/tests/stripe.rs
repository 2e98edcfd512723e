//! Stripe as pixeld sees it: the real client against a local server speaking Stripe's wire
//! format, and webhooks signed the way Stripe signs them.

mod common;

use std::sync::Arc;

use common::{FakeProvider, http_client, now, unreachable_base_url};
use http::HeaderMap;
use pixeld_payments::testing::stripe_signature_header;
use pixeld_payments::{
    CheckoutItem, CheckoutRequest, EventKind, PaymentError, PaymentProvider, Stripe, StripeConfig,
    WebhookError,
};
use serde_json::{Value, json};
use uuid::Uuid;

const SECRET_KEY: &str = "sk_test_51PixeldSecretKey";
const WEBHOOK_SECRET: &str = "whsec_pixeld_test_secret";

fn order_id() -> Uuid {
    "0197c8a4-6f10-7d3e-9a2b-1c4d5e6f7a8b".parse().unwrap()
}

fn org_id() -> Uuid {
    "0197c8a4-0000-7000-8000-000000000042".parse().unwrap()
}

fn stripe(api_base: &str) -> Stripe {
    let mut config = StripeConfig::new(SECRET_KEY, WEBHOOK_SECRET);
    config.api_base = api_base.to_owned();
    Stripe::new(config, http_client())
}

fn pack_request() -> CheckoutRequest {
    CheckoutRequest {
        order_id: order_id(),
        org_id: org_id(),
        item: CheckoutItem::Pack {
            credits: 500,
            name: "500 credits".to_owned(),
        },
        amount_minor: 1900,
        currency: "USD".to_owned(),
        customer_email: Some("ada@example.com".to_owned()),
        customer_ref: None,
        success_url: "https://pixeld.example/billing/done?session_id={CHECKOUT_SESSION_ID}"
            .to_owned(),
        cancel_url: "https://pixeld.example/billing".to_owned(),
    }
}

/// A Checkout Session object as Stripe's API reference shows it, freshly created.
fn session_answer(mode: &str) -> Value {
    json!({
        "id": "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY",
        "object": "checkout.session",
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": 1900,
        "amount_total": 1900,
        "automatic_tax": { "enabled": false, "liability": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": "https://pixeld.example/billing",
        "client_reference_id": order_id().to_string(),
        "client_secret": null,
        "created": 1751400000,
        "currency": "usd",
        "customer": null,
        "customer_creation": "if_required",
        "customer_details": null,
        "customer_email": "ada@example.com",
        "expires_at": 1751486400,
        "invoice": null,
        "livemode": false,
        "locale": null,
        "metadata": { "order_id": order_id().to_string(), "org_id": org_id().to_string() },
        "mode": mode,
        "payment_intent": null,
        "payment_link": null,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": "https://pixeld.example/billing/done?session_id={CHECKOUT_SESSION_ID}",
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted",
        "url": "https://checkout.stripe.com/c/pay/cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY#fidkdWxOYHwnPyd1blpxYHZxWjA0"
    })
}

fn stripe_error(message: &str) -> Value {
    json!({
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
            "message": message,
            "param": "line_items[0][price]",
            "request_log_url": "https://dashboard.stripe.com/test/logs/req_3a1b2c?t=1751400000"
        }
    })
}

#[tokio::test]
async fn buying_a_pack_opens_a_hosted_checkout_in_payment_mode() {
    let server = FakeProvider::answering(200, session_answer("payment")).await;

    let checkout = stripe(&server.base_url)
        .create_checkout(&pack_request())
        .await
        .expect("a checkout");

    assert_eq!(
        checkout.provider_ref,
        "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
    );
    assert!(
        checkout
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://checkout.stripe.com/c/pay/cs_test_")
    );
    assert_eq!(checkout.client_payload, None);

    let sent = server.only_request();
    assert_eq!(sent.method, http::Method::POST);
    assert_eq!(sent.path, "/v1/checkout/sessions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {SECRET_KEY}").as_str())
    );
    assert_eq!(
        sent.header("idempotency-key"),
        Some(order_id().to_string().as_str())
    );
    assert_eq!(
        sent.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = sent.form();
    let expected: Vec<(&str, String)> = vec![
        ("cancel_url", "https://pixeld.example/billing".to_owned()),
        ("client_reference_id", order_id().to_string()),
        ("customer_email", "ada@example.com".to_owned()),
        ("line_items[0][price_data][currency]", "usd".to_owned()),
        (
            "line_items[0][price_data][product_data][name]",
            "500 credits".to_owned(),
        ),
        ("line_items[0][price_data][unit_amount]", "1900".to_owned()),
        ("line_items[0][quantity]", "1".to_owned()),
        ("metadata[order_id]", order_id().to_string()),
        ("metadata[org_id]", org_id().to_string()),
        ("mode", "payment".to_owned()),
        (
            "success_url",
            "https://pixeld.example/billing/done?session_id={CHECKOUT_SESSION_ID}".to_owned(),
        ),
    ];
    let expected = expected
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(form, expected);
}

#[tokio::test]
async fn subscribing_opens_a_checkout_in_subscription_mode_for_a_known_customer() {
    let server = FakeProvider::answering(200, session_answer("subscription")).await;
    let request = CheckoutRequest {
        item: CheckoutItem::Subscription {
            plan_id: "pro".to_owned(),
            provider_price_id: "price_1PixeldPro".to_owned(),
        },
        customer_ref: Some("cus_NffrFeUfNV2Hib".to_owned()),
        ..pack_request()
    };

    let checkout = stripe(&server.base_url)
        .create_checkout(&request)
        .await
        .expect("a checkout");
    assert!(checkout.provider_ref.starts_with("cs_test_"));

    let form = server.only_request().form();
    assert_eq!(form["mode"], "subscription");
    assert_eq!(form["line_items[0][price]"], "price_1PixeldPro");
    assert_eq!(form["line_items[0][quantity]"], "1");
    assert_eq!(form["customer"], "cus_NffrFeUfNV2Hib");
    assert_eq!(form["metadata[order_id]"], order_id().to_string());
    assert!(
        !form.contains_key("customer_email"),
        "Stripe refuses customer and customer_email together"
    );
    assert!(!form.keys().any(|k| k.contains("price_data")));
}

#[tokio::test]
async fn a_refused_checkout_reports_stripes_own_message() {
    let server = FakeProvider::answering(400, stripe_error("No such price: 'price_gone'")).await;

    let err = stripe(&server.base_url)
        .create_checkout(&pack_request())
        .await
        .unwrap_err();

    assert_eq!(
        err,
        PaymentError::Provider {
            status: 400,
            message: "No such price: 'price_gone'".to_owned()
        }
    );
}

#[tokio::test]
async fn an_unreachable_stripe_is_a_transport_error() {
    let base = unreachable_base_url().await;

    let err = stripe(&base)
        .create_checkout(&pack_request())
        .await
        .unwrap_err();

    assert!(matches!(err, PaymentError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn an_answer_without_a_session_id_is_malformed() {
    let server = FakeProvider::answering(200, json!({ "object": "checkout.session" })).await;

    let err = stripe(&server.base_url)
        .create_checkout(&pack_request())
        .await
        .unwrap_err();

    assert!(matches!(err, PaymentError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn a_customer_gets_a_billing_portal_link() {
    let server = FakeProvider::answering(
        200,
        json!({
            "id": "bps_1MrSjzLkdIwHu7ixex0IvU9b",
            "object": "billing_portal.session",
            "configuration": "bpc_1MAhNDLkdIwHu7ixckACO1Jq",
            "created": 1751400000,
            "customer": "cus_NciAYcXfLnqBoz",
            "flow": null,
            "livemode": false,
            "locale": null,
            "on_behalf_of": null,
            "return_url": "https://pixeld.example/billing",
            "url": "https://billing.stripe.com/p/session/test_YWNjdF8xTTJKVGtMa2RJd0h1N2l4"
        }),
    )
    .await;
    let provider: Arc<dyn PaymentProvider> = Arc::new(stripe(&server.base_url));

    let url = provider
        .portal_url("cus_NciAYcXfLnqBoz", "https://pixeld.example/billing")
        .await
        .expect("a portal url");

    assert_eq!(provider.name(), "stripe");
    assert_eq!(
        url,
        "https://billing.stripe.com/p/session/test_YWNjdF8xTTJKVGtMa2RJd0h1N2l4"
    );
    let sent = server.only_request();
    assert_eq!(sent.path, "/v1/billing_portal/sessions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {SECRET_KEY}").as_str())
    );
    let form = sent.form();
    assert_eq!(form["customer"], "cus_NciAYcXfLnqBoz");
    assert_eq!(form["return_url"], "https://pixeld.example/billing");
}

// --- webhooks ---

fn event(event_type: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "id": "evt_1PixeldTestEvent0001",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": 1751399990,
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type
    }))
    .unwrap()
}

fn completed_session() -> Value {
    let mut session = session_answer("payment");
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session["customer"] = json!("cus_NffrFeUfNV2Hib");
    session["payment_intent"] = json!("pi_3PixeldPaymentIntent");
    session["url"] = Value::Null;
    session
}

fn signed(header: String) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("stripe-signature", header.parse().unwrap());
    headers
}

fn signed_now(body: &[u8]) -> HeaderMap {
    signed(stripe_signature_header(
        WEBHOOK_SECRET,
        now().unix_timestamp(),
        body,
    ))
}

fn webhook_stripe() -> Stripe {
    stripe("http://127.0.0.1:9")
}

#[test]
fn a_paid_checkout_webhook_names_the_order_it_pays_for() {
    let body = event("checkout.session.completed", completed_session());

    let event = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .expect("a verified event");

    assert_eq!(event.id, "evt_1PixeldTestEvent0001");
    assert_eq!(event.provider, "stripe");
    assert_eq!(event.event_type, "checkout.session.completed");
    assert_eq!(event.created, Some(1751399990));
    assert_eq!(
        event.kind,
        EventKind::CheckoutCompleted {
            order_id: Some(order_id()),
            provider_ref: "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
                .to_owned(),
            customer_ref: Some("cus_NffrFeUfNV2Hib".to_owned()),
            subscription_ref: None,
            payment_ref: Some("pi_3PixeldPaymentIntent".to_owned()),
            amount_minor: Some(1900),
            currency: Some("usd".to_owned()),
            paid: true,
        }
    );
}

#[test]
fn a_completed_but_unpaid_checkout_is_not_paid() {
    let mut session = completed_session();
    session["payment_status"] = json!("unpaid");
    let body = event("checkout.session.completed", session);

    let event = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .unwrap();

    assert!(matches!(
        event.kind,
        EventKind::CheckoutCompleted { paid: false, .. }
    ));
}

#[test]
fn a_webhook_signed_with_another_secret_is_refused() {
    let body = event("checkout.session.completed", completed_session());
    let headers = signed(stripe_signature_header(
        "whsec_someone_else",
        now().unix_timestamp(),
        &body,
    ));

    let err = webhook_stripe()
        .parse_webhook(&headers, &body, now())
        .unwrap_err();

    assert!(matches!(err, WebhookError::BadSignature(_)), "{err:?}");
}

#[test]
fn a_tampered_body_is_refused() {
    let body = event("checkout.session.completed", completed_session());
    let headers = signed_now(&body);
    let tampered = String::from_utf8(body)
        .unwrap()
        .replace("\"amount_total\": 1900", "\"amount_total\": 190000");
    assert!(tampered.contains("190000"));

    let err = webhook_stripe()
        .parse_webhook(&headers, tampered.as_bytes(), now())
        .unwrap_err();

    assert!(matches!(err, WebhookError::BadSignature(_)), "{err:?}");
}

#[test]
fn any_v1_signature_may_match_while_secrets_rotate() {
    let body = event("checkout.session.completed", completed_session());
    let good = stripe_signature_header(WEBHOOK_SECRET, now().unix_timestamp(), &body);
    let good_v1 = good.split_once(",v1=").unwrap().1;
    let header = format!(
        "t={},v1={},v1={good_v1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
        now().unix_timestamp(),
        "5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"
    );

    let event = webhook_stripe()
        .parse_webhook(&signed(header), &body, now())
        .expect("the second v1 matches");

    assert_eq!(event.id, "evt_1PixeldTestEvent0001");
}

#[test]
fn a_stale_stripe_webhook_is_refused() {
    let body = event("checkout.session.completed", completed_session());
    let headers = signed(stripe_signature_header(
        WEBHOOK_SECRET,
        now().unix_timestamp() - 301,
        &body,
    ));

    let err = webhook_stripe()
        .parse_webhook(&headers, &body, now())
        .unwrap_err();

    assert_eq!(err, WebhookError::StaleTimestamp);
}

#[test]
fn a_webhook_at_the_edge_of_the_tolerance_is_accepted() {
    let body = event("checkout.session.completed", completed_session());
    let headers = signed(stripe_signature_header(
        WEBHOOK_SECRET,
        now().unix_timestamp() - 300,
        &body,
    ));

    assert!(
        webhook_stripe()
            .parse_webhook(&headers, &body, now())
            .is_ok()
    );
}

#[test]
fn a_webhook_from_the_future_beyond_the_tolerance_is_refused() {
    let body = event("checkout.session.completed", completed_session());
    let headers = signed(stripe_signature_header(
        WEBHOOK_SECRET,
        now().unix_timestamp() + 301,
        &body,
    ));

    let err = webhook_stripe()
        .parse_webhook(&headers, &body, now())
        .unwrap_err();

    assert_eq!(err, WebhookError::StaleTimestamp);
}

#[test]
fn a_webhook_without_a_signature_header_is_refused_with_a_clear_message() {
    let body = event("checkout.session.completed", completed_session());

    let err = webhook_stripe()
        .parse_webhook(&HeaderMap::new(), &body, now())
        .unwrap_err();

    assert_eq!(
        err,
        WebhookError::BadSignature("the Stripe-Signature header is missing".to_owned())
    );
}

#[test]
fn malformed_signature_headers_are_refused_with_a_clear_message() {
    let body = event("checkout.session.completed", completed_session());
    let v1 = "v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd";
    for (header, says) in [
        (v1.to_owned(), "no t= timestamp"),
        (format!("t=yesterday,{v1}"), "not a number"),
        (format!("t={}", now().unix_timestamp()), "no v1= signature"),
        ("garbage".to_owned(), "no t= timestamp"),
    ] {
        match webhook_stripe().parse_webhook(&signed(header.clone()), &body, now()) {
            Err(WebhookError::BadSignature(message)) => {
                assert!(message.contains(says), "{header:?}: {message}")
            }
            other => panic!("{header:?} gave {other:?}"),
        }
    }
}

#[test]
fn a_well_signed_body_that_is_not_json_is_malformed() {
    let body = b"{\"id\": \"evt_1\", \"type\": ".to_vec();

    let err = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .unwrap_err();

    assert!(matches!(err, WebhookError::Malformed(_)), "{err:?}");
}

#[test]
fn an_event_type_we_do_not_handle_still_parses_so_it_can_be_acknowledged() {
    let body = event(
        "customer.created",
        json!({ "id": "cus_NffrFeUfNV2Hib", "object": "customer", "email": "ada@example.com" }),
    );

    let event = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .unwrap();

    assert_eq!(event.event_type, "customer.created");
    assert_eq!(event.kind, EventKind::Other);
}

/// An invoice as API versions from 2025-03-31 (basil) send it.
fn invoice_new_shape() -> Value {
    json!({
        "id": "in_1PixeldInvoice",
        "object": "invoice",
        "amount_due": 2900,
        "amount_paid": 2900,
        "amount_remaining": 0,
        "billing_reason": "subscription_cycle",
        "currency": "usd",
        "customer": "cus_NffrFeUfNV2Hib",
        "lines": {
            "object": "list",
            "data": [{
                "id": "il_1PixeldLine",
                "object": "line_item",
                "amount": 2900,
                "currency": "usd",
                "description": "1 × Pro (at $29.00 / month)",
                "parent": {
                    "type": "subscription_item_details",
                    "subscription_item_details": {
                        "subscription": "sub_1PixeldPro",
                        "subscription_item": "si_PixeldItem",
                        "proration": false
                    }
                },
                "period": { "end": 1754078400, "start": 1751400000 },
                "pricing": {
                    "type": "price_details",
                    "price_details": { "price": "price_1PixeldPro", "product": "prod_PixeldPro" },
                    "unit_amount_decimal": "2900"
                },
                "quantity": 1
            }],
            "has_more": false,
            "url": "/v1/invoices/in_1PixeldInvoice/lines"
        },
        "parent": {
            "type": "subscription_details",
            "quote_details": null,
            "subscription_details": { "metadata": {}, "subscription": "sub_1PixeldPro" }
        },
        "period_end": 1751400000,
        "period_start": 1748721600,
        "status": "paid"
    })
}

#[test]
fn a_paid_invoice_in_the_new_api_shape_renews_the_subscription() {
    let body = event("invoice.paid", invoice_new_shape());

    let event = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .unwrap();

    assert_eq!(
        event.kind,
        EventKind::InvoicePaid {
            invoice_ref: "in_1PixeldInvoice".to_owned(),
            customer_ref: "cus_NffrFeUfNV2Hib".to_owned(),
            subscription_ref: Some("sub_1PixeldPro".to_owned()),
            amount_minor: 2900,
            currency: "usd".to_owned(),
            period_start: Some(1751400000),
            period_end: Some(1754078400),
            price_ref: Some("price_1PixeldPro".to_owned()),
        }
    );
}

#[test]
fn a_paid_invoice_in_the_old_api_shape_renews_the_subscription() {
    let mut invoice = invoice_new_shape();
    invoice.as_object_mut().unwrap().remove("parent");
    invoice["subscription"] = json!("sub_1PixeldPro");
    let line = &mut invoice["lines"]["data"][0];
    line.as_object_mut().unwrap().remove("pricing");
    line["price"] = json!({ "id": "price_1PixeldPro", "object": "price", "unit_amount": 2900 });
    let body = event("invoice.paid", invoice);

    let event = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .unwrap();

    match event.kind {
        EventKind::InvoicePaid {
            subscription_ref,
            price_ref,
            period_end,
            ..
        } => {
            assert_eq!(subscription_ref.as_deref(), Some("sub_1PixeldPro"));
            assert_eq!(price_ref.as_deref(), Some("price_1PixeldPro"));
            assert_eq!(period_end, Some(1754078400));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_invoice_without_a_customer_is_malformed() {
    let mut invoice = invoice_new_shape();
    invoice.as_object_mut().unwrap().remove("customer");
    let body = event("invoice.paid", invoice);

    let err = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .unwrap_err();

    assert!(matches!(err, WebhookError::Malformed(m) if m.contains("/customer")));
}

fn subscription() -> Value {
    json!({
        "id": "sub_1PixeldPro",
        "object": "subscription",
        "cancel_at": null,
        "cancel_at_period_end": true,
        "canceled_at": 1751400000,
        "created": 1748721600,
        "currency": "usd",
        "customer": "cus_NffrFeUfNV2Hib",
        "items": {
            "object": "list",
            "data": [{
                "id": "si_PixeldItem",
                "object": "subscription_item",
                "current_period_end": 1754078400,
                "current_period_start": 1751400000,
                "price": { "id": "price_1PixeldPro", "object": "price", "recurring": { "interval": "month" } },
                "quantity": 1,
                "subscription": "sub_1PixeldPro"
            }],
            "has_more": false
        },
        "livemode": false,
        "metadata": {},
        "status": "active"
    })
}

#[test]
fn a_subscription_set_to_cancel_reports_its_period_end_from_the_item() {
    let body = event("customer.subscription.updated", subscription());

    let event = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .unwrap();

    assert_eq!(
        event.kind,
        EventKind::SubscriptionUpdated {
            subscription_ref: "sub_1PixeldPro".to_owned(),
            customer_ref: "cus_NffrFeUfNV2Hib".to_owned(),
            status: "active".to_owned(),
            price_ref: Some("price_1PixeldPro".to_owned()),
            current_period_end: Some(1754078400),
            cancel_at_period_end: true,
        }
    );
}

#[test]
fn an_old_api_subscription_reports_its_top_level_period_end() {
    let mut sub = subscription();
    sub["current_period_end"] = json!(1754000000);
    sub["cancel_at_period_end"] = json!(false);
    let body = event("customer.subscription.updated", sub);

    let event = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .unwrap();

    assert!(matches!(
        event.kind,
        EventKind::SubscriptionUpdated {
            current_period_end: Some(1754000000),
            cancel_at_period_end: false,
            ..
        }
    ));
}

#[test]
fn an_ended_subscription_is_reported_as_deleted() {
    let mut sub = subscription();
    sub["status"] = json!("canceled");
    let body = event("customer.subscription.deleted", sub);

    let event = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .unwrap();

    assert_eq!(
        event.kind,
        EventKind::SubscriptionDeleted {
            subscription_ref: "sub_1PixeldPro".to_owned(),
            customer_ref: "cus_NffrFeUfNV2Hib".to_owned(),
        }
    );
}

#[test]
fn a_refunded_charge_names_its_payment_intent() {
    let body = event(
        "charge.refunded",
        json!({
            "id": "ch_3PixeldCharge",
            "object": "charge",
            "amount": 1900,
            "amount_captured": 1900,
            "amount_refunded": 900,
            "captured": true,
            "currency": "usd",
            "customer": "cus_NffrFeUfNV2Hib",
            "paid": true,
            "payment_intent": "pi_3PixeldPaymentIntent",
            "refunded": false,
            "status": "succeeded"
        }),
    );

    let event = webhook_stripe()
        .parse_webhook(&signed_now(&body), &body, now())
        .unwrap();

    assert_eq!(
        event.kind,
        EventKind::ChargeRefunded {
            payment_ref: Some("pi_3PixeldPaymentIntent".to_owned()),
            charge_ref: "ch_3PixeldCharge".to_owned(),
            amount_refunded_minor: 900,
            currency: "usd".to_owned(),
        }
    );
}

#[test]
fn the_config_does_not_print_its_secrets() {
    let printed = format!("{:?}", webhook_stripe());

    assert!(!printed.contains(SECRET_KEY));
    assert!(!printed.contains(WEBHOOK_SECRET));
}
