//! `/api/v1/auth/*`: sign-in with a password, refresh, logout, client credentials, who-am-I; and the first
//! account of a new database. The machinery they use (tokens, passwords, revocation) is in `crate::security`.

pub mod routes;
mod service;

pub use service::{bootstrap_admin, purge_expired};
