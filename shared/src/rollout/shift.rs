//! The judge during a CodeDeploy deployment's traffic shift. CodeDeploy's canary and
//! linear configurations split traffic for minutes to hours, and only alarms watch them
//! meanwhile: the post-traffic hook judges only once all traffic is on the new version.
//! When a Lambda deployment starts (its state-change event), the rollout function judges
//! the new version against the old one every `rollout.judge_shift_every` while the alias
//! is split, and stops the deployment (CodeDeploy rolls back) as soon as the judge fails.
//! Each judgement is a ledger row (`shift#<deployment>#<round>`); the schedules are named
//! per round, so a duplicate delivery makes no second one.

use super::decide::{Verdict, verdict};
use super::judge::{Split, judge_split};
use super::ports::{Aliases, RolloutStore, Schedules, Shifts};
use super::request::{Envelope, ShiftRound};
use super::run::{Deps, decision_for, kept_checks, refused};
use crate::decision::CheckResult;
use crate::error::Error;
use crate::failure::Failure;
use crate::ports::{DeploymentInfo, Functions, PolicyStore};
use crate::post_traffic::Metrics;
use crate::rollback::ledger::{ShiftJudgement, ShiftVerdict, shift_end_sort, shift_sort};
use crate::rollback::ports::{Announcer, Ledger};
use serde_json::{Value, json};

