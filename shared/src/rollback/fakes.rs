//! In-memory implementations of the alarm-rollback ports, for Rust tests of the
//! orchestration (`cfg(test)`, or the crate's `fakes` feature). They keep the rules the
//! AWS adapters rely on: a claim is won once (or again after a failed action), a final
//! status is never replaced by `InProgress`, `UpdateAlias` is refused when the alias moved
//! since its `RevisionId` was read.

use super::decide::AliasState;
use super::ledger::{Claim, ClaimOutcome, DeploymentRecord, History};
use super::ports::{
    AlarmTags, Announcer, Ledger, ReleaseMeta, Releases, StopOutcome, UpdateOutcome,
};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::ports::{PolicyDocument, PolicyStore};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The ledger's rows.
#[derive(Debug, Default)]
pub struct LedgerRows {
    /// Every deployment recorded, with its group.
    pub deployments: Vec<(DeploymentRecord, Option<String>)>,
    /// `(function, alias, sort)` → (claiming event, outcome once settled).
    pub claims: BTreeMap<(String, String, String), (String, Option<String>)>,
    /// `(function, alias)` → versions taken out of service.
    pub quarantined: BTreeMap<(String, String), BTreeSet<String>>,
}

/// The deployment ledger in memory.
#[derive(Debug, Default)]
pub struct MemLedger {
    rows: Mutex<LedgerRows>,
    /// Errors the next `claim` calls answer, in order.
    pub claim_errors: Mutex<VecDeque<Error>>,
}

impl MemLedger {
    pub fn rows(&self) -> MutexGuard<'_, LedgerRows> {
        lock(&self.rows)
    }
}

impl Ledger for MemLedger {
    async fn history(&self, function: &str, alias: &str) -> Result<History> {
        let rows = self.rows();
        let mut deployments: Vec<DeploymentRecord> = rows
            .deployments
            .iter()
            .map(|(d, _)| d)
            .filter(|d| d.function == function && d.alias == alias)
            .cloned()
            .collect();
        deployments.sort_by_key(|d| std::cmp::Reverse(d.sort_key()));
        let quarantined = rows
            .quarantined
            .get(&(function.to_owned(), alias.to_owned()))
            .cloned()
            .unwrap_or_default();
        Ok(History {
            deployments,
            quarantined,
        })
    }

    async fn aliases(&self, function: &str) -> Result<Vec<String>> {
        let rows = self.rows();
        let set: BTreeSet<String> = rows
            .deployments
            .iter()
            .filter(|(d, _)| d.function == function)
            .map(|(d, _)| d.alias.clone())
            .collect();
        Ok(set.into_iter().collect())
    }

    async fn group_members(&self, group: &str) -> Result<Vec<(String, String)>> {
        let rows = self.rows();
        let set: BTreeSet<(String, String)> = rows
            .deployments
            .iter()
            .filter(|(_, g)| g.as_deref() == Some(group))
            .map(|(d, _)| (d.function.clone(), d.alias.clone()))
            .collect();
        Ok(set.into_iter().collect())
    }

    async fn record_deployment(
        &self,
        record: &DeploymentRecord,
        group: Option<&str>,
    ) -> Result<()> {
        let mut rows = self.rows();
        let group = group.map(str::to_owned);
        match rows
            .deployments
            .iter_mut()
            .find(|(d, _)| d.deployment_id == record.deployment_id)
        {
            Some((old, g)) => {
                let status = if old.status.is_final() && !record.status.is_final() {
                    old.status
                } else {
                    record.status
                };
                *old = DeploymentRecord {
                    status,
                    ..record.clone()
                };
                if group.is_some() {
                    *g = group;
                }
            }
            None => rows.deployments.push((record.clone(), group)),
        }
        Ok(())
    }

    async fn claim(&self, claim: &Claim) -> Result<ClaimOutcome> {
        if let Some(e) = lock(&self.claim_errors).pop_front() {
            return Err(e);
        }
        let mut rows = self.rows();
        let key = (
            claim.function.clone(),
            claim.alias.clone(),
            claim.sort.clone(),
        );
        match rows.claims.get(&key) {
            Some((by, outcome)) if !outcome.as_deref().is_some_and(|o| o.starts_with("failed")) => {
                Ok(ClaimOutcome::Lost {
                    by_event: by.clone(),
                })
            }
            _ => {
                rows.claims.insert(key, (claim.event_key.clone(), None));
                Ok(ClaimOutcome::Won)
            }
        }
    }

    async fn settle(&self, claim: &Claim, outcome: &str) -> Result<()> {
        let key = (
            claim.function.clone(),
            claim.alias.clone(),
            claim.sort.clone(),
        );
        if let Some(row) = self.rows().claims.get_mut(&key) {
            row.1 = Some(outcome.to_owned());
        }
        Ok(())
    }

    async fn quarantine(&self, claim: &Claim, _reason: &str) -> Result<()> {
        self.rows()
            .quarantined
            .entry((claim.function.clone(), claim.alias.clone()))
            .or_default()
            .insert(claim.bad_version.clone());
        Ok(())
    }
}

