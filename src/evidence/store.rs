//! The blob store of evidence: `object_store` over a local directory (`SHUIWU_EVIDENCE_DIR`, by default
//! `<data dir>/evidence`), one object per SHA-256 (`sha256/ab/abcdef…`). Writes go through a multipart upload in
//! parts of 1 MiB, so that a 50 MiB file is never in memory; the local store writes a staging file and renames
//! it into place when complete, so a blob is either whole or absent.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, GetResult, ObjectStore, ObjectStoreExt, WriteMultipart};

use crate::error::ApiError;

/// Size of the parts a blob is written in (one in flight at a time: an upload holds at most two in memory).
const PART: usize = 1024 * 1024;
/// Size of the reads from the spooled upload.
const READ: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
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
        Ok(Self { inner: Arc::new(fs) })
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

    /// Writes `file` (from its start) as the blob `sha256`; a failure leaves no blob.
    pub async fn put_file(&self, sha256: &str, file: &mut File) -> Result<(), ApiError> {
        file.rewind().map_err(|e| failed("rewind", e))?;
        let upload = self.inner.put_multipart(&Self::key(sha256)).await.map_err(|e| failed("put", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
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
