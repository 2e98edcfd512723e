//! AI image descriptions: alt text and tags for an uploaded image, from the vision provider the
//! operator configured (see `pixeld-ai`).
//!
//! The promises kept here: nothing goes to a provider for a user who restricted processing or
//! objected to AI providers (neither the caller's nor the uploader's data); what goes is a copy
//! at most 1024 px on its longer side, re-encoded as JPEG without any metadata (no EXIF, no GPS,
//! no file name), with no user or organisation identifier and the provider's "do not store"
//! flag; the description is kept in the image's row, so it goes when the image goes (within
//! the uploads window); a failed call charges nothing.

use std::sync::Arc;
use std::time::Instant;

use pixeld_ai::{AiError, Describer, ImageInput};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::consent::Objection;
use crate::credits::Metered;
use crate::images::LogEntry;
use crate::principal::Principal;
use crate::roles::Permission;
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// The longer side of the copy a provider receives, in pixels (OpenAI's low-detail mode looks
/// at 512 px; 1024 leaves other models room).
pub const PROVIDER_MAX_SIDE: u32 = 1024;

/// The AI providers this instance uses (none until configured).
#[derive(Clone, Default)]
pub struct AiProviders {
    /// Describes images (alt text and tags).
    pub vision: Option<Arc<dyn Describer>>,
}

impl std::fmt::Debug for AiProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiProviders")
            .field("vision", &self.vision.as_ref().map(|v| v.recipient()))
            .finish()
    }
}

/// An image's description as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDescription {
    /// One or two sentences for the `alt` attribute.
    pub alt_text: String,
    /// Lowercase keywords.
    pub tags: Vec<String>,
    /// The model that wrote it.
    pub model: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub described_at: OffsetDateTime,
}

impl ImageDescription {
    /// Reads a stored description (`None` when there is none or it cannot be read).
    pub fn from_stored(json: Option<&str>) -> Option<Self> {
        json.and_then(|j| serde_json::from_str(j).ok())
    }
}

/// The copy of an image a provider receives: at most [`PROVIDER_MAX_SIDE`] on its longer
/// side, JPEG, flattened on white, every metadata block stripped.
pub fn provider_copy(
    source: &[u8],
    limits: &pixeld_imaging::Limits,
) -> pixeld_imaging::Result<Vec<u8>> {
    let side = PROVIDER_MAX_SIDE.to_string();
    let opts = pixeld_imaging::Options::from_query(&format!(
        "w={side}&h={side}&fit=inside&format=jpeg&q=85"
    ))?;
    Ok(pixeld_imaging::process(source, &opts, limits)?.bytes)
}

fn ai_error(e: AiError) -> Error {
    tracing::warn!(error = %e, "AI provider call failed");
    Error::AiProvider(match e {
        AiError::Transport(_) => {
            "the AI provider could not be reached; nothing was charged, try again later".into()
        }
        other => format!("{other}; nothing was charged"),
    })
}

impl Pixeld {
    /// Asks the vision provider for an image's alt text and tags, stores them with the image
    /// and returns them. Charged once per call (the `describe` price), only when it succeeds.
    pub async fn describe_image(&self, p: &Principal, id: Uuid) -> Result<ImageDescription> {
        let img = self.image(p, id).await?;
        p.require(Scope::ImagesWrite, Permission::ContentWrite)?;
        let vision = self.ai.vision.clone().ok_or_else(|| {
            Error::NotConfigured(
                "image descriptions need an AI vision provider, and this instance has none \
                 (set [ai.vision] in the configuration)"
                    .into(),
            )
        })?;
        // The caller's choices, and the uploader's when someone else uploaded it.
        let users = if img.uploaded_by == p.user.id {
            vec![p.user.id]
        } else {
            vec![p.user.id, img.uploaded_by]
        };
        for user in users {
            let choices = self.store.processing_choices(user).await?;
            if !choices.allows(Objection::AiProviders) {
                return Err(Error::ProcessingRestricted(if user == p.user.id {
                    "you have restricted processing or objected to AI providers, so nothing is \
                     sent to one; change this in your account's privacy settings"
                        .into()
                } else {
                    "the person who uploaded this image has restricted processing or objected \
                     to AI providers, so it is not sent to one"
                        .into()
                }));
            }
        }
        let hold = self
            .reserve(p.org_id, p.token_id(), Metered::Describe, None)
            .await?;
        hold.conclude(self.run_describe(p, &img, vision).await)
            .await
    }

    async fn run_describe(
        &self,
        p: &Principal,
        img: &crate::store::ImageRecord,
        vision: Arc<dyn Describer>,
    ) -> Result<ImageDescription> {
        let started = Instant::now();
        let source = self
            .blobs
            .get(&img.object_key)
            .await?
            .ok_or_else(|| Error::Internal(format!("object {} is missing", img.object_key)))?;
        let limits = self.settings.images.limits;
        let copy = tokio::task::spawn_blocking(move || provider_copy(&source, &limits))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let outcome = vision
            .describe(ImageInput {
                bytes: &copy,
                mime: "image/jpeg",
            })
            .await;
        let status = match &outcome {
            Ok(_) => "ok",
            Err(_) => "ai-provider",
        };
        self.log(
            p,
            LogEntry {
                image_id: Some(img.id),
                op: "describe",
                bytes_in: copy.len(),
                bytes_out: 0,
                started,
                status,
            },
        )
        .await;
        let d = outcome.map_err(ai_error)?;
        let description = ImageDescription {
            alt_text: d.alt_text,
            tags: d.tags,
            model: d.model,
            described_at: self.now(),
        };
        let json =
            serde_json::to_string(&description).map_err(|e| Error::Internal(e.to_string()))?;
        if !self
            .store
            .set_image_description(img.org_id, img.id, &json)
            .await?
        {
            // Deleted while the provider was working: nothing to keep, nothing to charge.
            return Err(Error::NotFound);
        }
        Ok(description)
    }
}
