//! The rollout's state and its decision table: what each judgement and each operator
//! action does to it. Pure: the orchestration ([`super::run`]) reads the world, asks
//! here, then moves the alias and writes what is returned.
//!
//! | status | event | next | alias |
//! |---|---|---|---|
//! | running | judged Pass | the next step, held | new version at the next weight |
//! | running | judged Pass at the step before 100 % | succeeded | new version alone |
//! | running | judged Fail | failed | old version alone |
//! | running | judged Inconclusive, `extend` with extensions left | the same step, held again | unchanged |
//! | running | judged Inconclusive, `extend` with none left, or `fail` | failed | old version alone |
//! | running | judged Inconclusive, `advance` | as Pass | as Pass |
//! | running | the alias moved by someone else | interrupted | untouched |
//! | running | pause | paused | unchanged |
//! | paused | resume | running, the step held again from now | unchanged |
//! | running, paused | promote | succeeded | new version alone |
//! | running, paused | abort | aborted | old version alone |
//! | anything else | any | refused: says why | untouched |

use crate::decision::{CheckResult, Outcome};
use crate::policy::rollout::{OnInconclusive, Step};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Paused,
    Succeeded,
    Failed,
    Aborted,
    /// Somebody else moved the alias (an alarm's rollback, a person): rollgate stopped.
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Aborted => "aborted",
            Status::Interrupted => "interrupted",
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, Status::Running | Status::Paused)
    }
}

/// One rollout of one alias, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    pub id: String,
    pub function: String,
    pub alias: String,
    pub from_version: String,
    pub to_version: String,
    pub steps: Vec<Step>,
    pub on_inconclusive: OnInconclusive,
    pub max_extensions: u32,
    /// Index of the current step in `steps`.
    pub step: usize,
    /// When the current step's weight was set (or the step resumed), epoch ms: the judge
    /// reads the metrics from then.
    pub step_started_ms: i64,
    /// Extra holds the current step had.
    pub extensions: u32,
    pub status: Status,
    /// Bumped by every change; a schedule carries the sequence it was made at, and a
    /// schedule of an older sequence changes nothing.
    pub seq: u64,
    /// The alias `RevisionId` rollgate left; another means somebody else moved it.
    pub revision: String,
    /// The pending schedule's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    pub requester: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub reason: String,
}

impl RolloutState {
    pub fn weight(&self) -> f64 {
        self.steps.get(self.step).map_or(0.0, |s| s.weight)
    }

    pub fn hold_seconds(&self) -> u64 {
        self.steps
            .get(self.step)
            .and_then(|s| s.hold)
            .unwrap_or_default()
    }
}

/// What a judgement or an action asks of the world.
#[derive(Debug, Clone, PartialEq)]
pub enum Move {
    /// Route `weight` % to the new version (the old version keeps the rest); hold.
    Route { weight: f64 },
    /// The new version alone.
    Promote,
    /// The old version alone.
    Restore,
    /// Leave the alias; hold the step again (extension, resume).
    Hold,
    /// Leave the alias; no schedule (pause, interrupted).
    Stay,
}

/// The outcome of one event: the next state (`seq` bumped) and the alias move.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub next: RolloutState,
    pub movement: Move,
    /// The one-line reason, announced and stored.
    pub reason: String,
}

/// The judge's overall finding at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

/// Any failed check fails; an undecided comparison of the versions (or too little
/// traffic on the new one) is inconclusive; the absolute limits on the new version that
/// the data cannot decide yet fail nothing, as in the post-traffic hook.
pub fn verdict(checks: &[CheckResult]) -> Verdict {
    if checks.iter().any(|c| c.outcome == Outcome::Fail) {
        return Verdict::Fail;
    }
    let undecided = checks.iter().any(|c| {
        c.outcome == Outcome::Inconclusive
            && (c.name.starts_with("canary.") || c.name == "rollout.traffic")
    });
    if undecided {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    }
}

fn next(state: &RolloutState, now_ms: i64) -> RolloutState {
    RolloutState {
        seq: state.seq + 1,
        updated_ms: now_ms,
        schedule: None,
        ..state.clone()
    }
}

fn pct(w: f64) -> String {
    format!("{w}%")
}

