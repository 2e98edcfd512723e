//! Templates in the browser: the list with thumbnails, and the editor — the template's JSON
//! with its layer tree, sample data for its variables, a preview that is the server's own render
//! of the unsaved draft (debounced by htmx, cached by content), saving versions, restoring an
//! old one, and the API call (curl and a signed URL) that renders it.

use askama::Template as _;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use pixeld_core::page::PageRequest;
use pixeld_core::store::TemplateVersion;
use uuid::Uuid;

use super::{Chrome, FormData, Web, message_of, page, page_with, see_other, status_of, when};
use crate::AppState;
use crate::extract::Query;

/// What a new template starts from: the example card of the README.
pub(super) const STARTER: &str = include_str!("../../../../examples/templates/og-card.json");

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", get(list).post(create))
        .route("/templates/{id}", get(editor))
        .route("/templates/{id}/preview", post(preview))
        .route("/templates/{id}/props", post(props_fragment))
        .route("/templates/{id}/apply", post(apply))
        .route("/templates/{id}/save", post(save))
        .route("/templates/{id}/restore", post(restore))
        .route("/templates/{id}/signing-key", post(new_signing_key))
        .route("/templates/{id}/thumbnail", get(thumbnail))
}

struct Card {
    id: Uuid,
    name: String,
    version: i32,
    updated: String,
}

#[derive(askama::Template)]
#[template(path = "templates.html")]
struct ListPage {
    c: Chrome,
    templates: Vec<Card>,
    next_cursor: Option<String>,
}

#[derive(serde::Deserialize)]
struct ListQuery {
    cursor: Option<String>,
}

async fn list_view(st: &AppState, w: &Web, c: Chrome, cursor: Option<&str>) -> ListPage {
    let (templates, next_cursor) = match PageRequest::parse(cursor, Some(50)) {
        Ok(pr) => match st.app.templates(w.principal(), pr).await {
            Ok(pg) => (
                pg.items
                    .iter()
                    .map(|t| Card {
                        id: t.id,
                        name: t.name.clone(),
                        version: t.latest_version,
                        updated: when(t.updated_at),
                    })
                    .collect(),
                pg.next_cursor,
            ),
            Err(_) => (Vec::new(), None),
        },
        Err(_) => (Vec::new(), None),
    };
    ListPage {
        c,
        templates,
        next_cursor,
    }
}

async fn list(State(st): State<AppState>, w: Web, Query(q): Query<ListQuery>) -> Response {
    let c = w.chrome("Templates", "templates");
    page(&list_view(&st, &w, c, q.cursor.as_deref()).await)
}

async fn create(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let starter: serde_json::Value =
        serde_json::from_str(STARTER).unwrap_or_else(|_| serde_json::json!({}));
    let name = f.opt("name").unwrap_or("Untitled card");
    match st.app.create_template(w.principal(), name, &starter).await {
        Ok(t) => see_other(&format!("/templates/{}", t.template.id)),
        Err(e) => {
            let c = w.chrome("Templates", "templates").error(message_of(&e));
            page_with(status_of(&e), &list_view(&st, &w, c, None).await)
        }
    }
}

/// A layer in the tree, indented by depth.
struct LayerItem {
    name: String,
    kind: String,
    depth: usize,
    selected: bool,
}

fn layer_tree(body: &serde_json::Value, selected: Option<&str>) -> Vec<LayerItem> {
    fn walk(
        layers: &serde_json::Value,
        depth: usize,
        selected: Option<&str>,
        out: &mut Vec<LayerItem>,
    ) {
        for l in layers.as_array().into_iter().flatten() {
            let name = l["name"].as_str().unwrap_or("(unnamed)").to_string();
            out.push(LayerItem {
                selected: selected == Some(name.as_str()),
                name,
                kind: l["type"].as_str().unwrap_or("?").to_string(),
                depth,
            });
            walk(&l["children"], depth + 1, selected, out);
        }
    }
    let mut out = Vec::new();
    walk(&body["layers"], 0, selected, &mut out);
    out
}

/// The layer called `name`, anywhere in the tree.
fn find_layer<'a>(
    layers: &'a mut serde_json::Value,
    name: &str,
) -> Option<&'a mut serde_json::Map<String, serde_json::Value>> {
    for l in layers.as_array_mut()?.iter_mut() {
        if l["name"].as_str() == Some(name) {
            return l.as_object_mut();
        }
        // `get_mut`, not indexing: indexing would add `"children": null` to every leaf.
        if let Some(found) = l.get_mut("children").and_then(|c| find_layer(c, name)) {
            return Some(found);
        }
    }
    None
}

/// One editable property of the selected layer.
struct Prop {
    key: String,
    /// `number`, `text` or `bool`.
    kind: &'static str,
    value: String,
    checked: bool,
}