/// At most this many judgements of one shift (a day of five-minute rounds).
pub const MAX_ROUNDS: u32 = 288;
const ENDED: [&str; 3] = ["Succeeded", "Failed", "Stopped"];

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
    /// A CodeDeploy state-change event: on START of a Lambda deployment in scope, plan
    /// the first judgement of its shift.
    pub(super) async fn shift_event(&self, payload: &Value) -> std::result::Result<Value, Failure> {
        let change = crate::rollback::event::deployment_at_home(payload, &self.settings.home)?;
        let Some(change) = change else {
            return Err(refused(
                "only CodeDeploy deployment state changes are taken here",
            ));
        };
        let ignored = |why: String| Ok(json!({"ignored": change.deployment_id, "reason": why}));
        if change.state != "START" {
            return ignored(format!(
                "state {}: only a start plans a judgement",
                change.state
            ));
        }
        let info = match self.shifts.deployment(&change.deployment_id).await {
            Ok(info) => info,
            Err(Error::NotLambda { platform, .. }) => {
                return ignored(format!("a {platform} deployment, not a Lambda one"));
            }
            Err(e) => return Err(Failure::from(e)),
        };
        let t = &info.target;
        let arn = self.settings.home.function_arn(&t.function_name);
        if !self.settings.allow.allows(&arn) {
            return ignored(format!("{arn} is not in the rollout allow-list"));
        }
        let plan = match self.policy(&t.function_name).await {
            Ok(p) => p.rollout.unwrap_or_default(),
            Err(f) => return ignored(format!("the function's policy cannot be used: {f}")),
        };
        if !plan.judge_shift {
            return ignored(
                "the policy leaves shifts to the alarms (rollout.judge_shift: false)".into(),
            );
        }
        let round = ShiftRound {
            deployment_id: info.deployment_id.clone(),
            round: 1,
            since_ms: self.clock.now_ms(),
        };
        let every = plan.judge_shift_every;
        self.plan_round(&info, &round, every).await?;
        Ok(
            json!({"watching": info.deployment_id, "function": t.function_name, "alias": t.alias,
                  "every_seconds": every}),
        )
    }

    async fn plan_round(
        &self,
        info: &DeploymentInfo,
        round: &ShiftRound,
        every: u64,
    ) -> std::result::Result<(), Failure> {
        let t = &info.target;
        let payload = json!({"action": "judge_shift", "function": t.function_name, "alias": t.alias,
            "requester": "scheduler", "shift": round});
        let name = format!("shift-{}-{}", round.deployment_id, round.round);
        let when = self.clock.now_ms() + (every * 1000) as i64;
        self.schedules
            .at(&name, when, &payload)
            .await
            .map_err(|e| Failure::new(crate::failure::Class::ActionFailed, e.to_string()))
    }

    /// One judgement of a shift: while the alias is split, the new version against the
    /// old one since the deployment started; a Fail stops the deployment.
    pub(super) async fn judge_shift(
        &self,
        env: &Envelope,
        round: &ShiftRound,
    ) -> std::result::Result<Value, Failure> {
        let info = self
            .shifts
            .deployment(&round.deployment_id)
            .await
            .map_err(Failure::from)?;
        let t = &info.target;
        if (t.function_name.as_str(), t.alias.as_str())
            != (env.function.as_str(), env.alias.as_str())
        {
            return Err(refused("the deployment moves another function or alias"));
        }
        let now = self.clock.now_ms();
        if ENDED.contains(&info.status.as_str()) || round.round > MAX_ROUNDS {
            // Its own row: a late duplicate of a judged round must not overwrite the verdict.
            let end = shift_end_sort(&round.deployment_id);
            let row = json!({"at_ms": now, "round": round.round, "status": info.status, "watching": false});
            self.note_round(&info, &end, &row).await?;
            return Ok(json!({"ended": info.deployment_id, "status": info.status}));
        }
        let policy = self.policy(&t.function_name).await?;
        let every = policy.rollout.clone().unwrap_or_default().judge_shift_every;
        let alias = self
            .aliases
            .alias(&t.function_name, &t.alias)
            .await
            .map_err(Failure::from)?;
        let Some(weight) = alias.and_then(|a| {
            (a.version == t.current_version)
                .then(|| a.weights.get(&t.target_version).copied())
                .flatten()
        }) else {
            // Not split (yet, or any more): the next round looks again.
            let row = ShiftJudgement::new(now, round.round, None);
            return self.next_round(&info, round, every, row).await;
        };
        let split = Split {
            info: &info,
            since_ms: round.since_ms,
            about: json!({"deployment": info.deployment_id, "round": round.round, "weight": weight}),
        };
        let post = policy.post_traffic.unwrap_or_default();
        let checks = judge_split(self.metrics, &split, &post, now).await;
        // A read that failed stops nothing here (unlike a rollout's step, which never
        // advances blind): CodeDeploy goes on, the alarms and the post-traffic hook still
        // judge, and the next round reads again.
        if let Some(unread) = checks.iter().find(|c| c.name == "metrics" && !c.passed()) {
            let row = ShiftJudgement {
                verdict: Some(ShiftVerdict::Unread),
                detail: unread.detail.clone(),
                ..ShiftJudgement::new(now, round.round, Some(weight))
            };
            return self.next_round(&info, round, every, row).await;
        }
        let v = verdict(&checks);
        if v != Verdict::Fail {
            let row = ShiftJudgement {
                verdict: Some(if v == Verdict::Pass {
                    ShiftVerdict::Pass
                } else {
                    ShiftVerdict::Inconclusive
                }),
                checks: kept_checks(&checks),
                ..ShiftJudgement::new(now, round.round, Some(weight))
            };
            return self.next_round(&info, round, every, row).await;
        }
        self.stop_shift(&info, round, weight, checks).await
    }

    /// Keep a row of this shift in its alias's partition.
    async fn note_round(
        &self,
        info: &DeploymentInfo,
        sort: &str,
        row: &Value,
    ) -> std::result::Result<(), Failure> {
        let t = &info.target;
        self.store
            .note(&t.function_name, &t.alias, sort, row)
            .await
            .map_err(Failure::from)
    }

    /// Keep the round's judgement as its `shift#<deployment>#<round>` row; the row as
    /// written.
    async fn note_judgement(
        &self,
        info: &DeploymentInfo,
        round: &ShiftRound,
        judgement: &ShiftJudgement,
    ) -> std::result::Result<Value, Failure> {
        let sort = shift_sort(&round.deployment_id, round.round);
        let row = serde_json::to_value(judgement).unwrap_or(Value::Null);
        self.note_round(info, &sort, &row).await?;
        Ok(row)
    }

    async fn next_round(
        &self,
        info: &DeploymentInfo,
        round: &ShiftRound,
        every: u64,
        row: ShiftJudgement,
    ) -> std::result::Result<Value, Failure> {
        let row = self.note_judgement(info, round, &row).await?;
        let next = ShiftRound {
            round: round.round + 1,
            ..round.clone()
        };
        self.plan_round(info, &next, every).await?;
        Ok(json!({"judged": row, "next_round": next.round}))
    }

    async fn stop_shift(
        &self,
        info: &DeploymentInfo,
        round: &ShiftRound,
        weight: f64,
        checks: Vec<CheckResult>,
    ) -> std::result::Result<Value, Failure> {
        let t = &info.target;
        let stopped = self.shifts.stop(&info.deployment_id).await;
        let outcome = match &stopped {
            Ok(o) => format!("{o:?}"),
            Err(e) => format!("failed: {e}"),
        };
        let row = ShiftJudgement {
            verdict: Some(ShiftVerdict::Fail),
            failed: checks
                .iter()
                .filter(|c| c.outcome == crate::decision::Outcome::Fail)
                .map(|c| c.name.clone())
                .collect(),
            checks: kept_checks(&checks),
            stop: Some(outcome),
            ..ShiftJudgement::new(self.clock.now_ms(), round.round, Some(weight))
        };
        self.note_judgement(info, round, &row).await?;
        let reason = format!(
            "judged during the traffic shift of deployment {} ({:.0}% on version {}): the new version is worse than the old one; stopped with rollback to version {}",
            info.deployment_id,
            weight * 100.0,
            t.target_version,
            t.current_version
        );
        let decision = decision_for(info, false, reason, checks);
        let attributes = [
            ("action", "judge_shift".to_owned()),
            ("status", "stopped".to_owned()),
            ("alias", t.alias.clone()),
        ];
        if let Err(e) = self.announcer.announce(&decision, &attributes).await {
            tracing::error!(error = %e, "the shift's decision could not be published");
        }
        stopped.map_err(|e| Failure::new(crate::failure::Class::ActionFailed, e.to_string()))?;
        Ok(serde_json::to_value(&decision).unwrap_or(Value::Null))
    }
}
