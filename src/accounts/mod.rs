//! Departments, staff accounts and service accounts (docs/api.md). Queries here; HTTP in `routes`.

pub mod routes;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{AuditCtx, EntityType};
use crate::clock::Now;
use crate::db::schema::{accounts, departments, service_accounts};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::identity::Role;
use crate::messages::Msg;
use crate::write::{self, Entity, Record};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = departments, treat_none_as_default_value = false, treat_none_as_null = true)]
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

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = accounts, treat_none_as_default_value = false, treat_none_as_null = true)]
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
    /// Bumped when the account's sessions must end (see `security::revocation`).
    pub token_epoch: i64,
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

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = service_accounts, treat_none_as_default_value = false, treat_none_as_null = true)]
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
    /// Bumped when the secret is rotated: tokens granted before stop working.
    pub token_epoch: i64,
    /// Requests a minute; `None`: the service's default (`SHUIWU_SERVICE_RATE_LIMIT`).
    pub rate_limit_per_minute: Option<i32>,
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
    /// Requests a minute this account may make; null: the service's default
    /// (`SHUIWU_SERVICE_RATE_LIMIT`, 600). Bursts of a tenth of it (at least 10) may come at once.
    pub rate_limit_per_minute: Option<i32>,
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
            rate_limit_per_minute: r.rate_limit_per_minute,
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
        None => Err(ApiError::invalid("department", Msg::NoSuchDepartment(code.to_string()))),
    }
}

/// The first account of a new database.
pub const BOOTSTRAP_USERNAME: &str = "admin";

/// Where a generated first password is written (mode 0600); removed once that password is changed.
pub fn initial_password_file(settings: &crate::config::Settings) -> std::path::PathBuf {
    settings.data_dir().join("initial-admin-password")
}

crate::versioned_row!(Department, departments);
crate::versioned_row!(AccountRow, accounts);
crate::versioned_row!(ServiceAccountRow, service_accounts);

impl Entity for Department {
    const ENTITY: EntityType = EntityType::Department;
    fn duplicate() -> ApiError {
        ApiError::conflict(ErrorCode::Conflict, Msg::DuplicateDepartment)
    }
}

impl Record for Department {
    type View = Department;

    fn view(&self, _: &mut DbConn, _: &Now) -> QueryResult<Department> {
        Ok(self.clone())
    }
}

impl Entity for AccountRow {
    const ENTITY: EntityType = EntityType::Account;
    fn duplicate() -> ApiError {
        ApiError::conflict(ErrorCode::Conflict, Msg::DuplicateUsername)
    }
}

impl Record for AccountRow {
    type View = Account;

    fn view(&self, _: &mut DbConn, _: &Now) -> QueryResult<Account> {
        Ok(Account::from(self))
    }
}

impl Entity for ServiceAccountRow {
    const ENTITY: EntityType = EntityType::ServiceAccount;
}

impl Record for ServiceAccountRow {
    type View = ServiceAccount;

    fn view(&self, _: &mut DbConn, _: &Now) -> QueryResult<ServiceAccount> {
        Ok(ServiceAccount::from(self))
    }
}

pub fn insert_department(conn: &mut DbConn, ctx: &AuditCtx, code: &str, name: &str) -> ApiResult<Department> {
    let d = Department {
        id: crate::domain::new_id(),
        code: code.into(),
        name: name.into(),
        created_at: ctx.now.at,
        updated_at: ctx.now.at,
        version: 1,
    };
    write::create(conn, ctx, &d, "department_created")
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
    let row = AccountRow {
        id: crate::domain::new_id(),
        username: username.into(),
        display_name: display_name.into(),
        department: department.into(),
        roles: Role::join(roles),
        password_hash: password_hash.into(),
        active: true,
        created_at: ctx.now.at,
        updated_at: ctx.now.at,
        version: 1,
        token_epoch: 0,
    };
    write::create(conn, ctx, &row, "account_created")?;
    Ok(row)
}
