//! The write path every area shares. A change to an existing record is always: lock the row, check `If-Match`
//! against the locked version, change it, store it on the condition that the version is still the one checked,
//! and audit it — all in one transaction, answered by a [`Reply`] made in that transaction (so that an
//! `Idempotency-Key`'s outcome commits with the change; see [`idempotency`]).
//!
//! On PostgreSQL (READ COMMITTED) the row lock is `SELECT … FOR UPDATE`: a second writer waits for the first to
//! commit, then reads the new version and gets 412, so two requests with one ETag never both win (no lost update,
//! no double action). The `version = ?` predicate on the UPDATE is the same guarantee stated once more; a zero row
//! count is 412. SQLite has one writer at a time (`BEGIN IMMEDIATE`), which gives the same order.

pub mod idempotency;
mod reply;
pub mod revision;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::QueryResult;
use serde::Serialize;

pub use reply::{transact, transact_then, Reply};

use crate::audit::{self, AuditCtx, EntityType, Event};
use crate::clock::Now;
use crate::db::{is_unique_violation, DbConn};
use crate::error::{ApiError, ErrorCode};
use crate::http::IfMatch;
use crate::messages::Msg;

/// How a table's row is stored: implemented for row structs by [`versioned_row!`].
pub trait Versioned: Sized {
    fn id(&self) -> &str;
    fn version(&self) -> i64;
    /// Next version, updated now.
    fn touch(&mut self, at: NaiveDateTime);
    /// Reads the row and locks it until the transaction ends (`FOR UPDATE` on PostgreSQL).
    fn lock(conn: &mut DbConn, id: &str) -> QueryResult<Option<Self>>;
    /// Writes every column if the stored version is still `expected`; returns the rows written (0 or 1).
    fn store(&self, conn: &mut DbConn, expected: i64) -> QueryResult<usize>;
    fn insert(&self, conn: &mut DbConn) -> QueryResult<usize>;
    /// Deletes the row if the stored version is still `expected`.
    fn delete(&self, conn: &mut DbConn, expected: i64) -> QueryResult<usize>;
}

/// Implements [`Versioned`] for a row struct with `id`, `version` and `updated_at` fields that derives
/// `Queryable`, `Selectable`, `Insertable` and `AsChangeset` for `$table` (a `crate::db::schema` module in scope).
#[macro_export]
macro_rules! versioned_row {
    ($row:ty, $table:ident) => {
        impl $crate::write::Versioned for $row {
            fn id(&self) -> &str {
                &self.id
            }

            fn version(&self) -> i64 {
                self.version
            }

            fn touch(&mut self, at: chrono::NaiveDateTime) {
                self.version += 1;
                self.updated_at = at;
            }

            fn lock(conn: &mut $crate::db::DbConn, id: &str) -> diesel::QueryResult<Option<Self>> {
                use diesel::prelude::*;
                match conn {
                    $crate::db::DbConn::Postgres(c) => {
                        $table::table.find(id).select(<$row>::as_select()).for_update().first(c).optional()
                    }
                    $crate::db::DbConn::Sqlite(c) => {
                        $table::table.find(id).select(<$row>::as_select()).first(c).optional()
                    }
                }
            }

            fn store(&self, conn: &mut $crate::db::DbConn, expected: i64) -> diesel::QueryResult<usize> {
                use diesel::prelude::*;
                diesel::update($table::table.find(&self.id).filter($table::version.eq(expected)))
                    .set(self)
                    .execute(conn)
            }

            fn insert(&self, conn: &mut $crate::db::DbConn) -> diesel::QueryResult<usize> {
                use diesel::prelude::*;
                diesel::insert_into($table::table).values(self).execute(conn)
            }

            fn delete(&self, conn: &mut $crate::db::DbConn, expected: i64) -> diesel::QueryResult<usize> {
                use diesel::prelude::*;
                diesel::delete($table::table.find(&self.id).filter($table::version.eq(expected))).execute(conn)
            }
        }
    };
}

/// A stored record's name in the audit trail and the change feed, and how a unique-constraint refusal reads.
pub trait Entity: Versioned + Clone {
    const ENTITY: EntityType;

    /// The refusal when a write breaks one of the table's unique constraints.
    fn duplicate() -> ApiError {
        ApiError::conflict(ErrorCode::Conflict, Msg::Duplicate)
    }
}

