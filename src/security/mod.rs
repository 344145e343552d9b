//! Security machinery: tokens, passwords, revocation, and the extractors that authenticate a request and enforce
//! a route's policy. The `/auth` routes (sign-in) are a feature folder of their own (`crate::auth`).

mod extract;
pub mod jwt;
pub mod password;
pub mod rate;
pub mod revocation;
pub mod sessions;
pub mod throttle;

use std::sync::Arc;

pub use extract::{audit_denial, bearer_token, Authenticated, Authorized, Caller};
pub use jwt::{Claims, TokenKeys};

pub use crate::identity::{Principal, Role};

use crate::clock::Clock;
use crate::error::ApiError;
use crate::messages::Msg;
use revocation::Revocations;

/// The roles that may read the audit trail, and with it who did what (docs/api.md).
pub const AUDIT_READERS: &[Role] = &[Role::Admin, Role::Auditor];

/// A route's access rule: the roles that may call it. Declared next to each route with [`policy!`]
/// and enforced by the [`Authorized`] extractor; the same list is the operation's security scopes in OpenAPI.
pub trait Policy {
    const ROLES: &'static [Role];
}

/// Declares a policy type: `policy!(WaterUsersWrite = [WaterResources, WaterSaving, Enforcement]);`
#[macro_export]
macro_rules! policy {
    ($(#[$meta:meta])* $name:ident = [$($role:ident),* $(,)?]) => {
        $(#[$meta])*
        pub struct $name;
        impl $crate::security::Policy for $name {
            const ROLES: &'static [$crate::identity::Role] = &[$($crate::identity::Role::$role),*];
        }
    };
}

/// What authenticating a request needs: the keys, the revocation list and the clock. Shared by the extractors,
/// the idempotency middleware and the sign-in routes.
pub struct Authenticator {
    pub keys: TokenKeys,
    pub revocations: Arc<Revocations>,
    pub clock: Arc<Clock>,
}

impl Authenticator {
    /// The principal of a bearer token: signature, claims and revocation checked.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Principal, ApiError> {
        let token = token.ok_or(ApiError::Unauthorized(Msg::TokenMissing))?;
        let principal = self.keys.verify(token).ok_or(ApiError::Unauthorized(Msg::TokenInvalid))?;
        match self.revocations.refusal(&principal) {
            Some(why) => Err(ApiError::Unauthorized(why)),
            None => Ok(principal),
        }
    }
}

/// The client's address for throttling: the TCP peer, or (behind a reverse proxy, when `trust_forwarded` is set)
/// the last address in `X-Forwarded-For` — the one the proxy itself appended; earlier entries are whatever the
/// client claimed.
pub fn client_address(req: &actix_web::HttpRequest, trust_forwarded: bool) -> String {
    let forwarded = trust_forwarded
        .then(|| req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).last())
        .flatten()
        .and_then(|v| v.rsplit(',').map(str::trim).find(|a| !a.is_empty()))
        .map(str::to_string);
    let peer = req.connection_info().peer_addr().map(str::to_string);
    let addr = forwarded.or(peer).unwrap_or_else(|| "unknown".into());
    let addr = addr.as_str();
    // A socket address without its port; a bare IP (or IPv6 in brackets) as it is.
    match addr.parse::<std::net::SocketAddr>() {
        Ok(sa) => sa.ip().to_string(),
        Err(_) => addr.chars().take(64).collect(),
    }
}

/// A random URL-safe string of `bytes` random bytes (refresh tokens, client secrets, generated passwords).
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 of a secret token, hex: what is stored instead of the token itself.
pub fn token_digest(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}
