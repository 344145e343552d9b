//! The blob store of evidence: `object_store` over a local directory (`SHUIWU_EVIDENCE_DIR`, by default
//! `<data dir>/evidence`), one object per SHA-256 (`sha256/ab/abcdef…`). Writes go through a multipart upload in
//! parts of 1 MiB (5 MiB in S3), so that a 50 MiB file is never in memory; the local store writes a staging file and renames
//! it into place when complete, so a blob is either whole or absent. With the `s3` feature, `SHUIWU_EVIDENCE_URL`
//! puts the same objects in S3-compatible storage instead.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, GetResult, ObjectStore, ObjectStoreExt, WriteMultipart};

use crate::error::ApiError;

/// Size of the parts a blob is written in locally (one in flight at a time: an upload holds at most two in memory).
const PART: usize = 1024 * 1024;
/// Size of the parts in S3, whose parts but the last must be at least 5 MiB.
#[cfg(feature = "s3")]
const S3_PART: usize = 5 * 1024 * 1024;
/// Size of the reads from the spooled upload.
const READ: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    /// Size of the parts of a multipart write.
    part: usize,
}

fn failed(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("evidence store: {what}: {e}"))
}

impl BlobStore {
    /// A store in the local directory `dir` (created if missing).
    pub fn local(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the evidence directory {}: {e}", dir.display()))?;
        // fsync before the rename: a blob the database refers to must survive a power cut with it.
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| format!("cannot open the evidence directory {}: {e}", dir.display()))?
            .with_fsync(true);
        Ok(Self { inner: Arc::new(fs), part: PART })
    }

    /// A store in S3-compatible object storage at `url` (`s3://bucket` or `s3://bucket/prefix`), configured by the
    /// `AWS_*` environment variables. Multipart uploads are completed only when whole, so a blob is either whole
    /// or absent there too.
    #[cfg(feature = "s3")]
    pub fn s3(url: &str) -> Result<Self, String> {
        let (bucket, prefix) = parse_s3_url(url)?;
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            // A request that hangs must not hold an upload's transaction (and its pooled connection) for the
            // client's default three minutes of retries.
            // (A setting, not `with_client_options`, which would replace those the environment gave, such as
            // AWS_ALLOW_HTTP.)
            .with_config(object_store::aws::AmazonS3ConfigKey::Client(object_store::ClientConfigKey::Timeout), "20s")
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(30),
                ..Default::default()
            })
            .build()
            .map_err(|e| format!("cannot open the evidence store {url} (SHUIWU_EVIDENCE_URL): {e}"))?;
        let inner: Arc<dyn ObjectStore> = match prefix {
            "" => Arc::new(s3),
            p => Arc::new(object_store::prefix::PrefixStore::new(s3, p)),
        };
        Ok(Self { inner, part: S3_PART })
    }

    /// Without the `s3` feature, a configured S3 store is refused at start-up rather than ignored.
    #[cfg(not(feature = "s3"))]
    pub fn s3(url: &str) -> Result<Self, String> {
        parse_s3_url(url)?;
        Err(format!(
            "SHUIWU_EVIDENCE_URL is {url}, but this build has no S3 support: build with `cargo build --release --features s3`"
        ))
    }

    fn key(sha256: &str) -> ObjectPath {
        ObjectPath::from(format!("sha256/{}/{sha256}", &sha256[..2.min(sha256.len())]))
    }

    /// Whether the blob `sha256` is stored.
    pub async fn exists(&self, sha256: &str) -> Result<bool, ApiError> {
        match self.inner.head(&Self::key(sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(failed("head", e)),
        }
    }

    /// Writes `file` (from its start) as the blob `sha256`; a failure leaves no blob. A file of at most one part
    /// goes in one request (in S3, nothing to complete or abort); a larger one part by part.
    pub async fn put_file(&self, sha256: &str, file: &mut File) -> Result<(), ApiError> {
        file.rewind().map_err(|e| failed("rewind", e))?;
        let len = file.metadata().map_err(|e| failed("stat", e))?.len();
        if len <= self.part as u64 {
            // Read off the async worker (up to one part).
            let mut spooled = file.try_clone().map_err(|e| failed("read", e))?;
            let bytes = actix_web::web::block(move || {
                let mut bytes = Vec::with_capacity(len as usize);
                spooled.read_to_end(&mut bytes).map(|_| bytes)
            })
            .await
            .map_err(|e| failed("read", e))?
            .map_err(|e| failed("read", e))?;
            return self.inner.put(&Self::key(sha256), bytes.into()).await.map(|_| ()).map_err(|e| failed("put", e));
        }
        let upload = self.inner.put_multipart(&Self::key(sha256)).await.map_err(|e| failed("put", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part);
        let mut buf = vec![0u8; READ];
        loop {
            let n = match file.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(failed("read", e));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(1).await {
                let _ = writer.abort().await;
                return Err(failed("put", e));
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map(|_| ()).map_err(|e| failed("put", e))
    }

    /// The blob `sha256`, whole or the byte range `range` (start inclusive, end exclusive).
    pub async fn get(&self, sha256: &str, range: Option<std::ops::Range<u64>>) -> Result<GetResult, ApiError> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        self.inner.get_opts(&Self::key(sha256), options).await.map_err(|e| failed("get", e))
    }

    /// The digests of the blobs last written before `cutoff`, in the store's order, as they are listed.
    pub fn older_than(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> impl futures_util::Stream<Item = Result<String, ApiError>> + '_ {
        use futures_util::StreamExt;
        self.inner.list(Some(&ObjectPath::from("sha256"))).filter_map(move |meta| async move {
            match meta {
                Err(e) => Some(Err(failed("list", e))),
                Ok(m) if m.last_modified >= cutoff => None,
                Ok(m) => {
                    let name = m.location.filename()?.to_string();
                    // Only whole blobs (staging files of writes in progress carry a suffix).
                    (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())).then_some(Ok(name))
                }
            }
        })
    }

    pub async fn delete(&self, sha256: &str) -> Result<(), ApiError> {
        match self.inner.delete(&Self::key(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failed("delete", e)),
        }
    }
}

/// The bucket and the key prefix (without surrounding slashes) of `s3://bucket/prefix`.
fn parse_s3_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("SHUIWU_EVIDENCE_URL must look like s3://bucket or s3://bucket/prefix, not {url}"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("SHUIWU_EVIDENCE_URL names no bucket: {url}"));
    }
    Ok((bucket, prefix.trim_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::parse_s3_url;

    #[test]
    fn s3_urls_name_a_bucket_and_an_optional_prefix() {
        assert_eq!(parse_s3_url("s3://evidence"), Ok(("evidence", "")));
        assert_eq!(parse_s3_url("s3://evidence/"), Ok(("evidence", "")));
        assert_eq!(parse_s3_url("s3://bureau/shuiwu/evidence/"), Ok(("bureau", "shuiwu/evidence")));
        assert!(parse_s3_url("s3:///evidence").is_err());
        assert!(parse_s3_url("https://evidence").is_err());
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn without_the_feature_an_s3_store_is_refused_not_ignored() {
        let e = super::BlobStore::s3("s3://evidence").unwrap_err();
        assert!(e.contains("--features s3"), "{e}");
    }
}
