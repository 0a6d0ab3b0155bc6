//! Logging: JSON records under Lambda (one line each, CloudWatch Logs Insights can query
//! every field), human-readable text elsewhere.

use crate::config::LogConfig;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber as [`LogConfig`] says (see [`crate::config`]).
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = config.json;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time()
            .try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}
