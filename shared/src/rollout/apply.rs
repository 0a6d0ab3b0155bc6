//! Carrying out one transition: schedule, move the alias, write the state, record the
//! release, announce, in the order that keeps a duplicate or a raced invocation from
//! acting twice (see [`super::run`]).

use super::decide::{Move, RolloutState, Status, Transition};
use super::ports::{Aliases, RolloutStore, Schedules, Shifts};
use super::run::{COMPONENT, Deps, decision_for, routing, row, to_record};
use crate::decision::CheckResult;
use crate::failure::{Class, Failure};
use crate::metrics::Emf;
use crate::ports::{Functions, PolicyStore};
use crate::post_traffic::Metrics;
use crate::rollback::ledger::ReleaseContext;
use crate::rollback::ports::{Announcer, Ledger, UpdateOutcome};
use serde_json::{Value, json};

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
    /// Carry out `t` on the rollout read as `before` (sequence 0: a rollout starting).
    pub(super) async fn apply(
        &self,
        before: &RolloutState,
        t: Transition,
        action: &str,
        by: &str,
        checks: Vec<CheckResult>,
    ) -> std::result::Result<Value, Failure> {
        let mut next = t.next;
        next.reason = t.reason;
        next.updated_ms = self.clock.now_ms();
        let schedule = self.schedule(&mut next, &t.movement).await?;
        if before.seq == 0 {
            self.record(&next).await.map_err(Failure::from)?;
        }
        if let Some((version, weights)) = routing(&next, &t.movement) {
            let moved = self
                .aliases
                .route(
                    &next.function,
                    &next.alias,
                    &version,
                    &weights,
                    &before.revision,
                )
                .await;
            match moved {
                Ok(UpdateOutcome::Updated { revision_id }) => next.revision = revision_id,
                other => {
                    self.cancel(schedule.as_deref()).await;
                    if before.seq == 0 {
                        // The release recorded as starting never started.
                        next.status = Status::Failed;
                        next.reason =
                            "the alias could not be moved: the rollout never started".into();
                        let _ = self.record(&next).await;
                    }
                    return match other {
                        Err(e) => Err(Failure::new(Class::ActionFailed, e.to_string())),
                        _ => Ok(json!({"ignored": next.id, "reason":
                            "the alias changed before rollgate could move it (a duplicate delivery, or somebody else): nothing done"})),
                    };
                }
            }
        }
        let expected = (before.seq > 0).then_some(before.seq);
        let row = row(&next, action, by, &checks);
        if !self
            .store
            .save(&next, expected, &row)
            .await
            .map_err(Failure::from)?
        {
            self.cancel(schedule.as_deref()).await;
            return Ok(json!({"ignored": next.id, "reason":
                "the rollout changed meanwhile (another invocation or an operator): nothing more done"}));
        }
        if before.schedule != next.schedule {
            self.cancel(before.schedule.as_deref()).await;
        }
        if before.seq > 0
            && let Err(e) = self.record(&next).await
        {
            tracing::error!(error = %e, rollout = %next.id, "the ledger's release row could not be updated");
        }
        let decision = self.announce(&next, action, checks).await;
        Ok(json!({"rollout": next, "decision": decision}))
    }

    /// The next judgement's schedule, for a running rollout that holds a step.
    async fn schedule(
        &self,
        next: &mut RolloutState,
        movement: &Move,
    ) -> std::result::Result<Option<String>, Failure> {
        if next.status != Status::Running || !matches!(movement, Move::Route { .. } | Move::Hold) {
            return Ok(None);
        }
        let name = format!("{}-{}", next.id, next.seq);
        let when = next.updated_ms + (next.hold_seconds() * 1000) as i64;
        let payload = json!({"action": "step", "function": next.function, "alias": next.alias,
            "rollout_id": next.id, "seq": next.seq, "requester": "scheduler"});
        self.schedules
            .at(&name, when, &payload)
            .await
            .map_err(|e| Failure::new(Class::ActionFailed, e.to_string()))?;
        next.schedule = Some(name.clone());
        Ok(Some(name))
    }

    async fn cancel(&self, name: Option<&str>) {
        if let Some(name) = name
            && let Err(e) = self.schedules.cancel(name).await
        {
            tracing::warn!(error = %e, schedule = name, "could not delete a schedule (it changes nothing when it fires)");
        }
    }

    async fn record(&self, state: &RolloutState) -> crate::error::Result<()> {
        self.ledger
            .record_deployment(&to_record(state), &ReleaseContext::default())
            .await
    }

    /// Log, count and publish the decision; it is also the invocation's answer.
    pub(super) async fn announce(
        &self,
        state: &RolloutState,
        action: &str,
        checks: Vec<CheckResult>,
    ) -> Value {
        let ok = !matches!(state.status, Status::Failed | Status::Interrupted);
        let info = super::judge::as_deployment(state);
        let decision = decision_for(&info, ok, state.reason.clone(), checks);
        tracing::info!(decision = %serde_json::to_string(&decision).unwrap_or_default(),
            action, status = state.status.as_str(), "rollout decision");
        Emf::rollgate()
            .dimension("Component", COMPONENT)
            .dimension("Action", action)
            .dimension("Status", state.status.as_str())
            .metric("Decisions", 1.0, "Count")
            .emit();
        let attributes = [
            ("action", action.to_owned()),
            ("status", state.status.as_str().to_owned()),
            ("alias", state.alias.clone()),
            ("rollout", state.id.clone()),
            ("weight", state.weight().to_string()),
        ];
        if let Err(e) = self.announcer.announce(&decision, &attributes).await {
            tracing::error!(error = %e, "the rollout decision could not be published");
        }
        serde_json::to_value(&decision).unwrap_or(Value::Null)
    }
}
