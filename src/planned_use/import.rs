//! `POST /api/v1/planned-users/import` — the start-of-year bulk import (CSV or the first sheet of an `.xlsx`
//! workbook), and `GET /api/v1/planned-users/import-template` — the empty file to fill in.
//!
//! Each row names an organisation by its 统一社会信用代码 and gives its planned-use terms and one year's plan: the
//! water user is registered when the code is new, the planned user created (or its category, supply and base price
//! brought up to date), and the year's plan issued, split evenly by month (the remainder in December). The credit
//! code is the key: importing the same file again creates nothing.
//!
//! All rows or none: the whole file is one transaction with its audit events, read a slice of rows at a time
//! (three queries per slice whatever its size; multi-row inserts on PostgreSQL). Every bad row is reported with its
//! line, column and what is wrong, and then nothing is written.

use std::collections::HashMap;

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::rules::{split_evenly, YEARS};
use super::{
    Category, Plan, PlanRow, PlanStatus, PlannedUseRead, PlannedUseWrite, PlannedUser, PlannedUserRow, Supply,
};
use crate::audit::{self, AuditCtx, EntityType, Event};
use crate::db::schema::{planned_users as pu, plans as pl, water_users as w};
use crate::db::DbConn;
use crate::domain::credit_code::CreditCode;
use crate::domain::money::Rate;
use crate::domain::text::Checks;
use crate::domain::MAX_VOLUME_M3;
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::http::table::{self, Row, TableFormat};
use crate::http::Query;
use crate::messages::Msg;
use crate::security::Authorized;
use crate::state::AppState;
use crate::water_users::WaterUser;
use crate::write::{idempotency, Reply, Versioned};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(import).service(template);
}

/// Largest file accepted (a file of 10 000 rows is well under 1 MiB).
pub const MAX_FILE: usize = 20 * 1024 * 1024;
/// Data rows a file may hold (a county's list is hundreds to a few thousand).
pub const MAX_ROWS: i64 = 100_000;
/// Rows read, checked and written together.
const SLICE: usize = 500;
/// Bad rows listed in a refusal (all are counted).
const LISTED: usize = 1000;

/// The columns of the file, in the template's order; `region_code` may be added (default: the region in the
/// credit code). A header may also use the Chinese names.
pub const COLUMNS: [(&str, &str); 8] = [
    ("credit_code", "统一社会信用代码"),
    ("name", "单位名称"),
    ("category", "类别"),
    ("supply", "水源"),
    ("base_price_yuan_per_m3", "基本水价"),
    ("year", "年度"),
    ("annual_m3", "年计划用水量"),
    ("region_code", "行政区划代码"),
];
const REQUIRED: usize = 7;

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"rows": 270, "water_users_created": 12, "planned_users_created": 15, "planned_users_updated": 3,
    "plans_created": 270, "plans_existing": 0}))]
pub struct ImportSummary {
    /// Data rows read.
    pub rows: i64,
    /// Organisations new to the registry.
    pub water_users_created: i64,
    pub planned_users_created: i64,
    /// Existing planned users whose category, supply or base price the file changed.
    pub planned_users_updated: i64,
    pub plans_created: i64,
    /// Rows whose plan was already issued with the same annual quantity (an import run again).
    pub plans_existing: i64,
}

/// One checked row.
struct Line {
    line: u64,
    credit_code: String,
    name: String,
    category: Category,
    supply: Supply,
    price: Option<Rate>,
    year: i32,
    annual_m3: i64,
    region_code: String,
}

impl Line {
    /// The terms that must agree between rows of one organisation.
    fn terms(&self) -> (&str, Category, Supply, Option<Rate>) {
        (&self.name, self.category, self.supply, self.price)
    }
}

/// Where each column is in the file.
struct Header {
    at: [Option<usize>; COLUMNS.len()],
}

impl Header {
    fn parse(row: &Row) -> Result<Self, Vec<FieldError>> {
        let mut at = [None; COLUMNS.len()];
        let mut errors = Vec::new();
        for (i, cell) in row.cells.iter().enumerate() {
            let name = cell.trim();
            if name.is_empty() {
                continue;
            }
            match COLUMNS.iter().position(|(en, zh)| name.eq_ignore_ascii_case(en) || name == *zh) {
                Some(k) if at[k].is_some() => errors.push(FieldError::new(COLUMNS[k].0, Msg::ColumnTwice(name.into()))),
                Some(k) => at[k] = Some(i),
                None => {
                    errors.push(FieldError::new("header", Msg::ColumnUnknown(crate::domain::text::untrusted(name, 50))))
                }
            }
        }
        for (k, (en, _)) in COLUMNS.iter().enumerate().take(REQUIRED) {
            if at[k].is_none() {
                errors.push(FieldError::new(*en, Msg::ColumnMissing((*en).into())));
            }
        }
        if errors.is_empty() {
            Ok(Self { at })
        } else {
            Err(errors.into_iter().map(|e| e.at(row.line)).collect())
        }
    }

