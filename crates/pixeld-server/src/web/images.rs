//! The images pages: upload many files at once (drag and drop with progress per file, or a plain
//! form), optimize one with an options panel, compare before and after, read its analysis, and
//! see when it is deleted.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use pixeld_core::images::Upload;
use pixeld_core::page::PageRequest;
use pixeld_core::store::ImageRecord;
use uuid::Uuid;

use super::{Chrome, FormData, Web, message_of, page, page_with, see_other, status_of};
use crate::AppState;
use crate::extract::Query;

/// The routes of this module.
pub fn router(max_upload: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/images",
            get(list)
                .post(upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    // A form can carry several files.
                    max_upload.saturating_mul(8),
                )),
        )
        .route("/images/{id}", get(detail))
        .route("/images/{id}/optimize", post(optimize))
        .route("/images/{id}/describe", post(describe))
        .route("/images/{id}/delete", post(delete))
        .route("/images/{id}/thumbnail", get(thumbnail))
        .route("/images/{id}/original", get(original))
}

/// "in 23 h 5 min" until `t`.
pub(super) fn countdown(now: time::OffsetDateTime, t: time::OffsetDateTime) -> String {
    let left = (t - now).whole_minutes().max(0);
    match left {
        0 => "any minute now".into(),
        m if m < 60 => format!("in {m} min"),
        m => format!("in {} h {} min", m / 60, m % 60),
    }
}

/// `1.2 MB`.
pub(super) fn size(bytes: i64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} bytes"),
    }
}

struct ImageRow {
    id: Uuid,
    name: String,
    format: String,
    size: String,
    dims: String,
    expires: String,
    expires_at: String,
}

fn row(now: time::OffsetDateTime, i: &ImageRecord) -> ImageRow {
    ImageRow {
        id: i.id,
        name: i
            .filename
            .clone()
            .or_else(|| i.source_url.clone())
            .unwrap_or_else(|| "untitled".into()),
        format: i.format.to_uppercase(),
        size: size(i.bytes),
        dims: format!("{} × {}", i.width, i.height),
        expires: countdown(now, i.expires_at),
        expires_at: i
            .expires_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "images.html")]
struct ListPage {
    c: Chrome,
    images: Vec<ImageRow>,
    next_cursor: Option<String>,
    max_upload: String,
    uploaded: Vec<(Uuid, String)>,
    failed: Vec<(String, String)>,
}

#[derive(serde::Deserialize)]
struct ListQuery {
    cursor: Option<String>,
    done: Option<String>,
}

async fn list_view(st: &AppState, w: &Web, c: Chrome, cursor: Option<&str>) -> ListPage {
    let now = st.app.now();
    let (images, next_cursor) = match PageRequest::parse(cursor, Some(50)) {
        Ok(pr) => match st.app.images(w.principal(), pr).await {
            Ok(pg) => (
                pg.items.iter().map(|i| row(now, i)).collect(),
                pg.next_cursor,
            ),
            Err(_) => (Vec::new(), None),
        },
        Err(_) => (Vec::new(), None),
    };
    ListPage {
        c,
        images,
        next_cursor,
        max_upload: size(st.config.images.max_upload_bytes as i64),
        uploaded: Vec::new(),
        failed: Vec::new(),
    }
}

async fn list(State(st): State<AppState>, w: Web, Query(q): Query<ListQuery>) -> Response {
    let mut c = w.chrome("Images", "images");
    if q.done.as_deref() == Some("deleted") {
        c = c.notice("Image deleted, with every output made from it.");
    }
    page(&list_view(&st, &w, c, q.cursor.as_deref()).await)
}

/// The plain form's upload: every `file` field, each stored or refused on its own.
async fn upload(State(st): State<AppState>, w: Web, req: Request) -> Response {
    let mut mp = match Multipart::from_request(req, &st).await {
        Ok(m) => m,
        Err(e) => {
            let c = w.chrome("Images", "images").error(e.body_text());
            return page_with(StatusCode::BAD_REQUEST, &list_view(&st, &w, c, None).await);
        }
    };
    let mut uploaded = Vec::new();
    let mut failed = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                failed.push(("the form".to_string(), e.body_text()));
                break;
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("untitled").to_string();
        match field.bytes().await {
            Ok(b) if b.is_empty() && name.is_empty() => {}
            Ok(bytes) => {
                let up = Upload {
                    bytes: bytes.to_vec(),
                    filename: Some(name.clone()).filter(|n| !n.is_empty()),
                    source_url: None,
                };
                match st.app.upload_image(w.principal(), up).await {
                    Ok(rec) => uploaded.push((rec.id, name)),
                    Err(e) => failed.push((name, message_of(&e))),
                }
            }
            Err(e) => failed.push((name, e.body_text())),
        }
    }
    if uploaded.len() == 1 && failed.is_empty() {
        return see_other(&format!("/images/{}", uploaded[0].0));
    }
    let mut c = w.chrome("Images", "images");
    if uploaded.is_empty() && failed.is_empty() {
        c = c.error("Choose at least one image.");
    } else if !uploaded.is_empty() {
        c = c.notice(format!("{} uploaded.", uploaded.len()));
    }
    let status = if uploaded.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut v = list_view(&st, &w, c, None).await;
    v.uploaded = uploaded;
    v.failed = failed;
    page_with(status, &v)
}

