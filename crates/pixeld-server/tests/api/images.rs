use std::io::Cursor;

use serde_json::{Value, json};
use time::Duration;

use crate::support::{TestApp, body, both, both_with, bucket_keys, moto, problem};

/// A 640×480 photo-like JPEG with a gradient, made here so the test needs no fixture file.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 255 / width) as u8,
            (y * 255 / height) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(width, height, |x, _| {
        image::Rgba([200, 30, 30, if x < width / 2 { 255 } else { 0 }])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

async fn upload_raw(
    app: &TestApp,
    token: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> reqwest::Response {
    app.plain()
        .post(app.url("/v1/images?filename=photo.jpg"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_uploaded_photo_is_analysed_transformed_cached_and_deleted_on_request() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let token = app.token(&b, &["images:read", "images:write"]).await;
        let r = upload_raw(&app, &token, jpeg(640, 480), "image/jpeg").await;
        assert_eq!(r.status(), 201);
        let img: Value = r.json().await.unwrap();
        assert_eq!(
            (
                img["format"].as_str(),
                img["width"].as_i64(),
                img["height"].as_i64()
            ),
            (Some("jpeg"), Some(640), Some(480))
        );
        assert_eq!(img["filename"], "photo.jpg");
        assert!(
            matches!(img["analysis"]["kind"].as_str(), Some("photo" | "graphic")),
            "{img}"
        );
        assert!(
            img["analysis"]["blurhash"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        let created = time::OffsetDateTime::parse(
            img["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let expires = time::OffsetDateTime::parse(
            img["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(expires - created, Duration::hours(24));
        let id = img["id"].as_str().unwrap().to_string();

        let c = app.plain();
        let get = |q: &str, accept: &str| {
            c.get(app.url(&format!("/v1/images/{id}/content?{q}")))
                .bearer_auth(&token)
                .header("accept", accept)
                .send()
        };
        // Outputs may be cached by the client until the upload itself expires, never longer.
        let left = (expires - created).whole_seconds();
        let max_age = |r: &reqwest::Response| -> i64 {
            let v = r.headers()["cache-control"].to_str().unwrap();
            v.strip_prefix("private, max-age=")
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("Cache-Control: {v}"))
        };
        let first = get("w=320&format=webp&q=70", "*/*").await.unwrap();
        assert_eq!(first.status(), 200);
        assert!((left - 60..=left).contains(&max_age(&first)), "{left}");
        assert_eq!(first.headers()["content-type"], "image/webp");
        assert_eq!(first.headers()["x-pixeld-cache"], "miss");
        let etag = first.headers()["etag"].to_str().unwrap().to_string();
        let bytes = first.bytes().await.unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 240));

        let second = get("w=320&format=webp&q=70", "*/*").await.unwrap();
        assert_eq!(second.headers()["x-pixeld-cache"], "hit");
        assert!((left - 60..=left).contains(&max_age(&second)), "{left}");
        assert_eq!(second.bytes().await.unwrap(), bytes);
        let not_modified = c
            .get(app.url(&format!("/v1/images/{id}/content?w=320&format=webp&q=70")))
            .bearer_auth(&token)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(not_modified.status(), 304);

        // format=auto follows Accept.
        let auto = get("w=100", "image/webp,image/*").await.unwrap();
        assert_eq!(auto.headers()["content-type"], "image/webp");
        let plain = get("w=100", "image/jpeg").await.unwrap();
        assert_eq!(plain.headers()["content-type"], "image/jpeg");

        problem(get("w=abc", "*/*").await.unwrap(), 422, "invalid-options").await;

        let opt = c
            .post(app.url(&format!("/v1/images/{id}/optimize")))
            .bearer_auth(&token)
            .json(&json!({"width": 200, "format": "jpeg", "quality": 60}))
            .send()
            .await
            .unwrap();
        let opt: Value = opt.json().await.unwrap();
        assert_eq!(
            (opt["width"].as_i64(), opt["format"].as_str()),
            (Some(200), Some("jpeg"))
        );
        assert!(opt["savings"].as_f64().unwrap() > 0.0, "{opt}");
        assert_eq!(opt["source_bytes"], img["bytes"], "{opt}");
        let bad = c
            .post(app.url(&format!("/v1/images/{id}/optimize")))
            .bearer_auth(&token)
            .json(&json!({"width": 200, "colour": "red"}))
            .send()
            .await
            .unwrap();
        problem(bad, 422, "validation").await;

        let logs = body(
            c.get(app.url("/v1/processing-logs"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let ops: Vec<&str> = logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["op"].as_str().unwrap())
            .collect();
        assert!(
            ops.contains(&"upload") && ops.contains(&"transform") && ops.contains(&"optimize"),
            "{ops:?}"
        );
        assert!(
            logs["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["status"] == "cached")
        );

        assert_eq!(
            c.delete(app.url(&format!("/v1/images/{id}")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        problem(
            c.get(app.url(&format!("/v1/images/{id}")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
        )
        .await;
        problem(
            get("w=320&format=webp&q=70", "*/*").await.unwrap(),
            404,
            "not-found",
        )
        .await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn multipart_uploads_keep_the_file_name_and_transparency_survives_png() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let token = app.token(&b, &["images:read", "images:write"]).await;
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(png(64, 32))
                .file_name("logo.png")
                .mime_str("image/png")
                .unwrap(),
        );
        let img: Value = app
            .plain()
            .post(app.url("/v1/images"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(img["filename"], "logo.png");
        assert_eq!(img["analysis"]["has_alpha"], true);
        let id = img["id"].as_str().unwrap();
        let out = app
            .plain()
            .get(app.url(&format!("/v1/images/{id}/content?format=png")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let decoded = image::load_from_memory(&out).unwrap().to_rgba8();
        assert_eq!(decoded.get_pixel(0, 0)[3], 255);
        assert_eq!(decoded.get_pixel(63, 0)[3], 0, "alpha kept");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_uploads_get_clear_errors_and_store_nothing() {
    both_with(
        |c| c.images.max_upload_bytes = 64 * 1024,
        |app| async move {
            let b = app.user("ada@example.com").await;
            let token = app.token(&b, &["images:read", "images:write"]).await;
            problem(
                upload_raw(
                    &app,
                    &token,
                    b"this is not an image at all".to_vec(),
                    "image/jpeg",
                )
                .await,
                415,
                "unsupported-format",
            )
            .await;
            problem(
                upload_raw(&app, &token, vec![], "image/png").await,
                422,
                "empty-input",
            )
            .await;
            let mut truncated = jpeg(200, 200);
            truncated.truncate(truncated.len() / 3);
            let r = upload_raw(&app, &token, truncated, "image/jpeg").await;
            assert!(r.status() == 422, "truncated JPEG: {}", r.status());
            problem(
                upload_raw(
                    &app,
                    &token,
                    vec![0xff; 100 * 1024],
                    "application/octet-stream",
                )
                .await,
                413,
                "payload-too-large",
            )
            .await;
            problem(
                upload_raw(&app, &token, jpeg(10, 10), "text/plain").await,
                415,
                "unsupported-media-type",
            )
            .await;
            let list = body(
                app.plain()
                    .get(app.url("/v1/images"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(
                list["items"].as_array().unwrap().len(),
                0,
                "nothing was stored"
            );
            app.stop().await;
        },
    )
    .await;
}

#[tokio::test]
async fn images_need_their_scopes_and_stay_inside_their_organisation() {
    both(|app| async move {
        let ada = app.user("ada@example.com").await;
        let reader = app.token(&ada, &["images:read"]).await;
        let writer = app.token(&ada, &["images:write", "images:read"]).await;
        let p = problem(
            upload_raw(&app, &reader, jpeg(32, 32), "image/jpeg").await,
            403,
            "missing-scope",
        )
        .await;
        assert_eq!(p["scope"], "images:write");
        let id = body(upload_raw(&app, &writer, jpeg(32, 32), "image/jpeg").await).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let bob = app.user("bob@example.com").await;
        let bob_token = app.token(&bob, &["images:read", "images:write"]).await;
        let c = app.plain();
        for path in [
            format!("/v1/images/{id}"),
            format!("/v1/images/{id}/content?w=10"),
        ] {
            problem(
                c.get(app.url(&path))
                    .bearer_auth(&bob_token)
                    .send()
                    .await
                    .unwrap(),
                404,
                "not-found",
            )
            .await;
        }
        problem(
            c.delete(app.url(&format!("/v1/images/{id}")))
                .bearer_auth(&bob_token)
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
        )
        .await;
        assert_eq!(
            c.get(app.url(&format!("/v1/images/{id}")))
                .bearer_auth(&reader)
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
async fn uploads_are_deleted_within_24_hours_with_their_outputs_and_logs_after_90_days() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let token = app.token(&b, &["images:read", "images:write"]).await;
        let id = body(upload_raw(&app, &token, jpeg(300, 200), "image/jpeg").await).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let c = app.plain();
        assert_eq!(
            c.get(app.url(&format!("/v1/images/{id}/content?w=100&format=png")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let objects = app.outbox.parent().unwrap().join("objects");
        let count_files = |dir: &std::path::Path| -> usize {
            fn walk(d: &std::path::Path) -> usize {
                std::fs::read_dir(d)
                    .map(|it| {
                        it.flatten()
                            .map(|e| {
                                if e.path().is_dir() {
                                    walk(&e.path())
                                } else {
                                    1
                                }
                            })
                            .sum()
                    })
                    .unwrap_or(0)
            }
            walk(dir)
        };
        assert_eq!(
            count_files(&objects),
            2,
            "the upload and one output are stored"
        );

        app.clock.advance(Duration::hours(23));
        assert_eq!(app.app.sweep().await.unwrap().images, 0, "not yet");
        assert_eq!(
            c.get(app.url(&format!("/v1/images/{id}")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        app.clock.advance(Duration::hours(1));
        // Past the window it is gone for the user even before the sweeper runs…
        problem(
            c.get(app.url(&format!("/v1/images/{id}")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
        )
        .await;
        // …and the sweeper removes the rows and every object.
        let report = app.app.sweep().await.unwrap();
        assert_eq!((report.images, report.variants), (1, 1));
        assert_eq!(count_files(&objects), 0, "no object left behind");
        assert_eq!(app.app.sweep().await.unwrap().images, 0, "idempotent");

        let logs = body(
            c.get(app.url("/v1/processing-logs"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(
            !logs["items"].as_array().unwrap().is_empty(),
            "logs outlive the images"
        );
        app.clock.advance(Duration::days(90));
        assert!(app.app.sweep().await.unwrap().processing_logs >= 2);
        // Tokens and sessions are long-lived; re-create a token after 90 days of clock.
        let b = app.browser();
        b.post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "ada@example.com", "password": crate::support::PASSWORD}))
            .send()
            .await
            .unwrap();
        let token = app.token(&b, &["images:read"]).await;
        let logs = body(
            c.get(app.url("/v1/processing-logs"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(logs["items"].as_array().unwrap().is_empty());
        app.stop().await;
    })
    .await;
}

/// A tiny image server on loopback: `/photo.jpg`, and `/hop/N` redirecting N more times.
async fn image_server(photo: Vec<u8>) -> String {
    use axum::routing::get;
    let photo = std::sync::Arc::new(photo);
    let app = axum::Router::new()
        .route(
            "/photo.jpg",
            get({
                let p = photo.clone();
                move || async move { ([("content-type", "image/jpeg")], (*p).clone()) }
            }),
        )
        .route(
            "/hop/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    let to = if n == 0 {
                        "/photo.jpg".to_string()
                    } else {
                        format!("/hop/{}", n - 1)
                    };
                    (axum::http::StatusCode::FOUND, [("location", to)])
                },
            ),
        )
        .route(
            "/to-metadata",
            get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [("location", "http://169.254.169.254/latest/meta-data/")],
                )
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_url_upload_refuses_private_addresses_and_follows_at_most_three_redirects() {
    let site = image_server(jpeg(120, 80)).await;
    // The default: loopback is refused, like every private address.
    both(|app| {
        let site = site.clone();
        async move {
            let b = app.user("ada@example.com").await;
            let token = app.token(&b, &["images:read", "images:write"]).await;
            let r = app
                .plain()
                .post(app.url("/v1/images"))
                .bearer_auth(&token)
                .json(&json!({"url": format!("{site}/photo.jpg")}))
                .send()
                .await
                .unwrap();
            let p = problem(r, 422, "fetch-failed").await;
            assert!(
                p["detail"]
                    .as_str()
                    .unwrap()
                    .contains("private or reserved"),
                "{p}"
            );
            for url in [
                "http://169.254.169.254/latest/meta-data/",
                "file:///etc/passwd",
                "http://[::1]/x.jpg",
                "http://10.0.0.1/x.jpg",
            ] {
                let r = app
                    .plain()
                    .post(app.url("/v1/images"))
                    .bearer_auth(&token)
                    .json(&json!({"url": url}))
                    .send()
                    .await
                    .unwrap();
                problem(r, 422, "fetch-failed").await;
            }
            app.stop().await;
        }
    })
    .await;
    // With the test server's address allow-listed, fetching works, redirects are re-checked.
    both_with(
        |c| c.fetch.allow_networks = vec!["127.0.0.1/32".into()],
        |app| {
            let site = site.clone();
            async move {
                let b = app.user("ada@example.com").await;
                let token = app.token(&b, &["images:read", "images:write"]).await;
                let up = |path: &str| {
                    app.plain()
                        .post(app.url("/v1/images"))
                        .bearer_auth(&token)
                        .json(&json!({"url": format!("{site}{path}")}))
                        .send()
                };
                let img = body(up("/hop/2").await.unwrap()).await;
                assert_eq!(
                    (img["width"].as_i64(), img["filename"].as_str()),
                    (Some(120), Some("photo.jpg"))
                );
                assert_eq!(img["source_url"], format!("{site}/hop/2"));
                problem(up("/hop/3").await.unwrap(), 422, "fetch-failed").await;
                let p = problem(up("/to-metadata").await.unwrap(), 422, "fetch-failed").await;
                assert!(
                    p["detail"].as_str().unwrap().contains("169.254.169.254"),
                    "{p}"
                );
                problem(up("/missing.jpg").await.unwrap(), 422, "fetch-failed").await;
                app.stop().await;
            }
        },
    )
    .await;
}

#[tokio::test]
async fn uploads_and_outputs_live_in_an_s3_bucket_and_leave_it_within_24_hours() {
    let Some(s3) = moto().await else { return };
    let endpoint = s3.endpoint.clone();
    both_with(
        |c| {
            c.objects = pixeld_server::config::ObjectsConfig::S3 {
                bucket: "pixeld-test".into(),
                region: "us-east-1".into(),
                endpoint: Some(endpoint.clone()),
                access_key_id: Some("test".into()),
                secret_access_key: Some("test".into()),
                allow_http: true,
            };
        },
        |app| {
            let endpoint = endpoint.clone();
            async move {
                // A fresh bucket per backend.
                let _ = reqwest::Client::new()
                    .delete(format!("{endpoint}/pixeld-test"))
                    .send()
                    .await;
                assert!(
                    reqwest::Client::new()
                        .put(format!("{endpoint}/pixeld-test"))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .is_success()
                );
                let b = app.user("ada@example.com").await;
                let token = app.token(&b, &["images:read", "images:write"]).await;
                let img = body(upload_raw(&app, &token, jpeg(300, 200), "image/jpeg").await).await;
                let id = img["id"].as_str().unwrap().to_string();
                assert!(img["analysis"].is_object());
                let out = app
                    .plain()
                    .get(app.url(&format!("/v1/images/{id}/content?w=150&format=webp")))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(out.status(), 200);
                let keys = bucket_keys(&endpoint, "pixeld-test").await;
                assert_eq!(keys.len(), 2, "{keys:?}");
                assert!(
                    keys.iter().any(|k| k.ends_with(&format!("/uploads/{id}"))),
                    "{keys:?}"
                );
                assert!(
                    keys.iter().any(|k| k.contains(&format!("/variants/{id}/"))),
                    "{keys:?}"
                );
                app.clock.advance(Duration::hours(24));
                assert_eq!(app.app.sweep().await.unwrap().images, 1);
                assert!(
                    bucket_keys(&endpoint, "pixeld-test").await.is_empty(),
                    "the bucket is empty again"
                );
                app.stop().await;
            }
        },
    )
    .await;
}
