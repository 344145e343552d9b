//! What ends tokens before they expire. The database is the source of truth; each instance keeps a copy that it
//! reloads every `SHUIWU_REVOCATION_REFRESH` (1 s by default) and updates at once for changes it makes itself, so
//! checking a token costs no database round trip.
//!
//! - **Single tokens** (`jti`): logout of a token outside a sign-in session (external issuers, operator tokens).
//! - **Sessions**: every access token of one refresh-token family (logout; a used refresh token presented again).
//! - **Accounts**: each local account and service account has a token epoch, bumped by a password change or reset,
//!   a role or department change, deactivation or secret rotation; tokens of an older epoch, and every token of an
//!   inactive account, are refused whatever their age.
//!
//! A revocation lasts until every token it covers has expired, leeway included.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::jwt::{LEEWAY_SECS, MAX_TOKEN_LIFETIME_SECS};
use super::Principal;
use crate::db::schema::revocations::dsl as r;
use crate::db::schema::{accounts, service_accounts};
use crate::db::DbConn;
use crate::messages::Msg;

/// An account's standing as authentication sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub epoch: i64,
    pub active: bool,
}

#[derive(Default)]
struct State {
    /// scoped jti → expiry (unix seconds)
    jtis: HashMap<String, i64>,
    /// session (refresh family) → expiry
    sessions: HashMap<String, i64>,
    /// local account or service account id → standing
    accounts: HashMap<String, Standing>,
    /// service account id → (the record's version, its own request-rate limit in requests a minute, if it has one)
    service_limits: HashMap<String, (i64, Option<i32>)>,
}

#[derive(Default)]
pub struct Revocations {
    state: RwLock<State>,
}

/// The key a jti is revoked under: a local token's jti, or `issuer#jti` for an external issuer's.
pub fn jti_key(p: &Principal) -> String {
    if p.local {
        p.jti.clone()
    } else {
        format!("{}#{}", p.issuer, p.jti)
    }
}

impl Revocations {
    /// Why the token must be refused, if it must.
    pub fn refusal(&self, p: &Principal) -> Option<Msg> {
        let s = self.state.read().expect("revocation lock poisoned");
        if s.jtis.contains_key(&jti_key(p)) {
            return Some(Msg::TokenRevoked);
        }
        if p.local {
            if p.session.as_ref().is_some_and(|sid| s.sessions.contains_key(sid)) {
                return Some(Msg::SessionEnded);
            }
            if let Some(standing) = s.accounts.get(&p.sub) {
                if !standing.active {
                    return Some(Msg::AccountInactive);
                }
                if p.epoch < standing.epoch {
                    return Some(Msg::TokenBeforeChange);
                }
            }
        }
        None
    }

    /// For a service account: its own request-rate limit (`Some(None)`: the default applies). `None` for anyone
    /// else. As of the last reload, or a change this instance made since.
    pub fn service_limit(&self, id: &str) -> Option<Option<i32>> {
        self.state.read().expect("revocation lock poisoned").service_limits.get(id).map(|(_, limit)| *limit)
    }

    /// Records a service account's limit as of its record's `version` (after the transaction that set it
    /// committed); an older version's, read by a reload that began before, never replaces it.
    pub fn note_service_limit(&self, id: &str, version: i64, limit: Option<i32>) {
        let mut s = self.state.write().expect("revocation lock poisoned");
        let entry = s.service_limits.entry(id.to_string()).or_insert((version, limit));
        if version >= entry.0 {
            *entry = (version, limit);
        }
    }

    pub fn note_jti(&self, key: &str, until: i64) {
        self.state.write().expect("revocation lock poisoned").jtis.insert(key.to_string(), until);
    }

    pub fn note_session(&self, sid: &str, until: i64) {
        self.state.write().expect("revocation lock poisoned").sessions.insert(sid.to_string(), until);
    }

    /// Records an account's new standing (after the transaction that changed it committed).
    pub fn note_standing(&self, id: &str, standing: Standing) {
        let mut s = self.state.write().expect("revocation lock poisoned");
        let entry = s.accounts.entry(id.to_string()).or_insert(standing);
        if standing.epoch >= entry.epoch {
            *entry = standing;
        }
    }

