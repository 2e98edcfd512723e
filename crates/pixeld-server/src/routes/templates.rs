//! PixelDrive over HTTP: templates with versions, renders (synchronous, cached), signed render
//! URLs for og:image use, and the signing keys behind them.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pixeld_core::render_jobs::AsyncOptions;
use pixeld_core::store::{SigningKey, TemplateRecord, TemplateVersion};
use pixeld_core::templates::{RenderRequest, RenderResult, TemplateWithVersion};
use pixeld_render::{Format, Modification};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::PageParams;
use crate::AppState;
use crate::extract::{Auth, Json, Path, Query};
use crate::problem::{ApiError, ApiResult};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/templates", get(list_templates).post(create_template))
        .route(
            "/v1/templates/{id}",
            get(get_template).put(save_template).delete(delete_template),
        )
        .route("/v1/templates/{id}/versions", get(list_versions))
        .route("/v1/templates/{id}/versions/{version}", get(get_version))
        .route("/v1/templates/{id}/preview", post(preview))
        .route("/v1/templates/{id}/thumbnail", get(thumbnail))
        .route("/v1/renders", post(create_render))
        .route("/v1/renders/{key}", get(get_render))
        .route("/v1/signing-keys", get(list_keys).post(create_key))
        .route("/v1/signing-keys/{id}", axum::routing::delete(revoke_key))
        .route("/r/{file}", get(signed_render))
        .route("/schemas/template-v1.json", get(template_schema))
}

/// The JSON Schema of templates (version 1).
#[utoipa::path(get, path = "/schemas/template-v1.json", tag = "templates",
    responses((status = 200, description = "JSON Schema (draft 2020-12)", body = Object)))]
pub async fn template_schema() -> Response {
    let mut r = Json(pixeld_render::json_schema()).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// A template and the content of one version.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The version shown.
    pub version: i32,
    /// The newest version.
    pub latest_version: i32,
    /// The template (schema: `/schemas/template-v1.json`).
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last save.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&TemplateWithVersion> for TemplateView {
    fn from(t: &TemplateWithVersion) -> Self {
        Self {
            id: t.template.id,
            name: t.template.name.clone(),
            version: t.version.version,
            latest_version: t.template.latest_version,
            template: serde_json::from_str(&t.version.body).unwrap_or_default(),
            created_at: t.template.created_at,
            updated_at: t.template.updated_at,
        }
    }
}

/// A template in a list (without its content).
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateSummary {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The newest version.
    pub latest_version: i32,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last save.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// A 400 px wide WebP of the latest version with sample data (same credential).
    pub thumbnail_url: String,
}

impl TemplateSummary {
    fn new(t: &TemplateRecord, base: &str) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            latest_version: t.latest_version,
            created_at: t.created_at,
            updated_at: t.updated_at,
            thumbnail_url: format!(
                "{base}/v1/templates/{}/thumbnail?v={}",
                t.id, t.latest_version
            ),
        }
    }
}

/// A page of templates.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplatePage {
    /// Items.
    pub items: Vec<TemplateSummary>,
    /// Next page cursor.
    pub next_cursor: Option<String>,
}

/// A new template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    /// Display name (1–120 characters).
    #[schema(example = "Blog card")]
    pub name: String,
    /// The template (schema: `/schemas/template-v1.json`).
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
}

/// A save: a new immutable version, and optionally a new name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveTemplate {
    /// New display name.
    pub name: Option<String>,
    /// The template (schema: `/schemas/template-v1.json`).
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
    /// The version this edit started from; the save is refused (409) if someone saved since.
    pub base_version: Option<i32>,
}

/// One saved version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummary {
    /// Version number.
    pub version: i32,
    /// Who saved it.
    pub created_by: Uuid,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&TemplateVersion> for VersionSummary {
    fn from(v: &TemplateVersion) -> Self {
        Self {
            version: v.version,
            created_by: v.created_by,
            created_at: v.created_at,
        }
    }
}

/// Versions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionPage {
    /// Items.
    pub items: Vec<VersionSummary>,
    /// Pass as `before` for older versions; absent on the last page.
    pub next_before: Option<i32>,
}

/// Paging of versions.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VersionParams {
    /// Versions older than this one.
    #[param(minimum = 1)]
    pub before: Option<i32>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// A Bannerbear-style layer change.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModificationBody {
    /// The layer's name.
    pub name: String,
    /// New text (text layers).
    pub text: Option<String>,
    /// New image source (image layers).
    pub image_url: Option<String>,
    /// New colour.
    pub color: Option<String>,
    /// Hide or show.
    pub hidden: Option<bool>,
    /// New data (QR and barcode layers).
    pub data: Option<String>,
}

