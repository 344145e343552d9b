//! The append-only audit trail (docs/api.md), which is also the change feed (§4.11): the feed is the trail's
//! entity changes that platforms may read (`in_feed`), in the trail's order.
//!
//! [`record`] inserts the audit event in the writer's own transaction, so it commits or rolls back with the
//! change — but unnumbered. [`sequence_pending`] numbers every committed, unnumbered row and chains
//! the hashes, in batches, under the one lock on the chain (an advisory lock on PostgreSQL, the write lock on
//! SQLite). It runs in each instance's background sequencer (woken by every write) and before every read of the
//! trail or the feed, so readers see their own writes. Writers therefore never wait for each other's commits,
//! numbers follow the order in which changes became visible (a change that read another's result is numbered
//! after it), the chain never forks, and readers, who see numbered rows only, never see a gap fill in later.
//!
//! On SQLite, whose writers take turns anyway, [`record`] numbers and chains the event as it writes it (under the
//! same write lock), so a write costs one INSERT instead of an INSERT and a later UPDATE of the whole row. A bulk
//! job's batch ([`record_closing`]: a quarterly run's thousand events) does the same on PostgreSQL: it takes the
//! chain's lock at its very end, numbers what is pending first, then its own events, and holds the lock only for
//! its COPY and COMMIT — rewriting each of those large rows later was a third of a run's database work.

pub mod history;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::clock::Now;
use crate::db::schema::{audit_events, ledger_head};
use crate::db::DbConn;
use crate::identity::{Principal, Role};

crate::text_enum! {
    /// The entity types named across the contract (audit, change feed, exports).
    pub enum EntityType {
        WaterUser = ("water_user", "取用水户"),
        Permit = ("permit", "取水许可"),
        Withdrawal = ("withdrawal", "月取水量"),
        Zone = ("zone", "取水总量控制分区"),
        FeeRate = ("fee_rate", "水资源费征收标准"),
        FeeAssessment = ("fee_assessment", "水资源费核定"),
        Payment = ("payment", "缴款"),
        PlannedUser = ("planned_user", "计划用水户"),
        Plan = ("plan", "用水计划"),
        Usage = ("usage", "实际用水量"),
        SurchargeTiers = ("surcharge_tiers", "超计划累进加价标准"),
        Inspection = ("inspection", "巡查"),
        Rectification = ("rectification", "整改"),
        Evidence = ("evidence", "证据"),
        Case = ("case", "行政处罚案件"),
        Publication = ("publication", "行政处罚公示"),
        Calendar = ("calendar", "工作日历"),
        Account = ("account", "账号"),
        Department = ("department", "部门"),
        ServiceAccount = ("service_account", "服务账号"),
    }
}

impl EntityType {
    /// Accounts and service accounts stay out of the change feed (the platform may not read them), and so does the
    /// calendar (configuration, not one of the platform's entity types).
    pub fn in_change_feed(self) -> bool {
        !matches!(self, Self::Account | Self::ServiceAccount | Self::Calendar)
    }
}

/// Who did something, as kept in each audit event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    pub sub: String,
    pub username: Option<String>,
    pub department: Option<String>,
    pub roles: Vec<Role>,
}

impl Actor {
    pub fn system() -> Self {
        Self { sub: "system".into(), username: Some("system".into()), department: None, roles: vec![] }
    }

    /// An unauthenticated caller (failed login), named by what they claimed to be (bounded and escaped).
    pub fn anonymous(claimed_username: Option<&str>) -> Self {
        Self {
            sub: "anonymous".into(),
            username: claimed_username.map(|c| untrusted(c, 64)),
            department: None,
            roles: vec![],
        }
    }
}

impl From<&Principal> for Actor {
    /// External issuers' subjects are recorded as `issuer#subject`, never as a bare id a local account could have.
    fn from(p: &Principal) -> Self {
        Self {
            sub: p.scope(),
            username: p.username.clone(),
            department: Some(p.department.clone()),
            roles: p.roles.clone(),
        }
    }
}

pub use crate::domain::text::untrusted;

/// What a write needs to know to audit itself: the actor, the request it came with and the request's instant.
#[derive(Debug, Clone)]
pub struct AuditCtx {
    pub actor: Actor,
    pub request_id: Option<String>,
    pub now: Now,
}

