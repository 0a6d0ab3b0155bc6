//! The one place where SDK clients are built.
//!
//! `aws_config` reads region, credentials and `AWS_ENDPOINT_URL` (the local emulator)
//! from the environment. Retries and timeouts are set here once for every client.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// Environment variable that caps SDK attempts per call (tests against the emulator use
/// 1, because unimplemented operations answer 500 and must not be retried).
pub const MAX_ATTEMPTS_ENV: &str = "ROLLGATE_AWS_MAX_ATTEMPTS";

/// Shared SDK configuration; cheap to clone, build clients from it on demand.
#[derive(Clone, Debug)]
pub struct Aws {
    config: SdkConfig,
}

impl Aws {
    /// Load the configuration from the environment (Lambda's role, region, endpoint).
    pub async fn from_env() -> Self {
        let attempts = std::env::var(MAX_ATTEMPTS_ENV)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| (1..=10).contains(n))
            .unwrap_or(3);
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .build(),
            )
            .load()
            .await;
        Self { config }
    }

    pub fn from_config(config: SdkConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &SdkConfig {
        &self.config
    }

    pub fn codedeploy(&self) -> aws_sdk_codedeploy::Client {
        aws_sdk_codedeploy::Client::new(&self.config)
    }

    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.config)
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.config)
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }

    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.config)
    }
}
