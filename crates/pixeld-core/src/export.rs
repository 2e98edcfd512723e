//! The right of access and portability: an export of everything pixeld holds about a user, as
//! a ZIP with one JSON file per data class, a README and a schema version, plus the files
//! themselves (templates, uploads still within their 24 hours, rendered images, fonts, invoice
//! PDFs).
//!
//! [`Pixeld::request_export`] queues a job; the job builds the ZIP, stores it as an object and
//! emails a signed download link valid for [`LINK_VALID`]. The export is deleted after the
//! `exports` retention window (7 days).

use std::io::Write;

use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::jobs::Outcome;
use crate::mail::Message;
use crate::page::PageRequest;
use crate::principal::Principal;
use crate::rights::{DataRequest, RequestKind};
use crate::store::Job;
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// The version of the export's layout (`manifest.json`).
pub const SCHEMA_VERSION: u32 = 1;
/// How long an emailed download link works.
pub const LINK_VALID: time::Duration = time::Duration::hours(24);
/// The most rows of one class an export lists.
const MAX_ROWS: usize = 100_000;

/// Where an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    /// Queued or being built.
    Pending,
    /// Ready to download.
    Ready,
    /// Could not be built.
    Failed,
}

impl ExportStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Pending => "pending",
            ExportStatus::Ready => "ready",
            ExportStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ExportStatus::Pending,
            "ready" => ExportStatus::Ready,
            "failed" => ExportStatus::Failed,
            _ => return None,
        })
    }
}

/// One export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// UUIDv7.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// The access request it answers.
    pub request_id: Uuid,
    /// Where it stands.
    pub status: ExportStatus,
    /// The ZIP in object storage, once ready.
    pub object_key: Option<String>,
    /// Its size.
    pub bytes: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was asked for.
    pub created_at: OffsetDateTime,
    /// When it was built.
    pub finished_at: Option<OffsetDateTime>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn opt(t: Option<OffsetDateTime>) -> Value {
    t.map(rfc3339).map_or(Value::Null, Value::String)
}

const README: &str = "Your data from pixeld
=====================

This archive holds everything pixeld keeps about your account, as it was when the export was
made. Each JSON file is one kind of data; manifest.json lists them with the schema version of
this layout. Times are RFC 3339 in UTC; amounts of money are in minor units (cents).

  account.json         your account: email, name, 2FA on or off, profile (phone, company,
                       address, tax id)
  consents.json        every consent you gave or withdrew, with time, source and policy version
  processing.json      your restriction switch and objections
  data_requests.json   your privacy requests (access, correction, deletion, ...) and their state
  sessions.json        where you are signed in (address, browser)
  tokens.json          your API tokens (names, scopes, use; never their secrets, which pixeld
                       does not keep)
  organisations.json   the organisations you belong to and your role
  usage.json           your API requests (kept 90 days; addresses cut to their network after 7)
  credits.json         the credit ledger of your personal organisation
  orders.json          your purchases
  invoices.json        your invoices, with invoices/NUMBER.pdf
  templates.json       your templates, with every version in templates/ID.json
  images.json          your uploads still within their 24 hours (with any AI description), with
                       the files in images/
  renders.json         images rendered from your templates, with the files in renders/
  fonts.json           fonts you uploaded, with the files in fonts/
  support.json         your support requests, each with its messages

Passwords are stored only as Argon2id hashes and API tokens only as SHA-256 digests; neither is
included. Questions: see /privacy on the site you exported from.
";

struct Archive {
    zip: zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
    files: Vec<Value>,
}

impl Archive {
    fn new() -> Self {
        Self {
            zip: zip::ZipWriter::new(std::io::Cursor::new(Vec::new())),
            files: Vec::new(),
        }
    }

    fn add(&mut self, name: &str, bytes: &[u8], compress: bool) -> Result<()> {
        let method = if compress {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(bytes.len() > u32::MAX as usize / 2);
        self.zip
            .start_file(name, opts)
            .and_then(|()| self.zip.write_all(bytes).map_err(Into::into))
            .map_err(|e| Error::Internal(format!("writing the export: {e}")))
    }

    fn json(&mut self, name: &str, class: &str, v: &Value) -> Result<()> {
        let count = v.as_array().map_or(1, Vec::len);
        self.files
            .push(json!({"file": name, "class": class, "records": count}));
        let bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(e.to_string()))?;
        self.add(name, &bytes, true)
    }

