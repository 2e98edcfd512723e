use serde_json::json;
use time::Duration;

use crate::support::{PASSWORD, body, both, problem};

#[tokio::test]
async fn a_newcomer_signs_up_verifies_creates_a_token_and_calls_me() {
    both(|app| async move {
        let r = app.sign_up("ada@example.com").await;
        assert_eq!(r.status(), 201);
        let created = body(r).await;
        assert_eq!(created["user"]["email_verified"], false);
        let personal = created["user"]["personal_org_id"]
            .as_str()
            .unwrap()
            .to_string();

        let b = app.browser();
        let early = b
            .post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        problem(early, 403, "email-not-verified").await;

        let token = app.link_token("ada@example.com", "/verify-email");
        let r = app
            .plain()
            .post(app.url("/v1/auth/verify-email"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        assert_eq!(body(r).await["user"]["email_verified"], true);
        let again = app
            .plain()
            .post(app.url("/v1/auth/verify-email"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        problem(again, 400, "invalid-token").await;

        let r = b
            .post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "ADA@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(body(r).await["status"], "signed_in");
        let secret = app.token(&b, &["account:read"]).await;
        assert!(secret.starts_with("pxd_") && secret.len() == 42, "{secret}");

        let me = app
            .plain()
            .get(app.url("/v1/me"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        let me = body(me).await;
        assert_eq!(me["user"]["email"], "ada@example.com");
        assert_eq!(me["org"]["id"], personal.as_str());
        assert_eq!(me["org"]["role"], "owner");
        assert_eq!(me["credential"]["kind"], "token");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn sign_up_lists_every_problem_and_refuses_taken_addresses_and_common_passwords() {
    both(|app| async move {
        let c = app.plain();
        let r = c
            .post(app.url("/v1/auth/signup"))
            .json(&json!({"email": "nope", "password": "short", "age_confirmed": true}))
            .send()
            .await
            .unwrap();
        let p = problem(r, 422, "validation").await;
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["email", "password"]);

        // Sign-up asks for the minimum age; without the confirmation nothing is created.
        let r = c
            .post(app.url("/v1/auth/signup"))
            .json(&json!({"email": "young@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let p = problem(r, 422, "validation").await;
        assert_eq!(p["errors"][0]["field"], "age_confirmed", "{p}");
        assert!(p["detail"].as_str().unwrap().contains("at least 16"), "{p}");
        assert!(app.app.store.user_by_email("young@example.com").await.unwrap().is_none());

        let r = c
            .post(app.url("/v1/auth/signup"))
            .json(&json!({"email": "a@example.com", "password": "password123", "age_confirmed": true}))
            .send()
            .await
            .unwrap();
        let p = problem(r, 422, "validation").await;
        assert!(p["detail"].as_str().unwrap().contains("too common"), "{p}");

        let r = c
            .post(app.url("/v1/auth/signup"))
            .json(&json!({"email": "a@example.com", "password": "x".repeat(129)}))
            .send()
            .await
            .unwrap();
        problem(r, 422, "validation").await;

        assert_eq!(app.sign_up("a@example.com").await.status(), 201);
        problem(app.sign_up("A@EXAMPLE.com").await, 409, "conflict").await;

        let r = c
            .post(app.url("/v1/auth/signup"))
            .json(&json!({"email": "b@example.com"}))
            .send()
            .await
            .unwrap();
        problem(r, 422, "validation").await;
        let r = c
            .post(app.url("/v1/auth/signup"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        problem(r, 400, "bad-request").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn wrong_passwords_and_unknown_accounts_get_the_same_answer() {
    both(|app| async move {
        app.user("ada@example.com").await;
        let c = app.plain();
        let wrong = c
            .post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "ada@example.com", "password": "wrong password!"}))
            .send()
            .await
            .unwrap();
        let a = problem(wrong, 401, "bad-credentials").await;
        let unknown = c
            .post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "eve@example.com", "password": "wrong password!"}))
            .send()
            .await
            .unwrap();
        let b = problem(unknown, 401, "bad-credentials").await;
        assert_eq!(a["detail"], b["detail"]);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_forgotten_password_is_reset_once_within_an_hour_and_signs_out_everywhere() {
    both(|app| async move {
        let old_browser = app.user("ada@example.com").await;
        let c = app.plain();
        let r = c
            .post(app.url("/v1/auth/password-reset"))
            .json(&json!({"email": "ada@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        // Unknown addresses get the same answer, and no mail.
        let r = c
            .post(app.url("/v1/auth/password-reset"))
            .json(&json!({"email": "nobody@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert!(app.mail_to("nobody@example.com").is_empty());

        let token = app.link_token("ada@example.com", "/reset-password");
        let weak = c
            .post(app.url("/v1/auth/password-reset/confirm"))
            .json(&json!({"token": token, "password": "12345678"}))
            .send()
            .await
            .unwrap();
        problem(weak, 422, "validation").await;
        let ok = c
            .post(app.url("/v1/auth/password-reset/confirm"))
            .json(&json!({"token": token, "password": "a brand new passphrase"}))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 204);
        let twice = c
            .post(app.url("/v1/auth/password-reset/confirm"))
            .json(&json!({"token": token, "password": "another new passphrase"}))
            .send()
            .await
            .unwrap();
        problem(twice, 400, "invalid-token").await;

        problem(
            old_browser.get(app.url("/v1/me")).send().await.unwrap(),
            401,
            "unauthenticated",
        )
        .await;
        let r = c
            .post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "ada@example.com", "password": "a brand new passphrase"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // A link older than an hour is refused.
        c.post(app.url("/v1/auth/password-reset"))
            .json(&json!({"email": "ada@example.com"}))
            .send()
            .await
            .unwrap();
        let token = app.link_token("ada@example.com", "/reset-password");
        app.clock.advance(Duration::minutes(61));
        let late = c
            .post(app.url("/v1/auth/password-reset/confirm"))
            .json(&json!({"token": token, "password": "yet another passphrase"}))
            .send()
            .await
            .unwrap();
        problem(late, 400, "invalid-token").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn changing_password_or_email_needs_the_current_password() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let other_device = app.browser();
        other_device
            .post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();

        let r = b
            .post(app.url("/v1/account/password"))
            .json(
                &json!({"current_password": "not it at all", "new_password": "a fresh passphrase"}),
            )
            .send()
            .await
            .unwrap();
        problem(r, 422, "validation").await;
        let r = b
            .post(app.url("/v1/account/password"))
            .json(&json!({"current_password": PASSWORD, "new_password": "a fresh passphrase"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        // This device stays signed in; the other one is signed out.
        assert_eq!(b.get(app.url("/v1/me")).send().await.unwrap().status(), 200);
        assert_eq!(
            other_device
                .get(app.url("/v1/me"))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );

        let r = b
            .post(app.url("/v1/account/email"))
            .json(&json!({"current_password": PASSWORD, "email": "new@example.com"}))
            .send()
            .await
            .unwrap();
        problem(r, 422, "validation").await;
        let r = b
            .post(app.url("/v1/account/email"))
            .json(&json!({"current_password": "a fresh passphrase", "email": "new@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert!(
            app.mail_to("ada@example.com")
                .iter()
                .any(|m| m.contains("being changed")),
            "the old address is told"
        );
        let token = app.link_token("new@example.com", "/confirm-email");
        let r = app
            .plain()
            .post(app.url("/v1/account/email/confirm"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        assert_eq!(body(r).await["user"]["email"], "new@example.com");
        let me = body(b.get(app.url("/v1/me")).send().await.unwrap()).await;
        assert_eq!(me["user"]["email"], "new@example.com");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_emailed_link_pages_do_not_spend_the_token_until_submitted() {
    both(|app| async move {
        assert_eq!(app.sign_up("ada@example.com").await.status(), 201);
        let token = app.link_token("ada@example.com", "/verify-email");
        let c = app.plain();
        // A mail scanner prefetching the link does not use it up.
        let page = c
            .get(app.url(&format!("/verify-email?token={token}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("<form method=\"post\""));
        let done = c
            .post(app.url("/verify-email"))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(done.contains("Address confirmed"), "{done}");
        app.stop().await;
    })
    .await;
}