/// A stored record whose view (as `GET` shows it, and as the audit trail keeps it before and after each change)
/// needs nothing but the row, the database and the clock. A view that needs more (fees: the late-fee rate) goes
/// through [`modify_as`] with its own view function.
pub trait Record: Entity {
    type View: Serialize;

    fn view(&self, conn: &mut DbConn, now: &Now) -> QueryResult<Self::View>;
}

/// A changed record, with what the audit trail keeps about the step.
pub struct Change<R> {
    pub row: R,
    pub reason: Option<String>,
    pub effective_date: Option<NaiveDate>,
}

impl<R> Change<R> {
    pub fn new(row: R) -> Self {
        Self { row, reason: None, effective_date: None }
    }

    pub fn reason(mut self, reason: Option<&str>) -> Self {
        self.reason = reason.map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
        self
    }

    pub fn effective_date(mut self, date: Option<NaiveDate>) -> Self {
        self.effective_date = date;
        self
    }
}

/// A write refused by a constraint: a unique one is the record's own conflict; a foreign key means a record it
/// refers to was removed meanwhile (checked earlier in the transaction, deleted by a concurrent one).
fn map_unique<R: Entity>(e: diesel::result::Error) -> ApiError {
    if is_unique_violation(&e) {
        R::duplicate()
    } else if crate::db::is_foreign_key_violation(&e) {
        ApiError::conflict(ErrorCode::Conflict, Msg::ReferenceGone)
    } else {
        e.into()
    }
}

/// Inserts a new record and audits it (`action`, e.g. `water_user_created`). Returns its view.
pub fn create<R: Record>(conn: &mut DbConn, ctx: &AuditCtx, row: &R, action: &str) -> Result<R::View, ApiError> {
    create_with(conn, ctx, row, action, |_| Ok(()))
}

/// [`create`] for a record with parts kept in tables of their own (an inspection's inspectors and findings):
/// `parts` inserts them once the row exists, before the record's view is taken for the audit trail.
pub fn create_with<R: Record>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    row: &R,
    action: &str,
    parts: impl FnOnce(&mut DbConn) -> Result<(), ApiError>,
) -> Result<R::View, ApiError> {
    row.insert(conn).map_err(map_unique::<R>)?;
    parts(conn)?;
    let view = row.view(conn, &ctx.now)?;
    audit::record(conn, ctx, Event::new(action).entity(R::ENTITY, row.id()).after(&view))?;
    Ok(view)
}

/// Longest reason an action takes (characters).
pub const MAX_REASON_CHARS: usize = 1000;

/// What every action checks before it runs: `If-Match` sent (428 otherwise) and a reason of at most
/// [`MAX_REASON_CHARS`] (400 naming `reason`).
pub fn check_action(if_match: &IfMatch, reason: Option<&str>) -> Result<(), ApiError> {
    if_match.require()?;
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(ApiError::invalid("reason", Msg::AtMostChars(MAX_REASON_CHARS)));
    }
    Ok(())
}

/// Changes record `id` under `If-Match`: locks it, checks the version (428/412), lets `change` compute the new row
/// from the locked one, stores it as the next version and audits `action` with the record before and after.
/// Returns the new row and its view.
pub fn modify<R: Record>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    id: &str,
    if_match: &IfMatch,
    action: &str,
    change: impl FnOnce(&mut DbConn, &R) -> Result<Change<R>, ApiError>,
) -> Result<(R, R::View), ApiError> {
    let now = ctx.now;
    modify_as(
        conn,
        ctx,
        id,
        if_match,
        action,
        |conn, row: &R| Ok(row.view(conn, &now)?),
        |conn, row, _| change(conn, row),
    )
}

/// [`modify`] for a record shown by `view`; `change` also gets the record's view before the change.
pub fn modify_as<R: Entity, V: Serialize>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    id: &str,
    if_match: &IfMatch,
    action: &str,
    view: impl Fn(&mut DbConn, &R) -> Result<V, ApiError>,
    change: impl FnOnce(&mut DbConn, &R, &V) -> Result<Change<R>, ApiError>,
) -> Result<(R, V), ApiError> {
    let before = R::lock(conn, id)?.ok_or(ApiError::NotFound)?;
    if_match.check(before.version())?;
    let before_view = view(conn, &before)?;
    let Change { row: mut after, reason, effective_date } = change(conn, &before, &before_view)?;
    after.touch(ctx.now.at);
    if after.store(conn, before.version()).map_err(map_unique::<R>)? != 1 {
        return Err(ApiError::PreconditionFailed);
    }
    let shown = view(conn, &after)?;
    let mut event =
        Event::new(action).entity(R::ENTITY, id).before(&before_view).after(&shown).reason(reason.as_deref());
    if let Some(d) = effective_date {
        event = event.effective_date(d);
    }
    audit::record(conn, ctx, event)?;
    Ok((after, shown))
}

