//! HTTP machinery shared by every resource: request ids and problem bodies, JSON and query extraction,
//! pagination, ETags, idempotency, and the 404/405 fallback.

pub mod etag;
pub mod fallback;
pub mod idempotency;
pub mod json;
pub mod pagination;
pub mod request_id;

pub use etag::{created, respond, IfMatch};
pub use json::{ApiJson, OptionalJson};
pub use pagination::{Page, PageQuery};
pub use request_id::RequestId;