    fn cell<'r>(&self, row: &'r Row, k: usize) -> &'r str {
        self.at[k].and_then(|i| row.cells.get(i)).map_or("", |s| s.as_str())
    }
}

/// A closed set given by its code or its Chinese name (`non_residential` or `非居民用水户`).
fn one_of<T: Copy>(
    c: &mut Checks,
    field: &str,
    v: &str,
    all: &[T],
    code: fn(T) -> &'static str,
    zh: fn(T) -> &'static str,
) -> Option<T> {
    let found = all.iter().copied().find(|x| v.eq_ignore_ascii_case(code(*x)) || v == zh(*x));
    if found.is_none() {
        let allowed = all.iter().map(|x| format!("{}（{}）", code(*x), zh(*x))).collect();
        c.fail(field, Msg::OneOf { allowed, given: crate::domain::text::untrusted(v, 50) });
    }
    found
}

fn whole<T: std::str::FromStr>(c: &mut Checks, field: &str, v: &str) -> Option<T> {
    let parsed = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse().ok()).flatten();
    if parsed.is_none() {
        c.fail(field, if v.is_empty() { Msg::NotEmpty } else { Msg::WholeNumber });
    }
    parsed
}

/// Checks one row's cells (nothing of the database yet).
fn check(h: &Header, row: &Row) -> Result<Line, Vec<FieldError>> {
    let mut c = Checks::new();
    let cell = |k| h.cell(row, k);
    let credit_code = match CreditCode::parse(cell(0)) {
        Ok(code) => code.into_string(),
        Err(e) => {
            c.fail("credit_code", e.message());
            String::new()
        }
    };
    let name = c.required("name", cell(1), 200);
    let category = one_of(&mut c, "category", cell(2), &Category::ALL, Category::as_str, Category::label_zh);
    let supply = one_of(&mut c, "supply", cell(3), &Supply::ALL, Supply::as_str, Supply::label_zh);
    let price = match cell(4) {
        "" => None,
        p => Rate::parse(p).map_err(|m| c.fail("base_price_yuan_per_m3", m)).ok(),
    };
    let year = whole::<i32>(&mut c, "year", cell(5)).filter(|y| {
        let ok = YEARS.contains(y);
        if !ok {
            c.fail("year", Msg::YearRange);
        }
        ok
    });
    let annual = whole::<i64>(&mut c, "annual_m3", cell(6)).filter(|v| {
        let ok = (0..=MAX_VOLUME_M3).contains(v);
        if !ok {
            c.fail("annual_m3", Msg::VolumeRange { min: 0 });
        }
        ok
    });
    // Positions 3–8 of a credit code are the registering authority's administrative division (checked like one
    // given: a code may hold letters there).
    let region_code = match (cell(7), credit_code.get(2..8)) {
        ("", Some(derived)) => c.region_code("region_code", derived),
        ("", None) => String::new(),
        (given, _) => c.region_code("region_code", given),
    };
    let errors = c.take();
    match (category, supply, year, annual) {
        (Some(category), Some(supply), Some(year), Some(annual_m3)) if errors.is_empty() => {
            Ok(Line { line: row.line, credit_code, name, category, supply, price, year, annual_m3, region_code })
        }
        _ => Err(errors.into_iter().map(|e| e.at(row.line)).collect()),
    }
}

/// What the import has seen and done so far.
struct Import<'a> {
    ctx: &'a AuditCtx,
    header: Option<Header>,
    /// The first line of each (credit code, year), and of each credit code with its terms.
    seen: HashMap<(String, i32), u64>,
    terms: HashMap<String, (u64, String, Category, Supply, Option<Rate>)>,
    slice: Vec<Line>,
    errors: Vec<FieldError>,
    error_count: usize,
    summary: ImportSummary,
}

