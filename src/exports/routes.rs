//! `GET /api/v1/exports/{entity}`: the collection streamed from one database snapshot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::web::Bytes;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::cells::{self, Column};
use super::sources::*;
use super::{Ctx, Source, Window, BATCH};
use crate::audit::EntityType;
use crate::db::schema::audit_events;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::fees::FeeConfig;
use crate::http::pagination::encode_cursor;
use crate::http::query::instant;
use crate::http::Query;
use crate::identity::Role;
use crate::policy;
use crate::security::{audit_denial, Authorized};
use crate::state::AppState;

policy!(
    /// Platforms, and those who read everything (accounts and service accounts: not platforms).
    ExportsRead = [Admin, Leader, Platform, Auditor]
);

/// Who may export accounts and service accounts (as who may list them).
const ACCOUNT_READERS: &[Role] = &[Role::Admin, Role::Leader, Role::Auditor];

/// Exports running at once in this instance; each holds a database connection while it runs.
const RUNNING_AT_ONCE: usize = 2;

/// The longest an export may take, however steadily its client reads: a snapshot held for hours keeps PostgreSQL
/// from vacuuming and SQLite from checkpointing.
const LONGEST: Duration = Duration::from_secs(30 * 60);

/// The places for exports in this instance (app data, one per instance).
pub struct Slots(Arc<Semaphore>);

impl Default for Slots {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(RUNNING_AT_ONCE)))
    }
}

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(export);
}

crate::text_enum! {
    /// 导出格式 — Export format.
    pub enum ExportFormat {
        Ndjson = ("ndjson", "NDJSON：每行一条记录，与 GET 返回的 JSON 相同"),
        Csv = ("csv", "CSV：UTF-8 带 BOM，首行为列名，可直接用 Excel 打开"),
    }
}

/// The collections that can be exported: every entity type of the contract.
pub fn exportable(e: EntityType) -> bool {
    !matches!(e, EntityType::Calendar | EntityType::SurchargeTiers)
}

/// The `entity` path parameter as documented: the exportable entity types.
pub struct ExportEntity;

impl utoipa::PartialSchema for ExportEntity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let values: Vec<(&str, &str)> =
            EntityType::ALL.iter().filter(|e| exportable(**e)).map(|e| (e.as_str(), e.label_zh())).collect();
        crate::domain::enum_schema("导出的数据集 — The collection to export.", &values)
    }
}

impl utoipa::ToSchema for ExportEntity {}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `ndjson` (default) or `csv`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    /// Only records changed at or after this instant (RFC 3339, e.g. `2026-11-01T00:00:00+08:00`); compares with
    /// `updated_at` as the records show it.
    pub updated_since: Option<String>,
}

/// What the export stream carries: the change-feed position of its snapshot first, then the data.
enum Item {
    Start(String),
    Chunk(Bytes),
    Failed(ApiError),
}

