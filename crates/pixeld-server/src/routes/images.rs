//! Picture Optimizer over HTTP: upload (multipart, raw body or URL), analysis, transformed
//! outputs with caching, optimize, delete, and the processing log.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pixeld_core::describe::ImageDescription;
use pixeld_core::images::Upload;
use pixeld_core::store::{ImageRecord, ProcessingLog};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::PageParams;
use crate::AppState;
use crate::extract::{Auth, Json, Path, Query};
use crate::problem::{ApiError, ApiResult};

/// The routes of this module.
pub fn router(max_upload_bytes: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/v1/images",
            get(list_images)
                .post(upload)
                .layer(axum::extract::DefaultBodyLimit::max(max_upload_bytes)),
        )
        .route("/v1/images/{id}", get(get_image).delete(delete_image))
        .route("/v1/images/{id}/content", get(content))
        .route("/v1/images/{id}/optimize", post(optimize))
        .route("/v1/images/{id}/describe", post(describe))
        .route("/v1/processing-logs", get(list_logs))
}

/// An uploaded image, its analysis and when it will be deleted.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageView {
    /// Id.
    pub id: Uuid,
    /// Original file name.
    pub filename: Option<String>,
    /// Where it was fetched from.
    pub source_url: Option<String>,
    /// Detected format.
    #[schema(example = "jpeg")]
    pub format: String,
    /// Media type.
    pub mime: String,
    /// Size in bytes.
    pub bytes: i64,
    /// Width as displayed.
    pub width: i32,
    /// Height as displayed.
    pub height: i32,
    /// SHA-256 of the bytes.
    pub sha256: String,
    /// Format, dimensions, alpha, animation, EXIF summary, ICC, blurhash, thumbhash, perceptual
    /// hash, dominant colour, palette, brightness, photo/graphic guess.
    #[schema(value_type = Object)]
    pub analysis: serde_json::Value,
    /// Alt text and tags from the AI vision provider, once asked for
    /// (`POST /v1/images/{id}/describe`).
    pub description: Option<DescriptionView>,
    /// Upload time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it and every output made from it are deleted (24 h after upload by default).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl From<&ImageRecord> for ImageView {
    fn from(i: &ImageRecord) -> Self {
        Self {
            id: i.id,
            filename: i.filename.clone(),
            source_url: i.source_url.clone(),
            format: i.format.clone(),
            mime: i.mime.clone(),
            bytes: i.bytes,
            width: i.width,
            height: i.height,
            sha256: i.sha256.clone(),
            analysis: serde_json::from_str(&i.analysis).unwrap_or(serde_json::Value::Null),
            description: ImageDescription::from_stored(i.description.as_deref())
                .map(DescriptionView::from),
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// What the AI vision provider said about an image.
#[derive(Debug, Serialize, ToSchema)]
pub struct DescriptionView {
    /// One or two sentences for the image's `alt` attribute.
    #[schema(example = "A red bicycle leaning against a brick wall.")]
    pub alt_text: String,
    /// Lowercase keywords.
    #[schema(example = json!(["bicycle", "red", "brick wall"]))]
    pub tags: Vec<String>,
    /// The model that wrote it.
    pub model: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub described_at: OffsetDateTime,
}

impl From<ImageDescription> for DescriptionView {
    fn from(d: ImageDescription) -> Self {
        Self {
            alt_text: d.alt_text,
            tags: d.tags,
            model: d.model,
            described_at: d.described_at,
        }
    }
}

/// A page of images.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImagePage {
    /// Items.
    pub items: Vec<ImageView>,
    /// Next page cursor.
    pub next_cursor: Option<String>,
}

/// An image to fetch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlUpload {
    /// An http(s) URL on the public internet.
    #[schema(example = "https://example.com/photo.jpg")]
    pub url: String,
}

/// A multipart upload: one field, `file`.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct FileUpload {
    /// The image file.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// The bytes of an image file.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct RawImage(Vec<u8>);

/// `?filename=` for raw uploads.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RawParams {
    /// File name to record for a raw-body upload.
    pub filename: Option<String>,
}

