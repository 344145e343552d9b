//! The extractors that authenticate a request and enforce a route's [`Policy`]; the only place where
//! roles are checked against routes. Denials are written to the audit trail.

use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::{Authenticator, Policy, Principal};
use crate::audit::{self, Actor, AuditCtx, Event};
use crate::clock::Now;
use crate::db::Db;
use crate::error::ApiError;
use crate::http::request_id::request_id;

/// An authenticated caller, the request id and the request's instant: ready to audit what it does.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: Option<String>,
    /// The clock, read once for the whole request.
    pub now: Now,
}

impl Caller {
    pub fn ctx(&self) -> AuditCtx {
        AuditCtx { actor: Actor::from(&self.principal), request_id: self.request_id.clone(), now: self.now }
    }
}

/// The token of an `Authorization: Bearer …` header value (scheme case-insensitive).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    bearer_token(req.headers().get(header::AUTHORIZATION)?.to_str().ok()?)
}

fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let authn =
        req.app_data::<web::Data<Authenticator>>().ok_or_else(|| ApiError::internal("authenticator missing"))?;
    let principal = authn.authenticate(bearer(req))?;
    Ok(Caller { principal, request_id: request_id(req), now: authn.clock.now() })
}

/// Any caller with a valid token, whatever its roles.
pub struct Authenticated(pub Caller);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = futures_util::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        futures_util::future::ready(authenticate(req).map(Authenticated))
    }
}

impl Deref for Authenticated {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

/// A caller holding at least one of `P::ROLES`; others get 403 `forbidden`, and the refusal is audited.
pub struct Authorized<P: Policy>(pub Caller, PhantomData<P>);

impl<P: Policy> Deref for Authorized<P> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<P: Policy + 'static> FromRequest for Authorized<P> {
    type Error = ApiError;
    type Future = futures_util::future::Ready<Result<Self, ApiError>>;

    /// Decides at once (before any other extractor reads the body), so a refused caller always gets 403.
    /// The denial is audited in the background: its outcome does not change the answer.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = match authenticate(req) {
            Ok(c) => c,
            Err(e) => return futures_util::future::ready(Err(e)),
        };
        if caller.principal.has_any(P::ROLES) {
            return futures_util::future::ready(Ok(Authorized(caller, PhantomData)));
        }
        audit_denial(req, &caller);
        futures_util::future::ready(Err(ApiError::Forbidden))
    }
}

/// Writes a permission denial to the audit trail in the background (its outcome does not change the answer),
/// with the request's method and path, bounded. For refusals decided inside a handler as well as by [`Authorized`].
pub fn audit_denial(req: &HttpRequest, caller: &Caller) {
    let Some(db) = req.app_data::<web::Data<Db>>().cloned() else { return };
    let target = audit::untrusted(&format!("{} {}", req.method(), req.path()), 200);
    let ctx = caller.ctx();
    actix_web::rt::spawn(async move {
        let written = db
            .write(move |conn| {
                let ev = Event::new("permission_denied").after(&serde_json::json!({ "request": target }));
                audit::record(conn, &ctx, ev).map_err(ApiError::from)
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not audit a permission denial");
        }
    });
}
