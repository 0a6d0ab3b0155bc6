//! In-memory implementations of the alarm-rollback ports, for Rust tests of the
//! orchestration (`cfg(test)`, or the crate's `fakes` feature). They keep the rules the
//! AWS adapters rely on: a claim is won once (or again after a failed action), a final
//! status is never replaced by `InProgress`, `UpdateAlias` is refused when the alias moved
//! since its `RevisionId` was read.

use super::decide::AliasState;
use super::ledger::{
    Claim, ClaimOutcome, DeploymentRecord, Freeze, History, ReleaseContext, RequestRow,
};
use super::ports::{
    AlarmTags, Announcer, Ledger, ReleaseMeta, Releases, StopOutcome, UpdateOutcome,
};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::ports::{PolicyDocument, PolicyStore};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The AWS calls the fakes answered, in order (`Query`, `GetAlias`, `UpdateAlias`, ...),
/// shared by the fakes of one test: how many calls an alarm makes before it acts.
#[derive(Debug, Default, Clone)]
pub struct Journal(Arc<Mutex<Vec<&'static str>>>);

impl Journal {
    fn note(&self, call: &'static str) {
        lock(&self.0).push(call);
    }

    pub fn clear(&self) {
        lock(&self.0).clear();
    }

    pub fn calls(&self) -> Vec<&'static str> {
        lock(&self.0).clone()
    }

    /// The calls made before the first `UpdateAlias`.
    pub fn before_update_alias(&self) -> Vec<&'static str> {
        self.calls()
            .into_iter()
            .take_while(|c| *c != "UpdateAlias")
            .collect()
    }
}

/// The ledger's rows.
#[derive(Debug, Default)]
pub struct LedgerRows {
    /// Every deployment recorded, with its group and rollback settings.
    pub deployments: Vec<(DeploymentRecord, ReleaseContext)>,
    /// `(function, alias, sort)` → (claiming event, outcome once settled).
    pub claims: BTreeMap<(String, String, String), (String, Option<String>)>,
    /// `(function, alias)` → versions taken out of service.
    pub quarantined: BTreeMap<(String, String), BTreeSet<String>>,
    /// `(function, alias)` → its latest freeze.
    pub freezes: BTreeMap<(String, String), Freeze>,
    /// Manual requests, in the order noted.
    pub requests: Vec<RequestRow>,
    /// Every claim as written, by key, with its outcome and when it settled.
    pub claim_rows: BTreeMap<ClaimKey, (Claim, Option<Settled>)>,
}

/// `(function, alias, sort)` of a claim.
pub type ClaimKey = (String, String, String);

/// A claim's outcome and when it was written (epoch ms).
pub type Settled = (String, i64);

/// The deployment ledger in memory.
#[derive(Debug, Default)]
pub struct MemLedger {
    rows: Mutex<LedgerRows>,
    /// Errors the next `claim` calls answer, in order.
    pub claim_errors: Mutex<VecDeque<Error>>,
    /// An error the next whole-table read answers (IAM refusing `Scan`, say).
    pub scan_error: Mutex<Option<Error>>,
    pub journal: Journal,
}

impl MemLedger {
    /// A ledger that notes its calls in `journal`.
    pub fn with_journal(journal: Journal) -> Self {
        MemLedger {
            journal,
            ..MemLedger::default()
        }
    }

    pub fn rows(&self) -> MutexGuard<'_, LedgerRows> {
        lock(&self.rows)
    }
}

impl Ledger for MemLedger {
    async fn history(&self, function: &str, alias: &str) -> Result<History> {
        self.journal.note("Query");
        let rows = self.rows();
        let mut mine: Vec<&(DeploymentRecord, ReleaseContext)> = rows
            .deployments
            .iter()
            .filter(|(d, _)| d.function == function && d.alias == alias)
            .collect();
        mine.sort_by_key(|(d, _)| std::cmp::Reverse(d.sort_key()));
        let quarantined = rows
            .quarantined
            .get(&(function.to_owned(), alias.to_owned()))
            .cloned()
            .unwrap_or_default();
        let key = (function.to_owned(), alias.to_owned());
        Ok(History {
            deployments: mine.iter().map(|(d, _)| d.clone()).collect(),
            freeze: rows.freezes.get(&key).cloned(),
            quarantined,
            contexts: mine
                .iter()
                .map(|(d, c)| (d.deployment_id.clone(), c.clone()))
                .collect(),
        })
    }

