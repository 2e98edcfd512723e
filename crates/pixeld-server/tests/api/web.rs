//! The website and dashboard over HTTP: what a browser is sent and what its forms may do. The
//! journeys through the pages in a real browser are in `web/e2e`.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::Value;

use crate::support::{PASSWORD, TestApp, body, both, problem};

/// A client that shows redirects instead of following them.
fn no_redirects(origin: Option<&str>) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    if let Some(o) = origin {
        h.insert("origin", o.parse().unwrap());
    }
    reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .default_headers(h)
        .build()
        .unwrap()
}

async fn csrf_of(app: &TestApp, browser: &reqwest::Client) -> String {
    let s: Value = body(
        browser
            .get(app.url("/v1/auth/session"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    s["csrf_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn pages_allow_no_inline_script_and_no_framing() {
    both(|app| async move {
        for path in ["/", "/pricing", "/sign-in", "/sign-up", "/privacy"] {
            let r = app.plain().get(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let h = r.headers();
            assert!(h[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
            let csp = h["content-security-policy"].to_str().unwrap();
            let script_src = csp
                .split(';')
                .map(str::trim)
                .find(|d| d.starts_with("script-src"))
                .expect("a script-src directive");
            assert_eq!(script_src, "script-src 'self'", "{path}: {csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert_eq!(h["x-frame-options"], "DENY");
            assert_eq!(h["referrer-policy"], "same-origin");
            assert_eq!(h["x-content-type-options"], "nosniff");
            let html = r.text().await.unwrap();
            assert!(
                !html.contains("<script>") && !html.contains(" onclick="),
                "{path} has inline script"
            );
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn assets_are_cached_for_a_year_and_account_pages_never() {
    both(|app| async move {
        let css = app
            .plain()
            .get(app.url("/static/app.css"))
            .send()
            .await
            .unwrap();
        assert_eq!(css.status(), 200);
        assert!(
            css.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/css")
        );
        assert!(
            css.headers()[CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let missing = app
            .plain()
            .get(app.url("/static/nope.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let browser = app.user("ada@example.com").await;
        let page = browser
            .get(app.url("/account/tokens"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()[CACHE_CONTROL], "no-store");
        // The page links the assets under their current version, so a release is fetched anew.
        let html = page.text().await.unwrap();
        assert!(html.contains("/static/app.css?v="), "{html}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_signed_out_visitor_is_sent_to_sign_in_and_back_but_never_off_site() {
    both(|app| async move {
        let c = no_redirects(None);
        let r = c
            .get(app.url("/account/tokens?done=x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(
            r.headers()[LOCATION],
            "/sign-in?next=%2Faccount%2Ftokens%3Fdone%3Dx"
        );
        app.user("ada@example.com").await;
        for (next, expected) in [
            ("/account/privacy", "/account/privacy"),
            ("//evil.example/x", "/dashboard"),
            ("https://evil.example/", "/dashboard"),
            ("/\\evil.example", "/dashboard"),
        ] {
            let c = no_redirects(Some(&app.base));
            let r = c
                .post(app.url("/sign-in"))
                .form(&[
                    ("email", "ada@example.com"),
                    ("password", PASSWORD),
                    ("next", next),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303, "{next}");
            assert_eq!(r.headers()[LOCATION], expected, "{next}");
            let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
            assert!(cookie.starts_with("pixeld_session=") && cookie.contains("HttpOnly"));
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_the_reason() {
    both(|app| async move {
        app.user("ada@example.com").await;
        let r = no_redirects(Some(&app.base))
            .post(app.url("/sign-in"))
            .form(&[
                ("email", "ada@example.com"),
                ("password", "not the password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(!r.headers().contains_key(SET_COOKIE));
        assert!(
            r.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("role=\"alert\""), "{html}");
        assert!(html.contains("The credentials are not valid."), "{html}");
        // The address typed is kept, the password is not.
        assert!(html.contains("value=\"ada@example.com\""));
        assert!(!html.contains("not the password"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_cross_site_form_cannot_sign_anyone_in() {
    both(|app| async move {
        app.user("ada@example.com").await;
        let r = no_redirects(Some("https://evil.example"))
            .post(app.url("/sign-in"))
            .form(&[("email", "ada@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert!(!r.headers().contains_key(SET_COOKIE));
        problem(r, 403, "csrf").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_dashboard_form_without_the_csrf_token_changes_nothing() {
    both(|app| async move {
        let browser = app.user("ada@example.com").await;
        let form = [("name", "ci"), ("scopes", "render"), ("expiry", "30")];
        let r = browser
            .post(app.url("/account/tokens"))
            .form(&form)
            .send()
            .await
            .unwrap();
        problem(r, 403, "csrf").await;
        let tokens: Value = body(browser.get(app.url("/v1/tokens")).send().await.unwrap()).await;
        assert_eq!(tokens["items"].as_array().unwrap().len(), 0);

        // With the session's token the same form creates it, and shows the secret this once.
        let csrf = csrf_of(&app, &browser).await;
        let r = browser
            .post(app.url("/account/tokens"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("name", "ci"),
                ("scopes", "render"),
                ("scopes", "images:read"),
                ("expiry", "30"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("id=\"token-secret\">pxd_"), "{html}");
        let tokens: Value = body(browser.get(app.url("/v1/tokens")).send().await.unwrap()).await;
        let items = tokens["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0]["scopes"],
            serde_json::json!(["images:read", "render"])
        );
        assert!(items[0]["expires_at"].is_string());
        // The list page afterwards shows its prefix and never the secret.
        let list = browser
            .get(app.url("/account/tokens"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!list.contains("token-secret"));
        assert!(list.contains(items[0]["prefix"].as_str().unwrap()));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn sign_up_from_the_page_needs_the_age_confirmation_and_leaves_marketing_off() {
    both(|app| async move {
        let c = no_redirects(Some(&app.base));
        let r = c
            .post(app.url("/sign-up"))
            .form(&[("email", "kid@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let html = r.text().await.unwrap();
        assert!(html.contains("at least 16"), "{html}");
        assert!(app.mail_to("kid@example.com").is_empty());
        // The form as shown: age box required, marketing box not ticked.
        let form = c
            .get(app.url("/sign-up"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(form.contains("name=\"age_confirmed\" value=\"true\" required"));
        assert!(form.contains("name=\"marketing_emails\" value=\"true\">"));

        let r = c
            .post(app.url("/sign-up"))
            .form(&[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("age_confirmed", "true"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Check your inbox"));
        assert_eq!(app.mail_to("ada@example.com").len(), 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn consents_from_the_privacy_center_are_recorded_only_when_they_change() {
    both(|app| async move {
        let browser = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &browser).await;
        for _ in 0..2 {
            let r = browser
                .post(app.url("/account/privacy/consents"))
                .form(&[("csrf_token", csrf.as_str()), ("marketing_email", "true")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert!(r.text().await.unwrap().contains("Your choices are saved."));
        }
        let consents: Value = body(
            browser
                .get(app.url("/v1/account/consents"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let marketing: Vec<&Value> = consents["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["purpose"] == "marketing_email" && c["source"] == "settings")
            .collect();
        assert_eq!(marketing.len(), 1, "{consents}");
        assert_eq!(marketing[0]["granted"], true);
        app.stop().await;
    })
    .await;
}

fn photo() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// Uploads [`photo`] as the signed-in browser would; returns the image id.
async fn upload(app: &TestApp, browser: &reqwest::Client, csrf: &str) -> String {
    let up: Value = body(
        browser
            .post(app.url("/v1/images"))
            .header("x-csrf-token", csrf)
            .header(CONTENT_TYPE, "image/jpeg")
            .body(photo())
            .send()
            .await
            .unwrap(),
    )
    .await;
    up["id"].as_str().unwrap().to_string()
}

async fn available(app: &TestApp, browser: &reqwest::Client) -> i64 {
    let b: Value = body(browser.get(app.url("/v1/credits")).send().await.unwrap()).await;
    b["available"].as_i64().unwrap()
}

#[tokio::test]
async fn the_plain_upload_form_stores_each_file_or_says_why_not() {
    both(|app| async move {
        let browser = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &browser).await;
        let form = || {
            reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(photo()).file_name("one.jpg"),
                )
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(b"not an image".to_vec())
                        .file_name("notes.txt"),
                )
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(photo()).file_name("two.jpg"),
                )
        };
        // Without the token in the action URL the form is refused and nothing is stored.
        let r = browser
            .post(app.url("/images"))
            .multipart(form())
            .send()
            .await
            .unwrap();
        problem(r, 403, "csrf").await;
        let before = available(&app, &browser).await;
        let r = browser
            .post(app.url(&format!("/images?csrf_token={csrf}")))
            .multipart(form())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("2 uploaded."), "{html}");
        assert!(html.contains("<strong>notes.txt</strong>"), "{html}");
        let list: Value = body(browser.get(app.url("/v1/images")).send().await.unwrap()).await;
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        // Two analyses charged; the refused file cost nothing.
        assert_eq!(available(&app, &browser).await, before - 2);

        // The list's thumbnails are free, and an upload is never served as a document.
        let id = items[0]["id"].as_str().unwrap();
        let thumb = browser
            .get(app.url(&format!("/images/{id}/thumbnail")))
            .send()
            .await
            .unwrap();
        assert_eq!(thumb.status(), 200);
        assert_eq!(thumb.headers()[CONTENT_TYPE], "image/webp");
        let original = browser
            .get(app.url(&format!("/images/{id}/original")))
            .send()
            .await
            .unwrap();
        assert_eq!(original.headers()[CONTENT_TYPE], "image/jpeg");
        assert!(
            original.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );
        assert_eq!(original.bytes().await.unwrap().len(), photo().len());
        assert_eq!(available(&app, &browser).await, before - 2);

        // Another organisation's visitor sees nothing of it.
        let eve = app.user("eve@example.com").await;
        let r = eve
            .get(app.url(&format!("/images/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert!(r.text().await.unwrap().contains("Image not found"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn optimizing_from_the_image_page_shows_the_savings_and_bad_options_cost_nothing() {
    both(|app| async move {
        let browser = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &browser).await;
        let id = upload(&app, &browser, &csrf).await;
        let id = id.as_str();
        let before = available(&app, &browser).await;
        let r = browser
            .post(app.url(&format!("/images/{id}/optimize")))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("q", "150"),
                ("format", "webp"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("role=\"alert\""));
        assert_eq!(available(&app, &browser).await, before);

        let r = browser
            .post(app.url(&format!("/images/{id}/optimize")))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("w", "320"),
                ("fit", "inside"),
                ("format", "webp"),
                ("q", "70"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("smaller</p>"), "{html}");
        assert!(html.contains("320 × 240"), "{html}");
        let src = format!("/v1/images/{id}/content?w=320&#38;fit=inside&#38;format=webp&#38;q=70");
        assert!(html.contains(&src), "{html}");
        assert_eq!(available(&app, &browser).await, before - 1);
        // The page's image is that same output, from the cache: no second charge.
        let out = browser
            .get(app.url(&src.replace("&#38;", "&")))
            .send()
            .await
            .unwrap();
        assert_eq!(out.headers()["x-pixeld-cache"], "hit");
        assert_eq!(available(&app, &browser).await, before - 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn usage_and_billing_pages_account_for_every_credit_spent_from_the_dashboard() {
    both(|app| async move {
        let browser = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &browser).await;
        let id = upload(&app, &browser, &csrf).await;
        let id = id.as_str();
        let r = browser
            .post(app.url(&format!("/images/{id}/optimize")))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("w", "100"),
                ("format", "png"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // The page view itself is not API use and cost nothing: it is not logged.
        browser.get(app.url("/images")).send().await.unwrap();
        app.app.flush_usage().await.unwrap();
        let log: Value = body(browser.get(app.url("/v1/usage")).send().await.unwrap()).await;
        let rows = log["items"].as_array().unwrap();
        let spent: i64 = rows.iter().map(|r| r["credits"].as_i64().unwrap()).sum();
        assert_eq!(spent, 2, "{log}");
        assert!(
            rows.iter()
                .any(|r| r["route"] == "/images/{id}/optimize" && r["credits"] == 1)
        );
        assert!(!rows.iter().any(|r| r["route"] == "/images"));

        let page = browser
            .get(app.url("/usage?status=4"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("No requests match."), "{page}");
        let bad = browser
            .get(app.url("/usage?status=9&since=yesterday"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(bad.contains("Status must be 2xx"), "{bad}");

        // No payment provider here: the page says so, and a checkout posted anyway is refused
        // with the reason and opens no order.
        let billing = browser
            .get(app.url("/billing"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(billing.contains("Payments are not set up"), "{billing}");
        assert!(billing.contains(">98</p>"), "{billing}");
        let r = browser
            .post(app.url("/billing/checkout"))
            .form(&[("csrf_token", csrf.as_str()), ("pack", "credits-1000")])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error() || r.status().is_server_error());
        assert!(r.text().await.unwrap().contains("role=\"alert\""));
        let orders: Value = body(
            browser
                .get(app.url("/v1/billing/orders"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(orders["items"].as_array().unwrap().len(), 0);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_template_editor_previews_drafts_saves_versions_and_restores_old_ones() {
    both(|app| async move {
        let browser = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &browser).await;
        let created = browser
            .post(app.url("/templates"))
            .form(&[("csrf_token", csrf.as_str()), ("name", "Card")])
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200);
        let editor_url = created.url().clone();
        let id = editor_url
            .path()
            .trim_start_matches("/templates/")
            .to_string();
        let html = created.text().await.unwrap();
        assert!(
            html.contains("id=\"preview\" src=\"data:image/webp;base64,"),
            "{html}"
        );
        let before = available(&app, &browser).await;

        // htmx asks for the preview box alone; a draft that does not parse says why and costs
        // nothing.
        let fragment = |body: String, data: &'static str| {
            browser
                .post(app.url(&format!("/templates/{id}/preview")))
                .header("hx-request", "true")
                .header("x-csrf-token", &csrf)
                .form(&[("body", body.as_str()), ("data", data)])
                .send()
        };
        let bad = fragment("{\"layers\": [".into(), "{}").await.unwrap();
        assert_eq!(bad.status(), 200);
        let text = bad.text().await.unwrap();
        assert!(text.starts_with("<div id=\"preview-box\""), "{text}");
        assert!(
            text.contains("role=\"alert\"") && text.contains("is not JSON"),
            "{text}"
        );
        assert!(!text.contains("<html"));
        assert_eq!(available(&app, &browser).await, before);

        let v1: Value = body(
            browser
                .get(app.url(&format!("/v1/templates/{id}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let template = v1["template"].to_string();
        let ok = fragment(template.clone(), "{\"title\": \"Draft one\"}")
            .await
            .unwrap();
        let text = ok.text().await.unwrap();
        assert!(text.contains("data:image/webp;base64,"), "{text}");
        assert_eq!(available(&app, &browser).await, before - 1);
        // The same draft again is the cached render: free.
        let again = fragment(template.clone(), "{\"title\": \"Draft one\"}")
            .await
            .unwrap();
        assert!(again.text().await.unwrap().contains("data-cached=\"true\""));
        assert_eq!(available(&app, &browser).await, before - 1);

        // Save from a stale base version is refused and loses nothing typed.
        let stale = browser
            .post(app.url(&format!("/templates/{id}/save")))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("name", "Card"),
                ("base_version", "0"),
                ("body", template.as_str()),
                ("data", "{}"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 409);
        let saved = browser
            .post(app.url(&format!("/templates/{id}/save")))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("name", "Card v2"),
                ("base_version", "1"),
                ("body", template.as_str()),
                ("data", "{}"),
            ])
            .send()
            .await
            .unwrap();
        assert!(
            saved
                .text()
                .await
                .unwrap()
                .contains("Saved as a new version.")
        );
        let restored = browser
            .post(app.url(&format!("/templates/{id}/restore")))
            .form(&[("csrf_token", csrf.as_str()), ("version", "1")])
            .send()
            .await
            .unwrap();
        assert!(restored.text().await.unwrap().contains("Restored"));
        let latest: Value = body(
            browser
                .get(app.url(&format!("/v1/templates/{id}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(latest["version"], 3);
        assert_eq!(latest["name"], "Card v2");
        assert_eq!(latest["template"], v1["template"]);
        app.stop().await;
    })
    .await;
}
