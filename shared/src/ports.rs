//! The small traits the handlers are generic over. Adapters in [`crate::adapters`]
//! implement them with the AWS SDK; tests implement them with plain data.

use crate::appspec::LambdaTarget;
use crate::decision::{Decision, Verdict};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;

/// What a CodeDeploy deployment deploys, read from the deployment and its AppSpec.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentInfo {
    pub deployment_id: String,
    pub application: String,
    pub deployment_group: String,
    pub status: String,
    pub target: LambdaTarget,
}

/// How a hook's report ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    Accepted,
    /// CodeDeploy already had a status for this hook execution (reported before).
    AlreadyCompleted,
}

pub trait Deployments: Send + Sync {
    /// `GetDeployment` + `GetApplicationRevision` → the Lambda function and versions.
    fn lambda_deployment(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<DeploymentInfo>> + Send;

    /// `PutLifecycleEventHookExecutionStatus`.
    fn report_hook(
        &self,
        deployment_id: &str,
        execution_id: &str,
        verdict: Verdict,
    ) -> impl Future<Output = Result<ReportOutcome>> + Send;
}

/// What the hook read about the target version (`GetFunctionConfiguration` with the qualifier).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSnapshot {
    pub version: String,
    pub state: Option<String>,
    pub state_reason: Option<String>,
    pub last_update_status: Option<String>,
    pub last_update_status_reason: Option<String>,
    pub architectures: Vec<String>,
    /// `None` for container-image functions.
    pub runtime: Option<String>,
    pub memory_mb: Option<i32>,
    pub timeout_seconds: Option<i32>,
    /// Environment variable names only; values are never needed.
    pub env_keys: Vec<String>,
}

/// What invoking a smoke test's payload on the target version produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvokeOutcome {
    /// The `X-Amz-Function-Error` header (`Unhandled`, `Handled`), `None` on success.
    pub function_error: Option<String>,
    /// `errorType` from the error body, when there is one.
    pub error_type: Option<String>,
    /// The response body as returned by Lambda.
    pub payload: Vec<u8>,
    /// Wall time of the (last) invocation.
    pub duration_ms: u64,
    pub executed_version: Option<String>,
    /// Invocations made, retries included.
    pub attempts: u32,
}

pub trait Functions: Send + Sync {
    /// `GetFunctionConfiguration` of one published version.
    fn configuration(
        &self,
        function: &str,
        version: &str,
    ) -> impl Future<Output = Result<FunctionSnapshot>> + Send;

    /// Synchronous `Invoke` of one published version, one attempt, bounded by `timeout`.
    fn invoke(
        &self,
        function: &str,
        version: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> impl Future<Output = Result<InvokeOutcome>> + Send;
}

/// A stored policy document and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    pub source: String,
    pub text: String,
}

pub trait PolicyStore: Send + Sync {
    /// The function's policy document, or `None` when it has none (safe defaults apply).
    fn policy(&self, function: &str)
    -> impl Future<Output = Result<Option<PolicyDocument>>> + Send;
}

pub trait Notifier: Send + Sync {
    fn announce(&self, decision: &Decision) -> impl Future<Output = Result<()>> + Send;
}

/// Where the gates' decisions are kept for the people on call (`rollgate status`,
/// `history`, the report page of a deployment): the ledger, beside the releases.
pub trait DecisionLog: Send + Sync {
    /// Keep `decision`, made at `at_ms` (epoch milliseconds). `Ok(false)` when nothing
    /// was kept: no log is configured, or the decision names no function and alias (the
    /// deployment could not be read).
    fn keep(&self, decision: &Decision, at_ms: i64) -> impl Future<Output = Result<bool>> + Send;
}

/// `None`: decisions are not kept (no ledger table configured).
impl<T: DecisionLog> DecisionLog for Option<T> {
    async fn keep(&self, decision: &Decision, at_ms: i64) -> Result<bool> {
        match self {
            Some(log) => log.keep(decision, at_ms).await,
            None => Ok(false),
        }
    }
}
