//! CSV batch renders from the template editor: a file (or pasted text) whose header row names
//! the variables becomes one asynchronous render per row, a progress page that follows them
//! (htmx polls it; without JavaScript it has a refresh link), and a ZIP of the results.

use std::collections::BTreeSet;
use std::io::Write as _;

use axum::Router;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pixeld_core::render_jobs::MAX_BATCH_ROWS;
use pixeld_core::store::RenderJob;
use pixeld_render::{Data, Format};
use uuid::Uuid;

use super::{Chrome, Web, framed_with, message_of, page, see_other, status_of};
use crate::AppState;

/// The largest CSV accepted.
const MAX_CSV_BYTES: usize = 1024 * 1024;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates/{id}/batch", post(start))
        .route("/templates/{id}/batches/{batch}", get(progress))
        .route("/templates/{id}/batches/{batch}/images.zip", get(zip))
}

/// What the form sent.
#[derive(Default)]
struct BatchForm {
    csv: Vec<u8>,
    name: String,
    format: String,
}

async fn read_form(req: Request, st: &AppState) -> Result<BatchForm, String> {
    let mut mp = Multipart::from_request(req, st)
        .await
        .map_err(|e| e.body_text())?;
    let mut f = BatchForm::default();
    let mut pasted = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(|e| e.body_text())?;
        if bytes.len() > MAX_CSV_BYTES {
            return Err(format!(
                "The CSV is larger than {} KiB.",
                MAX_CSV_BYTES / 1024
            ));
        }
        match name.as_str() {
            "file" => f.csv = bytes.to_vec(),
            "csv" => pasted = bytes.to_vec(),
            "name" => f.name = String::from_utf8_lossy(&bytes).trim().to_string(),
            "format" => f.format = String::from_utf8_lossy(&bytes).trim().to_string(),
            _ => {}
        }
    }
    if f.csv.iter().all(u8::is_ascii_whitespace) {
        f.csv = pasted;
    }
    Ok(f)
}

/// A file name from the pattern: `{{variable}}` and `{{row}}` filled in, anything that is not
/// safe in a file name replaced, the format's extension added, and duplicates numbered.
fn file_name(
    pattern: &str,
    row: usize,
    data: &Data,
    ext: &str,
    taken: &mut BTreeSet<String>,
) -> String {
    let mut name = pattern.replace("{{row}}", &row.to_string());
    for (k, v) in data {
        name = name.replace(&format!("{{{{{k}}}}}"), v);
    }
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ') {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .chars()
        .take(100)
        .collect();
    if safe.is_empty() {
        safe = format!("row-{row}");
    }
    let mut candidate = format!("{safe}.{ext}");
    let mut n = 2;
    while !taken.insert(candidate.clone()) {
        candidate = format!("{safe}-{n}.{ext}");
        n += 1;
    }
    candidate
}

/// The rows of the CSV, each with its file name; the header row names the variables.
fn parse_rows(f: &BatchForm, ext: &str) -> Result<Vec<(String, Data)>, String> {
    let text = std::str::from_utf8(&f.csv).map_err(|_| "The CSV is not UTF-8 text.".to_string())?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Err("Choose a CSV file or paste one.".into());
    }
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| format!("The header row cannot be read: {e}."))?
        .iter()
        .map(str::to_string)
        .collect();
    if headers.iter().any(String::is_empty) {
        return Err("Every column needs a name in the header row.".into());
    }
    let pattern = if f.name.is_empty() {
        "card-{{row}}"
    } else {
        &f.name
    };
    let mut taken = BTreeSet::new();
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("Row {} cannot be read: {e}.", i + 1))?;
        if rows.len() == MAX_BATCH_ROWS {
            return Err(format!(
                "The CSV has more than {MAX_BATCH_ROWS} rows; split it into batches."
            ));
        }
        let data: Data = headers
            .iter()
            .cloned()
            .zip(rec.iter().map(str::to_string))
            .collect();
        let name = file_name(pattern, i + 1, &data, ext, &mut taken);
        rows.push((name, data));
    }
    Ok(rows)
}

fn back_to_editor(w: &Web, id: Uuid, status: StatusCode, why: &str) -> Response {
    framed_with(
        status,
        w.chrome("Batch render", "templates").error(why),
        &format!(
            "<h1>Batch render</h1><p>Nothing was rendered and nothing was charged.</p>\
             <p><a href=\"/templates/{id}\">Back to the editor</a></p>"
        ),
    )
}

