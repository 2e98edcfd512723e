//! PixelDrive: templates with immutable versions, renders with a content-keyed cache, and
//! signed render URLs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use pixeld_render::{Data, Format, Images, Input, Modification, OutputOptions, Renderer, Template};

use crate::credits::{Hold, Metered};
use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::roles::Permission;
use crate::store::{ProcessingLog, RenderCacheEntry, SigningKey, TemplateRecord, TemplateVersion};
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// Bumped when anything that changes render output changes (fonts, engine), so cached renders
/// of the old engine are not served.
const ENGINE_REVISION: &str = concat!("pixeld-render/", env!("CARGO_PKG_VERSION"), "/1");

/// Cached renders are deleted (object and row) this long after they were made; a later
/// identical request renders again.
pub const RENDER_CACHE_MAX_AGE: time::Duration = time::Duration::days(30);

/// A template with the content of one of its versions.
#[derive(Debug, Clone)]
pub struct TemplateWithVersion {
    /// The template.
    pub template: TemplateRecord,
    /// The version asked for (the latest by default).
    pub version: TemplateVersion,
}

/// What to render.
#[derive(Debug, Clone, Default)]
pub struct RenderRequest {
    /// The template.
    pub template_id: Uuid,
    /// A version; the latest when absent.
    pub version: Option<i32>,
    /// Variable values.
    pub data: Data,
    /// Layer changes.
    pub modifications: Vec<Modification>,
    /// Output format (PNG by default).
    pub format: Option<Format>,
    /// Quality 1–100 for lossy formats.
    pub quality: Option<u8>,
    /// Device pixel ratio 1–4.
    pub scale: Option<f32>,
}

/// A finished render.
#[derive(Debug, Clone)]
pub struct RenderResult {
    /// Encoded bytes.
    pub bytes: Arc<Vec<u8>>,
    /// Its description (cache key, format, size).
    pub entry: RenderCacheEntry,
    /// Served from the cache (no rendering happened, no credits are due).
    pub cached: bool,
}

/// The renderer (fonts parsed once, on first use), an in-memory LRU of recent renders in front
/// of the object store, and the renders in flight (so identical concurrent requests render once).
#[derive(Default)]
pub struct RenderService {
    renderer: OnceLock<Arc<Renderer>>,
    memory: Mutex<MemoryCache>,
    in_flight: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<RenderResult>>>>,
    /// Organisations' uploaded fonts and the libraries built from them.
    pub(crate) fonts: Mutex<crate::fonts::FontCache>,
}

impl std::fmt::Debug for RenderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RenderService")
    }
}

#[derive(Default)]
struct MemoryCache {
    entries: HashMap<String, (RenderResult, u64)>,
    bytes: usize,
    tick: u64,
}

/// Memory held by recent renders (beyond it, they are read back from object storage).
const MEMORY_BUDGET: usize = 64 << 20;

impl RenderService {
    /// Drops renders from memory (after the sweeper deleted them from storage).
    pub fn forget(&self, keys: &[String]) {
        let mut m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            if let Some(e) = m.entries.remove(k) {
                m.bytes -= e.0.bytes.len();
            }
        }
    }
}

impl MemoryCache {
    fn get(&mut self, key: &str) -> Option<RenderResult> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|e| {
            e.1 = tick;
            e.0.clone()
        })
    }

    fn put(&mut self, r: &RenderResult) {
        let cost = r.bytes.len();
        if cost > MEMORY_BUDGET / 8 {
            return;
        }
        self.tick += 1;
        if let Some(old) = self
            .entries
            .insert(r.entry.cache_key.clone(), (r.clone(), self.tick))
        {
            self.bytes -= old.0.bytes.len();
        }
        self.bytes += cost;
        while self.bytes > MEMORY_BUDGET {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.1)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.0.bytes.len();
            }
        }
    }

    fn forget_template(&mut self, template_id: Uuid) {
        let keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.0.entry.template_id == template_id)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(e) = self.entries.remove(&k) {
                self.bytes -= e.0.bytes.len();
            }
        }
    }
}

fn name_ok(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 120 || n.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must be 1–120 characters without control characters",
        ));
    }
    Ok(n.to_owned())
}

/// Object key of a cached render.
pub fn render_key(org: Uuid, cache_key: &str, format: Format) -> String {
    format!("{org}/renders/{cache_key}.{}", format.extension())
}

