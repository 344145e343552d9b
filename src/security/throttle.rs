//! Throttling of password and secret guesses: sign-in, client credentials and `current_password`.
//!
//! An attempt counts against three keys: the subject from this client address (`user:zhang|ip:10.0.0.7`), the
//! subject from anywhere (`user:zhang`), and the client address for any subject (`ip:10.0.0.7`). Each has its own
//! ceiling within the window: a guesser elsewhere is slowed down long before the owner, signing in from their own
//! address, is affected, and one address cannot try many accounts either.
//!
//! An address the account has signed in from successfully in the last 30 days is *known*: attempts from it are
//! not held back by the account-wide ceiling (only by their own), so guessers elsewhere can reach that ceiling
//! without locking the owner out of their usual desk.
//!
//! Counting is atomic: [`reserve`] takes a lock per key (an advisory transaction lock on PostgreSQL; SQLite has one
//! writer), checks the counts and records the attempt as a failure *before* the password is checked, in one
//! transaction. Requests fired together are therefore evaluated at most up to the ceiling; the rest get 429.
//! A successful attempt is then forgotten ([`succeeded`]), together with the subject's failures from that address.

use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::audit::{self, Actor, AuditCtx, Event};
use crate::clock::Now;
use crate::config::Settings;
use crate::db::schema::counters::dsl as c;
use crate::db::schema::login_failures as lf;
use crate::db::{is_unique_violation, DbConn};
use crate::error::ApiError;

/// Ceilings within one window.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Attempts for one subject from one client address.
    pub per_subject_and_address: u32,
    /// Attempts for one subject from anywhere.
    pub per_subject: u32,
    /// Attempts from one client address for any subject.
    pub per_address: u32,
    pub window: Duration,
}

impl Limits {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            per_subject_and_address: settings.login_max_failures,
            per_subject: settings.login_max_failures_per_account,
            per_address: settings.login_max_failures_per_address,
            window: settings.login_window,
        }
    }
}

/// The keys one attempt counts against.
#[derive(Debug, Clone)]
pub struct Keys {
    pub pair: String,
    pub subject: String,
    pub address: String,
}

impl Keys {
    /// `kind` is `user` or `client`; `name` is the canonical username or client id.
    pub fn new(kind: &str, name: &str, address: &str) -> Self {
        Self {
            pair: format!("{kind}:{name}|ip:{address}"),
            subject: format!("{kind}:{name}"),
            address: format!("ip:{address}"),
        }
    }
}

/// An attempt that may go ahead; it stands as a failure until [`succeeded`] forgets it.
#[derive(Debug, Clone)]
pub struct Attempt {
    ids: Vec<String>,
    pair: String,
}

#[derive(Debug, Clone)]
pub enum Reservation {
    Granted(Attempt),
    /// A ceiling is reached: retry after this many seconds. `first_in_a_while` says whether this refusal should
    /// be audited (one audited refusal per key and minute, so that a flood cannot grow the trail without limit).
    Throttled {
        retry_after_secs: u64,
        key: String,
        first_in_a_while: bool,
    },
}

/// Reserves one attempt (in the caller's write transaction).
pub fn reserve(conn: &mut DbConn, keys: &Keys, limits: &Limits, now: NaiveDateTime) -> QueryResult<Reservation> {
    crate::db::lock_names(conn, &[&keys.pair, &keys.subject, &keys.address])?;
    let window = TimeDelta::from_std(limits.window).unwrap_or(TimeDelta::minutes(15));
    let known = known_since(conn, &keys.pair)?.is_some_and(|at| at > now.and_utc().timestamp() - KNOWN_FOR_SECS);
    for (key, limit) in [
        (&keys.pair, Some(limits.per_subject_and_address)),
        (&keys.subject, (!known).then_some(limits.per_subject)),
        (&keys.address, Some(limits.per_address)),
    ] {
        let Some(limit) = limit else { continue };
        let limit = i64::from(limit.max(1));
        let recent: Vec<NaiveDateTime> = lf::table
            .filter(lf::username_key.eq(key).and(lf::at.gt(now - window)))
            .order(lf::at.desc())
            .limit(limit)
            .select(lf::at)
            .load(conn)?;
        if recent.len() as i64 >= limit {
            let oldest = *recent.last().expect("non-empty");
            let wait = (oldest + window - now).num_seconds().max(1);
            let first_in_a_while = audit_due(conn, key, now)?;
            return Ok(Reservation::Throttled { retry_after_secs: wait as u64, key: key.clone(), first_in_a_while });
        }
    }
    let mut ids = Vec::with_capacity(3);
    for key in [&keys.pair, &keys.subject, &keys.address] {
        let id = uuid::Uuid::now_v7().to_string();
        diesel::insert_into(lf::table)
            .values((lf::id.eq(&id), lf::username_key.eq(key), lf::at.eq(now)))
            .execute(conn)?;
        ids.push(id);
    }
    Ok(Reservation::Granted(Attempt { ids, pair: keys.pair.clone() }))
}

