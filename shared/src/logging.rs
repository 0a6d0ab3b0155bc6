//! Logging: JSON records under Lambda (one line each, CloudWatch Logs Insights can query
//! every field), human-readable text elsewhere.

use crate::config::LogConfig;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

/// Install the global subscriber as [`LogConfig`] says (see [`crate::config`]). The filter
/// takes `RUST_LOG`'s level and `target=level` directives (`info,rollgate=debug`); one it
/// cannot read logs at `info`.
pub fn init(config: &LogConfig) {
    let filter = config
        .filter
        .parse::<Targets>()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    // The builder's own cap lets everything through: the targets decide.
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_target(false);
    let _ = if config.json {
        let fmt = builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time()
            .finish();
        tracing::subscriber::set_global_default(fmt.with(filter))
    } else {
        tracing::subscriber::set_global_default(builder.with_ansi(false).finish().with(filter))
    };
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::filter::Targets;

    #[test]
    fn the_filter_reads_a_level_and_target_directives() {
        let t: Targets = "info,rollgate=debug".parse().unwrap();
        assert!(t.would_enable("rollgate::rollback", &tracing::Level::DEBUG));
        assert!(!t.would_enable("aws_smithy_runtime", &tracing::Level::DEBUG));
        assert!(t.would_enable("aws_smithy_runtime", &tracing::Level::INFO));
        assert!("[span{field=1}]=debug".parse::<Targets>().is_err());
    }
}