    async fn aliases(&self, function: &str) -> Result<Vec<String>> {
        self.journal.note("Query");
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
        self.journal.note("Query");
        let rows = self.rows();
        let set: BTreeSet<(String, String)> = rows
            .deployments
            .iter()
            .filter(|(_, c)| c.group.as_deref() == Some(group))
            .map(|(d, _)| (d.function.clone(), d.alias.clone()))
            .collect();
        Ok(set.into_iter().collect())
    }

    async fn record_deployment(
        &self,
        record: &DeploymentRecord,
        context: &ReleaseContext,
    ) -> Result<()> {
        self.journal.note("UpdateItem");
        let mut rows = self.rows();
        match rows
            .deployments
            .iter_mut()
            .find(|(d, _)| d.deployment_id == record.deployment_id)
        {
            Some((old, c)) => {
                let status = if old.status.is_final() && !record.status.is_final() {
                    old.status
                } else {
                    record.status
                };
                *old = DeploymentRecord {
                    status,
                    ..record.clone()
                };
                if context.group.is_some() {
                    c.group.clone_from(&context.group);
                }
                if context.rollback.is_some() {
                    c.rollback.clone_from(&context.rollback);
                }
            }
            None => rows.deployments.push((record.clone(), context.clone())),
        }
        Ok(())
    }

    async fn claim(&self, claim: &Claim) -> Result<ClaimOutcome> {
        self.journal.note("PutItem");
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
                rows.claims
                    .insert(key.clone(), (claim.event_key.clone(), None));
                rows.claim_rows.insert(key, (claim.clone(), None));
                Ok(ClaimOutcome::Won)
            }
        }
    }

    async fn settle(&self, claim: &Claim, outcome: &str) -> Result<()> {
        self.journal.note("UpdateItem");
        let key = (
            claim.function.clone(),
            claim.alias.clone(),
            claim.sort.clone(),
        );
        let mut rows = self.rows();
        if let Some(row) = rows.claims.get_mut(&key) {
            row.1 = Some(outcome.to_owned());
        }
        if let Some(row) = rows.claim_rows.get_mut(&key) {
            row.1 = Some((outcome.to_owned(), crate::clock::epoch_ms()));
        }
        Ok(())
    }

    async fn quarantine(&self, claim: &Claim, _reason: &str) -> Result<()> {
        self.journal.note("PutItem");
        self.rows()
            .quarantined
            .entry((claim.function.clone(), claim.alias.clone()))
            .or_default()
            .insert(claim.bad_version.clone());
        Ok(())
    }

    async fn freeze(&self, function: &str, alias: &str, freeze: &Freeze) -> Result<bool> {
        self.journal.note("PutItem");
        let key = (function.to_owned(), alias.to_owned());
        let mut rows = self.rows();
        if rows
            .freezes
            .get(&key)
            .is_some_and(|f| f.request_id == freeze.request_id)
        {
            return Ok(false);
        }
        rows.freezes.insert(key, freeze.clone());
        Ok(true)
    }

    async fn unfreeze(
        &self,
        function: &str,
        alias: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<Freeze>> {
        self.journal.note("UpdateItem");
        let key = (function.to_owned(), alias.to_owned());
        let mut rows = self.rows();
        let Some(f) = rows.freezes.get_mut(&key).filter(|f| f.holds(now_ms)) else {
            return Ok(None);
        };
        let before = f.clone();
        f.until_ms = now_ms;
        f.lifted_by = Some(by.to_owned());
        f.lifted_ms = Some(now_ms);
        Ok(Some(before))
    }

    async fn note_request(&self, row: &RequestRow) -> Result<()> {
        self.journal.note("PutItem");
        self.rows().requests.push(row.clone());
        Ok(())
    }

    /// The rows the table would hold, as the adapter reads them, through the same mapping.
    async fn releases(&self, function: &str) -> Result<Vec<crate::dora::Release>> {
        self.journal.note("Query");
        Ok(self.releases_of(function))
    }

    async fn account_releases(&self) -> Result<Vec<crate::dora::Release>> {
        self.journal.note("Scan");
        if let Some(e) = lock(&self.scan_error).take() {
            return Err(e);
        }
        let functions: BTreeSet<String> = self
            .rows()
            .deployments
            .iter()
            .map(|(d, _)| d.function.clone())
            .collect();
        Ok(functions.iter().flat_map(|f| self.releases_of(f)).collect())
    }
}

