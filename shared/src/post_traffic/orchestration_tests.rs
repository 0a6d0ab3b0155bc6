//! The post-traffic gate's rounds and continuation, through the hook frame, on in-memory
//! ports and tokio's paused clock: a bake of minutes runs in milliseconds, with every
//! window and hand-off as on AWS.

use super::fakes::{
    FakeContinuation, FakeHttp, FakeMetrics, FakeShiftRecords, Served, TrafficModel,
};
use super::{
    BakeState, CONTINUATION_KEY, Ports, PostTraffic, decide::AlarmState, split_continuation,
};
use crate::clock::{Clock, Instant, TokioClock};
use crate::decision::{Decision, Outcome, Verdict};
use crate::fakes::{FakeDecisionLog, FakeDeployments, FakeNotifier, FakePolicies};
use crate::hook::{self, Hook, HookEvent, Ran};
use crate::report::ReportSlot;
use crate::rollback::ledger::{ShiftJudgement, ShiftVerdict};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The canary window: the deployment started ten minutes before the hook runs.
const CANARY_MS: i64 = 10 * 60_000;
/// Wall-clock time of the hook's first run (a minute boundary, as CodeDeploy's is not,
/// so periods are whole in the arithmetic below).
const HOOK_START_MS: i64 = 1_800_000_000_000;
const MINUTE_MS: i64 = 60_000;

fn event() -> Value {
    json!({"DeploymentId": "d-BAKE00001", "LifecycleEventHookExecutionId": "exec-1"})
}

/// Old and new both healthy: 90/10 during the canary, all traffic on the new after.
fn healthy() -> TrafficModel {
    split_traffic(
        Served::healthy(10.0, 40.0, 90.0),
        Served::healthy(100.0, 40.0, 90.0),
    )
}

/// The new version serves `canary` per minute during the canary window and `bake` per
/// minute after it; the old one 90 healthy invocations per minute during the canary.
fn split_traffic(canary: Served, bake: Served) -> TrafficModel {
    Box::new(move |version, period_ms| {
        let in_canary = period_ms < HOOK_START_MS;
        let started = period_ms >= HOOK_START_MS - CANARY_MS;
        match (version, started, in_canary) {
            (_, false, _) => None,
            ("1", true, true) => Some(Served::healthy(90.0, 40.0, 90.0)),
            ("1", true, false) => None,
            ("2", true, true) => Some(canary.clone()),
            ("2", true, false) => Some(bake.clone()),
            _ => None,
        }
    })
}

struct World {
    clock: TokioClock,
    deployments: FakeDeployments,
    policies: FakePolicies,
    notifier: FakeNotifier,
    decisions: FakeDecisionLog,
    metrics: FakeMetrics,
    continuation: FakeContinuation,
    http: FakeHttp,
    shifts: FakeShiftRecords,
    max_run: Option<Duration>,
}

impl World {
    /// A world whose CloudWatch has no ingestion delay unless the policy sets one.
    fn new(mut policy: Value, traffic: TrafficModel) -> Self {
        if policy.get("ingestion_delay_seconds").is_none() {
            policy["ingestion_delay_seconds"] = json!(0);
        }
        let clock = TokioClock::starting_at(HOOK_START_MS);
        World {
            clock,
            deployments: FakeDeployments::default(),
            policies: FakePolicies(Some(json!({ "post_traffic": policy }).to_string())),
            notifier: FakeNotifier::default(),
            decisions: FakeDecisionLog::default(),
            metrics: FakeMetrics::new(clock, traffic),
            continuation: FakeContinuation::started_at(HOOK_START_MS - CANARY_MS),
            http: FakeHttp::answering(200, Duration::from_millis(30)),
            shifts: FakeShiftRecords::default(),
            max_run: None,
        }
    }

