//! Fonts an organisation uploads for its templates.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::get;
use pixeld_core::store::FontRecord;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::extract::{Auth, Json, Path};
use crate::problem::{ApiError, ApiResult};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/fonts",
            get(list_fonts)
                .post(upload_font)
                .layer(axum::extract::DefaultBodyLimit::max(
                    pixeld_render::MAX_FONT_BYTES + 64 * 1024,
                )),
        )
        .route("/v1/fonts/{id}", axum::routing::delete(delete_font))
}

/// An uploaded font.
#[derive(Debug, Serialize, ToSchema)]
pub struct FontView {
    /// Id.
    pub id: Uuid,
    /// The family names it provides: use one as a text layer's `font.family`.
    pub families: Vec<String>,
    /// The uploaded file's name.
    pub file_name: Option<String>,
    /// `ttf`, `otf`, `woff` or `woff2`.
    pub format: String,
    /// Size in bytes.
    pub bytes: i64,
    /// SHA-256 of the file (hex).
    pub sha256: String,
    /// Upload time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&FontRecord> for FontView {
    fn from(f: &FontRecord) -> Self {
        Self {
            id: f.id,
            families: pixeld_core::fonts::families(f),
            file_name: f.file_name.clone(),
            format: f.format.clone(),
            bytes: f.bytes,
            sha256: f.sha256.clone(),
            created_at: f.created_at,
        }
    }
}

/// A font file sent as a form.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct FontForm {
    /// The font file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A font file as the raw body.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct RawFont(Vec<u8>);

/// Uploads a font (TTF, OTF, WOFF or WOFF2, at most 32 MiB) for the organisation's templates.
/// Every face in the file must load; the answer lists the family names it provides.
#[utoipa::path(post, path = "/v1/fonts", tag = "templates",
    request_body(description = "The font file, as a form field `file` or as the raw body", content(
        (FontForm = "multipart/form-data"),
        (RawFont = "application/octet-stream"),
        (RawFont = "font/ttf"),
        (RawFont = "font/otf"),
        (RawFont = "font/woff"),
        (RawFont = "font/woff2"),
    )),
    responses((status = 201, description = "Stored", body = FontView)))]
pub async fn upload_font(
    State(st): State<AppState>,
    Auth(p): Auth,
    req: Request,
) -> ApiResult<(StatusCode, Json<FontView>)> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (file_name, bytes) = if ct.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &st)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let mut found = None;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| super::images::multipart_error(&e))?
        {
            if field.name() != Some("file") || found.is_some() {
                return Err(ApiError::new(
                    "validation",
                    "send the font in exactly one form field named `file`",
                ));
            }
            let name = field.file_name().map(str::to_string);
            let bytes = field
                .bytes()
                .await
                .map_err(|e| super::images::multipart_error(&e))?;
            found = Some((name, bytes.to_vec()));
        }
        found.ok_or_else(|| ApiError::new("validation", "the form has no `file` field"))?
    } else if ct.starts_with("font/") || ct.starts_with("application/octet-stream") {
        let bytes = Bytes::from_request(req, &st).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new("payload-too-large", "the font is larger than 32 MiB")
            } else {
                ApiError::bad_request(e.body_text())
            }
        })?;
        (None, bytes.to_vec())
    } else {
        return Err(ApiError::new(
            "unsupported-media-type",
            "send the font as multipart/form-data (field `file`), font/* or application/octet-stream",
        ));
    };
    let f = st.app.upload_font(&p, bytes, file_name).await?;
    Ok((StatusCode::CREATED, Json(FontView::from(&f))))
}

/// The organisation's fonts, oldest first (at most 50).
#[utoipa::path(get, path = "/v1/fonts", tag = "templates",
    responses((status = 200, description = "Fonts", body = Vec<FontView>)))]
pub async fn list_fonts(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<Vec<FontView>>> {
    let fonts = st.app.fonts(&p).await?;
    Ok(Json(fonts.iter().map(FontView::from).collect()))
}

/// Deletes a font: templates naming only its families answer `unknown-font` again.
#[utoipa::path(delete, path = "/v1/fonts/{id}", tag = "templates",
    params(("id" = Uuid, Path, description = "Font id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_font(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    st.app.delete_font(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
