//! The traits the rollout orchestration is generic over; adapters implement them with
//! DynamoDB, Lambda and EventBridge Scheduler, tests with plain data (`fakes`).

use super::decide::RolloutState;
use crate::error::Result;
use crate::rollback::decide::AliasState;
use crate::rollback::ports::UpdateOutcome;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;

pub trait RolloutStore: Send + Sync {
    /// The alias's rollout (the running one, or the last one), if any.
    fn load(
        &self,
        function: &str,
        alias: &str,
    ) -> impl Future<Output = Result<Option<RolloutState>>> + Send;

    /// Write `state` only if the stored rollout is still at sequence `expected` (`None`:
    /// there is none, or the stored one has ended), and keep `event` as the row of this
    /// change. `false`: somebody changed it first, nothing was written.
    fn save(
        &self,
        state: &RolloutState,
        expected: Option<u64>,
        event: &Value,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Keep `row` under `sort` in the alias's partition (a judgement of a CodeDeploy
    /// shift); written again, it is replaced.
    fn note(
        &self,
        function: &str,
        alias: &str,
        sort: &str,
        row: &Value,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// CodeDeploy, for the judge during its traffic shifts.
pub trait Shifts: Send + Sync {
    /// `GetDeployment` + AppSpec: function, alias, versions and status.
    fn deployment(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<crate::ports::DeploymentInfo>> + Send;

    /// `StopDeployment` with automatic rollback.
    fn stop(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<crate::rollback::ports::StopOutcome>> + Send;
}

pub trait Aliases: Send + Sync {
    /// `GetAlias`; `None` when it does not exist.
    fn alias(
        &self,
        function: &str,
        alias: &str,
    ) -> impl Future<Output = Result<Option<AliasState>>> + Send;

    /// `UpdateAlias` to `version` with these `AdditionalVersionWeights` (fractions), only
    /// if the alias is still at `revision_id`.
    fn route(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        weights: &BTreeMap<String, f64>,
        revision_id: &str,
    ) -> impl Future<Output = Result<UpdateOutcome>> + Send;
}

pub trait Schedules: Send + Sync {
    /// A one-time schedule `name` that invokes this function with `payload` at `when_ms`
    /// and deletes itself after.
    fn at(
        &self,
        name: &str,
        when_ms: i64,
        payload: &Value,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Delete a schedule; one already gone is not an error.
    fn cancel(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
}
