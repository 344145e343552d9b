//! Login, refresh, logout and client credentials, with throttling and auditing; bootstrap of the first admin.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::accounts::{self, AccountRow, ServiceAccountRow};
use crate::audit::{self, Actor, AuditCtx, EntityType, Event};
use crate::clock::Now;
use crate::config::{Secret, Settings};
use crate::db::schema::{accounts as acc, idempotency_keys, login_failures as lf, refresh_tokens as rt, revocations};
use crate::db::DbConn;
use crate::error::ApiError;
use crate::identity::Role;
use crate::security::{password, random_token, token_digest};

/// How a caller proved who it is, once the proof has been checked.
pub enum Verified {
    Account(AccountRow),
    Service(ServiceAccountRow),
}

/// Throttle key for a username or client id.
fn throttle_key(kind: &str, name: &str) -> String {
    format!("{kind}:{}", name.trim().to_lowercase())
}

/// 429 when `key` has failed `max` times within `window`; the wait is until the oldest of those leaves it.
pub fn check_throttle(conn: &mut DbConn, key: &str, settings: &Settings) -> Result<(), ApiError> {
    let now = crate::db::now();
    let window = TimeDelta::from_std(settings.login_window).unwrap_or(TimeDelta::minutes(15));
    let max = i64::from(settings.login_max_failures.max(1));
    let recent: Vec<NaiveDateTime> = lf::table
        .filter(lf::username_key.eq(key).and(lf::at.gt(now - window)))
        .order(lf::at.desc())
        .limit(max)
        .select(lf::at)
        .load(conn)?;
    if recent.len() as i64 >= max {
        let oldest = *recent.last().expect("non-empty");
        let wait = (oldest + window - now).num_seconds().max(1);
        return Err(ApiError::RateLimited { retry_after_secs: wait as u64 });
    }
    Ok(())
}

/// Records a failed attempt (throttling) and audits it.
pub fn record_failure(
    conn: &mut DbConn,
    key: &str,
    claimed: &str,
    request_id: Option<String>,
    now: Now,
    action: &str,
) -> Result<(), ApiError> {
    diesel::insert_into(lf::table)
        .values((lf::id.eq(uuid::Uuid::now_v7().to_string()), lf::username_key.eq(key), lf::at.eq(crate::db::now())))
        .execute(conn)?;
    let ctx = AuditCtx { actor: Actor::anonymous(Some(claimed)), request_id, now };
    audit::record(conn, &ctx, Event::new(action))?;
    Ok(())
}

pub fn clear_failures(conn: &mut DbConn, key: &str) -> QueryResult<()> {
    diesel::delete(lf::table.filter(lf::username_key.eq(key))).execute(conn).map(|_| ())
}

pub fn username_key(username: &str) -> String {
    throttle_key("user", username)
}

pub fn client_key(client_id: &str) -> String {
    throttle_key("client", client_id)
}

/// Checks a password against the account found for a username (none: the same work against a dummy hash,
/// so unknown users cost the same time as wrong passwords). CPU-heavy: call it off the async workers.
pub fn check_password(row: Option<AccountRow>, pw: &str) -> Option<AccountRow> {
    let hash = row.as_ref().map(|r| r.password_hash.as_str()).unwrap_or_else(|| password::dummy_hash());
    let ok = password::verify(pw, hash);
    row.filter(|r| ok && r.active)
}

