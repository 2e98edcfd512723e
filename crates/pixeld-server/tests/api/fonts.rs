//! An organisation uploads its own font and uses it in a template.

use serde_json::{Value, json};

use crate::support::{TestApp, body, both, problem};

const DEJAVU: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const DEJAVU_BOLD: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

fn font(path: &str) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{path} is required under CI=true (scripts/setup test installs fonts-dejavu-core)"
            );
            eprintln!("skipping: {path} not found (run scripts/setup test)");
            None
        }
    }
}

fn card(family: &str) -> Value {
    json!({
        "page": {"width": 300, "height": 100, "background": "#ffffff"},
        "layers": [{"type": "text", "name": "t", "x": 10, "y": 10, "width": 280, "height": 80,
                    "text": "Hamburgefonstiv", "size": 28, "color": "#000000",
                    "font": {"family": family}}]
    })
}

async fn render(app: &TestApp, token: &str, template: &str) -> reqwest::Response {
    app.plain()
        .post(app.url("/v1/renders"))
        .bearer_auth(token)
        .json(&json!({"template": template}))
        .send()
        .await
        .unwrap()
}

async fn upload(app: &TestApp, token: &str, ct: &str, bytes: Vec<u8>) -> reqwest::Response {
    app.plain()
        .post(app.url("/v1/fonts"))
        .bearer_auth(token)
        .header("content-type", ct)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_uploaded_font_is_used_by_the_organisations_renders_only() {
    let (Some(regular), Some(bold)) = (font(DEJAVU), font(DEJAVU_BOLD)) else {
        return;
    };
    both(|app| {
        let (regular, bold) = (regular.clone(), bold.clone());
        async move {
            let b = app.user("fonts@example.com").await;
            let token = app.token(&b, &["render"]).await;
            let r = app
                .plain()
                .post(app.url("/v1/templates"))
                .bearer_auth(&token)
                .json(&json!({"name": "Brand", "template": card("DejaVu Sans")}))
                .send()
                .await
                .unwrap();
            let tpl = body(r).await["id"].as_str().unwrap().to_owned();
            let p = problem(render(&app, &token, &tpl).await, 422, "unknown-font").await;
            assert!(p.to_string().contains("DejaVu Sans"), "{p}");

            // Bad uploads: not a font, the wrong media type.
            let p = problem(
                upload(&app, &token, "font/ttf", b"definitely not a font".to_vec()).await,
                422,
                "invalid-font",
            )
            .await;
            assert!(
                p["detail"]
                    .as_str()
                    .unwrap()
                    .contains("TTF, OTF, WOFF or WOFF2")
            );
            problem(
                upload(&app, &token, "text/plain", regular.clone()).await,
                415,
                "unsupported-media-type",
            )
            .await;

            // The raw body, then a form; the same file twice is a conflict.
            let r = upload(&app, &token, "font/ttf", regular.clone()).await;
            assert_eq!(r.status(), 201);
            let f = body(r).await;
            assert_eq!(f["families"], json!(["DejaVu Sans"]));
            assert_eq!(f["format"], "ttf");
            assert_eq!(f["bytes"], regular.len());
            problem(
                upload(&app, &token, "font/ttf", regular.clone()).await,
                409,
                "conflict",
            )
            .await;
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(bold.clone()).file_name("DejaVuSans-Bold.ttf"),
            );
            let r = app
                .plain()
                .post(app.url("/v1/fonts"))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            assert_eq!(body(r).await["file_name"], "DejaVuSans-Bold.ttf");

            // Now the template renders, and differently from the same text in Inter.
            let r = render(&app, &token, &tpl).await;
            assert_eq!(r.status(), 200);
            let with_dejavu = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
            let r = app
                .plain()
                .post(app.url("/v1/templates"))
                .bearer_auth(&token)
                .json(&json!({"name": "Inter", "template": card("Inter")}))
                .send()
                .await
                .unwrap();
            let inter_tpl = body(r).await["id"].as_str().unwrap().to_owned();
            let r = render(&app, &token, &inter_tpl).await;
            let with_inter = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
            assert_ne!(
                with_dejavu.to_rgba8().into_raw(),
                with_inter.to_rgba8().into_raw()
            );

            // Another organisation neither sees nor uses it.
            let other = app.user("other-fonts@example.com").await;
            let other_token = app.token(&other, &["render"]).await;
            let list: Value = body(
                app.plain()
                    .get(app.url("/v1/fonts"))
                    .bearer_auth(&other_token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(list, json!([]));
            let id = f["id"].as_str().unwrap();
            let r = app
                .plain()
                .delete(app.url(&format!("/v1/fonts/{id}")))
                .bearer_auth(&other_token)
                .send()
                .await
                .unwrap();
            problem(r, 404, "not-found").await;

            // Deleting both files brings the unknown-font answer back at once (no stale cache).
            let list: Value = body(
                app.plain()
                    .get(app.url("/v1/fonts"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(list.as_array().unwrap().len(), 2);
            for f in list.as_array().unwrap() {
                let r = app
                    .plain()
                    .delete(app.url(&format!("/v1/fonts/{}", f["id"].as_str().unwrap())))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204);
            }
            problem(render(&app, &token, &tpl).await, 422, "unknown-font").await;
            app.stop().await;
        }
    })
    .await;
}