/// Uploads an image: `multipart/form-data` (field `file`), a raw body (`image/*` or
/// `application/octet-stream`), or JSON `{"url": …}` to fetch it. It is analysed at once and
/// deleted, with everything made from it, 24 hours after upload.
#[utoipa::path(post, path = "/v1/images", tag = "images", params(RawParams),
    request_body(description = "The image (JPEG, PNG, WebP, GIF, AVIF, HEIC, TIFF or BMP; \
        other bytes answer 415, a damaged image 422), as a form, as the raw body, or a URL to fetch.",
        content(
        (FileUpload = "multipart/form-data"),
        (UrlUpload = "application/json"),
        (RawImage = "application/octet-stream"),
        (RawImage = "image/jpeg"),
        (RawImage = "image/png"),
        (RawImage = "image/webp"),
    )),
    responses((status = 201, description = "Stored and analysed", body = ImageView)))]
pub async fn upload(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<RawParams>,
    req: Request,
) -> ApiResult<(StatusCode, Json<ImageView>)> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let record = if ct.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &st)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let mut found = None;
        while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(&e))? {
            if field.name() != Some("file") {
                return Err(ApiError::new(
                    "validation",
                    format!(
                        "unknown form field {:?}; send the image in one field named `file`",
                        field.name().unwrap_or("")
                    ),
                ));
            }
            if found.is_some() {
                return Err(ApiError::new(
                    "validation",
                    "the form has more than one `file` field",
                ));
            }
            let filename = field.file_name().map(str::to_string);
            let bytes = field.bytes().await.map_err(|e| multipart_error(&e))?;
            found = Some((filename, bytes));
        }
        let (filename, bytes) =
            found.ok_or_else(|| ApiError::new("validation", "the form has no `file` field"))?;
        st.app
            .upload_image(
                &p,
                Upload {
                    bytes: bytes.to_vec(),
                    filename,
                    source_url: None,
                },
            )
            .await?
    } else if ct.starts_with("application/json") {
        let Json(body) = Json::<UrlUpload>::from_request(req, &st).await?;
        st.app.upload_image_from_url(&p, &body.url).await?
    } else if ct.starts_with("image/") || ct.starts_with("application/octet-stream") {
        let bytes = Bytes::from_request(req, &st).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    "payload-too-large",
                    "the upload is larger than this server accepts",
                )
            } else {
                ApiError::bad_request(e.body_text())
            }
        })?;
        st.app
            .upload_image(
                &p,
                Upload {
                    bytes: bytes.to_vec(),
                    filename: q.filename,
                    source_url: None,
                },
            )
            .await?
    } else {
        return Err(ApiError::new(
            "unsupported-media-type",
            "send multipart/form-data with a `file` field, a raw image body, or JSON {\"url\": …}",
        ));
    };
    Ok((StatusCode::CREATED, Json(ImageView::from(&record))))
}

pub(crate) fn multipart_error(e: &axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            "payload-too-large",
            "the upload is larger than this server accepts",
        )
    } else {
        ApiError::bad_request(e.body_text())
    }
}

/// The organisation's images that have not expired yet.
#[utoipa::path(get, path = "/v1/images", tag = "images", params(PageParams),
    responses((status = 200, description = "A page of images", body = ImagePage)))]
