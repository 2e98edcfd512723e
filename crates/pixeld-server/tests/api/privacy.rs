//! The privacy promises, one test each, named after the promise: the request log, retention
//! classes enforced by the sweeper with a controllable clock, and what is never stored.

use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp, body, both, both_with, problem};

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.plain()
        .get(app.url(path))
        .bearer_auth(token)
        .header("user-agent", "privacy-test/1.0")
        .send()
        .await
        .unwrap()
}

async fn usage(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    app.app.flush_usage().await.unwrap();
    let r = get(app, token, &format!("/v1/usage?limit=100{query}")).await;
    assert_eq!(r.status(), 200);
    body(r).await["items"].as_array().unwrap().clone()
}

async fn token_id(app: &TestApp, browser: &reqwest::Client) -> String {
    let r = browser.get(app.url("/v1/tokens")).send().await.unwrap();
    body(r).await["items"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_api_request_is_logged_with_token_id_route_status_and_client() {
    both(|app| async move {
        let browser = app.user("log@example.com").await;
        let token = app.token(&browser, &["billing:read", "account:read"]).await;
        let tid = token_id(&app, &browser).await;
        assert_eq!(get(&app, &token, "/v1/credits").await.status(), 200);
        assert_eq!(
            get(
                &app,
                &token,
                "/v1/orgs/0193a2b0-0000-7000-8000-000000000000"
            )
            .await
            .status(),
            404
        );
        let rows = usage(&app, &token, "").await;
        let credits = rows
            .iter()
            .find(|r| r["route"] == "/v1/credits")
            .expect("a row for GET /v1/credits");
        assert_eq!(credits["method"], "GET");
        assert_eq!(credits["status"], 200);
        assert_eq!(credits["token_id"], tid.as_str());
        assert_eq!(credits["ip"], "127.0.0.1");
        assert_eq!(credits["user_agent"], "privacy-test/1.0");
        assert!(credits["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(credits["bytes_out"].as_i64().unwrap() > 0);
        // The route template is logged, not the path with its ids.
        let missing = rows
            .iter()
            .find(|r| r["status"] == 404)
            .expect("a row for the 404");
        assert_eq!(missing["route"], "/v1/orgs/{org_id}");
        // Session requests (the browser) are logged for the same organisation, without a token.
        assert!(
            rows.iter()
                .any(|r| r["route"] == "/v1/tokens" && r["token_id"].is_null())
        );
        // Filters: by status class and by token.
        let errors = usage(&app, &token, "&status_class=4").await;
        assert!(
            errors
                .iter()
                .all(|r| r["status"].as_u64().unwrap() / 100 == 4)
        );
        assert!(!errors.is_empty());
        let by_token = usage(&app, &token, &format!("&token_id={tid}")).await;
        assert!(by_token.iter().all(|r| r["token_id"] == tid.as_str()));
        // Another organisation sees none of it.
        let other = app.user("other@example.com").await;
        let other_token = app.token(&other, &["billing:read"]).await;
        let theirs = usage(&app, &other_token, "").await;
        assert!(theirs.iter().all(|r| r["token_id"] != tid.as_str()));
        assert!(
            !theirs
                .iter()
                .any(|r| r["route"] == "/v1/credits" && r["token_id"] == tid.as_str())
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn usage_rows_record_the_credits_a_request_spent() {
    both(|app| async move {
        let browser = app.user("spend@example.com").await;
        let token = app.token(&browser, &["render", "billing:read"]).await;
        let t = app
            .plain()
            .post(app.url("/v1/templates"))
            .bearer_auth(&token)
            .json(&json!({"name": "Card", "template": {
                "page": {"width": 64, "height": 32, "background": "#0f172a"},
                "layers": [{"type": "text", "name": "t", "x": 0, "y": 0, "width": 64, "height": 32,
                            "text": "{{t}}", "size": 12, "color": "#ffffff"}]}}))
            .send()
            .await
            .unwrap();
        assert_eq!(t.status(), 201);
        let id = body(t).await["id"].as_str().unwrap().to_owned();
        let render = |title: &'static str| {
            app.plain()
                .post(app.url("/v1/renders"))
                .bearer_auth(&token)
                .json(&json!({"template": id, "data": {"t": title}}))
                .send()
        };
        assert_eq!(render("a").await.unwrap().status(), 200);
        // The same render again is a cache hit: free.
        assert_eq!(render("a").await.unwrap().status(), 200);
        let rows = usage(&app, &token, "&route=/v1/renders").await;
        let spent: Vec<i64> = rows
            .iter()
            .map(|r| r["credits"].as_i64().unwrap())
            .collect();
        assert_eq!(spent, vec![1, 0], "{rows:?}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn request_log_ips_are_truncated_after_7_days_and_rows_deleted_after_90_days_but_daily_totals_remain()
 {
    both(|app| async move {
        let browser = app.user("ip@example.com").await;
        let token = app.token(&browser, &["billing:read"]).await;
        let day = app.app.now().date().to_string();
        assert_eq!(get(&app, &token, "/v1/credits").await.status(), 200);
        let find = |rows: Vec<Value>| {
            rows.into_iter()
                .find(|r| r["route"] == "/v1/credits")
                .expect("the row")
        };
        assert_eq!(find(usage(&app, &token, "").await)["ip"], "127.0.0.1");

        app.clock.advance(time::Duration::days(6));
        app.app.sweep().await.unwrap();
        assert_eq!(
            find(usage(&app, &token, "").await)["ip"],
            "127.0.0.1",
            "kept whole for 7 days"
        );

        app.clock.advance(time::Duration::days(2));
        let report = app.app.sweep().await.unwrap();
        assert!(report.request_log_ips_truncated >= 1);
        assert_eq!(find(usage(&app, &token, "").await)["ip"], "127.0.0.0/24");
        assert_eq!(
            app.app.sweep().await.unwrap().request_log_ips_truncated,
            0,
            "idempotent"
        );
        // Nothing anywhere in the database still holds a full address of that request.
        let rows = app
            .app
            .store
            .usage_events(
                app.app
                    .store
                    .user_by_email("ip@example.com")
                    .await
                    .unwrap()
                    .unwrap()
                    .personal_org_id,
                &pixeld_core::usage::UsageFilter {
                    until: Some(app.app.now() - time::Duration::days(7)),
                    ..Default::default()
                },
                pixeld_core::page::PageRequest::parse(None, Some(100)).unwrap(),
            )
            .await
            .unwrap();
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r.ip.is_none()), "{rows:?}");

        app.clock.advance(time::Duration::days(83));
        let report = app.app.sweep().await.unwrap();
        assert!(report.request_logs >= 1);
        let rows = usage(
            &app,
            &token,
            &format!(
                "&until={}",
                urlencode(app.app.now() - time::Duration::days(90))
            ),
        )
        .await;
        assert!(
            rows.is_empty(),
            "rows older than 90 days are gone: {rows:?}"
        );
        // The daily totals of that day are still there.
        let r = get(
            &app,
            &token,
            &format!("/v1/usage/daily?since={day}&until={day}"),
        )
        .await;
        assert_eq!(r.status(), 200);
        let days = body(r).await;
        let credits = days["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["route"] == "GET /v1/credits")
            .expect("the day's totals for GET /v1/credits");
        assert!(credits["requests"].as_i64().unwrap() >= 1);
        app.stop().await;
    })
    .await;
}

fn urlencode(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .replace('+', "%2B")
        .replace(':', "%3A")
}

#[tokio::test]
async fn usage_is_exported_as_csv_and_bad_filters_are_clear_errors() {
    both(|app| async move {
        let browser = app.user("csv@example.com").await;
        let token = app.token(&browser, &["billing:read"]).await;
        assert_eq!(get(&app, &token, "/v1/credits").await.status(), 200);
        app.app.flush_usage().await.unwrap();
        let r = get(&app, &token, "/v1/usage.csv").await;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let text = r.text().await.unwrap();
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("id,at,method,route,status")
        );
        assert!(text.contains(",GET,/v1/credits,200,"), "{text}");
        problem(
            get(&app, &token, "/v1/usage?status_class=9").await,
            422,
            "validation",
        )
        .await;
        problem(
            get(&app, &token, "/v1/usage?status=42").await,
            422,
            "validation",
        )
        .await;
        problem(
            get(&app, &token, "/v1/usage/daily?since=2026-13-01").await,
            422,
            "validation",
        )
        .await;
        problem(
            get(
                &app,
                &token,
                "/v1/usage/daily?since=2020-01-01&until=2026-01-01",
            )
            .await,
            422,
            "validation",
        )
        .await;
        // A token without billing:read sees nothing.
        let narrow = app.token(&browser, &["render"]).await;
        problem(get(&app, &narrow, "/v1/usage").await, 403, "missing-scope").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn operators_see_latency_percentiles_per_route() {
    both(|app| async move {
        let browser = app.user("op@example.com").await;
        let user = app
            .app
            .store
            .user_by_email("op@example.com")
            .await
            .unwrap()
            .unwrap();
        let token = app.token(&browser, &["billing:read"]).await;
        for _ in 0..5 {
            assert_eq!(get(&app, &token, "/v1/credits").await.status(), 200);
        }
        app.app.flush_usage().await.unwrap();
        problem(
            get(&app, &token, "/v1/admin/metrics/routes").await,
            403,
            "forbidden",
        )
        .await;
        app.app.store.set_admin(user.id, true).await.unwrap();
        let admin = app.token(&browser, &["admin"]).await;
        let r = get(&app, &admin, "/v1/admin/metrics/routes").await;
        assert_eq!(r.status(), 200);
        let m = body(r).await;
        let credits = m["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["route"] == "GET /v1/credits")
            .expect("GET /v1/credits");
        assert_eq!(credits["requests"], 5);
        let (p50, p95, p99) = (
            credits["p50_ms"].as_f64().unwrap(),
            credits["p95_ms"].as_f64().unwrap(),
            credits["p99_ms"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p95 && p95 <= p99, "{credits}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn api_token_secret_is_never_stored() {
    both(|app| async move {
        let browser = app.user("secret@example.com").await;
        let token = app.token(&browser, &["billing:read"]).await;
        assert_eq!(get(&app, &token, "/v1/credits").await.status(), 200);
        app.app.flush_usage().await.unwrap();
        let dump = app.database_text().await;
        assert!(
            dump.contains("privacy-test/1.0"),
            "the scan sees the usage log"
        );
        assert!(
            !dump.contains(&token),
            "the token secret is stored somewhere"
        );
        // Nor the password.
        assert!(!dump.contains(PASSWORD));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn ended_sessions_are_deleted() {
    both(|app| async move {
        let _browser = app.user("sess@example.com").await;
        let user = app
            .app
            .store
            .user_by_email("sess@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(app.app.store.list_sessions(user.id).await.unwrap().len(), 1);
        app.app.sweep().await.unwrap();
        assert_eq!(
            app.app.store.list_sessions(user.id).await.unwrap().len(),
            1,
            "a live session stays"
        );
        // Idle past the idle timeout: ended, and deleted with its IP and user agent.
        app.clock
            .advance(app.app.settings.session_idle + time::Duration::minutes(1));
        assert_eq!(app.app.sweep().await.unwrap().sessions, 1);
        assert!(
            app.app
                .store
                .list_sessions(user.id)
                .await
                .unwrap()
                .is_empty()
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn copies_of_sent_email_are_deleted_after_7_days() {
    both(|app| async move {
        assert_eq!(app.sign_up("mail@example.com").await.status(), 201);
        assert_eq!(app.mail_to("mail@example.com").len(), 1);
        app.clock.advance(time::Duration::days(6));
        assert_eq!(app.app.sweep().await.unwrap().outbox_messages, 0);
        assert_eq!(app.mail_to("mail@example.com").len(), 1);
        app.clock.advance(time::Duration::days(2));
        assert_eq!(app.app.sweep().await.unwrap().outbox_messages, 1);
        assert!(app.mail_to("mail@example.com").is_empty());
        // The emailed link's token is deleted 7 days after it expired.
        let report = app.app.sweep().await.unwrap();
        assert_eq!(report.outbox_messages, 0, "idempotent");
        app.clock.advance(time::Duration::days(7));
        assert!(app.app.sweep().await.unwrap().one_time_tokens >= 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_operator_can_shorten_a_retention_window_in_privacy_toml() {
    let dir = std::env::temp_dir().join(format!("pixeld-privacy-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("privacy.toml");
    std::fs::write(
        &file,
        "policy_version = \"acme-2026-12\"\n[[class]]\nid = \"request_logs\"\nname = \"API logs\"\n\
         what = \"Requests\"\nwhy = \"Operations\"\nkeep = \"10d\"\ntruncate_ip_after = \"1d\"\nthen = \"Deleted\"\n",
    )
    .unwrap();
    let f = file.clone();
    both_with(
        move |c| c.retention.privacy_file = Some(f.clone()),
        |app| async move {
            let browser = app.user("short@example.com").await;
            let token = app.token(&browser, &["billing:read"]).await;
            assert_eq!(get(&app, &token, "/v1/credits").await.status(), 200);
            app.app.flush_usage().await.unwrap();
            app.clock.advance(time::Duration::days(2));
            assert!(app.app.sweep().await.unwrap().request_log_ips_truncated >= 1);
            app.clock.advance(time::Duration::days(9));
            assert!(app.app.sweep().await.unwrap().request_logs >= 1);
            app.stop().await;
        },
    )
    .await;
    // A file that breaks a promise stops the server from starting, with the reason.
    std::fs::write(
        &file,
        "policy_version = \"x\"\n[[class]]\nid = \"uploads\"\nname = \"U\"\nwhat = \"w\"\nwhy = \"y\"\n\
         keep = \"48h\"\nthen = \"t\"\n",
    )
    .unwrap();
    let config = pixeld_server::config::Config {
        data: dir.clone(),
        retention: pixeld_server::config::RetentionConfig {
            privacy_file: Some(file.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    let e = config.retention_classes().unwrap_err();
    assert!(e.contains("at most 24h"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn delete_account(
    app: &TestApp,
    browser: &reqwest::Client,
    password: &str,
    code: Option<&str>,
) -> reqwest::Response {
    browser
        .delete(app.url("/v1/account"))
        .json(&json!({"current_password": password, "code": code}))
        .send()
        .await
        .unwrap()
}

async fn sign_in(app: &TestApp, email: &str) -> reqwest::Response {
    app.plain()
        .post(app.url("/v1/auth/signin"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_deleted_account_is_disabled_at_once_signed_out_everywhere_and_its_tokens_revoked() {
    both(|app| async move {
        let browser = app.user("gone@example.com").await;
        let other_device = app.browser();
        assert_eq!(
            other_device
                .post(app.url("/v1/auth/signin"))
                .json(&json!({"email": "gone@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let token = app
            .token(&browser, &["account:read", "account:write"])
            .await;
        // Re-authentication first: a wrong password changes nothing.
        problem(
            delete_account(&app, &browser, "not my password", None).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(get(&app, &token, "/v1/me").await.status(), 200);

        let r = delete_account(&app, &browser, PASSWORD, None).await;
        assert_eq!(r.status(), 202);
        assert!(
            r.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let d = body(r).await;
        assert_eq!(d["status"], "scheduled");
        problem(get(&app, &token, "/v1/me").await, 401, "unauthenticated").await;
        for b in [&browser, &other_device] {
            let r = b.get(app.url("/v1/me")).send().await.unwrap();
            problem(r, 401, "unauthenticated").await;
        }
        problem(
            sign_in(&app, "gone@example.com").await,
            403,
            "account-disabled",
        )
        .await;
        let user = app
            .app
            .store
            .user_by_email("gone@example.com")
            .await
            .unwrap()
            .unwrap();
        assert!(
            app.app
                .store
                .list_tokens(
                    user.personal_org_id,
                    None,
                    pixeld_core::page::PageRequest::parse(None, None).unwrap()
                )
                .await
                .unwrap()
                .iter()
                .all(|t| t.revoked_at.is_some())
        );
        // The request is recorded with its due date, and operators see it open.
        let requests = app.app.store.data_requests_of(user.id).await.unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].kind, pixeld_core::rights::RequestKind::Erasure);
        assert_eq!(
            requests[0].due_at - requests[0].requested_at,
            time::Duration::days(30)
        );
        let mail = app.mail_to("gone@example.com").pop().unwrap();
        assert!(mail.contains("/cancel-deletion?token="), "{mail}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_deletion_can_be_cancelled_during_the_grace_period_with_the_emailed_link() {
    both(|app| async move {
        let browser = app.user("undo@example.com").await;
        assert_eq!(
            delete_account(&app, &browser, PASSWORD, None)
                .await
                .status(),
            202
        );
        let token = app.link_token("undo@example.com", "/cancel-deletion");
        app.clock.advance(time::Duration::days(29));
        // Opening the link only shows a button (mail scanners prefetch links).
        let page = app
            .plain()
            .get(app.url(&format!("/cancel-deletion?token={token}")))
            .send()
            .await
            .unwrap();
        assert!(page.text().await.unwrap().contains("Keep my account"));
        let r = app
            .plain()
            .post(app.url("/v1/account/deletion/cancel"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(sign_in(&app, "undo@example.com").await.status(), 200);
        // Used once.
        let again = app
            .plain()
            .post(app.url("/v1/account/deletion/cancel"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        problem(again, 400, "invalid-token").await;
        app.clock.advance(time::Duration::days(5));
        assert_eq!(app.app.sweep().await.unwrap().deleted_accounts, 0);
        let user = app
            .app
            .store
            .user_by_email("undo@example.com")
            .await
            .unwrap()
            .expect("the account stays");
        let requests = app.app.store.data_requests_of(user.id).await.unwrap();
        assert_eq!(
            requests[0].status,
            pixeld_core::rights::RequestStatus::Cancelled
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn deleting_an_account_with_two_factor_on_needs_a_current_code() {
    use pixeld_core::clock::Clock;
    both(|app| async move {
        let browser = app.user("tfa@example.com").await;
        let enrol = body(
            browser
                .post(app.url("/v1/account/2fa/totp"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let secret = enrol["secret"].as_str().unwrap().to_string();
        let code =
            pixeld_core::twofactor::code_at(&secret, app.clock.now().unix_timestamp() as u64)
                .unwrap();
        let r = browser
            .post(app.url("/v1/account/2fa/totp/confirm"))
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let missing = problem(
            delete_account(&app, &browser, PASSWORD, None).await,
            422,
            "validation",
        )
        .await;
        assert!(missing.to_string().contains("code"), "{missing}");
        problem(
            delete_account(&app, &browser, PASSWORD, Some("000000")).await,
            422,
            "validation",
        )
        .await;
        app.clock.advance(time::Duration::seconds(30));
        let code =
            pixeld_core::twofactor::code_at(&secret, app.clock.now().unix_timestamp() as u64)
                .unwrap();
        assert_eq!(
            delete_account(&app, &browser, PASSWORD, Some(&code))
                .await
                .status(),
            202
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_sole_owner_of_an_organisation_with_members_must_transfer_ownership_first() {
    both(|app| async move {
        let owner = app.user("solo@example.com").await;
        let org = body(
            owner
                .post(app.url("/v1/orgs"))
                .json(&json!({"name": "Solo Studio"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let org_id = org["id"].as_str().unwrap().to_string();
        let r = owner
            .post(app.url(&format!("/v1/orgs/{org_id}/invites")))
            .json(&json!({"email": "mate@example.com", "role": "member"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let invite = app.link_token("mate@example.com", "/invites/accept");
        let mate = app.user("mate@example.com").await;
        let r = mate
            .post(app.url("/v1/invites/accept"))
            .json(&json!({"token": invite}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let p = problem(
            delete_account(&app, &owner, PASSWORD, None).await,
            409,
            "conflict",
        )
        .await;
        assert!(p["detail"].as_str().unwrap().contains("Solo Studio"), "{p}");
        // Still signed in: nothing happened.
        assert_eq!(
            owner.get(app.url("/v1/me")).send().await.unwrap().status(),
            200
        );
        // Once the colleague is an owner too, the account can go, and the organisation stays.
        let mate_id = app
            .app
            .store
            .user_by_email("mate@example.com")
            .await
            .unwrap()
            .unwrap()
            .id;
        let r = owner
            .patch(app.url(&format!("/v1/orgs/{org_id}/members/{mate_id}")))
            .json(&json!({"role": "owner"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
        assert_eq!(
            delete_account(&app, &owner, PASSWORD, None).await.status(),
            202
        );
        app.clock.advance(time::Duration::days(31));
        assert_eq!(app.app.sweep().await.unwrap().deleted_accounts, 1);
        assert!(
            app.app
                .store
                .user_by_email("solo@example.com")
                .await
                .unwrap()
                .is_none()
        );
        // The shared organisation stays, with its remaining owner.
        let org_uuid: uuid::Uuid = org_id.parse().unwrap();
        assert!(app.app.store.org_by_id(org_uuid).await.unwrap().is_some());
        assert!(
            app.app
                .store
                .membership(org_uuid, mate_id)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(app.app.store.count_owners(org_uuid).await.unwrap(), 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_operator_can_delete_a_reported_childs_account_at_once() {
    both(|app| async move {
        let op = app.user("operator@example.com").await;
        let op_user = app
            .app
            .store
            .user_by_email("operator@example.com")
            .await
            .unwrap()
            .unwrap();
        app.app.store.set_admin(op_user.id, true).await.unwrap();
        let admin = app.token(&op, &["admin"]).await;
        let _child = app.user("kid@example.com").await;
        let kid = app
            .app
            .store
            .user_by_email("kid@example.com")
            .await
            .unwrap()
            .unwrap();
        let r = app
            .plain()
            .delete(app.url(&format!("/v1/admin/users/{}", kid.id)))
            .bearer_auth(&admin)
            .json(&json!({"reason": "reported as under 16"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert!(
            app.app
                .store
                .user_by_email("kid@example.com")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            app.app
                .store
                .org_by_id(kid.personal_org_id)
                .await
                .unwrap()
                .is_none()
        );
        let requests = app.app.store.data_requests_of(kid.id).await.unwrap();
        assert_eq!(
            requests[0].status,
            pixeld_core::rights::RequestStatus::Completed
        );
        assert!(requests[0].detail.contains("under 16"));
        // Not for anyone else.
        let user = app.user("nosy@example.com").await;
        let t = app.token(&user, &["account:read"]).await;
        let r = app
            .plain()
            .delete(app.url(&format!("/v1/admin/users/{}", op_user.id)))
            .bearer_auth(&t)
            .json(&json!({"reason": "x"}))
            .send()
            .await
            .unwrap();
        problem(r, 403, "forbidden").await;
        // Open requests: the scheduled deletion of someone else shows up for operators.
        let later = app.user("later@example.com").await;
        assert_eq!(
            delete_account(&app, &later, PASSWORD, None).await.status(),
            202
        );
        let open = body(get(&app, &admin, "/v1/admin/data-requests").await).await;
        assert_eq!(open["items"].as_array().unwrap().len(), 1, "{open}");
        assert_eq!(open["items"][0]["kind"], "erasure");
        app.stop().await;
    })
    .await;
}

/// `data-class="…" data-keep="…"` (and the IP truncation) of every row on `/privacy`.
fn stated_windows(html: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let attr = |row: &str, name: &str| {
        let needle = format!("{name}=\"");
        row.find(&needle).map(|i| {
            let rest = &row[i + needle.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
    };
    html.split("<tr ")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find('>').unwrap()];
            (
                attr(row, "data-class").unwrap(),
                attr(row, "data-keep"),
                attr(row, "data-truncate-ip-after"),
            )
        })
        .collect()
}

fn duration(w: &str) -> time::Duration {
    pixeld_core::privacy::Window::parse(w).unwrap().duration()
}

#[tokio::test]
async fn the_privacy_page_states_exactly_the_windows_the_sweeper_enforces() {
    let dir = std::env::temp_dir().join(format!("pixeld-page-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("privacy.toml");
    // The operator shortens two windows; the page must follow the file, and so must the sweeper.
    std::fs::write(
        &file,
        "policy_version = \"2026-12-24\"\n\
         [[class]]\nid = \"request_logs\"\nname = \"API logs\"\nwhat = \"Requests\"\nwhy = \"Ops\"\n\
         keep = \"10d\"\ntruncate_ip_after = \"2d\"\nthen = \"Deleted\"\n\
         [[class]]\nid = \"uploads\"\nname = \"Uploads\"\nwhat = \"Images\"\nwhy = \"Processing\"\n\
         keep = \"6h\"\nthen = \"Deleted\"\n",
    )
    .unwrap();
    let f = file.clone();
    both_with(
        move |c| c.retention.privacy_file = Some(f.clone()),
        |app| async move {
            let r = app.plain().get(app.url("/privacy")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert!(r.headers().get("set-cookie").is_none());
            let html = r.text().await.unwrap();
            assert!(html.contains("Last updated <time data-policy-version=\"2026-12-24\">"));
            assert!(
                html.contains("this instance sends your data to no third party"),
                "no processor is on"
            );
            let stated = stated_windows(&html);
            let r = &app.app.settings.retention;
            assert_eq!(
                stated.len(),
                pixeld_core::privacy::DataClass::ALL.len(),
                "every class is on the page"
            );
            for (class, keep, _) in &stated {
                let c = pixeld_core::privacy::DataClass::ALL
                    .into_iter()
                    .find(|c| c.as_str() == class)
                    .unwrap_or_else(|| panic!("the page names an unknown class {class}"));
                if let Some(k) = keep {
                    assert_eq!(duration(k), r.window(c), "{class}: the page says {k}");
                }
            }
            let logs = stated.iter().find(|s| s.0 == "request_logs").unwrap();
            let (keep, truncate) = (
                duration(logs.1.as_deref().unwrap()),
                duration(logs.2.as_deref().unwrap()),
            );
            let uploads = duration(
                stated
                    .iter()
                    .find(|s| s.0 == "uploads")
                    .unwrap()
                    .1
                    .as_deref()
                    .unwrap(),
            );
            assert_eq!(
                (keep, truncate, uploads),
                (
                    time::Duration::days(10),
                    time::Duration::days(2),
                    time::Duration::hours(6)
                )
            );

            // The sweeper does what the page says, to the hour.
            let browser = app.user("page@example.com").await;
            let token = app
                .token(&browser, &["billing:read", "images:write", "images:read"])
                .await;
            assert_eq!(get(&app, &token, "/v1/credits").await.status(), 200);
            let img = app
                .plain()
                .post(app.url("/v1/images"))
                .bearer_auth(&token)
                .header("content-type", "image/png")
                .body(tiny_png())
                .send()
                .await
                .unwrap();
            assert_eq!(img.status(), 201);
            let img_id = body(img).await["id"].as_str().unwrap().to_owned();
            app.app.flush_usage().await.unwrap();
            let hour = time::Duration::hours(1);
            app.clock.advance(uploads - hour);
            assert_eq!(app.app.sweep().await.unwrap().images, 0);
            app.clock.advance(2 * hour);
            assert_eq!(
                app.app.sweep().await.unwrap().images,
                1,
                "uploads go after the stated window"
            );
            assert_eq!(
                get(&app, &token, &format!("/v1/images/{img_id}"))
                    .await
                    .status(),
                404
            );
            app.clock.advance(truncate - uploads - 2 * hour);
            assert_eq!(app.app.sweep().await.unwrap().request_log_ips_truncated, 0);
            app.clock.advance(2 * hour);
            assert!(app.app.sweep().await.unwrap().request_log_ips_truncated >= 1);
            app.clock.advance(keep - truncate - 2 * hour);
            assert_eq!(app.app.sweep().await.unwrap().request_logs, 0);
            app.clock.advance(2 * hour);
            assert!(
                app.app.sweep().await.unwrap().request_logs >= 1,
                "rows go after the stated window"
            );

            // The same policy as data.
            let json = body(
                app.plain()
                    .get(app.url("/v1/privacy"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(json["version"], "2026-12-24");
            let logs = json["classes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == "request_logs")
                .unwrap();
            assert_eq!(
                (logs["keep"].as_str(), logs["truncate_ip_after"].as_str()),
                (Some("10d"), Some("2d"))
            );
            app.stop().await;
        },
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn tiny_png() -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([(x * 30) as u8, (y * 30) as u8, 7]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

#[tokio::test]
async fn no_cookie_is_set_for_anonymous_visitors() {
    both(|app| async move {
        let c = app.plain();
        for path in [
            "/privacy",
            "/v1/privacy",
            "/v1/billing/packs",
            "/v1/billing/plans",
            "/openapi.json",
            "/docs",
            "/healthz",
            "/verify-email?token=abc",
            "/cancel-deletion?token=abc",
            "/r/nothing.png",
            "/no-such-page",
        ] {
            let r = c.get(app.url(path)).send().await.unwrap();
            assert!(
                r.headers().get("set-cookie").is_none(),
                "GET {path} set a cookie"
            );
        }
        let r = c
            .post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "nobody@example.com", "password": "wrong password!"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(
            r.headers().get("set-cookie").is_none(),
            "a failed sign-in set a cookie"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn every_cookie_the_server_sets_is_listed_on_the_privacy_page() {
    both(|app| async move {
        let mut names = std::collections::BTreeSet::new();
        let mut note = |r: &reqwest::Response| {
            for v in r.headers().get_all("set-cookie") {
                let v = v.to_str().unwrap();
                names.insert(v[..v.find('=').unwrap()].to_string());
            }
        };
        assert_eq!(app.sign_up("jar@example.com").await.status(), 201);
        let token = app.link_token("jar@example.com", "/verify-email");
        let r = app
            .plain()
            .post(app.url("/v1/auth/verify-email"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        note(&r);
        let b = app.browser();
        let r = b
            .post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "jar@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        note(&r);
        let r = b
            .put(app.url("/v1/billing/currency"))
            .json(&json!({"currency": "EUR"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        note(&r);
        let r = b.post(app.url("/v1/auth/signout")).send().await.unwrap();
        note(&r);
        assert_eq!(
            names.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["pixeld_currency", "pixeld_session"]
        );
        let html = app
            .plain()
            .get(app.url("/privacy"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for n in &names {
            assert!(
                html.contains(&format!("data-cookie=\"{n}\"")),
                "the page does not list the cookie {n}"
            );
        }
        app.stop().await;
    })
    .await;
}

async fn consents(app: &TestApp, b: &reqwest::Client) -> Value {
    let r = b.get(app.url("/v1/account/consents")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    body(r).await
}

#[tokio::test]
async fn marketing_consent_is_recorded_with_time_source_and_policy_version_and_withdrawn_in_one_click()
 {
    both(|app| async move {
        // Without the box ticked there is no consent.
        let plain = app.user("quiet@example.com").await;
        let c = consents(&app, &plain).await;
        assert_eq!(
            (c["marketing_email"].as_bool(), c["ai_training"].as_bool()),
            (Some(false), Some(false))
        );
        let quiet = app
            .app
            .store
            .user_by_email("quiet@example.com")
            .await
            .unwrap()
            .unwrap();
        assert!(!app.app.may_send_marketing(quiet.id).await.unwrap());

        let r = app
            .plain()
            .post(app.url("/v1/auth/signup"))
            .json(
                &json!({"email": "news@example.com", "password": PASSWORD, "age_confirmed": true,
                          "marketing_emails": true}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let token = app.link_token("news@example.com", "/verify-email");
        app.plain()
            .post(app.url("/v1/auth/verify-email"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        let b = app.browser();
        b.post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "news@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let c = consents(&app, &b).await;
        assert_eq!(c["marketing_email"], true);
        let given = c["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["purpose"] == "marketing_email")
            .unwrap();
        assert_eq!(given["source"], "signup");
        assert_eq!(
            given["policy_version"],
            app.app.settings.retention.policy_version.as_str()
        );
        assert!(given["recorded_at"].as_str().is_some());
        let age = c["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["purpose"] == "age_confirmation")
            .unwrap();
        assert_eq!(age["granted"], true);
        let user = app
            .app
            .store
            .user_by_email("news@example.com")
            .await
            .unwrap()
            .unwrap();
        assert!(app.app.may_send_marketing(user.id).await.unwrap());

        // One click, no sign-in: the link from the email withdraws it.
        let link = c["unsubscribe_url"].as_str().unwrap().to_owned();
        let forged = link.replace("sig=", "sig=00");
        let page = app
            .plain()
            .post(&forged)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("does not work"), "{page}");
        assert!(
            app.app.may_send_marketing(user.id).await.unwrap(),
            "a forged link changes nothing"
        );
        let form = app
            .plain()
            .get(&link)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(form.contains("<button type=\"submit\">Unsubscribe</button>"));
        // Even from a signed-in browser (the link carries its own proof, not the cookie).
        let page = b.post(&link).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("You are unsubscribed"), "{page}");
        let c = consents(&app, &b).await;
        assert_eq!(c["marketing_email"], false);
        assert_eq!(
            c["history"].as_array().unwrap().last().unwrap()["source"],
            "unsubscribe_link"
        );
        assert!(!app.app.may_send_marketing(user.id).await.unwrap());

        // From settings: given again, then AI training stays off unless turned on.
        let r = b
            .put(app.url("/v1/account/consents/marketing_email"))
            .json(&json!({"granted": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(body(r).await["source"], "settings");
        problem(
            b.put(app.url("/v1/account/consents/age_confirmation"))
                .json(&json!({"granted": false}))
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
        )
        .await;
        assert_eq!(consents(&app, &b).await["ai_training"], false);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn restricting_processing_keeps_the_data_but_stops_marketing_and_ai_providers() {
    both(|app| async move {
        let b = app.user("restrict@example.com").await;
        let user = app
            .app
            .store
            .user_by_email("restrict@example.com")
            .await
            .unwrap()
            .unwrap();
        b.put(app.url("/v1/account/consents/marketing_email"))
            .json(&json!({"granted": true}))
            .send()
            .await
            .unwrap();
        assert!(app.app.may_send_marketing(user.id).await.unwrap());
        assert!(app.app.may_use_ai_providers(user.id).await.unwrap());

        // One objection stops one purpose.
        let r = b
            .put(app.url("/v1/account/processing"))
            .json(&json!({"restricted": false, "objections": ["ai_providers"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(!app.app.may_use_ai_providers(user.id).await.unwrap());
        assert!(app.app.may_send_marketing(user.id).await.unwrap());

        // Restriction stops everything non-essential, and the account keeps working.
        let r = b
            .put(app.url("/v1/account/processing"))
            .json(&json!({"restricted": true, "objections": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(body(r).await, json!({"restricted": true, "objections": []}));
        assert!(!app.app.may_send_marketing(user.id).await.unwrap());
        assert!(!app.app.may_use_ai_providers(user.id).await.unwrap());
        assert_eq!(
            b.get(app.url("/v1/account/profile"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            consents(&app, &b).await["marketing_email"],
            true,
            "the consent itself is kept"
        );

        problem(
            b.put(app.url("/v1/account/processing"))
                .json(&json!({"restricted": false, "objections": ["tracking"]}))
                .send()
                .await
                .unwrap(),
            422,
            "validation",
        )
        .await;
        let kinds: Vec<_> = app
            .app
            .store
            .data_requests_of(user.id)
            .await
            .unwrap()
            .iter()
            .map(|r| r.kind)
            .collect();
        use pixeld_core::rights::RequestKind::{Objection, Restriction};
        assert_eq!(kinds, vec![Objection, Restriction, Objection]);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_profile_can_be_corrected_and_every_change_is_audited() {
    both(|app| async move {
        let b = app.user("fix@example.com").await;
        let r = b.patch(app.url("/v1/account/profile"))
            .json(&json!({"name": "Ada Lovelace", "phone": "+44 20 7946 0000", "company": "Analytical Engines",
                          "address": ["12 St James's Square", "London"], "tax_id": "GB123"}))
            .send().await.unwrap();
        assert_eq!(r.status(), 200);
        let p = body(r).await;
        assert_eq!(p["name"], "Ada Lovelace");
        assert_eq!(p["address"], json!(["12 St James's Square", "London"]));
        let me = body(b.get(app.url("/v1/me")).send().await.unwrap()).await;
        assert_eq!(me["user"]["name"], "Ada Lovelace");

        let r = b.patch(app.url("/v1/account/profile")).json(&json!({"phone": "", "tax_id": "GB456"})).send().await.unwrap();
        let p = body(r).await;
        assert!(p["phone"].is_null());
        assert_eq!(p["company"], "Analytical Engines", "fields not sent stay");

        let bad = problem(
            b.patch(app.url("/v1/account/profile")).json(&json!({"phone": "call me", "name": ""})).send().await.unwrap(),
            422,
            "validation",
        )
        .await;
        let fields: Vec<&str> = bad["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["name", "phone"], "every problem at once");

        let changes = body(b.get(app.url("/v1/account/profile/changes")).send().await.unwrap()).await;
        let changed: Vec<Value> = changes["items"].as_array().unwrap().iter().map(|c| c["fields"].clone()).collect();
        assert_eq!(changed, vec![json!(["name", "phone", "company", "address", "tax_id"]), json!(["phone", "tax_id"])]);
        // The audit names fields, never their old values.
        let dump = app.database_text().await;
        assert!(!dump.contains("+44 20 7946 0000"), "the corrected phone number is gone");
        let user = app.app.store.user_by_email("fix@example.com").await.unwrap().unwrap();
        let rect = app.app.store.data_requests_of(user.id).await.unwrap();
        assert_eq!(rect.len(), 2);
        assert!(rect.iter().all(|r| r.kind == pixeld_core::rights::RequestKind::Rectification));
        app.stop().await;
    })
    .await;
}

async fn hit(
    app: &TestApp,
    c: &reqwest::Client,
    ua: &str,
    name: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = c
        .post(app.url("/v1/analytics/events"))
        .header("user-agent", ua)
        .json(&json!({"site": "website", "kind": "pageview", "name": name,
                      "referrer": "https://news.example.org/post/1?utm=x"}));
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

async fn admin_token(app: &TestApp, email: &str) -> String {
    let b = app.operator(email).await;
    app.token(&b, &["admin"]).await
}

const DESKTOP: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0 visitor-a";
const PHONE: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148 visitor-b";

#[tokio::test]
async fn visitors_are_counted_without_cookies_and_cannot_be_followed_across_days() {
    both(|app| async move {
        let admin = admin_token(&app, "analyst@example.com").await;
        let c = app.plain();
        for _ in 0..2 {
            let r = hit(&app, &c, DESKTOP, "/pricing?invite=secret-token", &[]).await;
            assert_eq!(r.status(), 202);
            assert!(
                r.headers().get("set-cookie").is_none(),
                "analytics never sets a cookie"
            );
            assert_eq!(body(r).await["counted"], true);
        }
        assert_eq!(hit(&app, &c, PHONE, "/", &[]).await.status(), 202);
        let day1 = app.app.now().date().to_string();
        let report = body(
            get(
                &app,
                &admin,
                &format!("/v1/admin/analytics?since={day1}&until={day1}"),
            )
            .await,
        )
        .await;
        assert_eq!(
            (report["views"].as_i64(), report["visitors"].as_i64()),
            (Some(3), Some(2)),
            "{report}"
        );
        assert_eq!(
            report["top_pages"][0],
            json!({"key": "/pricing", "views": 2, "visitors": 1})
        );
        assert_eq!(report["referrers"][0]["key"], "news.example.org");
        let devices: Vec<&str> = report["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["key"].as_str().unwrap())
            .collect();
        assert_eq!(devices, ["desktop", "mobile"]);
        // Only aggregates: no visitor hash in the report.
        assert!(!report.to_string().contains("visitor\""));

        // Nothing that identifies the visitor is stored: no address, no user agent, no query.
        let dump = app.database_text().await;
        assert!(
            !dump.contains("visitor-a") && !dump.contains("visitor-b"),
            "a user agent was stored"
        );
        assert!(!dump.contains("secret-token"), "a query string was stored");

        // The next day the same person is someone else.
        app.clock.advance(time::Duration::days(1));
        assert_eq!(hit(&app, &c, DESKTOP, "/pricing", &[]).await.status(), 202);
        let day2 = app.app.now().date().to_string();
        let mut hashes = std::collections::BTreeMap::new();
        for day in [&day1, &day2] {
            for e in app
                .app
                .store
                .analytics_events("website", day, day)
                .await
                .unwrap()
            {
                if e.name == "/pricing" {
                    hashes
                        .entry(day.clone())
                        .or_insert_with(Vec::new)
                        .push(e.visitor);
                }
            }
        }
        assert_eq!(
            hashes[&day1][0], hashes[&day1][1],
            "one visitor within a day"
        );
        assert_ne!(
            hashes[&day1][0], hashes[&day2][0],
            "but not the same visitor the next day"
        );
        let both_days = body(
            get(
                &app,
                &admin,
                &format!("/v1/admin/analytics?since={day1}&until={day2}"),
            )
            .await,
        )
        .await;
        assert_eq!(both_days["visitors"], 3);

        // The salt that could link a day's hashes is deleted after 48 hours.
        app.clock.advance(time::Duration::hours(23));
        assert_eq!(app.app.sweep().await.unwrap().analytics_salts, 0);
        app.clock.advance(time::Duration::hours(2));
        assert_eq!(
            app.app.sweep().await.unwrap().analytics_salts,
            1,
            "day one's salt"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn do_not_track_global_privacy_control_and_an_objection_mean_not_counted() {
    both(|app| async move {
        let c = app.plain();
        for header in [("dnt", "1"), ("sec-gpc", "1")] {
            let r = hit(&app, &c, DESKTOP, "/", &[header]).await;
            assert_eq!(r.status(), 202);
            assert_eq!(body(r).await["counted"], false, "{header:?} is honoured");
        }
        // A signed-in user who objected to analytics is not counted either.
        let b = app.user("private@example.com").await;
        assert_eq!(
            body(hit(&app, &b, DESKTOP, "/dashboard", &[]).await).await["counted"],
            true
        );
        let r = b
            .put(app.url("/v1/account/processing"))
            .json(&json!({"restricted": false, "objections": ["analytics"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            body(hit(&app, &b, DESKTOP, "/dashboard", &[]).await).await["counted"],
            false
        );
        let day = app.app.now().date().to_string();
        assert_eq!(
            app.app
                .store
                .analytics_events("website", &day, &day)
                .await
                .unwrap()
                .len(),
            1
        );
        let r = c
            .post(app.url("/v1/analytics/events"))
            .json(&json!({"site": "elsewhere", "kind": "pageview", "name": "/"}))
            .send()
            .await
            .unwrap();
        problem(r, 422, "validation").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn raw_analytics_events_are_pruned_after_30_days() {
    both(|app| async move {
        assert_eq!(
            hit(&app, &app.plain(), DESKTOP, "/", &[]).await.status(),
            202
        );
        app.clock.advance(time::Duration::days(29));
        assert_eq!(app.app.sweep().await.unwrap().analytics_events, 0);
        app.clock.advance(time::Duration::days(2));
        assert_eq!(app.app.sweep().await.unwrap().analytics_events, 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_request_log_reads_newest_first_on_request_and_pages_back_in_time() {
    both(|app| async move {
        let browser = app.user("order@example.com").await;
        let token = app.token(&browser, &["billing:read"]).await;
        for _ in 0..4 {
            assert_eq!(get(&app, &token, "/v1/credits").await.status(), 200);
        }
        let oldest_first: Vec<String> = usage(&app, &token, "")
            .await
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(oldest_first.len() >= 4);
        let mut newest_first = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = get(
                &app,
                &token,
                &format!("/v1/usage?order=desc&limit=2{cursor}"),
            )
            .await;
            assert_eq!(r.status(), 200);
            let page = body(r).await;
            for row in page["items"].as_array().unwrap() {
                newest_first.push(row["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        // The listing requests themselves are logged too, after the snapshot above.
        let seen: Vec<&String> = newest_first
            .iter()
            .filter(|id| oldest_first.contains(id))
            .collect();
        let mut expected: Vec<&String> = oldest_first.iter().collect();
        expected.reverse();
        assert_eq!(seen, expected, "every row once, newest first");
        problem(
            get(&app, &token, "/v1/usage?order=sideways").await,
            422,
            "validation",
        )
        .await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_analytics_name_with_a_control_character_anywhere_is_refused() {
    both(|app| async move {
        let c = app.plain();
        for name in ["/pricing\u{c}", "\t/pricing", "/pri\u{7f}cing"] {
            problem(hit(&app, &c, DESKTOP, name, &[]).await, 422, "validation").await;
        }
        assert_eq!(
            hit(&app, &c, DESKTOP, " /pricing ", &[]).await.status(),
            202
        );
        app.stop().await;
    })
    .await;
}
