//! What every handler can reach. Below the route modules and `startup`, which only builds it.

use std::sync::Arc;

use actix_web::HttpResponse;

use crate::clock::Now;
use crate::config::Settings;
use crate::db::{Db, DbConn};
use crate::error::ApiResult;
use crate::security::Authenticator;
use crate::write::Reply;

pub struct AppState {
    pub db: Db,
    pub authn: Arc<Authenticator>,
    pub settings: Arc<Settings>,
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
}
