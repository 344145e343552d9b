#![recursion_limit = "256"]
//! shuiwu (水务): the back-end service of a county water affairs bureau.
//!
//! Layers, each using only those above it in this list:
//! - leaves: `error`, `clock`, `config`, `identity`, `domain`;
//! - `db` (connections, transactions, schema), `http` (request ids, JSON and queries, pagination, ETags);
//! - `audit` (the trail and the feed), `security` (tokens, passwords, the extractors), `write` (the shared write
//!   path: row locks, If-Match, audit, idempotency), `state` (what handlers reach);
//! - one folder per feature (`auth`, `accounts`, `water_users`, `water_zones`, `permits`, `withdrawals`,
//!   `fees`, `planned_use`, `inspections`, `cases`, `audit_events`, `changes`, `exports`, `reports`), each with its routes, rules and queries;
//! - `startup`, which wires every route, and `cli`, the binary's commands.

pub mod accounts;
pub mod audit;
pub mod audit_events;
pub mod auth;
pub mod backup;
pub mod calendar;
pub mod cases;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod documents;
pub mod domain;
pub mod error;
pub mod evidence;
pub mod exports;
pub mod fees;
pub mod health;
pub mod http;
pub mod identity;
pub mod inspections;
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod permits;
pub mod planned_use;
pub mod reports;
pub mod security;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod water_users;
pub mod water_zones;
pub mod withdrawals;
pub mod write;