/// [`reserve`] with the settings' limits, for handlers: the attempt, or (once this transaction commits) 429. A
/// throttled attempt is audited, naming what the caller claimed to be (bounded), at most once a minute per key.
pub fn guard(
    conn: &mut DbConn,
    keys: &Keys,
    settings: &Settings,
    claimed: &str,
    request_id: Option<String>,
    now: Now,
) -> Result<Result<Attempt, ApiError>, ApiError> {
    match reserve(conn, keys, &Limits::from_settings(settings), now.at)? {
        Reservation::Granted(attempt) => Ok(Ok(attempt)),
        Reservation::Throttled { retry_after_secs, key, first_in_a_while } => {
            if first_in_a_while {
                let ctx = AuditCtx { actor: Actor::anonymous(Some(claimed)), request_id, now };
                let ev = Event::new("sign_in_throttled").after(
                    &serde_json::json!({ "key": audit::untrusted(&key, 160), "retry_after_s": retry_after_secs }),
                );
                audit::record(conn, &ctx, ev)?;
            }
            Ok(Err(ApiError::RateLimited { retry_after_secs }))
        }
    }
}

/// The attempt proved the secret: forget it and the subject's earlier failures from this address, and know the
/// address from now on.
pub fn succeeded(conn: &mut DbConn, attempt: &Attempt, now: NaiveDateTime) -> QueryResult<()> {
    diesel::delete(lf::table.filter(lf::id.eq_any(&attempt.ids).or(lf::username_key.eq(&attempt.pair))))
        .execute(conn)?;
    set_counter(conn, &format!("known:{}", attempt.pair), now.and_utc().timestamp())
}

/// How long a successful address stays known.
const KNOWN_FOR_SECS: i64 = 30 * 86_400;

/// When the account last signed in successfully from this address (unix seconds).
fn known_since(conn: &mut DbConn, pair: &str) -> QueryResult<Option<i64>> {
    c::counters.filter(c::name.eq(format!("known:{pair}"))).select(c::value).first(conn).optional()
}

fn set_counter(conn: &mut DbConn, name: &str, value: i64) -> QueryResult<()> {
    if diesel::update(c::counters.filter(c::name.eq(name))).set(c::value.eq(value)).execute(conn)? == 1 {
        return Ok(());
    }
    match conn
        .transaction(|t| diesel::insert_into(c::counters).values((c::name.eq(name), c::value.eq(value))).execute(t))
    {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            diesel::update(c::counters.filter(c::name.eq(name))).set(c::value.eq(value)).execute(conn).map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// True at most once a minute per key: whether a refusal should be written to the audit trail (anonymous callers
/// must not be able to grow it without limit).
pub fn audit_due(conn: &mut DbConn, key: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let name = format!("throttled:{key}");
    let now_s = now.and_utc().timestamp();
    let updated = diesel::update(c::counters.filter(c::name.eq(&name).and(c::value.le(now_s - 60))))
        .set(c::value.eq(now_s))
        .execute(conn)?;
    if updated == 1 {
        return Ok(true);
    }
    let exists = diesel::select(diesel::dsl::exists(c::counters.filter(c::name.eq(&name)))).get_result(conn)?;
    if exists {
        return Ok(false);
    }
    match conn
        .transaction(|t| diesel::insert_into(c::counters).values((c::name.eq(&name), c::value.eq(now_s))).execute(t))
    {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Forgets attempts older than the window and the audit marks of keys quiet for a day.
pub fn purge(conn: &mut DbConn, window: Duration, now: NaiveDateTime) -> QueryResult<usize> {
    let window = TimeDelta::from_std(window).unwrap_or(TimeDelta::minutes(15));
    let mut n = diesel::delete(lf::table.filter(lf::at.le(now - window))).execute(conn)?;
    let day_ago = now.and_utc().timestamp() - 86_400;
    n += diesel::delete(c::counters.filter(c::name.like("throttled:%").and(c::value.lt(day_ago)))).execute(conn)?;
    let forgotten = now.and_utc().timestamp() - KNOWN_FOR_SECS;
    n += diesel::delete(c::counters.filter(c::name.like("known:%").and(c::value.lt(forgotten)))).execute(conn)?;
    Ok(n)
}
