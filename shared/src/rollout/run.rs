//! The rollout orchestration: read the world, ask [`super::decide`], move the alias
//! (guarded by its `RevisionId`), schedule the next judgement, write the state (guarded
//! by its sequence), record the release in the ledger, announce.
//!
//! Exactly once: Scheduler delivers at least once, and operators act at any moment. The
//! alias moves only from the revision the rollout left, and the state is written only
//! over the sequence it was read at; a duplicate or a raced invocation loses one of the
//! two and does nothing more. A schedule carries the sequence it was made at: one that
//! fires after anything else changed the rollout changes nothing.

use super::decide::{self, Move, RolloutState, Status, Transition};
use super::judge;
use super::ports::{Aliases, RolloutStore, Schedules, Shifts};
use super::request::{self, Envelope, Request};
use crate::clock::Clock;
use crate::decision::{CheckResult, Verdict};
use crate::error::Result;
use crate::failure::{Class, Failure};
use crate::hook::{Budget, Evaluator};
use crate::policy::Policy;
use crate::policy::rollout::{RolloutPolicy, hold_words};
use crate::ports::{Functions, PolicyStore};
use crate::post_traffic::Metrics;
use crate::pre_traffic::PreTraffic;
use crate::rollback::ledger::{DeploymentKind, DeploymentRecord, DeploymentStatus, Origin};
use crate::rollback::ports::{Announcer, Ledger};
use crate::scope::{AllowList, Home};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const COMPONENT: &str = "rollout";

#[derive(Debug, Clone)]
pub struct Settings {
    pub home: Home,
    /// Function ARN patterns whose aliases it may move (`ROLLGATE_ROLLOUT_ALLOW`).
    pub allow: AllowList,
    /// What its schedules invoke: `ROLLGATE_SELF_ARN`, else the ARN it was invoked by.
    pub schedule_target: String,
}

impl Settings {
    /// From the function's configuration, with home from `invoked_function_arn`.
    pub fn new(config: &crate::config::RolloutConfig, invoked_function_arn: &str) -> Self {
        let common = &config.common;
        Settings {
            home: Home::from_parts(
                invoked_function_arn,
                common.account_id.as_deref(),
                common.region.as_deref(),
            ),
            allow: AllowList::parse(&config.allow),
            schedule_target: config
                .self_arn
                .clone()
                .unwrap_or_else(|| invoked_function_arn.to_owned()),
        }
    }
}

pub struct Deps<'a, S, A, Sc, F, P, M, L, N, D> {
    pub store: &'a S,
    pub aliases: &'a A,
    pub schedules: &'a Sc,
    pub functions: &'a F,
    pub policies: &'a P,
    pub metrics: &'a M,
    pub ledger: &'a L,
    pub announcer: &'a N,
    /// CodeDeploy, for the judge during its shifts.
    pub shifts: &'a D,
    pub settings: Settings,
    pub clock: &'a dyn Clock,
}

pub(super) fn refused(message: impl Into<String>) -> Failure {
    Failure::new(Class::InvalidRequest, message)
}

