//! The traits the alarm-rollback orchestration is generic over; adapters implement them
//! with DynamoDB, CloudWatch, CodeDeploy, Lambda and SNS, tests with plain data.

use super::decide::AliasState;
use super::ledger::{
    Claim, ClaimOutcome, DeploymentKind, DeploymentRecord, Freeze, History, ReleaseContext,
    RequestRow,
};
use crate::decision::Decision;
use crate::error::Result;
use crate::ports::DeploymentInfo;
use std::collections::BTreeMap;
use std::future::Future;

pub trait Ledger: Send + Sync {
    /// Newest deployments first with what was recorded beside them, and the quarantined
    /// versions, of one function and alias: one read, the alarm's critical path.
    fn history(&self, function: &str, alias: &str) -> impl Future<Output = Result<History>> + Send;

    /// The aliases rollgate has recorded deployments for.
    fn aliases(&self, function: &str) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// `(function, alias)` of every member of a group.
    fn group_members(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>>> + Send;

    /// Insert or update a deployment (a final status is never replaced by InProgress)
    /// with what was learnt beside it (a group or settings left out keep those recorded
    /// before), and index its alias and group.
    fn record_deployment(
        &self,
        record: &DeploymentRecord,
        context: &ReleaseContext,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Write the claim only if nobody did before.
    fn claim(&self, claim: &Claim) -> impl Future<Output = Result<ClaimOutcome>> + Send;

    /// Record how a won claim ended (`stopped`, `rolled_back`, `stale`, `failed: ...`).
    fn settle(&self, claim: &Claim, outcome: &str) -> impl Future<Output = Result<()>> + Send;

    /// Take a version out of service for good.
    fn quarantine(&self, claim: &Claim, reason: &str) -> impl Future<Output = Result<()>> + Send;

    /// Hold the alias's automatic rollbacks as `freeze` says (replacing an earlier
    /// freeze). `false`: the same request froze it already, nothing was written.
    fn freeze(
        &self,
        function: &str,
        alias: &str,
        freeze: &Freeze,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// End the alias's freeze now, if one holds at `now_ms`: the freeze lifted, or `None`.
    fn unfreeze(
        &self,
        function: &str,
        alias: &str,
        by: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<Freeze>>> + Send;

    /// Keep a manual request and what came of it.
    fn note_request(&self, row: &RequestRow) -> impl Future<Output = Result<()>> + Send;

    /// Every release of the function's aliases, with how it ended (for the delivery
    /// metrics; [`super::delivery::releases`]).
    fn releases(
        &self,
        function: &str,
    ) -> impl Future<Output = Result<Vec<crate::dora::Release>>> + Send;

    /// Every release of every function and alias of the ledger (the account's delivery
    /// metrics: one paginated read of the whole table).
    fn account_releases(&self) -> impl Future<Output = Result<Vec<crate::dora::Release>>> + Send;
}

pub trait AlarmTags: Send + Sync {
    /// `ListTagsForResource` of an alarm.
    fn tags(
        &self,
        alarm_arn: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>>> + Send;
}

/// A CodeDeploy deployment as the ledger records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseMeta {
    pub info: DeploymentInfo,
    pub kind: DeploymentKind,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    Requested,
    AlreadyCompleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated {
        revision_id: String,
    },
    /// `PreconditionFailedException`: the alias has another revision now.
    Stale,
}

pub trait Releases: Send + Sync {
    /// `GetDeployment` + AppSpec: function, alias, versions, times, and who created it.
    fn release(&self, deployment_id: &str) -> impl Future<Output = Result<ReleaseMeta>> + Send;

    /// `StopDeployment` with `autoRollbackEnabled = true`.
    fn stop(&self, deployment_id: &str) -> impl Future<Output = Result<StopOutcome>> + Send;

    /// `GetAlias`; `None` when it does not exist.
    fn alias(
        &self,
        function: &str,
        alias: &str,
    ) -> impl Future<Output = Result<Option<AliasState>>> + Send;

    /// `UpdateAlias` to `version`, routing cleared, only if the alias is still at `revision_id`.
    fn update_alias(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        revision_id: &str,
    ) -> impl Future<Output = Result<UpdateOutcome>> + Send;

    /// The function's `rollgate:group` tag.
    fn function_group(&self, function: &str)
    -> impl Future<Output = Result<Option<String>>> + Send;
}

pub trait Announcer: Send + Sync {
    /// Publish a decision with extra message attributes (`action`, `alias`, ...).
    fn announce(
        &self,
        decision: &Decision,
        attributes: &[(&str, String)],
    ) -> impl Future<Output = Result<()>> + Send;
}