/// The properties panel: the selected layer's plain values as inputs; nested ones (fonts,
/// gradients, padding) are named and left to the JSON.
#[derive(askama::Template)]
#[template(path = "template_props.html")]
struct PropsPanel {
    id: Uuid,
    layer: Option<String>,
    kind: String,
    props: Vec<Prop>,
    complex: Vec<String>,
    error: Option<String>,
}

/// Keys the tree and the panel show in other ways.
const STRUCTURAL: [&str; 3] = ["type", "name", "children"];

fn props_panel(id: Uuid, body: &str, layer: Option<&str>) -> PropsPanel {
    let mut panel = PropsPanel {
        id,
        layer: None,
        kind: String::new(),
        props: Vec::new(),
        complex: Vec::new(),
        error: None,
    };
    let Some(name) = layer else {
        return panel;
    };
    let mut parsed = match parse_body(body) {
        Ok(b) => b,
        Err(e) => {
            panel.error = Some(message_of(&e));
            return panel;
        }
    };
    let Some(l) = find_layer(&mut parsed["layers"], name) else {
        panel.error = Some(format!("There is no layer called “{name}” in the draft."));
        return panel;
    };
    panel.layer = Some(name.to_string());
    panel.kind = l.get("type").and_then(|t| t.as_str()).unwrap_or("?").into();
    for (k, v) in l.iter() {
        if STRUCTURAL.contains(&k.as_str()) {
            continue;
        }
        let (kind, value, checked) = match v {
            serde_json::Value::Number(n) => {
                let shown = match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
                    _ => n.to_string(),
                };
                ("number", shown, false)
            }
            serde_json::Value::String(s) => ("text", s.clone(), false),
            serde_json::Value::Bool(b) => ("bool", String::new(), *b),
            serde_json::Value::Null => continue,
            _ => {
                panel.complex.push(k.clone());
                continue;
            }
        };
        panel.props.push(Prop {
            key: k.clone(),
            kind,
            value,
            checked,
        });
    }
    panel
}

/// The draft with the panel's values written into the layer: numbers stay numbers, a blank
/// value removes the property (its default applies), checkboxes are booleans.
fn apply_props(body: &str, f: &FormData) -> Result<String, pixeld_core::Error> {
    let mut parsed = parse_body(body)?;
    let name = f.get("layer");
    let l = find_layer(&mut parsed["layers"], name).ok_or_else(|| {
        pixeld_core::Error::invalid("layer", format!("“{name}” is not in the draft"))
    })?;
    let keys: Vec<String> = l
        .keys()
        .filter(|k| !STRUCTURAL.contains(&k.as_str()))
        .cloned()
        .collect();
    for k in keys {
        let field = format!("prop:{k}");
        let typed = f.get(&field).trim();
        match l.get(&k) {
            Some(serde_json::Value::Bool(_)) => {
                l.insert(k.clone(), serde_json::Value::Bool(f.checked(&field)));
            }
            Some(serde_json::Value::Number(_)) if !f.all(&field).is_empty() => {
                if typed.is_empty() {
                    l.remove(&k);
                } else {
                    let n: f64 = typed
                        .parse()
                        .map_err(|_| pixeld_core::Error::invalid(k.as_str(), "must be a number"))?;
                    let v = if n.fract() == 0.0 && n.abs() < 1e15 {
                        serde_json::json!(n as i64)
                    } else {
                        serde_json::json!(n)
                    };
                    l.insert(k.clone(), v);
                }
            }
            Some(serde_json::Value::String(_)) if !f.all(&field).is_empty() => {
                if typed.is_empty() {
                    l.remove(&k);
                } else {
                    l.insert(
                        k.clone(),
                        serde_json::Value::String(f.get(&field).to_string()),
                    );
                }
            }
            _ => {}
        }
    }
    Ok(pretty(&parsed))
}

struct VersionRow {
    version: i32,
    saved: String,
    current: bool,
}

#[derive(askama::Template)]
#[template(path = "template_editor.html")]
struct EditorPage {
    c: Chrome,
    id: Uuid,
    name: String,
    version: i32,
    body: String,
    data: String,
    layers: Vec<LayerItem>,
    variables: Vec<String>,
    props: String,
    preview: Preview,
    versions: Vec<VersionRow>,
    curl: String,
    signed_url: Option<String>,
}

/// The preview box: an image, or why there is none.
#[derive(askama::Template)]
#[template(path = "template_preview.html")]
struct Preview {
    src: Option<String>,
    error: Option<String>,
    cached: bool,
}

