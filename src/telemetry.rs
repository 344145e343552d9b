//! Logging: `tracing` with pretty or JSON output, level from `RUST_LOG` (default `info`).
//! Each request's span closes with one line: method, route, target, request id, status and duration.

use tracing_subscriber::fmt::{self, format::FmtSpan};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(true).with_span_events(FmtSpan::CLOSE))
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().compact().with_span_events(FmtSpan::CLOSE)).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
