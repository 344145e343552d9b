//! Changes the calendar makes (docs/integration.md): a permit past its `valid_to` reads `expired`, a rectification,
//! a fee or a case deadline past its day reads overdue — without any request changing the record. So that a
//! platform's copy, kept by the change feed, never silently disagrees with `GET`, each such change is recorded once
//! as an audit event of the system (with the record before and after), and so reaches the feed and the records'
//! histories.
//!
//! `calendar_turns.through` says how far this has been done: every day before it. Catching up records the changes of
//! the days from there to yesterday and moves it to today, in one transaction that holds the row (so instances
//! sharing a database never record a change twice). Each instance catches up in the background every minute, and
//! before it serves the feed or an export, so what it serves is as of today.

use std::sync::atomic::{AtomicI32, Ordering};

use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;

use crate::audit::{Actor, AuditCtx};
use crate::clock::Now;
use crate::db::schema::calendar_turns as ct;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::fees::FeeConfig;
use crate::state::AppState;

/// How far this instance knows the calendar's changes are recorded (app data; one per instance).
#[derive(Debug, Default)]
pub struct Turns {
    /// The day (days from the common era) through which this instance has seen them recorded; 0: not known.
    through: AtomicI32,
    /// One catch-up at a time per instance: the others wait here (not in the pool) and then find it done.
    running: tokio::sync::Mutex<()>,
}

impl Turns {
    /// Records the calendar's changes up to `now.today`, unless this instance already saw that done.
    pub async fn catch_up(&self, state: &AppState, now: Now) -> ApiResult<()> {
        let today = now.today.num_days_from_ce();
        if self.through.load(Ordering::Relaxed) >= today {
            return Ok(());
        }
        let _turn = self.running.lock().await;
        if self.through.load(Ordering::Relaxed) >= today {
            return Ok(());
        }
        let config = FeeConfig::of(&state.settings);
        let ctx = AuditCtx { actor: Actor::system(), request_id: None, now };
        let recorded = state.db.write(move |conn| catch_up(conn, &ctx, config)).await?;
        if recorded > 0 {
            tracing::info!(recorded, day = %now.today, "recorded the calendar's changes");
        }
        self.through.fetch_max(today, Ordering::Relaxed);
        Ok(())
    }

    /// [`Turns::catch_up`] before serving the feed or an export: a failure (the database busy, a lock held too
    /// long) is logged and the request served all the same — the changes are recorded by a later catch-up and
    /// numbered after everything served now, so a reader still gets each of them once.
    pub async fn catch_up_or_log(&self, state: &AppState, now: Now) {
        if let Err(e) = self.catch_up(state, now).await {
            tracing::warn!(error = %e, "could not record the calendar's changes; serving without them for now");
        }
    }
}

/// In the caller's write transaction: locks the one row of `calendar_turns`, records every change of the days from
/// its `through` up to yesterday, and moves it to today. Returns the events recorded.
pub fn catch_up(conn: &mut DbConn, ctx: &AuditCtx, config: FeeConfig) -> ApiResult<usize> {
    let today = ctx.now.today;
    let through: Option<NaiveDate> = match conn {
        DbConn::Postgres(c) => {
            // Another instance catching up holds the row: wait a little, then leave it to that one.
            diesel::sql_query("SET LOCAL lock_timeout = '10s'").execute(c)?;
            ct::table.find(1).select(ct::through).for_update().first(c)?
        }
        DbConn::Sqlite(c) => ct::table.find(1).select(ct::through).first(c)?,
    };
    // NULL (never set): nothing before today is replayed, as on the day of the migration.
    let Some(through) = through.filter(|t| *t < today) else {
        if through.is_none() {
            diesel::update(ct::table.find(1)).set(ct::through.eq(today)).execute(conn)?;
        }
        return Ok(0);
    };
    let through = Some(through);
    let recorded = crate::permits::calendar_turns(conn, ctx, through)?
        + crate::inspections::calendar_turns(conn, ctx, through)?
        + crate::fees::calendar_turns(conn, ctx, through, config)?
        + crate::cases::calendar_turns(conn, ctx, through)?;
    if diesel::update(ct::table.find(1)).set(ct::through.eq(today)).execute(conn)? != 1 {
        return Err(ApiError::internal("calendar_turns has no row"));
    }
    Ok(recorded)
}

/// Catches up every minute (and at once on start), so that a day's changes reach the feed soon after midnight at
/// the bureau even when nobody reads it.
pub async fn keep_up(state: actix_web::web::Data<AppState>, turns: actix_web::web::Data<Turns>) {
    let mut tick = actix_web::rt::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = turns.catch_up(&state, state.now()).await {
            tracing::warn!(error = %e, "could not record the calendar's changes");
        }
    }
}
