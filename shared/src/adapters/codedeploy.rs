//! CodeDeploy: find what a deployment deploys, and report hook verdicts.

// The `String` revision type is deprecated but older pipelines still create it.
#![allow(deprecated)]

use crate::appspec;
use crate::decision::Verdict;
use crate::error::{Error, Result};
use crate::ports::{DeploymentInfo, Deployments, ReportOutcome};
use crate::rollback::ledger::DeploymentKind;
use crate::rollback::ports::{ReleaseMeta, StopOutcome};
use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::error::SdkError;
use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentError;
use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::PutLifecycleEventHookExecutionStatusError;
use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentError;
use aws_sdk_codedeploy::types::{
    AppSpecContent, ComputePlatform, LifecycleEventStatus, RawString, RevisionLocation,
    RevisionLocationType,
};

/// A deployment's times (epoch ms) and kind, from `GetDeployment`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeline {
    pub created_ms: Option<i64>,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// CodeDeploy created it to roll another deployment back.
    pub rollback: bool,
}

#[derive(Clone, Debug)]
pub struct CodeDeploy {
    client: Client,
}

impl CodeDeploy {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// `GetDeployment`, with "no such deployment" as [`Error::DeploymentNotFound`].
    async fn get(&self, deployment_id: &str) -> Result<aws_sdk_codedeploy::types::DeploymentInfo> {
        let out = self
            .client
            .get_deployment()
            .deployment_id(deployment_id)
            .send()
            .await
            .map_err(|e| match e {
                SdkError::ServiceError(ref se)
                    if matches!(
                        se.err(),
                        GetDeploymentError::DeploymentDoesNotExistException(_)
                            | GetDeploymentError::InvalidDeploymentIdException(_)
                    ) =>
                {
                    Error::DeploymentNotFound(deployment_id.to_owned())
                }
                e => Error::aws("codedeploy", "GetDeployment", e),
            })?;
        out.deployment_info
            .ok_or_else(|| Error::DeploymentNotFound(deployment_id.to_owned()))
    }

    /// When a deployment was created, started and ended, and whether CodeDeploy made it
    /// to roll another one back.
    pub async fn timeline(&self, deployment_id: &str) -> Result<Timeline> {
        let d = self.get(deployment_id).await?;
        let ms = |t: Option<&aws_sdk_codedeploy::primitives::DateTime>| {
            t.and_then(|t| t.to_millis().ok())
        };
        Ok(Timeline {
            created_ms: ms(d.create_time()),
            started_ms: ms(d.start_time()),
            ended_ms: ms(d.complete_time()),
            rollback: d
                .creator()
                .is_some_and(|c| c.as_str() == "codeDeployRollback")
                || d.rollback_info()
                    .and_then(|r| r.rollback_triggering_deployment_id())
                    .is_some(),
        })
    }

