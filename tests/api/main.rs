//! Black-box API tests: the real service on a random port, over HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod accounts;
mod audit;
mod auth;
mod backup;
mod calendar;
mod cases;
mod cli;
mod errors;
mod evidence;
mod exports;
mod feed;
mod fees;
mod imports;
mod inspections;
mod instances;
mod integrity;
mod keys;
mod machinery;
mod metrics;
mod openapi;
mod permits;
mod planned_use;
mod rate_limits;
mod readable;
mod reports;
mod roles;
mod security;
mod settlements;
mod upgrade;
mod water_users;