async fn start(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>, req: Request) -> Response {
    let f = match read_form(req, &st).await {
        Ok(f) => f,
        Err(e) => return back_to_editor(&w, id, StatusCode::BAD_REQUEST, &e),
    };
    let format = Format::parse(if f.format.is_empty() {
        "png"
    } else {
        &f.format
    });
    let Some(format) = format else {
        return back_to_editor(
            &w,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose PNG, JPEG, WebP, AVIF, PDF or SVG.",
        );
    };
    let rows = match parse_rows(&f, format.extension()) {
        Ok(r) => r,
        Err(e) => return back_to_editor(&w, id, StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    match st.app.render_batch(w.principal(), id, rows, format).await {
        Ok((batch, _)) => see_other(&format!("/templates/{id}/batches/{batch}")),
        Err(e) => back_to_editor(&w, id, status_of(&e), &message_of(&e)),
    }
}

struct Row {
    row: i64,
    name: String,
    status: String,
    result: String,
}

#[derive(askama::Template)]
#[template(path = "template_batch.html")]
struct BatchPage {
    c: Chrome,
    id: Uuid,
    name: String,
    batch: Uuid,
    total: usize,
    completed: usize,
    failed: usize,
    finished: bool,
    rows: Vec<Row>,
}

/// The row number and file name a render was given when the batch was accepted.
fn row_of(r: &RenderJob) -> (i64, String) {
    let m: serde_json::Value = r
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    (
        m["row"].as_i64().unwrap_or(0),
        m["name"]
            .as_str()
            .map_or_else(|| format!("{}.{}", r.id, r.format), str::to_string),
    )
}

/// The renders of a batch of this template, or the page that says why there are none.
async fn batch_of(
    st: &AppState,
    w: &Web,
    id: Uuid,
    batch: Uuid,
) -> Result<Vec<RenderJob>, Box<Response>> {
    match st.app.batch_renders(w.principal(), batch).await {
        Ok(j) if j.iter().all(|r| r.template_id == id) => Ok(j),
        Ok(_) => Err(Box::new(back_to_editor(
            w,
            id,
            StatusCode::NOT_FOUND,
            "No such batch.",
        ))),
        Err(e) => Err(Box::new(back_to_editor(
            w,
            id,
            status_of(&e),
            &message_of(&e),
        ))),
    }
}

async fn progress(
    State(st): State<AppState>,
    w: Web,
    Path((id, batch)): Path<(Uuid, Uuid)>,
) -> Response {
    let jobs = match batch_of(&st, &w, id, batch).await {
        Ok(j) => j,
        Err(r) => return *r,
    };
    let name = st
        .app
        .template(w.principal(), id, None)
        .await
        .map(|t| t.template.name)
        .unwrap_or_else(|_| "Template".into());
    let completed = jobs.iter().filter(|r| r.status == "completed").count();
    let failed = jobs.iter().filter(|r| r.status == "failed").count();
    let rows = jobs
        .iter()
        .map(|r| {
            let (row, name) = row_of(r);
            let result = match r.status.as_str() {
                "completed" => match (r.width, r.height, r.bytes) {
                    (Some(wd), Some(h), Some(b)) => {
                        format!("{wd} × {h}, {}", super::images::size(b))
                    }
                    _ => "done".into(),
                },
                "failed" => r.error_detail.clone().unwrap_or_else(|| "failed".into()),
                _ => "waiting".into(),
            };
            Row {
                row,
                name,
                status: r.status.clone(),
                result,
            }
        })
        .collect();
    page(&BatchPage {
        c: w.chrome("Batch render", "templates"),
        id,
        name,
        batch,
        total: jobs.len(),
        completed,
        failed,
        finished: completed + failed == jobs.len(),
        rows,
    })
}

/// Every completed row's image in one ZIP, under the names the batch gave them.
async fn zip(
    State(st): State<AppState>,
    w: Web,
    Path((id, batch)): Path<(Uuid, Uuid)>,
) -> Response {
    let jobs = match batch_of(&st, &w, id, batch).await {
        Ok(j) => j,
        Err(r) => return *r,
    };
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Images are compressed already; storing them keeps the ZIP quick to make and to open.
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for r in jobs.iter().filter(|r| r.status == "completed") {
        let Some(key) = r.cache_key.as_deref() else {
            continue;
        };
        let bytes = match st.app.cached_render_for(w.principal(), key).await {
            Ok(b) => b.bytes,
            // Evicted from the render cache since: left out rather than failing the rest.
            Err(pixeld_core::Error::NotFound) => continue,
            Err(e) => return back_to_editor(&w, id, status_of(&e), &message_of(&e)),
        };
        let (_, name) = row_of(r);
        if let Err(e) = out
            .start_file(name, opts)
            .and_then(|()| out.write_all(&bytes).map_err(Into::into))
        {
            tracing::error!(error = %e, "writing a batch ZIP failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    let bytes = match out.finish() {
        Ok(c) => c.into_inner(),
        Err(e) => {
            tracing::error!(error = %e, "writing a batch ZIP failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"batch-{batch}.zip\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