/// 全量导出 — Export a whole collection (NDJSON or CSV).
///
/// Streams the collection from one database snapshot: NDJSON (one record per line, each as `GET` shows it) or CSV
/// for Excel (UTF-8 with BOM, a header row, nested fields as `object.field` columns, lists as JSON text; text that a
/// spreadsheet would run as a formula — beginning with `=`, `+`, `-`, `@`, a tab or a carriage return — and text
/// beginning with `'` get a leading `'`). Records come in id order; withdrawals and usage in their current revision.
/// `X-Changes-Cursor` is the change feed's position at the snapshot: follow `GET /api/v1/changes` from there to keep
/// the copy current. A download cut short (a failure, a client that stopped reading for
/// `SHUIWU_EXPORT_STALL_TIMEOUT`, 30 minutes in all) ends without the closing chunk: the client sees an incomplete
/// transfer, never a shorter file that looks whole. Accounts and service accounts: not for platforms. At most two
/// exports run at once per instance (429 with `Retry-After` beyond).
#[utoipa::path(tag = "exports",
    params(("entity" = inline(ExportEntity), Path, description = "数据集 — An entity type, e.g. `permit`"), ExportQuery),
    security(("bearer" = ["admin", "leader", "platform", "auditor"])),
    responses(
        (status = 200, description = "The collection, streamed", headers(("X-Changes-Cursor" = String, description = "Where the change feed continues from this snapshot")),
            content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 404, description = "Not an exportable entity type", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many exports running (`rate_limited`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/exports/{entity}")]
async fn export(
    state: web::Data<AppState>,
    caller: Authorized<ExportsRead>,
    req: HttpRequest,
    entity: web::Path<String>,
    query: Query<ExportQuery>,
) -> ApiResult<HttpResponse> {
    let entity = EntityType::parse(&entity.into_inner()).filter(|e| exportable(*e)).ok_or(ApiError::NotFound)?;
    if matches!(entity, EntityType::Account | EntityType::ServiceAccount) && !caller.principal.has_any(ACCOUNT_READERS)
    {
        audit_denial(&req, &caller);
        return Err(ApiError::Forbidden);
    }
    let format = query.0.format.unwrap_or(ExportFormat::Ndjson);
    let since = instant("updated_since", query.0.updated_since.as_deref())?;
    let slots = req.app_data::<web::Data<Slots>>().ok_or_else(|| ApiError::internal("export slots missing"))?;
    let slot = slots.0.clone().try_acquire_owned().map_err(|_| ApiError::RateLimited { retry_after_secs: 10 })?;
    // What the calendar changed by today is in the feed before the snapshot's position in it is taken.
    if let Some(turns) = req.app_data::<web::Data<crate::changes::calendar::Turns>>() {
        turns.catch_up_or_log(&state, caller.now).await;
    }
    let job = Job {
        entity,
        format,
        since,
        ctx: Ctx {
            now: caller.now,
            fees: FeeConfig::of(&state.settings),
            authority: state.settings.bureau_name.clone(),
        },
        stall: state.settings.export_stall_timeout,
        started: std::time::Instant::now(),
    };
    let (tx, mut rx) = mpsc::channel::<Item>(2);
    // Set when every record has been sent: a stream that ends without it ends as a failed download.
    let complete = Arc::new(AtomicBool::new(false));
    let db = state.db.clone();
    let done = complete.clone();
    actix_web::rt::spawn(async move {
        let failed = tx.clone();
        let runtime = tokio::runtime::Handle::current();
        let result = db.run(move |conn| produce(conn, &job, &Sink { tx, runtime, job: &job, complete: done })).await;
        // The place is free as soon as the export ends, however it ended.
        drop(slot);
        match result {
            Ok(()) => {}
            Err(ApiError::Unavailable) if failed.is_closed() => {
                tracing::info!(%entity, "export abandoned by the client")
            }
            Err(e) => {
                tracing::warn!(%entity, error = %e, "export failed or stalled");
                // Before the download began, the handler answers with this problem; after, the stream ends short.
                let _ = failed.try_send(Item::Failed(e));
            }
        }
    });
    let cursor = match rx.recv().await {
        Some(Item::Start(cursor)) => cursor,
        Some(Item::Failed(e)) => return Err(e),
        _ => return Err(ApiError::internal("the export ended before it began")),
    };
    let incomplete = || std::io::Error::other("the export failed; the download is incomplete");
    let body = futures_util::stream::unfold((rx, complete), move |(mut rx, complete)| async move {
        match rx.recv().await {
            Some(Item::Chunk(bytes)) => Some((Ok(bytes), (rx, complete))),
            Some(Item::Failed(_) | Item::Start(_)) => Some((Err(incomplete()), (rx, complete))),
            // The producer is gone: the end of the records, or of a failed export.
            None if complete.load(Ordering::Acquire) => None,
            None => {
                complete.store(true, Ordering::Release); // one error, then the end
                Some((Err(incomplete()), (rx, complete)))
            }
        }
    });
    let extension = format.as_str();
    let filename = format!("{entity}-{}.{extension}", caller.now.today.format("%Y%m%d"));
    Ok(HttpResponse::Ok()
        .content_type(match format {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        })
        .insert_header(("X-Changes-Cursor", cursor))
        .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(filename)],
        })
        .streaming(body))
}

struct Job {
    entity: EntityType,
    format: ExportFormat,
    since: Option<NaiveDateTime>,
    ctx: Ctx,
    /// How long the client may stop reading before the export is abandoned.
    stall: Duration,
    started: std::time::Instant,
}

/// The producer's end of the stream: waits while the client reads, gives up when it stops or leaves.
struct Sink<'a> {
    tx: mpsc::Sender<Item>,
    runtime: tokio::runtime::Handle,
    job: &'a Job,
    /// Set once every record is sent, before the channel closes.
    complete: Arc<AtomicBool>,
}

impl Sink<'_> {
    fn send(&self, item: Item) -> ApiResult<()> {
        if self.job.started.elapsed() > LONGEST {
            return Err(ApiError::Unavailable);
        }
        let stall = self.job.stall;
        // The timer is made inside the runtime's context (this may be a thread of the export's own).
        match self.runtime.block_on(async { tokio::time::timeout(stall, self.tx.send(item)).await }) {
            Ok(Ok(())) => Ok(()),
            // The client went away, or stopped reading for too long.
            _ => Err(ApiError::Unavailable),
        }
    }
}

