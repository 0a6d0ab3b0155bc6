//! The post-traffic bake's continuation on AWS: the deployment's start from CodeDeploy,
//! and the next run as an asynchronous invoke of the same function.

use crate::adapters::{CodeDeploy, Lambda};
use crate::error::{Error, Result};
use crate::post_traffic::{Continuation, Ports};
use crate::redrive::ports::EventInvoker;
use serde_json::Value;

pub struct SelfInvoke<'a> {
    pub deployments: &'a CodeDeploy,
    pub lambda: &'a Lambda,
    /// The function (name or ARN, with its qualifier) the next run goes to.
    pub function: String,
}

impl Continuation for SelfInvoke<'_> {
    async fn deployment_started_ms(&self, deployment_id: &str) -> Result<i64> {
        let t = self.deployments.timeline(deployment_id).await?;
        t.created_ms
            .or(t.started_ms)
            .ok_or_else(|| Error::DeploymentNotFound(deployment_id.to_owned()))
    }

    async fn continue_later(&self, payload: Value) -> Result<()> {
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        self.lambda.invoke_event(&self.function, None, body).await?;
        tracing::info!(function = %self.function, "bake handed to a new invocation");
        Ok(())
    }
}

/// What the post-traffic gate reads and calls besides the hook frame: CloudWatch, the
/// probes' HTTP client, Lambda (for the continuation) and the ledger (the traffic shift's
/// judgements; absent without `ROLLGATE_LEDGER_TABLE`).
pub struct BakeClients {
    pub metrics: crate::adapters::CloudWatch,
    pub http: crate::adapters::http::Http,
    pub lambda: Lambda,
    pub ledger: Option<crate::adapters::DynamoLedger>,
}

impl BakeClients {
    pub fn new(aws: &crate::adapters::aws::Aws, ledger_table: Option<String>) -> Self {
        BakeClients {
            metrics: crate::adapters::CloudWatch::new(aws.cloudwatch()),
            http: crate::adapters::http::Http::new(),
            lambda: Lambda::new(aws.lambda()),
            ledger: ledger_table.map(|t| crate::adapters::DynamoLedger::new(aws.dynamodb(), t)),
        }
    }

    /// The gate's ports, continuing through `continuation`.
    pub fn ports<'a>(
        &'a self,
        continuation: &'a SelfInvoke<'a>,
    ) -> Ports<
        'a,
        crate::adapters::CloudWatch,
        SelfInvoke<'a>,
        crate::adapters::http::Http,
        Option<crate::adapters::DynamoLedger>,
    > {
        Ports {
            metrics: &self.metrics,
            continuation,
            http: &self.http,
            shifts: &self.ledger,
        }
    }
}