    /// `StopDeployment` with automatic rollback; a deployment that had already ended is
    /// [`StopOutcome::AlreadyCompleted`].
    pub async fn stop(&self, deployment_id: &str) -> Result<StopOutcome> {
        match self
            .client
            .stop_deployment()
            .deployment_id(deployment_id)
            .auto_rollback_enabled(true)
            .send()
            .await
        {
            Ok(_) => Ok(StopOutcome::Requested),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    StopDeploymentError::DeploymentAlreadyCompletedException(_)
                ) =>
            {
                Ok(StopOutcome::AlreadyCompleted)
            }
            Err(e) => Err(Error::aws("codedeploy", "StopDeployment", e)),
        }
    }

    /// The AppSpec text of a revision. `GetDeployment` never returns it, only its sha256:
    /// `GetApplicationRevision` with that hash does.
    async fn appspec_text(
        &self,
        deployment_id: &str,
        application: &str,
        revision: &RevisionLocation,
    ) -> Result<String> {
        let no_revision = |detail: &str| Error::NoRevision {
            id: deployment_id.to_owned(),
            detail: detail.to_owned(),
        };
        let lookup = match revision.revision_type() {
            Some(RevisionLocationType::AppSpecContent) => {
                let spec = revision
                    .app_spec_content()
                    .ok_or_else(|| no_revision("revision.appSpecContent is missing"))?;
                if let Some(content) = spec.content().filter(|c| !c.is_empty()) {
                    return Ok(content.to_owned());
                }
                let sha = spec
                    .sha256()
                    .ok_or_else(|| no_revision("revision.appSpecContent.sha256 is missing"))?;
                RevisionLocation::builder()
                    .revision_type(RevisionLocationType::AppSpecContent)
                    .app_spec_content(AppSpecContent::builder().sha256(sha).build())
                    .build()
            }
            Some(RevisionLocationType::String) => {
                let spec = revision
                    .string()
                    .ok_or_else(|| no_revision("revision.string is missing"))?;
                if let Some(content) = spec.content().filter(|c| !c.is_empty()) {
                    return Ok(content.to_owned());
                }
                let sha = spec
                    .sha256()
                    .ok_or_else(|| no_revision("revision.string.sha256 is missing"))?;
                RevisionLocation::builder()
                    .revision_type(RevisionLocationType::String)
                    .string(RawString::builder().sha256(sha).build())
                    .build()
            }
            other => {
                return Err(no_revision(&format!(
                    "revision type {} is not an inline AppSpec (Lambda deployments use AppSpecContent)",
                    other.map(|t| t.as_str()).unwrap_or("(none)")
                )));
            }
        };
        let out = self
            .client
            .get_application_revision()
            .application_name(application)
            .revision(lookup)
            .send()
            .await
            .map_err(|e| Error::aws("codedeploy", "GetApplicationRevision", e))?;
        let rev = out
            .revision()
            .ok_or_else(|| no_revision("GetApplicationRevision returned no revision"))?;
        rev.app_spec_content()
            .and_then(|c| c.content())
            .or_else(|| rev.string().and_then(|s| s.content()))
            .map(str::to_owned)
            .ok_or_else(|| no_revision("GetApplicationRevision returned no AppSpec content"))
    }

    /// A Lambda deployment as alarm-rollback records it: AppSpec versions, kind and times.
    pub async fn release_meta(&self, deployment_id: &str) -> Result<ReleaseMeta> {
        let info = self.lambda_deployment(deployment_id).await?;
        // lambda_deployment reads the AppSpec; the times and the creator are read here.
        let t = self.timeline(deployment_id).await?;
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
}

impl Deployments for CodeDeploy {
    async fn lambda_deployment(&self, deployment_id: &str) -> Result<DeploymentInfo> {
        let info = &self.get(deployment_id).await?;
        match info.compute_platform() {
            Some(ComputePlatform::Lambda) => {}
            other => {
                return Err(Error::NotLambda {
                    id: deployment_id.to_owned(),
                    platform: other
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_else(|| "unknown".into()),
                });
            }
        }
        let application = info.application_name().unwrap_or_default().to_owned();
        let revision = info.revision().ok_or_else(|| Error::NoRevision {
            id: deployment_id.to_owned(),
            detail: "GetDeployment returned no revision".into(),
        })?;
        let text = self
            .appspec_text(deployment_id, &application, revision)
            .await?;
        let target = appspec::parse(&text)?;
        Ok(DeploymentInfo {
            deployment_id: deployment_id.to_owned(),
            application,
            deployment_group: info.deployment_group_name().unwrap_or_default().to_owned(),
            status: info
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            target,
        })
    }

    async fn report_hook(
        &self,
        deployment_id: &str,
        execution_id: &str,
        verdict: Verdict,
    ) -> Result<ReportOutcome> {
        let status = match verdict {
            Verdict::Succeeded => LifecycleEventStatus::Succeeded,
            Verdict::Failed => LifecycleEventStatus::Failed,
        };
        match self
            .client
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(deployment_id)
            .lifecycle_event_hook_execution_id(execution_id)
            .status(status)
            .send()
            .await
        {
            Ok(_) => Ok(ReportOutcome::Accepted),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    PutLifecycleEventHookExecutionStatusError::LifecycleEventAlreadyCompletedException(_)
                ) =>
            {
                Ok(ReportOutcome::AlreadyCompleted)
            }
            Err(e) => Err(Error::aws("codedeploy", "PutLifecycleEventHookExecutionStatus", e)),
        }
    }
}

impl crate::rollout::ports::Shifts for CodeDeploy {
    async fn deployment(&self, deployment_id: &str) -> Result<crate::ports::DeploymentInfo> {
        self.lambda_deployment(deployment_id).await
    }

    async fn stop(&self, deployment_id: &str) -> Result<StopOutcome> {
        CodeDeploy::stop(self, deployment_id).await
    }
}
