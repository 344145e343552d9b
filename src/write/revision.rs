//! Records kept in revisions (a month's withdrawal of a permit, a month's usage of a planned user): one current
//! revision per subject and month; a second report supersedes the current one and becomes revision n + 1, the old
//! one kept. Both steps and their audit events happen in the caller's transaction.
//!
//! Two reports racing for one month: the supersede is conditional on the version read (the second waits for the
//! first on PostgreSQL and then matches no row), and two first reports collide on the table's unique
//! (subject, month, revision); either way the loser is 409 `conflict` and writes nothing.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use serde::Serialize;

use crate::audit::{self, AuditCtx, EntityType, Event};
use crate::db::{is_unique_violation, DbConn};
use crate::error::{ApiError, ErrorCode};
use crate::messages::Msg;

/// A row kept in revisions.
pub trait Revision: Sized {
    const ENTITY: EntityType;
    /// The audit actions' prefix: `withdrawal` → `withdrawal_recorded`, `…_superseded`, `…_corrected`.
    const ACTION: &'static str;

    fn id(&self) -> &str;
    /// The same row as it reads once superseded at `now` (superseded, next version).
    fn superseded(&self, now: NaiveDateTime) -> Self;
    /// Marks the row superseded if it is still current at its version; returns the rows written (0 or 1).
    fn supersede(&self, conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize>;
    fn insert(&self, conn: &mut DbConn) -> QueryResult<usize>;
}

/// The revision number a new report gets after `previous`.
pub fn next_revision<R>(previous: Option<&R>, revision: impl Fn(&R) -> i32) -> i32 {
    previous.map_or(1, |p| revision(p) + 1)
}

/// Stores `row` as the current revision, superseding `previous` (the current one read in this transaction, if
/// any), and audits it with the records as `view` shows them. Returns the new record's view.
pub fn record<R: Revision, V: Serialize>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    previous: Option<&R>,
    row: &R,
    view: impl Fn(&R) -> V,
) -> Result<V, ApiError> {
    let concurrent = || ApiError::conflict(ErrorCode::Conflict, Msg::ConcurrentReport);
    if let Some(prev) = previous {
        if prev.supersede(conn, ctx.now.at)? != 1 {
            return Err(concurrent());
        }
    }
    row.insert(conn).map_err(|e| if is_unique_violation(&e) { concurrent() } else { e.into() })?;
    let shown = view(row);
    let action = |what: &str| format!("{}_{what}", R::ACTION);
    match previous {
        None => audit::record(conn, ctx, Event::new(&action("recorded")).entity(R::ENTITY, row.id()).after(&shown))?,
        Some(prev) => {
            let old = view(prev);
            let replaced = view(&prev.superseded(ctx.now.at));
            audit::record_all(
                conn,
                ctx,
                [
                    Event::new(&action("superseded")).entity(R::ENTITY, prev.id()).before(&old).after(&replaced),
                    Event::new(&action("corrected")).entity(R::ENTITY, row.id()).before(&old).after(&shown),
                ],
            )?;
        }
    }
    Ok(shown)
}
