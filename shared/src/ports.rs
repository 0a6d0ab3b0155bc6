//! The small traits the handlers are generic over. Adapters in [`crate::adapters`]
//! implement them with the AWS SDK; tests implement them with plain data.

use crate::appspec::LambdaTarget;
use crate::checks::{FunctionSnapshot, InvokeOutcome};
use crate::decision::{Decision, Verdict};
use crate::error::Result;
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
