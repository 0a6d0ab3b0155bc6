//! Rollouts end to end on in-memory ports and tokio's paused clock: holds of hours pass
//! in milliseconds, the judge reads a traffic model split by the alias's weights, and
//! every schedule is fired as Scheduler would, duplicates included.

use super::decide::Status;
use super::fakes::{FakeAliases, FakeSchedules, FakeShifts, MemRollouts};
use super::run::{Deps, Settings};
use crate::clock::{Clock, TokioClock};
use crate::fakes::{Answer, FakeFunctions};
use crate::post_traffic::fakes::{FakeMetrics, Served, TrafficModel};
use crate::rollback::fakes::{Announced, MemLedger, MemPolicies};
use crate::rollback::ledger::{DeploymentStatus, Origin};
use crate::rollback::ports::Ledger;
use crate::scope::{AllowList, Home};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const START_MS: i64 = 1_800_000_000_000;
const POLICY: &str = r#"{"version": 1,
  "post_traffic": {"period_seconds": 60, "ingestion_delay_seconds": 0, "alpha": 0.05,
    "canary": {"min_invocations": 100, "min_periods": 3, "warmup_seconds": 0,
               "max_latency_increase_pct": 20, "max_error_rate_increase": 0.01},
    "bake": {"max_error_rate": 0.05}},
  "rollout": {"steps": [{"weight": 5, "hold": "30m"}, {"weight": 25, "hold": "20m"},
                        {"weight": 50, "hold": "40m"}, {"weight": 100}],
              "max_extensions": 1}}"#;

/// `per_minute` requests a minute split by the alias's weights as they stand: version 1 at
/// p50 40 / p99 90 ms, version 2 `slow` times slower from `from_ms` on.
fn split(aliases: Arc<FakeAliases>, slow: f64, from_ms: i64, per_minute: f64) -> TrafficModel {
    Box::new(move |version, period_ms| {
        let a = aliases.get("orders", "live");
        let share = if version == a.version {
            1.0 - a.weights.values().sum::<f64>()
        } else {
            a.weights.get(version).copied()?
        };
        let n = (per_minute * share).round();
        if n < 1.0 {
            return None;
        }
        let factor = if version == "2" && period_ms >= from_ms {
            slow
        } else {
            1.0
        };
        Some(Served::healthy(n, 40.0 * factor, 90.0 * factor))
    })
}

struct World {
    clock: TokioClock,
    store: MemRollouts,
    aliases: Arc<FakeAliases>,
    schedules: FakeSchedules,
    functions: FakeFunctions,
    policies: MemPolicies,
    metrics: FakeMetrics,
    ledger: MemLedger,
    announced: Announced,
    shifts: FakeShifts,
}

impl World {
    fn new(slow: f64, per_minute: f64) -> Self {
        let clock = TokioClock::starting_at(START_MS);
        let aliases = Arc::new(FakeAliases::default());
        aliases.set("orders", "live", "1", BTreeMap::new());
        let metrics = FakeMetrics::new(clock, split(aliases.clone(), slow, START_MS, per_minute));
        World {
            clock,
            store: MemRollouts::default(),
            aliases,
            schedules: FakeSchedules::default(),
            functions: FakeFunctions::answering(vec![Answer::Ok("{}")]),
            policies: MemPolicies {
                documents: BTreeMap::from([("orders".into(), POLICY.into())]),
                ..MemPolicies::default()
            },
            metrics,
            ledger: MemLedger::default(),
            announced: Announced::default(),
            shifts: FakeShifts::default(),
        }
    }

    fn deps(
        &self,
    ) -> Deps<
        '_,
        MemRollouts,
        FakeAliases,
        FakeSchedules,
        FakeFunctions,
        MemPolicies,
        FakeMetrics,
        MemLedger,
        Announced,
        FakeShifts,
    > {
        Deps {
            store: &self.store,
            aliases: &self.aliases,
            schedules: &self.schedules,
            functions: &self.functions,
            policies: &self.policies,
            metrics: &self.metrics,
            ledger: &self.ledger,
            announcer: &self.announced,
            shifts: &self.shifts,
            settings: Settings {
                home: Home::from_parts("", Some("123456789012"), Some("us-east-1")),
                allow: AllowList::parse("*"),
                schedule_target: "arn:aws:lambda:us-east-1:123456789012:function:rollout".into(),
            },
            clock: &self.clock,
        }
    }

