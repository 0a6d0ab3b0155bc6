//! How a failed invocation reads in Lambda: an `errorType` that names the failure class
//! (something a log filter, a metric filter or an alarm can match), and a message that
//! names what was wrong.
//!
//! Lambda's runtime would otherwise name the Rust type of the error
//! (`alloc::boxed::Box<dyn core::error::Error + ...>`), the same for every failure.

use crate::error::Error;
use std::fmt;

/// The classes of failure a rollgate function reports as `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The invocation event is malformed or of a kind this function does not take.
    InvalidEvent,
    /// A policy document could not be read.
    InvalidPolicy,
    /// The deployment's AppSpec could not be read.
    InvalidAppSpec,
    /// A redrive request is malformed; the message names the field.
    InvalidRequest,
    /// A deployment, revision or function it names does not exist (yet).
    NotFound,
    /// An AWS call failed (after the SDK's retries).
    AwsCallFailed,
    /// CodeDeploy did not take a hook's report: Lambda's retry reports again.
    ReportFailed,
    /// An action (stop, rollback) failed: Lambda's retry redoes only what failed.
    ActionFailed,
    /// The function's own configuration (environment) is wrong.
    Configuration,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::InvalidEvent => "InvalidEvent",
            Class::InvalidPolicy => "InvalidPolicy",
            Class::InvalidAppSpec => "InvalidAppSpec",
            Class::InvalidRequest => "InvalidRequest",
            Class::NotFound => "NotFound",
            Class::AwsCallFailed => "AwsCallFailed",
            Class::ReportFailed => "ReportFailed",
            Class::ActionFailed => "ActionFailed",
            Class::Configuration => "Configuration",
        }
    }
}

/// A failed invocation: its class and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: Class,
    pub message: String,
}

impl Failure {
    pub fn new(class: Class, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The class of each library error.
pub fn class_of(e: &Error) -> Class {
    match e {
        Error::InvalidEvent(_) | Error::NotLambda { .. } => Class::InvalidEvent,
        Error::AppSpec(_) => Class::InvalidAppSpec,
        Error::Policy { .. } => Class::InvalidPolicy,
        Error::DeploymentNotFound(_) | Error::NoRevision { .. } | Error::FunctionNotFound(_) => {
            Class::NotFound
        }
        Error::Aws { .. } => Class::AwsCallFailed,
        Error::Config(_) => Class::Configuration,
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::new(class_of(&e), e.to_string())
    }
}

impl From<Failure> for lambda_runtime::Diagnostic {
    fn from(f: Failure) -> Self {
        lambda_runtime::Diagnostic {
            error_type: f.class.as_str().to_owned(),
            error_message: f.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_a_named_class() {
        let d: lambda_runtime::Diagnostic =
            Failure::from(Error::InvalidEvent("field DeploymentId is missing".into())).into();
        assert_eq!(d.error_type, "InvalidEvent");
        assert_eq!(
            d.error_message,
            "invalid event: field DeploymentId is missing"
        );
        let aws = Error::Aws {
            service: "codedeploy",
            operation: "GetDeployment",
            code: Some("ThrottlingException".into()),
            message: "slow down".into(),
            retryable: true,
        };
        assert_eq!(Failure::from(aws).class.as_str(), "AwsCallFailed");
        assert_eq!(
            Failure::from(Error::Config("ROLLGATE_LEDGER_TABLE is not set".into()))
                .class
                .as_str(),
            "Configuration"
        );
        assert_eq!(
            Failure::from(Error::DeploymentNotFound("d-1".into())).class,
            Class::NotFound
        );
    }
}
