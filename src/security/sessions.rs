//! Sign-in sessions: the refresh tokens of one login form a family (the session id, `sid` in its access tokens).
//! Refresh tokens are single-use and stored as SHA-256 digests with the account's token epoch; presenting a used
//! one again ends the whole session (it was stolen or replayed), as does logout.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use super::{random_token, token_digest};
use crate::db::schema::refresh_tokens as rt;
use crate::db::DbConn;

/// Stores a new refresh token of session `family`, issued with access token `access_jti` in `epoch`, and returns
/// the token to hand out.
pub fn store_refresh_token(
    conn: &mut DbConn,
    subject: &str,
    family: &str,
    access_jti: &str,
    epoch: i64,
    ttl: std::time::Duration,
    now: NaiveDateTime,
) -> QueryResult<String> {
    let token = random_token(32);
    diesel::insert_into(rt::table)
        .values((
            rt::token_hash.eq(token_digest(&token)),
            rt::subject.eq(subject),
            rt::family_id.eq(family),
            rt::access_jti.eq(access_jti),
            rt::expires_at.eq(now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::hours(12))),
            rt::used_at.eq(None::<NaiveDateTime>),
            rt::created_at.eq(now),
            rt::epoch.eq(epoch),
        ))
        .execute(conn)?;
    Ok(token)
}

/// What presenting a refresh token found.
#[derive(Debug)]
pub enum Refresh {
    /// Good: it is now used; issue the next pair in this session.
    Fresh { subject: String, family: String, epoch: i64 },
    /// Already used: the session is ended (every refresh token of the family voided); end its access tokens too.
    Reused { family: String },
    /// Unknown or expired.
    Invalid,
}

/// Consumes a refresh token (single use).
pub fn consume(conn: &mut DbConn, token: &str, now: NaiveDateTime) -> QueryResult<Refresh> {
    let digest = token_digest(token);
    let row: Option<(String, String, NaiveDateTime, Option<NaiveDateTime>, i64)> = rt::table
        .filter(rt::token_hash.eq(&digest))
        .select((rt::subject, rt::family_id, rt::expires_at, rt::used_at, rt::epoch))
        .first(conn)
        .optional()?;
    let Some((subject, family, expires_at, used_at, epoch)) = row else { return Ok(Refresh::Invalid) };
    if used_at.is_some() {
        end_family(conn, &family, now)?;
        return Ok(Refresh::Reused { family });
    }
    if expires_at <= now {
        return Ok(Refresh::Invalid);
    }
    let updated = diesel::update(rt::table.filter(rt::token_hash.eq(&digest).and(rt::used_at.is_null())))
        .set(rt::used_at.eq(Some(now)))
        .execute(conn)?;
    if updated != 1 {
        // Used by a concurrent request in the meantime: a replay.
        end_family(conn, &family, now)?;
        return Ok(Refresh::Reused { family });
    }
    Ok(Refresh::Fresh { subject, family, epoch })
}

/// Voids every unused refresh token of one session.
pub fn end_family(conn: &mut DbConn, family: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(rt::table.filter(rt::family_id.eq(family).and(rt::used_at.is_null())))
        .set(rt::used_at.eq(Some(now)))
        .execute(conn)
        .map(|_| ())
}

/// Ends every session of an account (password, roles or standing changed): its refresh tokens are deleted.
pub fn end_all(conn: &mut DbConn, subject: &str) -> QueryResult<()> {
    diesel::delete(rt::table.filter(rt::subject.eq(subject))).execute(conn).map(|_| ())
}
