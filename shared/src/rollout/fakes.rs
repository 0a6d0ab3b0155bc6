//! In-memory rollout ports (the `fakes` feature): the stored rollout with its rows, the
//! alias with its revisions, and the schedules made and deleted.

use super::decide::RolloutState;
use super::ports::{Aliases, RolloutStore, Schedules};
use crate::error::Result;
use crate::rollback::decide::AliasState;
use crate::rollback::ports::UpdateOutcome;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The stored rollout per `function:alias`, and every row written.
#[derive(Debug, Default)]
pub struct MemRollouts {
    pub states: Mutex<BTreeMap<String, RolloutState>>,
    pub rows: Mutex<Vec<Value>>,
}

impl MemRollouts {
    pub fn get(&self, function: &str, alias: &str) -> Option<RolloutState> {
        lock(&self.states)
            .get(&format!("{function}:{alias}"))
            .cloned()
    }

    pub fn rows(&self) -> Vec<Value> {
        lock(&self.rows).clone()
    }
}

impl RolloutStore for MemRollouts {
    async fn note(&self, function: &str, alias: &str, sort: &str, row: &Value) -> Result<()> {
        let mut row = row.clone();
        row["sk"] = Value::from(format!("{function}:{alias}/{sort}"));
        lock(&self.rows).push(row);
        Ok(())
    }

    async fn load(&self, function: &str, alias: &str) -> Result<Option<RolloutState>> {
        Ok(self.get(function, alias))
    }

    async fn save(
        &self,
        state: &RolloutState,
        expected: Option<u64>,
        event: &Value,
    ) -> Result<bool> {
        let mut states = lock(&self.states);
        let key = format!("{}:{}", state.function, state.alias);
        let holds = match (states.get(&key), expected) {
            (None, None) => true,
            (Some(s), None) => s.status.is_final(),
            (Some(s), Some(seq)) => s.seq == seq,
            (None, Some(_)) => false,
        };
        if holds {
            states.insert(key, state.clone());
            lock(&self.rows).push(event.clone());
        }
        Ok(holds)
    }
}

/// Aliases with Lambda's revision rule: every change is a new `RevisionId`.
#[derive(Debug, Default)]
pub struct FakeAliases {
    pub aliases: Mutex<BTreeMap<String, AliasState>>,
    pub updates: Mutex<Vec<(String, BTreeMap<String, f64>)>>,
    revisions: Mutex<u64>,
}

impl FakeAliases {
    /// `function:alias` on `version` (no weights) at a new revision.
    pub fn set(&self, function: &str, alias: &str, version: &str, weights: BTreeMap<String, f64>) {
        let mut n = lock(&self.revisions);
        *n += 1;
        lock(&self.aliases).insert(
            format!("{function}:{alias}"),
            AliasState {
                version: version.into(),
                weights,
                revision_id: format!("rev-{n}"),
            },
        );
    }

    pub fn get(&self, function: &str, alias: &str) -> AliasState {
        lock(&self.aliases)[&format!("{function}:{alias}")].clone()
    }
}

impl Aliases for FakeAliases {
    async fn alias(&self, function: &str, alias: &str) -> Result<Option<AliasState>> {
        Ok(lock(&self.aliases)
            .get(&format!("{function}:{alias}"))
            .cloned())
    }

    async fn route(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        weights: &BTreeMap<String, f64>,
        revision_id: &str,
    ) -> Result<UpdateOutcome> {
        let current = lock(&self.aliases)
            .get(&format!("{function}:{alias}"))
            .cloned();
        if current.is_none_or(|a| a.revision_id != revision_id) {
            return Ok(UpdateOutcome::Stale);
        }
        self.set(function, alias, version, weights.clone());
        lock(&self.updates).push((version.to_owned(), weights.clone()));
        Ok(UpdateOutcome::Updated {
            revision_id: self.get(function, alias).revision_id,
        })
    }
}

/// Schedules made (name → when, payload) and deleted.
#[derive(Debug, Default)]
pub struct FakeSchedules {
    pub pending: Mutex<BTreeMap<String, (i64, Value)>>,
    pub made: Mutex<Vec<String>>,
    pub deleted: Mutex<Vec<String>>,
}

impl FakeSchedules {
    /// The only pending schedule: when it fires, and its payload.
    pub fn next(&self) -> Option<(i64, Value)> {
        let pending = lock(&self.pending);
        assert!(pending.len() <= 1, "one schedule at a time: {pending:?}");
        pending.values().next().cloned()
    }
}

impl FakeSchedules {
    /// The only pending schedule, fired: gone, as `ActionAfterCompletion: DELETE` leaves it.
    pub fn take(&self) -> Option<(i64, Value)> {
        let next = self.next()?;
        lock(&self.pending).retain(|_, v| *v != next);
        Some(next)
    }
}

impl Schedules for FakeSchedules {
    async fn at(&self, name: &str, when_ms: i64, payload: &Value) -> Result<()> {
        lock(&self.pending).insert(name.into(), (when_ms, payload.clone()));
        lock(&self.made).push(name.into());
        Ok(())
    }

    async fn cancel(&self, name: &str) -> Result<()> {
        lock(&self.pending).remove(name);
        lock(&self.deleted).push(name.into());
        Ok(())
    }
}

/// CodeDeploy's deployments by id, and the stops asked for.
#[derive(Debug, Default)]
pub struct FakeShifts {
    pub deployments: Mutex<BTreeMap<String, crate::ports::DeploymentInfo>>,
    pub stops: Mutex<Vec<String>>,
}

impl super::ports::Shifts for FakeShifts {
    async fn deployment(&self, deployment_id: &str) -> Result<crate::ports::DeploymentInfo> {
        lock(&self.deployments)
            .get(deployment_id)
            .cloned()
            .ok_or_else(|| crate::error::Error::DeploymentNotFound(deployment_id.into()))
    }

    async fn stop(&self, deployment_id: &str) -> Result<crate::rollback::ports::StopOutcome> {
        lock(&self.stops).push(deployment_id.into());
        if let Some(d) = lock(&self.deployments).get_mut(deployment_id) {
            d.status = "Stopped".into();
        }
        Ok(crate::rollback::ports::StopOutcome::Requested)
    }
}
