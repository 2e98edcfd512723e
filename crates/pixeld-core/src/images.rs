//! Picture Optimizer: upload or link an image, read its analysis, get transformed outputs, and
//! know that uploads and outputs are gone within the retention window (24 h by default).

use std::time::Instant;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::credits::Metered;
use crate::objects::{upload_key, variant_key};
use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::roles::Permission;
use crate::store::{ImageRecord, ImageVariant, ProcessingLog};
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// The limits of the image feature (how long uploads are kept is the `uploads` retention
/// class).
#[derive(Debug, Clone, Default)]
pub struct ImageSettings {
    /// Decoding limits (bytes, pixels, dimensions).
    pub limits: pixeld_imaging::Limits,
}

/// An image to upload.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Original file name.
    pub filename: Option<String>,
    /// Where it was fetched from.
    pub source_url: Option<String>,
}

/// A transformed output and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Rendition {
    /// Its stored description.
    pub variant: ImageVariant,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Served from an earlier identical request.
    pub cached: bool,
    /// The upload it was made from (its expiry bounds how long the output may be cached), so
    /// that callers need not look it up a second time.
    pub source: ImageRecord,
}

/// One processing log entry, before it gets its id and time.
pub(crate) struct LogEntry<'a> {
    pub(crate) image_id: Option<Uuid>,
    pub(crate) op: &'a str,
    pub(crate) bytes_in: usize,
    pub(crate) bytes_out: usize,
    pub(crate) started: Instant,
    pub(crate) status: &'a str,
}

fn source_mime(format: &str) -> &'static str {
    match format {
        "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "avif" => "image/avif",
        "heic" => "image/heic",
        "tiff" => "image/tiff",
        "bmp" => "image/bmp",
        _ => "application/octet-stream",
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn sanitize_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let clean: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    (!clean.is_empty()).then_some(clean)
}

impl Pixeld {
    pub(crate) async fn log(&self, p: &Principal, e: LogEntry<'_>) {
        let row = ProcessingLog {
            id: Uuid::now_v7(),
            org_id: p.org_id,
            token_id: p.token_id(),
            image_id: e.image_id,
            op: e.op.into(),
            bytes_in: e.bytes_in as i64,
            bytes_out: e.bytes_out as i64,
            ms: e.started.elapsed().as_millis() as i64,
            status: e.status.into(),
            created_at: self.now(),
        };
        if let Err(err) = self.store.log_processing(&row).await {
            tracing::warn!(error = %err, "could not write the processing log");
        }
    }

    /// Stores an image after checking and analysing it. Nothing is stored if it is refused.
    pub async fn upload_image(&self, p: &Principal, up: Upload) -> Result<ImageRecord> {
        p.require(Scope::ImagesWrite, Permission::ContentWrite)?;
        let hold = self
            .reserve(p.org_id, p.token_id(), Metered::Analyze, None)
            .await?;
        hold.conclude(self.store_upload(p, up).await).await
    }

    /// Checks, analyses and stores an upload (the caller holds its credits).
    async fn store_upload(&self, p: &Principal, up: Upload) -> Result<ImageRecord> {
        let started = Instant::now();
        let len = up.bytes.len();
        let limits = self.settings.images.limits;
        let (bytes, analysis) = match tokio::task::spawn_blocking(move || {
            let a = pixeld_imaging::analyze(&up.bytes, &limits);
            (up.bytes, a)
        })
        .await
        {
            Ok((bytes, Ok(a))) => (bytes, a),
            Ok((_, Err(e))) => {
                self.log(
                    p,
                    LogEntry {
                        image_id: None,
                        op: "upload",
                        bytes_in: len,
                        bytes_out: 0,
                        started,
                        status: e.kind(),
                    },
                )
                .await;
                return Err(e.into());
            }
            Err(e) => return Err(Error::Internal(e.to_string())),
        };
        let id = Uuid::now_v7();
        let now = self.now();
        let record = ImageRecord {
            id,
            org_id: p.org_id,
            uploaded_by: p.user.id,
            token_id: p.token_id(),
            filename: up.filename.as_deref().and_then(sanitize_filename),
            source_url: up.source_url,
            format: analysis.format.name().into(),
            mime: source_mime(analysis.format.name()).into(),
            bytes: len as i64,
            width: analysis.width as i32,
            height: analysis.height as i32,
            sha256: hex_sha256(&bytes),
            analysis: serde_json::to_string(&analysis)
                .map_err(|e| Error::Internal(e.to_string()))?,
            description: None,
            object_key: upload_key(p.org_id, id),
            created_at: now,
            expires_at: now
                + self
                    .settings
                    .retention
                    .window(crate::privacy::DataClass::Uploads),
        };
        self.blobs.put(&record.object_key, bytes).await?;
        if let Err(e) = self.store.create_image(&record).await {
            // Do not leave an object nobody can find (or delete).
            let _ = self.blobs.delete(&record.object_key).await;
            return Err(e.into());
        }
        self.log(
            p,
            LogEntry {
                image_id: Some(id),
                op: "upload",
                bytes_in: len,
                bytes_out: 0,
                started,
                status: "ok",
            },
        )
        .await;
        Ok(record)
    }

