//! Support requests: a user writes to the operators, an operator answers, both are told by
//! email without the text; bad input and other people's requests; the 2-year retention.

use serde_json::{Value, json};

use crate::support::{TestApp, body, both, problem};

async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    json: Option<Value>,
) -> reqwest::Response {
    let mut r = app
        .plain()
        .request(method, app.url(path))
        .bearer_auth(token);
    if let Some(j) = json {
        r = r.json(&j);
    }
    r.send().await.unwrap()
}

async fn post(app: &TestApp, token: &str, path: &str, json: Value) -> reqwest::Response {
    send(app, token, reqwest::Method::POST, path, Some(json)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    send(app, token, reqwest::Method::GET, path, None).await
}

async fn operator(app: &TestApp, email: &str) -> String {
    let b = app.operator(email).await;
    app.token(&b, &["admin"]).await
}

async fn open(app: &TestApp, token: &str, subject: &str, text: &str) -> String {
    let r = post(
        app,
        token,
        "/v1/support/requests",
        json!({"subject": subject, "category": "billing", "body": text}),
    )
    .await;
    assert_eq!(r.status(), 201);
    body(r).await["request"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_user_writes_to_the_operators_and_reads_their_answer() {
    both(|app| async move {
        let admin = operator(&app, "ops@example.com").await;
        let ada = app.user("ada@example.com").await;
        let token = app.token(&ada, &["account:read", "account:write"]).await;

        let r = post(
            &app,
            &token,
            "/v1/support/requests",
            json!({"subject": "  Invoice needs our VAT number ",
                   "category": "billing",
                   "body": "Hello,\r\nplease add DE123456789 to invoice 7.\r\n"}),
        )
        .await;
        assert_eq!(r.status(), 201);
        let thread = body(r).await;
        let id = thread["request"]["id"].as_str().unwrap().to_owned();
        assert_eq!(thread["request"]["subject"], "Invoice needs our VAT number");
        assert_eq!(thread["request"]["status"], "open");
        assert_eq!(thread["request"]["category"], "billing");
        assert!(thread["request"].get("requester_email").is_none());
        assert_eq!(thread["messages"][0]["from"], "user");
        assert_eq!(
            thread["messages"][0]["body"],
            "Hello,\nplease add DE123456789 to invoice 7."
        );

        // The operator is told by email: the subject and a link, never the message.
        let mail = app.mail_to("ops@example.com");
        let note = mail.last().unwrap();
        assert!(note.contains(&format!("/admin/support/{id}")), "{note}");
        assert!(!note.contains("DE123456789"), "{note}");

        // The queue shows it with its requester; a plain user cannot see the queue.
        let queue = body(get(&app, &admin, "/v1/admin/support/requests").await).await;
        assert_eq!(queue["items"][0]["id"], id.as_str());
        assert_eq!(queue["items"][0]["requester_email"], "ada@example.com");
        problem(
            get(&app, &token, "/v1/admin/support/requests").await,
            403,
            "forbidden",
        )
        .await;

        // The answer.
        let r = post(
            &app,
            &admin,
            &format!("/v1/admin/support/requests/{id}/messages"),
            json!({"body": "Added. The corrected invoice is in your billing page."}),
        )
        .await;
        assert_eq!(r.status(), 201);
        assert_eq!(body(r).await["from"], "operator");
        let mail = app.mail_to("ada@example.com");
        let note = mail.last().unwrap();
        assert!(note.contains(&format!("/support/{id}")), "{note}");
        assert!(!note.contains("corrected invoice"), "{note}");
        let thread = body(get(&app, &token, &format!("/v1/support/requests/{id}")).await).await;
        assert_eq!(thread["request"]["status"], "answered");
        let from: Vec<&str> = thread["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["from"].as_str().unwrap())
            .collect();
        assert_eq!(from, ["user", "operator"]);
        // Waiting for the user: not in the default queue any more.
        let queue = body(get(&app, &admin, "/v1/admin/support/requests").await).await;
        assert!(queue["items"].as_array().unwrap().is_empty(), "{queue}");

        // Closed by the user; a new message opens it again.
        let r = post(
            &app,
            &token,
            &format!("/v1/support/requests/{id}/close"),
            json!({}),
        )
        .await;
        assert_eq!(body(r).await["status"], "closed");
        let closed =
            body(get(&app, &admin, "/v1/admin/support/requests?status=closed").await).await;
        assert_eq!(closed["items"].as_array().unwrap().len(), 1);
        let r = post(
            &app,
            &token,
            &format!("/v1/support/requests/{id}/messages"),
            json!({"body": "One more thing: the PO number."}),
        )
        .await;
        assert_eq!(r.status(), 201);
        let thread = body(get(&app, &token, &format!("/v1/support/requests/{id}")).await).await;
        assert_eq!(thread["request"]["status"], "open");
        assert!(thread["request"]["closed_at"].is_null());
        assert_eq!(thread["messages"].as_array().unwrap().len(), 3);
        let r = post(
            &app,
            &admin,
            &format!("/v1/admin/support/requests/{id}/close"),
            json!({}),
        )
        .await;
        assert_eq!(body(r).await["status"], "closed");

        // The user's list, newest first, in pages.
        let second = open(&app, &token, "Second", "x").await;
        let page = body(get(&app, &token, "/v1/support/requests?limit=1").await).await;
        assert_eq!(page["items"][0]["id"], second.as_str());
        let cursor = page["next_cursor"].as_str().unwrap();
        let page = body(
            get(
                &app,
                &token,
                &format!("/v1/support/requests?limit=1&cursor={cursor}"),
            )
            .await,
        )
        .await;
        assert_eq!(page["items"][0]["id"], id.as_str());
        assert!(page["next_cursor"].is_null());

        // Anyone else's request is not there at all.
        let eve = app.user("eve@example.com").await;
        let eve = app.token(&eve, &["account:read", "account:write"]).await;
        problem(
            get(&app, &eve, &format!("/v1/support/requests/{id}")).await,
            404,
            "not-found",
        )
        .await;
        problem(
            post(
                &app,
                &eve,
                &format!("/v1/support/requests/{id}/messages"),
                json!({"body": "hi"}),
            )
            .await,
            404,
            "not-found",
        )
        .await;
        problem(
            post(
                &app,
                &eve,
                &format!("/v1/support/requests/{id}/close"),
                json!({}),
            )
            .await,
            404,
            "not-found",
        )
        .await;
        let list = body(get(&app, &eve, "/v1/support/requests").await).await;
        assert!(list["items"].as_array().unwrap().is_empty());
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_support_input_is_refused_with_every_problem_and_stores_nothing() {
    both(|app| async move {
        let ada = app.user("ada@example.com").await;
        let token = app.token(&ada, &["account:read", "account:write"]).await;
        let p = problem(
            post(
                &app,
                &token,
                "/v1/support/requests",
                json!({"subject": " ", "body": "\n"}),
            )
            .await,
            422,
            "validation",
        )
        .await;
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["subject", "body"], "{p}");
        for bad in [
            json!({"subject": "two\nlines", "body": "x"}),
            json!({"subject": "x".repeat(201), "body": "x"}),
            json!({"subject": "x", "body": "bell\u{7}"}),
            json!({"subject": "x", "body": "x".repeat(10_001)}),
        ] {
            problem(
                post(&app, &token, "/v1/support/requests", bad).await,
                422,
                "validation",
            )
            .await;
        }
        for bad in [
            json!({"subject": "x", "body": "x", "category": "sales"}),
            json!({"subject": "x", "body": "x", "priority": "urgent"}),
            json!({"subject": "x"}),
        ] {
            let r = post(&app, &token, "/v1/support/requests", bad).await;
            assert_eq!(r.status(), 422);
        }
        let list = body(get(&app, &token, "/v1/support/requests").await).await;
        assert!(
            list["items"].as_array().unwrap().is_empty(),
            "nothing was stored"
        );

        // A read-only token cannot write; a missing request is a 404.
        let reader = app.token(&ada, &["account:read"]).await;
        problem(
            post(
                &app,
                &reader,
                "/v1/support/requests",
                json!({"subject": "x", "body": "x"}),
            )
            .await,
            403,
            "missing-scope",
        )
        .await;
        let nobody = uuid::Uuid::now_v7();
        problem(
            get(&app, &token, &format!("/v1/support/requests/{nobody}")).await,
            404,
            "not-found",
        )
        .await;

        // Ten open requests at once; closing one makes room.
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push(open(&app, &token, &format!("Question {i}"), "x").await);
        }
        problem(
            post(
                &app,
                &token,
                "/v1/support/requests",
                json!({"subject": "11th", "body": "x"}),
            )
            .await,
            409,
            "state-conflict",
        )
        .await;
        post(
            &app,
            &token,
            &format!("/v1/support/requests/{}/close", ids[0]),
            json!({}),
        )
        .await;
        open(&app, &token, "11th", "x").await;

        // An operator's queue filter must be one it knows.
        let admin = operator(&app, "ops@example.com").await;
        problem(
            get(&app, &admin, "/v1/admin/support/requests?status=pending").await,
            422,
            "validation",
        )
        .await;
        let all = body(
            get(
                &app,
                &admin,
                "/v1/admin/support/requests?status=all&limit=100",
            )
            .await,
        )
        .await;
        assert_eq!(all["items"].as_array().unwrap().len(), 11);
        problem(
            post(
                &app,
                &admin,
                &format!("/v1/admin/support/requests/{}/messages", ids[1]),
                json!({"body": ""}),
            )
            .await,
            422,
            "validation",
        )
        .await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn support_requests_are_deleted_two_years_after_their_last_message() {
    both(|app| async move {
        let ada = app.user("ada@example.com").await;
        let token = app.token(&ada, &["account:read", "account:write"]).await;
        let quiet = open(&app, &token, "Old question", "x").await;
        let busy = open(&app, &token, "Ongoing", "x").await;
        let window = app
            .app
            .settings
            .retention
            .window(pixeld_core::privacy::DataClass::Support);
        assert_eq!(
            window,
            time::Duration::days(731),
            "2 years as the page says"
        );
        let hour = time::Duration::hours(1);
        app.clock.advance(window / 2);
        let r = post(
            &app,
            &token,
            &format!("/v1/support/requests/{busy}/messages"),
            json!({"body": "still there?"}),
        )
        .await;
        assert_eq!(r.status(), 201);
        app.clock.advance(window / 2 - hour);
        assert_eq!(app.app.sweep().await.unwrap().support_requests, 0);
        app.clock.advance(2 * hour);
        assert_eq!(app.app.sweep().await.unwrap().support_requests, 1);
        problem(
            get(&app, &token, &format!("/v1/support/requests/{quiet}")).await,
            404,
            "not-found",
        )
        .await;
        let thread = body(get(&app, &token, &format!("/v1/support/requests/{busy}")).await).await;
        assert_eq!(
            thread["messages"].as_array().unwrap().len(),
            2,
            "counted from its last message"
        );
        app.clock.advance(window / 2);
        assert_eq!(app.app.sweep().await.unwrap().support_requests, 1);
        assert!(app.database_text().await.find("still there?").is_none());
        app.stop().await;
    })
    .await;
}
