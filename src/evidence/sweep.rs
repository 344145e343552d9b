//! Removing blobs no evidence row refers to. An upload writes its blob before the transaction that records it; a
//! crash in between (or a failed clean-up) leaves the blob behind. `shuiwu sweep-evidence` removes such blobs once
//! they are older than a grace period, each under its digest's lock after checking again that nothing refers to it
//! — the lock an upload of the same bytes takes too, and an upload that finds its blob gone writes it again from
//! its spooled file, so a sweep never costs an upload its file.

use futures_util::StreamExt;

use super::{blob_lock, referenced, BlobStore};
use crate::db::Db;
use crate::error::ApiError;

/// What a sweep found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Blobs older than the grace period.
    pub checked: u64,
    /// Of those, the ones no row referred to, now removed.
    pub removed: u64,
}

/// Removes the blobs written before `cutoff` that no evidence row refers to (`dry_run`: counts them only).
pub async fn sweep(
    store: &BlobStore,
    db: &Db,
    cutoff: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
) -> Result<Swept, ApiError> {
    let mut found = Box::pin(store.older_than(cutoff));
    let mut swept = Swept::default();
    while let Some(sha) = found.next().await {
        let sha = sha?;
        swept.checked += 1;
        let (inner, handle, name) = (store.clone(), tokio::runtime::Handle::current(), sha.clone());
        let removed = db
            .write(move |conn| {
                crate::db::lock_names(conn, &[&blob_lock(&sha)])?;
                if referenced(conn, &sha)? {
                    return Ok(false);
                }
                if !dry_run {
                    handle.block_on(inner.delete(&sha))?;
                }
                Ok::<_, ApiError>(true)
            })
            .await?;
        if removed {
            tracing::info!(sha256 = %name, dry_run, "orphaned evidence blob");
            swept.removed += 1;
        }
    }
    Ok(swept)
}