/// The options panel, as the form sends it and as the image URL carries it.
#[derive(Debug, Clone, Default)]
struct Choice {
    width: String,
    height: String,
    fit: String,
    format: String,
    quality: String,
    lossless: bool,
    keep_metadata: bool,
}

impl Choice {
    fn from_form(f: &FormData) -> Self {
        Self {
            width: f.get("w").trim().to_string(),
            height: f.get("h").trim().to_string(),
            fit: f.opt("fit").unwrap_or("inside").to_string(),
            format: f.opt("format").unwrap_or("webp").to_string(),
            quality: f.get("q").trim().to_string(),
            lossless: f.checked("lossless"),
            keep_metadata: f.checked("metadata"),
        }
    }

    /// The query string of `/v1/images/{id}/content` with these options.
    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("w", &self.width),
            ("h", &self.height),
            ("fit", &self.fit),
            ("format", &self.format),
            ("q", &self.quality),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if self.lossless {
            q.append_pair("lossless", "true");
        }
        if self.keep_metadata {
            q.append_pair("metadata", "keep");
        }
        q.finish()
    }
}

struct Swatch {
    hex: String,
    percent: u32,
    x: u32,
    width: u32,
}

struct Result_ {
    url: String,
    size: String,
    dims: String,
    format: String,
    saved: String,
    larger: bool,
    filename: String,
}

#[derive(Template)]
#[template(path = "image.html")]
struct DetailPage {
    c: Chrome,
    img: ImageRow,
    displayable: bool,
    choice: Choice,
    swatches: Vec<Swatch>,
    placeholder: Option<String>,
    kind: String,
    brightness: u32,
    alpha: bool,
    animated: bool,
    icc: Option<String>,
    camera: Option<String>,
    taken_at: Option<String>,
    gps: bool,
    phash: String,
    blurhash: String,
    warnings: Vec<String>,
    result: Option<Result_>,
    description: Option<pixeld_core::describe::ImageDescription>,
    /// Who would receive the image when asked to describe it (none: not set up).
    describe_to: Option<String>,
    describe_price: i64,
}

async fn detail_view(st: &AppState, c: Chrome, img: &ImageRecord, choice: Choice) -> DetailPage {
    let a: Option<pixeld_imaging::Analysis> = serde_json::from_str(&img.analysis).ok();
    let mut swatches = Vec::new();
    let mut x = 0;
    if let Some(a) = &a {
        for p in &a.palette {
            let width = ((p.share * 300.0).round() as u32).max(1);
            swatches.push(Swatch {
                hex: format!("#{:02x}{:02x}{:02x}", p.color.r, p.color.g, p.color.b),
                percent: (p.share * 100.0).round() as u32,
                x,
                width,
            });
            x += width;
        }
    }
    let placeholder = a.as_ref().and_then(|a| {
        let png = pixeld_imaging::blurhash_png(
            &a.blurhash,
            32,
            32 * img.height.max(1) as u32 / img.width.max(1) as u32,
        )
        .ok()?;
        Some(format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        ))
    });
    let exif = a.as_ref().and_then(|a| a.exif.clone());
    DetailPage {
        c,
        img: row(st.app.now(), img),
        displayable: matches!(
            img.mime.as_str(),
            "image/jpeg" | "image/png" | "image/webp" | "image/gif" | "image/avif"
        ),
        choice,
        swatches,
        placeholder,
        kind: a
            .as_ref()
            .map(|a| match a.kind {
                pixeld_imaging::ImageKind::Photo => "photo",
                pixeld_imaging::ImageKind::Graphic => "graphic",
            })
            .unwrap_or("unknown")
            .into(),
        brightness: a
            .as_ref()
            .map_or(0, |a| (a.brightness * 100.0).round() as u32),
        alpha: a.as_ref().is_some_and(|a| a.has_alpha),
        animated: a.as_ref().is_some_and(|a| a.animated),
        icc: a.as_ref().and_then(|a| a.icc_profile.clone()),
        camera: exif.as_ref().and_then(|e| {
            let s = [e.make.as_deref(), e.model.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!s.is_empty()).then_some(s)
        }),
        taken_at: exif.as_ref().and_then(|e| e.taken_at.clone()),
        gps: exif.as_ref().is_some_and(|e| e.gps),
        phash: a.as_ref().map(|a| a.phash.clone()).unwrap_or_default(),
        blurhash: a.as_ref().map(|a| a.blurhash.clone()).unwrap_or_default(),
        warnings: a.map(|a| a.warnings).unwrap_or_default(),
        result: None,
        description: pixeld_core::describe::ImageDescription::from_stored(
            img.description.as_deref(),
        ),
        describe_to: st.app.ai.vision.as_ref().map(|v| v.recipient()),
        describe_price: st
            .app
            .settings
            .credits
            .prices
            .of(pixeld_core::credits::Metered::Describe),
    }
}

