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
