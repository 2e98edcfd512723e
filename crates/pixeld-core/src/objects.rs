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

/// What a receiver answered to a POST.
#[derive(Debug, Clone)]
pub struct Posted {
    /// HTTP status.
    pub status: u16,
    /// The start of the body (at most 1 KiB, lossy UTF-8).
    pub excerpt: String,
}

/// Fetches user-supplied URLs without letting them reach the server's own network.
#[async_trait]
pub trait Fetcher: Send + Sync {
    /// GETs `url`, at most `max_bytes`.
    async fn fetch(&self, url: &str, max_bytes: u64) -> crate::Result<Fetched>;

    /// POSTs `body` to `url` with `headers`, following no redirects, within `timeout`. A
    /// refused address, a connection failure or a timeout is an [`crate::Error::Fetch`]; any
    /// HTTP answer (whatever its status) is `Ok`.
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: std::time::Duration,
    ) -> crate::Result<Posted>;

    /// Checks that `url` is one this fetcher would try (scheme, shape), before it is stored
    /// for later use. Addresses are checked when connecting.
    fn check_target(&self, url: &str) -> crate::Result<()> {
        let ok = url::Url::parse(url)
            .ok()
            .is_some_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
        if ok {
            Ok(())
        } else {
            Err(crate::Error::invalid(
                "url",
                "must be an https:// (or http://) URL with a host",
            ))
        }
    }
}

/// Object key of an uploaded image.
pub fn upload_key(org: uuid::Uuid, image: uuid::Uuid) -> String {
    format!("{org}/uploads/{image}")
}

/// Object key of a derived output.
pub fn variant_key(org: uuid::Uuid, image: uuid::Uuid, cache_key: &str) -> String {
    format!("{org}/variants/{image}/{cache_key}")
}