impl<S, A, Sc, F, P, M, L, N, D> Deps<'_, S, A, Sc, F, P, M, L, N, D>
where
    S: RolloutStore,
    A: Aliases,
    Sc: Schedules,
    F: Functions,
    P: PolicyStore,
    M: Metrics,
    L: Ledger,
    N: Announcer,
    D: Shifts,
{
    /// One invocation: a request from a pipeline or an operator, or a scheduled step.
    pub async fn handle(&self, payload: &Value) -> std::result::Result<Value, Failure> {
        if payload.get("detail-type").is_some() {
            return self.shift_event(payload).await;
        }
        let env = request::parse(payload).map_err(|e| refused(e.to_string()))?;
        let home = &self.settings.home;
        if let Some(arn) = &env.function_arn
            && home.local_function(arn).is_none()
        {
            return Err(refused(format!(
                "{arn} is a function of another account, region or partition"
            )));
        }
        let arn = home.function_arn(&env.function);
        if !self.settings.allow.allows(&arn) {
            return Err(refused(format!(
                "{arn} is not in the rollout allow-list (ROLLGATE_ROLLOUT_ALLOW)"
            )));
        }
        match env.request.clone() {
            Request::Start { version, steps } => self.start(&env, &version, steps).await,
            Request::Act(action) => self.act(&env, action).await,
            Request::Step { rollout_id, seq } => self.step(&env, &rollout_id, seq).await,
            Request::JudgeShift(round) => self.judge_shift(&env, &round).await,
            Request::Status => {
                let state = self.store.load(&env.function, &env.alias).await;
                Ok(json!({"rollout": state.map_err(Failure::from)?}))
            }
        }
    }

    /// The function's policy (its defaults when it has none); an invalid one refuses.
    pub(super) async fn policy(&self, function: &str) -> std::result::Result<Policy, Failure> {
        match self
            .policies
            .policy(function)
            .await
            .map_err(Failure::from)?
        {
            None => Ok(Policy::default()),
            Some(doc) => Policy::parse(&doc.text).map_err(|e| {
                Failure::new(
                    Class::InvalidPolicy,
                    format!("policy {} is invalid: {e}", doc.source),
                )
            }),
        }
    }

    async fn start(
        &self,
        env: &Envelope,
        version: &str,
        steps: Option<Vec<crate::policy::rollout::Step>>,
    ) -> std::result::Result<Value, Failure> {
        let (function, alias) = (&env.function, &env.alias);
        if let Some(s) = self
            .store
            .load(function, alias)
            .await
            .map_err(Failure::from)?
            && !s.status.is_final()
        {
            return Err(refused(format!(
                "rollout {} of {function}:{alias} is {} (version {} -> {}): pause, promote or abort it first",
                s.id,
                s.status.as_str(),
                s.from_version,
                s.to_version
            )));
        }
        let policy = self.policy(function).await?;
        let now = self.clock.now_ms();
        let current = self.startable(function, alias, version).await?;
        let plan = policy.rollout.clone().unwrap_or_default();
        let mut state = new_state(
            env,
            version,
            &current,
            steps.unwrap_or(plan.steps.clone()),
            &plan,
            now,
        );
        let gate = self.pre_traffic(&state, &policy).await;
        if Verdict::from_checks(&gate) == Verdict::Failed {
            state.status = Status::Failed;
            state.reason = "the pre-traffic gate failed: the alias was not moved".into();
            let won = self
                .store
                .save(&state, None, &row(&state, "start", &env.requester, &gate))
                .await;
            if !won.map_err(Failure::from)? {
                return Err(refused("another rollout started meanwhile"));
            }
            return Ok(self.announce(&state, "start", gate).await);
        }
        let first = Transition {
            movement: match state.weight() {
                w if w >= 100.0 => Move::Promote,
                w => Move::Route { weight: w },
            },
            reason: format!(
                "started by {}: {}% of traffic on version {version}, held {}",
                env.requester,
                state.weight(),
                hold_words(state.hold_seconds())
            ),
            next: RolloutState {
                status: if state.weight() >= 100.0 {
                    Status::Succeeded
                } else {
                    Status::Running
                },
                ..state.clone()
            },
        };
        state.seq = 0;
        self.apply(&state, first, "start", &env.requester, gate)
            .await
    }

    /// The alias's current version, if a rollout to `version` may start from it.
    async fn startable(
        &self,
        function: &str,
        alias: &str,
        version: &str,
    ) -> std::result::Result<crate::rollback::decide::AliasState, Failure> {
        let (current, history) = tokio::try_join!(
            self.aliases.alias(function, alias),
            self.ledger.history(function, alias)
        )
        .map_err(Failure::from)?;
        let current =
            current.ok_or_else(|| refused(format!("{function}:{alias} does not exist")))?;
        if !current.weights.is_empty() {
            return Err(refused(format!(
                "{function}:{alias} already splits traffic {:?}: another release is shifting it",
                current.weights
            )));
        }
        if current.version == version {
            return Err(refused(format!(
                "{function}:{alias} already serves version {version}"
            )));
        }
        if history.quarantined.contains(version) {
            return Err(refused(format!(
                "version {version} of {function} is quarantined (rolled back before) and is never released again"
            )));
        }
        Ok(current)
    }

    /// The same configuration checks and smoke tests as the pre-traffic hook.
    async fn pre_traffic(&self, state: &RolloutState, policy: &Policy) -> Vec<CheckResult> {
        let gate = PreTraffic {
            functions: self.functions,
        };
        let started = crate::clock::Instant::now();
        let budget = Budget {
            started,
            deadline: started + gate.budget(policy),
        };
        let mut checks = Vec::new();
        gate.evaluate(&judge::as_deployment(state), policy, budget, &mut checks)
            .await;
        checks
    }

    /// A scheduled judgement: only the schedule of the rollout's current sequence acts.
    async fn step(
        &self,
        env: &Envelope,
        rollout_id: &str,
        seq: u64,
    ) -> std::result::Result<Value, Failure> {
        let Some(state) = self
            .store
            .load(&env.function, &env.alias)
            .await
            .map_err(Failure::from)?
        else {
            return Ok(
                json!({"ignored": rollout_id, "reason": "no rollout is stored for the alias"}),
            );
        };
        if state.id != rollout_id || state.seq != seq || state.status != Status::Running {
            return Ok(json!({"ignored": rollout_id, "reason": format!(
                "a stale schedule: rollout {} is {} at sequence {}, this step was planned at {seq}",
                state.id, state.status.as_str(), state.seq)}));
        }
        let now = self.clock.now_ms();
        if let Some(moved) = self.moved(&state).await.map_err(Failure::from)? {
            let t = decide::on_interrupted(&state, &moved, now);
            return self.apply(&state, t, "step", "rollgate", Vec::new()).await;
        }
        let policy = self.policy(&env.function).await?;
        let post = policy.post_traffic.unwrap_or_default();
        let checks = judge::judge(self.metrics, &state, &post, now).await;
        let t = decide::on_judged(&state, decide::verdict(&checks), now);
        self.apply(&state, t, "step", "rollgate", checks).await
    }

    /// How the alias differs from what the rollout left, if it does.
    async fn moved(&self, state: &RolloutState) -> Result<Option<String>> {
        let now = self.aliases.alias(&state.function, &state.alias).await?;
        Ok(match now {
            None => Some("the alias was deleted".into()),
            Some(a) if a.revision_id != state.revision => Some(format!(
                "now version {} with weights {:?}, revision {}",
                a.version, a.weights, a.revision_id
            )),
            Some(_) => None,
        })
    }

    async fn act(
        &self,
        env: &Envelope,
        action: decide::Action,
    ) -> std::result::Result<Value, Failure> {
        let state = self
            .store
            .load(&env.function, &env.alias)
            .await
            .map_err(Failure::from)?
            .ok_or_else(|| refused(format!("no rollout of {}:{}", env.function, env.alias)))?;
        let by = match &env.reason {
            Some(why) => format!("{} ({why})", env.requester),
            None => env.requester.clone(),
        };
        let t = decide::on_action(&state, action, &by, self.clock.now_ms()).map_err(refused)?;
        if matches!(t.movement, Move::Promote | Move::Restore)
            && let Some(moved) = self.moved(&state).await.map_err(Failure::from)?
        {
            let t = decide::on_interrupted(&state, &moved, self.clock.now_ms());
            return self
                .apply(&state, t, action.as_str(), &env.requester, Vec::new())
                .await;
        }
        self.apply(&state, t, action.as_str(), &env.requester, Vec::new())
            .await
    }
}

