//! Object storage as a dependency: a local folder by default, S3 for scale-out. Keys look like
//! `{org}/{kind}/{id}` so each kind can carry its own retention.

use async_trait::async_trait;

/// Somewhere to keep bytes by key.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under `key`, replacing anything there.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> crate::Result<()>;
    /// Reads `key`; `None` if absent.
    async fn get(&self, key: &str) -> crate::Result<Option<Vec<u8>>>;
    /// Deletes `key`; deleting an absent key is not an error.
    async fn delete(&self, key: &str) -> crate::Result<()>;
    /// Where objects go, for logs (`local /path` or `s3 bucket`).
    fn describe(&self) -> String;
}

/// What a URL fetch returned.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The body.
    pub bytes: Vec<u8>,
    /// The final URL after redirects.
    pub final_url: String,
}

/// Fetches user-supplied URLs without letting them reach the server's own network.
#[async_trait]
pub trait Fetcher: Send + Sync {
    /// GETs `url`, at most `max_bytes`.
    async fn fetch(&self, url: &str, max_bytes: u64) -> crate::Result<Fetched>;
}

/// Object key of an uploaded image.
pub fn upload_key(org: uuid::Uuid, image: uuid::Uuid) -> String {
    format!("{org}/uploads/{image}")
}

/// Object key of a derived output.
pub fn variant_key(org: uuid::Uuid, image: uuid::Uuid, cache_key: &str) -> String {
    format!("{org}/variants/{image}/{cache_key}")
}