impl Import<'_> {
    fn fail(&mut self, errors: Vec<FieldError>) {
        self.error_count += errors.len();
        let room = LISTED.saturating_sub(self.errors.len());
        self.errors.extend(errors.into_iter().take(room));
    }

    fn row(&mut self, conn: &mut DbConn, row: Row) -> Result<(), ApiError> {
        let Some(h) = &self.header else {
            match Header::parse(&row) {
                Ok(h) => self.header = Some(h),
                // Without its columns no row can be read: stop here.
                Err(errors) => return Err(ApiError::Validation { code: ErrorCode::ValidationFailed, errors }),
            }
            return Ok(());
        };
        self.summary.rows += 1;
        if self.summary.rows > MAX_ROWS {
            return Err(ApiError::invalid("file", Msg::TooManyRows(MAX_ROWS)));
        }
        let line = match check(h, &row) {
            Ok(line) => line,
            Err(errors) => {
                self.fail(errors);
                return Ok(());
            }
        };
        if let Some(first) = self.seen.get(&(line.credit_code.clone(), line.year)) {
            let e = FieldError::new("credit_code", Msg::RowRepeated(*first)).at(line.line);
            self.fail(vec![e]);
            return Ok(());
        }
        self.seen.insert((line.credit_code.clone(), line.year), line.line);
        match self.terms.get(&line.credit_code) {
            Some((first, name, cat, sup, price)) if (name.as_str(), *cat, *sup, *price) != line.terms() => {
                let e = FieldError::new("credit_code", Msg::RowDisagrees(*first)).at(line.line);
                self.fail(vec![e]);
                return Ok(());
            }
            Some(_) => {}
            None => {
                let (name, cat, sup, price) = line.terms();
                self.terms.insert(line.credit_code.clone(), (line.line, name.to_string(), cat, sup, price));
            }
        }
        self.slice.push(line);
        if self.slice.len() >= SLICE {
            self.flush(conn)?;
        }
        Ok(())
    }

    /// Writes the rows read so far: the water users, planned users and plans they need, with their audit events.
    fn flush(&mut self, conn: &mut DbConn) -> Result<(), ApiError> {
        let lines = std::mem::take(&mut self.slice);
        if lines.is_empty() {
            return Ok(());
        }
        let now = self.ctx.now;
        let mut codes: Vec<&str> = lines.iter().map(|l| l.credit_code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        let mut users: HashMap<String, WaterUser> = w::table
            .filter(w::credit_code.eq_any(&codes))
            .select(WaterUser::as_select())
            .load(conn)?
            .into_iter()
            .map(|u| (u.credit_code.clone(), u))
            .collect();
        let mut events: Vec<Pending> = Vec::new();
        let mut new_users = Vec::new();
        for l in &lines {
            if users.contains_key(&l.credit_code) {
                continue;
            }
            let u = WaterUser {
                id: crate::domain::new_id(),
                name: l.name.clone(),
                credit_code: l.credit_code.clone(),
                legal_representative: None,
                region_code: l.region_code.clone(),
                address: None,
                industry: None,
                contact_phone: None,
                created_at: now.at,
                updated_at: now.at,
                version: 1,
            };
            events.push(Pending::new("water_user_created", EntityType::WaterUser, &u.id, None, &u));
            new_users.push(u.clone());
            users.insert(u.credit_code.clone(), u);
        }
        crate::insert_all!(conn, w::table, &new_users).map_err(conflict)?;
        self.summary.water_users_created += new_users.len() as i64;

        let wu_ids: Vec<&str> = users.values().map(|u| u.id.as_str()).collect();
        let of_users = pu::table.filter(pu::water_user_id.eq_any(&wu_ids));
        // As a single plan issue does: a deactivation waits for this import (and the other way round).
        let found: Vec<PlannedUserRow> = match conn {
            DbConn::Postgres(c) => of_users.select(PlannedUserRow::as_select()).for_key_share().load(c)?,
            DbConn::Sqlite(c) => of_users.select(PlannedUserRow::as_select()).load(c)?,
        };
        let mut planned: HashMap<String, PlannedUserRow> =
            found.into_iter().map(|p| (p.water_user_id.clone(), p)).collect();
        let names: HashMap<String, (String, String)> =
            users.values().map(|u| (u.id.clone(), (u.name.clone(), u.credit_code.clone()))).collect();
        let mut new_planned = Vec::new();
        for l in &lines {
            let wu = &users[&l.credit_code];
            let price = l.price.map(|p| p.to_string());
            match planned.get_mut(&wu.id) {
                Some(p) if !p.active => {
                    self.fail(vec![FieldError::new("credit_code", Msg::PlannedUserInactive).at(l.line)]);
                }
                Some(p)
                    if (p.category.as_str(), p.supply.as_str(), &p.base_price)
                        != (l.category.as_str(), l.supply.as_str(), &price) =>
                {
                    let before = p.clone();
                    p.category = l.category.as_str().into();
                    p.supply = l.supply.as_str().into();
                    p.base_price = price;
                    p.touch(now.at);
                    if p.store(conn, before.version)? != 1 {
                        return Err(ApiError::conflict(ErrorCode::Conflict, Msg::ChangedDuringImport));
                    }
                    let was = PlannedUser::new(&before, &names);
                    let view = PlannedUser::new(p, &names);
                    events.push(Pending::new(
                        "planned_user_updated",
                        EntityType::PlannedUser,
                        &p.id,
                        Some(&was),
                        &view,
                    ));
                    self.summary.planned_users_updated += 1;
                }
                Some(_) => {}
                None => {
                    let row = PlannedUserRow {
                        id: crate::domain::new_id(),
                        water_user_id: wu.id.clone(),
                        category: l.category.as_str().into(),
                        supply: l.supply.as_str().into(),
                        base_price: price,
                        active: true,
                        note: None,
                        created_at: now.at,
                        updated_at: now.at,
                        version: 1,
                    };
                    let view = PlannedUser::new(&row, &names);
                    events.push(Pending::new("planned_user_created", EntityType::PlannedUser, &row.id, None, &view));
                    new_planned.push(row.clone());
                    planned.insert(wu.id.clone(), row);
                }
            }
        }
        crate::insert_all!(conn, pu::table, &new_planned).map_err(conflict)?;
        self.summary.planned_users_created += new_planned.len() as i64;

        let pu_ids: Vec<&str> = planned.values().map(|p| p.id.as_str()).collect();
        let mut years: Vec<i32> = lines.iter().map(|l| l.year).collect();
        years.sort_unstable();
        years.dedup();
        let plans: HashMap<(String, i32), i64> = pl::table
            .filter(pl::planned_user_id.eq_any(&pu_ids))
            .filter(pl::year.eq_any(&years))
            .select((pl::planned_user_id, pl::year, pl::annual_m3))
            .load::<(String, i32, i64)>(conn)?
            .into_iter()
            .map(|(u, y, a)| ((u, y), a))
            .collect();
        let mut new_plans = Vec::new();
        for l in &lines {
            let Some(p) = planned.get(&users[&l.credit_code].id) else { continue };
            match plans.get(&(p.id.clone(), l.year)) {
                Some(annual) if *annual == l.annual_m3 => self.summary.plans_existing += 1,
                Some(_) => self.fail(vec![FieldError::new("annual_m3", Msg::PlanExists(l.year)).at(l.line)]),
                None => {
                    let row = PlanRow {
                        id: crate::domain::new_id(),
                        planned_user_id: p.id.clone(),
                        year: l.year,
                        annual_m3: l.annual_m3,
                        monthly_m3: serde_json::to_string(&split_evenly(l.annual_m3)).unwrap_or_default(),
                        status: PlanStatus::Issued.as_str().into(),
                        issued_on: now.today,
                        adjusted_on: None,
                        reason: None,
                        created_at: now.at,
                        updated_at: now.at,
                        version: 1,
                    };
                    events.push(Pending::new("plan_issued", EntityType::Plan, &row.id, None, &Plan::new(&row)));
                    new_plans.push(row);
                }
            }
        }
        crate::insert_all!(conn, pl::table, &new_plans).map_err(conflict)?;
        self.summary.plans_created += new_plans.len() as i64;
        audit::record_many(conn, self.ctx, events.iter().map(Pending::event))?;
        Ok(())
    }
}