pub async fn list_images(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<ImagePage>> {
    let page = st.app.images(&p, q.page()?).await?;
    Ok(Json(ImagePage {
        items: page.items.iter().map(ImageView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// An image and its analysis.
#[utoipa::path(get, path = "/v1/images/{id}", tag = "images", params(("id" = Uuid, Path, description = "Image id")),
    responses((status = 200, description = "The image", body = ImageView)))]
pub async fn get_image(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ImageView>> {
    Ok(Json(ImageView::from(&st.app.image(&p, id).await?)))
}

/// Deletes an image and every output made from it, now.
#[utoipa::path(delete, path = "/v1/images/{id}", tag = "images", params(("id" = Uuid, Path, description = "Image id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_image(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    st.app.delete_image(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn rendition_response(
    r: pixeld_core::images::Rendition,
    now: OffsetDateTime,
    headers: &HeaderMap,
) -> Response {
    let etag = format!("\"{}\"", r.variant.cache_key);
    let max_age = (r.source.expires_at - now).whole_seconds().max(0);
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        r.bytes.into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&r.variant.mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("private, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    // The output depends on Accept when the format is chosen automatically.
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(
        "x-pixeld-cache",
        HeaderValue::from_static(if r.cached { "hit" } else { "miss" }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{}x{}", r.variant.width, r.variant.height)) {
        h.insert("x-pixeld-dimensions", v);
    }
    resp
}

/// The image transformed by the query options (`w`, `h`, `fit`, `gravity`, `crop`, `rotate`,
/// `flip`, `flop`, `bg`, `blur`, `sharpen`, `format`, `q`, `lossless`, `progressive`, `effort`,
/// `chroma`, `trellis`, `palette`, `metadata`, `keep_gps`, `icc`). `format=auto` (the default)
/// picks the best format the `Accept` header allows. Outputs are cached and carry an `ETag`.
#[utoipa::path(get, path = "/v1/images/{id}/content", tag = "images",
    params(("id" = Uuid, Path, description = "Image id"), super::image_options::ContentParams),
    responses((status = 200, description = "The transformed image", content(
        (RawImage = "image/jpeg"), (RawImage = "image/png"), (RawImage = "image/webp"), (RawImage = "image/avif"))),
        (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn content(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let query = uri.query().unwrap_or("");
    let sigmas: Vec<(String, f64)> = url::form_urlencoded::parse(query.as_bytes())
        .filter_map(|(k, v)| Some((k.trim().to_ascii_lowercase(), v.trim().parse().ok()?)))
        .collect();
    super::image_options::check_sigmas(sigmas.iter().map(|(k, v)| (k.as_str(), *v)))
        .map_err(pixeld_core::Error::from)?;
    let mut opts = pixeld_imaging::Options::from_query(query).map_err(pixeld_core::Error::from)?;
    opts.accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let r = st.app.transform_image(&p, id, opts, "transform").await?;
    Ok(rendition_response(r, st.app.now(), &headers))
}

/// Processing options from a JSON object. `Options` alone would also take a JSON array
/// (serde reads a struct from a sequence by position); the documented body is an object.
pub struct OptionsBody(pub pixeld_imaging::Options);

impl<'de> Deserialize<'de> for OptionsBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        super::image_options::check_sigmas(
            ["blur", "sharpen"]
                .into_iter()
                .filter_map(|k| Some((k, map.get(k)?.as_f64()?))),
        )
        .map_err(serde::de::Error::custom)?;
        pixeld_imaging::Options::deserialize(serde_json::Value::Object(map))
            .map(OptionsBody)
            .map_err(serde::de::Error::custom)
    }
}

/// The result of an optimize request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Optimized {
    /// Output format.
    pub format: String,
    /// Output media type.
    pub mime: String,
    /// Output width.
    pub width: i32,
    /// Output height.
    pub height: i32,
    /// Output size.
    pub bytes: i64,
    /// Source size.
    pub source_bytes: i64,
    /// `1 - bytes / source_bytes` (negative if the output is larger).
    pub savings: f64,
    /// Whether an identical earlier request was reused.
    pub cached: bool,
    /// The output inline, base64 (for small outputs; fetch the bytes with `GET …/content` and the
    /// same options otherwise).
    pub data_base64: Option<String>,
}

/// Transforms with JSON options (same names as the query, long form: `width`, `height`,
/// `quality`, …). Answers with the output image when `Accept` asks for an image, else with a
/// JSON summary (and the output inline as base64 up to 1 MiB).
#[utoipa::path(post, path = "/v1/images/{id}/optimize", tag = "images", params(("id" = Uuid, Path, description = "Image id")),
    request_body(content = super::image_options::OptionsDoc, description = "Processing options"),
    responses((status = 200, description = "Optimized", content(
        (Optimized = "application/json"), (RawImage = "image/jpeg"), (RawImage = "image/png"), (RawImage = "image/webp"), (RawImage = "image/avif")))))]
pub async fn optimize(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(OptionsBody(mut opts)): Json<OptionsBody>,
) -> ApiResult<Response> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    opts.accept = Some(accept.clone());
    let r = st.app.transform_image(&p, id, opts, "optimize").await?;
    if accept.split(',').any(|a| a.trim().starts_with("image/"))
        && !accept.contains("application/json")
    {
        return Ok(rendition_response(r, st.app.now(), &headers));
    }
    use base64::Engine as _;
    let data_base64 = (r.bytes.len() <= 1024 * 1024)
        .then(|| base64::engine::general_purpose::STANDARD.encode(&r.bytes));
    Ok(Json(Optimized {
        format: r.variant.format.clone(),
        mime: r.variant.mime.clone(),
        width: r.variant.width,
        height: r.variant.height,
        bytes: r.variant.bytes,
        source_bytes: r.source.bytes,
        savings: if r.source.bytes > 0 {
            1.0 - r.variant.bytes as f64 / r.source.bytes as f64
        } else {
            0.0
        },
        cached: r.cached,
        data_base64,
    })
    .into_response())
}

/// Asks the AI vision provider for the image's alt text and tags, keeps them with the image
/// (they are deleted with it) and returns them. Costs the `describe` price, charged only when
/// it succeeds. The provider gets a copy at most 1024 px on its longer side, re-encoded as JPEG
/// without metadata, and no user or organisation identifier. Refused with
/// `processing-restricted` when the caller or the uploader restricted processing or objected to
/// AI providers, and with `not-configured` when the instance has no vision provider.
#[utoipa::path(post, path = "/v1/images/{id}/describe", tag = "images", params(("id" = Uuid, Path, description = "Image id")),
    responses((status = 200, description = "The description", body = DescriptionView),
        (status = 403, description = "Processing restricted", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "No vision provider configured", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed; nothing was charged", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn describe(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DescriptionView>> {
    Ok(Json(st.app.describe_image(&p, id).await?.into()))
}

/// A processing log row.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogView {
    /// Id.
    pub id: Uuid,
    /// Token used, if any.
    pub token_id: Option<Uuid>,
    /// Image, if any.
    pub image_id: Option<Uuid>,
    /// `upload`, `transform`, `optimize`, `describe`, `delete`.
    pub op: String,
    /// Bytes read.
    pub bytes_in: i64,
    /// Bytes produced.
    pub bytes_out: i64,
    /// Milliseconds.
    pub ms: i64,
    /// `ok`, `cached` or a problem kind.
    pub status: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&ProcessingLog> for LogView {
    fn from(l: &ProcessingLog) -> Self {
        Self {
            id: l.id,
            token_id: l.token_id,
            image_id: l.image_id,
            op: l.op.clone(),
            bytes_in: l.bytes_in,
            bytes_out: l.bytes_out,
            ms: l.ms,
            status: l.status.clone(),
            created_at: l.created_at,
        }
    }
}

/// A page of processing log rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    /// Items.
    pub items: Vec<LogView>,
    /// Next page cursor.
    pub next_cursor: Option<String>,
}

/// The organisation's processing log (kept 90 days).
#[utoipa::path(get, path = "/v1/processing-logs", tag = "images", params(PageParams),
    responses((status = 200, description = "A page of log rows", body = LogPage)))]
pub async fn list_logs(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<LogPage>> {
    let page = st.app.processing_logs(&p, q.page()?).await?;
    Ok(Json(LogPage {
        items: page.items.iter().map(LogView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::OptionsBody;

    #[test]
    fn optimize_options_are_a_json_object() {
        // serde would read `Options` from an array by position; the documented body is an object.
        assert!(serde_json::from_str::<OptionsBody>("[null, null]").is_err());
        assert!(serde_json::from_str::<OptionsBody>("[]").is_err());
        let ok = serde_json::from_str::<OptionsBody>(r#"{"width": 800, "format": "webp"}"#);
        assert_eq!(ok.unwrap().0.width, Some(800));
        assert!(serde_json::from_str::<OptionsBody>(r#"{"sharpen": 100.00000000000003}"#).is_err());
        assert!(serde_json::from_str::<OptionsBody>(r#"{"bogus": 1}"#).is_err());
    }
}