    async fn call(&self, payload: Value) -> Value {
        self.deps().handle(&payload).await.unwrap()
    }

    async fn start(&self) -> Value {
        self.call(
            json!({"action": "start", "function": "orders", "version": "2", "requester": "ci"}),
        )
        .await
    }

    /// Wait for the pending schedule and fire it (twice: Scheduler delivers at least once).
    async fn fire(&self) -> Option<Value> {
        let (when, payload) = self.schedules.take()?;
        let wait = (when - self.clock.now_ms()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let out = self.call(payload.clone()).await;
        let again = self.call(payload).await;
        assert!(again["ignored"].is_string(), "a duplicate acted: {again}");
        Some(out)
    }

    /// Fire a shift's pending judgement twice (Scheduler delivers at least once): the
    /// duplicate may judge again, but stops nothing more and plans the same next round.
    async fn fire_shift(&self) -> Option<Value> {
        let (when, payload) = self.schedules.take()?;
        let wait = (when - self.clock.now_ms()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let out = self.call(payload.clone()).await;
        let stops = self.shifts.stops.lock().unwrap().len();
        let again = self.call(payload).await;
        assert_eq!(again.get("next_round"), out.get("next_round"), "{again}");
        assert_eq!(
            self.shifts.stops.lock().unwrap().len(),
            stops,
            "a duplicate stopped again"
        );
        Some(out)
    }

    fn state(&self) -> super::decide::RolloutState {
        self.store.get("orders", "live").unwrap()
    }

    fn alias(&self) -> (String, BTreeMap<String, f64>) {
        let a = self.aliases.get("orders", "live");
        (a.version, a.weights)
    }
}

fn weights(w: &[(&str, f64)]) -> BTreeMap<String, f64> {
    w.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test(start_paused = true)]
async fn a_healthy_release_walks_every_step_to_all_traffic() {
    let w = World::new(1.0, 1000.0);
    let out = w.start().await;
    assert_eq!(out["rollout"]["status"], "running", "{out}");
    assert_eq!(w.alias(), ("1".into(), weights(&[("2", 0.05)])));
    let rec = w.ledger.history("orders", "live").await.unwrap();
    let release = rec.latest_release().unwrap();
    assert_eq!(
        (release.origin, release.status),
        (Origin::Rollout, DeploymentStatus::InProgress)
    );
    let mut seen = vec![w.alias()];
    while let Some(out) = w.fire().await {
        assert!(out["decision"]["checks"].is_array(), "{out}");
        seen.push(w.alias());
    }
    assert_eq!(
        seen,
        [
            ("1".into(), weights(&[("2", 0.05)])),
            ("1".into(), weights(&[("2", 0.25)])),
            ("1".into(), weights(&[("2", 0.5)])),
            ("2".into(), BTreeMap::new()),
        ]
    );
    assert_eq!(w.state().status, Status::Succeeded);
    // 30 + 20 + 40 minutes of holds.
    assert_eq!(w.clock.now_ms() - START_MS, 90 * 60_000);
    let h = w.ledger.history("orders", "live").await.unwrap();
    let done = h.latest_release().unwrap();
    assert_eq!(done.status, DeploymentStatus::Succeeded);
    assert_eq!(done.ended_ms, Some(w.clock.now_ms()));
    // One row per change, and one announcement per decision.
    assert_eq!(w.store.rows().len(), 4);
    assert_eq!(w.announced.all().len(), 4);
    assert_eq!(
        w.functions.calls(),
        0,
        "no smoke tests in the policy: configuration checks only"
    );
}

#[tokio::test(start_paused = true)]
async fn a_latency_regression_is_caught_at_a_step_and_the_old_version_restored() {
    let w = World::new(2.0, 1000.0);
    w.start().await;
    let out = w.fire().await.unwrap();
    assert_eq!(out["rollout"]["status"], "failed", "{out}");
    assert_eq!(w.alias(), ("1".into(), BTreeMap::new()));
    let checks = out["decision"]["checks"].as_array().unwrap();
    let latency = checks
        .iter()
        .find(|c| c["name"] == "canary.latency")
        .unwrap();
    assert_eq!(latency["outcome"], "fail", "{latency}");
    assert!(w.schedules.next().is_none());
    // The step's ledger row keeps the checks it was decided on, with their values, for
    // the report page.
    let step = w.store.rows().into_iter().last().unwrap();
    assert_eq!(
        (step["action"].as_str(), step["verdict"].as_str()),
        (Some("step"), Some("fail"))
    );
    assert_eq!(step["checks"].as_array(), Some(checks), "{step}");
    let h = w.ledger.history("orders", "live").await.unwrap();
    assert_eq!(h.latest_release().unwrap().status, DeploymentStatus::Failed);
}

#[tokio::test(start_paused = true)]
async fn too_little_traffic_holds_the_step_again_then_fails() {
    let w = World::new(1.0, 20.0);
    w.start().await;
    let held = w.fire().await.unwrap();
    assert_eq!(held["rollout"]["status"], "running");
    assert_eq!(held["rollout"]["extensions"], 1);
    assert_eq!(w.alias(), ("1".into(), weights(&[("2", 0.05)])));
    let out = w.fire().await.unwrap();
    assert_eq!(out["rollout"]["status"], "failed", "{out}");
    assert!(
        out["rollout"]["reason"]
            .as_str()
            .unwrap()
            .contains("could not decide")
    );
    assert_eq!(w.alias(), ("1".into(), BTreeMap::new()));
}

#[tokio::test(start_paused = true)]
async fn pause_resume_promote_and_abort() {
    let w = World::new(1.0, 1000.0);
    w.start().await;
    let act = |action: &str| json!({"action": action, "function": "orders", "requester": "alice"});
    let paused = w.call(act("pause")).await;
    assert_eq!(paused["rollout"]["status"], "paused");
    assert!(
        w.schedules.next().is_none(),
        "a paused rollout has no schedule"
    );
    let err = w.deps().handle(&act("pause")).await.unwrap_err();
    assert!(err.message.contains("paused"), "{err}");
    w.call(act("resume")).await;
    assert!(w.schedules.next().is_some());
    let promoted = w.call(act("promote")).await;
    assert_eq!(promoted["rollout"]["status"], "succeeded");
    assert_eq!(w.alias(), ("2".into(), BTreeMap::new()));
    assert!(w.schedules.next().is_none());

    let w = World::new(1.0, 1000.0);
    w.start().await;
    let pending = w.schedules.next().unwrap().1;
    let aborted = w.call(act("abort")).await;
    assert_eq!(aborted["rollout"]["status"], "aborted");
    assert!(
        aborted["rollout"]["reason"]
            .as_str()
            .unwrap()
            .contains("by alice")
    );
    assert_eq!(w.alias(), ("1".into(), BTreeMap::new()));
    // The schedule of before, delivered anyway, changes nothing.
    let late = w.call(pending).await;
    assert!(late["reason"].as_str().unwrap().contains("stale"), "{late}");
    let h = w.ledger.history("orders", "live").await.unwrap();
    assert_eq!(
        h.latest_release().unwrap().status,
        DeploymentStatus::Stopped
    );
}

#[tokio::test(start_paused = true)]
async fn an_alias_moved_by_someone_else_stops_the_rollout_and_is_left_alone() {
    let w = World::new(1.0, 1000.0);
    w.start().await;
    // alarm-rollback (or a person) puts version 1 back alone.
    w.aliases.set("orders", "live", "1", BTreeMap::new());
    let out = w.fire().await.unwrap();
    assert_eq!(out["rollout"]["status"], "interrupted", "{out}");
    assert_eq!(
        w.aliases.updates.lock().unwrap().len(),
        1,
        "only the start moved the alias"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_pre_traffic_gate_never_moves_the_alias_and_a_second_start_is_refused() {
    let mut w = World::new(1.0, 1000.0);
    w.policies.documents.insert(
        "orders".into(),
        r#"{"version": 1, "pre_traffic": {"smoke_tests": [{"name": "ping", "payload": {},
            "expect": {"function_error": "none"}}]}}"#
            .into(),
    );
    w.functions = FakeFunctions::answering(vec![Answer::FunctionError(
        r#"{"errorType": "Boom", "errorMessage": "no"}"#,
    )]);
    let out = w.start().await;
    assert_eq!(out["verdict"], "Failed", "{out}");
    assert_eq!(w.state().status, Status::Failed);
    assert_eq!(w.alias(), ("1".into(), BTreeMap::new()));
    assert!(w.aliases.updates.lock().unwrap().is_empty());

