//! The post-traffic bake's continuation on AWS: the deployment's start from CodeDeploy,
//! and the next run as an asynchronous invoke of the same function.

use crate::adapters::{CodeDeploy, Lambda};
use crate::error::{Error, Result};
use crate::post_traffic::Continuation;
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
