//! `/api/v1/audit-events`: reading and verifying the audit trail (the trail itself is `crate::audit`).

pub mod routes;