    /// Fetches a URL (SSRF-safe, bounded) and uploads what it returns.
    pub async fn upload_image_from_url(&self, p: &Principal, url: &str) -> Result<ImageRecord> {
        p.require(Scope::ImagesWrite, Permission::ContentWrite)?;
        // Reserved before the fetch: a balance that cannot pay is refused before any traffic.
        let hold = self
            .reserve(p.org_id, p.token_id(), Metered::Analyze, None)
            .await?;
        hold.conclude(self.fetch_and_store(p, url).await).await
    }

    async fn fetch_and_store(&self, p: &Principal, url: &str) -> Result<ImageRecord> {
        let fetched = self
            .fetcher
            .fetch(url, self.settings.images.limits.max_input_bytes)
            .await?;
        let filename = url::Url::parse(&fetched.final_url)
            .ok()
            .and_then(|u| {
                u.path_segments()
                    .and_then(|mut s| s.next_back().map(str::to_string))
            })
            .filter(|s| !s.is_empty());
        self.store_upload(
            p,
            Upload {
                bytes: fetched.bytes,
                filename,
                source_url: Some(url.to_string()),
            },
        )
        .await
    }

    /// One image of the caller's organisation.
    pub async fn image(&self, p: &Principal, id: Uuid) -> Result<ImageRecord> {
        p.require(Scope::ImagesRead, Permission::ContentRead)?;
        let img = self
            .store
            .image_in_org(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        // Past its window it is gone for the user, even if the sweeper has not run yet.
        if img.expires_at <= self.now() {
            return Err(Error::NotFound);
        }
        Ok(img)
    }

    /// A small WebP preview (at most 480 px wide) for lists and pages. Never charged: it is the
    /// site showing the user their own upload. Cached like any output.
    pub async fn image_thumbnail(&self, p: &Principal, id: Uuid) -> Result<Rendition> {
        let img = self.image(p, id).await?;
        let mut opts =
            pixeld_imaging::Options::from_query("w=480&h=480&fit=inside&format=webp&q=70")
                .map_err(Error::from)?;
        // A small image is shown at its own size, never enlarged.
        if img.width <= 480 && img.height <= 480 {
            opts.width = None;
            opts.height = None;
        }
        let started = Instant::now();
        let key = cache_key(&img.sha256, &opts);
        if let Some(v) = self.store.variant(id, &key).await?
            && let Some(bytes) = self.blobs.get(&v.object_key).await?
        {
            return Ok(Rendition {
                variant: v,
                bytes,
                cached: true,
                source: img,
            });
        }
        self.make_variant(p, img, opts, "thumbnail", key, started)
            .await
    }

    /// The upload's bytes, as they were sent.
    pub async fn image_original(&self, p: &Principal, id: Uuid) -> Result<(ImageRecord, Vec<u8>)> {
        let img = self.image(p, id).await?;
        let bytes = self
            .blobs
            .get(&img.object_key)
            .await?
            .ok_or(Error::NotFound)?;
        Ok((img, bytes))
    }

    /// The caller's organisation's images that are still within their window.
    pub async fn images(&self, p: &Principal, page: PageRequest) -> Result<Page<ImageRecord>> {
        p.require(Scope::ImagesRead, Permission::ContentRead)?;
        let now = self.now();
        let rows = self.store.list_images(p.org_id, page).await?;
        let mut page = page.finish(rows, |i| i.id);
        page.items.retain(|i| i.expires_at > now);
        Ok(page)
    }

    /// Deletes an image and its outputs now.
    pub async fn delete_image(&self, p: &Principal, id: Uuid) -> Result<()> {
        p.require(Scope::ImagesWrite, Permission::ContentWrite)?;
        let started = Instant::now();
        let (img, variants) = self
            .store
            .delete_image(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        self.blobs.delete(&img.object_key).await?;
        for v in &variants {
            self.blobs.delete(&v.object_key).await?;
        }
        self.log(
            p,
            LogEntry {
                image_id: Some(id),
                op: "delete",
                bytes_in: 0,
                bytes_out: 0,
                started,
                status: "ok",
            },
        )
        .await;
        Ok(())
    }

    /// A transformed output of an image: from the cache when the same source and options were
    /// asked for before, else made now and cached until the image expires.
    pub async fn transform_image(
        &self,
        p: &Principal,
        id: Uuid,
        opts: pixeld_imaging::Options,
        op: &str,
    ) -> Result<Rendition> {
        let img = self.image(p, id).await?;
        if op == "optimize" {
            p.require(Scope::ImagesWrite, Permission::ContentWrite)?;
        }
        opts.validate().map_err(Error::from)?;
        let started = Instant::now();
        let key = cache_key(&img.sha256, &opts);
        if let Some(v) = self.store.variant(id, &key).await?
            && let Some(bytes) = self.blobs.get(&v.object_key).await?
        {
            self.log(
                p,
                LogEntry {
                    image_id: Some(id),
                    op,
                    bytes_in: 0,
                    bytes_out: bytes.len(),
                    started,
                    status: "cached",
                },
            )
            .await;
            return Ok(Rendition {
                variant: v,
                bytes,
                cached: true,
                source: img,
            });
        }
        let hold = self
            .reserve(p.org_id, p.token_id(), Metered::Optimize, None)
            .await?;
        hold.conclude(self.make_variant(p, img, opts, op, key, started).await)
            .await
    }

    /// Makes, stores and logs an output that was not in the cache.
    async fn make_variant(
        &self,
        p: &Principal,
        img: ImageRecord,
        opts: pixeld_imaging::Options,
        op: &str,
        key: String,
        started: Instant,
    ) -> Result<Rendition> {
        let id = img.id;
        let source = self
            .blobs
            .get(&img.object_key)
            .await?
            .ok_or_else(|| Error::Internal(format!("object {} is missing", img.object_key)))?;
        let len = source.len();
        let limits = self.settings.images.limits;
        let out = match tokio::task::spawn_blocking(move || {
            pixeld_imaging::process(&source, &opts, &limits)
        })
        .await
        {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                self.log(
                    p,
                    LogEntry {
                        image_id: Some(id),
                        op,
                        bytes_in: len,
                        bytes_out: 0,
                        started,
                        status: e.kind(),
                    },
                )
                .await;
                return Err(e.into());
            }
            Err(e) => return Err(Error::Internal(e.to_string())),
        };
        let variant = ImageVariant {
            image_id: id,
            cache_key: key.clone(),
            format: out.format.mime_type().trim_start_matches("image/").into(),
            mime: out.format.mime_type().into(),
            bytes: out.bytes.len() as i64,
            width: out.width as i32,
            height: out.height as i32,
            object_key: variant_key(p.org_id, id, &key),
            created_at: self.now(),
        };
        self.blobs
            .put(&variant.object_key, out.bytes.clone())
            .await?;
        self.store.put_variant(&variant).await?;
        self.log(
            p,
            LogEntry {
                image_id: Some(id),
                op,
                bytes_in: len,
                bytes_out: out.bytes.len(),
                started,
                status: "ok",
            },
        )
        .await;
        Ok(Rendition {
            variant,
            bytes: out.bytes,
            cached: false,
            source: img,
        })
    }

    /// The organisation's processing log.
    pub async fn processing_logs(
        &self,
        p: &Principal,
        page: PageRequest,
    ) -> Result<Page<ProcessingLog>> {
        p.require(Scope::ImagesRead, Permission::ContentRead)?;
        let rows = self.store.list_processing_logs(p.org_id, page).await?;
        Ok(page.finish(rows, |l| l.id))
    }
}

/// The cache key of an output: the source's hash and the options as they affect the bytes
/// (including which formats the client accepts when the format is `auto`).
pub fn cache_key(source_sha256: &str, opts: &pixeld_imaging::Options) -> String {
    let mut h = Sha256::new();
    h.update(source_sha256.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(opts).unwrap_or_default());
    if opts.format == pixeld_imaging::Format::Auto {
        let accept = opts.accept.as_deref().unwrap_or("");
        for mime in ["image/avif", "image/webp"] {
            h.update([u8::from(pixeld_imaging::accepts(accept, mime))]);
        }
    }
    hex::encode(h.finalize())[..32].to_string()
}