/// Checks a client id and secret (secrets are random, stored as SHA-256).
pub fn verify_client(conn: &mut DbConn, client_id: &str, secret: &str) -> Result<Option<ServiceAccountRow>, ApiError> {
    let row = accounts::find_service_account_by_client_id(conn, client_id)?;
    Ok(row.filter(|r| r.active && constant_eq(&r.secret_hash, &token_digest(secret))))
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Stores a new refresh token for an access token's `jti` and returns the token to hand out.
pub fn store_refresh_token(
    conn: &mut DbConn,
    subject: &str,
    family: &str,
    access_jti: &str,
    ttl: std::time::Duration,
) -> QueryResult<String> {
    let token = random_token(32);
    let now = crate::db::now();
    diesel::insert_into(rt::table)
        .values((
            rt::token_hash.eq(token_digest(&token)),
            rt::subject.eq(subject),
            rt::family_id.eq(family),
            rt::access_jti.eq(access_jti),
            rt::expires_at.eq(now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::hours(12))),
            rt::used_at.eq(None::<NaiveDateTime>),
            rt::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Consumes a refresh token: single use. Presenting a used one again voids its whole family
/// (the token was stolen or replayed). Returns (subject, family) when the token was good.
pub fn consume_refresh_token(conn: &mut DbConn, token: &str) -> Result<Option<(String, String)>, ApiError> {
    let now = crate::db::now();
    let digest = token_digest(token);
    let row: Option<(String, String, NaiveDateTime, Option<NaiveDateTime>)> = rt::table
        .filter(rt::token_hash.eq(&digest))
        .select((rt::subject, rt::family_id, rt::expires_at, rt::used_at))
        .first(conn)
        .optional()?;
    let Some((subject, family, expires_at, used_at)) = row else { return Ok(None) };
    if used_at.is_some() {
        diesel::update(rt::table.filter(rt::family_id.eq(&family).and(rt::used_at.is_null())))
            .set(rt::used_at.eq(Some(now)))
            .execute(conn)?;
        return Ok(None);
    }
    if expires_at <= now {
        return Ok(None);
    }
    let updated = diesel::update(rt::table.filter(rt::token_hash.eq(&digest).and(rt::used_at.is_null())))
        .set(rt::used_at.eq(Some(now)))
        .execute(conn)?;
    Ok((updated == 1).then_some((subject, family)))
}

/// Marks the refresh tokens issued with access token `jti` as used.
pub fn void_refresh_for(conn: &mut DbConn, jti: &str) -> QueryResult<()> {
    diesel::update(rt::table.filter(rt::access_jti.eq(jti).and(rt::used_at.is_null())))
        .set(rt::used_at.eq(Some(crate::db::now())))
        .execute(conn)
        .map(|_| ())
}

/// On an empty database, creates department `office` and the account `admin` (role `admin`).
/// Returns where the generated password was written, if one was generated.
pub fn bootstrap_admin(conn: &mut DbConn, settings: &Settings) -> Result<Option<std::path::PathBuf>, String> {
    let existing: i64 = acc::table.count().get_result(conn).map_err(|e| e.to_string())?;
    if existing > 0 {
        return Ok(None);
    }
    let (password, file) = match &settings.bootstrap_admin_password {
        Some(p) => (p.clone(), None),
        None => {
            let generated = random_token(18);
            let path = settings.data_dir().join("initial-admin-password");
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
        accounts::insert_account(conn, &ctx, "admin", "Administrator", &dept.code, &[Role::Admin], &hash)?;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(file)
}

/// Housekeeping: forgets expired idempotency keys, refresh tokens, revocations and login failures.
pub fn purge_expired(conn: &mut DbConn, settings: &Settings) -> QueryResult<usize> {
    let now = crate::db::now();
    let window = TimeDelta::from_std(settings.login_window).unwrap_or(TimeDelta::minutes(15));
    let mut n = diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.le(now))).execute(conn)?;
    n += diesel::delete(rt::table.filter(rt::expires_at.le(now))).execute(conn)?;
    n += diesel::delete(revocations::table.filter(revocations::expires_at.le(now))).execute(conn)?;
    n += diesel::delete(lf::table.filter(lf::at.le(now - window))).execute(conn)?;
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
    let (actor, entity) = match verified {
        Verified::Account(a) => (
            Actor {
                sub: a.id.clone(),
                username: Some(a.username.clone()),
                department: Some(a.department.clone()),
                roles: Role::split(&a.roles),
            },
            (EntityType::Account, a.id.as_str()),
        ),
        Verified::Service(s) => (
            Actor {
                sub: s.id.clone(),
                username: Some(s.name.clone()),
                department: Some(s.department.clone()),
                roles: Role::split(&s.roles),
            },
            (EntityType::ServiceAccount, s.id.as_str()),
        ),
    };
    audit::record(conn, &AuditCtx { actor, request_id, now }, Event::new(action).entity(entity.0, entity.1))
}