/// A rollout about to start: step 0, its revision the alias's current one.
fn new_state(
    env: &Envelope,
    version: &str,
    current: &crate::rollback::decide::AliasState,
    steps: Vec<crate::policy::rollout::Step>,
    plan: &RolloutPolicy,
    now: i64,
) -> RolloutState {
    RolloutState {
        id: format!("rl-{:016x}", fastrand::u64(..)),
        function: env.function.clone(),
        alias: env.alias.clone(),
        from_version: current.version.clone(),
        to_version: version.to_owned(),
        steps,
        on_inconclusive: plan.on_inconclusive,
        max_extensions: plan.max_extensions,
        step: 0,
        step_started_ms: now,
        extensions: 0,
        status: Status::Running,
        seq: 1,
        revision: current.revision_id.clone(),
        schedule: None,
        requester: env.requester.clone(),
        created_ms: now,
        updated_ms: now,
        reason: String::new(),
    }
}

/// Checks a change's ledger row keeps at most: the failed and inconclusive ones first.
pub const ROW_MAX_CHECKS: usize = 100;

/// The ledger row of one change, with the checks it was decided on (each with its
/// expected and actual values, for the report page) and their verdict.
pub(super) fn row(state: &RolloutState, action: &str, by: &str, checks: &[CheckResult]) -> Value {
    let kept = kept_checks(checks);
    let mut row = json!({"at_ms": state.updated_ms, "seq": state.seq, "action": action, "by": by,
           "status": state.status.as_str(), "step": state.step + 1, "weight": state.weight(),
           "verdict": (!checks.is_empty()).then(|| decide::verdict(checks)),
           "reason": state.reason, "checks": kept});
    if checks.len() > kept.len() {
        row["checks_left_out"] = json!(checks.len() - kept.len());
    }
    row
}

