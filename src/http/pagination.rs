//! Keyset (cursor) pagination: `limit` 1..=500 (default 50) and an opaque `cursor` naming the last row seen.
//! Pages are read strictly after the cursor's key on a unique ordering, so concurrent inserts never cause
//! duplicates or skipped rows among those that existed.

use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::messages::Msg;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Also answer `total`, the number of records matching the filters (for a screen that shows the count).
    pub include_total: Option<bool>,
}

/// A page of a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// With `include_total=true`: how many records match the filters (all pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

impl<T> Page<T> {
    /// The page with its items turned into views.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor, total: self.total }
    }

    pub fn with_total(mut self, total: Option<i64>) -> Self {
        self.total = total;
        self
    }
}

/// Validated page parameters: `after` is the decoded cursor key.
pub struct PageParams<K> {
    pub limit: i64,
    pub after: Option<K>,
    /// Count the records matching the filters.
    pub include_total: bool,
}

pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::invalid("cursor", Msg::Cursor))
}

impl PageQuery {
    pub fn params<K: DeserializeOwned>(&self) -> Result<PageParams<K>, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid("limit", Msg::Between(1, 500)));
        }
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(PageParams { limit, after, include_total: self.include_total.unwrap_or(false) })
    }
}

impl<K> PageParams<K> {
    /// The total of the records matching the filters, when asked for (`count` runs the counting query).
    pub fn total(&self, count: impl FnOnce() -> diesel::QueryResult<i64>) -> diesel::QueryResult<Option<i64>> {
        if self.include_total {
            count().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts the extra row and makes the next cursor from the last row kept.
    pub fn page<T, F: Fn(&T) -> K>(&self, mut rows: Vec<T>, key: F) -> Page<T>
    where
        K: Serialize,
    {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if more { rows.last().map(|r| encode_cursor(&key(r))) } else { None };
        Page { items: rows, next_cursor, total: None }
    }
}
