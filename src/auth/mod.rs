//! Authentication and authorisation: tokens, passwords, roles, and the extractor that enforces a route's policy.

mod extract;
pub mod jwt;
pub mod password;
pub mod revocation;
pub mod routes;
mod service;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use extract::{bearer_token, Authenticated, Authorized, Caller};
pub use jwt::{Claims, TokenKeys};
pub use service::{bootstrap_admin, purge_expired};

/// The bureau's fixed set of roles (API.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Leader,
    WaterResources,
    WaterSaving,
    Finance,
    Enforcement,
    Legal,
    Inspector,
    Platform,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Admin,
        Role::Leader,
        Role::WaterResources,
        Role::WaterSaving,
        Role::Finance,
        Role::Enforcement,
        Role::Legal,
        Role::Inspector,
        Role::Platform,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Leader => "leader",
            Role::WaterResources => "water_resources",
            Role::WaterSaving => "water_saving",
            Role::Finance => "finance",
            Role::Enforcement => "enforcement",
            Role::Legal => "legal",
            Role::Inspector => "inspector",
            Role::Platform => "platform",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Roles stored as a comma-separated column.
    pub fn join(roles: &[Role]) -> String {
        roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }

    pub fn split(s: &str) -> Vec<Role> {
        s.split(',').filter_map(|r| Role::parse(r.trim())).collect()
    }
}

/// Who made a request, as established from a valid, unrevoked token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub sub: String,
    pub username: Option<String>,
    pub department: String,
    pub roles: Vec<Role>,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

impl Principal {
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }
}

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
        impl $crate::auth::Policy for $name {
            const ROLES: &'static [$crate::auth::Role] = &[$($crate::auth::Role::$role),*];
        }
    };
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