/// The media type of a render's format name (`webp`, `png`, …).
fn mime_of(format: &str) -> &'static str {
    pixeld_render::Format::parse(format).map_or("application/octet-stream", |f| f.content_type())
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The sample data, as the variables panel edits it: a JSON object of strings.
fn parse_data(text: &str) -> Result<pixeld_render::Data, pixeld_core::Error> {
    if text.trim().is_empty() {
        return Ok(pixeld_render::Data::new());
    }
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| pixeld_core::Error::invalid("sample data", format!("is not JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| {
        pixeld_core::Error::invalid("sample data", "must be an object of variable names")
    })?;
    obj.iter()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => v.to_string(),
                _ => {
                    return Err(pixeld_core::Error::invalid(
                        "sample data",
                        format!("`{k}` must be text"),
                    ));
                }
            };
            Ok((k.clone(), s))
        })
        .collect()
}

fn parse_body(text: &str) -> Result<serde_json::Value, pixeld_core::Error> {
    serde_json::from_str(text)
        .map_err(|e| pixeld_core::Error::invalid("template", format!("is not JSON: {e}")))
}

async fn render_preview(st: &AppState, w: &Web, id: Uuid, body: &str, data: &str) -> Preview {
    let result = match (parse_body(body), parse_data(data)) {
        (Ok(b), Ok(d)) => st.app.preview_draft(w.principal(), id, &b, d).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match result {
        Ok(r) => Preview {
            src: Some(format!(
                "data:{};base64,{}",
                mime_of(&r.entry.format),
                base64::engine::general_purpose::STANDARD.encode(r.bytes.as_slice())
            )),
            error: None,
            cached: r.cached,
        },
        Err(e) => Preview {
            src: None,
            error: Some(message_of(&e)),
            cached: false,
        },
    }
}

#[derive(serde::Deserialize)]
struct EditorQuery {
    done: Option<String>,
    layer: Option<String>,
}

/// The layer a form chose: a layer button pressed (`select`), else the one already open.
fn chosen_layer(f: &FormData) -> Option<&str> {
    f.opt("select").or_else(|| f.opt("layer"))
}

async fn editor_view(
    st: &AppState,
    w: &Web,
    c: Chrome,
    id: Uuid,
    draft: Option<(&str, &str)>,
    layer: Option<&str>,
) -> Result<EditorPage, pixeld_core::Error> {
    let p = w.principal();
    let tv = st.app.template(p, id, None).await?;
    let saved: serde_json::Value = serde_json::from_str(&tv.version.body).unwrap_or_default();
    let sample = pixeld_core::templates::sample_data(&tv.version.body).unwrap_or_default();
    let sample_json = serde_json::to_string_pretty(&sample).unwrap_or_default();
    let (body, data) = match draft {
        Some((b, d)) => (b.to_string(), d.to_string()),
        None => (pretty(&saved), sample_json.clone()),
    };
    let layers = parse_body(&body)
        .map(|b| layer_tree(&b, layer))
        .unwrap_or_else(|_| layer_tree(&saved, layer));
    let props = props_panel(id, &body, layer).render().unwrap_or_default();
    let preview = render_preview(st, w, id, &body, &data).await;
    let versions: Vec<TemplateVersion> = st
        .app
        .template_versions(p, id, None, 20)
        .await
        .unwrap_or_default();
    let base = st.config.public_url();
    let render_body = serde_json::json!({"template": id, "data": sample});
    let curl = format!(
        "curl -sS -X POST {base}/v1/renders -H \"Authorization: Bearer $PIXELD_TOKEN\" \
         -H \"Content-Type: application/json\" -d '{}' -o card.png",
        render_body.to_string().replace('\'', "'\\''")
    );
    let signed_url = st
        .app
        .signing_keys(p)
        .await
        .unwrap_or_default()
        .iter()
        .find(|k| k.revoked_at.is_none())
        .map(|k| {
            let params: Vec<(String, String)> = sample.clone().into_iter().collect();
            let sig = pixeld_core::templates::sign_url(&k.secret, id, "png", &params);
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &params {
                q.append_pair(k, v);
            }
            q.append_pair("sig", &sig);
            format!("{base}/r/{id}.png?{}", q.finish())
        });
    Ok(EditorPage {
        c,
        id,
        name: tv.template.name.clone(),
        version: tv.template.latest_version,
        body,
        data,
        layers,
        variables: saved["variables"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
        props,
        preview,
        versions: versions
            .iter()
            .map(|v| VersionRow {
                version: v.version,
                saved: when(v.created_at),
                current: v.version == tv.template.latest_version,
            })
            .collect(),
        curl,
        signed_url,
    })
}

fn not_found(w: &Web, e: &pixeld_core::Error) -> Response {
    super::framed_with(
        status_of(e),
        w.chrome("Template not found", "templates"),
        "<p>It may have been deleted. <a href=\"/templates\">Back to your templates</a>.</p>",
    )
}

async fn editor(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    Query(q): Query<EditorQuery>,
) -> Response {
    let mut c = w.chrome("Template editor", "templates");
    match q.done.as_deref() {
        Some("saved") => c = c.notice("Saved as a new version."),
        Some("restored") => c = c.notice("Restored: the old version is now the latest."),
        Some("key") => c = c.notice("Signing key created; the signed URL below uses it."),
        _ => {}
    }
    match editor_view(&st, &w, c, id, None, q.layer.as_deref()).await {
        Ok(v) => page(&v),
        Err(e) => not_found(&w, &e),
    }
}

/// The properties panel alone for htmx, for the layer button pressed.
async fn props_fragment(Path(id): Path<Uuid>, _w: Web, f: FormData) -> Response {
    match props_panel(id, f.get("body"), chosen_layer(&f)).render() {
        Ok(html) => (
            [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The panel's values written into the draft (without JavaScript; with it, the page rewrites
/// the JSON as you type). Nothing is saved until "Save".
async fn apply(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>, f: FormData) -> Response {
    let layer = chosen_layer(&f);
    let (c, body, status) = match apply_props(f.get("body"), &f) {
        Ok(b) => (
            w.chrome("Template editor", "templates")
                .notice("Applied to the draft. Save to keep it as a new version."),
            b,
            StatusCode::OK,
        ),
        Err(e) => (
            w.chrome("Template editor", "templates")
                .error(message_of(&e)),
            f.get("body").to_string(),
            status_of(&e),
        ),
    };
    match editor_view(&st, &w, c, id, Some((&body, f.get("data"))), layer).await {
        Ok(v) => page_with(status, &v),
        Err(e) => not_found(&w, &e),
    }
}

/// The preview box alone for htmx (a fragment), or the whole editor with it for a plain form.
async fn preview(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    headers: axum::http::HeaderMap,
    f: FormData,
) -> Response {
    if headers.contains_key("hx-request") {
        let p = render_preview(&st, &w, id, f.get("body"), f.get("data")).await;
        return match p.render() {
            Ok(html) => (
                [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
    }
    let c = w.chrome("Template editor", "templates");
    let draft = Some((f.get("body"), f.get("data")));
    match editor_view(&st, &w, c, id, draft, chosen_layer(&f)).await {
        Ok(v) => page(&v),
        Err(e) => not_found(&w, &e),
    }
}

async fn save(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>, f: FormData) -> Response {
    let result = match parse_body(f.get("body")) {
        Ok(b) => {
            let base = f.get("base_version").parse().ok();
            st.app
                .save_template(w.principal(), id, f.opt("name"), &b, base)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other(&format!("/templates/{id}?done=saved")),
        Err(e) => {
            let c = w
                .chrome("Template editor", "templates")
                .error(message_of(&e));
            let draft = Some((f.get("body"), f.get("data")));
            match editor_view(&st, &w, c, id, draft, chosen_layer(&f)).await {
                Ok(v) => page_with(status_of(&e), &v),
                Err(e) => not_found(&w, &e),
            }
        }
    }
}

async fn restore(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    f: FormData,
) -> Response {
    let p = w.principal();
    let version = f.get("version").parse().ok();
    let result = match st.app.template(p, id, version).await {
        Ok(old) => match serde_json::from_str::<serde_json::Value>(&old.version.body) {
            Ok(body) => st.app.save_template(p, id, None, &body, None).await,
            Err(e) => Err(pixeld_core::Error::Internal(e.to_string())),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other(&format!("/templates/{id}?done=restored")),
        Err(e) => not_found(&w, &e),
    }
}

async fn new_signing_key(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.create_signing_key(w.principal()).await {
        Ok(_) => see_other(&format!("/templates/{id}?done=key")),
        Err(e) => {
            let c = w
                .chrome("Template editor", "templates")
                .error(message_of(&e));
            match editor_view(&st, &w, c, id, None, None).await {
                Ok(v) => page_with(status_of(&e), &v),
                Err(e) => not_found(&w, &e),
            }
        }
    }
}

/// The latest version with sample data, small; free (see `Pixeld::template_thumbnail`).
async fn thumbnail(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.template_thumbnail(w.principal(), id).await {
        Ok(r) => {
            let mut resp = r.bytes.as_slice().to_vec().into_response();
            let h = resp.headers_mut();
            if let Ok(v) = axum::http::HeaderValue::from_str(mime_of(&r.entry.format)) {
                h.insert(axum::http::header::CONTENT_TYPE, v);
            }
            h.insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("private, max-age=60"),
            );
            resp
        }
        Err(e) => (status_of(&e), message_of(&e)).into_response(),
    }
}
