//! HTTP machinery shared by every resource: request ids and problem bodies, JSON and query extraction,
//! pagination, ETags, and the 404/405 fallback.

pub mod connection;
pub mod etag;
pub mod fallback;
pub mod json;
pub mod pagination;
pub mod query;
pub mod request_id;
pub mod table;

pub use etag::{respond, IfMatch};
pub use json::{ApiJson, OptionalJson};
pub use pagination::{Page, PageQuery};
pub use query::{ListQuery, NoFilter, PathId, Query};
pub use request_id::RequestId;