/// One audited event. `entity` is set for changes to a record; `before`/`after` are the record as `GET`
/// returns it (or `None` where it did not / no longer exists), as JSON text: serialised straight to text, not
/// through a `serde_json::Value` tree (half the work of a quarterly run's thousand events a batch).
pub struct Event<'a> {
    pub action: &'a str,
    pub entity: Option<(EntityType, &'a str)>,
    pub before: Option<String>,
    pub after: Option<String>,
    /// Why (for actions that take a reason).
    pub reason: Option<String>,
    /// The business date of the step (`effective_date`), when it differs from the time of entry.
    pub effective_date: Option<chrono::NaiveDate>,
}

impl<'a> Event<'a> {
    pub fn new(action: &'a str) -> Self {
        Self { action, entity: None, before: None, after: None, reason: None, effective_date: None }
    }

    pub fn entity(mut self, entity_type: EntityType, id: &'a str) -> Self {
        self.entity = Some((entity_type, id));
        self
    }

    pub fn before<T: Serialize>(mut self, v: &T) -> Self {
        self.before = serde_json::to_string(v).ok();
        self
    }

    pub fn after<T: Serialize>(mut self, v: &T) -> Self {
        self.after = serde_json::to_string(v).ok();
        self
    }

    pub fn reason(mut self, reason: Option<&str>) -> Self {
        self.reason = reason.map(str::to_string);
        self
    }

    pub fn effective_date(mut self, date: chrono::NaiveDate) -> Self {
        self.effective_date = Some(date);
        self
    }
}

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    at: String,
    actor_sub: &'a str,
    actor_username: Option<&'a str>,
    actor_department: Option<&'a str>,
    actor_roles: &'a str,
    action: &'a str,
    entity_type: Option<&'a str>,
    entity_id: Option<&'a str>,
    before: Option<&'a str>,
    after: Option<&'a str>,
    request_id: Option<&'a str>,
    in_feed: bool,
    reason: Option<&'a str>,
    effective_date: Option<String>,
}

/// The canonical form of an event (stored or about to be) numbered `seq`: the same fields, whichever row type.
macro_rules! canonical {
    ($row:expr, $seq:expr) => {
        Canonical {
            seq: $seq,
            at: format_instant(&$row.at),
            actor_sub: &$row.actor_sub,
            actor_username: $row.actor_username.as_deref(),
            actor_department: $row.actor_department.as_deref(),
            actor_roles: &$row.actor_roles,
            action: &$row.action,
            entity_type: $row.entity_type.as_deref(),
            entity_id: $row.entity_id.as_deref(),
            before: $row.before_data.as_deref(),
            after: $row.after_data.as_deref(),
            request_id: $row.request_id.as_deref(),
            in_feed: $row.in_feed,
            reason: $row.reason.as_deref(),
            effective_date: $row.effective_date.map(|d| d.to_string()),
        }
    };
}

#[derive(Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
struct NewAuditRow {
    at: NaiveDateTime,
    actor_sub: String,
    actor_username: Option<String>,
    actor_department: Option<String>,
    actor_roles: String,
    action: String,
    entity_type: Option<String>,
    entity_id: Option<String>,
    before_data: Option<String>,
    after_data: Option<String>,
    request_id: Option<String>,
    in_feed: bool,
    reason: Option<String>,
    effective_date: Option<chrono::NaiveDate>,
    /// Set when numbered as it is written (SQLite); null for the sequencer otherwise.
    seq: Option<i64>,
    prev_hash: Option<String>,
    hash: Option<String>,
}

/// An audit row as stored; `seq`, `prev_hash` and `hash` are null until the sequencer numbers it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: i64,
    pub seq: Option<i64>,
    pub at: NaiveDateTime,
    pub actor_sub: String,
    pub actor_username: Option<String>,
    pub actor_department: Option<String>,
    pub actor_roles: String,
    pub action: String,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub before_data: Option<String>,
    pub after_data: Option<String>,
    pub request_id: Option<String>,
    pub in_feed: bool,
    pub reason: Option<String>,
    pub effective_date: Option<chrono::NaiveDate>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

pub fn format_instant(at: &NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The numbered events (what readers may see), ready for filters.
pub fn numbered<'a>() -> audit_events::BoxedQuery<'a, Sql> {
    audit_events::table.filter(audit_events::seq.is_not_null()).into_boxed()
}

/// A page of the events `q` selects, in sequence order after the cursor (`limit + 1` of them).
pub fn page_of<'a>(
    q: audit_events::BoxedQuery<'a, Sql>,
    p: &crate::http::pagination::PageParams<i64>,
) -> EventQuery<'a> {
    let mut q = q.order(audit_events::seq.asc()).limit(p.fetch()).select(AuditRow::as_select());
    if let Some(after) = p.after {
        q = q.filter(audit_events::seq.gt(after));
    }
    q
}

