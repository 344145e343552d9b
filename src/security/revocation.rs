//! Revoked tokens. The database is the source of truth (table `revocations`); each instance keeps a copy
//! that it reloads every `SHUIWU_REVOCATION_REFRESH` (1 s by default) and updates at once for revocations
//! it makes itself, so checking a token costs no database round trip.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::Principal;
use crate::db::schema::revocations::dsl as r;
use crate::db::DbConn;

#[derive(Default)]
struct State {
    /// jti → expiry (unix seconds)
    jtis: HashMap<String, i64>,
    /// subject → (tokens issued before this instant are void, entry expiry)
    subjects: HashMap<String, (i64, i64)>,
}

#[derive(Default)]
pub struct Revocations {
    state: RwLock<State>,
}

impl Revocations {
    pub fn is_revoked(&self, p: &Principal) -> bool {
        let s = self.state.read().expect("revocation lock poisoned");
        s.jtis.contains_key(&p.jti) || s.subjects.get(&p.sub).is_some_and(|(nbf, _)| p.iat < *nbf)
    }

    pub fn note_jti(&self, jti: &str, exp: i64) {
        self.state.write().expect("revocation lock poisoned").jtis.insert(jti.to_string(), exp);
    }

    pub fn note_subject(&self, sub: &str, not_before: i64, exp: i64) {
        let mut s = self.state.write().expect("revocation lock poisoned");
        let entry = s.subjects.entry(sub.to_string()).or_insert((not_before, exp));
        *entry = (entry.0.max(not_before), entry.1.max(exp));
    }

    /// Merges in every unexpired revocation from the database and forgets expired ones.
    pub fn reload(&self, conn: &mut DbConn) -> QueryResult<()> {
        let now = crate::db::now();
        let rows: Vec<(String, String, Option<NaiveDateTime>, NaiveDateTime)> = r::revocations
            .filter(r::expires_at.gt(now))
            .select((r::kind, r::value, r::not_before, r::expires_at))
            .load(conn)?;
        let now_s = now.and_utc().timestamp();
        let mut s = self.state.write().expect("revocation lock poisoned");
        s.jtis.retain(|_, exp| *exp > now_s);
        s.subjects.retain(|_, (_, exp)| *exp > now_s);
        drop(s);
        for (kind, value, not_before, expires_at) in rows {
            let exp = expires_at.and_utc().timestamp();
            match (kind.as_str(), not_before) {
                ("jti", _) => self.note_jti(&value, exp),
                ("sub", Some(nbf)) => self.note_subject(&value, nbf.and_utc().timestamp(), exp),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Records that the token `jti` is void until it would have expired anyway.
pub fn revoke_jti(conn: &mut DbConn, jti: &str, exp: i64) -> QueryResult<()> {
    let now = crate::db::now();
    let expires_at = chrono::DateTime::from_timestamp(exp, 0).map(|d| d.naive_utc()).unwrap_or(now);
    diesel::insert_into(r::revocations)
        .values((
            r::id.eq(uuid::Uuid::now_v7().to_string()),
            r::kind.eq("jti"),
            r::value.eq(jti),
            r::not_before.eq(None::<NaiveDateTime>),
            r::expires_at.eq(expires_at),
            r::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Voids every token of `sub` issued up to now (account deactivated or its roles changed).
/// Returns (not_before, expiry) as unix seconds for the local cache.
pub fn revoke_subject(conn: &mut DbConn, sub: &str, max_token_ttl: std::time::Duration) -> QueryResult<(i64, i64)> {
    let now = crate::db::now();
    let not_before = now + chrono::TimeDelta::seconds(1);
    let expires_at = now + chrono::TimeDelta::from_std(max_token_ttl).unwrap_or(chrono::TimeDelta::hours(1));
    diesel::insert_into(r::revocations)
        .values((
            r::id.eq(uuid::Uuid::now_v7().to_string()),
            r::kind.eq("sub"),
            r::value.eq(sub),
            r::not_before.eq(Some(not_before)),
            r::expires_at.eq(expires_at),
            r::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok((not_before.and_utc().timestamp(), expires_at.and_utc().timestamp()))
}