/// A record whose parts (rows of other tables that its view shows: an inspection's findings) changed in this
/// transaction: stored as the next version and audited as `action`, with `before_view` (taken before the parts
/// changed) and the view now. The caller holds the record's row lock ([`Versioned::lock`]).
pub fn bump<R: Record>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    before: &R,
    before_view: &R::View,
    action: &str,
) -> Result<(R, R::View), ApiError> {
    let mut after = before.clone();
    after.touch(ctx.now.at);
    if after.store(conn, before.version()).map_err(map_unique::<R>)? != 1 {
        return Err(ApiError::PreconditionFailed);
    }
    let shown = after.view(conn, &ctx.now)?;
    audit::record(conn, ctx, Event::new(action).entity(R::ENTITY, before.id()).before(before_view).after(&shown))?;
    Ok((after, shown))
}

/// Deletes record `id` (`If-Match` checked when sent) once `check` allows it, and audits `action`.
pub fn remove<R: Record>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    id: &str,
    if_match: &IfMatch,
    action: &str,
    check: impl FnOnce(&mut DbConn, &R) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let before = R::lock(conn, id)?.ok_or(ApiError::NotFound)?;
    if_match.check_if_present(before.version())?;
    check(conn, &before)?;
    let view = before.view(conn, &ctx.now)?;
    let deleted = before.delete(conn, before.version()).map_err(|e| {
        if crate::db::is_foreign_key_violation(&e) {
            ApiError::conflict(ErrorCode::Referenced, Msg::Referenced)
        } else {
            e.into()
        }
    })?;
    if deleted != 1 {
        return Err(ApiError::PreconditionFailed);
    }
    audit::record(conn, ctx, Event::new(action).entity(R::ENTITY, id).before(&view))?;
    Ok(())
}

/// A change the calendar made to record `id`'s view (a deadline passed on `turned_on`, the first day it reads
/// differently): the row is locked, so that no concurrent write's newer view can be recorded before this older one,
/// and when its view as of the day before differs from its view now, `action` is audited by the system with both
/// (and reaches the change feed). The row itself is not changed. Returns whether an event was recorded.
pub fn turn<R: Record>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    id: &str,
    action: &str,
    turned_on: NaiveDate,
) -> Result<bool, ApiError> {
    turn_as(conn, ctx, id, action, turned_on, |conn, row: &R, now| Ok(row.view(conn, now)?), |b, a| b != a)
}

/// [`turn`] recorded only when the view's field `flag` differs (for views with figures that grow by the day, such
/// as a case's late fee).
pub fn turn_flag<R: Record>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    id: &str,
    action: &str,
    turned_on: NaiveDate,
    flag: &str,
) -> Result<bool, ApiError> {
    turn_as(conn, ctx, id, action, turned_on, |conn, row: &R, now| Ok(row.view(conn, now)?), |b, a| b[flag] != a[flag])
}

/// [`turn`] for a record shown by `view`, recorded when `changed` says the views differ in what the date decides
/// (a fee's view states its `as_of`, which always differs).
pub fn turn_as<R: Entity, V: Serialize>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    id: &str,
    action: &str,
    turned_on: NaiveDate,
    view: impl Fn(&mut DbConn, &R, &Now) -> Result<V, ApiError>,
    changed: impl Fn(&serde_json::Value, &serde_json::Value) -> bool,
) -> Result<bool, ApiError> {
    let Some(row) = R::lock(conn, id)? else { return Ok(false) };
    let Some(day_before) = turned_on.pred_opt() else { return Ok(false) };
    let json = |v: V| serde_json::to_value(v).map_err(|e| ApiError::internal(format!("view of {id}: {e}")));
    let before = json(view(conn, &row, &Now { today: day_before, ..ctx.now })?)?;
    let after = json(view(conn, &row, &ctx.now)?)?;
    if !changed(&before, &after) {
        return Ok(false);
    }
    let event = Event::new(action).entity(R::ENTITY, id).before(&before).after(&after).effective_date(turned_on);
    audit::record(conn, ctx, event)?;
    Ok(true)
}