type Sql = <DbConn as Connection>::Backend;

/// A boxed query over audit events selecting [`AuditRow`]s.
pub type EventQuery<'a> =
    audit_events::BoxedQuery<'a, Sql, diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<AuditRow, Sql>>>;

impl AuditRow {
    /// The actor as recorded.
    pub fn actor(&self) -> Actor {
        Actor {
            sub: self.actor_sub.clone(),
            username: self.actor_username.clone(),
            department: self.actor_department.clone(),
            roles: Role::split(&self.actor_roles),
        }
    }

    /// SHA-256 over the previous hash and the canonical JSON of the event numbered `seq`.
    pub fn compute_hash(&self, seq: i64, prev_hash: &str) -> String {
        chain_hash(prev_hash, &canonical!(self, seq))
    }
}

/// SHA-256 over the previous hash, a line break and the event's canonical JSON.
fn chain_hash(prev_hash: &str, canonical: &Canonical<'_>) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(canonical).expect("canonical event serialises"));
    hex::encode(h.finalize())
}

impl NewAuditRow {
    /// The hash this event will have once stored and numbered `seq` (the same as [`AuditRow::compute_hash`]).
    fn compute_hash(&self, seq: i64, prev_hash: &str) -> String {
        chain_hash(prev_hash, &canonical!(self, seq))
    }
}

/// Numbers and chains `rows` as they are written: every write on SQLite, bulk writes on PostgreSQL. On SQLite the
/// write transaction holds the only write lock, so numbering at once costs nothing in concurrency and spares
/// rewriting every row later (the sequencer's UPDATE of large rows was most of a bulk write's cost). Events left
/// unnumbered earlier are numbered first, in order.
///
/// On PostgreSQL the chain's lock is taken here and held to the caller's COMMIT: events committed before are
/// numbered ahead of these, events committed meanwhile after them, by the sequencer once this commits.
fn number_inline(conn: &mut DbConn, rows: &mut [NewAuditRow]) -> QueryResult<()> {
    use ledger_head::dsl as h;
    lock_chain(conn)?;
    while first_pending(conn)?.is_some() {
        sequence_batch(conn)?;
    }
    let (mut seq, mut prev): (i64, String) =
        h::ledger_head.filter(h::id.eq(1)).select((h::audit_seq, h::audit_hash)).first(conn)?;
    for row in rows.iter_mut() {
        seq += 1;
        let hash = row.compute_hash(seq, &prev);
        row.seq = Some(seq);
        row.prev_hash = Some(std::mem::replace(&mut prev, hash.clone()));
        row.hash = Some(hash);
    }
    diesel::update(h::ledger_head.filter(h::id.eq(1)))
        .set((h::audit_seq.eq(seq), h::audit_hash.eq(&prev)))
        .execute(conn)?;
    Ok(())
}

/// Inserts `rows` on SQLite, numbered (one prepared INSERT each: in process, diesel's multi-backend connection has
/// no multi-row insert for SQLite).
fn insert_sqlite(conn: &mut DbConn, rows: &mut [NewAuditRow]) -> QueryResult<()> {
    number_inline(conn, rows)?;
    if let DbConn::Sqlite(c) = conn {
        for row in rows.iter() {
            diesel::insert_into(audit_events::table).values(row).execute(c)?;
        }
    }
    Ok(())
}

/// Appends `event` to the audit trail and, for entity changes, to the change feed — inside the caller's
/// transaction, so the record, its audit event and its feed entry commit or roll back together.
pub fn record(conn: &mut DbConn, ctx: &AuditCtx, event: Event<'_>) -> QueryResult<()> {
    record_all(conn, ctx, [event])
}

