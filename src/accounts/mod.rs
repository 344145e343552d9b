//! Departments, staff accounts and service accounts (API.md §3). Queries here; HTTP in `routes`.

pub mod routes;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, AuditCtx, EntityType, Event};
use crate::auth::Role;
use crate::db::schema::{accounts, departments, service_accounts};
use crate::db::{is_unique_violation, DbConn};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = departments, treat_none_as_default_value = false)]
pub struct Department {
    pub id: String,
    /// Short code, e.g. `office`, `water_resources_section`.
    pub code: String,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = accounts, treat_none_as_default_value = false)]
pub struct AccountRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub department: String,
    pub roles: String,
    pub password_hash: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// A staff account as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub display_name: String,
    /// Department code.
    pub department: String,
    pub roles: Vec<Role>,
    pub active: bool,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl From<&AccountRow> for Account {
    fn from(r: &AccountRow) -> Self {
        Self {
            id: r.id.clone(),
            username: r.username.clone(),
            display_name: r.display_name.clone(),
            department: r.department.clone(),
            roles: Role::split(&r.roles),
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_accounts, treat_none_as_default_value = false)]
pub struct ServiceAccountRow {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub secret_hash: String,
    pub department: String,
    pub roles: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// A service account as listed (without its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub department: String,
    pub roles: Vec<Role>,
    pub active: bool,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::instant")]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl From<&ServiceAccountRow> for ServiceAccount {
    fn from(r: &ServiceAccountRow) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            client_id: r.client_id.clone(),
            department: r.department.clone(),
            roles: Role::split(&r.roles),
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

pub fn find_account(conn: &mut DbConn, id: &str) -> QueryResult<Option<AccountRow>> {
    accounts::table.find(id).select(AccountRow::as_select()).first(conn).optional()
}

pub fn find_account_by_username(conn: &mut DbConn, username: &str) -> QueryResult<Option<AccountRow>> {
    accounts::table.filter(accounts::username.eq(username)).select(AccountRow::as_select()).first(conn).optional()
}

pub fn find_service_account(conn: &mut DbConn, id: &str) -> QueryResult<Option<ServiceAccountRow>> {
    service_accounts::table.find(id).select(ServiceAccountRow::as_select()).first(conn).optional()
}

pub fn find_service_account_by_client_id(conn: &mut DbConn, client_id: &str) -> QueryResult<Option<ServiceAccountRow>> {
    service_accounts::table
        .filter(service_accounts::client_id.eq(client_id))
        .select(ServiceAccountRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_department_by_code(conn: &mut DbConn, code: &str) -> QueryResult<Option<Department>> {
    departments::table.filter(departments::code.eq(code)).select(Department::as_select()).first(conn).optional()
}

/// Fails with a field error unless the department exists.
pub fn require_department(conn: &mut DbConn, code: &str) -> ApiResult<()> {
    match find_department_by_code(conn, code)? {
        Some(_) => Ok(()),
        None => Err(ApiError::invalid("department", format!("no department with code {code:?}"))),
    }
}

pub fn insert_department(conn: &mut DbConn, ctx: &AuditCtx, code: &str, name: &str) -> ApiResult<Department> {
    let now = crate::db::now();
    let d = Department {
        id: crate::domain::new_id(),
        code: code.into(),
        name: name.into(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    diesel::insert_into(departments::table).values(&d).execute(conn).map_err(|e| {
        if is_unique_violation(&e) {
            ApiError::conflict("conflict", format!("a department with code {code:?} exists"))
        } else {
            e.into()
        }
    })?;
    audit::record(conn, ctx, Event::new("department_created").entity(EntityType::Department, &d.id).after(&d))?;
    Ok(d)
}

pub fn insert_account(
    conn: &mut DbConn,
    ctx: &AuditCtx,
    username: &str,
    display_name: &str,
    department: &str,
    roles: &[Role],
    password_hash: &str,
) -> ApiResult<AccountRow> {
    let now = crate::db::now();
    let row = AccountRow {
        id: crate::domain::new_id(),
        username: username.into(),
        display_name: display_name.into(),
        department: department.into(),
        roles: Role::join(roles),
        password_hash: password_hash.into(),
        active: true,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    diesel::insert_into(accounts::table).values(&row).execute(conn).map_err(|e| {
        if is_unique_violation(&e) {
            ApiError::conflict("conflict", format!("the username {username:?} is taken"))
        } else {
            e.into()
        }
    })?;
    audit::record(
        conn,
        ctx,
        Event::new("account_created").entity(EntityType::Account, &row.id).after(&Account::from(&row)),
    )?;
    Ok(row)
}