impl From<ModificationBody> for Modification {
    fn from(m: ModificationBody) -> Self {
        Modification {
            name: m.name,
            text: m.text,
            image_url: m.image_url,
            color: m.color,
            hidden: m.hidden,
            data: m.data,
        }
    }
}

/// A render request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderBody {
    /// Template id.
    pub template: Uuid,
    /// Version (the latest by default).
    pub version: Option<i32>,
    /// Variable values (strings, numbers or booleans).
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
    /// Layer changes by name.
    #[serde(default)]
    pub modifications: Vec<ModificationBody>,
    /// `png` (default), `jpeg`, `webp`, `avif`, `svg` or `pdf` (vector, with a text layer; page size
    /// from the template's `page.dpi`).
    pub format: Option<String>,
    /// Quality 1–100 for lossy formats.
    #[schema(minimum = 1, maximum = 100)]
    pub quality: Option<u8>,
    /// Device pixel ratio 1–4.
    #[schema(minimum = 1, maximum = 4)]
    pub scale: Option<f32>,
    /// Render in the background: answer 202 with a render id at once; the outcome is at
    /// `GET /v1/render-jobs/{id}` and, with `webhook_url`, POSTed there.
    #[serde(rename = "async", default)]
    pub run_async: bool,
    /// With `async`: where to POST `render.completed` / `render.failed`, signed with the
    /// organisation's webhook secret (`Pixeld-Signature`).
    #[schema(max_length = 2048)]
    pub webhook_url: Option<String>,
    /// With `async`: any JSON (at most 4 KiB), echoed in the render's status and webhook.
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
}

/// A preview request: sample data (variables' `example`s fill the rest).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// Variable values.
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
    /// Layer changes by name.
    #[serde(default)]
    pub modifications: Vec<ModificationBody>,
}

/// A finished render, when JSON is asked for (`Accept: application/json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderView {
    /// The render's content key (also its ETag).
    pub id: String,
    /// Where to download it (with the same credential).
    pub url: String,
    /// Format.
    pub format: String,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// Size in bytes.
    pub bytes: i64,
    /// Served from the render cache.
    pub cached: bool,
}

/// A signing key for render URLs.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyView {
    /// Id.
    pub id: Uuid,
    /// The HMAC key: sign `{template}.{ext}?{sorted query}` with HMAC-SHA256, hex, as `sig`.
    pub secret: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stopped being accepted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&SigningKey> for SigningKeyView {
    fn from(k: &SigningKey) -> Self {
        Self {
            id: k.id,
            secret: k.secret.clone(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// The bytes of a rendered image.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct RenderedImage(Vec<u8>);

fn data_of(v: Option<serde_json::Value>) -> ApiResult<pixeld_render::Data> {
    match v {
        None => Ok(pixeld_render::Data::new()),
        Some(v) => pixeld_render::data_from_json(&v)
            .map_err(|e| ApiError::from(pixeld_core::Error::from(e))),
    }
}

fn image_response(r: &RenderResult, headers: &HeaderMap, cache_control: &str) -> Response {
    let etag = format!("\"{}\"", r.entry.cache_key);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        r.bytes.as_ref().clone().into_response()
    };
    let h = resp.headers_mut();
    let mime =
        Format::parse(&r.entry.format).map_or("application/octet-stream", Format::content_type);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(
        "x-pixeld-cache",
        HeaderValue::from_static(if r.cached { "hit" } else { "miss" }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{}x{}", r.entry.width, r.entry.height)) {
        h.insert("x-pixeld-dimensions", v);
    }
    resp
}

/// Creates a template (version 1). The template is checked fully: unknown properties, limits,
/// colours, fonts.
#[utoipa::path(post, path = "/v1/templates", tag = "templates", request_body = NewTemplate,
    responses((status = 201, description = "Created", body = TemplateView)))]
pub async fn create_template(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(body): Json<NewTemplate>,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    let t = st
        .app
        .create_template(&p, &body.name, &body.template)
        .await?;
    Ok((StatusCode::CREATED, Json(TemplateView::from(&t))))
}

/// The organisation's templates.
#[utoipa::path(get, path = "/v1/templates", tag = "templates", params(PageParams),
    responses((status = 200, description = "A page of templates", body = TemplatePage)))]