/// Like [`record`] for several events of one write; they are numbered in the order given. On PostgreSQL one
/// statement (one round trip, a cached statement per `N`), numbered by the sequencer after commit; on SQLite
/// numbered as they are written.
pub fn record_all<const N: usize>(conn: &mut DbConn, ctx: &AuditCtx, events: [Event<'_>; N]) -> QueryResult<()> {
    let mut rows = events.map(|e| NewAuditRow::new(ctx, e));
    match conn {
        DbConn::Postgres(c) => {
            diesel::insert_into(audit_events::table).values(&rows).execute(c)?;
        }
        DbConn::Sqlite(_) => insert_sqlite(conn, &mut rows)?,
    }
    Ok(())
}

/// Like [`record_all`] for a batch of any size (an import's slice of events): one binary COPY on PostgreSQL (see
/// [`crate::insert_all!`]), unnumbered for the sequencer; one INSERT per event, numbered, on SQLite.
pub fn record_many<'a>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    events: impl IntoIterator<Item = Event<'a>>,
) -> QueryResult<()> {
    let mut rows: Vec<NewAuditRow> = events.into_iter().map(|e| NewAuditRow::new(ctx, e)).collect();
    match conn {
        _ if rows.is_empty() => {}
        DbConn::Postgres(c) => {
            diesel::copy_from(audit_events::table).from_insertable(&rows).execute(c)?;
        }
        DbConn::Sqlite(_) => insert_sqlite(conn, &mut rows)?,
    }
    Ok(())
}

/// Like [`record_many`], for the last statement of a bulk job's transaction (a quarterly run's batch): the events
/// are numbered as they are written on PostgreSQL too (see [`number_inline`]), so the sequencer does not rewrite a
/// thousand large rows afterwards. It holds the chain's lock from here to the COMMIT, so nothing may follow it in
/// the transaction that could wait (for a row lock, for the client).
pub fn record_closing<'a>(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    events: impl IntoIterator<Item = Event<'a>>,
) -> QueryResult<()> {
    let mut rows: Vec<NewAuditRow> = events.into_iter().map(|e| NewAuditRow::new(ctx, e)).collect();
    match conn {
        _ if rows.is_empty() => {}
        DbConn::Postgres(_) => {
            number_inline(conn, &mut rows)?;
            if let DbConn::Postgres(c) = conn {
                diesel::copy_from(audit_events::table).from_insertable(&rows).execute(c)?;
            }
        }
        DbConn::Sqlite(_) => insert_sqlite(conn, &mut rows)?,
    }
    Ok(())
}

impl NewAuditRow {
    fn new(ctx: &AuditCtx, event: Event<'_>) -> Self {
        Self {
            at: ctx.now.at,
            actor_sub: ctx.actor.sub.clone(),
            actor_username: ctx.actor.username.clone(),
            actor_department: ctx.actor.department.clone(),
            actor_roles: Role::join(&ctx.actor.roles),
            action: event.action.to_string(),
            entity_type: event.entity.map(|(t, _)| t.as_str().to_string()),
            entity_id: event.entity.map(|(_, id)| id.to_string()),
            before_data: event.before,
            after_data: event.after,
            request_id: ctx.request_id.clone(),
            in_feed: event.entity.is_some_and(|(t, _)| t.in_change_feed()),
            reason: event.reason,
            effective_date: event.effective_date,
            seq: None,
            prev_hash: None,
            hash: None,
        }
    }
}

const SEQUENCE_BATCH: i64 = 1000;

/// Numbers and chains every committed, unnumbered audit event, in its own transactions; one
/// sequencer at a time across instances (the others wait, then usually find nothing left).
pub fn sequence_pending(conn: &mut DbConn) -> QueryResult<usize> {
    if first_pending(conn)?.is_none() {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let n = crate::db::write_transaction(conn, sequence_batch)?;
        total += n;
        if n < SEQUENCE_BATCH as usize {
            return Ok(total);
        }
    }
}

/// The id of the first committed, unnumbered event, if any: PostgreSQL reads it off the partial index of pending
/// events whatever its statistics say. (`EXISTS (… WHERE seq IS NULL)` was planned as a scan of the whole trail when
/// the statistics were taken right after a bulk insert, before its events were numbered.)
fn first_pending(conn: &mut DbConn) -> QueryResult<Option<i64>> {
    audit_events::table
        .filter(audit_events::seq.is_null())
        .order(audit_events::id.asc())
        .select(audit_events::id)
        .first(conn)
        .optional()
}

/// Takes the one lock on the chain until the transaction ends (PostgreSQL; SQLite's write lock is held already).
/// Taking it again in the same transaction is free.
fn lock_chain(conn: &mut DbConn) -> QueryResult<()> {
    if matches!(conn, DbConn::Postgres(_)) {
        diesel::sql_query("SELECT pg_advisory_xact_lock(7216354000001)").execute(conn)?;
    }
    Ok(())
}

