//! shuiwu (水务): the back-end service of a county water affairs bureau.
//!
//! Layout: shared machinery (`db`, `error`, `http`, `auth`, `audit`, `openapi`, `startup`) and one folder per
//! business area (`water_users`, `accounts`, `changes`, …), each holding its routes, rules and queries.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod changes;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod health;
pub mod http;
pub mod openapi;
pub mod permits;
pub mod startup;
pub mod telemetry;
pub mod water_users;
pub mod water_zones;
pub mod withdrawals;