/// The judgement at the end of a running step's hold.
pub fn on_judged(state: &RolloutState, v: Verdict, now_ms: i64) -> Transition {
    let mut n = next(state, now_ms);
    let here = format!("step {} ({})", state.step + 1, pct(state.weight()));
    let effective = match (v, state.on_inconclusive) {
        (Verdict::Inconclusive, OnInconclusive::Advance) => Verdict::Pass,
        (Verdict::Inconclusive, OnInconclusive::Extend)
            if state.extensions < state.max_extensions =>
        {
            n.extensions += 1;
            n.step_started_ms = now_ms;
            return Transition {
                reason: format!(
                    "{here}: the judge could not decide yet; held again ({} of {} extensions)",
                    n.extensions, state.max_extensions
                ),
                next: n,
                movement: Move::Hold,
            };
        }
        (other, _) => other,
    };
    match effective {
        Verdict::Pass => advance(state, n, &here, now_ms),
        _ => {
            n.status = Status::Failed;
            let why = if v == Verdict::Fail {
                "the new version is worse than the old one"
            } else {
                "the judge could not decide and the policy does not advance undecided steps"
            };
            Transition {
                reason: format!(
                    "{here}: {why}; version {} restored to all traffic",
                    state.from_version
                ),
                next: n,
                movement: Move::Restore,
            }
        }
    }
}

fn advance(state: &RolloutState, mut n: RolloutState, here: &str, now_ms: i64) -> Transition {
    n.step += 1;
    n.extensions = 0;
    n.step_started_ms = now_ms;
    let weight = n.weight();
    if weight >= 100.0 || n.step + 1 >= state.steps.len() {
        n.step = state.steps.len() - 1;
        n.status = Status::Succeeded;
        return Transition {
            reason: format!(
                "{here} passed; version {} takes all traffic",
                state.to_version
            ),
            next: n,
            movement: Move::Promote,
        };
    }
    Transition {
        reason: format!(
            "{here} passed; {} of traffic on version {}",
            pct(weight),
            state.to_version
        ),
        next: n,
        movement: Move::Route { weight },
    }
}

/// An operator's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Pause,
    Resume,
    Promote,
    Abort,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Promote => "promote",
            Action::Abort => "abort",
        }
    }
}

/// An operator's action on the stored rollout; `Err` says why it does not apply.
pub fn on_action(
    state: &RolloutState,
    action: Action,
    by: &str,
    now_ms: i64,
) -> Result<Transition, String> {
    let mut n = next(state, now_ms);
    let (status, movement, what) = match (action, state.status) {
        (Action::Pause, Status::Running) => (Status::Paused, Move::Stay, "paused".to_owned()),
        (Action::Resume, Status::Paused) => {
            n.step_started_ms = now_ms;
            (
                Status::Running,
                Move::Hold,
                "resumed; the step is held again from now".to_owned(),
            )
        }
        (Action::Promote, Status::Running | Status::Paused) => (
            Status::Succeeded,
            Move::Promote,
            format!("promoted: version {} takes all traffic", state.to_version),
        ),
        (Action::Abort, Status::Running | Status::Paused) => (
            Status::Aborted,
            Move::Restore,
            format!(
                "aborted: version {} restored to all traffic",
                state.from_version
            ),
        ),
        (a, s) => {
            return Err(format!(
                "rollout {} is {}: {} does not apply",
                state.id,
                s.as_str(),
                a.as_str()
            ));
        }
    };
    n.status = status;
    Ok(Transition {
        reason: format!("{what} by {by}"),
        next: n,
        movement,
    })
}

