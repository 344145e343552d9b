//! `/api/v1/exports/{entity}` — a whole collection in one download, for the provincial platform and for the
//! bureau's own spreadsheets (docs/integration.md §exports).
//!
//! An export reads one consistent snapshot of the database (PostgreSQL: a `REPEATABLE READ, READ ONLY`
//! transaction; SQLite: one read transaction), walking the collection in id order in batches of [`BATCH`] rows and
//! sending each batch to the client as soon as it is written: memory stays flat whatever the table's size, and a
//! slow client slows the export rather than filling the server. Each record is the entity as `GET` shows it.
//! The response names the change-feed position of the snapshot (`X-Changes-Cursor`), so that a platform can load a
//! collection once and then follow the feed from exactly there.

pub mod cells;
pub mod routes;
mod sources;

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::Now;
use crate::db::DbConn;
use crate::error::ApiResult;
use crate::fees::FeeConfig;

/// Rows read, turned into views and sent per round trip.
pub const BATCH: i64 = 1_000;

/// Which rows a batch reads: those after `after` in id order, changed at or after `since`.
pub struct Window {
    pub after: Option<String>,
    pub since: Option<NaiveDateTime>,
    pub limit: i64,
}

/// What views need beyond their rows (read once per export).
pub struct Ctx {
    pub now: Now,
    pub fees: FeeConfig,
    /// The bureau's name, the authority of published decisions.
    pub authority: String,
}

/// One exportable collection: how to read a batch of its rows and how `GET` shows them.
pub trait Source {
    type Row;
    type View: Serialize + ToSchema + Send;

    fn rows(conn: &mut DbConn, w: &Window) -> ApiResult<Vec<Self::Row>>;
    fn key(row: &Self::Row) -> String;
    fn views(conn: &mut DbConn, rows: Vec<Self::Row>, ctx: &Ctx) -> ApiResult<Vec<Self::View>>;
}
