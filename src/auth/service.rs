//! Sign-in logic behind `/auth`: throttled password and secret checks, token pairs, auditing; and the first
//! account of a new database.

use diesel::prelude::*;

use crate::accounts::{self, AccountRow, ServiceAccountRow};
use crate::audit::{self, Actor, AuditCtx, EntityType, Event};
use crate::clock::Now;
use crate::config::{Secret, Settings};
use crate::db::schema::{accounts as acc, idempotency_keys, refresh_tokens as rt, revocations};
use crate::db::DbConn;
use crate::error::ApiError;
use crate::identity::Role;
use crate::security::jwt::Subject;
use crate::security::throttle;
use crate::security::{password, random_token, token_digest, Claims, TokenKeys};

/// How a caller proved who it is, once the proof has been checked.
pub enum Verified {
    Account(AccountRow),
    Service(ServiceAccountRow),
}

impl Verified {
    /// Signs an access token for the verified caller (in its current token epoch).
    pub fn issue(&self, keys: &TokenKeys, session: Option<&str>, ttl: std::time::Duration) -> (String, Claims) {
        let (sub, username, department, roles, epoch) = match self {
            Verified::Account(a) => (&a.id, &a.username, &a.department, &a.roles, a.token_epoch),
            Verified::Service(s) => (&s.id, &s.name, &s.department, &s.roles, s.token_epoch),
        };
        let roles = Role::split(roles);
        let subject = Subject { sub, username: Some(username), department, roles: &roles, epoch, session };
        keys.issue(&subject, ttl)
    }

    fn actor(&self) -> (Actor, EntityType, &str) {
        match self {
            Verified::Account(a) => (
                Actor {
                    sub: a.id.clone(),
                    username: Some(a.username.clone()),
                    department: Some(a.department.clone()),
                    roles: Role::split(&a.roles),
                },
                EntityType::Account,
                &a.id,
            ),
            Verified::Service(s) => (
                Actor {
                    sub: s.id.clone(),
                    username: Some(s.name.clone()),
                    department: Some(s.department.clone()),
                    roles: Role::split(&s.roles),
                },
                EntityType::ServiceAccount,
                &s.id,
            ),
        }
    }
}

/// A username as stored: usernames are lower case without surrounding spaces, so `"ZHANG "` names `zhang`.
pub fn canonical_username(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Audits a failed proof (the attempt stays counted as a failure).
pub fn record_failure(
    conn: &mut DbConn,
    claimed: &str,
    request_id: Option<String>,
    now: Now,
    action: &str,
) -> Result<(), ApiError> {
    let ctx = AuditCtx { actor: Actor::anonymous(Some(claimed)), request_id, now };
    audit::record(conn, &ctx, Event::new(action))?;
    Ok(())
}

/// Checks a password against the account found for a username (none: the same work against a dummy hash,
/// so unknown users cost the same time as wrong passwords). CPU-heavy: run it through `password::Hashing`.
pub fn check_password(row: Option<AccountRow>, pw: &str) -> Option<AccountRow> {
    let hash = row.as_ref().map(|r| r.password_hash.as_str()).unwrap_or_else(|| password::dummy_hash());
    let ok = password::verify(pw, hash);
    row.filter(|r| ok && r.active)
}

/// Checks a client id and secret (secrets are random, stored as SHA-256): whether the client exists, and the
/// service account when the secret is right and the account active.
pub fn verify_client(
    conn: &mut DbConn,
    client_id: &str,
    secret: &str,
) -> Result<(bool, Option<ServiceAccountRow>), ApiError> {
    let row = accounts::find_service_account_by_client_id(conn, client_id)?;
    let exists = row.is_some();
    Ok((exists, row.filter(|r| r.active && constant_eq(&r.secret_hash, &token_digest(secret)))))
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// On an empty database, creates department `office` and the account `admin` (role `admin`). Its password is
/// `SHUIWU_BOOTSTRAP_ADMIN_PASSWORD` when that is set and non-empty — refused when below the password policy —
/// or a generated one, written to `<data dir>/initial-admin-password` (mode 0600). Returns where the generated
/// password was written, if one was generated.
pub fn bootstrap_admin(conn: &mut DbConn, settings: &Settings) -> Result<Option<std::path::PathBuf>, String> {
    if let Some(p) = settings.bootstrap_password() {
        password::check_policy(p.expose()).map_err(|m| {
            format!(
                "SHUIWU_BOOTSTRAP_ADMIN_PASSWORD {}; set a longer one, or unset it for a generated one",
                m.render(crate::messages::Lang::En)
            )
        })?;
    }
    let existing: i64 = acc::table.count().get_result(conn).map_err(|e| e.to_string())?;
    if existing > 0 {
        return Ok(None);
    }
    let (password, file) = match settings.bootstrap_password() {
        Some(p) => (p.clone(), None),
        None => {
            let generated = random_token(18);
            let path = accounts::initial_password_file(settings);
            let _ = std::fs::remove_file(&path);
            crate::config::write_private_file(&path, &format!("{generated}\n"))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            (generated.parse::<Secret>().expect("infallible"), Some(path))
        }
    };
    let hash = password::hash(password.expose());
    let ctx = AuditCtx { actor: Actor::system(), request_id: None, now: Now::from_utc(chrono::Utc::now()) };
    crate::db::write_transaction(conn, |conn| -> Result<(), ApiError> {
        let dept = match accounts::find_department_by_code(conn, "office")? {
            Some(d) => d,
            None => accounts::insert_department(conn, &ctx, "office", "办公室")?,
        };
        accounts::insert_account(
            conn,
            &ctx,
            accounts::BOOTSTRAP_USERNAME,
            "Administrator",
            &dept.code,
            &[Role::Admin],
            &hash,
        )?;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(file)
}

/// Housekeeping: forgets expired idempotency keys, refresh tokens, revocations and sign-in attempts.
pub fn purge_expired(conn: &mut DbConn, settings: &Settings) -> QueryResult<usize> {
    let now = crate::db::now();
    let mut n = diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.le(now))).execute(conn)?;
    n += diesel::delete(rt::table.filter(rt::expires_at.le(now))).execute(conn)?;
    n += diesel::delete(revocations::table.filter(revocations::expires_at.le(now))).execute(conn)?;
    n += throttle::purge(conn, settings.login_window, now)?;
    Ok(n)
}

/// Audits a successful sign-in or token grant.
pub fn audit_sign_in(
    conn: &mut DbConn,
    verified: &Verified,
    action: &str,
    request_id: Option<String>,
    now: Now,
) -> QueryResult<()> {
    let (actor, entity, id) = verified.actor();
    audit::record(conn, &AuditCtx { actor, request_id, now }, Event::new(action).entity(entity, id))
}
