//! Fonts an organisation uploads (TTF, OTF, WOFF, WOFF2) for its templates.
//!
//! A font is checked by registering it (every face must parse), stored in object storage, and
//! from then on the organisation's renders use a library of the bundled fonts plus its own. The
//! library is built once per set of fonts and kept in memory; the set's digest is part of every
//! render cache key, so uploading or deleting a font never serves a render made without it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use uuid::Uuid;

use pixeld_render::FontLibrary;

use crate::principal::Principal;
use crate::roles::Permission;
use crate::store::FontRecord;
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// Fonts one organisation may keep.
pub const MAX_FONTS_PER_ORG: usize = 50;

/// How long a node trusts its copy of an organisation's font list (changes made through this
/// node apply at once; those made through another node within this time).
const LIST_TTL: Duration = Duration::from_secs(2);

/// Libraries kept in memory (one per organisation with fonts, least recently built dropped).
const MAX_LIBRARIES: usize = 32;

/// An organisation's fonts as renders see them.
#[derive(Clone)]
pub(crate) struct OrgFonts {
    /// Hash of the font files (empty when the organisation has none).
    pub digest: String,
    /// The bundled fonts plus the organisation's; `None` means the bundled library.
    pub library: Option<Arc<FontLibrary>>,
}

/// The in-memory state behind [`OrgFonts`].
#[derive(Default)]
pub(crate) struct FontCache {
    lists: HashMap<Uuid, (Instant, Vec<FontRecord>)>,
    libraries: HashMap<String, (Instant, Arc<FontLibrary>)>,
}

/// The format of a font file by its first bytes.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    match bytes.get(..4)? {
        b"\x00\x01\x00\x00" | b"true" => Some("ttf"),
        b"OTTO" => Some("otf"),
        b"wOFF" => Some("woff"),
        b"wOF2" => Some("woff2"),
        _ => None,
    }
}

/// The family names a font record provides.
pub fn families(f: &FontRecord) -> Vec<String> {
    serde_json::from_str(&f.families).unwrap_or_default()
}

impl Pixeld {
    /// Uploads a font for the caller's organisation; answers the record with the family names
    /// templates can use in `font.family`.
    pub async fn upload_font(
        &self,
        p: &Principal,
        bytes: Vec<u8>,
        file_name: Option<String>,
    ) -> Result<FontRecord> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        if bytes.len() > pixeld_render::MAX_FONT_BYTES {
            return Err(pixeld_render::Error::Font(format!(
                "font file is {} bytes; at most {} are accepted",
                bytes.len(),
                pixeld_render::MAX_FONT_BYTES
            ))
            .into());
        }
        let format = sniff(&bytes).ok_or_else(|| {
            Error::from(pixeld_render::Error::Font(
                "not a TTF, OTF, WOFF or WOFF2 font file".into(),
            ))
        })?;
        let file_name = file_name
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|n| !n.is_empty());
        let existing = self.store.list_fonts(p.org_id).await?;
        if existing.len() >= MAX_FONTS_PER_ORG {
            return Err(Error::State(format!(
                "an organisation keeps at most {MAX_FONTS_PER_ORG} fonts; delete one first"
            )));
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if existing.iter().any(|f| f.sha256 == sha256) {
            return Err(Error::Conflict("this font file is already uploaded".into()));
        }
        // Registering parses every face; on a blocking thread (a CJK font is ~20 MB).
        self.warm_renderer().await?;
        let renderer = self.renderer()?;
        let (bytes, names) = tokio::task::spawn_blocking(move || {
            renderer
                .fonts()
                .with_font(&bytes)
                .map(|(_, names)| (bytes, names))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let id = Uuid::now_v7();
        let f = FontRecord {
            id,
            org_id: p.org_id,
            families: serde_json::to_string(&names).map_err(|e| Error::Internal(e.to_string()))?,
            file_name,
            format: format.into(),
            bytes: bytes.len() as i64,
            sha256,
            object_key: format!("{}/fonts/{id}", p.org_id),
            created_by: p.user.id,
            created_at: self.now(),
        };
        self.blobs.put(&f.object_key, bytes).await?;
        if let Err(e) = self.store.create_font(&f).await {
            let _ = self.blobs.delete(&f.object_key).await;
            return Err(e.into());
        }
        self.forget_font_list(p.org_id);
        Ok(f)
    }

    /// The organisation's uploaded fonts, oldest first (at most [`MAX_FONTS_PER_ORG`]).
    pub async fn fonts(&self, p: &Principal) -> Result<Vec<FontRecord>> {
        p.require(Scope::Render, Permission::ContentRead)?;
        Ok(self.store.list_fonts(p.org_id).await?)
    }

    /// Deletes an uploaded font; templates naming its families answer `unknown-font` again.
    pub async fn delete_font(&self, p: &Principal, id: Uuid) -> Result<()> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        let f = self
            .store
            .delete_font(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        self.blobs.delete(&f.object_key).await?;
        self.forget_font_list(p.org_id);
        Ok(())
    }

    fn forget_font_list(&self, org: Uuid) {
        self.renders
            .fonts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lists
            .remove(&org);
    }

    /// The fonts an organisation's renders use.
    pub(crate) async fn org_fonts(&self, org: Uuid) -> Result<OrgFonts> {
        let cached = {
            let c = self.renders.fonts.lock().unwrap_or_else(|e| e.into_inner());
            c.lists
                .get(&org)
                .filter(|(at, _)| at.elapsed() < LIST_TTL)
                .map(|(_, l)| l.clone())
        };
        let list = match cached {
            Some(l) => l,
            None => {
                let l = self.store.list_fonts(org).await?;
                self.renders
                    .fonts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .lists
                    .insert(org, (Instant::now(), l.clone()));
                l
            }
        };
        if list.is_empty() {
            return Ok(OrgFonts {
                digest: String::new(),
                library: None,
            });
        }
        let mut h = Sha256::new();
        for f in &list {
            h.update(f.sha256.as_bytes());
        }
        let digest = hex::encode(h.finalize());
        let known = self
            .renders
            .fonts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .libraries
            .get(&digest)
            .map(|(_, l)| l.clone());
        if let Some(library) = known {
            return Ok(OrgFonts {
                digest,
                library: Some(library),
            });
        }
        let mut files = Vec::with_capacity(list.len());
        for f in &list {
            let bytes = self.blobs.get(&f.object_key).await?.ok_or_else(|| {
                Error::Internal(format!("font {} is missing from object storage", f.id))
            })?;
            files.push(bytes);
        }
        self.warm_renderer().await?;
        let renderer = self.renderer()?;
        let library = tokio::task::spawn_blocking(move || {
            let mut lib = renderer.fonts().clone();
            for bytes in &files {
                lib = lib.with_font(bytes)?.0;
            }
            Ok::<_, pixeld_render::Error>(lib)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(format!("a stored font no longer loads: {e}")))?;
        let library = Arc::new(library);
        let mut c = self.renders.fonts.lock().unwrap_or_else(|e| e.into_inner());
        if c.libraries.len() >= MAX_LIBRARIES
            && let Some(oldest) = c
                .libraries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            c.libraries.remove(&oldest);
        }
        c.libraries
            .insert(digest.clone(), (Instant::now(), library.clone()));
        Ok(OrgFonts {
            digest,
            library: Some(library),
        })
    }
}