fn sequence_batch(conn: &mut DbConn) -> QueryResult<usize> {
    use ledger_head::dsl as h;
    lock_chain(conn)?;
    let (mut seq, mut prev): (i64, String) =
        h::ledger_head.filter(h::id.eq(1)).select((h::audit_seq, h::audit_hash)).first(conn)?;
    let events: Vec<AuditRow> = audit_events::table
        .filter(audit_events::seq.is_null())
        .order(audit_events::id.asc())
        .limit(SEQUENCE_BATCH)
        .select(AuditRow::as_select())
        .load(conn)?;
    let mut numbered = Vec::with_capacity(events.len());
    for e in &events {
        seq += 1;
        let hash = e.compute_hash(seq, &prev);
        numbered.push((e.id, seq, std::mem::replace(&mut prev, hash.clone()), hash));
    }
    match conn {
        // One statement per batch: the values are integers and hex digests, written into the statement directly.
        DbConn::Postgres(_) if !numbered.is_empty() => {
            let values: Vec<String> =
                numbered.iter().map(|(id, seq, prev, hash)| format!("({id}, {seq}, '{prev}', '{hash}')")).collect();
            diesel::sql_query(format!(
                "UPDATE audit_events SET seq = v.column2, prev_hash = v.column3, hash = v.column4 \
                 FROM (VALUES {}) AS v WHERE audit_events.id = v.column1",
                values.join(", ")
            ))
            .execute(conn)?;
        }
        DbConn::Postgres(_) => {}
        // In process, one prepared UPDATE per event: SQLite plans `UPDATE … FROM (VALUES …)` of many rows as a
        // scan of the whole trail per value (seconds per batch once the trail is large).
        DbConn::Sqlite(_) => {
            for (id, seq, prev, hash) in &numbered {
                diesel::update(audit_events::table.find(id))
                    .set((audit_events::seq.eq(seq), audit_events::prev_hash.eq(prev), audit_events::hash.eq(hash)))
                    .execute(conn)?;
            }
        }
    }
    if !events.is_empty() {
        diesel::update(h::ledger_head.filter(h::id.eq(1)))
            .set((h::audit_seq.eq(seq), h::audit_hash.eq(&prev)))
            .execute(conn)?;
    }
    Ok(events.len())
}

/// Result of re-walking the chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    /// Number of events checked.
    pub checked: i64,
    /// The first event whose hash, link or sequence number does not hold; null when the chain is intact.
    pub first_break_seq: Option<i64>,
}

/// Re-walks the chain in batches up to the head it reads first: each event's hash must match its content and
/// link to the previous event's hash, sequence numbers must run without gaps, and the last event must be the head.
/// Events numbered while it walks lie beyond that head and are left for the next run, so concurrent writers never
/// make an intact chain look broken (a numbered event is immutable, and the head moves only with the events it
/// covers, in one transaction).
pub fn verify(conn: &mut DbConn) -> QueryResult<VerifyReport> {
    use audit_events::dsl as a;
    const BATCH: i64 = 2000;
    let (head_seq, head_hash): (i64, String) = ledger_head::table
        .filter(ledger_head::id.eq(1))
        .select((ledger_head::audit_seq, ledger_head::audit_hash))
        .first(conn)?;
    let mut prev = GENESIS_HASH.to_string();
    let mut expected = 1i64;
    let mut checked = 0i64;
    while expected <= head_seq {
        let rows: Vec<AuditRow> = a::audit_events
            .filter(a::seq.ge(expected).and(a::seq.le(head_seq)))
            .order(a::seq.asc())
            .limit(BATCH)
            .select(AuditRow::as_select())
            .load(conn)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            checked += 1;
            let seq = row.seq.unwrap_or(expected);
            let intact = seq == expected
                && row.prev_hash.as_deref() == Some(prev.as_str())
                && row.hash.as_deref() == Some(row.compute_hash(seq, &prev).as_str());
            if !intact {
                return Ok(VerifyReport { ok: false, checked, first_break_seq: Some(expected.min(seq)) });
            }
            prev = row.hash.clone().unwrap_or_default();
            expected += 1;
        }
    }
    // Events missing at the end (or a rewritten head) break the chain too.
    if expected - 1 != head_seq || prev != head_hash {
        return Ok(VerifyReport { ok: false, checked, first_break_seq: Some(expected) });
    }
    Ok(VerifyReport { ok: true, checked, first_break_seq: None })
}
