//! Asynchronous renders and their webhooks, delivered to a real HTTP receiver on loopback.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{TestApp, body, both_with, problem};

/// One POST the receiver got: its headers and raw body.
type Seen = (HeaderMap, Vec<u8>);

/// What the receiver saw: headers and raw body of each POST.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Statuses to answer, in order; 200 once they run out.
    script: Arc<Mutex<VecDeque<u16>>>,
    url: String,
}

impl Receiver {
    async fn start(script: &[u16]) -> Receiver {
        let mut r = Receiver {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            ..Receiver::default()
        };
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        r.url = format!("http://{}", l.local_addr().unwrap());
        let state = r.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                    let state = state.clone();
                    async move {
                        state.seen.lock().unwrap().push((headers, body.to_vec()));
                        let code = state.script.lock().unwrap().pop_front().unwrap_or(200);
                        (StatusCode::from_u16(code).unwrap(), "thanks")
                    }
                }),
            )
            .route(
                "/missing.png",
                axum::routing::get(|| async { StatusCode::NOT_FOUND }),
            );
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        r
    }

    fn hook(&self) -> String {
        format!("{}/hook", self.url)
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn get(&self, i: usize) -> (HeaderMap, Vec<u8>) {
        self.seen.lock().unwrap()[i].clone()
    }

    /// Waits (bounded) until `n` requests have arrived.
    async fn wait_for(&self, n: usize) {
        for _ in 0..600 {
            if self.count() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the receiver got {} requests, expected {n}", self.count());
    }
}

/// HMAC-SHA256 written out from RFC 2104, so the check does not share code with the server.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let ih = Sha256::new()
        .chain_update(&inner)
        .chain_update(msg)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(&outer)
            .chain_update(ih)
            .finalize(),
    )
}

/// The `t` and `v1` values of a `Pixeld-Signature` header.
fn signature(h: &HeaderMap) -> (i64, Vec<String>) {
    let v = h["pixeld-signature"].to_str().unwrap();
    let mut t = None;
    let mut v1 = Vec::new();
    for part in v.split(',') {
        match part.split_once('=').unwrap() {
            ("t", x) => t = Some(x.parse().unwrap()),
            ("v1", x) => v1.push(x.to_owned()),
            other => panic!("unexpected signature part {other:?}"),
        }
    }
    (t.unwrap(), v1)
}

fn card() -> Value {
    json!({
        "page": {"width": 320, "height": 160, "background": "#0f172a"},
        "variables": {"title": {}},
        "layers": [
            {"type": "text", "name": "title", "x": 10, "y": 10, "width": 300, "height": 80,
             "text": "{{title}}", "size": 32, "color": "#ffffff"}
        ]
    })
}