    let w = World::new(1.0, 1000.0);
    w.start().await;
    let err = w
        .deps()
        .handle(&json!({"action": "start", "function": "orders", "version": "3"}))
        .await
        .unwrap_err();
    assert!(err.message.contains("is running"), "{err}");
}

/// A CodeDeploy canary of orders:live, version 1 -> 2, 10 % on the new version, and its
/// START state-change event (the published sample, state changed).
fn canary(w: &World) -> Value {
    w.aliases.set("orders", "live", "1", weights(&[("2", 0.1)]));
    let info = crate::ports::DeploymentInfo {
        deployment_id: "d-EXAMPLE01".into(),
        application: "orders".into(),
        deployment_group: "live".into(),
        status: "InProgress".into(),
        target: crate::appspec::LambdaTarget {
            function_name: "orders".into(),
            function_ref: "orders".into(),
            alias: "live".into(),
            current_version: "1".into(),
            target_version: "2".into(),
            hooks: Vec::new(),
        },
    };
    w.shifts
        .deployments
        .lock()
        .unwrap()
        .insert(info.deployment_id.clone(), info);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/alarm-rollback-codedeploy.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["detail"]["state"] = Value::from("START");
    v
}

#[tokio::test(start_paused = true)]
async fn a_canary_that_regresses_is_stopped_during_its_shift() {
    let w = World::new(2.0, 1000.0);
    let started = w.call(canary(&w)).await;
    assert_eq!(started["watching"], "d-EXAMPLE01", "{started}");
    let out = w.fire_shift().await.unwrap();
    assert_eq!(out["verdict"], "Failed", "{out}");
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("during the traffic shift"),
        "{out}"
    );
    assert_eq!(*w.shifts.stops.lock().unwrap(), ["d-EXAMPLE01"]);
    assert!(
        w.schedules.next().is_none(),
        "a stopped deployment is judged no more"
    );
    let rows = w.store.rows();
    let judged: Vec<&Value> = rows
        .iter()
        .filter(|r| r["sk"].as_str().unwrap().ends_with("#001"))
        .collect();
    assert_eq!(judged.len(), 1, "{rows:?}");
    assert_eq!(judged[0]["verdict"], "fail", "{rows:?}");
    // The row the post-traffic hook reads back: what failed, and how the stop went.
    let row: crate::rollback::ledger::ShiftJudgement =
        serde_json::from_value(judged[0].clone()).unwrap();
    assert!(
        row.failed.iter().any(|c| c.starts_with("canary.")),
        "{row:?}"
    );
    assert_eq!(row.stop.as_deref(), Some("Requested"));
    // ... and every check of the round with its values, as announced.
    let (announced, _) = &w.announced.all()[0];
    assert_eq!(row.checks, announced.checks, "{row:?}");
    assert!(row.checks.iter().all(|c| !c.expected.is_null()), "{row:?}");
    assert_eq!(w.announced.all().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_canary_is_judged_every_round_until_its_deployment_ends() {
    let w = World::new(1.0, 1000.0);
    w.call(canary(&w)).await;
    // Five minutes of a healthy split: judged, and judged again.
    let first = w.fire_shift().await.unwrap();
    assert_eq!(first["next_round"], 2, "{first}");
    w.shifts
        .deployments
        .lock()
        .unwrap()
        .get_mut("d-EXAMPLE01")
        .unwrap()
        .status = "Succeeded".into();
    let last = w.fire_shift().await.unwrap();
    assert_eq!(last["ended"], "d-EXAMPLE01", "{last}");
    assert!(w.schedules.next().is_none());
    assert!(w.shifts.stops.lock().unwrap().is_empty());
    // Other states, and other platforms' deployments, plan nothing.
    let mut success = canary(&w);
    success["detail"]["state"] = Value::from("SUCCESS");
    assert!(w.call(success).await["ignored"].is_string());
}

#[tokio::test(start_paused = true)]
async fn metrics_that_cannot_be_read_stop_no_shift() {
    let w = World::new(2.0, 1000.0);
    w.call(canary(&w)).await;
    w.metrics
        .unavailable
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let out = w.fire_shift().await.unwrap();
    assert_eq!(out["judged"]["verdict"], "unread", "{out}");
    assert!(w.shifts.stops.lock().unwrap().is_empty());
    // Readable again: the regression is caught at the next round.
    w.metrics
        .unavailable
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let out = w.fire_shift().await.unwrap();
    assert_eq!(out["verdict"], "Failed", "{out}");
}