impl MemLedger {
    /// One function's releases, through the adapter's mapping ([`super::delivery::releases`]).
    fn releases_of(&self, function: &str) -> Vec<crate::dora::Release> {
        let rows = self.rows();
        let mut json_rows = Vec::new();
        for (d, _) in rows
            .deployments
            .iter()
            .filter(|(d, _)| d.function == function)
        {
            let mut row = serde_json::to_value(d).unwrap_or_default();
            row["sk"] = d.sort_key().into();
            row["status"] = d.status.as_str().into();
            row["kind"] = match d.kind {
                super::ledger::DeploymentKind::Release => "release",
                super::ledger::DeploymentKind::Rollback => "rollback",
            }
            .into();
            json_rows.push(row);
        }
        for ((f, _, sort), (c, settled)) in &rows.claim_rows {
            if f != function {
                continue;
            }
            let (outcome, settled_ms) = settled.clone().unzip();
            json_rows.push(
                serde_json::json!({"sk": sort, "deployment_id": c.deployment_id,
                "outcome": outcome, "since_ms": c.since_ms, "settled_ms": settled_ms}),
            );
        }
        super::delivery::releases(&json_rows)
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
pub struct FakeReleases {
    world: Mutex<World>,
    pub journal: Journal,
}

impl FakeReleases {
    /// CodeDeploy and Lambda noting their calls in `journal`.
    pub fn with_journal(journal: Journal) -> Self {
        FakeReleases {
            journal,
            ..FakeReleases::default()
        }
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
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
        self.journal.note("GetDeployment");
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
        self.journal.note("StopDeployment");
        let mut w = self.world();
        w.stops.push(deployment_id.to_owned());
        w.stop_answers
            .pop_front()
            .unwrap_or(Ok(StopOutcome::Requested))
    }

    async fn alias(&self, function: &str, alias: &str) -> Result<Option<AliasState>> {
        self.journal.note("GetAlias");
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
        self.journal.note("UpdateAlias");
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
        self.journal.note("GetFunction");
        Ok(self.world().groups.get(function).cloned())
    }
}

/// Alarm tags by alarm ARN.
#[derive(Debug, Default)]
pub struct MemTags {
    pub tags: BTreeMap<String, BTreeMap<String, String>>,
    pub journal: Journal,
}

impl AlarmTags for MemTags {
    async fn tags(&self, alarm_arn: &str) -> Result<BTreeMap<String, String>> {
        self.journal.note("ListTagsForResource");
        Ok(self.tags.get(alarm_arn).cloned().unwrap_or_default())
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
pub struct MemPolicies {
    pub documents: BTreeMap<String, String>,
    /// Errors the next reads answer (an unreadable policy).
    pub errors: Mutex<VecDeque<Error>>,
    pub journal: Journal,
}

impl PolicyStore for MemPolicies {
    async fn policy(&self, function: &str) -> Result<Option<PolicyDocument>> {
        self.journal.note("GetParameter");
        if let Some(e) = lock(&self.errors).pop_front() {
            return Err(e);
        }
        Ok(self.documents.get(function).map(|text| PolicyDocument {
            source: format!("memory:{function}"),
            text: text.clone(),
        }))
    }
}