/// An audit event of the slice, kept until its records are written.
struct Pending {
    action: &'static str,
    entity: EntityType,
    id: String,
    before: Option<serde_json::Value>,
    after: serde_json::Value,
}

impl Pending {
    fn new<T: Serialize>(action: &'static str, entity: EntityType, id: &str, before: Option<&T>, after: &T) -> Self {
        let json = |v: &T| serde_json::to_value(v).unwrap_or_default();
        Self { action, entity, id: id.to_string(), before: before.map(json), after: json(after) }
    }

    fn event(&self) -> Event<'_> {
        let e = Event::new(self.action).entity(self.entity, &self.id).after(&self.after);
        match &self.before {
            Some(b) => e.before(b),
            None => e,
        }
    }
}

/// A record another request created or deleted meanwhile (outside this import's lock: a single registration or
/// deletion) is a conflict to retry, not a server error.
fn conflict(e: diesel::result::Error) -> ApiError {
    if crate::db::is_unique_violation(&e) || crate::db::is_foreign_key_violation(&e) {
        ApiError::conflict(ErrorCode::Conflict, Msg::ChangedDuringImport)
    } else {
        e.into()
    }
}

/// Reads and writes the whole file in the caller's transaction; a refusal lists every bad row.
pub fn run(conn: &mut DbConn, ctx: &AuditCtx, file: std::fs::File, format: TableFormat) -> ApiResult<ImportSummary> {
    // Imports one at a time: two imports of one file must not both register the same organisation.
    crate::db::lock_names(conn, &["planned_users_import"])?;
    let mut state = Import {
        ctx,
        header: None,
        seen: HashMap::new(),
        terms: HashMap::new(),
        slice: Vec::new(),
        errors: Vec::new(),
        error_count: 0,
        summary: ImportSummary::default(),
    };
    table::read_rows(file, format, &mut |row| state.row(conn, row))?;
    state.flush(conn)?;
    if state.header.is_none() || state.summary.rows == 0 {
        return Err(ApiError::invalid("file", Msg::NoRows));
    }
    if state.error_count > 0 {
        let mut errors = state.errors;
        if state.error_count > errors.len() {
            errors.push(FieldError::new("file", Msg::MoreErrors(state.error_count - errors.len())));
        }
        return Err(ApiError::Validation { code: ErrorCode::ValidationFailed, errors });
    }
    Ok(state.summary)
}