pub async fn list_templates(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<TemplatePage>> {
    let page = st.app.templates(&p, q.page()?).await?;
    Ok(Json(TemplatePage {
        items: page
            .items
            .iter()
            .map(|t| TemplateSummary::new(t, &st.config.public_url()))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A template at its latest version.
#[utoipa::path(get, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id")),
    responses((status = 200, description = "The template", body = TemplateView)))]
pub async fn get_template(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<TemplateView>> {
    Ok(Json(TemplateView::from(
        &st.app.template(&p, id, None).await?,
    )))
}

/// Saves a new version. Earlier versions stay as they were (renders may pin one).
#[utoipa::path(put, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id")), request_body = SaveTemplate,
    responses((status = 200, description = "Saved as a new version", body = TemplateView)))]
pub async fn save_template(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(body): Json<SaveTemplate>,
) -> ApiResult<Json<TemplateView>> {
    let t = st
        .app
        .save_template(
            &p,
            id,
            body.name.as_deref(),
            &body.template,
            body.base_version,
        )
        .await?;
    Ok(Json(TemplateView::from(&t)))
}

/// Deletes a template, all its versions and its cached renders.
#[utoipa::path(delete, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_template(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    st.app.delete_template(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A template's version history, newest first.
#[utoipa::path(get, path = "/v1/templates/{id}/versions", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id"), VersionParams),
    responses((status = 200, description = "Versions", body = VersionPage)))]
pub async fn list_versions(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<VersionParams>,
) -> ApiResult<Json<VersionPage>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new("validation", "limit must be 1–100"));
    }
    let items = st.app.template_versions(&p, id, q.before, limit).await?;
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|v| v.version))
        .flatten()
        .filter(|&v| v > 1);
    Ok(Json(VersionPage {
        items: items.iter().map(VersionSummary::from).collect(),
        next_before,
    }))
}

/// One version of a template (to view or restore: save its `template` as a new version).
#[utoipa::path(get, path = "/v1/templates/{id}/versions/{version}", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id"), ("version" = i32, Path, description = "Version")),
    responses((status = 200, description = "The version", body = TemplateView)))]
pub async fn get_version(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((id, version)): Path<(Uuid, i32)>,
) -> ApiResult<Json<TemplateView>> {
    Ok(Json(TemplateView::from(
        &st.app.template(&p, id, Some(version)).await?,
    )))
}

/// A quick WebP preview of the latest version, with sample data (each variable's `example`,
/// else its default, else its name in braces), for editors.
#[utoipa::path(post, path = "/v1/templates/{id}/preview", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id")), request_body = PreviewBody,
    responses((status = 200, description = "The preview", content((RenderedImage = "image/webp")))))]
pub async fn preview(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<PreviewBody>,
) -> ApiResult<Response> {
    let tv = st.app.template(&p, id, None).await?;
    let mut data = pixeld_core::templates::sample_data(&tv.version.body)?;
    data.extend(data_of(body.data)?);
    let r = st
        .app
        .preview(
            &p,
            RenderRequest {
                template_id: id,
                version: Some(tv.version.version),
                data,
                modifications: body.modifications.into_iter().map(Into::into).collect(),
                format: Some(Format::Webp),
                quality: Some(70),
                scale: None,
            },
        )
        .await?;
    Ok(image_response(&r, &headers, "private, no-cache"))
}

/// Query of a thumbnail URL.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailParams {
    /// The version the list showed (only makes the URL change when the template does).
    #[param(minimum = 1)]
    pub v: Option<i32>,
}

/// A 400 px wide WebP of the template's latest version with sample data (each variable's
/// `example`, else its default, else its name in braces). Made once per version and cached.
#[utoipa::path(get, path = "/v1/templates/{id}/thumbnail", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id"), ThumbnailParams),
    responses((status = 200, description = "The thumbnail", content((RenderedImage = "image/webp"))),
        (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn thumbnail(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<ThumbnailParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if q.v.is_some_and(|v| v < 1) {
        return Err(
            pixeld_core::Error::invalid("v", "must be a version number (1 or more)").into(),
        );
    }
    let r = st.app.template_thumbnail(&p, id).await?;
    Ok(image_response(&r, &headers, "private, max-age=86400"))
}

/// Renders a template. Answers the image itself, or JSON with a download URL when the request
/// prefers `application/json`. Identical requests are served from the render cache
/// (`X-Pixeld-Cache: hit`) and identical concurrent ones render once. With `"async": true`
/// the answer is 202 and the render's status; a worker renders it and calls `webhook_url`.
#[utoipa::path(post, path = "/v1/renders", tag = "templates", request_body = RenderBody,
    responses((status = 200, description = "The rendered image, or its description", content(
        (RenderedImage = "image/png"), (RenderedImage = "image/jpeg"), (RenderedImage = "image/webp"),
        (RenderedImage = "image/avif"), (RenderedImage = "image/svg+xml"), (RenderedImage = "application/pdf"),
        (RenderView = "application/json"))),
        (status = 202, description = "Accepted (`async`): the render's status", body = super::webhooks::RenderJobView,
            headers(("Location" = String, description = "The status URL")))))]