    fn finish(mut self, created_at: OffsetDateTime) -> Result<Vec<u8>> {
        let manifest = json!({
            "schema_version": SCHEMA_VERSION,
            "created_at": rfc3339(created_at),
            "files": self.files,
        });
        let bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        self.add("manifest.json", &bytes, true)?;
        self.add("README.txt", README.as_bytes(), true)?;
        let out = self
            .zip
            .finish()
            .map_err(|e| Error::Internal(format!("writing the export: {e}")))?;
        Ok(out.into_inner())
    }
}

/// Reads every page of a paged store list (at most [`MAX_ROWS`] rows).
macro_rules! all_pages {
    ($page:ident => $fetch:expr, $id:expr) => {{
        let mut out = Vec::new();
        let mut $page = PageRequest {
            after: None,
            limit: crate::page::MAX_LIMIT,
        };
        loop {
            let batch = $fetch;
            let more = batch.len() > $page.limit as usize;
            let batch: Vec<_> = batch.into_iter().take($page.limit as usize).collect();
            $page.after = batch.last().map($id);
            out.extend(batch);
            if !more || out.len() >= MAX_ROWS {
                break;
            }
        }
        out
    }};
}

impl Pixeld {
    /// Queues an export of everything about the caller (`account:read`); one at a time.
    pub async fn request_export(&self, p: &Principal) -> Result<Export> {
        p.require_scope(Scope::AccountRead)?;
        let user = &p.user;
        let exports = self.store.exports_of(user.id).await?;
        if exports.iter().any(|e| e.status == ExportStatus::Pending) {
            return Err(Error::Conflict(
                "an export is already being built; its link will be emailed".into(),
            ));
        }
        let now = self.now();
        let request = DataRequest::open(
            user.id,
            RequestKind::Access,
            "data export (ZIP)".into(),
            now,
        );
        let export = Export {
            id: Uuid::now_v7(),
            user_id: user.id,
            request_id: request.id,
            status: ExportStatus::Pending,
            object_key: None,
            bytes: None,
            error: None,
            created_at: now,
            finished_at: None,
        };
        self.store.create_data_request(&request).await?;
        self.store.create_export(&export).await?;
        let job = self.new_job(
            "export",
            user.personal_org_id,
            json!({"export_id": export.id, "user_id": user.id}),
            now,
        );
        self.store.enqueue_job(&job).await?;
        self.wake_worker();
        tracing::info!(user_id = %user.id, export = %export.id, "data export requested");
        Ok(export)
    }

    /// The caller's exports, oldest first.
    pub async fn exports(&self, p: &Principal) -> Result<Vec<Export>> {
        p.require_scope(Scope::AccountRead)?;
        Ok(self.store.exports_of(p.user.id).await?)
    }

    fn export_sig(key: &[u8], id: Uuid, expires: i64) -> String {
        hex::encode(crate::secret::hmac_sha256(
            key,
            &[b"export:", id.as_bytes(), &expires.to_be_bytes()],
        ))
    }

    /// A download link for a ready export, valid for [`LINK_VALID`] from now.
    pub async fn export_link(&self, id: Uuid) -> Result<String> {
        let expires = (self.now() + LINK_VALID).unix_timestamp();
        let sig = Self::export_sig(&self.instance_key("export").await?, id, expires);
        Ok(format!(
            "{}/v1/account/exports/{id}/download?expires={expires}&sig={sig}",
            self.settings.public_url
        ))
    }

    /// The ZIP behind a signed link, if the signature holds, the link has not expired and the
    /// export still exists.
    pub async fn download_export(&self, id: Uuid, expires: i64, sig: &str) -> Result<Vec<u8>> {
        let expected = Self::export_sig(&self.instance_key("export").await?, id, expires);
        if !crate::secret::constant_time_eq(sig.as_bytes(), expected.as_bytes())
            || self.now().unix_timestamp() > expires
        {
            return Err(Error::InvalidToken);
        }
        let export = self.store.export_by_id(id).await?.ok_or(Error::NotFound)?;
        let key = export.object_key.ok_or(Error::NotFound)?;
        self.blobs.get(&key).await?.ok_or(Error::NotFound)
    }