/// The checks a ledger row keeps: all of them, or the [`ROW_MAX_CHECKS`] that say most
/// (failed and inconclusive first).
pub(super) fn kept_checks(checks: &[CheckResult]) -> Vec<CheckResult> {
    if checks.len() <= ROW_MAX_CHECKS {
        return checks.to_vec();
    }
    let passed = |c: &&CheckResult| c.outcome == crate::decision::Outcome::Pass;
    let telling = checks.iter().filter(|c| !passed(c));
    telling
        .chain(checks.iter().filter(passed))
        .take(ROW_MAX_CHECKS)
        .cloned()
        .collect()
}

/// The decision announced about a release, a rollout's or a CodeDeploy shift's.
pub fn decision_for(
    info: &crate::ports::DeploymentInfo,
    succeeded: bool,
    reason: String,
    checks: Vec<CheckResult>,
) -> crate::decision::Decision {
    let t = &info.target;
    crate::decision::Decision {
        component: COMPONENT.into(),
        verdict: if succeeded {
            Verdict::Succeeded
        } else {
            Verdict::Failed
        },
        reason,
        deployment_id: Some(info.deployment_id.clone()),
        function_name: Some(t.function_name.clone()),
        alias: Some(t.alias.clone()),
        current_version: Some(t.current_version.clone()),
        target_version: Some(t.target_version.clone()),
        policy_source: None,
        checks,
        duration_ms: 0,
    }
}

/// The rollout as the deployment ledger records it (alarm-rollback reads it).
pub fn to_record(state: &RolloutState) -> DeploymentRecord {
    let status = match state.status {
        Status::Running | Status::Paused => DeploymentStatus::InProgress,
        Status::Succeeded => DeploymentStatus::Succeeded,
        Status::Failed | Status::Interrupted => DeploymentStatus::Failed,
        Status::Aborted => DeploymentStatus::Stopped,
    };
    DeploymentRecord {
        deployment_id: state.id.clone(),
        application: "rollgate-rollout".into(),
        deployment_group: state.alias.clone(),
        function: state.function.clone(),
        alias: state.alias.clone(),
        from_version: state.from_version.clone(),
        to_version: state.to_version.clone(),
        status,
        kind: DeploymentKind::Release,
        created_ms: state.created_ms,
        started_ms: Some(state.created_ms),
        ended_ms: status.is_final().then_some(state.updated_ms),
        origin: Origin::Rollout,
        initiator: Some(state.requester.clone()),
    }
}

/// The `AdditionalVersionWeights` and primary version of a move.
pub fn routing(state: &RolloutState, movement: &Move) -> Option<(String, BTreeMap<String, f64>)> {
    match movement {
        Move::Route { weight } => Some((
            state.from_version.clone(),
            BTreeMap::from([(state.to_version.clone(), weight / 100.0)]),
        )),
        Move::Promote => Some((state.to_version.clone(), BTreeMap::new())),
        Move::Restore => Some((state.from_version.clone(), BTreeMap::new())),
        Move::Hold | Move::Stay => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_keeps_every_check_or_the_failed_ones_first() {
        let check = |i: usize, failed: bool| {
            let c = if failed {
                CheckResult::fail
            } else {
                CheckResult::pass
            };
            c(
                format!("smoke[{i}].status"),
                json!(200),
                json!(if failed { 500 } else { 200 }),
            )
        };
        let few: Vec<CheckResult> = (0..3).map(|i| check(i, i == 2)).collect();
        assert_eq!(kept_checks(&few), few, "all of them, in their order");
        let many: Vec<CheckResult> = (0..150).map(|i| check(i, i % 50 == 49)).collect();
        let kept = kept_checks(&many);
        assert_eq!(kept.len(), ROW_MAX_CHECKS);
        let names: Vec<&str> = kept.iter().take(4).map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "smoke[49].status",
                "smoke[99].status",
                "smoke[149].status",
                "smoke[0].status"
            ]
        );
    }
}
