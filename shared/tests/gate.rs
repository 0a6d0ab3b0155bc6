//! The hook frame and the pre-traffic gate on in-memory ports: every verdict, the
//! exactly-once report, the budget and the deadline.

use rollgate::clock::Instant;
use rollgate::decision::{Decision, Outcome, Verdict};
use rollgate::fakes::*;
use rollgate::hook::{self, Hook, HookEvent};
use rollgate::pre_traffic::PreTraffic;
use rollgate::report::ReportSlot;
use serde_json::json;
use std::time::Duration;

fn event() -> HookEvent {
    HookEvent {
        deployment_id: "d-TEST00001".into(),
        execution_id: "exec-1".into(),
    }
}

struct World {
    deployments: FakeDeployments,
    functions: FakeFunctions,
    policies: FakePolicies,
    notifier: FakeNotifier,
    decisions: FakeDecisionLog,
    slot: ReportSlot,
}

impl World {
    fn new(functions: FakeFunctions, policy: Option<serde_json::Value>) -> Self {
        Self {
            deployments: FakeDeployments::default(),
            functions,
            policies: FakePolicies(policy.map(|p| p.to_string())),
            notifier: FakeNotifier::default(),
            decisions: FakeDecisionLog::default(),
            slot: ReportSlot::new(),
        }
    }

    fn frame(&self) -> Hook<'_, FakeDeployments, FakePolicies, FakeNotifier, FakeDecisionLog> {
        Hook {
            component: "pre-traffic-hook",
            deployments: &self.deployments,
            policies: &self.policies,
            notifier: &self.notifier,
            decisions: &self.decisions,
            slot: &self.slot,
        }
    }

    fn gate(&self) -> PreTraffic<'_, FakeFunctions> {
        PreTraffic {
            functions: &self.functions,
        }
    }

    async fn run_until(&self, deadline: Instant) -> Decision {
        hook::run_gate(&self.frame(), &self.gate(), event(), deadline)
            .await
            .decision()
    }

    /// How the invocation ended (`run_gate`), reported or not.
    async fn run_gate(&self) -> hook::Ran {
        let deadline = Instant::now() + Duration::from_secs(30);
        hook::run_gate(&self.frame(), &self.gate(), event(), deadline).await
    }

    async fn run(&self) -> Decision {
        self.run_until(Instant::now() + Duration::from_secs(30))
            .await
    }

    fn reported(&self) -> Vec<Verdict> {
        self.deployments
            .reports()
            .into_iter()
            .map(|(_, _, v)| v)
            .collect()
    }

    fn announced(&self) -> Vec<Decision> {
        self.notifier.0.lock().unwrap().clone()
    }
}

fn smoke_policy(n: usize) -> serde_json::Value {
    let tests: Vec<_> = (0..n)
        .map(|i| json!({"name": format!("t{i}"), "payload": {"i": i}, "expect": {"json_subset": {"status": "ok"}}}))
        .collect();
    json!({"version": 1, "pre_traffic": {"budget_seconds": 10, "smoke_tests": tests}})
}

fn failed_names(d: &Decision) -> Vec<&str> {
    d.failed_checks().map(|c| c.name.as_str()).collect()
}

