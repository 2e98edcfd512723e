//! Asynchronous renders: accepted at once (202 and a render id), rendered by a worker, their
//! outcome delivered to a webhook and kept for [`KEEP_RENDER_JOBS`].
//!
//! Everything that can be checked without rendering is checked when the request arrives
//! (template and version, variables, modifications, output options, webhook URL), so a bad
//! request is a 422 then and there, not a failed job later. What can only fail while
//! rendering (an image URL that does not answer, say) fails the job, and the webhook says why.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use pixeld_render::{Data, Format, Modification, Template};

use crate::credits::{Metered, QUEUED_RESERVATION_TIMEOUT};
use crate::jobs::Outcome;
use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::roles::Permission;
use crate::store::{Job, RenderJob};
use crate::templates::{Charge, RenderRequest};
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// Render jobs (their status and result description) are deleted this long after they were
/// accepted; the image itself follows the render cache's retention.
pub const KEEP_RENDER_JOBS: time::Duration = time::Duration::days(30);

/// Largest `metadata` accepted, as JSON.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Most rows one CSV batch may have.
pub const MAX_BATCH_ROWS: usize = 500;

/// A failing render is tried this many times when the failure is ours (storage, a bug);
/// a failure caused by the request (a broken image URL) is final at once.
const RENDER_ATTEMPTS: i32 = 3;

/// Where an asynchronous render's outcome goes.
#[derive(Debug, Clone, Default)]
pub struct AsyncOptions {
    /// POST the outcome here (`render.completed` or `render.failed`).
    pub webhook_url: Option<String>,
    /// Any JSON, echoed in the webhook and the render's status (at most 4 KiB).
    pub metadata: Option<Value>,
    /// The CSV batch this render is a row of.
    pub batch: Option<Uuid>,
}

#[derive(Serialize, Deserialize)]
struct StoredRequest {
    data: Data,
    modifications: Vec<Modification>,
    format: String,
    quality: Option<u8>,
    scale: Option<f32>,
}

#[derive(Serialize, Deserialize)]
struct RenderPayload {
    render: Uuid,
    /// Credits reserved when the render was accepted (absent: accepted without metering).
    #[serde(default)]
    reservation: Option<Uuid>,
    #[serde(default)]
    credits: i64,
}

/// The JSON description of a render job, as the API and webhooks show it.
pub fn render_job_json(r: &RenderJob, public_url: &str) -> Value {
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let result = r.cache_key.as_ref().map(|key| {
        json!({
            "id": key,
            "url": format!("{public_url}/v1/renders/{key}"),
            "format": r.format,
            "width": r.width,
            "height": r.height,
            "bytes": r.bytes,
            "cached": r.cached,
        })
    });
    let error = r.error_type.as_ref().map(|t| {
        json!({
            "type": format!("{public_url}/problems/{t}"),
            "detail": r.error_detail,
        })
    });
    let metadata = r
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok());
    json!({
        "id": r.id,
        "status": r.status,
        "template": r.template_id,
        "version": r.version,
        "format": r.format,
        "webhook_url": r.webhook_url,
        "metadata": metadata,
        "result": result,
        "error": error,
        "created_at": rfc(r.created_at),
        "finished_at": r.finished_at.map(rfc),
    })
}