/// Reads the collection in one snapshot and sends it batch by batch.
fn produce(conn: &mut DbConn, job: &Job, sink: &Sink) -> ApiResult<()> {
    // Number what has committed, so that the snapshot's feed position is as late as it can be.
    crate::audit::sequence_pending(conn)?;
    crate::db::snapshot::<_, ApiError>(conn, |conn| {
        // Every change numbered up to here is in the snapshot; every later one comes after it in the feed.
        let head: Option<i64> = audit_events::table.select(diesel::dsl::max(audit_events::seq)).first(conn)?;
        sink.send(Item::Start(encode_cursor(&head.unwrap_or(0))))?;
        let sent = match job.entity {
            EntityType::WaterUser => stream::<WaterUsers>(conn, job, sink),
            EntityType::Permit => stream::<Permits>(conn, job, sink),
            EntityType::Withdrawal => stream::<Withdrawals>(conn, job, sink),
            EntityType::Zone => stream::<Zones>(conn, job, sink),
            EntityType::FeeRate => stream::<FeeRates>(conn, job, sink),
            EntityType::FeeAssessment => stream::<FeeAssessments>(conn, job, sink),
            EntityType::Payment => stream::<Payments>(conn, job, sink),
            EntityType::PlannedUser => stream::<PlannedUsers>(conn, job, sink),
            EntityType::Plan => stream::<Plans>(conn, job, sink),
            EntityType::Usage => stream::<Usages>(conn, job, sink),
            EntityType::Inspection => stream::<Inspections>(conn, job, sink),
            EntityType::Rectification => stream::<Rectifications>(conn, job, sink),
            EntityType::Evidence => stream::<EvidenceItems>(conn, job, sink),
            EntityType::Case => stream::<Cases>(conn, job, sink),
            EntityType::Publication => stream::<Publications>(conn, job, sink),
            EntityType::Department => stream::<Departments>(conn, job, sink),
            EntityType::Account => stream::<Accounts>(conn, job, sink),
            EntityType::ServiceAccount => stream::<ServiceAccounts>(conn, job, sink),
            EntityType::Calendar | EntityType::SurchargeTiers => Err(ApiError::NotFound),
        };
        if sent.is_ok() {
            sink.complete.store(true, Ordering::Release);
        }
        sent
    })
}

/// Writes `S`'s records in id order, one batch at a time: this thread reads the database and makes the views while
/// another writes the previous batch's text, so that the database and the serialisation work at the same time.
fn stream<S: Source>(conn: &mut DbConn, job: &Job, sink: &Sink) -> ApiResult<()> {
    let mut out = Out::new::<S::View>(job.format)?;
    let (batches, received) = std::sync::mpsc::sync_channel::<Vec<S::View>>(1);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> ApiResult<()> {
            for views in received {
                let chunk = out.batch(&views)?;
                if !chunk.is_empty() {
                    sink.send(Item::Chunk(chunk))?;
                }
            }
            Ok(())
        });
        let read = (|| {
            let mut after = None;
            loop {
                let rows = S::rows(conn, &Window { after: after.take(), since: job.since, limit: BATCH })?;
                let last_batch = (rows.len() as i64) < BATCH;
                after = rows.last().map(S::key);
                let views = S::views(conn, rows, &job.ctx)?;
                // The writer has stopped (the client left): its own error says why.
                if batches.send(views).is_err() || last_batch {
                    return Ok(());
                }
            }
        })();
        drop(batches);
        let written = writer.join().unwrap_or_else(|_| Err(ApiError::internal("export writer panicked")));
        read.and(written)
    })
}

/// The text of an export, batch by batch.
struct Out {
    /// What is written but not yet sent.
    buf: Vec<u8>,
    /// CSV: the columns.
    columns: Option<Vec<Column>>,
}

impl Out {
    /// A CSV starts with the byte-order mark and the header row.
    fn new<V: utoipa::ToSchema>(format: ExportFormat) -> ApiResult<Self> {
        let mut out = Out { buf: Vec::new(), columns: None };
        if format == ExportFormat::Csv {
            let columns = cells::columns::<V>();
            out.buf.extend_from_slice(b"\xEF\xBB\xBF");
            let mut w = csv_writer(&mut out.buf);
            w.write_record(columns.iter().map(|c| c.name.as_str())).map_err(internal)?;
            w.flush().map_err(internal)?;
            drop(w);
            out.columns = Some(columns);
        }
        Ok(out)
    }

    /// The text of `views`, after whatever was written before.
    fn batch<V: Serialize>(&mut self, views: &[V]) -> ApiResult<Bytes> {
        match &self.columns {
            None => {
                for view in views {
                    serde_json::to_writer(&mut self.buf, view).map_err(internal)?;
                    self.buf.push(b'\n');
                }
            }
            Some(columns) => {
                let mut w = csv_writer(&mut self.buf);
                for view in views {
                    let record = serde_json::to_value(view).map_err(internal)?;
                    w.write_record(cells::row(columns, &record)).map_err(internal)?;
                }
                w.flush().map_err(internal)?;
            }
        }
        // The next batch is about as long as this one: room for it up front, rather than growing by copies.
        let next = Vec::with_capacity(self.buf.len() + self.buf.len() / 8);
        Ok(Bytes::from(std::mem::replace(&mut self.buf, next)))
    }
}

/// Text fields quoted, numbers not; CRLF line ends, as Excel writes them.
fn csv_writer(buf: &mut Vec<u8>) -> ::csv::Writer<&mut Vec<u8>> {
    ::csv::WriterBuilder::new()
        .quote_style(::csv::QuoteStyle::NonNumeric)
        .terminator(::csv::Terminator::CRLF)
        .from_writer(buf)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("export: {e}"))
}
