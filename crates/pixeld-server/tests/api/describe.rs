//! AI image descriptions (`POST /v1/images/{id}/describe`) against a local server speaking the
//! Chat Completions wire format, with the real client.

use std::io::Cursor;

use base64::Engine as _;
use pixeld_ai::testing::FakeVisionServer;
use pixeld_server::config::{Config, VisionConfig};
use serde_json::{Value, json};

use crate::support::{TestApp, body, both, both_with, problem};

const EMAIL: &str = "ada@example.com";

/// A 2000×1500 JPEG carrying an EXIF block and a comment with the uploader's email.
fn photo_with_metadata() -> Vec<u8> {
    let img = image::RgbImage::from_fn(2000, 1500, |x, y| {
        image::Rgb([(x / 8) as u8, (y / 6) as u8, ((x + y) / 16) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    let jpeg = out.into_inner();
    // After SOI: APP1 "Exif" (a little-endian TIFF with one empty IFD), then a COM segment.
    let tiff: &[u8] = b"II*\0\x08\0\0\0\0\0\0\0\0\0";
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(tiff);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(&app1);
    let comment = format!("taken by {EMAIL}");
    seg.extend_from_slice(&[0xFF, 0xFE]);
    seg.extend_from_slice(&((comment.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(comment.as_bytes());
    let mut with = jpeg[..2].to_vec();
    with.extend_from_slice(&seg);
    with.extend_from_slice(&jpeg[2..]);
    with
}

fn with_vision(api_base: String) -> impl Fn(&mut Config) {
    move |c: &mut Config| {
        c.ai.vision = Some(VisionConfig {
            api_base: api_base.clone(),
            api_key: Some("sk-test-key".into()),
            model: "test-vision".into(),
            timeout_secs: 10,
        });
    }
}

async fn upload(app: &TestApp, token: &str) -> String {
    let r = app
        .plain()
        .post(app.url("/v1/images?filename=ada-at-home.jpg"))
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(photo_with_metadata())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    body(r).await["id"].as_str().unwrap().to_string()
}

async fn describe(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.plain()
        .post(app.url(&format!("/v1/images/{id}/describe")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn available(app: &TestApp, token: &str) -> i64 {
    let r = app
        .plain()
        .get(app.url("/v1/credits"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    body(r).await["available"].as_i64().unwrap()
}

async fn image(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app
        .plain()
        .get(app.url(&format!("/v1/images/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    body(r).await
}

#[tokio::test]
async fn an_image_is_described_from_a_small_copy_without_metadata_or_identity() {
    let vision = FakeVisionServer::start().await;
    both_with(with_vision(vision.api_base.clone()), |app| {
        let vision = vision.clone();
        async move {
            vision.describe_as(
                "A smooth gradient from dark blue to orange.",
                &["gradient", "Orange", "abstract"],
            );
            let b = app.user(EMAIL).await;
            let token = app
                .token(&b, &["images:read", "images:write", "billing:read"])
                .await;
            let id = upload(&app, &token).await;
            let before = available(&app, &token).await;
            let sent_before = vision.received().len();
            // Even a user who agreed to AI training gets "store": false: no code path offers a
            // user's images to a provider for training.
            let r = b
                .put(app.url("/v1/account/consents/ai_training"))
                .json(&json!({"granted": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);

            let r = describe(&app, &token, &id).await;
            assert_eq!(r.status(), 200);
            let d = body(r).await;
            assert_eq!(d["alt_text"], "A smooth gradient from dark blue to orange.");
            assert_eq!(d["tags"], json!(["gradient", "orange", "abstract"]));
            assert_eq!(d["model"], "test-vision-1");
            // Kept with the image, and charged its price once.
            assert_eq!(image(&app, &token, &id).await["description"], d);
            assert_eq!(available(&app, &token).await, before - 2);

            // What the provider got: one request, asked not to be stored, naming nobody, and a
            // copy at most 1024 px on its longer side with no metadata left in it.
            let sent = vision.received();
            assert_eq!(sent.len(), sent_before + 1);
            let req = sent.last().unwrap();
            assert_eq!(req.authorization.as_deref(), Some("Bearer sk-test-key"));
            assert_eq!(req.body["store"], json!(false));
            assert!(req.body.get("user").is_none());
            let text = req.body.to_string();
            assert!(
                !text.contains(EMAIL) && !text.contains("ada-at-home"),
                "{text:.300}"
            );
            let url = req.body["messages"][0]["content"][1]["image_url"]["url"]
                .as_str()
                .unwrap();
            let data = url.strip_prefix("data:image/jpeg;base64,").unwrap();
            let copy = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            let decoded = image::load_from_memory(&copy).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (1024, 768));
            assert!(
                !copy.windows(4).any(|w| w == b"Exif"),
                "EXIF left in the copy"
            );
            assert!(!copy.windows(EMAIL.len()).any(|w| w == EMAIL.as_bytes()));

            // The processing log records the call, with no content.
            let r = app
                .plain()
                .get(app.url("/v1/processing-logs"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let logs = body(r).await;
            assert!(
                logs["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["op"] == "describe" && l["status"] == "ok"),
                "{logs}"
            );

            // The privacy page names the provider that receives images.
            let r = app
                .plain()
                .get(app.url("/v1/privacy"))
                .send()
                .await
                .unwrap();
            let policy = body(r).await;
            let ai = policy["processors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["role"] == "AI image descriptions")
                .cloned()
                .unwrap_or_else(|| panic!("no AI processor listed: {policy}"));
            assert_eq!(ai["name"], "127.0.0.1 (model test-vision)");
        }
    })
    .await;
}

#[tokio::test]
async fn no_image_goes_to_an_ai_provider_for_a_user_who_restricted_processing_or_objected() {
    let vision = FakeVisionServer::start().await;
    both_with(with_vision(vision.api_base.clone()), |app| {
        let vision = vision.clone();
        async move {
            let b = app.user(EMAIL).await;
            let token = app
                .token(&b, &["images:read", "images:write", "billing:read"])
                .await;
            let id = upload(&app, &token).await;
            let before = available(&app, &token).await;
            let sent_before = vision.received().len();
            for choices in [
                json!({"restricted": false, "objections": ["ai_providers"]}),
                json!({"restricted": true, "objections": []}),
            ] {
                let r = b
                    .put(app.url("/v1/account/processing"))
                    .json(&choices)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let p = problem(
                    describe(&app, &token, &id).await,
                    403,
                    "processing-restricted",
                )
                .await;
                assert!(
                    p["detail"].as_str().unwrap().contains("privacy settings"),
                    "{p}"
                );
            }
            assert_eq!(vision.received().len(), sent_before, "nothing was sent");
            assert_eq!(available(&app, &token).await, before, "nothing was charged");
            assert_eq!(image(&app, &token, &id).await["description"], Value::Null);

            // Lifting both lets it through.
            b.put(app.url("/v1/account/processing"))
                .json(&json!({"restricted": false, "objections": []}))
                .send()
                .await
                .unwrap();
            assert_eq!(describe(&app, &token, &id).await.status(), 200);
        }
    })
    .await;
}

#[tokio::test]
async fn a_failed_description_charges_nothing_and_says_why() {
    let vision = FakeVisionServer::start().await;
    both_with(with_vision(vision.api_base.clone()), |app| {
        let vision = vision.clone();
        async move {
            let b = app.user(EMAIL).await;
            let token = app.token(&b, &["images:read", "images:write", "billing:read"]).await;
            let id = upload(&app, &token).await;
            let before = available(&app, &token).await;

            vision.answer(
                500,
                json!({"error": {"message": "The server had an error while processing your request.",
                                 "type": "server_error"}}),
            );
            let p = problem(describe(&app, &token, &id).await, 502, "ai-provider").await;
            let detail = p["detail"].as_str().unwrap();
            assert!(detail.contains("The server had an error"), "{detail}");
            assert!(detail.contains("nothing was charged"), "{detail}");

            // A model that ignores the JSON instruction is a failure too, not a stored guess.
            vision.answer(200, pixeld_ai::testing::completion("Looks like a sunset to me."));
            problem(describe(&app, &token, &id).await, 502, "ai-provider").await;

            assert_eq!(available(&app, &token).await, before);
            assert_eq!(image(&app, &token, &id).await["description"], Value::Null);

            // Read-only tokens cannot ask for one; other organisations cannot see the image.
            let read_only = app.token(&b, &["images:read"]).await;
            problem(describe(&app, &read_only, &id).await, 403, "missing-scope").await;
            let other = app.user("bob@example.com").await;
            let other_token = app.token(&other, &["images:read", "images:write"]).await;
            problem(describe(&app, &other_token, &id).await, 404, "not-found").await;
        }
    })
    .await;
}

#[tokio::test]
async fn without_a_vision_provider_describing_is_a_clear_error_and_no_processor_is_listed() {
    both(|app| async move {
        let b = app.user(EMAIL).await;
        let token = app
            .token(&b, &["images:read", "images:write", "billing:read"])
            .await;
        let id = upload(&app, &token).await;
        let before = available(&app, &token).await;
        let p = problem(describe(&app, &token, &id).await, 409, "not-configured").await;
        assert!(p["detail"].as_str().unwrap().contains("[ai.vision]"), "{p}");
        assert_eq!(available(&app, &token).await, before);
        let r = app
            .plain()
            .get(app.url("/v1/privacy"))
            .send()
            .await
            .unwrap();
        let policy = body(r).await;
        assert!(
            !policy["processors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["role"] == "AI image descriptions"),
            "{policy}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_image_page_offers_a_description_and_shows_it() {
    let vision = FakeVisionServer::start().await;
    both_with(with_vision(vision.api_base.clone()), |app| {
        let vision = vision.clone();
        async move {
            vision.describe_as("Two kites over a beach at dusk.", &["kite", "beach"]);
            let b = app.user(EMAIL).await;
            let token = app
                .token(&b, &["images:read", "images:write", "billing:read"])
                .await;
            let id = upload(&app, &token).await;
            let page = b
                .get(app.url(&format!("/images/{id}")))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(page.contains("Describe with AI"), "no button");
            assert!(page.contains("at 127.0.0.1"), "the recipient is not named");

            let session: Value =
                body(b.get(app.url("/v1/auth/session")).send().await.unwrap()).await;
            let csrf = session["csrf_token"].as_str().unwrap().to_string();
            let r = b
                .post(app.url(&format!("/images/{id}/describe")))
                .form(&[("csrf_token", csrf.as_str())])
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_success() || r.status().is_redirection(),
                "{}",
                r.status()
            );
            let page = b
                .get(app.url(&format!("/images/{id}")))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(
                page.contains("Two kites over a beach at dusk."),
                "alt text not shown"
            );
            assert!(page.contains("<li>beach</li>"));
            assert!(!page.contains("Describe with AI"));
        }
    })
    .await;
}
