use serde_json::{Value, json};
use time::Duration;

use crate::support::{PASSWORD, body, both, both_with, problem};

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_rotated_at_sign_in() {
    both(|app| async move {
        app.user("ada@example.com").await;
        let c = app.plain();
        let sign_in = || {
            c.post(app.url("/v1/auth/signin"))
                .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
                .send()
        };
        let r = sign_in().await.unwrap();
        let cookie = r
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(cookie.starts_with("pixeld_session="), "{cookie}");
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attr), "{attr} missing in {cookie}");
        }
        assert!(
            !cookie.contains("Secure"),
            "plain http serves no Secure cookie"
        );
        let first = cookie.split(';').next().unwrap().to_string();

        // Signing in again from the same browser replaces the old session id.
        let r = c
            .post(app.url("/v1/auth/signin"))
            .header("cookie", &first)
            .header("origin", &app.base)
            .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let second = r
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        assert_ne!(first, second);
        problem(
            c.get(app.url("/v1/me"))
                .header("cookie", &first)
                .send()
                .await
                .unwrap(),
            401,
            "unauthenticated",
        )
        .await;
        assert_eq!(
            c.get(app.url("/v1/me"))
                .header("cookie", &second)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_https_public_url_makes_the_cookie_secure() {
    both_with(
        |c| c.public_url = Some("https://pixeld.example.com".into()),
        |app| async move {
            assert_eq!(app.sign_up("ada@example.com").await.status(), 201);
            let token = app.link_token("ada@example.com", "/verify-email");
            assert!(
                app.mail_to("ada@example.com")[0]
                    .contains("https://pixeld.example.com/verify-email?token=")
            );
            app.plain()
                .post(app.url("/v1/auth/verify-email"))
                .json(&json!({"token": token}))
                .send()
                .await
                .unwrap();
            let r = app
                .plain()
                .post(app.url("/v1/auth/signin"))
                .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            assert!(
                r.headers()
                    .get("set-cookie")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .contains("; Secure")
            );
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn sessions_end_after_the_idle_timeout_and_the_absolute_lifetime() {
    both_with(
        |c| {
            c.session.idle_minutes = 30;
            c.session.absolute_hours = 2;
        },
        |app| async move {
            let b = app.user("ada@example.com").await;
            app.clock.advance(Duration::minutes(29));
            assert_eq!(
                b.get(app.url("/v1/me")).send().await.unwrap().status(),
                200,
                "activity keeps it alive"
            );
            app.clock.advance(Duration::minutes(29));
            assert_eq!(b.get(app.url("/v1/me")).send().await.unwrap().status(), 200);
            app.clock.advance(Duration::minutes(31));
            problem(
                b.get(app.url("/v1/me")).send().await.unwrap(),
                401,
                "unauthenticated",
            )
            .await;

            let b = app.browser();
            b.post(app.url("/v1/auth/signin"))
                .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            for _ in 0..4 {
                app.clock.advance(Duration::minutes(25));
                assert_eq!(b.get(app.url("/v1/me")).send().await.unwrap().status(), 200);
            }
            app.clock.advance(Duration::minutes(25));
            problem(
                b.get(app.url("/v1/me")).send().await.unwrap(),
                401,
                "unauthenticated",
            )
            .await;
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn a_user_sees_their_devices_and_signs_out_the_others() {
    both(|app| async move {
        let laptop = app.user("ada@example.com").await;
        let phone = app.browser();
        phone.post(app.url("/v1/auth/signin")).json(&json!({"email": "ada@example.com", "password": PASSWORD})).send().await.unwrap();
        let tablet = app.browser();
        tablet.post(app.url("/v1/auth/signin")).json(&json!({"email": "ada@example.com", "password": PASSWORD})).send().await.unwrap();

        let list = body(laptop.get(app.url("/v1/account/sessions")).send().await.unwrap()).await;
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
        assert!(items.iter().all(|s| s["ip"] == "127.0.0.1"));

        // Sign out the phone by id.
        let phone_id = body(phone.get(app.url("/v1/auth/session")).send().await.unwrap()).await["session"]["id"].as_str().unwrap().to_string();
        assert_eq!(laptop.delete(app.url(&format!("/v1/account/sessions/{phone_id}"))).send().await.unwrap().status(), 204);
        assert_eq!(phone.get(app.url("/v1/me")).send().await.unwrap().status(), 401);

        let r = body(laptop.post(app.url("/v1/account/sessions/revoke-others")).send().await.unwrap()).await;
        assert_eq!(r["revoked"], 1);
        assert_eq!(tablet.get(app.url("/v1/me")).send().await.unwrap().status(), 401);
        assert_eq!(laptop.get(app.url("/v1/me")).send().await.unwrap().status(), 200);

        let r = laptop.post(app.url("/v1/auth/signout")).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert!(r.headers().get("set-cookie").unwrap().to_str().unwrap().contains("Max-Age=0"));
        assert_eq!(laptop.get(app.url("/v1/me")).send().await.unwrap().status(), 401);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn cookie_authenticated_writes_from_another_site_are_refused() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let session: Value = body(b.get(app.url("/v1/auth/session")).send().await.unwrap()).await;
        let csrf = session["csrf_token"].as_str().unwrap().to_string();
        // The cookie jar is shared via a header copied from the browser session.
        let cookie = {
            let r = app
                .plain()
                .post(app.url("/v1/auth/signin"))
                .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            r.headers()
                .get("set-cookie")
                .unwrap()
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string()
        };
        let fresh_csrf = {
            let s = body(
                app.plain()
                    .get(app.url("/v1/auth/session"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            s["csrf_token"].as_str().unwrap().to_string()
        };
        assert_ne!(csrf, fresh_csrf, "each session has its own CSRF token");
        let c = app.plain();
        let create = |origin: Option<&str>| {
            let mut rq = c
                .post(app.url("/v1/tokens"))
                .header("cookie", &cookie)
                .json(&json!({"name": "x", "scopes": ["render"]}));
            if let Some(o) = origin {
                rq = rq.header("origin", o);
            }
            rq.send()
        };
        problem(create(None).await.unwrap(), 403, "csrf").await;
        problem(
            create(Some("https://evil.example")).await.unwrap(),
            403,
            "csrf",
        )
        .await;
        assert_eq!(create(Some(&app.base)).await.unwrap().status(), 201);

        // A form post needs the session's CSRF token as well.
        let form = |token: &str| {
            c.post(app.url("/v1/auth/signout"))
                .header("cookie", &cookie)
                .header("origin", &app.base)
                .form(&[("csrf_token", token)])
                .send()
        };
        problem(form("not-the-token").await.unwrap(), 403, "csrf").await;
        assert_eq!(form(&fresh_csrf).await.unwrap().status(), 204);
        app.stop().await;
    })
    .await;
}
