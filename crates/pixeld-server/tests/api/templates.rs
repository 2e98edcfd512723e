use serde_json::{Value, json};

use crate::support::{TestApp, body, both, problem};

fn card() -> Value {
    json!({
        "page": {"width": 600, "height": 315, "background": "#1e293b"},
        "variables": {"title": {"example": "Sample title"}},
        "layers": [
            {"type": "text", "name": "title", "x": 40, "y": 40, "width": 520, "height": 160,
             "text": "{{title}}", "size": 56, "fit": "shrink", "color": "#ffffff"},
            {"type": "shape", "name": "badge", "x": 500, "y": 240, "width": 60, "height": 40, "fill": "#ef4444"}
        ]
    })
}

async fn create(app: &TestApp, token: &str, template: Value) -> reqwest::Response {
    app.plain()
        .post(app.url("/v1/templates"))
        .bearer_auth(token)
        .json(&json!({"name": "Blog card", "template": template}))
        .send()
        .await
        .unwrap()
}

async fn render(app: &TestApp, token: &str, req: Value) -> reqwest::Response {
    app.plain()
        .post(app.url("/v1/renders"))
        .bearer_auth(token)
        .json(&req)
        .send()
        .await
        .unwrap()
}

fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).expect("an image")
}

#[tokio::test]
async fn a_designer_saves_versions_and_renders_with_the_cache() {
    both(|app| async move {
        let b = app.user("designer@example.com").await;
        let token = app.token(&b, &["render"]).await;

        // A typo in a property is refused with the layer and the property named.
        let mut bad = card();
        bad["layers"][0]["colour"] = json!("red");
        let p = problem(create(&app, &token, bad).await, 422, "invalid-template").await;
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("unknown properties for a text: colour"),
            "{p}"
        );

        let r = create(&app, &token, card()).await;
        assert_eq!(r.status(), 201);
        let t = body(r).await;
        let id = t["id"].as_str().unwrap().to_owned();
        assert_eq!(
            (t["version"].as_i64(), t["latest_version"].as_i64()),
            (Some(1), Some(1))
        );

        // Version 2 changes the badge colour; an editor still on version 1 is refused.
        let mut v2 = card();
        v2["layers"][1]["fill"] = json!("#22c55e");
        let save = |base: i64, template: Value| {
            app.plain()
                .put(app.url(&format!("/v1/templates/{id}")))
                .bearer_auth(&token)
                .json(&json!({"template": template, "base_version": base}))
                .send()
        };
        let r = save(1, v2.clone()).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(body(r).await["version"], 2);
        problem(save(1, card()).await.unwrap(), 409, "state-conflict").await;
        let versions = body(
            app.plain()
                .get(app.url(&format!("/v1/templates/{id}/versions")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let numbers: Vec<i64> = versions["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        assert_eq!(numbers, vec![2, 1]);

        // Rendering the latest version draws the green badge; version 1 still has the red one.
        let r = render(
            &app,
            &token,
            json!({"template": id, "data": {"title": "Hello"}}),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(r.headers()["x-pixeld-cache"], "miss");
        let first = r.bytes().await.unwrap();
        let img = decode(&first);
        assert_eq!((img.width(), img.height()), (600, 315));
        let badge = image::GenericImageView::get_pixel(&img, 530, 260).0;
        assert_eq!(badge, [0x22, 0xc5, 0x5e, 255]);
        let r = render(
            &app,
            &token,
            json!({"template": id, "version": 1, "data": {"title": "Hello"}}),
        )
        .await;
        let old = decode(&r.bytes().await.unwrap());
        assert_eq!(
            image::GenericImageView::get_pixel(&old, 530, 260).0,
            [0xef, 0x44, 0x44, 255]
        );

        // The same request again is a cache hit with the same bytes.
        let r = render(
            &app,
            &token,
            json!({"template": id, "data": {"title": "Hello"}}),
        )
        .await;
        assert_eq!(r.headers()["x-pixeld-cache"], "hit");
        assert_eq!(r.bytes().await.unwrap(), first);

        // JSON answers carry a URL that serves the same image.
        let r = app
            .plain()
            .post(app.url("/v1/renders"))
            .bearer_auth(&token)
            .header("accept", "application/json")
            .json(&json!({"template": id, "data": {"title": "Hello"}, "format": "webp"}))
            .send()
            .await
            .unwrap();
        let v = body(r).await;
        assert_eq!(
            (v["format"].as_str(), v["width"].as_i64()),
            (Some("webp"), Some(600))
        );
        let r = app
            .plain()
            .get(v["url"].as_str().unwrap())
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "image/webp");
        assert_eq!(decode(&r.bytes().await.unwrap()).width(), 600);

        // Missing variables and unknown layers are listed, and nothing is rendered.
        let p = problem(
            render(
                &app,
                &token,
                json!({"template": id, "modifications": [{"name": "nope", "text": "x"}]}),
            )
            .await,
            422,
            "invalid-render-data",
        )
        .await;
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("missing variables: title") && detail.contains("unknown layers: nope"),
            "{p}"
        );

        // The preview fills variables with their examples.
        let r = app
            .plain()
            .post(app.url(&format!("/v1/templates/{id}/preview")))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/webp");

        // PDF: a vector page whose text a PDF reader can find.
        let r = render(
            &app,
            &token,
            json!({"template": id, "data": {"title": "Quarterly report"}, "format": "pdf"}),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/pdf");
        assert!(r.bytes().await.unwrap().starts_with(b"%PDF-"));

        // The list links a thumbnail of the latest version: 400 px wide, made once.
        let list = body(
            app.plain()
                .get(app.url("/v1/templates"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let item = &list["items"][0];
        let latest = item["latest_version"].as_i64().unwrap();
        let thumb = item["thumbnail_url"].as_str().unwrap().to_owned();
        assert!(
            thumb.ends_with(&format!("/v1/templates/{id}/thumbnail?v={latest}")),
            "{thumb}"
        );
        let get_thumb = || app.plain().get(&thumb).bearer_auth(&token).send();
        let r = get_thumb().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/webp");
        assert_eq!(r.headers()["x-pixeld-cache"], "miss");
        let small = decode(&r.bytes().await.unwrap());
        assert_eq!(
            (small.width(), small.height()),
            (400, 210),
            "600×315 scaled to 400 wide"
        );
        let r = get_thumb().await.unwrap();
        assert_eq!(r.headers()["x-pixeld-cache"], "hit");

        // Another organisation sees nothing.
        let other = app.user("other@example.com").await;
        let other_token = app.token(&other, &["render"]).await;
        problem(
            render(
                &app,
                &other_token,
                json!({"template": id, "data": {"title": "x"}}),
            )
            .await,
            404,
            "not-found",
        )
        .await;
        let r = app
            .plain()
            .get(app.url(&format!("/v1/templates/{id}")))
            .bearer_auth(&other_token)
            .send()
            .await
            .unwrap();
        problem(r, 404, "not-found").await;
        let r = app
            .plain()
            .get(&thumb)
            .bearer_auth(&other_token)
            .send()
            .await
            .unwrap();
        problem(r, 404, "not-found").await;

        // Deleting the template removes it and its versions.
        let r = app
            .plain()
            .delete(app.url(&format!("/v1/templates/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        problem(
            render(
                &app,
                &token,
                json!({"template": id, "data": {"title": "x"}}),
            )
            .await,
            404,
            "not-found",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_signed_url_renders_without_a_token_and_only_with_a_live_key() {
    both(|app| async move {
        let b = app.user("marketer@example.com").await;
        let token = app
            .token(&b, &["render", "account:read", "account:write"])
            .await;
        let id = body(create(&app, &token, card()).await).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = app
            .plain()
            .post(app.url("/v1/signing-keys"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let key = body(r).await;
        let secret = key["secret"].as_str().unwrap();
        let tid: uuid::Uuid = id.parse().unwrap();
        let params = vec![("title".to_owned(), "Launch day".to_owned())];
        let sig = pixeld_core::templates::sign_url(secret, tid, "png", &params);
        let url = app.url(&format!("/r/{id}.png?title=Launch%20day&sig={sig}"));

        let r = app.plain().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/png");
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .starts_with("public")
        );
        assert_eq!(decode(&r.bytes().await.unwrap()).width(), 600);

        // Changing the text, dropping the signature, or an unknown template: 403 alike.
        let r = app
            .plain()
            .get(app.url(&format!("/r/{id}.png?title=Hacked&sig={sig}")))
            .send()
            .await
            .unwrap();
        problem(r, 403, "forbidden").await;
        let r = app
            .plain()
            .get(app.url(&format!("/r/{id}.png?title=Launch%20day")))
            .send()
            .await
            .unwrap();
        problem(r, 403, "forbidden").await;
        let r = app
            .plain()
            .get(app.url(&format!(
                "/r/{}.png?title=Launch%20day&sig={sig}",
                uuid::Uuid::now_v7()
            )))
            .send()
            .await
            .unwrap();
        problem(r, 403, "forbidden").await;

        // Rotation: a second key works at once; revoking the first stops its URLs.
        let k2 = body(
            app.plain()
                .post(app.url("/v1/signing-keys"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let sig2 =
            pixeld_core::templates::sign_url(k2["secret"].as_str().unwrap(), tid, "png", &params);
        let r = app
            .plain()
            .delete(app.url(&format!("/v1/signing-keys/{}", key["id"].as_str().unwrap())))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let r = app.plain().get(&url).send().await.unwrap();
        problem(r, 403, "forbidden").await;
        let r = app
            .plain()
            .get(app.url(&format!("/r/{id}.png?title=Launch%20day&sig={sig2}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-pixeld-cache"],
            "hit",
            "the same render was cached under the first key"
        );
    })
    .await;
}

#[tokio::test]
async fn an_uploaded_image_is_placed_by_asset_id() {
    both(|app| async move {
        let b = app.user("shop@example.com").await;
        let token = app.token(&b, &["render", "images:read", "images:write"]).await;
        let mut png = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(64, 64, image::Rgb([0, 0, 255])))
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        let r = app
            .plain()
            .post(app.url("/v1/images"))
            .bearer_auth(&token)
            .header("content-type", "image/png")
            .body(png.into_inner())
            .send()
            .await
            .unwrap();
        let asset = body(r).await["id"].as_str().unwrap().to_owned();
        let template = json!({
            "page": {"width": 100, "height": 100, "background": "#fff"},
            "layers": [{"type": "image", "name": "photo", "x": 0, "y": 0, "width": 100, "height": 100, "src": "{{photo}}"}]
        });
        let id = body(create(&app, &token, template).await).await["id"].as_str().unwrap().to_owned();
        let r = render(&app, &token, json!({"template": id, "data": {"photo": format!("asset:{asset}")}})).await;
        assert_eq!(r.status(), 200);
        let img = decode(&r.bytes().await.unwrap());
        assert_eq!(image::GenericImageView::get_pixel(&img, 50, 50).0, [0, 0, 255, 255]);
        let p = problem(
            render(&app, &token, json!({"template": id, "data": {"photo": format!("asset:{}", uuid::Uuid::now_v7())}})).await,
            422,
            "validation",
        )
        .await;
        assert!(p["detail"].as_str().unwrap().contains("no such image"), "{p}");
    })
    .await;
}

#[tokio::test]
async fn cached_renders_are_swept_after_thirty_days() {
    both(|app| async move {
        let b = app.user("cache@example.com").await;
        let token = app.token(&b, &["render"]).await;
        let id = body(create(&app, &token, card()).await).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let req = json!({"template": id, "data": {"title": "Kept a while"}});
        assert_eq!(
            render(&app, &token, req.clone()).await.headers()["x-pixeld-cache"],
            "miss"
        );
        app.clock.advance(time::Duration::days(29));
        assert_eq!(app.app.sweep().await.unwrap().cached_renders, 0, "not yet");
        assert_eq!(
            render(&app, &token, req.clone()).await.headers()["x-pixeld-cache"],
            "hit"
        );
        app.clock.advance(time::Duration::days(2));
        assert_eq!(app.app.sweep().await.unwrap().cached_renders, 1);
        assert_eq!(
            app.app.sweep().await.unwrap().cached_renders,
            0,
            "idempotent"
        );
        assert_eq!(
            render(&app, &token, req).await.headers()["x-pixeld-cache"],
            "miss",
            "rendered again"
        );
    })
    .await;
}
