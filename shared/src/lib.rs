//! rollgate: the domain logic and AWS adapters shared by every rollgate Lambda function.
//!
//! Decisions are pure functions over plain data ([`appspec`], [`policy`], [`checks`],
//! [`decision`]); AWS calls live behind the small traits of [`ports`], implemented by one
//! adapter module per service in [`adapters`]; [`hook`] is the CodeDeploy lifecycle-hook
//! frame (report exactly once, fail closed, explain); the function crates glue them.

pub mod adapters;
pub mod appspec;
pub mod chat;
pub mod clock;
pub mod config;
pub mod decision;
pub mod dora;
pub mod error;
pub mod failure;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod hook;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod policy;
pub mod ports;
pub mod post_traffic;
pub mod pre_traffic;
pub mod redrive;
pub mod report;
pub mod report_page;
pub mod rollback;
pub mod rollout;
pub mod scope;

pub use error::{Error, Result};

/// What every function's `main` does first, once its configuration is read: install the
/// log subscriber, set the metrics namespace, and load the AWS SDK's configuration.
pub async fn init(common: &config::Common) -> adapters::Aws {
    logging::init(&common.log);
    metrics::set_namespace(&common.metrics_namespace);
    adapters::Aws::load(common.aws_max_attempts, common.ca_bundle.as_deref()).await
}