    /// Reloads every unexpired revocation and every account's standing, forgetting expired entries.
    pub fn reload(&self, conn: &mut DbConn) -> QueryResult<()> {
        let now = crate::db::now();
        let rows: Vec<(String, String, NaiveDateTime)> =
            r::revocations.filter(r::expires_at.gt(now)).select((r::kind, r::value, r::expires_at)).load(conn)?;
        let staff: Vec<(String, i64, bool)> =
            accounts::table.select((accounts::id, accounts::token_epoch, accounts::active)).load(conn)?;
        let services: Vec<(String, i64, bool, i64, Option<i32>)> = service_accounts::table
            .select((
                service_accounts::id,
                service_accounts::token_epoch,
                service_accounts::active,
                service_accounts::version,
                service_accounts::rate_limit_per_minute,
            ))
            .load(conn)?;
        let mut service_limits: HashMap<String, (i64, Option<i32>)> =
            services.iter().map(|(id, _, _, version, limit)| (id.clone(), (*version, *limit))).collect();
        let now_s = now.and_utc().timestamp();
        let mut s = self.state.write().expect("revocation lock poisoned");
        s.jtis.retain(|_, exp| *exp > now_s);
        s.sessions.retain(|_, exp| *exp > now_s);
        for (kind, value, expires_at) in rows {
            let exp = expires_at.and_utc().timestamp();
            match kind.as_str() {
                "jti" => s.jtis.insert(value, exp),
                _ => s.sessions.insert(value, exp),
            };
        }
        // An epoch this instance noted after the rows above were read is newer than what they say: keep it.
        let mut accounts: HashMap<String, Standing> = staff
            .into_iter()
            .chain(services.into_iter().map(|(id, epoch, active, _, _)| (id, epoch, active)))
            .map(|(id, epoch, active)| (id, Standing { epoch, active }))
            .collect();
        for (id, noted) in &s.accounts {
            if let Some(loaded) = accounts.get_mut(id) {
                if noted.epoch > loaded.epoch {
                    *loaded = *noted;
                }
            }
        }
        s.accounts = accounts;
        // Likewise a limit noted after the rows were read.
        for (id, noted) in &s.service_limits {
            if let Some(loaded) = service_limits.get_mut(id) {
                if noted.0 > loaded.0 {
                    *loaded = *noted;
                }
            }
        }
        s.service_limits = service_limits;
        Ok(())
    }
}

/// Until when a revocation must last to outlive tokens expiring at `latest_exp` (unix seconds): they are
/// accepted for the leeway after it.
pub fn cover_until(latest_exp: i64) -> i64 {
    latest_exp.min(chrono::Utc::now().timestamp() + MAX_TOKEN_LIFETIME_SECS) + LEEWAY_SECS + 5
}

fn insert(conn: &mut DbConn, kind: &str, value: &str, until: i64) -> QueryResult<()> {
    let now = crate::db::now();
    let expires_at = chrono::DateTime::from_timestamp(until, 0).map(|d| d.naive_utc()).unwrap_or(now);
    diesel::insert_into(r::revocations)
        .values((
            r::id.eq(uuid::Uuid::now_v7().to_string()),
            r::kind.eq(kind),
            r::value.eq(value),
            r::expires_at.eq(expires_at),
            r::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Voids one token (its scoped jti, see [`jti_key`]) until `until` (unix seconds).
pub fn revoke_jti(conn: &mut DbConn, key: &str, until: i64) -> QueryResult<()> {
    insert(conn, "jti", key, until)
}

/// Whether a sign-in session has been ended (the database's word, not the cache's).
pub fn session_ended(conn: &mut DbConn, sid: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        r::revocations.filter(r::kind.eq("session").and(r::value.eq(sid)).and(r::expires_at.gt(crate::db::now()))),
    ))
    .get_result::<bool>(conn)
}

/// Ends a sign-in session until `until` (once: an ended session stays ended): every access token of it is
/// refused, and no refresh token of it is honoured any more — also one issued by a refresh that raced the end.
/// `until` must cover the session's refresh tokens and the access tokens they could still mint.
pub fn revoke_session(conn: &mut DbConn, sid: &str, until: i64) -> QueryResult<()> {
    if session_ended(conn, sid)? {
        return Ok(());
    }
    insert(conn, "session", sid, until)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_noted_later_is_not_replaced_by_an_older_version() {
        let r = Revocations::default();
        assert_eq!(r.service_limit("sa"), None, "not a service account this instance knows");
        r.note_service_limit("sa", 3, Some(120));
        r.note_service_limit("sa", 2, Some(6));
        assert_eq!(r.service_limit("sa"), Some(Some(120)));
        r.note_service_limit("sa", 4, None);
        assert_eq!(r.service_limit("sa"), Some(None));
    }
}
