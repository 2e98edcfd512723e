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

/// The organisation the header says the page acts in.
fn org_chip(html: &str) -> String {
    let start = html
        .find("class=\"org-chip\"")
        .expect("an organisation chip");
    let rest = &html[start..];
    let text = &rest[rest.find('>').unwrap() + 1..rest.find("</a>").unwrap()];
    text.replace(
        "<span class=\"visually-hidden\">Acting in organisation </span>",
        "",
    )
    .replace("<span class=\"visually-hidden\">; switch</span>", "")
}

async fn page_text(browser: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let r = browser.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn templates_in(app: &TestApp, browser: &reqwest::Client, org: Option<&str>) -> Vec<String> {
    let mut req = browser.get(app.url("/v1/templates"));
    if let Some(o) = org {
        req = req.header("x-pixeld-org", o);
    }
    let v: Value = body(req.send().await.unwrap()).await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_org_switcher_makes_every_page_act_in_the_chosen_organisation() {
    both(|app| async move {
        let browser = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &browser).await;
        let (_, before) = page_text(&browser, &app, "/dashboard").await;
        let personal = org_chip(&before);
        assert!(!personal.contains("Acme"), "{personal}");

        // Creating an organisation from the page switches to it, with a cookie the privacy
        // page lists.
        let c = no_redirects(Some(&app.url("")));
        let signed_in = c
            .post(app.url("/v1/auth/signin"))
            .json(&serde_json::json!({"email": "ada@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), 200);
        let csrf_c = csrf_of(&app, &c).await;
        let created = c
            .post(app.url("/orgs"))
            .form(&[("csrf_token", csrf_c.as_str()), ("name", "  ")])
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 422);
        assert!(created.text().await.unwrap().contains("role=\"alert\""));
        let created = c
            .post(app.url("/orgs"))
            .form(&[("csrf_token", csrf_c.as_str()), ("name", "Acme Studio")])
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 303);
        assert_eq!(created.headers()[LOCATION], "/org?done=created");
        let cookie = created.headers()[SET_COOKIE].to_str().unwrap().to_string();
        assert!(
            cookie.starts_with("pixeld_org=") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
        let acme = cookie["pixeld_org=".len()..cookie.find(';').unwrap()].to_string();
        let (_, org_page) = page_text(&c, &app, "/org?done=created").await;
        assert_eq!(org_chip(&org_page), "Acme Studio");
        assert!(org_page.contains("Your role here: <strong>owner</strong>"));
        let (_, privacy) = page_text(&c, &app, "/privacy").await;
        assert!(privacy.contains("data-cookie=\"pixeld_org\""));

        // A template made on the templates page now belongs to Acme, not to the personal org.
        let made = c
            .post(app.url("/templates"))
            .form(&[("csrf_token", csrf_c.as_str()), ("name", "Acme card")])
            .send()
            .await
            .unwrap();
        assert_eq!(made.status(), 303);
        assert_eq!(
            templates_in(&app, &c, Some(&acme)).await,
            vec!["Acme card".to_string()]
        );
        assert!(templates_in(&app, &c, None).await.is_empty());

        // The other browser of the same person still acts in the personal organisation.
        let (_, other) = page_text(&browser, &app, "/templates").await;
        assert_eq!(org_chip(&other), personal);
        assert!(!other.contains("Acme card"));

        // Switching to an organisation one is not in changes nothing.
        let bogus = c
            .post(app.url("/orgs/switch"))
            .form(&[
                ("csrf_token", csrf_c.as_str()),
                ("org", "0190a0a0-0000-7000-8000-000000000000"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(bogus.status(), 404);
        assert!(bogus.headers().get(SET_COOKIE).is_none());

        // Back to the personal organisation: the cookie is removed.
        let personal_id: Value = body(browser.get(app.url("/v1/me")).send().await.unwrap()).await;
        let personal_id = personal_id["org"]["id"].as_str().unwrap().to_string();
        let back = c
            .post(app.url("/orgs/switch"))
            .form(&[
                ("csrf_token", csrf_c.as_str()),
                ("org", personal_id.as_str()),
                ("next", "/templates"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(back.status(), 303);
        assert_eq!(back.headers()[LOCATION], "/templates");
        assert!(
            back.headers()[SET_COOKIE]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let (_, list) = page_text(&c, &app, "/templates").await;
        assert_eq!(org_chip(&list), personal);
        assert!(!list.contains("Acme card"));
        let _ = csrf;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn members_are_invited_re_roled_and_removed_from_the_organisation_page() {
    both(|app| async move {
        let ada = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &ada).await;
        let r = ada
            .post(app.url("/orgs"))
            .form(&[("csrf_token", csrf.as_str()), ("name", "Acme")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let bad = ada
            .post(app.url("/org/invites"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", "not an address"),
                ("role", "viewer"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422);
        let text = bad.text().await.unwrap();
        assert!(text.contains("role=\"alert\""), "{text}");
        // What was typed is still there.
        assert!(text.contains("value=\"not an address\""), "{text}");
        let sent = ada
            .post(app.url("/org/invites"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", "bob@example.com"),
                ("role", "viewer"),
            ])
            .send()
            .await
            .unwrap();
        assert!(sent.url().as_str().ends_with("/org?done=invited"));
        let text = sent.text().await.unwrap();
        assert!(text.contains("Invitation sent"));
        assert!(
            text.contains("<td>bob@example.com</td><td>viewer</td>"),
            "{text}"
        );

        // Bob opens the emailed link: the page says what joining means, and opening it twice
        // spends nothing.
        let bob = app.user("bob@example.com").await;
        let bob_csrf = csrf_of(&app, &bob).await;
        let token = app.link_token("bob@example.com", "/invites/accept");
        for _ in 0..2 {
            let (status, html) =
                page_text(&bob, &app, &format!("/invites/accept?token={token}")).await;
            assert_eq!(status, 200);
            assert!(html.contains("Join Acme"), "{html}");
            assert!(html.contains("as <strong>viewer</strong>"), "{html}");
        }
        // Carol, signed in, cannot use Bob's link.
        let carol = app.user("carol@example.com").await;
        let (_, html) = page_text(&carol, &app, &format!("/invites/accept?token={token}")).await;
        assert!(html.contains("This invitation is for <strong>bob@example.com</strong>"));
        let joined = bob
            .post(app.url("/invites/accept"))
            .form(&[("csrf_token", bob_csrf.as_str()), ("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert!(joined.url().as_str().ends_with("/org?done=joined"));
        let html = joined.text().await.unwrap();
        assert_eq!(org_chip(&html), "Acme");
        assert!(html.contains("Your role here: <strong>viewer</strong>"));
        // A viewer sees the members but not the invitation form.
        assert!(!html.contains("Send invitation"));
        assert!(html.contains("ada@example.com"));
        // The link is spent.
        let (status, html) = page_text(&bob, &app, &format!("/invites/accept?token={token}")).await;
        assert_eq!(status, 404);
        assert!(html.contains("no longer works"));
        // A viewer's forged form is refused by the same rules as the API.
        let forged = bob
            .post(app.url("/org/invites"))
            .form(&[
                ("csrf_token", bob_csrf.as_str()),
                ("email", "eve@example.com"),
                ("role", "owner"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403);
        assert!(app.mail_to("eve@example.com").is_empty());

        // Ada makes Bob a member, then removes him; Bob falls back to his personal org.
        let (_, html) = page_text(&ada, &app, "/org").await;
        let bob_id = user_id(&app, "bob@example.com").await;
        assert!(html.contains(&format!("action=\"/org/members/{bob_id}/role\"")));
        let changed = ada
            .post(app.url(&format!("/org/members/{bob_id}/role")))
            .form(&[("csrf_token", csrf.as_str()), ("role", "member")])
            .send()
            .await
            .unwrap();
        assert!(changed.text().await.unwrap().contains("Role changed."));
        let (_, html) = page_text(&bob, &app, "/org").await;
        assert!(html.contains("Your role here: <strong>member</strong>"));
        let removed = ada
            .post(app.url(&format!("/org/members/{bob_id}/remove")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert!(removed.text().await.unwrap().contains("Member removed"));
        let (_, html) = page_text(&bob, &app, "/org").await;
        assert_ne!(org_chip(&html), "Acme");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn keys_and_webhook_secrets_rotate_from_the_page_and_the_last_secret_stays() {
    both(|app| async move {
        let ada = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &ada).await;
        let keys = |b: &reqwest::Client, path: &'static str| {
            let req = b.get(app.url(path));
            async move {
                let v: Value = body(req.send().await.unwrap()).await;
                v.as_array().unwrap().clone()
            }
        };
        for (form, done, list) in [
            (
                "/org/signing-keys",
                "Signing key created",
                "/v1/signing-keys",
            ),
            (
                "/org/webhook-secrets",
                "Webhook secret created",
                "/v1/webhook-secrets",
            ),
        ] {
            for _ in 0..2 {
                let r = ada
                    .post(app.url(form))
                    .form(&[("csrf_token", csrf.as_str())])
                    .send()
                    .await
                    .unwrap();
                let html = r.text().await.unwrap();
                assert!(html.contains(done), "{html}");
            }
            let live = keys(&ada, list).await;
            assert_eq!(live.len(), 2);
            let (_, html) = page_text(&ada, &app, "/org/keys").await;
            for k in &live {
                assert!(html.contains(k["secret"].as_str().unwrap()));
            }
        }
        // Revoke the older webhook secret: fine. The last live one: refused, with the reason.
        let secrets = keys(&ada, "/v1/webhook-secrets").await;
        let (newer, older) = (
            secrets[0]["id"].as_str().unwrap().to_string(),
            secrets[1]["id"].as_str().unwrap().to_string(),
        );
        let r = ada
            .post(app.url(&format!("/org/webhook-secrets/{older}/revoke")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("Webhook secret revoked."));
        let r = ada
            .post(app.url(&format!("/org/webhook-secrets/{newer}/revoke")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        assert!(r.text().await.unwrap().contains("role=\"alert\""));
        let live: Vec<_> = keys(&ada, "/v1/webhook-secrets")
            .await
            .into_iter()
            .filter(|k| k["revoked_at"].is_null())
            .collect();
        assert_eq!(live.len(), 1);
        // A signing key revoked from the page no longer signs.
        let key = keys(&ada, "/v1/signing-keys").await[1]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = ada
            .post(app.url(&format!("/org/signing-keys/{key}/revoke")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("answer 403 from now on"));
        let after = keys(&ada, "/v1/signing-keys").await;
        assert!(
            after
                .iter()
                .any(|k| k["id"] == key.as_str() && !k["revoked_at"].is_null())
        );
        app.stop().await;
    })
    .await;
}

async fn user_id(app: &TestApp, email: &str) -> String {
    let u = app.app.store.user_by_email(email).await.unwrap().unwrap();
    u.id.to_string()
}

#[tokio::test]
async fn operator_pages_exist_only_for_operators_and_show_health_and_requests() {
    both(|app| async move {
        let ada = app.user("ada@example.com").await;
        for path in ["/admin", "/admin/users"] {
            let (status, html) = page_text(&ada, &app, path).await;
            assert_eq!(status, 404, "{path}");
            assert!(!html.contains("System health"));
        }
        let (_, dash) = page_text(&ada, &app, "/dashboard").await;
        assert!(!dash.contains("href=\"/admin\""));

        let op = app.operator("op@example.com").await;
        let (_, dash) = page_text(&op, &app, "/dashboard").await;
        assert!(
            dash.contains("href=\"/admin\""),
            "the operator sees the entry"
        );
        // Ada asks to be forgotten: the request is open on the operator's page.
        let csrf = csrf_of(&app, &ada).await;
        let r = ada
            .post(app.url("/account/delete"))
            .form(&[("csrf_token", csrf.as_str()), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let (status, html) = page_text(&op, &app, "/admin").await;
        assert_eq!(status, 200);
        assert!(html.contains("System health"));
        assert!(html.contains(&format!("{} answers", app.app.store.backend())));
        // Two accounts, one of them disabled by its pending deletion.
        assert!(
            html.contains("<p class=\"big\">2</p><p class=\"muted\">1 disabled</p>"),
            "{html}"
        );
        let ada_id = user_id(&app, "ada@example.com").await;
        assert!(
            html.contains(&format!(
                "<a href=\"/admin/users/{ada_id}\">ada@example.com</a></td><td>erasure</td>"
            )),
            "{html}"
        );
        // The operator's own API use shows in the latency table.
        assert!(html.contains("API latency, last 7 days"));

        // The account pending deletion cannot be re-enabled behind its owner's back.
        let op_csrf = csrf_of(&app, &op).await;
        let r = op
            .post(app.url(&format!("/admin/users/{ada_id}/enable")))
            .form(&[("csrf_token", op_csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("only its owner can cancel")
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_operator_corrects_a_balance_once_however_often_the_form_is_sent() {
    both(|app| async move {
        let bob = app.user("bob@example.com").await;
        let op = app.operator("op@example.com").await;
        let csrf = csrf_of(&app, &op).await;
        let bob_id = user_id(&app, "bob@example.com").await;
        let before = available(&app, &bob).await;
        let (status, html) = page_text(&op, &app, &format!("/admin/users/{bob_id}")).await;
        assert_eq!(status, 200);
        assert!(
            html.contains(&format!("<strong id=\"balance\">{before}</strong>")),
            "{html}"
        );
        let key_at = html.find("name=\"key\" value=\"").unwrap() + "name=\"key\" value=\"".len();
        let key = html[key_at..key_at + 36].to_string();
        let send = |amount: &'static str, kind: &'static str, reason: &'static str| {
            op.post(app.url(&format!("/admin/users/{bob_id}/credits")))
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("key", key.as_str()),
                    ("amount", amount),
                    ("kind", kind),
                    ("reason", reason),
                ])
                .send()
        };
        // No reason, or not a number: refused, nothing applied, the form keeps what was typed.
        let r = send("25", "promo", "").await.unwrap();
        assert_eq!(r.status(), 422);
        let text = r.text().await.unwrap();
        assert!(text.contains("role=\"alert\""));
        assert!(text.contains("value=\"25\""));
        let r = send("lots", "promo", "launch").await.unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(available(&app, &bob).await, before);
        // Applied once, however often it is sent.
        let r = send("25", "promo", "launch week").await.unwrap();
        assert!(r.text().await.unwrap().contains("Credits changed"));
        let r = send("25", "promo", "launch week").await.unwrap();
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("nothing was applied twice")
        );
        assert_eq!(available(&app, &bob).await, before + 25);
        // The user sees who and why in their transactions.
        let entries: Value = body(
            bob.get(app.url("/v1/credits/entries?kind=grant"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(
            entries["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["reason"] == "launch week" && e["amount"] == 25),
            "{entries}"
        );

        // Disabled: Bob's session ends at once. Enabled again: he can sign in.
        let r = op
            .post(app.url(&format!("/admin/users/{bob_id}/disable")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("Account disabled"));
        let r = bob.get(app.url("/v1/me")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = op
            .post(app.url(&format!("/admin/users/{bob_id}/enable")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("Account enabled."));
        let again = app.browser();
        let r = again
            .post(app.url("/v1/auth/signin"))
            .json(&serde_json::json!({"email": "bob@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // Deleting at once needs the address typed out.
        let r = op
            .post(app.url(&format!("/admin/users/{bob_id}/delete")))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("reason", "reported as a child's account"),
                ("confirm", "someone@example.com"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert!(
            app.app
                .store
                .user_by_email("bob@example.com")
                .await
                .unwrap()
                .is_some()
        );
        let r = op
            .post(app.url(&format!("/admin/users/{bob_id}/delete")))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("reason", "reported as a child's account"),
                ("confirm", "bob@example.com"),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("The account was deleted."));
        let (_, html) = page_text(&op, &app, "/admin/users?email=bob@example.com").await;
        assert!(html.contains("No account found."));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_landing_demo_renders_the_visitors_words_free_and_within_limits() {
    crate::support::both_with(
        |c| c.rate_limit.demo_per_minute = 2,
        |app| async move {
            let c = app.plain();
            let get = |title: &str| {
                let url = format!(
                    "{}?{}",
                    app.url("/demo.webp"),
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("title", title)
                        .append_pair("subtitle", "example.org")
                        .finish()
                );
                c.get(url).send()
            };
            let r = get("Hello from the demo").await.unwrap();
            assert_eq!(r.status(), 200, "{:?}", r.text().await);
            assert_eq!(r.headers()[CONTENT_TYPE], "image/webp");
            let first = r.bytes().await.unwrap();
            let img = image::load_from_memory(&first).unwrap();
            assert_eq!((img.width(), img.height()), (1200, 630));
            // Other words, another image; the same words, the same bytes (from the cache, which
            // the rate limit does not count).
            let other = get("Another headline")
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_ne!(first, other);
            for _ in 0..3 {
                let again = get("Hello from the demo").await.unwrap();
                assert_eq!(again.status(), 200);
                assert_eq!(again.bytes().await.unwrap(), first);
            }
            // New words beyond the limit wait.
            let r = get("A third headline").await.unwrap();
            assert_eq!(r.status(), 429);
            assert!(r.headers().contains_key("retry-after"));
            // Too long: a clear problem, not a render.
            problem(get(&"x".repeat(101)).await.unwrap(), 422, "validation").await;

            // The landing page shows the typed words rendered, and says why when it cannot.
            let html = c
                .get(app.url("/?title=Typed+here&subtitle=mine.example"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(html.contains("value=\"Typed here\""), "{html}");
            assert!(
                html.contains("src=\"/demo.webp?title=Typed+here&#38;subtitle=mine.example\""),
                "{html}"
            );
            let r = c
                .get(app.url(&format!("/?title={}", "x".repeat(101))))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 422);
            assert!(r.text().await.unwrap().contains("at most 100 characters"));
            app.stop().await;
        },
    )
    .await;
}

/// Creates a template from the templates page; its id and the editor page it opens on.
async fn new_template(app: &TestApp, browser: &reqwest::Client, csrf: &str) -> (String, String) {
    let created = browser
        .post(app.url("/templates"))
        .form(&[("csrf_token", csrf), ("name", "Card")])
        .send()
        .await
        .unwrap();
    let id = created
        .url()
        .path()
        .trim_start_matches("/templates/")
        .to_string();
    (id, created.text().await.unwrap())
}

/// The JSON in the editor's template box, as the browser would read it.
fn editor_body(html: &str) -> Value {
    let start = html.find("name=\"body\"").expect("the template box");
    let rest = &html[start..];
    let text = &rest[rest.find('>').unwrap() + 1..rest.find("</textarea>").unwrap()];
    let text = text
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&");
    serde_json::from_str(&text).unwrap()
}

fn layer<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn the_properties_panel_edits_a_layer_of_the_draft_without_saving_it() {
    both(|app| async move {
        let browser = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &browser).await;
        let (id, html) = new_template(&app, &browser, &csrf).await;
        assert!(html.contains("Choose a layer"));
        let body = editor_body(&html);
        let draft = body.to_string();

        // Choosing a layer (htmx) answers its panel from the draft, not from the saved version.
        let fragment = browser
            .post(app.url(&format!("/templates/{id}/props")))
            .header("hx-request", "true")
            .header("x-csrf-token", &csrf)
            .form(&[("body", draft.as_str()), ("select", "title")])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(fragment.starts_with("<fieldset id=\"props\""), "{fragment}");
        assert!(fragment.contains("data-layer=\"title\""));
        assert!(
            fragment.contains("name=\"prop:size\" value=\"80\""),
            "{fragment}"
        );
        // Nested values are named and left to the JSON.
        assert!(fragment.contains("<code>font</code>"), "{fragment}");

        // Without JavaScript, "Apply" rewrites the draft: numbers stay numbers, a blank value
        // falls back to the default. Nothing is saved.
        let applied = browser
            .post(app.url(&format!("/templates/{id}/apply")))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("body", draft.as_str()),
                ("data", "{\"title\": \"Applied\"}"),
                ("layer", "title"),
                ("prop:size", "40"),
                ("prop:color", "#ff0000"),
                ("prop:min_size", ""),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(applied.status(), 200);
        let html = applied.text().await.unwrap();
        assert!(html.contains("Applied to the draft"));
        assert!(html.contains("aria-current=\"true\"><span class=\"tag\">text</span> title"));
        let new = editor_body(&html);
        let title = layer(&new, "title");
        assert_eq!(title["size"], 40);
        assert_eq!(title["color"], "#ff0000");
        assert!(title.get("min_size").is_none(), "{title}");
        assert_eq!(layer(&new, "subtitle"), layer(&body, "subtitle"));
        assert!(html.contains("id=\"preview\" src=\"data:image/webp;base64,"));
        let saved: Value = body_of(&browser, &app, &format!("/v1/templates/{id}")).await;
        assert_eq!(saved["latest_version"], 1);
        assert_eq!(
            layer(&saved["template"], "title")["size"].as_f64(),
            Some(80.0)
        );

        // Not a number: the reason, and the draft as it was.
        let bad = browser
            .post(app.url(&format!("/templates/{id}/apply")))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("body", draft.as_str()),
                ("layer", "title"),
                ("prop:size", "big"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422);
        let html = bad.text().await.unwrap();
        assert!(html.contains("Size must be a number."), "{html}");
        assert_eq!(
            layer(&editor_body(&html), "title")["size"].as_f64(),
            Some(80.0)
        );
        app.stop().await;
    })
    .await;
}

async fn body_of(browser: &reqwest::Client, app: &TestApp, path: &str) -> Value {
    body(browser.get(app.url(path)).send().await.unwrap()).await
}

#[tokio::test]
async fn a_csv_batch_renders_every_row_in_the_background_and_zips_them() {
    crate::support::both_with(
        |c| c.jobs.poll_ms = 20,
        |app| async move {
            let browser = app.user("ada@example.com").await;
            let csrf = csrf_of(&app, &browser).await;
            let (id, html) = new_template(&app, &browser, &csrf).await;
            assert!(html.contains("Batch render from a CSV"));
            let before = available(&app, &browser).await;
            let send = |csv: &'static str, name: &'static str| {
                let form = reqwest::multipart::Form::new()
                    .part(
                        "file",
                        reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
                            .file_name("rows.csv")
                            .mime_str("text/csv")
                            .unwrap(),
                    )
                    .text("name", name)
                    .text("format", "png");
                browser
                    .post(app.url(&format!("/templates/{id}/batch?csrf_token={csrf}")))
                    .multipart(form)
                    .send()
            };

            // A row the template cannot take: nothing is queued, nothing is charged.
            let r = send("subtitle\nonly.example\n", "{{row}}").await.unwrap();
            assert_eq!(r.status(), 422);
            let text = r.text().await.unwrap();
            assert!(text.contains("Row 1") && text.contains("title"), "{text}");
            assert_eq!(available(&app, &browser).await, before);

            let r = send(
                "title,subtitle\nFirst card,one.example\nSecond/card,two.example\nFirst card,three.example\n",
                "{{title}}",
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 200);
            let progress = r.url().path().to_string();
            assert!(progress.starts_with(&format!("/templates/{id}/batches/")));
            let html = loop {
                let (status, html) = page_text(&browser, &app, &progress).await;
                assert_eq!(status, 200);
                if html.contains("Done.") {
                    break html;
                }
                assert!(html.contains("hx-trigger=\"every 1s\""), "polls until done");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            };
            assert!(!html.contains("hx-trigger"), "stops polling when done");
            assert!(html.contains("3 of 3 rendered"), "{html}");
            assert_eq!(available(&app, &browser).await, before - 3);

            let zip = browser
                .get(app.url(&format!("{progress}/images.zip")))
                .send()
                .await
                .unwrap();
            assert_eq!(zip.status(), 200);
            assert_eq!(zip.headers()[CONTENT_TYPE], "application/zip");
            let bytes = zip.bytes().await.unwrap();
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
            let mut names: Vec<String> = archive
                .file_names()
                .map(|n| n.unwrap().to_string())
                .collect();
            names.sort();
            // Unsafe characters replaced, a repeated name numbered.
            assert_eq!(
                names,
                vec!["First card-2.png", "First card.png", "Second-card.png"]
            );
            let mut png = Vec::new();
            std::io::Read::read_to_end(&mut archive.by_name("Second-card.png").unwrap(), &mut png)
                .unwrap();
            let img = image::load_from_memory(&png).unwrap();
            assert_eq!((img.width(), img.height()), (1200, 630));

            // Another account cannot see the batch.
            let other = app.user("eve@example.com").await;
            let (status, _) = page_text(&other, &app, &progress).await;
            assert_eq!(status, 404);
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn reloading_the_created_token_page_does_not_create_a_second_token() {
    both(|app| async move {
        let browser = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &browser).await;
        let (_, html) = page_text(&browser, &app, "/account/tokens").await;
        let at = html.find("name=\"nonce\" value=\"").unwrap() + "name=\"nonce\" value=\"".len();
        let nonce = html[at..at + 36].to_string();
        let send = |name: &'static str| {
            browser
                .post(app.url("/account/tokens"))
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("nonce", nonce.as_str()),
                    ("name", name),
                    ("scopes", "render"),
                    ("expiry", "30"),
                ])
                .send()
        };
        // A refused form keeps its nonce, and the corrected one still creates.
        let bad = send("").await.unwrap();
        assert_eq!(bad.status(), 422);
        assert!(bad.text().await.unwrap().contains(&nonce));
        let first = send("ci").await.unwrap().text().await.unwrap();
        assert!(first.contains("id=\"token-secret\""), "{first}");
        // The browser sends the same form again (reload, double click): no second token, and
        // no secret on the page.
        let again = send("ci").await.unwrap().text().await.unwrap();
        assert!(!again.contains("id=\"token-secret\""));
        assert!(again.contains("created already"), "{again}");
        let tokens: Value = body(browser.get(app.url("/v1/tokens")).send().await.unwrap()).await;
        let live: Vec<_> = tokens["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"] == "ci")
            .collect();
        assert_eq!(live.len(), 1);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_mistyped_address_is_a_page_for_browsers_and_problem_json_for_the_api() {
    both(|app| async move {
        let r = app
            .plain()
            .get(app.url("/no-such-page"))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert!(
            r.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(r.headers().contains_key("content-security-policy"));
        let html = r.text().await.unwrap();
        assert!(
            html.contains("<title>Page not found · pixeld</title>"),
            "{html}"
        );
        assert!(html.contains("href=\"/dashboard\""));
        // The API (and anything that does not ask for HTML) still gets problem+json.
        problem(
            app.plain()
                .get(app.url("/v1/no-such-route"))
                .header("accept", "text/html")
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
        )
        .await;
        problem(
            app.plain()
                .get(app.url("/no-such-page"))
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
        )
        .await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn support_from_the_pages_a_user_writes_an_operator_answers_and_markup_stays_text() {
    both(|app| async move {
        let browser = app.user("ada@example.com").await;
        let csrf = csrf_of(&app, &browser).await;
        // A bad form comes back with the reason and what was typed.
        let r = browser
            .post(app.url("/support"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("subject", " "),
                ("category", "billing"),
                ("body", "kept"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let html = r.text().await.unwrap();
        assert!(html.contains("role=\"alert\""), "{html}");
        assert!(html.contains(">kept</textarea>"));
        let r = browser
            .post(app.url("/support"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("subject", "Broken <b>card</b>"),
                ("category", "technical"),
                ("body", "Line one\r\n<script>alert(1)</script>"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "followed to the thread");
        let at = r.url().path().to_owned();
        assert!(at.starts_with("/support/"), "{at}");
        let id = at.trim_start_matches("/support/").to_owned();
        let html = r.text().await.unwrap();
        assert!(html.contains("The operators are told by email"));
        assert!(
            html.contains("Broken &#60;b&#62;card&#60;/b&#62;")
                || html.contains("Broken &lt;b&gt;card&lt;/b&gt;"),
            "{html}"
        );
        assert!(
            !html.contains("<script>alert(1)</script>"),
            "markup in a message is text"
        );
        let list = browser
            .get(app.url("/support"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(list.contains(&format!("href=\"/support/{id}\"")));

        // Not an operator: the queue is not there.
        let r = browser.get(app.url("/admin/support")).send().await.unwrap();
        assert_eq!(r.status(), 404);

        let ops = app.operator("ops@example.com").await;
        let ops_csrf = csrf_of(&app, &ops).await;
        let queue = ops
            .get(app.url("/admin/support"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            queue.contains(&format!("href=\"/admin/support/{id}\"")),
            "{queue}"
        );
        assert!(queue.contains("ada@example.com"));
        let r = ops
            .post(app.url(&format!("/admin/support/{id}/reply")))
            .form(&[("csrf_token", ops_csrf.as_str()), ("body", "Fixed in 1.2.")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Answer sent"));
        let queue = ops
            .get(app.url("/admin/support"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            queue.contains("Nothing here."),
            "answered requests leave the default queue"
        );

        // The user reads the answer and closes the request.
        let html = browser
            .get(app.url(&at))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("pixeld team") && html.contains("Fixed in 1.2."));
        let r = browser
            .post(app.url(&format!("/support/{id}/close")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Closed. Writing again opens it again.")
        );
        // Without the CSRF token nothing is sent.
        let r = browser
            .post(app.url(&format!("/support/{id}/reply")))
            .form(&[("body", "sneaky")])
            .send()
            .await
            .unwrap();
        problem(r, 403, "csrf").await;
        let t = body(
            browser
                .get(app.url(&format!("/v1/support/requests/{id}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(t["messages"].as_array().unwrap().len(), 2);
        assert_eq!(t["request"]["status"], "closed");
        app.stop().await;
    })
    .await;
}
