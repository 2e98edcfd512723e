use serde_json::{Value, json};

use crate::support::{PASSWORD, body, both, both_with, problem};

#[tokio::test]
async fn a_post_retried_with_the_same_idempotency_key_is_answered_from_storage() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let create = |key: &str, name: &str| {
            b.post(app.url("/v1/tokens"))
                .header("idempotency-key", key)
                .json(&json!({"name": name, "scopes": ["render"]}))
                .send()
        };
        let first = create("order-1", "ci").await.unwrap();
        assert_eq!(first.status(), 201);
        assert!(first.headers().get("idempotency-replayed").is_none());
        let first: Value = first.json().await.unwrap();
        assert!(first["token"].as_str().unwrap().starts_with("pxd_"));

        let again = create("order-1", "ci").await.unwrap();
        assert_eq!(again.status(), 201);
        assert_eq!(again.headers().get("idempotency-replayed").unwrap(), "true");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["id"], first["id"], "the same token, not a second one");
        assert!(
            again["token"].is_null(),
            "the secret is shown once and never stored, not even for replays"
        );

        let list = body(b.get(app.url("/v1/tokens")).send().await.unwrap()).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);

        problem(
            create("order-1", "another name").await.unwrap(),
            422,
            "idempotency-key-reused",
        )
        .await;
        problem(
            create("has spaces in it", "ci").await.unwrap(),
            400,
            "bad-request",
        )
        .await;
        // Keys belong to their caller: someone else's request with the same key runs normally.
        let other = app.user("bob@example.com").await;
        let r = other
            .post(app.url("/v1/tokens"))
            .header("idempotency-key", "order-1")
            .json(&json!({"name": "ci", "scopes": ["render"]}))
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("idempotency-replayed").is_none());
        assert_eq!(r.status(), 201);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn failed_requests_are_replayed_too_so_a_retry_cannot_change_the_outcome() {
    both(|app| async move {
        let signup = |email: &str| {
            app.plain()
                .post(app.url("/v1/auth/signup"))
                .header("idempotency-key", "signup-1")
                .json(&json!({"email": email, "password": "short"}))
                .send()
        };
        problem(signup("a@example.com").await.unwrap(), 422, "validation").await;
        let replay = signup("a@example.com").await.unwrap();
        assert_eq!(
            replay.headers().get("idempotency-replayed").unwrap(),
            "true"
        );
        problem(replay, 422, "validation").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn too_many_sign_in_attempts_get_429_with_retry_after() {
    both_with(
        |c| {
            c.rate_limit.sign_in_per_minute = 3;
        },
        |app| async move {
            let c = app.plain();
            let attempt = || {
                c.post(app.url("/v1/auth/signin"))
                    .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
                    .send()
            };
            for _ in 0..3 {
                assert_eq!(attempt().await.unwrap().status(), 401);
            }
            let r = attempt().await.unwrap();
            let retry: u64 = r
                .headers()
                .get("retry-after")
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
            problem(r, 429, "rate-limited").await;
            // Other routes are not held back by the sign-in limit.
            assert_eq!(
                c.get(app.url("/healthz")).send().await.unwrap().status(),
                200
            );
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn a_busy_token_is_slowed_down_without_affecting_other_callers() {
    both_with(
        |c| c.rate_limit.per_credential_per_minute = 5,
        |app| async move {
            let b = app.user("ada@example.com").await;
            let token = app.token(&b, &["account:read"]).await;
            let c = app.plain();
            let me = || c.get(app.url("/v1/me")).bearer_auth(&token).send();
            for _ in 0..5 {
                assert_eq!(me().await.unwrap().status(), 200);
            }
            let r = me().await.unwrap();
            assert!(r.headers().get("retry-after").is_some());
            problem(r, 429, "rate-limited").await;
            // Another caller from the same address is not held back.
            let other = app.token(&b, &["account:read"]).await;
            assert_eq!(
                c.get(app.url("/v1/me"))
                    .bearer_auth(&other)
                    .send()
                    .await
                    .unwrap()
                    .status(),
                200
            );
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn every_error_is_a_problem_document_with_the_request_id() {
    both_with(
        |c| c.max_body_bytes = 4096,
        |app| async move {
            let c = app.plain();
            let r = c
                .get(app.url("/no/such/route"))
                .header("x-request-id", "trace-me-123")
                .send()
                .await
                .unwrap();
            assert_eq!(r.headers().get("x-request-id").unwrap(), "trace-me-123");
            let p = problem(r, 404, "not-found").await;
            assert_eq!(p["request_id"], "trace-me-123");
            problem(
                c.put(app.url("/v1/tokens")).send().await.unwrap(),
                405,
                "method-not-allowed",
            )
            .await;
            let big = json!({"email": "a@example.com", "password": "x".repeat(10_000)});
            problem(
                c.post(app.url("/v1/auth/signup"))
                    .json(&big)
                    .send()
                    .await
                    .unwrap(),
                413,
                "payload-too-large",
            )
            .await;
            problem(
                c.post(app.url("/v1/auth/signup"))
                    .body("email=a")
                    .send()
                    .await
                    .unwrap(),
                415,
                "unsupported-media-type",
            )
            .await;
            let unknown_field =
                json!({"email": "a@example.com", "password": PASSWORD, "is_admin": true});
            problem(
                c.post(app.url("/v1/auth/signup"))
                    .json(&unknown_field)
                    .send()
                    .await
                    .unwrap(),
                422,
                "validation",
            )
            .await;
            let ok = c.get(app.url("/healthz")).send().await.unwrap();
            assert!(ok.headers().get("x-request-id").is_some());
            // Server time, for clients and benchmarks: `app;dur=<milliseconds>`.
            let timing = ok.headers()["server-timing"].to_str().unwrap();
            let ms: f64 = timing.strip_prefix("app;dur=").unwrap().parse().unwrap();
            assert!(ms >= 0.0, "{timing}");
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn health_readiness_metrics_and_api_docs_are_served() {
    both(|app| async move {
        let c = app.plain();
        assert_eq!(
            body(c.get(app.url("/healthz")).send().await.unwrap()).await["status"],
            "ok"
        );
        let ready = body(c.get(app.url("/readyz")).send().await.unwrap()).await;
        assert_eq!(
            ready["database"],
            match app.backend {
                pixeld_store::testing::Backend::Sqlite => "sqlite",
                pixeld_store::testing::Backend::Postgres => "postgres",
            }
        );
        let metrics = c
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("pixeld_http_requests_total"), "{metrics}");
        assert!(metrics.contains("route=\"/healthz\""));

        let doc: Value = c
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in [
            "/v1/auth/signup",
            "/v1/tokens",
            "/v1/orgs/{org_id}/invites",
            "/v1/me",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is documented");
        }
        assert!(doc["paths"]["/v1/tokens"]["post"]["responses"]["429"].is_object());
        let page = c
            .get(app.url("/docs"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("/assets/redoc.standalone.js") && !page.contains("cdn"),
            "served locally"
        );
        let js = c
            .get(app.url("/assets/redoc.standalone.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(js.status(), 200);
        assert!(js.bytes().await.unwrap().len() > 100_000);
        let problem_page = c
            .get(app.url("/problems/missing-scope"))
            .send()
            .await
            .unwrap();
        assert_eq!(problem_page.status(), 200);
        app.stop().await;
    })
    .await;
}