    pub(crate) async fn run_export_job(&self, job: &Job) -> Result<Outcome> {
        let payload: Value = serde_json::from_str(&job.payload)
            .map_err(|e| Error::Internal(format!("export job payload: {e}")))?;
        let id = payload["export_id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| Error::Internal("export job without export_id".into()))?;
        let Some(export) = self.store.export_by_id(id).await? else {
            // The account was erased meanwhile.
            return Ok(Outcome::Done);
        };
        if export.status != ExportStatus::Pending {
            return Ok(Outcome::Done);
        }
        let Some(user) = self.store.user_by_id(export.user_id).await? else {
            return Ok(Outcome::Done);
        };
        let now = self.now();
        let zip = match self.build_export(&user, now).await {
            Ok(z) => z,
            Err(e) if job.attempts >= 3 => {
                self.store
                    .finish_export(
                        id,
                        ExportStatus::Failed,
                        None,
                        None,
                        Some(&e.to_string()),
                        now,
                    )
                    .await?;
                return Ok(Outcome::Failed(e.to_string()));
            }
            Err(e) => return Err(e),
        };
        let key = format!("exports/{}/{}.zip", user.id, export.id);
        let bytes = zip.len() as i64;
        self.blobs.put(&key, zip).await?;
        self.store
            .finish_export(id, ExportStatus::Ready, Some(&key), Some(bytes), None, now)
            .await?;
        self.store
            .complete_data_request(export.request_id, now)
            .await?;
        let link = self.export_link(id).await?;
        self.mailer
            .send(Message {
                to: user.email.clone(),
                subject: "Your pixeld data export is ready".into(),
                body: format!(
                    "Hello {},\n\nthe export of your pixeld data you asked for is ready ({} KB). \
                     Download it within 24 hours:\n{link}\n\nThe file is deleted 7 days after it \
                     was made; you can ask for a new one any time.\n",
                    user.name,
                    bytes.div_euclid(1024).max(1)
                ),
                attachments: Vec::new(),
            })
            .await?;
        tracing::info!(user_id = %user.id, export = %id, bytes, "data export ready");
        Ok(Outcome::Done)
    }

    async fn build_export(
        &self,
        user: &crate::store::User,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>> {
        let mut a = Archive::new();
        let org = user.personal_org_id;
        let profile = self.store.profile(user.id).await?.unwrap_or_default();
        a.json(
            "account.json",
            "account",
            &json!({
                "id": user.id, "email": user.email, "name": user.name,
                "email_verified_at": opt(user.email_verified_at),
                "two_factor_enabled": user.totp_secret.is_some(),
                "created_at": rfc3339(user.created_at),
                "profile": profile,
            }),
        )?;
        let consents: Vec<Value> = self
            .store
            .consents_of(user.id)
            .await?
            .iter()
            .map(|c| {
                json!({"purpose": c.purpose, "granted": c.granted, "source": c.source,
                       "policy_version": c.policy_version, "recorded_at": rfc3339(c.recorded_at)})
            })
            .collect();
        a.json("consents.json", "consents", &Value::Array(consents))?;
        let choices = self.store.processing_choices(user.id).await?;
        a.json(
            "processing.json",
            "processing",
            &json!({"restricted": choices.restricted, "objections": choices.objections,
                    "updated_at": opt(choices.updated_at)}),
        )?;
        let requests: Vec<Value> = self
            .store
            .data_requests_of(user.id)
            .await?
            .iter()
            .map(|r| {
                json!({"id": r.id, "kind": r.kind, "status": r.status, "detail": r.detail,
                       "requested_at": rfc3339(r.requested_at), "due_at": rfc3339(r.due_at),
                       "completed_at": opt(r.completed_at)})
            })
            .collect();
        a.json(
            "data_requests.json",
            "data_requests",
            &Value::Array(requests),
        )?;
        let sessions: Vec<Value> = self
            .store
            .list_sessions(user.id)
            .await?
            .iter()
            .map(|s| {
                json!({"id": s.id, "created_at": rfc3339(s.created_at),
                       "last_seen_at": rfc3339(s.last_seen_at), "expires_at": rfc3339(s.expires_at),
                       "ip": s.ip, "user_agent": s.user_agent})
            })
            .collect();
        a.json("sessions.json", "sessions", &Value::Array(sessions))?;
        let orgs = all_pages!(page => self.store.orgs_of_user(user.id, page).await?, |o: &crate::store::OrgWithRole| o.org.id);
        let mut tokens = Vec::new();
        for o in &orgs {
            let ts = all_pages!(page => self.store.list_tokens(o.org.id, Some(user.id), page).await?, |t: &crate::store::ApiToken| t.id);
            tokens.extend(ts.iter().map(|t| {
                json!({"id": t.id, "organisation": t.org_id, "name": t.name, "prefix": t.prefix,
                       "scopes": t.scopes.split(' ').collect::<Vec<_>>(),
                       "created_at": rfc3339(t.created_at), "expires_at": opt(t.expires_at),
                       "last_used_at": opt(t.last_used_at), "last_used_ip": t.last_used_ip,
                       "revoked_at": opt(t.revoked_at)})
            }));
        }
        a.json("tokens.json", "tokens", &Value::Array(tokens))?;
        let memberships: Vec<Value> = orgs
            .iter()
            .map(|o| {
                json!({"id": o.org.id, "name": o.org.name, "personal": o.org.personal,
                       "role": o.role.as_str()})
            })
            .collect();
        a.json(
            "organisations.json",
            "organisations",
            &Value::Array(memberships),
        )?;
        let usage: Vec<Value> = self
            .store
            .usage_of_user(user.id, MAX_ROWS as i64)
            .await?
            .iter()
            .map(|e| {
                json!({"at": rfc3339(e.at), "organisation": e.org_id, "token_id": e.token_id,
                       "method": e.method, "route": e.route, "status": e.status,
                       "latency_ms": e.latency_us as f64 / 1000.0, "bytes_in": e.bytes_in,
                       "bytes_out": e.bytes_out, "credits": e.credits,
                       "ip": e.ip.clone().or_else(|| e.ip_network.clone()), "country": e.country,
                       "user_agent": e.user_agent})
            })
            .collect();
        a.json("usage.json", "request_logs", &Value::Array(usage))?;
        let entries = all_pages!(page => self.store.ledger_entries(org, &Default::default(), page).await?, |e: &crate::ledger::LedgerEntry| e.id);
        let entries: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({"id": e.id, "kind": e.kind, "amount": e.amount, "balance_after": e.balance_after,
                       "source": e.source, "reason": e.reason, "expires_at": opt(e.expires_at),
                       "created_at": rfc3339(e.created_at)})
            })
            .collect();
        a.json("credits.json", "financial_records", &Value::Array(entries))?;
        let orders = all_pages!(page => self.store.list_orders(org, page).await?, |o: &crate::billing::Order| o.id);
        let orders: Vec<Value> = orders
            .iter()
            .map(|o| {
                json!({"id": o.id, "provider": o.provider, "item": o.item_id, "credits": o.credits,
                       "amount_minor": o.amount_minor, "currency": o.currency, "status": o.status,
                       "refunded_minor": o.refunded_minor, "created_at": rfc3339(o.created_at),
                       "paid_at": opt(o.paid_at)})
            })
            .collect();
        a.json("orders.json", "financial_records", &Value::Array(orders))?;
        let invoices = all_pages!(page => self.store.list_invoices(org, page).await?, |i: &crate::invoices::Invoice| i.id);
        let mut listed = Vec::new();
        for inv in &invoices {
            let pdf = self.invoice_pdf(inv).await?;
            let file = format!("invoices/{}.pdf", inv.display_number);
            a.add(&file, &pdf, true)?;
            listed.push(
                json!({"number": inv.display_number, "currency": inv.currency,
                               "total_minor": inv.total_minor, "tax_minor": inv.tax_minor,
                               "buyer": inv.buyer, "seller": inv.seller, "lines": inv.lines,
                               "issued_at": rfc3339(inv.issued_at), "pdf": file}),
            );
        }
        a.json("invoices.json", "financial_records", &Value::Array(listed))?;
        let templates = all_pages!(page => self.store.list_templates(org, page).await?, |t: &crate::store::TemplateRecord| t.id);
        let mut listed = Vec::new();
        for t in &templates {
            let versions = self
                .store
                .list_template_versions(t.id, None, 10_000)
                .await?;
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    json!({"version": v.version, "created_at": rfc3339(v.created_at),
                           "template": serde_json::from_str::<Value>(&v.body).unwrap_or(Value::Null)})
                })
                .collect();
            let file = format!("templates/{}.json", t.id);
            let bytes =
                serde_json::to_vec_pretty(&versions).map_err(|e| Error::Internal(e.to_string()))?;
            a.add(&file, &bytes, true)?;
            listed.push(
                json!({"id": t.id, "name": t.name, "latest_version": t.latest_version,
                               "created_at": rfc3339(t.created_at), "versions": file}),
            );
        }
        a.json("templates.json", "templates", &Value::Array(listed))?;
        let images = all_pages!(page => self.store.list_images(org, page).await?, |i: &crate::store::ImageRecord| i.id);
        let mut listed = Vec::new();
        for img in images.iter().filter(|i| i.expires_at > now) {
            let Some(bytes) = self.blobs.get(&img.object_key).await? else {
                continue;
            };
            let file = format!("images/{}.{}", img.id, img.format);
            a.add(&file, &bytes, false)?;
            listed.push(json!({"id": img.id, "filename": img.filename, "source_url": img.source_url,
                               "format": img.format, "bytes": img.bytes, "width": img.width,
                               "height": img.height,
                               "analysis": serde_json::from_str::<Value>(&img.analysis).unwrap_or(Value::Null),
                               "description": img.description.as_deref()
                                   .and_then(|d| serde_json::from_str::<Value>(d).ok()),
                               "uploaded_at": rfc3339(img.created_at),
                               "deleted_at": rfc3339(img.expires_at), "file": file}));
        }
        a.json("images.json", "uploads", &Value::Array(listed))?;
        let mut listed = Vec::new();
        for r in self.store.render_cache_of(org, MAX_ROWS as i64).await? {
            let Some(bytes) = self.blobs.get(&r.object_key).await? else {
                continue;
            };
            let file = format!("renders/{}.{}", r.cache_key, r.format);
            a.add(&file, &bytes, false)?;
            listed.push(
                json!({"template": r.template_id, "format": r.format, "width": r.width,
                               "height": r.height, "bytes": r.bytes,
                               "rendered_at": rfc3339(r.created_at), "file": file}),
            );
        }
        a.json("renders.json", "render_cache", &Value::Array(listed))?;
        let mut listed = Vec::new();
        for f in self.store.list_fonts(org).await? {
            let Some(bytes) = self.blobs.get(&f.object_key).await? else {
                continue;
            };
            let name = f
                .file_name
                .clone()
                .filter(|n| !n.contains(['/', '\\']) && !n.starts_with('.'))
                .unwrap_or_else(|| format!("{}.{}", f.id, f.format));
            let file = format!("fonts/{}-{name}", f.id);
            a.add(&file, &bytes, false)?;
            listed.push(json!({"id": f.id, "families": f.families, "format": f.format,
                               "bytes": f.bytes, "uploaded_at": rfc3339(f.created_at), "file": file}));
        }
        a.json("fonts.json", "fonts", &Value::Array(listed))?;
        let mut tickets = all_pages!(page => self.store.tickets_of(user.id, page).await?,
            |t: &crate::support::Ticket| t.id);
        tickets.reverse();
        let mut threads = Vec::with_capacity(tickets.len());
        for ticket in tickets {
            let messages = self.store.ticket_messages(ticket.id).await?;
            threads.push(crate::support::Thread { ticket, messages });
        }
        let support: Vec<Value> = threads
            .iter()
            .map(|t| {
                let messages: Vec<Value> = t
                    .messages
                    .iter()
                    .map(|m| {
                        json!({"id": m.id, "from": m.author.as_str(), "body": m.body,
                               "written_at": rfc3339(m.created_at)})
                    })
                    .collect();
                json!({"id": t.ticket.id, "subject": t.ticket.subject,
                       "category": t.ticket.category.as_str(), "status": t.ticket.status.as_str(),
                       "opened_at": rfc3339(t.ticket.created_at),
                       "updated_at": rfc3339(t.ticket.updated_at),
                       "closed_at": opt(t.ticket.closed_at), "messages": messages})
            })
            .collect();
        a.json("support.json", "support", &Value::Array(support))?;
        a.finish(now)
    }

    /// Deletes exports made before `before` (objects and rows); returns how many.
    pub(crate) async fn purge_exports(&self, before: OffsetDateTime) -> Result<u64> {
        let mut n = 0;
        loop {
            let old = self.store.exports_before(before, 100).await?;
            if old.is_empty() {
                return Ok(n);
            }
            for e in old {
                if let Some(k) = &e.object_key {
                    self.blobs.delete(k).await?;
                }
                n += u64::from(self.store.delete_export(e.id).await?);
            }
        }
    }
}
