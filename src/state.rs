//! What every handler can reach. Below the route modules and `startup`, which only builds it.

use std::sync::Arc;

use actix_web::HttpResponse;

use crate::clock::Now;
use crate::config::Settings;
use crate::db::{Db, DbConn};
use crate::error::ApiResult;
use crate::evidence::BlobStore;
use crate::metrics::Metrics;
use crate::security::password::Hashing;
use crate::security::Authenticator;
use crate::write::Reply;

pub struct AppState {
    pub db: Db,
    pub authn: Arc<Authenticator>,
    pub settings: Arc<Settings>,
    /// Argon2, bounded (see `Hashing`).
    pub hashing: Arc<Hashing>,
    /// Where evidence files are kept.
    pub evidence: BlobStore,
    /// This instance's metrics (`GET /metrics`).
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// The clock, for handlers without a caller (sign-in); authenticated handlers use `caller.now`.
    pub fn now(&self) -> Now {
        self.authn.clock.now()
    }

    /// Runs a write in one transaction and answers its reply (see [`crate::write::transact`]).
    pub async fn write<F>(&self, f: F) -> ApiResult<HttpResponse>
    where
        F: FnOnce(&mut DbConn) -> ApiResult<Reply> + Send + 'static,
    {
        crate::write::transact(&self.db, f).await
    }

    /// Like [`AppState::write`], also handing back what the write returns beside its reply.
    pub async fn write_then<T, F>(&self, f: F) -> ApiResult<(HttpResponse, T)>
    where
        F: FnOnce(&mut DbConn) -> ApiResult<(Reply, T)> + Send + 'static,
        T: Send + 'static,
    {
        crate::write::transact_then(&self.db, f).await
    }
}