pub async fn create_render(
    State(st): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Json(body): Json<RenderBody>,
) -> ApiResult<Response> {
    let format = match body.format.as_deref() {
        None => None,
        Some(f) => Some(Format::parse(f).ok_or_else(|| {
            ApiError::new(
                "validation",
                "format must be png, jpeg, webp, avif, svg or pdf",
            )
        })?),
    };
    let req = RenderRequest {
        template_id: body.template,
        version: body.version,
        data: data_of(body.data)?,
        modifications: body.modifications.into_iter().map(Into::into).collect(),
        format,
        quality: body.quality,
        scale: body.scale,
    };
    if body.run_async {
        let job = st
            .app
            .render_async(
                &p,
                req,
                AsyncOptions {
                    webhook_url: body.webhook_url,
                    metadata: body.metadata,
                    batch: None,
                },
            )
            .await?;
        let view = super::webhooks::RenderJobView::new(&job, &st.config.public_url());
        let location = format!("/v1/render-jobs/{}", job.id);
        let mut resp = (StatusCode::ACCEPTED, Json(view)).into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(resp);
    }
    if body.webhook_url.is_some() || body.metadata.is_some() {
        let field = if body.webhook_url.is_some() {
            "webhook_url"
        } else {
            "metadata"
        };
        return Err(pixeld_core::Error::invalid(field, "goes with \"async\": true").into());
    }
    let r = st.app.render(&p, req).await?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("image/"));
    if wants_json {
        let url = format!(
            "{}/v1/renders/{}",
            st.config.public_url(),
            r.entry.cache_key
        );
        return Ok(Json(RenderView {
            id: r.entry.cache_key.clone(),
            url,
            format: r.entry.format.clone(),
            width: r.entry.width,
            height: r.entry.height,
            bytes: r.entry.bytes,
            cached: r.cached,
        })
        .into_response());
    }
    Ok(image_response(&r, &headers, "private, max-age=86400"))
}

/// A finished render by id (the URL of a JSON render answer).
#[utoipa::path(get, path = "/v1/renders/{key}", tag = "templates",
    params(("key" = String, Path, description = "Render id")),
    responses((status = 200, description = "The image", content((RenderedImage = "image/png"))),
        (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn get_render(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::new("not-found", "no such render"));
    }
    let r = st.app.cached_render_for(&p, &key).await?;
    Ok(image_response(&r, &headers, "private, max-age=86400"))
}

/// A render from a signed URL, for `og:image` and `<img>` tags: no credential, the signature
/// is the permission. `/r/{template}.{png|jpeg|webp|avif|svg|pdf}?{variables}&sig={hex}`; optional
/// `v` (version), `q` (quality), `scale`. A missing or wrong signature answers 403.
#[utoipa::path(get, path = "/r/{file}", tag = "templates",
    params(("file" = String, Path, description = "`{template id}.{format}`"),
        ("sig" = String, Query, description = "hex HMAC-SHA256 of `{template}.{ext}?{other parameters sorted and form-encoded}` with an organisation signing key")),
    responses((status = 200, description = "The image", content((RenderedImage = "image/png"))),
        (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn signed_render(
    State(st): State<AppState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (id, ext) = file.rsplit_once('.').ok_or_else(|| {
        ApiError::new(
            "not-found",
            "render URLs end in .png, .jpeg, .webp, .avif, .svg or .pdf",
        )
    })?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::new("not-found", "no such template"))?;
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let r = st.app.render_signed(id, ext, &params).await?;
    Ok(image_response(
        &r,
        &headers,
        "public, max-age=86400, immutable",
    ))
}

/// Creates a signing key. Rotate by creating a new key, moving your URLs to it, then revoking
/// the old one; both are accepted in between.
#[utoipa::path(post, path = "/v1/signing-keys", tag = "templates",
    responses((status = 201, description = "Created", body = SigningKeyView)))]
pub async fn create_key(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<(StatusCode, Json<SigningKeyView>)> {
    let k = st.app.create_signing_key(&p).await?;
    Ok((StatusCode::CREATED, Json(SigningKeyView::from(&k))))
}

/// The organisation's signing keys, newest first.
#[utoipa::path(get, path = "/v1/signing-keys", tag = "templates",
    responses((status = 200, description = "Keys", body = Vec<SigningKeyView>)))]
pub async fn list_keys(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<Vec<SigningKeyView>>> {
    let keys = st.app.signing_keys(&p).await?;
    Ok(Json(keys.iter().map(SigningKeyView::from).collect()))
}

/// Revokes a signing key: URLs signed with it answer 403 from now on.
#[utoipa::path(delete, path = "/v1/signing-keys/{id}", tag = "templates",
    params(("id" = Uuid, Path, description = "Key id")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_key(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    st.app.revoke_signing_key(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
