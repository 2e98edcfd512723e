//! Object storage through `object_store`: a local folder by default, any S3-compatible bucket
//! by configuration.

use std::sync::Arc;

use async_trait::async_trait;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use pixeld_core::objects::BlobStore;

use crate::config::{Config, ObjectsConfig};

/// A [`BlobStore`] on any `object_store` backend.
pub struct Objects {
    inner: Arc<dyn ObjectStore>,
    describe: String,
}

impl Objects {
    /// Opens the store named by the configuration.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        match &config.objects {
            ObjectsConfig::Local { path } => {
                let dir = path.clone().unwrap_or_else(|| config.data.join("objects"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)?
                    .with_automatic_cleanup(true);
                Ok(Self {
                    inner: Arc::new(fs),
                    describe: format!("local {}", dir.display()),
                })
            }
            ObjectsConfig::S3 {
                bucket,
                region,
                endpoint,
                access_key_id,
                secret_access_key,
                allow_http,
            } => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region);
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
                }
                if let (Some(k), Some(s)) = (access_key_id, secret_access_key) {
                    b = b.with_access_key_id(k).with_secret_access_key(s);
                }
                if *allow_http {
                    b = b.with_allow_http(true);
                }
                let s3 = b.build()?;
                Ok(Self {
                    inner: Arc::new(s3),
                    describe: format!("s3 {bucket}"),
                })
            }
        }
    }
}

fn err(e: object_store::Error) -> pixeld_core::Error {
    pixeld_core::Error::Internal(format!("object storage: {e}"))
}

#[async_trait]
impl BlobStore for Objects {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> pixeld_core::Result<()> {
        self.inner
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await
            .map(drop)
            .map_err(err)
    }

    async fn get(&self, key: &str) -> pixeld_core::Result<Option<Vec<u8>>> {
        match self.inner.get(&ObjectPath::from(key)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(err)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    async fn delete(&self, key: &str) -> pixeld_core::Result<()> {
        match self.inner.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