/// 批量导入计划用水户 — Import planned-water users and their plans for a year from a CSV file (`text/csv`, UTF-8
/// with or without BOM, or GBK) or an Excel workbook (`.xlsx`, first sheet), with the columns of the template:
/// `credit_code, name, category, supply, base_price_yuan_per_m3, year, annual_m3` (and optionally
/// `region_code`; Chinese column names and category names are accepted too). All rows or none: a bad file is 400
/// with `errors: [{line, field, message}]` for every bad row (the header is line 1). Importing the same file again
/// creates nothing.
#[utoipa::path(tag = "planned-use",
    request_body(description = "The file: CSV or .xlsx (≤ 20 MiB)", content(
        (String = "text/csv", example = "credit_code,name,category,supply,base_price_yuan_per_m3,year,annual_m3\r\n91520381MA6DKQ1X2R,赤水市天岛湖酒店有限公司,non_residential,public_network,3.45,2026,120000\r\n"),
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
    security(("bearer" = ["water_saving"])),
    responses((status = 200, description = "Imported", body = ImportSummary),
        (status = 400, description = "Bad rows, each with its line, column and message (`validation_failed`); nothing was written", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A record changed during the import (`conflict`): import again", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 20 MiB", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither CSV nor .xlsx", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/planned-users/import")]
async fn import(
    state: web::Data<AppState>,
    caller: Authorized<PlannedUseWrite>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let declared = TableFormat::of(&req)?;
    let mut file = table::spool(&req, &mut payload, MAX_FILE).await?;
    let format = match declared {
        Some(f) => f,
        None => TableFormat::sniff(&mut file).map_err(|e| ApiError::internal(format!("reading an upload: {e}")))?,
    };
    // A retry with the same Idempotency-Key and the same file answers the stored outcome.
    let sum = table::sha256(&mut file).map_err(|e| ApiError::internal(format!("reading an upload: {e}")))?;
    let digest = idempotency::upload_digest(&req, &[&sum, if format == TableFormat::Csv { "csv" } else { "xlsx" }]);
    if let Some(stored) = idempotency::claim_deferred(&state.db, digest, caller.now.at).await? {
        return Ok(stored);
    }
    let ctx = caller.ctx();
    state
        .write(move |conn| {
            let summary = run(conn, &ctx, file, format)?;
            audit::record(conn, &ctx, Event::new("planned_users_imported").after(&summary))?;
            Ok(Reply::json(StatusCode::OK, None, &summary))
        })
        .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateQuery {
    /// `csv` (default) or `xlsx`.
    #[param(inline)]
    pub format: Option<TemplateFormat>,
}

crate::text_enum! {
    /// 模板格式.
    pub enum TemplateFormat {
        Csv = ("csv", "CSV 文件"),
        Xlsx = ("xlsx", "Excel 工作簿"),
    }
}

/// 下载导入模板 — The empty import file: the header row (CSV, UTF-8 with BOM so that Excel opens it as it is), or a
/// workbook with the header, drop-down lists for category and supply, the credit-code column kept as text, and a
/// sheet explaining each column.
#[utoipa::path(tag = "planned-use", params(TemplateQuery),
    security(("bearer" = ["admin", "leader", "water_resources", "water_saving", "finance", "enforcement", "platform", "auditor"])),
    responses((status = 200, description = "The template", content((String = "text/csv"),
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, description = "Unknown format (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/planned-users/import-template")]
async fn template(_caller: Authorized<PlannedUseRead>, query: Query<TemplateQuery>) -> ApiResult<HttpResponse> {
    let (bytes, content_type, name) = match query.0.format.unwrap_or(TemplateFormat::Csv) {
        TemplateFormat::Csv => {
            let header: Vec<&str> = COLUMNS[..REQUIRED].iter().map(|(en, _)| *en).collect();
            (
                format!("\u{feff}{}\r\n", header.join(",")).into_bytes(),
                "text/csv; charset=utf-8",
                "计划用水户导入模板.csv",
            )
        }
        TemplateFormat::Xlsx => (
            workbook().map_err(|e| ApiError::internal(format!("template: {e}")))?,
            table::XLSX,
            "计划用水户导入模板.xlsx",
        ),
    };
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![
            DispositionParam::Filename(
                if content_type == table::XLSX { "planned-users.xlsx" } else { "planned-users.csv" }.into(),
            ),
            DispositionParam::FilenameExt(header::ExtendedValue {
                charset: header::Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: name.as_bytes().to_vec(),
            }),
        ],
    };
    Ok(HttpResponse::Ok().content_type(content_type).insert_header(disposition).body(bytes))
}

/// The template workbook.
fn workbook() -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{DataValidation, Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let text = Format::new().set_num_format("@");
    let sheet = book.add_worksheet().set_name("计划用水户")?;
    for (i, (en, _)) in COLUMNS[..REQUIRED].iter().enumerate() {
        let col = i as u16;
        sheet.write_string_with_format(0, col, *en, &bold)?;
        sheet.set_column_width(col, if i == 1 { 36 } else { 22 })?;
    }
    // Credit codes of all digits must not turn into numbers (Excel keeps 15 digits of a number).
    sheet.set_column_format(0, &text)?;
    sheet.set_freeze_panes(1, 0)?;
    let list = |values: Vec<&str>| DataValidation::new().allow_list_strings(&values);
    sheet.add_data_validation(1, 2, 100_000, 2, &list(Category::ALL.iter().map(|c| c.as_str()).collect())?)?;
    sheet.add_data_validation(1, 3, 100_000, 3, &list(Supply::ALL.iter().map(|s| s.as_str()).collect())?)?;

    let help = book.add_worksheet().set_name("填写说明")?;
    help.set_column_width(0, 26)?;
    help.set_column_width(1, 16)?;
    help.set_column_width(2, 90)?;
    for (col, title) in ["列名", "中文名称", "填写要求"].iter().enumerate() {
        help.write_string_with_format(0, col as u16, *title, &bold)?;
    }
    let enums =
        |pairs: Vec<(&str, &str)>| pairs.iter().map(|(c, z)| format!("{c}（{z}）")).collect::<Vec<_>>().join("、");
    let rules = [
        "18 位统一社会信用代码（GB 32100），必填；同一单位以此识别，已登记的单位不会重复登记".to_string(),
        "单位名称，必填，至多 200 字".to_string(),
        format!("必填，填代码或中文：{}", enums(Category::ALL.iter().map(|c| (c.as_str(), c.label_zh())).collect())),
        format!("必填，填代码或中文：{}", enums(Supply::ALL.iter().map(|s| (s.as_str(), s.label_zh())).collect())),
        "元/立方米，至多 4 位小数，可空（空则按类别基本水价）".to_string(),
        "计划年度，如 2026".to_string(),
        "年计划用水量（立方米，整数）；按月平均分解，余数计入 12 月".to_string(),
        "可选列：6 位行政区划代码；不填则取信用代码第 3–8 位".to_string(),
    ];
    for (row, ((en, zh), rule)) in COLUMNS.iter().zip(rules.iter()).enumerate() {
        let r = row as u32 + 1;
        help.write_string(r, 0, *en)?;
        help.write_string(r, 1, *zh)?;
        help.write_string(r, 2, rule)?;
    }
    help.write_string(
        10,
        0,
        "第一张工作表的第 1 行为列名，数据从第 2 行起；有任何一行出错则整批不导入，并逐行列出错误。",
    )?;
    book.save_to_buffer()
}