async fn detail(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.image(w.principal(), id).await {
        Ok(img) => {
            let c = w.chrome(image_title(&img), "images");
            let choice = Choice {
                format: "webp".into(),
                fit: "inside".into(),
                ..Choice::default()
            };
            page(&detail_view(&st, c, &img, choice).await)
        }
        Err(e) => not_found(&w, &e),
    }
}

fn image_title(img: &ImageRecord) -> String {
    img.filename.clone().unwrap_or_else(|| "Image".into())
}

fn not_found(w: &Web, e: &pixeld_core::Error) -> Response {
    super::framed_with(
        status_of(e),
        w.chrome("Image not found", "images"),
        "<p>It may have been deleted: uploads are kept at most 24 hours. <a href=\"/images\">Back to your images</a>.</p>",
    )
}

async fn optimize(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    f: FormData,
) -> Response {
    let img = match st.app.image(w.principal(), id).await {
        Ok(i) => i,
        Err(e) => return not_found(&w, &e),
    };
    let choice = Choice::from_form(&f);
    let query = choice.query();
    let opts = match pixeld_imaging::Options::from_query(&query) {
        Ok(o) => o,
        Err(e) => {
            let e = pixeld_core::Error::from(e);
            let c = w.chrome(image_title(&img), "images").error(message_of(&e));
            return page_with(status_of(&e), &detail_view(&st, c, &img, choice).await);
        }
    };
    match st
        .app
        .transform_image(w.principal(), id, opts, "optimize")
        .await
    {
        Ok(r) => {
            let saved = 1.0 - r.variant.bytes as f64 / img.bytes.max(1) as f64;
            let ext = match r.variant.format.as_str() {
                "jpeg" => "jpg",
                other => other,
            };
            let stem = img
                .filename
                .as_deref()
                .and_then(|n| n.rsplit_once('.').map(|(s, _)| s).or(Some(n)))
                .unwrap_or("image");
            let c = w.chrome(image_title(&img), "images");
            let mut v = detail_view(&st, c, &img, choice).await;
            v.result = Some(Result_ {
                url: format!("/v1/images/{id}/content?{query}"),
                size: size(r.variant.bytes),
                dims: format!("{} × {}", r.variant.width, r.variant.height),
                format: r.variant.format.to_uppercase(),
                saved: format!("{:.0}%", saved.abs() * 100.0),
                larger: saved < 0.0,
                filename: format!("{stem}-{}x{}.{ext}", r.variant.width, r.variant.height),
            });
            page(&v)
        }
        Err(e) => {
            let c = w.chrome(image_title(&img), "images").error(message_of(&e));
            page_with(status_of(&e), &detail_view(&st, c, &img, choice).await)
        }
    }
}

/// Asks the AI vision provider for alt text and tags, then shows the image page with them.
async fn describe(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    let img = match st.app.image(w.principal(), id).await {
        Ok(i) => i,
        Err(e) => return not_found(&w, &e),
    };
    match st.app.describe_image(w.principal(), id).await {
        Ok(_) => see_other(&format!("/images/{id}#description")),
        Err(e) => {
            let c = w.chrome(image_title(&img), "images").error(message_of(&e));
            let choice = Choice {
                format: "webp".into(),
                fit: "inside".into(),
                ..Choice::default()
            };
            page_with(status_of(&e), &detail_view(&st, c, &img, choice).await)
        }
    }
}

async fn delete(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.delete_image(w.principal(), id).await {
        Ok(()) => see_other("/images?done=deleted"),
        Err(e) => not_found(&w, &e),
    }
}

fn image_response(mime: &str, bytes: Vec<u8>) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A user's upload is never run as a document of this site.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    r
}

/// A small WebP preview; free (never charged), cached like any output.
async fn thumbnail(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.image_thumbnail(w.principal(), id).await {
        Ok(r) => image_response(&r.variant.mime, r.bytes),
        Err(e) => (status_of(&e), message_of(&e)).into_response(),
    }
}

/// The upload as it was sent, for the before/after comparison.
async fn original(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.image_original(w.principal(), id).await {
        Ok((img, bytes)) => image_response(&img.mime, bytes),
        Err(e) => (status_of(&e), message_of(&e)).into_response(),
    }
}