impl Pixeld {
    /// Accepts a render to run in the background; answers at once with its id.
    pub async fn render_async(
        &self,
        p: &Principal,
        req: RenderRequest,
        opts: AsyncOptions,
    ) -> Result<RenderJob> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        let tv = self
            .template_in(p.org_id, req.template_id, req.version)
            .await?;
        if let Some(url) = &opts.webhook_url {
            self.check_webhook_url(url)?;
        }
        let metadata = match &opts.metadata {
            None => None,
            Some(m) => {
                let s = m.to_string();
                if s.len() > MAX_METADATA_BYTES {
                    return Err(Error::invalid(
                        "metadata",
                        format!("is larger than {MAX_METADATA_BYTES} bytes as JSON"),
                    ));
                }
                Some(s)
            }
        };
        // Variables, modifications and limits are checked now (the fonts are needed for that).
        self.warm_renderer().await?;
        let template: Template = serde_json::from_str(&tv.version.body)
            .map_err(|e| Error::Internal(format!("stored template unreadable: {e}")))?;
        self.renderer()?
            .image_sources(&template, &req.data, &req.modifications)?;
        if let Some(q) = req.quality
            && !(1..=100).contains(&q)
        {
            return Err(Error::invalid("quality", "must be 1–100"));
        }
        if let Some(s) = req.scale
            && !(1.0..=4.0).contains(&s)
        {
            return Err(Error::invalid("scale", "must be 1–4"));
        }
        let format = req.format.unwrap_or(Format::Png);
        let stored = StoredRequest {
            data: req.data,
            modifications: req.modifications,
            format: format.extension().into(),
            quality: req.quality,
            scale: req.scale,
        };
        let now = self.now();
        let id = Uuid::now_v7();
        // Reserved now, so a render the balance cannot cover is refused at once (402), not
        // failed later; the worker settles or releases it.
        let hold = self
            .reserve_for(
                p.org_id,
                p.token_id(),
                Metered::Render,
                Some(&id.to_string()),
                QUEUED_RESERVATION_TIMEOUT,
            )
            .await?;
        let r = RenderJob {
            id,
            org_id: p.org_id,
            token_id: p.token_id(),
            template_id: tv.template.id,
            version: tv.version.version,
            request: serde_json::to_string(&stored).map_err(|e| Error::Internal(e.to_string()))?,
            webhook_url: opts.webhook_url,
            metadata,
            status: "pending".into(),
            format: format.extension().into(),
            cache_key: None,
            width: None,
            height: None,
            bytes: None,
            cached: false,
            error_type: None,
            error_detail: None,
            created_at: now,
            finished_at: None,
            batch_id: opts.batch,
        };
        let job = self.new_job(
            "render",
            p.org_id,
            json!(RenderPayload {
                render: r.id,
                reservation: hold.reservation(),
                credits: hold.amount(),
            }),
            now,
        );
        self.store.create_render_job(&r, &job).await?;
        hold.detach();
        self.wake_worker();
        Ok(r)
    }

    /// Accepts one asynchronous render per row of a CSV batch, all tagged with a new batch id;
    /// `name` is the file name the row's image gets in the batch's ZIP. Every row is checked
    /// before any is accepted, and the balance must cover them all, so a bad file queues
    /// nothing and costs nothing.
    pub async fn render_batch(
        &self,
        p: &Principal,
        template_id: Uuid,
        rows: Vec<(String, Data)>,
        format: Format,
    ) -> Result<(Uuid, Vec<RenderJob>)> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        if rows.is_empty() {
            return Err(Error::invalid("csv", "has no rows below its header"));
        }
        if rows.len() > MAX_BATCH_ROWS {
            return Err(Error::invalid(
                "csv",
                format!(
                    "has {} rows; a batch takes at most {MAX_BATCH_ROWS}",
                    rows.len()
                ),
            ));
        }
        let tv = self.template_in(p.org_id, template_id, None).await?;
        self.warm_renderer().await?;
        let template: Template = serde_json::from_str(&tv.version.body)
            .map_err(|e| Error::Internal(format!("stored template unreadable: {e}")))?;
        let renderer = self.renderer()?;
        for (i, (_, data)) in rows.iter().enumerate() {
            renderer
                .image_sources(&template, data, &[])
                .map_err(|e| Error::invalid(format!("row {}", i + 1), e.to_string()))?;
        }
        let s = &self.settings.credits;
        let price = s.prices.of(Metered::Render);
        if s.metering && price > 0 {
            self.ensure_monthly_grant(p.org_id).await?;
            let need = price * rows.len() as i64;
            let have = self.store.ledger_totals(p.org_id).await?.balance;
            if have < need {
                return Err(Error::InsufficientCredits {
                    needed: need,
                    balance: have,
                });
            }
        }
        let batch = Uuid::now_v7();
        let mut jobs = Vec::with_capacity(rows.len());
        for (i, (name, data)) in rows.into_iter().enumerate() {
            let req = RenderRequest {
                template_id,
                version: Some(tv.version.version),
                data,
                modifications: Vec::new(),
                format: Some(format),
                quality: None,
                scale: None,
            };
            let opts = AsyncOptions {
                webhook_url: None,
                metadata: Some(json!({"batch": batch, "row": i + 1, "name": name})),
                batch: Some(batch),
            };
            jobs.push(self.render_async(p, req, opts).await?);
        }
        Ok((batch, jobs))
    }

    /// The renders of one CSV batch, in row order.
    pub async fn batch_renders(&self, p: &Principal, batch: Uuid) -> Result<Vec<RenderJob>> {
        p.require(Scope::Render, Permission::ContentRead)?;
        let rows = self
            .store
            .render_batch(p.org_id, batch, MAX_BATCH_ROWS as i64)
            .await?;
        if rows.is_empty() {
            return Err(Error::NotFound);
        }
        Ok(rows)
    }

    /// A render job of the caller's organisation.
    pub async fn render_job(&self, p: &Principal, id: Uuid) -> Result<RenderJob> {
        p.require(Scope::Render, Permission::ContentRead)?;
        self.store
            .render_job(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// The organisation's render jobs, oldest first.
    pub async fn render_jobs(&self, p: &Principal, page: PageRequest) -> Result<Page<RenderJob>> {
        p.require(Scope::Render, Permission::ContentRead)?;
        let rows = self.store.list_render_jobs(p.org_id, page).await?;
        Ok(page.finish(rows, |r| r.id))
    }

    /// Runs one render job (a worker calls this through the queue).
    pub(crate) async fn run_render_job(&self, job: &Job) -> Result<Outcome> {
        let RenderPayload {
            render,
            reservation,
            credits,
        } = Self::payload(job)?;
        // Until the hold exists, an error leaves the reservation held for the retry (or, past
        // its timeout, for the sweeper to release).
        let Some(mut r) = self.store.render_job(job.org_id, render).await? else {
            // The render record is gone: nothing will use the credits.
            self.resume_hold(job.org_id, reservation, credits)
                .release()
                .await?;
            return Ok(Outcome::Done);
        };
        if r.status != "pending" {
            // Finished by an earlier attempt, which also finished its reservation.
            return Ok(Outcome::Done);
        }
        let stored: StoredRequest = serde_json::from_str(&r.request)
            .map_err(|e| Error::Internal(format!("render {} unreadable: {e}", r.id)))?;
        let hold = self.resume_hold(job.org_id, reservation, credits);
        let req = RenderRequest {
            template_id: r.template_id,
            version: Some(r.version),
            data: stored.data,
            modifications: stored.modifications,
            format: Format::parse(&stored.format),
            quality: stored.quality,
            scale: stored.scale,
        };
        let result = match self
            .template_in(r.org_id, r.template_id, Some(r.version))
            .await
        {
            Ok(tv) => {
                self.render_version(r.org_id, r.token_id, &tv, req, Charge::Free)
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(done) => {
                // A cache hit is free.
                if done.cached {
                    hold.release().await?;
                } else {
                    hold.settle().await?;
                }
                r.status = "completed".into();
                r.cache_key = Some(done.entry.cache_key.clone());
                r.width = Some(done.entry.width);
                r.height = Some(done.entry.height);
                r.bytes = Some(done.entry.bytes);
                r.cached = done.cached;
            }
            Err(e @ Error::Internal(_)) if job.attempts < RENDER_ATTEMPTS => {
                // The next attempt runs on the same reservation.
                hold.detach();
                return Ok(Outcome::Retry(
                    self.now() + time::Duration::seconds(30),
                    e.to_string(),
                ));
            }
            Err(e) => {
                hold.release().await?;
                r.status = "failed".into();
                r.error_type = Some(e.kind().into());
                r.error_detail = Some(match e {
                    Error::Internal(_) => {
                        tracing::error!(render = %r.id, error = %e, "render failed");
                        "the render failed on our side; quote the render id".into()
                    }
                    Error::NotFound => "the template or its version was deleted".into(),
                    e => e.to_string(),
                });
            }
        }
        r.finished_at = Some(self.now());
        self.store.finish_render_job(&r).await?;
        if let Some(url) = &r.webhook_url {
            let event = if r.status == "completed" {
                "render.completed"
            } else {
                "render.failed"
            };
            let data = json!({ "render": render_job_json(&r, &self.settings.public_url) });
            self.queue_webhook(r.org_id, event, url, data).await?;
        }
        Ok(Outcome::Done)
    }
}
