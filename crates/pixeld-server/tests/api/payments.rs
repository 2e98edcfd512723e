//! Buying credits: the real Stripe and Razorpay clients against local servers speaking their
//! wire formats, and signed webhooks as the providers send them.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{TestApp, body, both_with, problem};

const STRIPE_WEBHOOK_SECRET: &str = "whsec_test_pixeld";
const RAZORPAY_KEY_SECRET: &str = "rzp_key_secret_test";
const RAZORPAY_WEBHOOK_SECRET: &str = "rzp_webhook_secret_test";

/// A local stand-in for api.stripe.com and api.razorpay.com: answers as they document and
/// remembers what it was asked.
#[derive(Clone, Default)]
struct Providers {
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl Providers {
    async fn start() -> (Providers, String) {
        let p = Providers::default();
        let seen = p.clone();
        let seen2 = p.clone();
        let seen3 = p.clone();
        let seen4 = p.clone();
        let app = axum::Router::new()
            .route(
                "/v1/payment_links",
                post(move |axum::Json(b): axum::Json<Value>| {
                    let seen = seen4.clone();
                    async move {
                        seen.requests
                            .lock()
                            .unwrap()
                            .push(("razorpay-link".into(), b.to_string()));
                        let r = b["reference_id"]
                            .as_str()
                            .unwrap_or_default()
                            .replace('-', "");
                        let id = format!("plink_{}", &r[r.len().saturating_sub(14)..]);
                        axum::Json(json!({
                            "id": id, "amount": b["amount"], "amount_paid": 0,
                            "currency": b["currency"], "accept_partial": false,
                            "reference_id": b["reference_id"], "description": b["description"],
                            "notes": b["notes"], "status": "created",
                            "callback_url": b["callback_url"], "callback_method": "get",
                            "short_url": format!("https://rzp.io/i/{id}"),
                            "created_at": 1_767_225_600
                        }))
                    }
                }),
            )
            .route(
                "/v1/checkout/sessions",
                post(move |headers: axum::http::HeaderMap, form: String| {
                    let seen = seen.clone();
                    async move {
                        assert_eq!(headers["authorization"], "Bearer sk_test_pixeld");
                        let key = headers["idempotency-key"].to_str().unwrap().to_owned();
                        seen.requests
                            .lock()
                            .unwrap()
                            .push(("stripe".into(), form.clone()));
                        let id = format!("cs_test_{}", key.replace('-', ""));
                        axum::Json(json!({
                            "id": id, "object": "checkout.session", "mode": "payment",
                            "status": "open", "payment_status": "unpaid",
                            "url": format!("https://checkout.stripe.com/c/pay/{id}"),
                            "client_reference_id": key,
                        }))
                    }
                }),
            )
            .route(
                "/v1/billing_portal/sessions",
                post(move |form: String| {
                    let seen = seen2.clone();
                    async move {
                        seen.requests.lock().unwrap().push(("portal".into(), form));
                        axum::Json(json!({"id": "bps_1", "object": "billing_portal.session",
                                          "url": "https://billing.stripe.com/p/session/test_1"}))
                    }
                }),
            )
            .route(
                "/v1/orders",
                post(move |axum::Json(b): axum::Json<Value>| {
                    let seen = seen3.clone();
                    async move {
                        seen.requests
                            .lock()
                            .unwrap()
                            .push(("razorpay".into(), b.to_string()));
                        let receipt = b["receipt"].as_str().unwrap_or_default().replace('-', "");
                        let id = format!("order_{}", &receipt[receipt.len().saturating_sub(14)..]);
                        axum::Json(json!({
                            "id": id, "entity": "order", "amount": b["amount"],
                            "amount_paid": 0, "amount_due": b["amount"], "currency": b["currency"],
                            "receipt": b["receipt"], "status": "created", "attempts": 0,
                            "notes": b["notes"], "created_at": 1_767_225_600
                        }))
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (p, url)
    }

    fn count(&self, which: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(w, _)| w == which)
            .count()
    }
}

fn configure(c: &mut pixeld_server::config::Config, api: &str) {
    c.payments.stripe = Some(pixeld_server::config::StripeConfig {
        secret_key: "sk_test_pixeld".into(),
        webhook_secret: STRIPE_WEBHOOK_SECRET.into(),
        api_base: api.into(),
    });
    c.payments.razorpay = Some(pixeld_server::config::RazorpayConfig {
        key_id: "rzp_test_key".into(),
        key_secret: RAZORPAY_KEY_SECRET.into(),
        webhook_secret: RAZORPAY_WEBHOOK_SECRET.into(),
        api_base: api.into(),
    });
}

async fn stripe_event(
    app: &TestApp,
    event: &Value,
    age_secs: i64,
    secret: &str,
) -> reqwest::Response {
    let raw = serde_json::to_vec(event).unwrap();
    let t = app.app.now().unix_timestamp() - age_secs;
    app.plain()
        .post(app.url("/v1/payments/stripe/webhook"))
        .header(
            "stripe-signature",
            pixeld_payments::testing::stripe_signature_header(secret, t, &raw),
        )
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap()
}

fn session_completed(event_id: &str, order: &Value, payment_intent: &str, amount: i64) -> Value {
    json!({
        "id": event_id, "object": "event", "api_version": "2025-03-31.basil",
        "created": 1_767_225_600, "type": "checkout.session.completed", "livemode": false,
        "data": {"object": {
            "id": format!("cs_test_{}", order["id"].as_str().unwrap().replace('-', "")),
            "object": "checkout.session", "mode": "payment", "status": "complete",
            "payment_status": "paid", "amount_total": amount, "currency": "usd",
            "customer": "cus_Test1", "payment_intent": payment_intent,
            "client_reference_id": order["id"], "metadata": {"order_id": order["id"]}
        }}
    })
}

fn charge_refunded(event_id: &str, payment_intent: &str, refunded: i64) -> Value {
    json!({
        // Sent now: a refund of an unknown payment is only retried while it is fresh.
        "id": event_id, "object": "event", "created": time::OffsetDateTime::now_utc().unix_timestamp(),
        "type": "charge.refunded",
        "data": {"object": {
            "id": "ch_Test1", "object": "charge", "amount": 1000, "amount_refunded": refunded,
            "currency": "usd", "payment_intent": payment_intent, "refunded": refunded >= 1000
        }}
    })
}

async fn owner(app: &TestApp, email: &str) -> String {
    let b = app.user(email).await;
    app.token(&b, &["billing:read", "billing:write"]).await
}

async fn checkout(app: &TestApp, token: &str, body_: Value, key: &str) -> reqwest::Response {
    app.plain()
        .post(app.url("/v1/billing/checkout"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body_)
        .send()
        .await
        .unwrap()
}

async fn available(app: &TestApp, token: &str) -> i64 {
    let r = app
        .plain()
        .get(app.url("/v1/credits"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    body(r).await["available"].as_i64().unwrap()
}

#[tokio::test]
async fn a_pack_bought_through_stripe_adds_its_credits_once() {
    let (providers, api) = Providers::start().await;
    let p2 = providers.clone();
    both_with(
        move |c| configure(c, &api),
        move |app| {
            let providers = p2.clone();
            async move {
                let before = providers.count("stripe");
                // The pricing page reads the packs without signing in.
                let packs = body(app.plain().get(app.url("/v1/billing/packs")).send().await.unwrap()).await;
                assert_eq!(packs["packs"][0]["id"], "credits-1000");
                assert_eq!(packs["packs"][0]["prices"]["usd"], 1000);
                assert_eq!(packs["providers"], json!(["stripe", "razorpay"]));

                let token = owner(&app, "buyer@example.com").await;
                let want = json!({"pack": "credits-1000", "currency": "USD"});
                let r = checkout(&app, &token, want.clone(), "buy-1").await;
                assert_eq!(r.status(), 201);
                let opened = body(r).await;
                let order = opened["order"].clone();
                assert_eq!(order["status"], "open");
                assert_eq!((order["amount"].as_i64(), order["currency"].as_str()), (Some(1000), Some("usd")));
                assert!(opened["checkout_url"].as_str().unwrap().starts_with("https://checkout.stripe.com/"));
                // A retried purchase (same Idempotency-Key) is the same order, not a second one.
                let again = body(checkout(&app, &token, want, "buy-1").await).await;
                assert_eq!(again["order"]["id"], order["id"]);
                assert_eq!(providers.count("stripe") - before, 1, "one checkout session");
                let form = providers.requests.lock().unwrap().last().unwrap().1.clone();
                assert!(form.contains("mode=payment"), "{form}");
                assert!(form.contains(&format!("client_reference_id={}", order["id"].as_str().unwrap())), "{form}");
                let orders = body(app.plain().get(app.url("/v1/billing/orders")).bearer_auth(&token).send().await.unwrap()).await;
                assert_eq!(orders["items"].as_array().unwrap().len(), 1);

                // Stripe says it is paid: the credits arrive, once, however often it says so.
                let paid = session_completed("evt_paid_1", &order, "pi_Test1", 1000);
                let r = stripe_event(&app, &paid, 5, STRIPE_WEBHOOK_SECRET).await;
                assert_eq!(r.status(), 200);
                assert!(body(r).await["outcome"].as_str().unwrap().starts_with("fulfilled"));
                assert_eq!(available(&app, &token).await, 1100);
                let r = stripe_event(&app, &paid, 5, STRIPE_WEBHOOK_SECRET).await;
                assert!(body(r).await["outcome"].as_str().unwrap().starts_with("duplicate"));
                let mut other = paid.clone();
                other["id"] = json!("evt_paid_async");
                other["type"] = json!("checkout.session.async_payment_succeeded");
                assert_eq!(stripe_event(&app, &other, 5, STRIPE_WEBHOOK_SECRET).await.status(), 200);
                assert_eq!(available(&app, &token).await, 1100, "the order's credits, once");
                let o = body(app.plain().get(app.url(&format!("/v1/billing/orders/{}", order["id"].as_str().unwrap())))
                    .bearer_auth(&token).send().await.unwrap()).await;
                assert_eq!(o["status"], "paid");

                // Forged, replayed-late and unknown events.
                let forged = session_completed("evt_forged", &order, "pi_Test1", 1000);
                let r = stripe_event(&app, &forged, 5, "whsec_someone_else").await;
                problem(r, 400, "invalid-signature").await;
                let r = stripe_event(&app, &forged, 301, STRIPE_WEBHOOK_SECRET).await;
                problem(r, 400, "invalid-signature").await;
                let r = app.plain().post(app.url("/v1/payments/stripe/webhook")).body("{}").send().await.unwrap();
                problem(r, 400, "invalid-signature").await;
                let unknown = json!({"id": "evt_x", "object": "event", "type": "customer.created", "created": 1,
                                     "data": {"object": {"id": "cus_1", "object": "customer"}}});
                let r = stripe_event(&app, &unknown, 0, STRIPE_WEBHOOK_SECRET).await;
                assert_eq!(r.status(), 200);
                assert!(body(r).await["outcome"].as_str().unwrap().contains("not handled"));
                assert_eq!(available(&app, &token).await, 1100);

                // The customer portal opens for the Stripe customer of the paid order.
                let r = app.plain().post(app.url("/v1/billing/portal")).bearer_auth(&token).json(&json!({})).send().await.unwrap();
                assert_eq!(r.status(), 200);
                assert!(body(r).await["url"].as_str().unwrap().starts_with("https://billing.stripe.com/"));
                let portal = providers.requests.lock().unwrap().iter().rev().find(|(w, _)| w == "portal").unwrap().1.clone();
                assert!(portal.contains("customer=cus_Test1"), "{portal}");
                app.stop().await;
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_refund_that_arrives_before_its_payment_is_retried_and_takes_the_credits_back() {
    let (_providers, api) = Providers::start().await;
    both_with(
        move |c| configure(c, &api),
        |app| async move {
            let token = owner(&app, "refund@example.com").await;
            let opened = body(
                checkout(
                    &app,
                    &token,
                    json!({"pack": "credits-1000", "currency": "usd"}),
                    "r-1",
                )
                .await,
            )
            .await;
            let order = opened["order"].clone();
            // A refund of a payment this instance never saw, days old: acknowledged, not retried forever.
            let mut stale = charge_refunded("evt_refund_unknown", "pi_Elsewhere", 500);
            stale["created"] = json!(app.app.now().unix_timestamp() - 2 * 86_400);
            let r = stripe_event(&app, &stale, 0, STRIPE_WEBHOOK_SECRET).await;
            assert_eq!(r.status(), 200);
            assert!(
                body(r).await["outcome"]
                    .as_str()
                    .unwrap()
                    .starts_with("ignored")
            );
            // Out of order: the refund first. Not applicable yet, so the provider is asked to retry.
            let refund = charge_refunded("evt_refund_1", "pi_Refund", 1000);
            let r = stripe_event(&app, &refund, 0, STRIPE_WEBHOOK_SECRET).await;
            problem(r, 409, "state-conflict").await;
            let paid = session_completed("evt_paid_2", &order, "pi_Refund", 1000);
            assert_eq!(
                stripe_event(&app, &paid, 0, STRIPE_WEBHOOK_SECRET)
                    .await
                    .status(),
                200
            );
            assert_eq!(available(&app, &token).await, 1100);
            // The redelivered refund now applies, and only once.
            let r = stripe_event(&app, &refund, 0, STRIPE_WEBHOOK_SECRET).await;
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
            assert_eq!(
                stripe_event(&app, &refund, 0, STRIPE_WEBHOOK_SECRET)
                    .await
                    .status(),
                200
            );
            assert_eq!(available(&app, &token).await, 100);
            let o = body(
                app.plain()
                    .get(app.url(&format!(
                        "/v1/billing/orders/{}",
                        order["id"].as_str().unwrap()
                    )))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(
                (o["status"].as_str(), o["refunded"].as_i64()),
                (Some("refunded"), Some(1000))
            );
            let entries = body(
                app.plain()
                    .get(app.url("/v1/credits/entries?kind=adjust"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            let e = &entries["items"][0];
            assert_eq!(
                (e["amount"].as_i64(), e["source"].as_str()),
                (Some(-1000), Some("payment-refund"))
            );

            // Two partial refunds of another order reported at once (Stripe sends the charge's
            // refunded total so far): credits go back for each refunded cent once.
            let opened = body(
                checkout(
                    &app,
                    &token,
                    json!({"pack": "credits-1000", "currency": "usd"}),
                    "r-2",
                )
                .await,
            )
            .await;
            let paid = session_completed("evt_paid_3", &opened["order"], "pi_Partial", 1000);
            assert_eq!(
                stripe_event(&app, &paid, 0, STRIPE_WEBHOOK_SECRET)
                    .await
                    .status(),
                200
            );
            assert_eq!(available(&app, &token).await, 1100);
            let (r300, r800) = (
                charge_refunded("evt_part_300", "pi_Partial", 300),
                charge_refunded("evt_part_800", "pi_Partial", 800),
            );
            let (a, b) = tokio::join!(
                stripe_event(&app, &r300, 0, STRIPE_WEBHOOK_SECRET),
                stripe_event(&app, &r800, 0, STRIPE_WEBHOOK_SECRET),
            );
            assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
            assert_eq!(
                available(&app, &token).await,
                300,
                "800 of 1000 cents refunded: 800 credits back"
            );
            let o = body(
                app.plain()
                    .get(app.url(&format!(
                        "/v1/billing/orders/{}",
                        opened["order"]["id"].as_str().unwrap()
                    )))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(
                (o["status"].as_str(), o["refunded"].as_i64()),
                (Some("paid"), Some(800))
            );
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn a_payment_for_the_wrong_amount_adds_nothing() {
    let (_providers, api) = Providers::start().await;
    both_with(
        move |c| configure(c, &api),
        |app| async move {
            let token = owner(&app, "cheap@example.com").await;
            let opened = body(
                checkout(
                    &app,
                    &token,
                    json!({"pack": "credits-1000", "currency": "usd"}),
                    "w-1",
                )
                .await,
            )
            .await;
            let paid = session_completed("evt_cheap", &opened["order"], "pi_Cheap", 1);
            let r = stripe_event(&app, &paid, 0, STRIPE_WEBHOOK_SECRET).await;
            assert_eq!(r.status(), 200);
            assert!(
                body(r).await["outcome"]
                    .as_str()
                    .unwrap()
                    .starts_with("refused")
            );
            assert_eq!(available(&app, &token).await, 100);
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn a_pack_bought_in_rupees_goes_through_razorpay_and_its_credits_arrive_once() {
    let (providers, api) = Providers::start().await;
    let p2 = providers.clone();
    both_with(
        move |c| configure(c, &api),
        move |app| {
            let providers = p2.clone();
            async move {
                let before = providers.count("razorpay");
                let token = owner(&app, "mumbai@example.com").await;
                let r = checkout(
                    &app,
                    &token,
                    json!({"pack": "credits-1000", "currency": "inr"}),
                    "in-1",
                )
                .await;
                assert_eq!(r.status(), 201);
                let opened = body(r).await;
                let order = &opened["order"];
                assert_eq!(order["provider"], "razorpay");
                let rzp_order = opened["razorpay"]["order_id"].as_str().unwrap().to_owned();
                assert!(rzp_order.starts_with("order_"));
                assert_eq!(opened["razorpay"]["key"], "rzp_test_key");
                assert!(
                    !opened.to_string().contains(RAZORPAY_KEY_SECRET),
                    "no secret reaches the page"
                );
                assert_eq!(providers.count("razorpay") - before, 1);
                let sent: Value =
                    serde_json::from_str(&providers.requests.lock().unwrap().last().unwrap().1)
                        .unwrap();
                assert_eq!(
                    (sent["amount"].as_i64(), sent["currency"].as_str()),
                    (Some(80_000), Some("INR"))
                );

                let confirm =
                    |order_id: String, rzp: String, signature: String| {
                        app.plain()
                        .post(app.url(&format!("/v1/billing/orders/{order_id}/razorpay-payment")))
                        .bearer_auth(&token)
                        .json(&json!({"razorpay_order_id": rzp, "razorpay_payment_id": "pay_Test1",
                                      "razorpay_signature": signature}))
                        .send()
                    };
                let order_id = order["id"].as_str().unwrap().to_owned();
                problem(
                    confirm(order_id.clone(), rzp_order.clone(), "00".repeat(32))
                        .await
                        .unwrap(),
                    400,
                    "invalid-signature",
                )
                .await;
                assert_eq!(available(&app, &token).await, 100);
                let good = pixeld_payments::testing::razorpay_payment_signature(
                    RAZORPAY_KEY_SECRET,
                    &rzp_order,
                    "pay_Test1",
                );
                let r = confirm(order_id.clone(), rzp_order.clone(), good.clone())
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(body(r).await["status"], "paid");
                assert_eq!(available(&app, &token).await, 1100);

                // A second order, which the buyer's browser tries to have paid by the same payment:
                // the signed Razorpay order decides, whatever the notes say.
                let second = body(
                    checkout(
                        &app,
                        &token,
                        json!({"pack": "credits-1000", "currency": "inr"}),
                        "in-2",
                    )
                    .await,
                )
                .await;
                let second_id = second["order"]["id"].as_str().unwrap().to_owned();
                problem(
                    confirm(second_id.clone(), rzp_order.clone(), good)
                        .await
                        .unwrap(),
                    400,
                    "invalid-signature",
                )
                .await;

                // Razorpay's payment.captured webhook for the first payment adds nothing more,
                // even with the second order's id in its notes.
                let event = json!({
                    "entity": "event", "account_id": "acc_Test", "event": "payment.captured",
                    "contains": ["payment"], "created_at": 1_767_225_600,
                    "payload": {"payment": {"entity": {
                        "id": "pay_Test1", "entity": "payment", "amount": 80_000, "currency": "INR",
                        "status": "captured", "order_id": rzp_order, "method": "upi",
                        "notes": {"order_id": second_id, "org_id": "x"}
                    }}}
                });
                let raw = serde_json::to_vec(&event).unwrap();
                let send = |raw: Vec<u8>, secret: &str| {
                    app.plain()
                        .post(app.url("/v1/payments/razorpay/webhook"))
                        .header(
                            "x-razorpay-signature",
                            pixeld_payments::testing::razorpay_signature(secret, &raw),
                        )
                        .header("x-razorpay-event-id", "evt_rzp_1")
                        .body(raw)
                        .send()
                };
                let r = send(raw.clone(), RAZORPAY_WEBHOOK_SECRET).await.unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(available(&app, &token).await, 1100);
                let o2 = body(
                    app.plain()
                        .get(app.url(&format!("/v1/billing/orders/{second_id}")))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(o2["status"], "open", "one payment pays one order");
                problem(send(raw, "wrong").await.unwrap(), 400, "invalid-signature").await;
                app.stop().await;
            }
        },
    )
    .await;
}

#[tokio::test]
async fn only_owners_buy_and_bad_requests_are_clear() {
    let (_providers, api) = Providers::start().await;
    both_with(
        move |c| configure(c, &api),
        |app| async move {
            let token = owner(&app, "picky@example.com").await;
            let p = problem(
                checkout(&app, &token, json!({"pack": "credits-7"}), "b-1").await,
                422,
                "validation",
            )
            .await;
            assert!(
                p["detail"]
                    .as_str()
                    .unwrap()
                    .contains("on sale: credits-1000, credits-5000"),
                "{p}"
            );
            let p = problem(
                checkout(
                    &app,
                    &token,
                    json!({"pack": "credits-1000", "currency": "jpy"}),
                    "b-2",
                )
                .await,
                422,
                "validation",
            )
            .await;
            assert!(
                p["detail"].as_str().unwrap().contains("eur, gbp, inr, usd"),
                "{p}"
            );
            let p = problem(
                checkout(
                    &app,
                    &token,
                    json!({"pack": "credits-1000", "success_url": "javascript:alert(1)"}),
                    "b-3",
                )
                .await,
                422,
                "validation",
            )
            .await;
            assert!(p["detail"].as_str().unwrap().contains("success_url"), "{p}");
            // A token without billing:write cannot buy.
            let b = app.user("reader@example.com").await;
            let reader = app.token(&b, &["billing:read"]).await;
            let p = problem(
                checkout(&app, &reader, json!({"pack": "credits-1000"}), "b-4").await,
                403,
                "missing-scope",
            )
            .await;
            assert_eq!(p["scope"], "billing:write");
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn paid_orders_get_gapless_invoices_and_a_pdf_receipt_by_email() {
    let (_providers, api) = Providers::start().await;
    both_with(
        move |c| {
            configure(c, &api);
            c.invoices.seller_name = "Pixel Works GmbH".into();
            c.invoices.seller_address = vec!["Hauptstraße 1".into(), "10115 Berlin".into()];
            c.invoices.seller_country = Some("DE".into());
            c.invoices.seller_tax_id = Some("DE123456789".into());
            c.invoices.tax_name = "VAT".into();
            c.invoices.tax_rate_percent = 20.0;
        },
        |app| async move {
            let token = owner(&app, "ledger@example.com").await;
            // The buyer's details, printed on invoices from now on.
            let r = app
                .plain()
                .put(app.url("/v1/billing/profile"))
                .bearer_auth(&token)
                .json(&json!({"name": "Acme Ltd", "address": ["1 Long Road", "Leeds"], "country": "gb",
                              "tax_id": "GB999999973"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(body(r).await["country"], "GB");
            let r = app
                .plain()
                .put(app.url("/v1/billing/profile"))
                .bearer_auth(&token)
                .json(&json!({"name": "Acme", "country": "Britain"}))
                .send()
                .await
                .unwrap();
            problem(r, 422, "validation").await;

            for (i, key) in ["inv-1", "inv-2"].into_iter().enumerate() {
                let opened = body(checkout(&app, &token, json!({"pack": "credits-1000", "currency": "usd"}), key).await).await;
                let paid = session_completed(&format!("evt_inv_{i}"), &opened["order"], &format!("pi_Inv{i}"), 1000);
                assert_eq!(stripe_event(&app, &paid, 0, STRIPE_WEBHOOK_SECRET).await.status(), 200);
                // A redelivery issues no second invoice.
                let mut again = paid.clone();
                again["id"] = json!(format!("evt_inv_again_{i}"));
                assert_eq!(stripe_event(&app, &again, 0, STRIPE_WEBHOOK_SECRET).await.status(), 200);
            }
            let list = body(app.plain().get(app.url("/v1/billing/invoices")).bearer_auth(&token).send().await.unwrap()).await;
            let items = list["items"].as_array().unwrap();
            let numbers: Vec<&str> = items.iter().map(|i| i["number"].as_str().unwrap()).collect();
            // INV-{the organisation's series}-{gapless number}.
            let series = &numbers[0][4..12];
            assert!(series.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()), "{numbers:?}");
            assert_eq!(
                numbers,
                vec![format!("INV-{series}-000001"), format!("INV-{series}-000002")],
                "numbered without gaps"
            );
            let first = numbers[0].to_string();
            let inv = &items[0];
            assert_eq!((inv["subtotal"].as_i64(), inv["tax"].as_i64(), inv["total"].as_i64()), (Some(833), Some(167), Some(1000)));
            assert_eq!(inv["buyer"]["name"], "Acme Ltd");
            assert_eq!(inv["seller"]["tax_id"], "DE123456789");

            // The PDF is drawn by the render engine, with text a reader can extract.
            let r = app
                .plain()
                .get(inv["pdf_url"].as_str().unwrap())
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "application/pdf");
            let pdf = r.bytes().await.unwrap();
            assert!(pdf.starts_with(b"%PDF-"));
            let path = std::env::temp_dir().join(format!("pixeld-invoice-{}.pdf", uuid::Uuid::now_v7()));
            std::fs::write(&path, &pdf).unwrap();
            let out = std::process::Command::new("pdftotext").arg(&path).arg("-").output().expect("pdftotext (poppler-utils)");
            let _ = std::fs::remove_file(&path);
            let text = String::from_utf8_lossy(&out.stdout);
            for want in [first.as_str(), "Pixel Works GmbH", "DE123456789", "Acme Ltd", "GB999999973",
                         "USD 10.00", "USD 8.33", "USD 1.67", "VAT 20% (included)", "1000 credits"] {
                assert!(text.contains(want), "{want} missing from the PDF text:\n{text}");
            }

            // Each paid order's receipt was emailed once, with the invoice attached.
            let mails: Vec<String> = app
                .mail_to("ledger@example.com")
                .into_iter()
                .filter(|m| m.contains("Subject: Receipt"))
                .collect();
            assert_eq!(mails.len(), 2, "one receipt per order");
            assert!(mails[0].contains(&format!("Receipt {first}")), "{}", &mails[0][..400.min(mails[0].len())]);
            assert!(mails[0].contains("application/pdf"));
            assert!(mails[0].contains(&format!("{first}.pdf")));

            // An erased account's financial records stay, anonymised: no name, address, tax id or
            // email of the buyer, no member or token behind them; the amounts and numbers remain.
            let org = app.app.store.user_by_email("ledger@example.com").await.unwrap().unwrap().personal_org_id;
            app.app.anonymise_financial_records(org).await.unwrap();
            let list = body(app.plain().get(app.url("/v1/billing/invoices")).bearer_auth(&token).send().await.unwrap()).await;
            let inv = &list["items"][0];
            assert_eq!(inv["buyer"]["name"], "Deleted account");
            assert_eq!(inv["buyer"]["country"], "GB", "kept for tax records");
            assert!(inv["buyer"]["tax_id"].is_null() && inv["buyer"]["address"].as_array().unwrap().is_empty());
            assert_eq!((inv["number"].as_str(), inv["total"].as_i64()), (Some(first.as_str()), Some(1000)));
            let listed = list.to_string();
            for gone in ["Acme Ltd", "Long Road", "GB999999973"] {
                assert!(!listed.contains(gone), "{gone} is still in {listed}");
            }
            let profile = body(app.plain().get(app.url("/v1/billing/profile")).bearer_auth(&token).send().await.unwrap()).await;
            assert_eq!(profile["name"], "");
            let entries = body(app.plain().get(app.url("/v1/credits/entries?kind=grant")).bearer_auth(&token).send().await.unwrap()).await;
            assert!(entries["items"].as_array().unwrap().iter().all(|e| e["token_id"].is_null()));
            let totals = app.app.credit_totals(org).await.unwrap();
            assert!(totals.consistent(), "{totals:?}");
            // Provider events are remembered 30 days, orders and invoices 7 years.
            app.clock.advance(time::Duration::days(31));
            let report = app.app.sweep().await.unwrap();
            assert_eq!(report.payment_events, 4);
            assert_eq!(report.financial_records, 0);
            app.clock.advance(time::Duration::days(6 * 365));
            assert_eq!(app.app.sweep().await.unwrap().financial_records, 0, "not before 7 years");
            app.clock.advance(time::Duration::days(365));
            assert_eq!(app.app.sweep().await.unwrap().financial_records, 4, "2 invoices, 2 orders");
            let list = body(app.plain().get(app.url("/v1/billing/invoices")).bearer_auth(&token).send().await.unwrap()).await;
            assert!(list["items"].as_array().unwrap().is_empty());
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn the_pricing_page_suggests_the_visitors_currency_and_remembers_a_choice() {
    let db = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(pixeld_server::geo::SETUP_PATH);
    if !db.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "scripts/setup installs {}",
            db.display()
        );
        eprintln!("skipping: no GeoIP database (run scripts/setup)");
        return;
    }
    let (providers, api) = Providers::start().await;
    let p2 = providers.clone();
    both_with(
        move |c| {
            configure(c, &api);
            c.trust_proxy_headers = true;
            c.geoip_database = Some(db.clone());
        },
        move |app| {
            let providers = p2.clone();
            async move {
                let packs_from = |ip: &'static str| {
                    app.plain()
                        .get(app.url("/v1/billing/packs"))
                        .header("x-forwarded-for", ip)
                        .send()
                };
                let us = body(packs_from("8.8.8.8").await.unwrap()).await;
                assert_eq!(
                    (us["country"].as_str(), us["currency"].as_str()),
                    (Some("US"), Some("usd"))
                );
                let ie = body(packs_from("2a00:1450:4001::1").await.unwrap()).await;
                assert_eq!(ie["currency"], "eur");
                let india = body(packs_from("49.44.0.1").await.unwrap()).await;
                assert_eq!(
                    (india["country"].as_str(), india["currency"].as_str()),
                    (Some("IN"), Some("inr"))
                );

                // A buyer in India who names no currency pays in rupees, through Razorpay.
                let token = owner(&app, "delhi@example.com").await;
                let before = providers.count("razorpay");
                let r = app
                    .plain()
                    .post(app.url("/v1/billing/checkout"))
                    .bearer_auth(&token)
                    .header("x-forwarded-for", "49.44.0.1")
                    .json(&json!({"pack": "credits-1000"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                let o = body(r).await;
                assert_eq!(
                    (
                        o["order"]["currency"].as_str(),
                        o["order"]["provider"].as_str()
                    ),
                    (Some("inr"), Some("razorpay"))
                );
                assert_eq!(providers.count("razorpay") - before, 1);

                // The visitor overrides it; the choice is kept in one strictly necessary cookie.
                let b = reqwest::Client::builder()
                    .cookie_store(true)
                    .build()
                    .unwrap();
                let r = b
                    .put(app.url("/v1/billing/currency"))
                    .json(&json!({"currency": "GBP"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
                assert!(
                    cookie.starts_with("pixeld_currency=gbp;") && cookie.contains("HttpOnly"),
                    "{cookie}"
                );
                let chosen = body(
                    b.get(app.url("/v1/billing/packs"))
                        .header("x-forwarded-for", "49.44.0.1")
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(chosen["currency"], "gbp");
                let r = b
                    .put(app.url("/v1/billing/currency"))
                    .json(&json!({"currency": "xyz"}))
                    .send()
                    .await
                    .unwrap();
                let p = problem(r, 422, "validation").await;
                assert!(
                    p["detail"].as_str().unwrap().contains("eur, gbp, inr, usd"),
                    "{p}"
                );
                app.stop().await;
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_paid_plan_grants_its_credits_each_paid_period_until_it_is_cancelled() {
    let (providers, api) = Providers::start().await;
    let p2 = providers.clone();
    both_with(
        move |c| {
            configure(c, &api);
            c.credits.plans = vec![pixeld_core::plans::Plan {
                id: "pro".into(),
                name: "Pro".into(),
                monthly_credits: 5000,
                prices: [("usd".to_string(), 1900)].into(),
                stripe_prices: [("usd".to_string(), "price_pro_usd".to_string())].into(),
                features: vec!["5000 credits a month".into(), "Priority renders".into()],
            }];
        },
        move |app| {
            let providers = p2.clone();
            async move {
                let plans = body(app.plain().get(app.url("/v1/billing/plans")).send().await.unwrap()).await;
                assert_eq!(
                    plans.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect::<Vec<_>>(),
                    vec!["free", "pro"]
                );
                let token = owner(&app, "pro@example.com").await;
                assert_eq!(available(&app, &token).await, 100, "the free plan's month");
                let r = checkout(&app, &token, json!({"plan": "pro"}), "sub-1").await;
                assert_eq!(r.status(), 201);
                let opened = body(r).await;
                let form = providers.requests.lock().unwrap().iter().rev().find(|(w, _)| w == "stripe").unwrap().1.clone();
                assert!(form.contains("mode=subscription"), "{form}");
                assert!(form.contains("line_items%5B0%5D%5Bprice%5D=price_pro_usd"), "{form}");
                let p = problem(checkout(&app, &token, json!({"plan": "pro", "provider": "razorpay"}), "sub-2").await, 422, "validation").await;
                assert!(p["detail"].as_str().unwrap().contains("plans are sold through Stripe"), "{p}");

                let period_end = app.app.now().unix_timestamp() + 30 * 86_400;
                let invoice_paid = |event: &str| {
                    json!({
                        "id": event, "object": "event", "type": "invoice.paid", "created": 1_767_225_600,
                        "data": {"object": {
                            "id": "in_Pro1", "object": "invoice", "customer": "cus_Pro", "amount_paid": 1900,
                            "currency": "usd", "status": "paid",
                            "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_Pro1"}},
                            "lines": {"object": "list", "data": [{
                                "period": {"start": period_end - 30 * 86_400, "end": period_end},
                                "pricing": {"price_details": {"price": "price_pro_usd"}}
                            }]}
                        }}
                    })
                };
                // Stripe's first invoice may come before the checkout's completion: retried.
                problem(stripe_event(&app, &invoice_paid("evt_in_1"), 0, STRIPE_WEBHOOK_SECRET).await, 409, "state-conflict").await;
                let mut done = session_completed("evt_sub_done", &opened["order"], "pi_unused", 1900);
                done["data"]["object"]["mode"] = json!("subscription");
                done["data"]["object"]["subscription"] = json!("sub_Pro1");
                done["data"]["object"]["customer"] = json!("cus_Pro");
                let r = stripe_event(&app, &done, 0, STRIPE_WEBHOOK_SECRET).await;
                assert!(body(r).await["outcome"].as_str().unwrap().starts_with("subscribed"));
                let r = stripe_event(&app, &invoice_paid("evt_in_1"), 0, STRIPE_WEBHOOK_SECRET).await;
                assert_eq!(r.status(), 200);
                assert_eq!(available(&app, &token).await, 5100);
                // The same invoice reported again adds nothing.
                assert_eq!(stripe_event(&app, &invoice_paid("evt_in_1_again"), 0, STRIPE_WEBHOOK_SECRET).await.status(), 200);
                assert_eq!(available(&app, &token).await, 5100);
                let grants = body(app.plain().get(app.url("/v1/credits/entries?kind=grant")).bearer_auth(&token).send().await.unwrap()).await;
                let plan_grant = grants["items"].as_array().unwrap().iter().find(|e| e["amount"] == 5000).unwrap().clone();
                assert_eq!(plan_grant["source"], "plan");
                assert!(plan_grant["expires_at"].is_string(), "a period's credits expire with it");
                let invoices = body(app.plain().get(app.url("/v1/billing/invoices")).bearer_auth(&token).send().await.unwrap()).await;
                assert_eq!(invoices["items"][0]["total"], 1900);
                assert!(invoices["items"][0]["lines"][0]["description"].as_str().unwrap().contains("Pro"));

                let sub = |app: &TestApp| {
                    app.plain().get(app.url("/v1/billing/subscription")).bearer_auth(&token).send()
                };
                let s = body(sub(&app).await.unwrap()).await;
                assert_eq!((s["plan"].as_str(), s["status"].as_str()), (Some("pro"), Some("active")));
                // One paid plan at a time: changes go through the customer portal.
                problem(checkout(&app, &token, json!({"plan": "pro"}), "sub-3").await, 409, "state-conflict").await;
                let updated = json!({
                    "id": "evt_sub_upd", "object": "event", "type": "customer.subscription.updated", "created": 1_767_225_700,
                    "data": {"object": {"id": "sub_Pro1", "object": "subscription", "customer": "cus_Pro",
                        "status": "active", "cancel_at_period_end": true,
                        "items": {"data": [{"price": {"id": "price_pro_usd"}, "current_period_end": period_end}]}}}
                });
                assert_eq!(stripe_event(&app, &updated, 0, STRIPE_WEBHOOK_SECRET).await.status(), 200);
                let s = body(sub(&app).await.unwrap()).await;
                assert_eq!(s["cancel_at_period_end"], true);
                assert!(s["current_period_end"].is_string());
                let deleted = json!({
                    "id": "evt_sub_del", "object": "event", "type": "customer.subscription.deleted", "created": 1_767_225_800,
                    "data": {"object": {"id": "sub_Pro1", "object": "subscription", "customer": "cus_Pro", "status": "canceled"}}
                });
                assert_eq!(stripe_event(&app, &deleted, 0, STRIPE_WEBHOOK_SECRET).await.status(), 200);
                assert_eq!(body(sub(&app).await.unwrap()).await["plan"], "free");
                // An older update delivered late does not bring the plan back.
                let mut late = updated.clone();
                late["id"] = json!("evt_sub_late");
                late["created"] = json!(1_767_225_650);
                late["data"]["object"]["cancel_at_period_end"] = json!(false);
                let r = stripe_event(&app, &late, 0, STRIPE_WEBHOOK_SECRET).await;
                assert!(body(r).await["outcome"].as_str().unwrap().starts_with("ignored"));
                assert_eq!(body(sub(&app).await.unwrap()).await["plan"], "free");
                app.stop().await;
            }
        },
    )
    .await;
}

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 16) as u8, (y * 16) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// Where the story's objects live: the data folder, or an S3 bucket (moto) beside it.
#[derive(Clone)]
enum Objects {
    Local,
    S3(String),
}

const STORY_BUCKET: &str = "pixeld-story";

/// Bytes as text for the trace scan; a ZIP (an export) is opened, since its compressed
/// entries would hide what they hold.
fn readable(bytes: &[u8], out: &mut String) {
    if bytes.starts_with(b"PK")
        && let Ok(mut z) = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec()))
    {
        for i in 0..z.len() {
            let mut entry = Vec::new();
            if let Ok(mut f) = z.by_index(i) {
                out.push_str(&f.name().map(|n| n.to_string()).unwrap_or_default());
                out.push('\n');
                let _ = std::io::Read::read_to_end(&mut f, &mut entry);
            }
            readable(&entry, out);
        }
        return;
    }
    out.push_str(&String::from_utf8_lossy(bytes));
    out.push('\n');
}

/// Everything stored outside the database: the data folder (outbox included) and, for S3,
/// every object in the bucket.
async fn stored_text(app: &TestApp, objects: &Objects) -> String {
    let mut out = app.objects_text();
    // The folder again with exports opened.
    fn walk(dir: &std::path::Path, out: &mut String) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(bytes) = std::fs::read(&p) {
                readable(&bytes, out);
            }
        }
    }
    walk(&app.data_dir(), &mut out);
    if let Objects::S3(endpoint) = objects {
        for key in crate::support::bucket_keys(endpoint, STORY_BUCKET).await {
            out.push_str(&key);
            out.push('\n');
            let bytes = reqwest::get(format!("{endpoint}/{STORY_BUCKET}/{key}"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            readable(&bytes, &mut out);
        }
    }
    out
}

/// The whole story of one user — sign up, upload, render, pay, delete, grace period — and then
/// a scan of every table and every stored object (outbox included) for anything that names
/// them: email, name, company, address, tax id, IP address.
#[tokio::test]
async fn deleted_account_is_purged_after_30_days_but_invoices_remain_anonymised() {
    let (_providers, api) = Providers::start().await;
    both_with(
        move |c| configure(c, &api),
        |app| whole_story(app, Objects::Local),
    )
    .await;
}

/// The same story with uploads, renders and the export in an S3-compatible bucket: nothing of
/// the user is left in it either.
#[tokio::test]
async fn deleted_account_leaves_no_trace_in_an_s3_bucket() {
    let Some(s3) = crate::support::moto().await else {
        return;
    };
    let endpoint = s3.endpoint.clone();
    let (_providers, api) = Providers::start().await;
    let e2 = endpoint.clone();
    both_with(
        move |c| {
            configure(c, &api);
            c.objects = pixeld_server::config::ObjectsConfig::S3 {
                bucket: STORY_BUCKET.into(),
                region: "us-east-1".into(),
                endpoint: Some(e2.clone()),
                access_key_id: Some("test".into()),
                secret_access_key: Some("test".into()),
                allow_http: true,
            };
        },
        move |app| {
            let endpoint = endpoint.clone();
            async move {
                // A fresh bucket per backend.
                for k in crate::support::bucket_keys(&endpoint, STORY_BUCKET).await {
                    let _ = reqwest::Client::new()
                        .delete(format!("{endpoint}/{STORY_BUCKET}/{k}"))
                        .send()
                        .await;
                }
                let _ = reqwest::Client::new()
                    .put(format!("{endpoint}/{STORY_BUCKET}"))
                    .send()
                    .await;
                whole_story(app, Objects::S3(endpoint)).await;
            }
        },
    )
    .await;
    drop(s3);
}

async fn whole_story(app: TestApp, objects: Objects) {
    const EMAIL: &str = "zebulon.quixote@example.com";
    const NAME: &str = "Zebulon Quixote";
    {
        {
            let r = app
                .plain()
                .post(app.url("/v1/auth/signup"))
                .json(&json!({"email": EMAIL, "password": crate::support::PASSWORD, "name": NAME, "age_confirmed": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let verify = app.link_token(EMAIL, "/verify-email");
            let r = app
                .plain()
                .post(app.url("/v1/auth/verify-email"))
                .json(&json!({"token": verify}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let browser = app.browser();
            let r = browser
                .post(app.url("/v1/auth/signin"))
                .json(&json!({"email": EMAIL, "password": crate::support::PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let token = app
                .token(
                    &browser,
                    &[
                        "images:read",
                        "images:write",
                        "render",
                        "billing:read",
                        "billing:write",
                    ],
                )
                .await;
            let user = app.app.store.user_by_email(EMAIL).await.unwrap().unwrap();
            let org = user.personal_org_id;

            // Upload and render: objects in the store.
            let r = app
                .plain()
                .post(app.url("/v1/images"))
                .bearer_auth(&token)
                .header("content-type", "image/png")
                .body(png())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            let t = app.plain().post(app.url("/v1/templates")).bearer_auth(&token)
                .json(&json!({"name": "Card", "template": {
                    "page": {"width": 64, "height": 32, "background": "#0f172a"},
                    "layers": [{"type": "text", "name": "t", "x": 0, "y": 0, "width": 64, "height": 32,
                                "text": "{{t}}", "size": 12, "color": "#ffffff"}]}}))
                .send().await.unwrap();
            let tid = body(t).await["id"].as_str().unwrap().to_owned();
            let r = app
                .plain()
                .post(app.url("/v1/renders"))
                .bearer_auth(&token)
                .json(&json!({"template": tid, "data": {"t": "hi"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);

            // Pay, with billing details on the invoice.
            let r = app
                .plain()
                .put(app.url("/v1/billing/profile"))
                .bearer_auth(&token)
                .json(
                    &json!({"name": "Quixote Trading", "address": ["7 Windmill Lane", "La Mancha"],
                              "country": "es", "tax_id": "ESX1234567X"}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let r = browser
                .patch(app.url("/v1/account/profile"))
                .json(&json!({"phone": "+44 7700 900123", "company": "Quixote Trading"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            // Write to support, with personal details in the text, and get an answer.
            let r = browser
                .post(app.url("/v1/support/requests"))
                .json(
                    &json!({"subject": "Rocinante Ltd invoice", "category": "billing",
                              "body": "Call me on +44 7700 900123 about Rocinante Ltd."}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let ticket = body(r).await["request"]["id"].as_str().unwrap().to_owned();
            let ops = app.operator("ops@example.com").await;
            let r = ops
                .post(app.url(&format!("/v1/admin/support/requests/{ticket}/messages")))
                .json(&json!({"body": "Sent to Rocinante Ltd."}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let opened = body(
                checkout(
                    &app,
                    &token,
                    json!({"pack": "credits-1000", "currency": "usd"}),
                    "story-1",
                )
                .await,
            )
            .await;
            let paid = session_completed("evt_story", &opened["order"], "pi_Story", 1000);
            assert_eq!(
                stripe_event(&app, &paid, 0, STRIPE_WEBHOOK_SECRET)
                    .await
                    .status(),
                200
            );
            app.app.flush_usage().await.unwrap();
            // Export: a ZIP of everything about them lands in the object store.
            let r = browser
                .post(app.url("/v1/account/export"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            for _ in 0..300 {
                if app
                    .mail_to(EMAIL)
                    .iter()
                    .any(|m| m.contains("data export is ready"))
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(
                app.mail_to(EMAIL)
                    .iter()
                    .any(|m| m.contains("data export is ready"))
            );
            let before = app.database_text().await;
            for trace in [
                EMAIL,
                NAME,
                "Quixote Trading",
                "+44 7700 900123",
                "127.0.0.1",
                "Rocinante Ltd",
            ] {
                assert!(
                    before.contains(trace),
                    "the scan must see {trace} before the deletion"
                );
            }
            let stored = stored_text(&app, &objects).await;
            assert!(
                stored.contains(EMAIL),
                "the scan must see the export's contents"
            );
            if matches!(objects, Objects::S3(_)) {
                assert!(stored.contains("exports/"), "the export is in the bucket");
            }
            let invoice_number = body(
                app.plain()
                    .get(app.url("/v1/billing/invoices"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await["items"][0]["number"]
                .as_str()
                .unwrap()
                .to_owned();

            // Delete, wait out the grace period, sweep.
            let r = browser
                .delete(app.url("/v1/account"))
                .json(&json!({"current_password": crate::support::PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            app.clock.advance(time::Duration::days(29));
            assert_eq!(
                app.app.sweep().await.unwrap().deleted_accounts,
                0,
                "not during the grace period"
            );
            assert!(app.app.store.user_by_email(EMAIL).await.unwrap().is_some());
            app.clock.advance(time::Duration::days(2));
            assert_eq!(app.app.sweep().await.unwrap().deleted_accounts, 1);
            assert_eq!(
                app.app.sweep().await.unwrap().deleted_accounts,
                0,
                "idempotent"
            );

            assert!(app.app.store.user_by_email(EMAIL).await.unwrap().is_none());
            assert!(app.app.store.org_by_id(org).await.unwrap().is_none());
            // The invoice stays for its 7 years, anonymised, with its number and amounts.
            let page = pixeld_core::page::PageRequest::parse(None, None).unwrap();
            let invoices = app.app.store.list_invoices(org, page).await.unwrap();
            assert_eq!(invoices.len(), 1);
            assert_eq!(invoices[0].display_number, invoice_number);
            assert_eq!(invoices[0].buyer.name, "Deleted account");
            assert_eq!(invoices[0].total_minor, 1000);
            let totals = app.app.credit_totals(org).await.unwrap();
            assert!(totals.consistent(), "{totals:?}");
            // The erasure request is recorded as done (by account id only).
            let requests = app.app.store.data_requests_of(user.id).await.unwrap();
            assert_eq!(
                requests[0].status,
                pixeld_core::rights::RequestStatus::Completed
            );

            let db = app.database_text().await;
            let stored = stored_text(&app, &objects).await;
            for trace in [
                EMAIL,
                NAME,
                "Quixote Trading",
                "Windmill Lane",
                "ESX1234567X",
                "+44 7700 900123",
                "127.0.0.1",
                "Rocinante Ltd",
            ] {
                assert!(!db.contains(trace), "the database still holds {trace}");
                assert!(
                    !stored.contains(trace),
                    "the object store or outbox still holds {trace}"
                );
            }
            app.stop().await;
        }
    }
}

fn zip_entry(zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut f = zip
        .by_name(name)
        .unwrap_or_else(|_| panic!("{name} is missing from the export"));
    let mut out = Vec::new();
    f.read_to_end(&mut out).unwrap();
    out
}

#[tokio::test]
async fn export_contains_every_data_class() {
    let (_providers, api) = Providers::start().await;
    both_with(
        move |c| configure(c, &api),
        |app| async move {
            const EMAIL: &str = "export@example.com";
            let browser = app.user(EMAIL).await;
            let token = app
                .token(&browser, &["images:read", "images:write", "render", "billing:read", "billing:write", "account:read", "account:write"])
                .await;
            let r = browser.patch(app.url("/v1/account/profile"))
                .json(&json!({"phone": "+1 555 0100", "company": "Export Co"})).send().await.unwrap();
            assert_eq!(r.status(), 200);
            browser.put(app.url("/v1/account/consents/marketing_email")).json(&json!({"granted": true})).send().await.unwrap();
            let r = app.plain().post(app.url("/v1/support/requests")).bearer_auth(&token)
                .json(&json!({"subject": "Where is my invoice?", "category": "billing", "body": "Order of last week."}))
                .send().await.unwrap();
            assert_eq!(r.status(), 201);
            let upload = png();
            let r = app.plain().post(app.url("/v1/images")).bearer_auth(&token)
                .header("content-type", "image/png").body(upload.clone()).send().await.unwrap();
            assert_eq!(r.status(), 201);
            let image_id = body(r).await["id"].as_str().unwrap().to_owned();
            let t = app.plain().post(app.url("/v1/templates")).bearer_auth(&token)
                .json(&json!({"name": "Export card", "template": {
                    "page": {"width": 64, "height": 32, "background": "#0f172a"},
                    "layers": [{"type": "text", "name": "t", "x": 0, "y": 0, "width": 64, "height": 32,
                                "text": "{{t}}", "size": 12, "color": "#ffffff"}]}}))
                .send().await.unwrap();
            let template_id = body(t).await["id"].as_str().unwrap().to_owned();
            let r = app.plain().post(app.url("/v1/renders")).bearer_auth(&token)
                .json(&json!({"template": template_id, "data": {"t": "hi"}})).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let opened = body(checkout(&app, &token, json!({"pack": "credits-1000", "currency": "usd"}), "export-1").await).await;
            let paid = session_completed("evt_export", &opened["order"], "pi_Export", 1000);
            assert_eq!(stripe_event(&app, &paid, 0, STRIPE_WEBHOOK_SECRET).await.status(), 200);
            app.app.flush_usage().await.unwrap();

            let r = app.plain().post(app.url("/v1/account/export")).bearer_auth(&token).send().await.unwrap();
            assert_eq!(r.status(), 202);
            let export_id = body(r).await["id"].as_str().unwrap().to_owned();
            // Built in the background by the job queue; the link arrives by email.
            let mut link = None;
            for _ in 0..300 {
                if let Some(m) = app.mail_to(EMAIL).into_iter().find(|m| m.contains("data export is ready")) {
                    let i = m.find("http").unwrap();
                    link = Some(m[i..].split_whitespace().next().unwrap().to_owned());
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let link = link.expect("the export's email");
            let list = body(app.plain().get(app.url("/v1/account/exports")).bearer_auth(&token).send().await.unwrap()).await;
            assert_eq!(list["items"][0]["status"], "ready");

            let r = app.plain().get(&link).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "application/zip");
            let bytes = r.bytes().await.unwrap().to_vec();
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
            let manifest: Value = serde_json::from_slice(&zip_entry(&mut zip, "manifest.json")).unwrap();
            assert_eq!(manifest["schema_version"], 1);
            let readme = String::from_utf8(zip_entry(&mut zip, "README.txt")).unwrap();
            let classes: Vec<&str> = manifest["files"].as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap()).collect();
            for file in ["account.json", "consents.json", "processing.json", "data_requests.json", "sessions.json",
                         "tokens.json", "organisations.json", "usage.json", "credits.json", "orders.json",
                         "invoices.json", "templates.json", "images.json", "renders.json", "fonts.json",
                         "support.json"] {
                assert!(classes.contains(&file), "{file} is not in the manifest");
                assert!(readme.contains(file), "the README does not explain {file}");
                let v: Value = serde_json::from_slice(&zip_entry(&mut zip, file)).unwrap();
                if file != "account.json" && file != "processing.json" && file != "fonts.json" {
                    assert!(v.as_array().is_some_and(|a| !a.is_empty()), "{file} is empty: {v}");
                }
            }
            let account: Value = serde_json::from_slice(&zip_entry(&mut zip, "account.json")).unwrap();
            assert_eq!(account["email"], EMAIL);
            assert_eq!(account["profile"]["phone"], "+1 555 0100");
            let consents: Value = serde_json::from_slice(&zip_entry(&mut zip, "consents.json")).unwrap();
            assert!(consents.as_array().unwrap().iter().any(|c| c["purpose"] == "marketing_email" && c["granted"] == true));
            let usage = String::from_utf8(zip_entry(&mut zip, "usage.json")).unwrap();
            assert!(usage.contains("/v1/renders"));
            let tokens = String::from_utf8(zip_entry(&mut zip, "tokens.json")).unwrap();
            assert!(!tokens.contains(&token), "a token secret in the export");
            assert_eq!(zip_entry(&mut zip, &format!("images/{image_id}.png")), upload, "the upload itself");
            let templates: Value = serde_json::from_slice(&zip_entry(&mut zip, "templates.json")).unwrap();
            let versions: Value = serde_json::from_slice(&zip_entry(&mut zip, templates[0]["versions"].as_str().unwrap())).unwrap();
            assert_eq!(versions[0]["template"]["page"]["width"], 64);
            let renders: Value = serde_json::from_slice(&zip_entry(&mut zip, "renders.json")).unwrap();
            assert!(zip_entry(&mut zip, renders[0]["file"].as_str().unwrap()).starts_with(b"\x89PNG"));
            let support: Value = serde_json::from_slice(&zip_entry(&mut zip, "support.json")).unwrap();
            assert_eq!(support[0]["subject"], "Where is my invoice?");
            assert_eq!(support[0]["messages"][0]["body"], "Order of last week.");
            let invoices: Value = serde_json::from_slice(&zip_entry(&mut zip, "invoices.json")).unwrap();
            assert!(zip_entry(&mut zip, invoices[0]["pdf"].as_str().unwrap()).starts_with(b"%PDF-"));

            // The link is the proof: forged or expired, it does nothing.
            let forged = link.replace("sig=", "sig=0");
            problem(app.plain().get(&forged).send().await.unwrap(), 400, "invalid-token").await;
            let user = app.app.store.user_by_email(EMAIL).await.unwrap().unwrap();
            let access = app.app.store.data_requests_of(user.id).await.unwrap().into_iter()
                .find(|r| r.kind == pixeld_core::rights::RequestKind::Access).unwrap();
            assert_eq!(access.status, pixeld_core::rights::RequestStatus::Completed);
            app.clock.advance(time::Duration::hours(25));
            problem(app.plain().get(&link).send().await.unwrap(), 400, "invalid-token").await;
            // Deleted (file and record) 7 days after it was made.
            app.clock.advance(time::Duration::days(5));
            assert_eq!(app.app.sweep().await.unwrap().exports, 0);
            app.clock.advance(time::Duration::days(2));
            assert_eq!(app.app.sweep().await.unwrap().exports, 1);
            assert!(app.app.store.export_by_id(export_id.parse().unwrap()).await.unwrap().is_none());
            assert!(!app.objects_text().contains("exports/"), "the ZIP is gone from the object store");
            app.stop().await;
        },
    )
    .await;
}

/// Razorpay's `payment_link.paid` webhook for a link whose `reference_id` is our order id.
async fn link_paid(
    app: &TestApp,
    link: &str,
    reference: &str,
    payment: &str,
    event_id: &str,
) -> reqwest::Response {
    let event = json!({
        "entity": "event", "account_id": "acc_Test", "event": "payment_link.paid",
        "contains": ["payment_link", "order", "payment"], "created_at": 1_767_225_600,
        "payload": {
            "payment_link": {"entity": {"id": link, "reference_id": reference,
                "amount": 80_000, "currency": "INR", "status": "paid"}},
            "payment": {"entity": {"id": payment, "entity": "payment",
                "amount": 80_000, "currency": "INR", "status": "captured",
                "order_id": "order_Internal1", "notes": []}}
        }
    });
    let raw = serde_json::to_vec(&event).unwrap();
    app.plain()
        .post(app.url("/v1/payments/razorpay/webhook"))
        .header(
            "x-razorpay-signature",
            pixeld_payments::testing::razorpay_signature(RAZORPAY_WEBHOOK_SECRET, &raw),
        )
        .header("x-razorpay-event-id", event_id)
        .body(raw)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_billing_page_pays_in_rupees_on_a_razorpay_payment_link_and_credits_once() {
    let (providers, api) = Providers::start().await;
    let p2 = providers.clone();
    both_with(
        move |c| configure(c, &api),
        move |app| {
            let providers = p2.clone();
            async move {
                let b = app.user("pune@example.com").await;
                let token = app.token(&b, &["billing:read"]).await;
                // The page sends the buyer to Razorpay's hosted page, never loading its script.
                let shows = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap();
                let cookie = {
                    let r = shows
                        .post(app.url("/v1/auth/signin"))
                        .header("origin", app.url(""))
                        .json(&json!({"email": "pune@example.com", "password": crate::support::PASSWORD}))
                        .send()
                        .await
                        .unwrap();
                    let c = r.headers()["set-cookie"].to_str().unwrap().to_owned();
                    c[..c.find(';').unwrap()].to_owned()
                };
                let csrf = body(
                    shows
                        .get(app.url("/v1/auth/session"))
                        .header("cookie", &cookie)
                        .send()
                        .await
                        .unwrap(),
                )
                .await["csrf_token"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let r = shows
                    .post(app.url("/billing/checkout"))
                    .header("cookie", format!("{cookie}; pixeld_currency=INR"))
                    .header("origin", app.url(""))
                    .form(&[("csrf_token", csrf.as_str()), ("pack", "credits-1000")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 303, "{:?}", r.text().await);
                let to = r.headers()["location"].to_str().unwrap().to_owned();
                assert!(to.starts_with("https://rzp.io/i/plink_"), "{to}");
                let link = to.trim_start_matches("https://rzp.io/i/").to_owned();
                let sent: Value = serde_json::from_str(
                    &providers
                        .requests
                        .lock()
                        .unwrap()
                        .iter()
                        .rev()
                        .find(|(w, _)| w == "razorpay-link")
                        .unwrap()
                        .1,
                )
                .unwrap();
                assert_eq!(sent["currency"], "INR");
                assert_eq!(sent["callback_url"], app.url("/billing/paid"));
                let reference = sent["reference_id"].as_str().unwrap().to_owned();
                let before = available(&app, &token).await;

                // Razorpay sends the buyer back with a signed query.
                let back = |status: &str, secret: &str| {
                    let sig = pixeld_payments::testing::razorpay_payment_link_signature(
                        secret, &link, &reference, status, "pay_Link1",
                    );
                    let q = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("razorpay_payment_id", "pay_Link1")
                        .append_pair("razorpay_payment_link_id", &link)
                        .append_pair("razorpay_payment_link_reference_id", &reference)
                        .append_pair("razorpay_payment_link_status", status)
                        .append_pair("razorpay_signature", &sig)
                        .finish();
                    shows
                        .get(app.url(&format!("/billing/paid?{q}")))
                        .header("cookie", &cookie)
                        .send()
                };
                let forged = back("paid", "not-the-secret").await.unwrap();
                assert_eq!(forged.status(), 400);
                assert!(forged.text().await.unwrap().contains("signature"));
                assert_eq!(available(&app, &token).await, before);
                let r = back("paid", RAZORPAY_KEY_SECRET).await.unwrap();
                assert_eq!(r.status(), 303);
                assert_eq!(r.headers()["location"], "/billing?done=credited");
                assert_eq!(available(&app, &token).await, before + 1000);
                // The same callback again (a reload), and Razorpay's payment_link.paid webhook:
                // nothing more.
                assert_eq!(back("paid", RAZORPAY_KEY_SECRET).await.unwrap().status(), 303);
                let r = link_paid(&app, &link, &reference, "pay_Link1", "evt_link_1").await;
                assert_eq!(r.status(), 200);
                assert_eq!(available(&app, &token).await, before + 1000);
                app.stop().await;
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_payment_link_paid_webhook_alone_fulfils_the_order() {
    let (_providers, api) = Providers::start().await;
    both_with(
        move |c| configure(c, &api),
        move |app| async move {
            let token = owner(&app, "delhi@example.com").await;
            let r = checkout(
                &app,
                &token,
                json!({"pack": "credits-1000", "currency": "inr", "hosted": true}),
                "link-1",
            )
            .await;
            assert_eq!(r.status(), 201);
            let opened = body(r).await;
            let url = opened["checkout_url"].as_str().unwrap().to_owned();
            assert!(url.starts_with("https://rzp.io/i/plink_"), "{opened}");
            assert!(opened["razorpay"].is_null());
            let link = url.trim_start_matches("https://rzp.io/i/").to_owned();
            let order_id = opened["order"]["id"].as_str().unwrap().to_owned();
            let before = available(&app, &token).await;
            // The buyer closed the tab before coming back: the webhook pays the order.
            let r = link_paid(&app, &link, &order_id, "pay_Link2", "evt_link_2").await;
            assert_eq!(r.status(), 200);
            assert_eq!(available(&app, &token).await, before + 1000);
            let o = body(
                app.plain()
                    .get(app.url(&format!("/v1/billing/orders/{order_id}")))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(o["status"], "paid");
            app.stop().await;
        },
    )
    .await;
}
