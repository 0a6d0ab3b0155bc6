//! The library's error type. Every variant's message names what was wrong (the field,
//! the resource, the AWS operation) so that a failed gate explains itself.

use crate::appspec::AppSpecError;
use crate::policy::PolicyError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The invocation event is malformed; the message names the field.
    #[error("invalid event: {0}")]
    InvalidEvent(String),

    #[error("invalid AppSpec: {0}")]
    AppSpec(#[from] AppSpecError),

    #[error("invalid policy {source_name}: {error}")]
    Policy {
        source_name: String,
        #[source]
        error: PolicyError,
    },

    #[error("deployment {0} does not exist")]
    DeploymentNotFound(String),

    #[error("deployment {id} is not a Lambda deployment (compute platform {platform})")]
    NotLambda { id: String, platform: String },

    #[error("deployment {id} has no AppSpec revision: {detail}")]
    NoRevision { id: String, detail: String },

    #[error("function {0} does not exist")]
    FunctionNotFound(String),

    /// An AWS call failed. `retryable` is true for throttling and 5xx answers.
    #[error("{service}.{operation} failed: {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        code: Option<String>,
        message: String,
        retryable: bool,
    },

    /// The function's own configuration (environment) is wrong.
    #[error("configuration: {0}")]
    Config(String),
}

/// Error codes that AWS documents as throttling or transient.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServiceException",
    "InternalFailure",
    "InternalServerError",
    "EC2ThrottledException",
    "ResourceNotReadyException",
    "SlowDown",
];

impl Error {
    /// Convert an SDK error, keeping the error code and whether a retry can help.
    pub fn aws<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_owned);
        let status = match &err {
            SdkError::ServiceError(se) => Some(se.raw().status().as_u16()),
            _ => None,
        };
        let retryable = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ResponseError(_) => true,
            SdkError::ServiceError(_) => {
                code.as_deref()
                    .is_some_and(|c| TRANSIENT_CODES.contains(&c))
                    || status.is_some_and(|s| s == 429 || s >= 500)
            }
            _ => false,
        };
        let message = match (err.code(), err.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_owned(),
            _ => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        };
        Error::Aws {
            service,
            operation,
            code,
            message,
            retryable,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Aws {
                retryable: true,
                ..
            }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
