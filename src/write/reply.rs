//! A write's answer, made inside the write's transaction: [`transact`] runs the write, and when the request carries
//! an `Idempotency-Key` it stores the answer as the key's outcome in that same transaction, so the change and its
//! stored outcome commit together or not at all.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use super::idempotency;
use crate::db::{Db, DbConn};
use crate::error::ApiResult;
use crate::http::etag::etag;

/// Status, ETag, Location and JSON body of a successful write.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Option<i64>,
    pub location: Option<String>,
    /// JSON; `None` for 204.
    pub body: Option<Vec<u8>>,
}

impl Reply {
    /// 200 with the whole resource and its ETag (actions and PATCH).
    pub fn ok<T: Serialize>(version: i64, body: &T) -> Self {
        Self::json(StatusCode::OK, Some(version), body)
    }

    /// 201 Created: the record, its ETag, and `Location` pointing at it.
    pub fn created<T: Serialize>(location: String, version: i64, body: &T) -> Self {
        Self { location: Some(location), ..Self::json(StatusCode::CREATED, Some(version), body) }
    }

    pub fn no_content() -> Self {
        Self { status: StatusCode::NO_CONTENT, version: None, location: None, body: None }
    }

    pub fn json<T: Serialize>(status: StatusCode, version: Option<i64>, body: &T) -> Self {
        Self { status, version, location: None, body: Some(serde_json::to_vec(body).unwrap_or_default()) }
    }

    /// The headers a replay gives back.
    pub fn headers(&self) -> Vec<(HeaderName, String)> {
        let mut h = Vec::new();
        if self.body.is_some() {
            h.push((header::CONTENT_TYPE, "application/json".to_string()));
        }
        if let Some(v) = self.version {
            h.push((header::ETAG, etag(v)));
        }
        if let Some(l) = &self.location {
            h.push((header::LOCATION, l.clone()));
        }
        h
    }

    pub fn into_response(self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        for (name, value) in self.headers() {
            if let Ok(v) = HeaderValue::from_str(&value) {
                res.insert_header((name, v));
            }
        }
        match self.body {
            Some(body) => res.body(body),
            None => res.finish(),
        }
    }
}

/// Runs the write `f` in one transaction and answers its [`Reply`]. Under an `Idempotency-Key` the reply is
/// stored as the key's outcome in the same transaction; if another request has taken the key over meanwhile,
/// the whole write rolls back (409) instead of running twice.
pub async fn transact<F>(db: &Db, f: F) -> ApiResult<HttpResponse>
where
    F: FnOnce(&mut DbConn) -> ApiResult<Reply> + Send + 'static,
{
    Ok(transact_then(db, move |conn| Ok((f(conn)?, ()))).await?.0)
}

/// Like [`transact`], also handing back what the write returns beside its reply (for work after the commit).
pub async fn transact_then<T, F>(db: &Db, f: F) -> ApiResult<(HttpResponse, T)>
where
    F: FnOnce(&mut DbConn) -> ApiResult<(Reply, T)> + Send + 'static,
    T: Send + 'static,
{
    let claim = idempotency::current_claim();
    let inside = claim.clone();
    let (reply, value) = db
        .write(move |conn| {
            let (reply, value) = f(conn)?;
            if let Some(claim) = &inside {
                claim.finish_in(conn, &reply)?;
            }
            Ok((reply, value))
        })
        .await?;
    if let Some(claim) = claim {
        claim.committed();
    }
    Ok((reply.into_response(), value))
}
