//! Logging: JSON records under Lambda (one line each, CloudWatch Logs Insights can query
//! every field), human-readable text elsewhere.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `ROLLGATE_LOG_FORMAT=json|text` overrides the choice;
/// `RUST_LOG` (or Lambda's `AWS_LAMBDA_LOG_LEVEL`) sets the level, default `info`.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .map(|l| l.to_lowercase())
        })
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("ROLLGATE_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some(),
    };
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