/// CodeDeploy and Lambda as alarm-rollback sees them.
#[derive(Debug, Default)]
pub struct World {
    pub releases: BTreeMap<String, ReleaseMeta>,
    pub aliases: BTreeMap<(String, String), AliasState>,
    /// `rollgate:group` tags.
    pub groups: BTreeMap<String, String>,
    /// Deployment ids `StopDeployment` was called for.
    pub stops: Vec<String>,
    /// `(function, alias, version)` of every `UpdateAlias` that went through.
    pub updates: Vec<(String, String, String)>,
    /// Answers of the next `StopDeployment` calls (default: `Requested`).
    pub stop_answers: VecDeque<Result<StopOutcome>>,
    /// Errors the next `UpdateAlias` calls answer.
    pub update_errors: VecDeque<Error>,
    /// How many of the next `UpdateAlias` calls find that somebody else moved the alias
    /// just before (a new revision).
    pub races: usize,
    /// Deployments of another compute platform (`GetDeployment` says `Server`).
    pub servers: BTreeSet<String>,
    revisions: u64,
}

#[derive(Debug, Default)]
pub struct FakeReleases(Mutex<World>);

impl FakeReleases {
    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.0)
    }

    /// An alias on `version`, with no routing, at a fresh revision.
    pub fn set_alias(&self, function: &str, alias: &str, version: &str) {
        let mut w = self.world();
        w.revisions += 1;
        let state = AliasState {
            version: version.to_owned(),
            weights: BTreeMap::new(),
            revision_id: format!("rev-{}", w.revisions),
        };
        w.aliases
            .insert((function.to_owned(), alias.to_owned()), state);
    }
}

impl Releases for FakeReleases {
    async fn release(&self, deployment_id: &str) -> Result<ReleaseMeta> {
        if self.world().servers.contains(deployment_id) {
            return Err(Error::NotLambda {
                id: deployment_id.to_owned(),
                platform: "Server".into(),
            });
        }
        self.world()
            .releases
            .get(deployment_id)
            .cloned()
            .ok_or_else(|| Error::DeploymentNotFound(deployment_id.to_owned()))
    }

    async fn stop(&self, deployment_id: &str) -> Result<StopOutcome> {
        let mut w = self.world();
        w.stops.push(deployment_id.to_owned());
        w.stop_answers
            .pop_front()
            .unwrap_or(Ok(StopOutcome::Requested))
    }

    async fn alias(&self, function: &str, alias: &str) -> Result<Option<AliasState>> {
        Ok(self
            .world()
            .aliases
            .get(&(function.to_owned(), alias.to_owned()))
            .cloned())
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        revision_id: &str,
    ) -> Result<UpdateOutcome> {
        let mut w = self.world();
        if let Some(e) = w.update_errors.pop_front() {
            return Err(e);
        }
        let key = (function.to_owned(), alias.to_owned());
        if w.races > 0 {
            w.races -= 1;
            w.revisions += 1;
            let moved = format!("rev-{}", w.revisions);
            if let Some(state) = w.aliases.get_mut(&key) {
                state.revision_id = moved;
            }
        }
        w.revisions += 1;
        let next = format!("rev-{}", w.revisions);
        let Some(state) = w.aliases.get_mut(&key) else {
            return Err(Error::FunctionNotFound(function.to_owned()));
        };
        if state.revision_id != revision_id {
            return Ok(UpdateOutcome::Stale);
        }
        state.version = version.to_owned();
        state.weights.clear();
        state.revision_id = next.clone();
        w.updates
            .push((function.to_owned(), alias.to_owned(), version.to_owned()));
        Ok(UpdateOutcome::Updated { revision_id: next })
    }

    async fn function_group(&self, function: &str) -> Result<Option<String>> {
        Ok(self.world().groups.get(function).cloned())
    }
}

/// Alarm tags by alarm ARN.
#[derive(Debug, Default)]
pub struct MemTags(pub BTreeMap<String, BTreeMap<String, String>>);

impl AlarmTags for MemTags {
    async fn tags(&self, alarm_arn: &str) -> Result<BTreeMap<String, String>> {
        Ok(self.0.get(alarm_arn).cloned().unwrap_or_default())
    }
}

/// Every announced decision, with its attributes.
#[derive(Debug, Default)]
pub struct Announced(pub Mutex<Vec<(Decision, BTreeMap<String, String>)>>);

impl Announced {
    pub fn all(&self) -> Vec<(Decision, BTreeMap<String, String>)> {
        lock(&self.0).clone()
    }
}

impl Announcer for Announced {
    async fn announce(&self, decision: &Decision, attributes: &[(&str, String)]) -> Result<()> {
        let attrs = attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        lock(&self.0).push((decision.clone(), attrs));
        Ok(())
    }
}

/// Policy documents by function name.
#[derive(Debug, Default)]
pub struct MemPolicies(pub BTreeMap<String, String>);

impl PolicyStore for MemPolicies {
    async fn policy(&self, function: &str) -> Result<Option<PolicyDocument>> {
        Ok(self.0.get(function).map(|text| PolicyDocument {
            source: format!("memory:{function}"),
            text: text.clone(),
        }))
    }
}
