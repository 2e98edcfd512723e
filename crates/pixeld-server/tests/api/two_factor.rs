use pixeld_core::twofactor::code_at;
use serde_json::{Value, json};
use time::Duration;

use crate::support::{PASSWORD, body, both, problem};

fn now_unix(app: &crate::support::TestApp) -> u64 {
    use pixeld_core::clock::Clock;
    app.clock.now().unix_timestamp() as u64
}

#[tokio::test]
async fn two_factor_sign_in_takes_two_steps_and_a_code_works_once() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let enrol: Value = body(b.post(app.url("/v1/account/2fa/totp")).send().await.unwrap()).await;
        let secret = enrol["secret"].as_str().unwrap().to_string();
        assert!(enrol["otpauth_url"].as_str().unwrap().starts_with("otpauth://totp/"));
        assert!(enrol["qr_svg_data_uri"].as_str().unwrap().starts_with("data:image/svg+xml;base64,"));

        let wrong = b.post(app.url("/v1/account/2fa/totp/confirm")).json(&json!({"code": "000000"})).send().await.unwrap();
        problem(wrong, 422, "validation").await;
        let code = code_at(&secret, now_unix(&app)).unwrap();
        let codes: Value = body(b.post(app.url("/v1/account/2fa/totp/confirm")).json(&json!({"code": code})).send().await.unwrap()).await;
        let recovery: Vec<String> = codes["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        assert_eq!(recovery.len(), 10);
        let status = body(b.get(app.url("/v1/account/2fa")).send().await.unwrap()).await;
        assert_eq!(status, json!({"enabled": true, "recovery_codes_left": 10}));

        // Step one: the password alone only yields a challenge.
        let c = app.plain();
        let step1 = || c.post(app.url("/v1/auth/signin")).json(&json!({"email": "ada@example.com", "password": PASSWORD})).send();
        let r = step1().await.unwrap();
        assert!(r.headers().get("set-cookie").is_none());
        let first = body(r).await;
        assert_eq!(first["status"], "second_factor_required");
        let challenge = first["challenge"].as_str().unwrap().to_string();

        // The code used to confirm enrolment is from the same time step: refused as a replay.
        let replay = c.post(app.url("/v1/auth/signin/2fa")).json(&json!({"challenge": challenge, "code": code})).send().await.unwrap();
        problem(replay, 401, "bad-credentials").await;

        app.clock.advance(Duration::seconds(30));
        let fresh = code_at(&secret, now_unix(&app)).unwrap();
        let challenge = body(step1().await.unwrap()).await["challenge"].as_str().unwrap().to_string();
        let r = c.post(app.url("/v1/auth/signin/2fa")).json(&json!({"challenge": challenge, "code": fresh})).send().await.unwrap();
        assert!(r.headers().get("set-cookie").is_some());
        assert_eq!(body(r).await["status"], "signed_in");
        let challenge_reused = c.post(app.url("/v1/auth/signin/2fa")).json(&json!({"challenge": challenge, "code": fresh})).send().await.unwrap();
        problem(challenge_reused, 400, "invalid-token").await;

        // The same fresh code cannot sign in a second device.
        let challenge = body(step1().await.unwrap()).await["challenge"].as_str().unwrap().to_string();
        let again = c.post(app.url("/v1/auth/signin/2fa")).json(&json!({"challenge": challenge, "code": fresh})).send().await.unwrap();
        problem(again, 401, "bad-credentials").await;

        // A recovery code works once, whatever its case.
        let challenge = body(step1().await.unwrap()).await["challenge"].as_str().unwrap().to_string();
        let r = c.post(app.url("/v1/auth/signin/2fa")).json(&json!({"challenge": challenge, "code": recovery[0].to_uppercase()})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let challenge = body(step1().await.unwrap()).await["challenge"].as_str().unwrap().to_string();
        let r = c.post(app.url("/v1/auth/signin/2fa")).json(&json!({"challenge": challenge, "code": recovery[0]})).send().await.unwrap();
        problem(r, 401, "bad-credentials").await;
        assert_eq!(body(b.get(app.url("/v1/account/2fa")).send().await.unwrap()).await["recovery_codes_left"], 9);

        // The challenge expires after five minutes.
        let challenge = body(step1().await.unwrap()).await["challenge"].as_str().unwrap().to_string();
        app.clock.advance(Duration::minutes(6));
        let code = code_at(&secret, now_unix(&app)).unwrap();
        let late = c.post(app.url("/v1/auth/signin/2fa")).json(&json!({"challenge": challenge, "code": code})).send().await.unwrap();
        problem(late, 400, "invalid-token").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn disabling_two_factor_needs_a_current_code() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let secret = body(
            b.post(app.url("/v1/account/2fa/totp"))
                .send()
                .await
                .unwrap(),
        )
        .await["secret"]
            .as_str()
            .unwrap()
            .to_string();
        let code = code_at(&secret, now_unix(&app)).unwrap();
        b.post(app.url("/v1/account/2fa/totp/confirm"))
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        problem(
            b.post(app.url("/v1/account/2fa/totp"))
                .send()
                .await
                .unwrap(),
            409,
            "state-conflict",
        )
        .await;

        let r = b
            .post(app.url("/v1/account/2fa/disable"))
            .json(&json!({"code": "123456"}))
            .send()
            .await
            .unwrap();
        problem(r, 422, "validation").await;
        app.clock.advance(Duration::seconds(30));
        let code = code_at(&secret, now_unix(&app)).unwrap();
        let new_codes = body(
            b.post(app.url("/v1/account/2fa/recovery-codes"))
                .json(&json!({"code": code}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(new_codes["recovery_codes"].as_array().unwrap().len(), 10);
        app.clock.advance(Duration::seconds(30));
        let code = code_at(&secret, now_unix(&app)).unwrap();
        assert_eq!(
            b.post(app.url("/v1/account/2fa/disable"))
                .json(&json!({"code": code}))
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        let r = app
            .plain()
            .post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(body(r).await["status"], "signed_in");
        app.stop().await;
    })
    .await;
}