async fn template(app: &TestApp, token: &str, t: Value) -> String {
    let r = app
        .plain()
        .post(app.url("/v1/templates"))
        .bearer_auth(token)
        .json(&json!({"name": "Card", "template": t}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    body(r).await["id"].as_str().unwrap().to_owned()
}

async fn post(app: &TestApp, token: &str, path: &str, req: Value) -> reqwest::Response {
    app.plain()
        .post(app.url(path))
        .bearer_auth(token)
        .json(&req)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app
        .plain()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    body(r).await
}

/// Waits (bounded) until the render job leaves `pending`.
async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let r = get(app, token, &format!("/v1/render-jobs/{id}")).await;
        if r["status"] != "pending" {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("render {id} still pending");
}

/// Waits (bounded) until no job is queued or running.
async fn jobs_settled(app: &TestApp) {
    for _ in 0..600 {
        let now = pixeld_core::clock::Clock::now(&*app.clock);
        let counts = app.app.store.job_counts(now).await.unwrap();
        if counts
            .iter()
            .all(|c| c.count == 0 || matches!(c.state.as_str(), "done" | "failed"))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("jobs still queued or running");
}

fn now_unix(app: &TestApp) -> i64 {
    pixeld_core::clock::Clock::now(&*app.clock).unix_timestamp()
}

fn quick(c: &mut pixeld_server::config::Config) {
    c.fetch.allow_networks = vec!["127.0.0.1/32".into()];
    c.jobs.poll_ms = 20;
}

#[tokio::test]
async fn an_async_render_answers_at_once_and_its_webhook_is_signed() {
    both_with(quick, |app| async move {
        let b = app.user("async@example.com").await;
        let token = app.token(&b, &["render"]).await;
        let id = template(&app, &token, card()).await;
        let hook = Receiver::start(&[]).await;

        let r = post(
            &app,
            &token,
            "/v1/renders",
            json!({"template": id, "data": {"title": "Hello"}, "async": true,
                   "webhook_url": hook.hook(), "metadata": {"order": 42}}),
        )
        .await;
        assert_eq!(r.status(), 202);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let accepted = body(r).await;
        let render_id = accepted["id"].as_str().unwrap().to_owned();
        assert_eq!(location, format!("/v1/render-jobs/{render_id}"));
        assert_eq!(accepted["status"], "pending");
        assert_eq!(accepted["metadata"], json!({"order": 42}));

        hook.wait_for(1).await;
        let (headers, raw) = hook.get(0);
        let event: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(headers["pixeld-event"], "render.completed");
        assert_eq!(headers["pixeld-delivery"].to_str().unwrap(), event["id"]);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(event["type"], "render.completed");

        // The signature: HMAC of "{t}.{body}" with the organisation's secret, t = now.
        let secrets = body(b.get(app.url("/v1/webhook-secrets")).send().await.unwrap()).await;
        let secret = secrets[0]["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"));
        let (t, v1) = signature(&headers);
        assert_eq!(t, now_unix(&app));
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(&raw);
        assert_eq!(v1, vec![hmac_sha256(secret.as_bytes(), &signed)]);

        // The webhook carries exactly what the status URL shows.
        let status = finished(&app, &token, &render_id).await;
        assert_eq!(event["data"]["render"], status);
        assert_eq!(status["status"], "completed");
        assert_eq!(status["metadata"], json!({"order": 42}));
        let url = status["result"]["url"].as_str().unwrap();
        let img = app
            .plain()
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(img.status(), 200);
        assert_eq!(img.headers()["content-type"], "image/png");
        let png = image::load_from_memory(&img.bytes().await.unwrap()).unwrap();
        assert_eq!((png.width(), png.height()), (320, 160));

        // The delivery log.
        let log = get(&app, &token, "/v1/webhook-deliveries").await;
        let d = &log["items"][0];
        assert_eq!(
            (
                d["status"].as_str(),
                d["attempts"].as_i64(),
                d["last_status"].as_i64()
            ),
            (Some("delivered"), Some(1), Some(200))
        );
        let detail = get(
            &app,
            &token,
            &format!("/v1/webhook-deliveries/{}", d["id"].as_str().unwrap()),
        )
        .await;
        assert_eq!(detail["payload"], event);
        assert_eq!(detail["attempt_log"][0]["status_code"], 200);
        assert_eq!(detail["attempt_log"][0]["response_excerpt"], "thanks");

        // Rotation: while two secrets are live both sign; after the revocation only the new one.
        let new = body(b.post(app.url("/v1/webhook-secrets")).send().await.unwrap()).await;
        let new_secret = new["secret"].as_str().unwrap().to_owned();
        let again = |title: &str| {
            post(
                &app,
                &token,
                "/v1/renders",
                json!({"template": id, "data": {"title": title}, "async": true,
                       "webhook_url": hook.hook()}),
            )
        };
        assert_eq!(again("Two").await.status(), 202);
        hook.wait_for(2).await;
        let (h2, raw2) = hook.get(1);
        let (t2, v1) = signature(&h2);
        let mut signed = format!("{t2}.").into_bytes();
        signed.extend_from_slice(&raw2);
        let mut want = vec![
            hmac_sha256(secret.as_bytes(), &signed),
            hmac_sha256(new_secret.as_bytes(), &signed),
        ];
        want.sort();
        let mut got = v1.clone();
        got.sort();
        assert_eq!(got, want);
        let old_id = secrets[0]["id"].as_str().unwrap();
        let r = b
            .delete(app.url(&format!("/v1/webhook-secrets/{old_id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(again("Three").await.status(), 202);
        hook.wait_for(3).await;
        let (h3, raw3) = hook.get(2);
        let (t3, v1) = signature(&h3);
        let mut signed = format!("{t3}.").into_bytes();
        signed.extend_from_slice(&raw3);
        assert_eq!(v1, vec![hmac_sha256(new_secret.as_bytes(), &signed)]);
        // The last live secret stays until a replacement exists.
        let new_id = new["id"].as_str().unwrap();
        let r = b
            .delete(app.url(&format!("/v1/webhook-secrets/{new_id}")))
            .send()
            .await
            .unwrap();
        problem(r, 409, "state-conflict").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_async_requests_are_refused_before_anything_is_queued() {
    both_with(quick, |app| async move {
        let b = app.user("refused@example.com").await;
        let token = app.token(&b, &["render"]).await;
        let id = template(&app, &token, card()).await;
        let cases = [
            (
                json!({"template": id, "async": true, "data": {}}),
                "invalid-render-data",
            ),
            (
                json!({"template": id, "async": true, "data": {"title": "x"},
                       "modifications": [{"name": "nope", "text": "x"}]}),
                "invalid-render-data",
            ),
            (
                json!({"template": id, "async": true, "data": {"title": "x"},
                       "webhook_url": "ftp://example.com/hook"}),
                "validation",
            ),
            (
                json!({"template": id, "data": {"title": "x"},
                       "webhook_url": "https://example.com/hook"}),
                "validation",
            ),
            (
                json!({"template": id, "async": true, "data": {"title": "x"},
                       "metadata": {"blob": "x".repeat(5000)}}),
                "validation",
            ),
        ];
        for (req, kind) in cases {
            let p = problem(
                post(&app, &token, "/v1/renders", req.clone()).await,
                422,
                kind,
            )
            .await;
            assert!(
                p["detail"].is_string() || p["errors"].is_array(),
                "{req}: {p}"
            );
        }
        let r = post(
            &app,
            &token,
            "/v1/renders",
            json!({"template": uuid::Uuid::now_v7(), "async": true}),
        )
        .await;
        problem(r, 404, "not-found").await;
        let jobs = get(&app, &token, "/v1/render-jobs").await;
        assert_eq!(jobs["items"], json!([]), "nothing was queued");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_back_off_and_every_attempt_is_logged() {
    both_with(quick, |app| async move {
        let b = app.user("retry@example.com").await;
        let token = app.token(&b, &["render"]).await;
        let id = template(&app, &token, card()).await;
        let hook = Receiver::start(&[500, 503]).await;
        let r = post(
            &app,
            &token,
            "/v1/renders",
            json!({"template": id, "data": {"title": "Retry"}, "async": true,
                   "webhook_url": hook.hook()}),
        )
        .await;
        assert_eq!(r.status(), 202);
        hook.wait_for(1).await;
        let log = get(&app, &token, "/v1/webhook-deliveries").await;
        let delivery = log["items"][0]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/webhook-deliveries/{delivery}");
        let d = get(&app, &token, &path).await;
        assert_eq!(
            (d["status"].as_str(), d["attempts"].as_i64()),
            (Some("pending"), Some(1))
        );
        let first_at = now_unix(&app);

        // Not before 30 s…
        app.clock.advance(time::Duration::seconds(29));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(hook.count(), 1, "the second attempt waits 30 s");
        // …then again, and after two more minutes a third time.
        app.clock.advance(time::Duration::seconds(2));
        hook.wait_for(2).await;
        app.clock.advance(time::Duration::minutes(2));
        hook.wait_for(3).await;

        let d = loop {
            let d = get(&app, &token, &path).await;
            if d["status"] != "pending" {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        assert_eq!(d["status"], "delivered");
        let codes: Vec<i64> = d["attempt_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status_code"].as_i64().unwrap())
            .collect();
        assert_eq!(codes, vec![500, 503, 200]);
        assert_eq!(d["attempt_log"][0]["error"], "the receiver answered 500");

        // Same event each time (id and body); a fresh timestamp in each signature.
        let (h1, b1) = hook.get(0);
        let (h3, b3) = hook.get(2);
        assert_eq!(b1, b3);
        assert_eq!(h1["pixeld-delivery"], h3["pixeld-delivery"]);
        assert_eq!(signature(&h1).0, first_at);
        assert_eq!(signature(&h3).0, first_at + 31 + 120);

        // A redelivery sends it once more; a pending delivery cannot be redelivered twice.
        let r = post(&app, &token, &format!("{path}/redeliver"), json!({})).await;
        assert_eq!(r.status(), 202);
        hook.wait_for(4).await;
        assert_eq!(hook.get(3).1, b1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_well_is_given_up_on_and_gone_stops_at_once() {
    both_with(quick, |app| async move {
        let b = app.user("giveup@example.com").await;
        let token = app.token(&b, &["render"]).await;
        let id = template(&app, &token, card()).await;
        let hook = Receiver::start(&[500; 20]).await;
        let r = post(
            &app,
            &token,
            "/v1/renders",
            json!({"template": id, "data": {"title": "Never"}, "async": true,
                   "webhook_url": hook.hook()}),
        )
        .await;
        assert_eq!(r.status(), 202);
        hook.wait_for(1).await;
        // 30 s, 2 min, 10 min, 1 h, 6 h, 24 h: seven attempts in all.
        for (n, wait) in [30, 120, 600, 3600, 6 * 3600, 24 * 3600]
            .into_iter()
            .enumerate()
        {
            app.clock.advance(time::Duration::seconds(wait));
            hook.wait_for(n + 2).await;
        }
        app.clock.advance(time::Duration::days(3));
        let log = loop {
            let log = get(&app, &token, "/v1/webhook-deliveries").await;
            if log["items"][0]["status"] != "pending" {
                break log;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        assert_eq!(log["items"][0]["status"], "failed");
        assert_eq!(log["items"][0]["attempts"], 7);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(hook.count(), 7, "no eighth attempt");

        // 410 Gone: the receiver says the endpoint is gone, so no retries.
        let gone = Receiver::start(&[410]).await;
        let r = post(
            &app,
            &token,
            "/v1/renders",
            json!({"template": id, "data": {"title": "Gone"}, "async": true,
                   "webhook_url": gone.hook()}),
        )
        .await;
        assert_eq!(r.status(), 202);
        gone.wait_for(1).await;
        let log = loop {
            let log = get(&app, &token, "/v1/webhook-deliveries").await;
            if log["items"][1]["status"] != "pending" {
                break log;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        assert_eq!(
            (
                log["items"][1]["status"].as_str(),
                log["items"][1]["attempts"].as_i64()
            ),
            (Some("failed"), Some(1))
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_render_that_fails_says_why_in_its_webhook_and_records_are_swept() {
    both_with(quick, |app| async move {
        let b = app.user("broken@example.com").await;
        let token = app.token(&b, &["render"]).await;
        let hook = Receiver::start(&[]).await;
        let mut t = card();
        t["layers"].as_array_mut().unwrap().push(
            json!({"type": "image", "name": "photo", "x": 0, "y": 0, "width": 50,
                         "height": 50, "src": format!("{}/missing.png", hook.url)}),
        );
        let id = template(&app, &token, t).await;
        let r = post(
            &app,
            &token,
            "/v1/renders",
            json!({"template": id, "data": {"title": "Broken"}, "async": true,
                   "webhook_url": hook.hook()}),
        )
        .await;
        assert_eq!(r.status(), 202);
        let render_id = body(r).await["id"].as_str().unwrap().to_owned();
        hook.wait_for(1).await;
        let (headers, raw) = hook.get(0);
        let event: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(headers["pixeld-event"], "render.failed");
        let status = finished(&app, &token, &render_id).await;
        assert_eq!(event["data"]["render"], status);
        assert_eq!(status["status"], "failed");
        assert!(status["result"].is_null());
        assert!(
            status["error"]["type"]
                .as_str()
                .unwrap()
                .ends_with("/problems/fetch-failed"),
            "{status}"
        );
        assert!(
            status["error"]["detail"].as_str().unwrap().contains("404"),
            "{status}"
        );

        // The receiver has the webhook before the worker marks its job done; wait for both
        // jobs to finish so that the clock moves past them.
        jobs_settled(&app).await;
        // Render records and the delivery log are kept 30 days, then swept.
        app.clock.advance(time::Duration::days(29));
        let report = app.app.sweep().await.unwrap();
        assert_eq!((report.render_jobs, report.webhook_deliveries), (0, 0));
        assert_eq!(
            report.jobs, 2,
            "the finished render and webhook jobs go after 7 days"
        );
        app.clock.advance(time::Duration::days(2));
        let report = app.app.sweep().await.unwrap();
        assert_eq!((report.render_jobs, report.webhook_deliveries), (1, 1));
        let r = app
            .plain()
            .get(app.url(&format!("/v1/render-jobs/{render_id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        problem(r, 404, "not-found").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_delivery_log_page_shows_each_attempt_and_sends_again_on_request() {
    both_with(quick, |app| async move {
        let b = app.user("log@example.com").await;
        let token = app.token(&b, &["render"]).await;
        let id = template(&app, &token, card()).await;
        let hook = Receiver::start(&[500]).await;
        let r = post(
            &app,
            &token,
            "/v1/renders",
            json!({"template": id, "data": {"title": "Logged"}, "async": true,
                   "webhook_url": hook.hook()}),
        )
        .await;
        assert_eq!(r.status(), 202);
        hook.wait_for(1).await;
        app.clock.advance(time::Duration::seconds(31));
        hook.wait_for(2).await;
        let log = get(&app, &token, "/v1/webhook-deliveries").await;
        let delivery = log["items"][0]["id"].as_str().unwrap().to_owned();
        loop {
            let d = get(&app, &token, &format!("/v1/webhook-deliveries/{delivery}")).await;
            if d["status"] == "delivered" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }

        let list = b.get(app.url("/org/webhooks")).send().await.unwrap();
        assert_eq!(list.status(), 200);
        let html = list.text().await.unwrap();
        assert!(
            html.contains(&format!(
                "href=\"/org/webhooks/{delivery}\">render.completed</a>"
            )),
            "{html}"
        );
        assert!(html.contains(&hook.hook()));
        let page = b
            .get(app.url(&format!("/org/webhooks/{delivery}")))
            .send()
            .await
            .unwrap();
        let html = page.text().await.unwrap();
        // Both attempts with the receiver's answers, and the body that was sent.
        let first = html.find("<td>HTTP 500</td>").expect("the failed attempt");
        let second = html
            .find("<td>HTTP 200</td>")
            .expect("the delivered attempt");
        assert!(first < second);
        assert!(
            html.contains("&#34;render.completed&#34;")
                || html.contains("&quot;render.completed&quot;"),
            "{html}"
        );
        assert!(html.contains("Send again"));

        let s = body(b.get(app.url("/v1/auth/session")).send().await.unwrap()).await;
        let csrf = s["csrf_token"].as_str().unwrap();
        let again = b
            .post(app.url(&format!("/org/webhooks/{delivery}/redeliver")))
            .form(&[("csrf_token", csrf)])
            .send()
            .await
            .unwrap();
        assert!(again.text().await.unwrap().contains("Sending again now."));
        hook.wait_for(3).await;
        assert_eq!(hook.get(2).1, hook.get(0).1, "the same body again");
        // A delivery of another organisation is not there.
        let other = app.user("other@example.com").await;
        let r = other
            .get(app.url(&format!("/org/webhooks/{delivery}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        app.stop().await;
    })
    .await;
}