    /// One invocation of the hook with this payload.
    async fn invoke(&self, payload: Value) -> Ran {
        let parsed = HookEvent::from_value(&payload).expect("a hook event");
        let (event, resume) = split_continuation(payload).expect("a readable continuation");
        let ports = Ports {
            metrics: &self.metrics,
            continuation: &self.continuation,
            http: &self.http,
            shifts: &self.shifts,
        };
        let mut gate = PostTraffic::new(ports, event, resume);
        gate.clock = &self.clock;
        gate.max_run = self.max_run;
        let slot = ReportSlot::new();
        let frame = Hook::new(
            super::COMPONENT,
            &self.deployments,
            &self.policies,
            &self.notifier,
            &self.decisions,
            &slot,
        );
        let deadline = Instant::now() + Duration::from_secs(900);
        hook::run_gate(&frame, &gate, parsed, deadline).await
    }

    /// Invoke, then every continuation it hands on, until one decides; the invocations.
    async fn run_to_decision(&self) -> (Decision, u32) {
        let mut payload = event();
        for invocation in 1..=200 {
            match self.invoke(payload).await {
                Ran::Continued { .. } => {
                    payload = self
                        .continuation
                        .handed_off()
                        .last()
                        .cloned()
                        .expect("handed on");
                }
                ran => return (ran.decision(), invocation),
            }
        }
        panic!("no decision after 200 invocations");
    }

    fn minutes_since_start(&self) -> f64 {
        (self.clock.now_ms() - HOOK_START_MS) as f64 / MINUTE_MS as f64
    }
}

fn check<'a>(decision: &'a Decision, name: &str) -> &'a crate::decision::CheckResult {
    decision
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {:#?}", decision.checks))
}