/// The canonical form of a signed URL's query: every parameter but `sig`, sorted by name then
/// value, form-encoded, joined with `&`.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut p: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sig").collect();
    p.sort();
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in p {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Width of template thumbnails, in pixels (2× a 200 px list tile).
pub const THUMBNAIL_WIDTH: u32 = 400;

/// Sample values for every `{{variable}}` of a stored template: the variable's `example`, else
/// its `default`, else its name in braces, so previews and thumbnails show something readable.
pub fn sample_data(body: &str) -> Result<Data> {
    let template: Template = serde_json::from_str(body)
        .map_err(|e| Error::Internal(format!("stored template unreadable: {e}")))?;
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| Error::Internal(e.to_string()))?;
    let mut data = Data::new();
    for name in pixeld_render::placeholders(&json) {
        let var = template.variables.get(&name);
        let sample = var
            .and_then(|v| v.example.clone().or_else(|| v.default.clone()))
            .unwrap_or_else(|| format!("{{{name}}}"));
        data.insert(name, sample);
    }
    Ok(data)
}

/// The signature of a render URL: hex HMAC-SHA256 over `{template}.{ext}?{canonical query}`.
pub fn sign_url(secret: &str, template_id: Uuid, ext: &str, params: &[(String, String)]) -> String {
    let msg = format!("{template_id}.{ext}?{}", canonical_query(params));
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Who pays for a render that is not a cache hit.
pub(crate) enum Charge {
    /// Reserve the price of this operation now.
    Reserve(Metered),
    /// Nobody here: thumbnails of the organisation's own template list, and asynchronous
    /// renders, whose credits were reserved when they were accepted.
    Free,
}

impl Pixeld {
    pub(crate) fn renderer(&self) -> Result<Arc<Renderer>> {
        if let Some(r) = self.renders.renderer.get() {
            return Ok(r.clone());
        }
        let r = Arc::new(Renderer::new().map_err(|e| Error::Internal(e.to_string()))?);
        Ok(self.renders.renderer.get_or_init(|| r).clone())
    }

    /// Parses fonts now rather than on the first render (the server calls this at start-up).
    pub async fn warm_renderer(&self) -> Result<()> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.renderer().map(|_| ()))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// Renders a template for the public demo on the landing page: no caller, no credits,
    /// nothing stored. The template must not load images (nothing is fetched for visitors);
    /// callers bound the data and the rate.
    pub async fn render_demo(
        &self,
        template: Arc<Template>,
        data: Data,
        format: Format,
        scale: f32,
    ) -> Result<Vec<u8>> {
        self.warm_renderer().await?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let renderer = me.renderer()?;
            if !renderer.image_sources(&template, &data, &[])?.is_empty() {
                return Err(Error::invalid(
                    "template",
                    "a demo template loads no images",
                ));
            }
            let out = OutputOptions {
                format,
                quality: Some(80),
                scale,
            };
            let input = Input {
                data: &data,
                modifications: &[],
                images: &Images::new(),
            };
            Ok(renderer
                .render_with(renderer.fonts(), &template, input, &out)?
                .bytes)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
    }

    fn parse_template(&self, body: &serde_json::Value) -> Result<(Template, String)> {
        // Checking a template needs only the limits, not the fonts: saving never waits for them.
        let text = serde_json::to_string(body).map_err(|e| Error::Internal(e.to_string()))?;
        let t = pixeld_render::parse(text.as_bytes(), &pixeld_render::Limits::default())?;
        // Stored in the normalised form, so defaults are explicit in every version.
        let normal = serde_json::to_string(&t).map_err(|e| Error::Internal(e.to_string()))?;
        Ok((t, normal))
    }

    /// Creates a template (version 1).
    pub async fn create_template(
        &self,
        p: &Principal,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<TemplateWithVersion> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        let name = name_ok(name)?;
        let (_, body) = self.parse_template(body)?;
        let now = self.now();
        let template = TemplateRecord {
            id: Uuid::now_v7(),
            org_id: p.org_id,
            name,
            latest_version: 1,
            created_by: p.user.id,
            created_at: now,
            updated_at: now,
        };
        let version = TemplateVersion {
            template_id: template.id,
            version: 1,
            body,
            created_by: p.user.id,
            created_at: now,
        };
        self.store.create_template(&template, &version).await?;
        Ok(TemplateWithVersion { template, version })
    }

    /// Saves a new version (and/or renames). With `base_version`, refuses (409) when someone
    /// saved in between, so two editors never silently overwrite each other.
    pub async fn save_template(
        &self,
        p: &Principal,
        id: Uuid,
        name: Option<&str>,
        body: &serde_json::Value,
        base_version: Option<i32>,
    ) -> Result<TemplateWithVersion> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        let name = name.map(name_ok).transpose()?;
        let (_, body) = self.parse_template(body)?;
        let current = self
            .store
            .template_in_org(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        if let Some(b) = base_version
            && b != current.latest_version
        {
            return Err(Error::State(format!(
                "the template is at version {}, not {b}: reload it and apply your change again",
                current.latest_version
            )));
        }
        let version = TemplateVersion {
            template_id: id,
            version: current.latest_version + 1,
            body,
            created_by: p.user.id,
            created_at: self.now(),
        };
        if !self
            .store
            .add_template_version(p.org_id, &version, name.as_deref())
            .await?
        {
            return Err(Error::State(
                "another save of this template happened at the same time: reload and retry".into(),
            ));
        }
        let template = self
            .store
            .template_in_org(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(TemplateWithVersion { template, version })
    }

    /// A template with one version's content (the latest by default).
    pub async fn template(
        &self,
        p: &Principal,
        id: Uuid,
        version: Option<i32>,
    ) -> Result<TemplateWithVersion> {
        p.require(Scope::Render, Permission::ContentRead)?;
        self.template_in(p.org_id, id, version).await
    }

    pub(crate) async fn template_in(
        &self,
        org: Uuid,
        id: Uuid,
        version: Option<i32>,
    ) -> Result<TemplateWithVersion> {
        let template = self
            .store
            .template_in_org(org, id)
            .await?
            .ok_or(Error::NotFound)?;
        let v = version.unwrap_or(template.latest_version);
        let version = self
            .store
            .template_version(id, v)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(TemplateWithVersion { template, version })
    }

    /// The organisation's templates.
    pub async fn templates(
        &self,
        p: &Principal,
        page: PageRequest,
    ) -> Result<Page<TemplateRecord>> {
        p.require(Scope::Render, Permission::ContentRead)?;
        let rows = self.store.list_templates(p.org_id, page).await?;
        Ok(page.finish(rows, |t| t.id))
    }

    /// A template's versions, newest first (`before`: a version number, for the next page).
    pub async fn template_versions(
        &self,
        p: &Principal,
        id: Uuid,
        before: Option<i32>,
        limit: u32,
    ) -> Result<Vec<TemplateVersion>> {
        p.require(Scope::Render, Permission::ContentRead)?;
        self.store
            .template_in_org(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(self
            .store
            .list_template_versions(id, before, i64::from(limit.clamp(1, 100)))
            .await?)
    }

    /// Deletes a template, its versions and its cached renders.
    pub async fn delete_template(&self, p: &Principal, id: Uuid) -> Result<()> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        let cached = self
            .store
            .delete_template(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        for c in &cached {
            self.blobs.delete(&c.object_key).await?;
        }
        self.renders
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget_template(id);
        Ok(())
    }

    /// Renders a template for a caller.
    pub async fn render(&self, p: &Principal, req: RenderRequest) -> Result<RenderResult> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        let tv = self
            .template_in(p.org_id, req.template_id, req.version)
            .await?;
        self.render_version(
            p.org_id,
            p.token_id(),
            &tv,
            req,
            Charge::Reserve(Metered::Render),
        )
        .await
    }

    /// Renders an editor's preview (priced as a preview; the same state again is a cache hit).
    pub async fn preview(&self, p: &Principal, req: RenderRequest) -> Result<RenderResult> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        let tv = self
            .template_in(p.org_id, req.template_id, req.version)
            .await?;
        self.render_version(
            p.org_id,
            p.token_id(),
            &tv,
            req,
            Charge::Reserve(Metered::Preview),
        )
        .await
    }

    /// Renders an unsaved draft of a template in the editor (priced as a preview; the same
    /// draft and data again is a cache hit). The draft is checked like a save, so the editor
    /// shows the same errors a save would.
    pub async fn preview_draft(
        &self,
        p: &Principal,
        id: Uuid,
        body: &serde_json::Value,
        data: Data,
    ) -> Result<RenderResult> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        let saved = self.template_in(p.org_id, id, None).await?;
        let (_, normal) = self.parse_template(body)?;
        let draft = TemplateWithVersion {
            version: TemplateVersion {
                template_id: id,
                // Version 0 is never stored: it names a draft, told apart by its body's hash.
                version: 0,
                body: normal,
                created_by: p.user.id,
                created_at: self.now(),
            },
            template: saved.template,
        };
        let req = RenderRequest {
            template_id: id,
            version: Some(0),
            data,
            modifications: Vec::new(),
            format: Some(Format::Webp),
            quality: Some(80),
            scale: None,
        };
        self.render_version(
            p.org_id,
            p.token_id(),
            &draft,
            req,
            Charge::Reserve(Metered::Preview),
        )
        .await
    }

    /// Renders the latest version for a verified signed URL (no caller).
    pub async fn render_signed(
        &self,
        template_id: Uuid,
        ext: &str,
        params: &[(String, String)],
    ) -> Result<RenderResult> {
        let format = Format::parse(ext)
            .ok_or_else(|| Error::invalid("format", "use png, jpeg, webp, avif, svg or pdf"))?;
        let template = self.store.template_by_id(template_id).await?;
        let sig = params
            .iter()
            .find(|(k, _)| k == "sig")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        let Some(template) = template else {
            // Unknown templates fail exactly like bad signatures: nothing to probe.
            return Err(Error::Forbidden(
                "the URL signature is missing or wrong".into(),
            ));
        };
        let keys = self.store.list_signing_keys(template.org_id).await?;
        let good = keys.iter().filter(|k| k.revoked_at.is_none()).any(|k| {
            let want = sign_url(&k.secret, template_id, ext, params);
            want.as_bytes().ct_eq(sig.as_bytes()).into()
        });
        if !good {
            return Err(Error::Forbidden(
                "the URL signature is missing or wrong".into(),
            ));
        }
        let mut data = Data::new();
        let mut version = None;
        let mut quality = None;
        let mut scale = None;
        for (k, v) in params {
            match k.as_str() {
                "sig" => {}
                "v" => {
                    version = Some(
                        v.parse()
                            .map_err(|_| Error::invalid("v", "a version number"))?,
                    )
                }
                "q" => {
                    quality = Some(
                        v.parse()
                            .map_err(|_| Error::invalid("q", "quality 1–100"))?,
                    )
                }
                "scale" => scale = Some(v.parse().map_err(|_| Error::invalid("scale", "1–4"))?),
                _ => {
                    data.insert(k.clone(), v.clone());
                }
            }
        }
        let tv = self
            .template_in(template.org_id, template_id, version)
            .await?;
        let req = RenderRequest {
            template_id,
            version,
            data,
            modifications: Vec::new(),
            format: Some(format),
            quality,
            scale,
        };
        self.render_version(
            template.org_id,
            None,
            &tv,
            req,
            Charge::Reserve(Metered::Render),
        )
        .await
    }

    /// Fetches the images a render needs: `asset:{id}` from the organisation's uploads, URLs
    /// through the SSRF-safe fetcher.
    async fn fetch_render_images(
        &self,
        org: Uuid,
        sources: Vec<String>,
    ) -> Result<(Images, Vec<(String, String)>)> {
        let mut images = Images::new();
        let mut hashes = Vec::new();
        for src in sources {
            let bytes = if let Some(id) = src.strip_prefix("asset:") {
                let id: Uuid = id
                    .trim()
                    .parse()
                    .map_err(|_| Error::invalid("src", format!("{src} is not an asset id")))?;
                let img = self
                    .store
                    .image_in_org(org, id)
                    .await?
                    .filter(|i| i.expires_at > self.now())
                    .ok_or_else(|| Error::invalid("src", format!("{src}: no such image")))?;
                self.blobs
                    .get(&img.object_key)
                    .await?
                    .ok_or_else(|| Error::invalid("src", format!("{src}: no such image")))?
            } else if src.starts_with("https://") || src.starts_with("http://") {
                self.fetcher
                    .fetch(&src, self.settings.images.limits.max_input_bytes)
                    .await
                    .map_err(|e| match e {
                        Error::Fetch(m) => Error::Fetch(format!("{src}: {m}")),
                        other => other,
                    })?
                    .bytes
            } else {
                return Err(Error::invalid(
                    "src",
                    format!("{src}: image sources are https:// URLs, asset:{{id}} or data: URIs"),
                ));
            };
            hashes.push((src.clone(), hex::encode(Sha256::digest(&bytes))));
            images.insert(src, Arc::from(bytes));
        }
        Ok((images, hashes))
    }

    pub(crate) async fn render_version(
        &self,
        org: Uuid,
        token_id: Option<Uuid>,
        tv: &TemplateWithVersion,
        req: RenderRequest,
        charge: Charge,
    ) -> Result<RenderResult> {
        let started = Instant::now();
        // The first render parses the fonts (~200 ms): on a blocking thread, not a runtime worker.
        self.warm_renderer().await?;
        let renderer = self.renderer()?;
        let template: Template = serde_json::from_str(&tv.version.body)
            .map_err(|e| Error::Internal(format!("stored template unreadable: {e}")))?;
        let format = req.format.unwrap_or(Format::Png);
        let out = OutputOptions {
            format,
            quality: req.quality,
            scale: req.scale.unwrap_or(1.0),
        };
        let sources = renderer.image_sources(&template, &req.data, &req.modifications)?;
        let (images, hashes) = self.fetch_render_images(org, sources).await?;
        let fonts = self.org_fonts(org).await?;

        let key = {
            let canonical = serde_json::json!({
                // Renders nobody paid for (thumbnails) never answer a paid request's key.
                "unpaid": matches!(charge, Charge::Free),
                "engine": ENGINE_REVISION,
                "template": tv.template.id,
                "version": tv.version.version,
                "data": req.data.iter().collect::<BTreeMap<_, _>>(),
                "modifications": req.modifications,
                "images": hashes,
                "fonts": fonts.digest,
                "format": format.extension(),
                "quality": out.quality,
                "scale": out.scale,
            });
            let mut canonical = canonical;
            if tv.version.version == 0 {
                canonical["draft"] = serde_json::Value::String(hex::encode(Sha256::digest(
                    tv.version.body.as_bytes(),
                )));
            }
            hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
        };
        if let Some(hit) = self.cached_render(&key).await? {
            self.log_render(
                org,
                token_id,
                tv.template.id,
                "render-cached",
                &hit,
                started,
            )
            .await;
            return Ok(hit);
        }
        // Single flight: the first request renders, identical concurrent ones wait for it.
        let cell = {
            let mut map = self.renders.in_flight.lock().await;
            map.entry(key.clone()).or_default().clone()
        };
        let mut charge = Some(charge);
        let result = cell
            .get_or_try_init(|| async {
                let hold = match charge.take() {
                    Some(Charge::Reserve(op)) => self.reserve(org, token_id, op, None).await?,
                    Some(Charge::Free) | None => Hold::free(org),
                };
                let me = self.clone();
                let data = req.data.clone();
                let mods = req.modifications.clone();
                let library = fonts.library.clone();
                let r = tokio::task::spawn_blocking(move || {
                    let renderer = me.renderer()?;
                    let fonts = library.as_deref().unwrap_or(renderer.fonts());
                    renderer
                        .render_with(
                            fonts,
                            &template,
                            Input {
                                data: &data,
                                modifications: &mods,
                                images: &images,
                            },
                            &out,
                        )
                        .map_err(Error::from)
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))
                .and_then(|r| r);
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        hold.release().await?;
                        return Err(e);
                    }
                };
                let entry = RenderCacheEntry {
                    cache_key: key.clone(),
                    org_id: org,
                    template_id: tv.template.id,
                    format: format.extension().to_owned(),
                    bytes: r.bytes.len() as i64,
                    width: r.width as i32,
                    height: r.height as i32,
                    object_key: render_key(org, &key, format),
                    created_at: self.now(),
                };
                self.blobs.put(&entry.object_key, r.bytes.clone()).await?;
                self.store.put_render_cache(&entry).await?;
                hold.settle().await?;
                let result = RenderResult {
                    bytes: Arc::new(r.bytes),
                    entry,
                    cached: false,
                };
                self.renders
                    .memory
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .put(&result);
                Ok::<_, Error>(result)
            })
            .await;
        self.renders.in_flight.lock().await.remove(&key);
        let result = result?.clone();
        self.log_render(org, token_id, tv.template.id, "render", &result, started)
            .await;
        Ok(result)
    }

    async fn cached_render(&self, key: &str) -> Result<Option<RenderResult>> {
        if let Some(mut hit) = self
            .renders
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            hit.cached = true;
            return Ok(Some(hit));
        }
        let Some(entry) = self.store.render_cache(key).await? else {
            return Ok(None);
        };
        let Some(bytes) = self.blobs.get(&entry.object_key).await? else {
            return Ok(None);
        };
        let hit = RenderResult {
            bytes: Arc::new(bytes),
            entry,
            cached: true,
        };
        self.renders
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(&hit);
        Ok(Some(hit))
    }

    /// A small WebP of a template's latest version with sample data, for lists. Made from the
    /// (cached) full-size render and kept in the render cache itself.
    pub async fn template_thumbnail(&self, p: &Principal, id: Uuid) -> Result<RenderResult> {
        p.require(Scope::Render, Permission::ContentRead)?;
        let tv = self.template_in(p.org_id, id, None).await?;
        let req = RenderRequest {
            template_id: id,
            version: Some(tv.version.version),
            data: sample_data(&tv.version.body)?,
            modifications: Vec::new(),
            format: Some(Format::Png),
            quality: None,
            scale: None,
        };
        let full = self
            .render_version(p.org_id, p.token_id(), &tv, req, Charge::Free)
            .await?;
        let key = hex::encode(Sha256::digest(
            format!("thumbnail/1/{THUMBNAIL_WIDTH}/{}", full.entry.cache_key).as_bytes(),
        ));
        if let Some(hit) = self.cached_render(&key).await? {
            return Ok(hit);
        }
        let source = full.bytes.clone();
        let limits = self.settings.images.limits;
        let small = tokio::task::spawn_blocking(move || {
            let opts = pixeld_imaging::Options {
                width: Some(THUMBNAIL_WIDTH.min(full.entry.width.max(1) as u32)),
                format: pixeld_imaging::Format::Webp,
                quality: Some(75),
                ..pixeld_imaging::Options::default()
            };
            pixeld_imaging::process(&source, &opts, &limits)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(format!("thumbnail: {e}")))?;
        let entry = RenderCacheEntry {
            cache_key: key.clone(),
            org_id: p.org_id,
            template_id: id,
            format: "webp".into(),
            bytes: small.bytes.len() as i64,
            width: small.width as i32,
            height: small.height as i32,
            object_key: render_key(p.org_id, &key, Format::Webp),
            created_at: self.now(),
        };
        self.blobs
            .put(&entry.object_key, small.bytes.clone())
            .await?;
        self.store.put_render_cache(&entry).await?;
        let result = RenderResult {
            bytes: Arc::new(small.bytes),
            entry,
            cached: false,
        };
        self.renders
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(&result);
        Ok(result)
    }

    /// A cached render of the caller's organisation by key (for the URL a JSON answer gives).
    pub async fn cached_render_for(&self, p: &Principal, key: &str) -> Result<RenderResult> {
        p.require(Scope::Render, Permission::ContentRead)?;
        match self.cached_render(key).await? {
            Some(r) if r.entry.org_id == p.org_id => Ok(r),
            _ => Err(Error::NotFound),
        }
    }

    async fn log_render(
        &self,
        org: Uuid,
        token_id: Option<Uuid>,
        template: Uuid,
        op: &str,
        r: &RenderResult,
        started: Instant,
    ) {
        let row = ProcessingLog {
            id: Uuid::now_v7(),
            org_id: org,
            token_id,
            image_id: Some(template),
            op: op.into(),
            bytes_in: 0,
            bytes_out: r.bytes.len() as i64,
            ms: started.elapsed().as_millis() as i64,
            status: "ok".into(),
            created_at: self.now(),
        };
        if let Err(err) = self.store.log_processing(&row).await {
            tracing::warn!(error = %err, "could not write the processing log");
        }
    }

    /// Creates a signing key for render URLs; the secret is returned here and in the list.
    pub async fn create_signing_key(&self, p: &Principal) -> Result<SigningKey> {
        p.require(Scope::AccountWrite, Permission::OrgManage)?;
        let raw: [u8; 32] = rand::random();
        let key = SigningKey {
            id: Uuid::now_v7(),
            org_id: p.org_id,
            secret: format!("pxs_{}", hex::encode(raw)),
            created_at: self.now(),
            revoked_at: None,
        };
        self.store.create_signing_key(&key).await?;
        Ok(key)
    }

    /// The organisation's signing keys, newest first.
    pub async fn signing_keys(&self, p: &Principal) -> Result<Vec<SigningKey>> {
        p.require(Scope::AccountRead, Permission::OrgManage)?;
        Ok(self.store.list_signing_keys(p.org_id).await?)
    }

    /// Stops accepting a key (URLs signed with it answer 403 from now on).
    pub async fn revoke_signing_key(&self, p: &Principal, id: Uuid) -> Result<()> {
        p.require(Scope::AccountWrite, Permission::OrgManage)?;
        if self
            .store
            .revoke_signing_key(p.org_id, id, self.now())
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}