/// The alias was not as the rollout left it: somebody else moved it.
pub fn on_interrupted(state: &RolloutState, found: &str, now_ms: i64) -> Transition {
    let mut n = next(state, now_ms);
    n.status = Status::Interrupted;
    Transition {
        reason: format!(
            "the alias was moved by someone else ({found}) at step {}: the rollout stopped and left it",
            state.step + 1
        ),
        next: n,
        movement: Move::Stay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rollout::Step;
    use serde_json::json;

    fn state(on: OnInconclusive) -> RolloutState {
        let step = |weight: f64, hold: Option<u64>| Step { weight, hold };
        RolloutState {
            id: "rl-1".into(),
            function: "orders".into(),
            alias: "live".into(),
            from_version: "1".into(),
            to_version: "2".into(),
            steps: vec![
                step(5.0, Some(3600)),
                step(25.0, Some(3600)),
                step(50.0, Some(3600)),
                step(100.0, None),
            ],
            on_inconclusive: on,
            max_extensions: 1,
            step: 0,
            step_started_ms: 0,
            extensions: 0,
            status: Status::Running,
            seq: 3,
            revision: "r".into(),
            schedule: Some("s".into()),
            requester: "ci".into(),
            created_ms: 0,
            updated_ms: 0,
            reason: String::new(),
        }
    }

    #[test]
    fn passes_walk_the_steps_to_all_traffic() {
        let mut s = state(OnInconclusive::Extend);
        let mut moves = Vec::new();
        while !s.status.is_final() {
            let t = on_judged(&s, Verdict::Pass, 10);
            assert_eq!(t.next.seq, s.seq + 1);
            assert_eq!(t.next.schedule, None);
            moves.push(t.movement.clone());
            s = t.next;
        }
        assert_eq!(
            moves,
            [
                Move::Route { weight: 25.0 },
                Move::Route { weight: 50.0 },
                Move::Promote
            ]
        );
        assert_eq!((s.status, s.step), (Status::Succeeded, 3));
    }

    #[test]
    fn a_fail_restores_and_undecided_steps_follow_the_policy() {
        let s = state(OnInconclusive::Extend);
        let t = on_judged(&s, Verdict::Fail, 10);
        assert_eq!((t.next.status, t.movement), (Status::Failed, Move::Restore));
        assert!(t.reason.contains("step 1 (5%)"), "{}", t.reason);
        let once = on_judged(&s, Verdict::Inconclusive, 10);
        assert_eq!(
            (once.next.status, once.movement.clone()),
            (Status::Running, Move::Hold)
        );
        assert_eq!((once.next.extensions, once.next.step_started_ms), (1, 10));
        let twice = on_judged(&once.next, Verdict::Inconclusive, 20);
        assert_eq!(
            (twice.next.status, twice.movement),
            (Status::Failed, Move::Restore)
        );
        let t = on_judged(&state(OnInconclusive::Advance), Verdict::Inconclusive, 10);
        assert_eq!(t.movement, Move::Route { weight: 25.0 });
        let t = on_judged(&state(OnInconclusive::Fail), Verdict::Inconclusive, 10);
        assert_eq!(t.movement, Move::Restore);
    }

    #[test]
    fn operator_actions_apply_only_where_the_table_says() {
        let s = state(OnInconclusive::Extend);
        let paused = on_action(&s, Action::Pause, "ops", 5).unwrap();
        assert_eq!(
            (paused.next.status, paused.movement.clone()),
            (Status::Paused, Move::Stay)
        );
        assert!(on_action(&paused.next, Action::Pause, "ops", 6).is_err());
        let resumed = on_action(&paused.next, Action::Resume, "ops", 7).unwrap();
        assert_eq!(
            (resumed.next.status, resumed.movement),
            (Status::Running, Move::Hold)
        );
        assert_eq!(resumed.next.step_started_ms, 7);
        let promoted = on_action(&paused.next, Action::Promote, "ops", 8).unwrap();
        assert_eq!(
            (promoted.next.status, promoted.movement),
            (Status::Succeeded, Move::Promote)
        );
        let aborted = on_action(&s, Action::Abort, "ops", 9).unwrap();
        assert_eq!(
            (aborted.next.status, aborted.movement),
            (Status::Aborted, Move::Restore)
        );
        assert!(aborted.reason.ends_with("by ops"));
        let err = on_action(&aborted.next, Action::Resume, "ops", 10).unwrap_err();
        assert!(err.contains("aborted"), "{err}");
        assert!(on_action(&s, Action::Resume, "ops", 10).is_err());
    }

    #[test]
    fn the_verdict_of_a_step() {
        let c = |name: &str, o: Outcome| CheckResult::new(name, o, json!(null), json!(null));
        use Outcome::*;
        assert_eq!(
            verdict(&[c("canary.error_rate", Pass), c("bake.p99", Inconclusive)]),
            Verdict::Pass
        );
        assert_eq!(
            verdict(&[c("canary.latency", Inconclusive)]),
            Verdict::Inconclusive
        );
        assert_eq!(
            verdict(&[c("rollout.traffic", Inconclusive)]),
            Verdict::Inconclusive
        );
        assert_eq!(
            verdict(&[c("canary.latency", Inconclusive), c("alarm[x]", Fail)]),
            Verdict::Fail
        );
    }
}
