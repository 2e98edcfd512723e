use serde_json::{Value, json};

use crate::support::{TestApp, body, both, both_with, problem};

fn card() -> Value {
    json!({
        "page": {"width": 320, "height": 160, "background": "#0f172a"},
        "variables": {"title": {"example": "Hello"}},
        "layers": [
            {"type": "text", "name": "title", "x": 16, "y": 16, "width": 288, "height": 128,
             "text": "{{title}}", "size": 40, "fit": "shrink", "color": "#ffffff"}
        ]
    })
}

async fn template(app: &TestApp, token: &str) -> String {
    let r = app
        .plain()
        .post(app.url("/v1/templates"))
        .bearer_auth(token)
        .json(&json!({"name": "Card", "template": card()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    body(r).await["id"].as_str().unwrap().to_owned()
}

async fn render(app: &TestApp, token: &str, id: &str, title: &str) -> reqwest::Response {
    app.plain()
        .post(app.url("/v1/renders"))
        .bearer_auth(token)
        .json(&json!({"template": id, "data": {"title": title}}))
        .send()
        .await
        .unwrap()
}

async fn balance(app: &TestApp, token: &str) -> Value {
    let r = app
        .plain()
        .get(app.url("/v1/credits"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    body(r).await
}

async fn entries(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .plain()
            .get(app.url(&format!("/v1/credits/entries?limit=100{query}{cursor}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page = body(r).await;
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

fn kinds(entries: &[Value]) -> Vec<(String, i64)> {
    entries
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["amount"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_new_organisation_spends_its_free_credits_and_cache_hits_are_free() {
    both(|app| async move {
        let b = app.user("owner@example.com").await;
        let token = app.token(&b, &["render", "billing:read"]).await;
        let start = balance(&app, &token).await;
        assert_eq!(start["available"], 100, "{start}");
        assert_eq!(start["prices"]["render"], 1);

        let id = template(&app, &token).await;
        let r = render(&app, &token, &id, "First").await;
        assert_eq!(r.status(), 200);
        assert_eq!(balance(&app, &token).await["available"], 99);
        // The same render again comes from the cache and costs nothing.
        let r = render(&app, &token, &id, "First").await;
        assert_eq!(r.headers()["x-pixeld-cache"], "hit");
        assert_eq!(balance(&app, &token).await["available"], 99);

        let all = entries(&app, &token, "").await;
        assert_eq!(
            kinds(&all),
            vec![
                ("grant".into(), 100),
                ("reserve".into(), -1),
                ("settle".into(), 0)
            ]
        );
        assert_eq!(all[0]["source"], "plan");
        assert!(all[0]["expires_at"].is_string(), "free credits expire");
        assert_eq!(all[1]["source"], "render");
        assert_eq!(all[2]["balance_after"], 99);
        assert_eq!(all[1]["reservation_id"], all[2]["reservation_id"]);

        // Filtered by kind, and exported as CSV.
        assert_eq!(entries(&app, &token, "&kind=grant").await.len(), 1);
        let r = app
            .plain()
            .get(app.url("/v1/credits/entries.csv"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let csv = r.text().await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(lines[0].starts_with("id,created_at,kind,amount,balance_after"));
        assert!(lines[1].contains(",grant,100,100,plan,"), "{csv}");

        // A bad filter is a clear 422.
        let r = app
            .plain()
            .get(app.url("/v1/credits/entries?kind=gift"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        problem(r, 422, "validation").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn two_hundred_concurrent_renders_on_fifty_credits_exactly_fifty_succeed() {
    both_with(
        |c| c.credits.free_monthly = 50,
        |app| async move {
            let b = app.user("busy@example.com").await;
            let token = app.token(&b, &["render", "billing:read"]).await;
            let id = template(&app, &token).await;
            let tasks: Vec<_> = (0..200)
                .map(|i| {
                    let client = app.plain();
                    let url = app.url("/v1/renders");
                    let token = token.clone();
                    let id = id.clone();
                    tokio::spawn(async move {
                        let r = client
                            .post(url)
                            .bearer_auth(token)
                            .json(&json!({"template": id, "data": {"title": format!("Order {i}")}}))
                            .send()
                            .await
                            .unwrap();
                        let status = r.status().as_u16();
                        let ct = r.headers().get("content-type").cloned();
                        let bytes = r.bytes().await.unwrap();
                        (status, ct, bytes)
                    })
                })
                .collect();
            let mut ok = 0;
            let mut refused = 0;
            for t in tasks {
                let (status, ct, bytes) = t.await.unwrap();
                match status {
                    200 => ok += 1,
                    402 => {
                        refused += 1;
                        assert_eq!(ct.unwrap(), "application/problem+json");
                        let p: Value = serde_json::from_slice(&bytes).unwrap();
                        assert_eq!(p["type"], "/problems/insufficient-credits");
                        assert!(
                            p["detail"].as_str().unwrap().contains("balance is 0"),
                            "{p}"
                        );
                    }
                    other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&bytes)),
                }
            }
            assert_eq!((ok, refused), (50, 150));
            let bal = balance(&app, &token).await;
            assert_eq!(
                (bal["available"].as_i64(), bal["held"].as_i64()),
                (Some(0), Some(0))
            );
            let all = entries(&app, &token, "").await;
            let reserves = all.iter().filter(|e| e["kind"] == "reserve").count();
            let settles = all.iter().filter(|e| e["kind"] == "settle").count();
            assert_eq!((all.len(), reserves, settles), (101, 50, 50));
            let mut reservations: Vec<&str> = all
                .iter()
                .filter_map(|e| e["reservation_id"].as_str())
                .collect();
            reservations.sort_unstable();
            reservations.dedup();
            assert_eq!(reservations.len(), 50, "no reservation settled twice");
            let totals = app.app.credit_totals(org_of(&app, &b).await).await.unwrap();
            assert!(totals.consistent(), "{totals:?}");
            app.stop().await;
        },
    )
    .await;
}

/// The personal organisation of a signed-in browser (where its tokens act).
async fn org_of(app: &TestApp, browser: &reqwest::Client) -> uuid::Uuid {
    let r = browser.get(app.url("/v1/me")).send().await.unwrap();
    let me = body(r).await;
    me["org"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no org in {me}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn failed_work_costs_nothing() {
    both(|app| async move {
        let b = app.user("careful@example.com").await;
        let token = app
            .token(&b, &["images:write", "images:read", "billing:read"])
            .await;
        // A truncated JPEG is refused: the hold is released.
        let r = app
            .plain()
            .post(app.url("/v1/images"))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .body(vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F'])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(balance(&app, &token).await["available"], 100);
        assert_eq!(
            kinds(&entries(&app, &token, "").await),
            vec![
                ("grant".into(), 100),
                ("reserve".into(), -1),
                ("release".into(), 1)
            ]
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_empty_balance_refuses_an_async_render_at_once_and_a_queued_one_is_settled() {
    both_with(
        |c| c.credits.free_monthly = 1,
        |app| async move {
            let b = app.user("queue@example.com").await;
            let token = app.token(&b, &["render", "billing:read"]).await;
            let id = template(&app, &token).await;
            let post = |title: &'static str| {
                app.plain()
                    .post(app.url("/v1/renders"))
                    .bearer_auth(&token)
                    .json(&json!({"template": id, "data": {"title": title}, "async": true}))
                    .send()
            };
            let r = post("queued").await.unwrap();
            assert_eq!(r.status(), 202);
            let job = body(r).await;
            // The credit is held while the job waits, so a second one is refused now.
            problem(post("second").await.unwrap(), 402, "insufficient-credits").await;
            let job_url = app.url(&format!("/v1/render-jobs/{}", job["id"].as_str().unwrap()));
            let mut status = Value::Null;
            for _ in 0..200 {
                let r = app
                    .plain()
                    .get(&job_url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                status = body(r).await;
                if status["status"] != "pending" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert_eq!(status["status"], "completed", "{status}");
            let bal = balance(&app, &token).await;
            assert_eq!(
                (bal["available"].as_i64(), bal["held"].as_i64()),
                (Some(0), Some(0))
            );
            assert_eq!(
                kinds(&entries(&app, &token, "").await),
                vec![
                    ("grant".into(), 1),
                    ("reserve".into(), -1),
                    ("settle".into(), 0)
                ]
            );
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn a_reservation_abandoned_by_a_dead_process_is_released_by_the_sweeper() {
    both(|app| async move {
        let b = app.user("crash@example.com").await;
        let token = app.token(&b, &["render", "billing:read"]).await;
        let org = org_of(&app, &b).await;
        // What a process that died mid-work leaves behind: a hold nobody will finish.
        let hold = app
            .app
            .reserve(org, None, pixeld_core::credits::Metered::Render, None)
            .await
            .unwrap();
        hold.detach();
        assert_eq!(balance(&app, &token).await["held"], 1);
        app.app.sweep().await.unwrap();
        assert_eq!(
            balance(&app, &token).await["held"],
            1,
            "not before its timeout"
        );
        app.clock.advance(time::Duration::minutes(16));
        let report = app.app.sweep().await.unwrap();
        assert_eq!(report.released_reservations, 1);
        let bal = balance(&app, &token).await;
        assert_eq!(
            (bal["available"].as_i64(), bal["held"].as_i64()),
            (Some(100), Some(0))
        );
        app.app.sweep().await.unwrap();
        assert_eq!(
            balance(&app, &token).await["available"],
            100,
            "released once"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn free_credits_expire_when_the_month_ends_and_the_next_month_brings_new_ones() {
    both(|app| async move {
        let b = app.user("monthly@example.com").await;
        let token = app.token(&b, &["render", "billing:read"]).await;
        assert_eq!(balance(&app, &token).await["available"], 100);
        app.clock.advance(time::Duration::days(32));
        app.app.sweep().await.unwrap();
        let all = entries(&app, &token, "").await;
        assert!(kinds(&all).contains(&("expire".into(), -100)), "{all:?}");
        // Reading the balance in the new month makes the new month's grant.
        assert_eq!(balance(&app, &token).await["available"], 100);
        let grants = entries(&app, &token, "&kind=grant").await;
        assert_eq!(grants.len(), 2);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn only_owners_and_admins_see_the_balance() {
    both(|app| async move {
        // A token without the scope.
        let b = app.user("member@example.com").await;
        let token = app.token(&b, &["render"]).await;
        let r = app
            .plain()
            .get(app.url("/v1/credits"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let p = problem(r, 403, "missing-scope").await;
        assert_eq!(p["scope"], "billing:read");

        // A member of a team: renders, but the team's billing is for its owners and admins.
        let owner = app.user("lead@example.com").await;
        let org = body(
            owner
                .post(app.url("/v1/orgs"))
                .json(&json!({"name": "Studio"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let org_id = org["id"].as_str().unwrap().to_owned();
        let r = owner
            .post(app.url(&format!("/v1/orgs/{org_id}/invites")))
            .json(&json!({"email": "member@example.com", "role": "member"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let invite = app.link_token("member@example.com", "/invites/accept");
        let r = b
            .post(app.url("/v1/invites/accept"))
            .json(&json!({"token": invite}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        for path in [
            "/v1/credits",
            "/v1/credits/entries",
            "/v1/billing/orders",
            "/v1/billing/invoices",
        ] {
            let r = b
                .get(app.url(path))
                .header("x-pixeld-org", &org_id)
                .send()
                .await
                .unwrap();
            problem(r, 403, "forbidden").await;
        }
        let r = owner
            .get(app.url("/v1/credits"))
            .header("x-pixeld-org", &org_id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the owner sees it");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_template_thumbnail_does_not_make_the_same_render_free() {
    both(|app| async move {
        let b = app.user("thumbs@example.com").await;
        let token = app.token(&b, &["render", "billing:read"]).await;
        let id = template(&app, &token).await;
        let r = app
            .plain()
            .get(app.url(&format!("/v1/templates/{id}/thumbnail")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            balance(&app, &token).await["available"],
            100,
            "thumbnails are free"
        );
        // The thumbnail rendered the sample data ("Hello"); asking for that render is paid.
        let r = render(&app, &token, &id, "Hello").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-pixeld-cache"], "miss");
        assert_eq!(balance(&app, &token).await["available"], 99);
        app.stop().await;
    })
    .await;
}
