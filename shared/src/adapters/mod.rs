//! One adapter per AWS service, each implementing a port from [`crate::ports`].

pub mod cloudwatch;
pub mod cloudwatch_alarms;
pub mod codedeploy;
pub mod dynamodb;
pub mod http;
pub mod lambda;
pub mod rollback;
pub mod sns;
pub mod sqs;
pub mod ssm;

pub use codedeploy::CodeDeploy;
pub use lambda::Lambda;
pub use sns::SnsNotifier;
pub use sqs::Sqs;
pub use ssm::SsmPolicies;
