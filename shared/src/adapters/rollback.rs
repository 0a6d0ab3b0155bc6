//! The alarm-rollback function's actions on CodeDeploy and Lambda, and its SNS
//! announcements (the decision record plus `action`/`alias`/`alarm` attributes).

use crate::adapters::{CodeDeploy, sns};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::ports::Deployments;
use crate::rollback::decide::AliasState;
use crate::rollback::ledger::DeploymentKind;
use crate::rollback::ports::{Announcer, ReleaseMeta, Releases, StopOutcome, UpdateOutcome};
use crate::rollback::targets::TAG_GROUP;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::get_alias::GetAliasError;
use aws_sdk_lambda::operation::get_function::GetFunctionError;
use aws_sdk_lambda::operation::update_alias::UpdateAliasError;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct AwsReleases {
    codedeploy: CodeDeploy,
    lambda: aws_sdk_lambda::Client,
}

impl AwsReleases {
    pub fn new(codedeploy: CodeDeploy, lambda: aws_sdk_lambda::Client) -> Self {
        Self { codedeploy, lambda }
    }
}

impl Releases for AwsReleases {
    async fn release(&self, deployment_id: &str) -> Result<ReleaseMeta> {
        let info = self.codedeploy.lambda_deployment(deployment_id).await?;
        // lambda_deployment reads the AppSpec; the times and the creator are read here.
        let t = self.codedeploy.timeline(deployment_id).await?;
        Ok(ReleaseMeta {
            info,
            kind: if t.rollback {
                DeploymentKind::Rollback
            } else {
                DeploymentKind::Release
            },
            created_ms: t.created_ms.or(t.started_ms).unwrap_or_default(),
            started_ms: t.started_ms,
            ended_ms: t.ended_ms,
        })
    }

    async fn stop(&self, deployment_id: &str) -> Result<StopOutcome> {
        self.codedeploy.stop(deployment_id).await
    }

    async fn alias(&self, function: &str, alias: &str) -> Result<Option<AliasState>> {
        match self
            .lambda
            .get_alias()
            .function_name(function)
            .name(alias)
            .send()
            .await
        {
            Ok(out) => Ok(Some(AliasState {
                version: out.function_version().unwrap_or_default().to_owned(),
                weights: out
                    .routing_config()
                    .and_then(|r| r.additional_version_weights())
                    .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
                    .unwrap_or_default(),
                revision_id: out.revision_id().unwrap_or_default().to_owned(),
            })),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), GetAliasError::ResourceNotFoundException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("lambda", "GetAlias", e)),
        }
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        revision_id: &str,
    ) -> Result<UpdateOutcome> {
        match self
            .lambda
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .routing_config(
                AliasRoutingConfiguration::builder()
                    .set_additional_version_weights(Some(HashMap::new()))
                    .build(),
            )
            .revision_id(revision_id)
            .send()
            .await
        {
            Ok(out) => Ok(UpdateOutcome::Updated {
                revision_id: out.revision_id().unwrap_or_default().to_owned(),
            }),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), UpdateAliasError::PreconditionFailedException(_)) =>
            {
                Ok(UpdateOutcome::Stale)
            }
            Err(e) => Err(Error::aws("lambda", "UpdateAlias", e)),
        }
    }

    async fn function_group(&self, function: &str) -> Result<Option<String>> {
        match self
            .lambda
            .get_function()
            .function_name(function)
            .send()
            .await
        {
            // Without lambda:ListTags, GetFunction answers without tags and says why in
            // TagsError: that is not "no group", and the caller must hear it.
            Ok(out) if out.tags().is_none() && out.tags_error().is_some() => {
                let e = out.tags_error().expect("checked");
                Err(Error::Aws {
                    service: "lambda",
                    operation: "GetFunction",
                    code: Some(e.error_code().to_owned()),
                    message: format!(
                        "the function's tags were not returned ({}: {}); the role needs lambda:ListTags",
                        e.error_code(),
                        e.message()
                    ),
                    retryable: false,
                })
            }
            Ok(out) => Ok(out
                .tags()
                .and_then(|t| t.get(TAG_GROUP))
                .filter(|g| !g.trim().is_empty())
                .cloned()),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), GetFunctionError::ResourceNotFoundException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("lambda", "GetFunction", e)),
        }
    }
}

/// Publishes alarm-rollback decisions; with no topic it only logs.
#[derive(Clone, Debug)]
pub struct RollbackAnnouncer {
    client: aws_sdk_sns::Client,
    topic_arn: Option<String>,
}

impl RollbackAnnouncer {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: Option<String>) -> Self {
        Self { client, topic_arn }
    }
}

/// `rollgate alarm-rollback: rollback orders:live` (printable ASCII, under 100 characters).
pub fn subject(decision: &Decision, action: &str) -> String {
    let what = match (&decision.function_name, &decision.alias) {
        (Some(f), Some(a)) => format!("{f}:{a}"),
        (Some(f), None) => f.clone(),
        _ => "no function".into(),
    };
    crate::limits::subject(&format!("rollgate {}: {action} {what}", decision.component))
}

impl Announcer for RollbackAnnouncer {
    async fn announce(&self, decision: &Decision, attributes: &[(&str, String)]) -> Result<()> {
        let Some(topic) = &self.topic_arn else {
            tracing::warn!("ROLLGATE_TOPIC_ARN is not set: decision not published on SNS");
            return Ok(());
        };
        let action = attributes
            .iter()
            .find(|(k, _)| *k == "action")
            .map(|(_, v)| v.as_str())
            .unwrap_or("none");
        let mut req = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(subject(decision, action))
            .message(sns::body(decision))
            .message_attributes("component", sns::attribute(&decision.component))
            .message_attributes("verdict", sns::attribute(decision.verdict.as_str()));
        if let Some(f) = decision.function_name.as_deref().filter(|f| !f.is_empty()) {
            req = req.message_attributes("function", sns::attribute(f));
        }
        if let Some(d) = decision.deployment_id.as_deref().filter(|d| !d.is_empty()) {
            req = req.message_attributes("deployment", sns::attribute(d));
        }
        for (k, v) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
            req = req.message_attributes(*k, sns::attribute(v));
        }
        req.send()
            .await
            .map_err(|e| Error::aws("sns", "Publish", e))?;
        Ok(())
    }
}