#[tokio::test]
async fn healthy_release_succeeds_reports_once_and_explains() {
    let w = World::new(
        FakeFunctions::answering(vec![Answer::Ok(r#"{"status":"ok"}"#)]),
        Some(smoke_policy(3)),
    );
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Succeeded, "{d:#?}");
    assert_eq!(w.reported(), vec![Verdict::Succeeded]);
    assert_eq!(w.announced(), vec![d.clone()]);
    assert_eq!(w.functions.calls(), 3);
    // Always the version number, never the alias.
    assert!(
        w.functions
            .qualifiers
            .lock()
            .unwrap()
            .iter()
            .all(|q| q == "2")
    );
    assert_eq!(d.function_name.as_deref(), Some("orders"));
    assert_eq!(d.target_version.as_deref(), Some("2"));
    assert_eq!(
        d.policy_source.as_deref(),
        Some("ssm:/rollgate/policies/orders")
    );
    for i in 0..3 {
        assert!(
            d.checks
                .iter()
                .any(|c| c.name == format!("smoke[t{i}].json_subset"))
        );
    }
    assert!(d.reason.starts_with("all "), "{}", d.reason);
}

#[tokio::test]
async fn the_decision_is_kept_once_as_logged_after_the_report() {
    let w = World::new(
        FakeFunctions::answering(vec![Answer::Ok(r#"{"status":"down","token":"sk-1"}"#)]),
        Some(smoke_policy(1)),
    );
    let d = w.run().await;
    let kept = w.decisions.kept();
    assert_eq!(kept.len(), 1, "{kept:#?}");
    let (stored, at_ms) = &kept[0];
    assert!(*at_ms > 1_700_000_000_000, "{at_ms}");
    assert_eq!(stored.verdict, Verdict::Failed);
    assert_eq!(stored.checks.len(), d.checks.len());
    assert_eq!(stored.checks[0].expected, d.checks[0].expected);
    // The smoke test's response stays in the SNS decision, and the ledger says so.
    let text = serde_json::to_string(stored).unwrap();
    assert!(!text.contains("sk-1"), "{text}");
    assert!(serde_json::to_string(&d).unwrap().contains("sk-1"));
    assert_eq!(*stored, hook::kept_view(&d));
    let subset = stored
        .checks
        .iter()
        .find(|c| c.name.ends_with(".json_subset"));
    assert_eq!(subset.unwrap().actual, json!(hook::NOT_KEPT));
}

#[tokio::test]
async fn a_ledger_that_refuses_the_decision_changes_neither_verdict_nor_report() {
    let mut w = World::new(
        FakeFunctions::answering(vec![Answer::Ok(r#"{"status":"ok"}"#)]),
        Some(smoke_policy(2)),
    );
    w.decisions.denied = true;
    let ran = w.run_gate().await;
    assert!(matches!(ran, hook::Ran::Decided(_)), "{ran:?}");
    assert_eq!(ran.decision().verdict, Verdict::Succeeded);
    assert_eq!(w.reported(), vec![Verdict::Succeeded]);
    assert_eq!(w.announced().len(), 1);
    assert!(w.decisions.kept().is_empty());
}

#[tokio::test]
async fn a_deployment_that_cannot_be_read_is_reported_but_has_no_partition_to_keep() {
    let mut w = World::new(FakeFunctions::answering(vec![]), None);
    w.deployments.missing = true;
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Failed);
    assert_eq!(w.reported(), vec![Verdict::Failed]);
    assert!(w.decisions.kept().is_empty());
}

#[tokio::test]
async fn a_failing_smoke_test_fails_the_gate_with_evidence() {
    let w = World::new(
        FakeFunctions::answering(vec![Answer::FunctionError(
            r#"{"errorType":"Boom","errorMessage":"no"}"#,
        )]),
        Some(smoke_policy(1)),
    );
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Failed);
    assert_eq!(w.reported(), vec![Verdict::Failed]);
    assert!(
        failed_names(&d).contains(&"smoke[t0].function_error"),
        "{d:#?}"
    );
    assert!(
        d.reason.contains("smoke[t0].function_error"),
        "{}",
        d.reason
    );
}

#[tokio::test]
async fn an_invalid_policy_fails_naming_the_field_and_invokes_nothing() {
    let w = World::new(
        FakeFunctions::answering(vec![Answer::Ok("{}")]),
        Some(json!({"version": 1, "pre_traffic": {"concurrency": 0}})),
    );
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Failed);
    assert!(d.reason.contains("pre_traffic.concurrency"), "{}", d.reason);
    assert_eq!(failed_names(&d), vec!["policy"]);
    assert_eq!(w.functions.calls(), 0);
    assert_eq!(w.reported(), vec![Verdict::Failed]);
}

#[tokio::test]
async fn no_policy_means_configuration_checks_only() {
    let w = World::new(FakeFunctions::answering(vec![Answer::Ok("{}")]), None);
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Succeeded);
    let names: Vec<_> = d.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["config.state", "config.last_update_status"]);
    assert_eq!(w.functions.calls(), 0);
    assert!(d.policy_source.unwrap().starts_with("default"));
}

#[tokio::test]
async fn a_version_that_is_not_active_is_never_invoked() {
    let mut functions = FakeFunctions::answering(vec![Answer::Ok(r#"{"status":"ok"}"#)]);
    functions.snapshot.state = Some("Pending".into());
    let w = World::new(functions, Some(smoke_policy(2)));
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Failed);
    assert_eq!(failed_names(&d), vec!["config.state"]);
    assert_eq!(w.functions.calls(), 0);
}

#[tokio::test]
async fn unknown_deployment_and_missing_function_fail_clearly() {
    let mut w = World::new(FakeFunctions::answering(vec![Answer::Ok("{}")]), None);
    w.deployments.missing = true;
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Failed);
    assert!(d.reason.contains("d-TEST00001"), "{}", d.reason);
    assert_eq!(failed_names(&d), vec!["deployment"]);
    assert_eq!(w.reported(), vec![Verdict::Failed]);

    let mut functions = FakeFunctions::answering(vec![Answer::Ok("{}")]);
    functions.missing = true;
    let w = World::new(functions, Some(smoke_policy(1)));
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Failed);
    assert_eq!(failed_names(&d), vec!["function"]);
    assert!(d.checks[0].detail.as_deref().unwrap().contains("orders:2"));
    assert_eq!(w.functions.calls(), 0);
}

#[tokio::test]
async fn transient_invoke_errors_are_retried_and_counted() {
    let w = World::new(
        FakeFunctions::answering(vec![
            Answer::Fail(throttled),
            Answer::Fail(throttled),
            Answer::Ok(r#"{"status":"ok"}"#),
        ]),
        Some(json!({"pre_traffic": {"smoke_tests": [
            {"name": "t", "retries": 2, "expect": {"json_subset": {"status": "ok"}}}]}})),
    );
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Succeeded, "{d:#?}");
    assert_eq!(w.functions.calls(), 3);
    let fe = d
        .checks
        .iter()
        .find(|c| c.name == "smoke[t].function_error")
        .unwrap();
    assert_eq!(fe.actual["attempts"], 3, "{fe:#?}");
}

#[tokio::test]
async fn retries_stop_at_the_policy_limit() {
    let w = World::new(
        FakeFunctions::answering(vec![Answer::Fail(throttled)]),
        Some(json!({"pre_traffic": {"smoke_tests": [{"name": "t", "retries": 1}]}})),
    );
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Failed);
    assert_eq!(w.functions.calls(), 2);
    assert_eq!(failed_names(&d), vec!["smoke[t].invoke"]);
}

#[tokio::test]
async fn smoke_tests_run_concurrently_within_the_bound() {
    let mut functions = FakeFunctions::answering(vec![Answer::Ok(r#"{"status":"ok"}"#)]);
    functions.delay = Duration::from_millis(200);
    let mut policy = smoke_policy(8);
    policy["pre_traffic"]["concurrency"] = json!(4);
    let w = World::new(functions, Some(policy));
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Succeeded);
    // 8 tests of 200 ms each: exactly 4 were ever in flight together.
    assert_eq!(
        w.functions
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        4
    );
    assert_eq!(w.functions.calls(), 8);
}

#[tokio::test]
async fn checks_that_outrun_the_budget_fail_closed_in_time() {
    let mut functions = FakeFunctions::answering(vec![Answer::Ok(r#"{"status":"ok"}"#)]);
    functions.delay = Duration::from_secs(30);
    let w = World::new(
        functions,
        Some(json!({"pre_traffic": {"budget_seconds": 1, "smoke_tests": [{"name": "slow"}]}})),
    );
    let started = Instant::now();
    let d = w.run().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(d.verdict, Verdict::Failed);
    assert_eq!(w.reported(), vec![Verdict::Failed]);
    let text = serde_json::to_string(&d.checks).unwrap();
    assert!(text.contains("budget"), "{text}");
}

#[tokio::test]
async fn the_lambda_deadline_bounds_everything_even_discovery() {
    let mut w = World::new(FakeFunctions::answering(vec![Answer::Ok("{}")]), None);
    w.deployments.lookup_delay = Duration::from_secs(60);
    let started = Instant::now();
    let deadline = started + Duration::from_millis(300);
    let d = w.run_until(deadline).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(d.verdict, Verdict::Failed);
    assert_eq!(failed_names(&d), vec!["budget"]);
    assert_eq!(w.reported(), vec![Verdict::Failed]);
}

#[tokio::test]
async fn transient_report_errors_are_retried_once_accepted_is_final() {
    let w = World::new(FakeFunctions::answering(vec![Answer::Ok("{}")]), None);
    w.deployments
        .report_errors
        .lock()
        .unwrap()
        .push_back(throttled());
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Succeeded);
    assert_eq!(w.reported(), vec![Verdict::Succeeded]);
    // A second run of the same execution (say, an async retry) finds it reported.
    let again = w.run().await;
    assert_eq!(again.verdict, Verdict::Succeeded);
    assert_eq!(w.reported(), vec![Verdict::Succeeded]);
}

#[tokio::test]
async fn a_report_that_never_lands_fails_the_invocation_for_a_retry() {
    let w = World::new(FakeFunctions::answering(vec![Answer::Ok("{}")]), None);
    w.deployments
        .report_errors
        .lock()
        .unwrap()
        .extend((0..10).map(|_| throttled()));
    let ran = w.run_gate().await;
    let err = ran.into_result().unwrap_err();
    assert_eq!(err.class.as_str(), "ReportFailed");
    assert!(
        err.message.contains("reporting to CodeDeploy failed"),
        "{err}"
    );
    assert!(err.message.contains("d-TEST00001"), "{err}");
    assert!(w.reported().is_empty());
    // The decision was still explained once.
    assert_eq!(w.notifier.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_report_refused_for_good_does_not_ask_for_a_retry() {
    // CodeDeploy answers "no such deployment": Lambda's retry would get the same answer.
    let w = World::new(FakeFunctions::answering(vec![Answer::Ok("{}")]), None);
    w.deployments
        .report_errors
        .lock()
        .unwrap()
        .push_back(rollgate::error::Error::Aws {
            service: "codedeploy",
            operation: "PutLifecycleEventHookExecutionStatus",
            code: Some("DeploymentDoesNotExistException".into()),
            message: "no such deployment".into(),
            retryable: false,
        });
    let ran = w.run_gate().await;
    assert!(matches!(ran, hook::Ran::Decided(_)), "{ran:?}");
    assert!(ran.into_result().is_ok());
    assert!(w.reported().is_empty());
    assert_eq!(w.notifier.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn inconclusive_evidence_fails_closed() {
    let mut functions = FakeFunctions::answering(vec![Answer::Ok("{}")]);
    functions.snapshot.last_update_status = None;
    let w = World::new(functions, None);
    let d = w.run().await;
    assert_eq!(d.verdict, Verdict::Failed);
    let c = d
        .checks
        .iter()
        .find(|c| c.name == "config.last_update_status")
        .unwrap();
    assert_eq!(c.outcome, Outcome::Inconclusive);
}

#[test]
fn hook_events_are_parsed_strictly() {
    let ok = HookEvent::from_value(
        &json!({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "e"}),
    )
    .unwrap();
    assert_eq!(ok.deployment_id, "d-1");
    let cases = [
        (json!([]), "JSON object"),
        (
            json!({"LifecycleEventHookExecutionId": "e"}),
            "DeploymentId is missing",
        ),
        (
            json!({"DeploymentId": "d", "LifecycleEventHookExecutionId": 7}),
            "must be a string",
        ),
        (
            json!({"DeploymentId": " ", "LifecycleEventHookExecutionId": "e"}),
            "DeploymentId is empty",
        ),
    ];
    for (value, expected) in cases {
        let err = HookEvent::from_value(&value).unwrap_err().to_string();
        assert!(err.contains(expected), "{value}: {err}");
    }
}

/// CodeDeploy's model puts no length or pattern on the ids, and a real execution id is a
/// base64 token of 300 characters (events/pre-traffic-hook.json rebuilds the one published
/// in aws-lambda-rust-runtime's lambda-events fixtures): both are taken as they are.
#[test]
fn hook_events_take_ids_as_codedeploy_makes_them() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    for file in ["pre-traffic-hook.json", "post-traffic-hook.json"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let event = HookEvent::from_value(&value).unwrap();
        assert_eq!(event.execution_id.len(), 300, "{file}");
        assert!(event.execution_id.len() > 256);
    }
    for id in [
        "x".repeat(300),
        "x".repeat(1 << 20),
        "d\u{0}x\ny".to_owned(),
    ] {
        let value = json!({"DeploymentId": id, "LifecycleEventHookExecutionId": id});
        let event = HookEvent::from_value(&value).unwrap();
        assert_eq!((event.deployment_id, event.execution_id), (id.clone(), id));
    }
}

#[test]
fn the_hard_deadline_keeps_the_margin_and_tolerates_a_missing_deadline() {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let margin = Duration::from_secs(3);
    let d = hook::hard_deadline(now_ms + 10_000, margin, Duration::from_secs(900));
    let left = d.saturating_duration_since(Instant::now());
    assert!(
        left > Duration::from_millis(6_500) && left <= Duration::from_secs(7),
        "{left:?}"
    );
    let fallback = hook::hard_deadline(0, margin, Duration::from_secs(60));
    let left = fallback.saturating_duration_since(Instant::now());
    assert!(
        left > Duration::from_secs(56) && left <= Duration::from_secs(57),
        "{left:?}"
    );
}