fn rounds(decision: &Decision) -> u64 {
    check(decision, "bake.evidence").actual["rounds"]
        .as_u64()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_healthy_release_is_watched_for_the_whole_bake_then_passes_and_is_reported_once() {
    let w = World::new(json!({"bake_minutes": 5, "poll_seconds": 60}), healthy());
    let (decision, invocations) = w.run_to_decision().await;
    assert_eq!(
        decision.verdict,
        Verdict::Succeeded,
        "{:#?}",
        decision.checks
    );
    assert_eq!(invocations, 1);
    // A round at the start and one a minute after, up to the bake's end.
    assert_eq!(rounds(&decision), 6);
    assert!((w.minutes_since_start() - 5.0).abs() < 0.01);
    // 90 new requests without errors cannot show a rate within 0.05%: the canary's error
    // judgement is inconclusive, and on_no_data (pass) decides it at the end.
    assert_eq!(
        check(&decision, "canary.error_rate").outcome,
        Outcome::Inconclusive
    );
    assert_eq!(check(&decision, "canary.latency").outcome, Outcome::Pass);
    let traffic = check(&decision, "bake.traffic");
    assert_eq!(traffic.outcome, Outcome::Pass);
    assert!(
        traffic
            .detail
            .as_deref()
            .unwrap()
            .contains("canary.error_rate")
    );
    assert_eq!(w.deployments.reports().len(), 1);
    assert_eq!(w.notifier.0.lock().unwrap().len(), 1);
    // Every read starts at the deployment's start, on a period boundary.
    let start_s = (HOOK_START_MS - CANARY_MS) / 1000;
    assert!(
        w.metrics
            .reads
            .lock()
            .unwrap()
            .iter()
            .all(|(s, _)| *s == start_s)
    );
}

#[tokio::test(start_paused = true)]
async fn errors_in_the_bake_fail_at_the_first_round_that_sees_them_not_at_the_bake_end() {
    let bake = Served::healthy(100.0, 40.0, 90.0).with_errors(30.0);
    let traffic = split_traffic(Served::healthy(10.0, 40.0, 90.0), bake);
    let w = World::new(json!({"bake_minutes": 30, "poll_seconds": 60}), traffic);
    // The first round has no complete bake period yet; the next one has a minute.
    let (decision, _) = w.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Failed);
    assert_eq!(check(&decision, "bake.error_rate").outcome, Outcome::Fail);
    assert!(w.minutes_since_start() < 3.0, "{}", w.minutes_since_start());
    assert_eq!(w.deployments.reports()[0].2, Verdict::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_canary_regression_fails_the_first_round() {
    let canary = Served::healthy(10.0, 40.0, 90.0).with_errors(5.0);
    let traffic = split_traffic(canary, Served::healthy(100.0, 40.0, 90.0));
    let w = World::new(json!({"bake_minutes": 30}), traffic);
    let (decision, _) = w.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Failed);
    assert_eq!(check(&decision, "canary.error_rate").outcome, Outcome::Fail);
    assert_eq!(rounds(&decision), 1);
    // The round's read, and the canary's latency bins (trimmed counts).
    assert_eq!(w.metrics.reads(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_bake_longer_than_one_invocation_continues_itself_and_only_the_last_reports() {
    let mut w = World::new(json!({"bake_minutes": 10, "poll_seconds": 60}), healthy());
    w.max_run = Some(Duration::from_secs(150));
    let (decision, invocations) = w.run_to_decision().await;
    assert_eq!(
        decision.verdict,
        Verdict::Succeeded,
        "{:#?}",
        decision.checks
    );
    assert!(invocations >= 4, "{invocations} invocations");
    assert_eq!(
        rounds(&decision),
        11,
        "no round lost or repeated across hand-offs"
    );
    assert_eq!(
        check(&decision, "bake.evidence").actual["invocations_of_hook"],
        json!(invocations)
    );
    assert_eq!(
        w.deployments.reports().len(),
        1,
        "only the deciding run reports"
    );
    assert_eq!(w.notifier.0.lock().unwrap().len(), 1);
    // And only it keeps the decision, with every round's evidence.
    let kept = w.decisions.kept();
    assert_eq!(kept.len(), 1, "hand-offs keep nothing");
    assert_eq!(rounds(&kept[0].0), 11);
    // Each hand-off carries the original event and the state so far.
    let handed = w.continuation.handed_off();
    assert_eq!(handed.len() as u32, invocations - 1);
    for (i, payload) in handed.iter().enumerate() {
        assert_eq!(payload["DeploymentId"], "d-BAKE00001");
        let state: BakeState = serde_json::from_value(payload[CONTINUATION_KEY].clone()).unwrap();
        assert_eq!(state.hop as usize, i + 1);
        assert_eq!(state.bake_start_ms, HOOK_START_MS);
        assert!(state.next_round_ms.is_some());
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_continuation_fails_closed_and_reports() {
    let mut w = World::new(json!({"bake_minutes": 10}), healthy());
    w.max_run = Some(Duration::from_secs(90));
    w.continuation.refuse.store(true, Ordering::SeqCst);
    let ran = w.invoke(event()).await;
    let decision = ran.decision();
    assert_eq!(decision.verdict, Verdict::Failed);
    assert_eq!(check(&decision, "continuation").outcome, Outcome::Fail);
    assert_eq!(w.deployments.reports().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn unreadable_metrics_fail_closed() {
    let w = World::new(json!({}), healthy());
    w.metrics.unavailable.store(true, Ordering::SeqCst);
    let (decision, _) = w.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Failed);
    assert_eq!(check(&decision, "metrics").outcome, Outcome::Fail);
}

#[tokio::test(start_paused = true)]
async fn an_idle_function_follows_on_no_data() {
    let idle: fn() -> TrafficModel = || Box::new(|_, _| None);
    let passes = World::new(json!({"bake_minutes": 2}), idle());
    let (decision, _) = passes.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Succeeded);
    assert!(
        check(&decision, "bake.traffic")
            .detail
            .as_deref()
            .unwrap()
            .contains("on_no_data")
    );

    let fails = World::new(json!({"bake_minutes": 2, "on_no_data": "fail"}), idle());
    let (decision, _) = fails.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Failed);

    let extends = World::new(
        json!({"bake_minutes": 2, "on_no_data": "extend", "max_extend_minutes": 3}),
        idle(),
    );
    let (decision, _) = extends.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Failed);
    assert!(extends.minutes_since_start() >= 5.0, "extended by the cap");
}

#[tokio::test(start_paused = true)]
async fn an_alarm_in_alarm_fails_and_an_ended_deployment_is_not_baked() {
    let w = World::new(json!({"alarms": ["orders-5xx"]}), healthy());
    w.metrics.alarms.lock().unwrap().push(AlarmState {
        name: "orders-5xx".into(),
        state: "ALARM".into(),
        reason: Some("Threshold Crossed".into()),
    });
    let (decision, _) = w.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Failed);
    assert!(
        decision
            .failed_checks()
            .any(|c| c.name.contains("orders-5xx"))
    );

    let mut ended = World::new(json!({}), healthy());
    ended.deployments.status = Some("Stopped".into());
    let (decision, _) = ended.run_to_decision().await;
    assert_eq!(check(&decision, "deployment.status").outcome, Outcome::Fail);
    assert_eq!(
        ended.metrics.reads(),
        0,
        "nothing read for a deployment that ended"
    );
}

#[tokio::test(start_paused = true)]
async fn failing_probes_fail_the_bake() {
    let mut w = World::new(
        json!({"bake_minutes": 3, "probes": [{"name": "home", "url": "https://example.com/", "count": 2}]}),
        healthy(),
    );
    w.http = FakeHttp::answering(503, Duration::from_millis(10));
    let (decision, _) = w.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Failed);
    assert_eq!(check(&decision, "probe[home]").outcome, Outcome::Fail);
    assert_eq!(
        w.http.sent.load(Ordering::SeqCst),
        2,
        "stopped at the first failed round"
    );
}

fn shift_round(round: u32, verdict: ShiftVerdict) -> ShiftJudgement {
    ShiftJudgement {
        verdict: Some(verdict),
        ..ShiftJudgement::new(HOOK_START_MS - CANARY_MS / 2, round, Some(0.1))
    }
}

#[tokio::test(start_paused = true)]
async fn a_shift_the_judge_failed_fails_at_once_without_a_metrics_read() {
    let w = World::new(json!({"bake_minutes": 30}), healthy());
    let mut failed = shift_round(2, ShiftVerdict::Fail);
    failed.failed = vec!["canary.latency".into()];
    failed.stop = Some("failed: throttled".into());
    *w.shifts.rounds.lock().unwrap() = vec![shift_round(1, ShiftVerdict::Pass), failed];
    let (decision, invocations) = w.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Failed);
    let shift = check(&decision, "shift.judgements");
    assert_eq!(shift.outcome, Outcome::Fail);
    assert!(shift.detail.as_deref().unwrap().contains("canary.latency"));
    assert_eq!((invocations, w.metrics.reads()), (1, 0));
    assert_eq!(w.minutes_since_start(), 0.0, "no bake waited for");
    assert_eq!(w.deployments.reports()[0].2, Verdict::Failed);
}

#[tokio::test(start_paused = true)]
async fn the_shifts_judgements_are_read_once_and_carried_to_the_decision() {
    let mut w = World::new(json!({"bake_minutes": 10, "poll_seconds": 60}), healthy());
    w.max_run = Some(Duration::from_secs(150));
    *w.shifts.rounds.lock().unwrap() = vec![
        shift_round(1, ShiftVerdict::Inconclusive),
        shift_round(2, ShiftVerdict::Pass),
    ];
    let (decision, invocations) = w.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Succeeded);
    assert!(invocations > 1);
    let shift = check(&decision, "shift.judgements");
    assert_eq!(shift.outcome, Outcome::Pass);
    assert_eq!(shift.actual["rounds"], 2);
    assert_eq!(
        w.shifts.reads.load(Ordering::SeqCst),
        1,
        "read by the first run only"
    );
}

#[tokio::test(start_paused = true)]
async fn a_ledger_that_cannot_be_read_leaves_the_judgement_to_the_hook() {
    let w = World::new(json!({"bake_minutes": 2}), healthy());
    w.shifts.broken.store(true, Ordering::SeqCst);
    let (decision, _) = w.run_to_decision().await;
    assert_eq!(decision.verdict, Verdict::Succeeded);
    let shift = check(&decision, "shift.judgements");
    assert_eq!(shift.outcome, Outcome::Inconclusive);
    assert!(
        shift
            .detail
            .as_deref()
            .unwrap()
            .contains("could not be read")
    );
    assert_eq!(check(&decision, "canary.latency").outcome, Outcome::Pass);

    // No rounds at all (a shift not judged): no check.
    let w = World::new(json!({"bake_minutes": 2}), healthy());
    let (decision, _) = w.run_to_decision().await;
    assert!(!decision.checks.iter().any(|c| c.name == "shift.judgements"));
}
