//! The CodeDeploy lifecycle-hook frame shared by the pre- and post-traffic hooks:
//! parse the event, find the deployment, load the policy, evaluate within a budget,
//! report `Succeeded`/`Failed` exactly once before the deadline (fail closed), then
//! explain the decision in the log, on SNS and in EMF metrics.

use crate::clock::{Instant, backoff, epoch_ms};
use crate::decision::{CheckResult, Decision, Outcome, Verdict};
use crate::error::Error;
use crate::failure::{Class, Failure};
use crate::metrics::Emf;
use crate::policy::Policy;
use crate::ports::{
    DecisionLog, DeploymentInfo, Deployments, Notifier, PolicyStore, ReportOutcome,
};
use crate::report::{HookExecution, ReportSlot};
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;
use tokio::time::timeout_at;

/// Time kept back from the Lambda deadline for reporting and announcing.
pub use crate::config::DEFAULT_REPORT_MARGIN;

/// The event CodeDeploy sends a lifecycle hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEvent {
    pub deployment_id: String,
    pub execution_id: String,
}

impl HookEvent {
    /// Parse `{"DeploymentId": "...", "LifecycleEventHookExecutionId": "..."}`; the error
    /// names the missing or malformed field.
    ///
    /// CodeDeploy's model puts no length or pattern on either id (shapes `DeploymentId`
    /// and `LifecycleEventHookExecutionId` are plain strings), and real execution ids are
    /// base64 tokens of about 300 characters: any non-blank string is taken as it is and
    /// handed to CodeDeploy, which is the one to say whether it exists. Logs are JSON and
    /// SNS messages are fitted to SNS's limits, so an odd id can neither inject a log line
    /// nor break a message.
    pub fn from_value(v: &Value) -> Result<Self, Error> {
        let obj = v.as_object().ok_or_else(|| {
            Error::InvalidEvent(format!("expected a JSON object, got {}", kind(v)))
        })?;
        let field = |name: &str| -> Result<String, Error> {
            match obj.get(name) {
                None | Some(Value::Null) => {
                    Err(Error::InvalidEvent(format!("field {name} is missing")))
                }
                Some(Value::String(s)) if s.trim().is_empty() => {
                    Err(Error::InvalidEvent(format!("field {name} is empty")))
                }
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(Error::InvalidEvent(format!(
                    "field {name} must be a string, got {}",
                    kind(other)
                ))),
            }
        };
        Ok(Self {
            deployment_id: field("DeploymentId")?,
            execution_id: field("LifecycleEventHookExecutionId")?,
        })
    }
}

/// "a string", "an array", ...: what a JSON value is, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The time a gate may spend: its start, and when checks must stop.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub started: Instant,
    pub deadline: Instant,
}

impl Budget {
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Convert Lambda's deadline (epoch milliseconds) into an `Instant`, keeping `margin`
/// back for the report. A deadline that is absent or already past (local runtimes
/// sometimes send none) falls back to `fallback` from now.
pub fn hard_deadline(deadline_epoch_ms: u64, margin: Duration, fallback: Duration) -> Instant {
    let now = Instant::now();
    let now_ms = epoch_ms().max(0) as u64;
    let left = if deadline_epoch_ms > now_ms {
        Duration::from_millis(deadline_epoch_ms - now_ms)
    } else {
        fallback
    };
    now + left.saturating_sub(margin)
}

/// When a hook run must have decided: Lambda's deadline less `margin` (900 s from now
/// when the runtime gives none), and no later than `max_run` from now when set.
pub fn run_deadline(
    deadline_epoch_ms: u64,
    margin: Duration,
    max_run: Option<Duration>,
) -> Instant {
    let hard = hard_deadline(deadline_epoch_ms, margin, Duration::from_secs(900));
    match max_run {
        Some(cap) => hard.min(Instant::now() + cap),
        None => hard,
    }
}

/// A gate's own checks, run inside the frame.
pub trait Evaluator: Send + Sync {
    /// Push checks into `checks` as they complete: on a budget overrun the frame keeps
    /// what was pushed and adds a failed `budget` check. `Some(why)` when the gate handed
    /// the rest of its work to a later invocation that will decide and report instead
    /// (the post-traffic bake continuing itself): the frame then neither reports nor
    /// announces.
    fn evaluate(
        &self,
        info: &DeploymentInfo,
        policy: &Policy,
        budget: Budget,
        checks: &mut Vec<CheckResult>,
    ) -> impl Future<Output = Option<String>> + Send;

    /// The policy's overall budget for this gate.
    fn budget(&self, policy: &Policy) -> Duration;

    /// The verdict these checks earn. Default: every check must pass (an inconclusive
    /// check fails closed). The post-traffic hook decides lack of data in one check of
    /// its own, so there only a failed check fails.
    fn verdict(&self, checks: &[CheckResult]) -> Verdict {
        Verdict::from_checks(checks)
    }
}

/// How one invocation of the frame ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ran {
    /// Reported to CodeDeploy and explained.
    Decided(Decision),
    /// Handed off: nothing reported or announced here. The decision holds the evidence
    /// gathered so far; its verdict is not one.
    Continued { reason: String, so_far: Decision },
    /// Decided and explained, but CodeDeploy never took the report (after retries, or
    /// the deadline came first). The handler should fail the invocation so that
    /// Lambda's asynchronous retry runs the hook again and reports; a report that did
    /// land after all is then answered "already completed".
    Unreported { decision: Decision, error: String },
}

/// Everything the frame talks to.
pub struct Hook<'a, D, P, N, K> {
    pub component: &'static str,
    pub deployments: &'a D,
    pub policies: &'a P,
    pub notifier: &'a N,
    /// Where the decision is kept for the people on call (the ledger).
    pub decisions: &'a K,
    pub slot: &'a ReportSlot,
}

impl<'a, D, P, N, K> Hook<'a, D, P, N, K> {
    pub fn new(
        component: &'static str,
        deployments: &'a D,
        policies: &'a P,
        notifier: &'a N,
        decisions: &'a K,
        slot: &'a ReportSlot,
    ) -> Self {
        Hook {
            component,
            deployments,
            policies,
            notifier,
            decisions,
            slot,
        }
    }
}

/// Run one hook invocation to its verdict. Never fails: every error becomes a `Failed`
/// decision with its reason, reported to CodeDeploy once. A gate may hand its work to a
/// later invocation: then nothing is reported (the later invocation reports, exactly
/// once) and the hand-off is logged.
pub async fn run_gate<D, P, N, K, E>(
    hook: &Hook<'_, D, P, N, K>,
    gate: &E,
    event: HookEvent,
    hard_deadline: Instant,
) -> Ran
where
    D: Deployments,
    P: PolicyStore,
    N: Notifier,
    K: DecisionLog,
    E: Evaluator,
{
    let started = Instant::now();
    hook.slot.arm(HookExecution {
        deployment_id: event.deployment_id.clone(),
        execution_id: event.execution_id.clone(),
    });
    let mut decision = Decision {
        component: hook.component.to_owned(),
        verdict: Verdict::Failed,
        reason: String::new(),
        deployment_id: Some(event.deployment_id.clone()),
        function_name: None,
        alias: None,
        current_version: None,
        target_version: None,
        policy_source: None,
        checks: Vec::new(),
        duration_ms: 0,
    };

    let outcome = timeout_at(
        hard_deadline,
        evaluate(hook, gate, &event, hard_deadline, &mut decision),
    )
    .await;
    let continued = conclude(gate, outcome.ok(), started, &mut decision);
    decision.duration_ms = started.elapsed().as_millis() as u64;

    if let Some(reason) = continued {
        // The successor owns the report now: a panic here must not report for it.
        hook.slot.claim();
        decision.reason = reason.clone();
        tracing::info!(
            decision = %log_record(&decision),
            "{reason}"
        );
        return Ran::Continued {
            reason,
            so_far: decision,
        };
    }
    let report = report(hook, hard_deadline, decision.verdict).await;
    explain(hook, &decision, &report).await;
    match report {
        // Only a transient failure is worth Lambda's retry: CodeDeploy refusing the
        // execution for good (unknown deployment or execution id) would refuse it again.
        Reported::Failed {
            attempts,
            error,
            retryable: true,
        } => Ran::Unreported {
            decision,
            error: format!("reporting to CodeDeploy failed after {attempts} attempt(s): {error}"),
        },
        _ => Ran::Decided(decision),
    }
}

/// Set the verdict and reason from how the evaluation ended: its hand-off (returned) or
/// its checks, an error, or the deadline (`None`: it ran out) failing closed.
fn conclude<E: Evaluator>(
    gate: &E,
    outcome: Option<Result<Option<String>, Error>>,
    started: Instant,
    decision: &mut Decision,
) -> Option<String> {
    let Some(Ok(handed_off)) = outcome else {
        decision.verdict = Verdict::Failed;
        fail_closed(outcome.and_then(Result::err), started, decision);
        return None;
    };
    decision.verdict = gate.verdict(&decision.checks);
    decision.reason = summarize(decision);
    handed_off
}

/// Why the evaluation ended without its own verdict: an error, or (`None`) the deadline.
fn fail_closed(error: Option<Error>, started: Instant, decision: &mut Decision) {
    match error {
        Some(e) => {
            decision.checks.push(
                CheckResult::fail(stage(&e), json!("no error"), json!(e.to_string()))
                    .with_detail(e.to_string()),
            );
            decision.reason = e.to_string();
        }
        None => {
            decision.checks.push(
                CheckResult::fail(
                    "budget",
                    json!({"report_before_deadline": true}),
                    json!({"elapsed_ms": started.elapsed().as_millis() as u64}),
                )
                .with_detail("the Lambda deadline came before the checks finished: failing closed"),
            );
            decision.reason = summarize(decision);
        }
    }
}

impl Ran {
    /// The decision, reported or not, or the evidence so far of a hand-off.
    pub fn decision(self) -> Decision {
        match self {
            Ran::Decided(decision) | Ran::Unreported { decision, .. } => decision,
            Ran::Continued { so_far, .. } => so_far,
        }
    }

    /// The handler's answer: the decision, or an error (so Lambda retries) when
    /// CodeDeploy did not take the report.
    pub fn into_result(self) -> std::result::Result<Value, Failure> {
        match self {
            Ran::Decided(decision) => Ok(serde_json::to_value(decision).unwrap_or(Value::Null)),
            Ran::Continued { reason, so_far } => {
                Ok(json!({"continued": true, "reason": reason, "so_far": so_far}))
            }
            Ran::Unreported { decision, error } => Err(Failure::new(
                Class::ReportFailed,
                format!(
                    "{error} (verdict {} for deployment {}); failing the invocation so that Lambda retries it",
                    decision.verdict.as_str(),
                    decision.deployment_id.as_deref().unwrap_or("?")
                ),
            )),
        }
    }
}

async fn evaluate<D, P, N, K, E>(
    hook: &Hook<'_, D, P, N, K>,
    gate: &E,
    event: &HookEvent,
    hard_deadline: Instant,
    decision: &mut Decision,
) -> Result<Option<String>, Error>
where
    D: Deployments,
    P: PolicyStore,
    N: Notifier,
    E: Evaluator,
{
    let info = hook
        .deployments
        .lambda_deployment(&event.deployment_id)
        .await?;
    decision.function_name = Some(info.target.function_name.clone());
    decision.alias = Some(info.target.alias.clone());
    decision.current_version = Some(info.target.current_version.clone());
    decision.target_version = Some(info.target.target_version.clone());

    let (policy, source) = match hook.policies.policy(&info.target.function_name).await? {
        None => (Policy::default(), "default (no policy stored)".to_owned()),
        Some(doc) => {
            let policy = Policy::parse(&doc.text).map_err(|error| Error::Policy {
                source_name: doc.source.clone(),
                error,
            });
            decision.policy_source = Some(doc.source);
            (policy?, decision.policy_source.clone().unwrap_or_default())
        }
    };
    decision.policy_source = Some(source);

    let started = Instant::now();
    let budget = Budget {
        started,
        deadline: (started + gate.budget(&policy)).min(hard_deadline),
    };
    let checks = &mut decision.checks;
    let ran = timeout_at(
        budget.deadline,
        gate.evaluate(&info, &policy, budget, checks),
    )
    .await;
    if let Ok(handed_off) = ran {
        return Ok(handed_off);
    }
    {
        checks.push(
            CheckResult::fail(
                "budget",
                json!({"max_ms": gate.budget(&policy).as_millis() as u64}),
                json!({"elapsed_ms": started.elapsed().as_millis() as u64}),
            )
            .with_detail(
                "the gate's time budget ran out before every check finished: failing closed",
            ),
        );
    }
    Ok(None)
}

/// The name of the check an error stands for in the decision record.
fn stage(e: &Error) -> &'static str {
    match e {
        Error::Policy { .. } => "policy",
        Error::FunctionNotFound(_) => "function",
        Error::DeploymentNotFound(_)
        | Error::NotLambda { .. }
        | Error::NoRevision { .. }
        | Error::AppSpec(_) => "deployment",
        Error::InvalidEvent(_) => "event",
        Error::Aws { .. } | Error::Config(_) => "aws",
    }
}

fn summarize(decision: &Decision) -> String {
    let target = match (&decision.function_name, &decision.target_version) {
        (Some(f), Some(v)) => format!("{f}:{v}"),
        _ => "the target version".into(),
    };
    let failed: Vec<&str> = decision.failed_checks().map(|c| c.name.as_str()).collect();
    let unsure: Vec<&str> = decision
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Inconclusive)
        .map(|c| c.name.as_str())
        .collect();
    if failed.is_empty() {
        format!("all {} checks passed on {target}", decision.checks.len())
    } else if decision.verdict == Verdict::Succeeded {
        // Only inconclusive checks are left, and this gate does not fail on them.
        format!(
            "passed on {target}: no check failed; inconclusive, not counted: {}",
            unsure.join(", ")
        )
    } else {
        format!(
            "{} of {} checks failed on {target}: {}",
            failed.len(),
            decision.checks.len(),
            failed.join(", ")
        )
    }
}

/// What happened to the report; part of the explanation.
#[derive(Debug, Clone, PartialEq)]
pub enum Reported {
    Accepted {
        attempts: u32,
    },
    AlreadyCompleted,
    /// Somebody else (the panic reporter) had already claimed the report.
    NotOurs,
    Failed {
        attempts: u32,
        error: String,
        /// A transient failure (throttled, 5xx, the deadline) that a later attempt may
        /// get past; a permanent one (no such deployment or execution) will not.
        retryable: bool,
    },
}

/// Report the verdict once, retrying transient errors until the hard deadline.
async fn report<D, P, N, K>(
    hook: &Hook<'_, D, P, N, K>,
    hard_deadline: Instant,
    verdict: Verdict,
) -> Reported
where
    D: Deployments,
{
    let Some(exec) = hook.slot.claim() else {
        return Reported::NotOurs;
    };
    // Reporting may use the margin kept back from the deadline, minus a little for SNS.
    let report_deadline = hard_deadline + DEFAULT_REPORT_MARGIN / 2;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = report_deadline.saturating_duration_since(Instant::now());
        let result = tokio::time::timeout(
            left.max(Duration::from_millis(500)),
            hook.deployments
                .report_hook(&exec.deployment_id, &exec.execution_id, verdict),
        )
        .await;
        match result {
            Ok(Ok(ReportOutcome::Accepted)) => return Reported::Accepted { attempts },
            Ok(Ok(ReportOutcome::AlreadyCompleted)) => return Reported::AlreadyCompleted,
            Ok(Err(e)) if e.is_retryable() && Instant::now() < report_deadline && attempts < 8 => {
                let wait = backoff(
                    attempts,
                    Duration::from_millis(100),
                    Duration::from_millis(1_600),
                );
                tokio::time::sleep(
                    wait.min(report_deadline.saturating_duration_since(Instant::now())),
                )
                .await;
            }
            Ok(Err(e)) => {
                return Reported::Failed {
                    attempts,
                    retryable: e.is_retryable(),
                    error: e.to_string(),
                };
            }
            Err(_) => {
                return Reported::Failed {
                    attempts,
                    retryable: true,
                    error: "timed out at the deadline".into(),
                };
            }
        }
    }
}

/// What stands in the log for a smoke test's response evidence.
pub const NOT_LOGGED: &str =
    "(response evidence not logged at this level: see the SNS decision, or RUST_LOG=debug)";

/// What stands in the ledger (and so on the report page) for a smoke test's response.
pub const NOT_KEPT: &str =
    "(response evidence not kept in the ledger: see the decision on the SNS topic)";

/// The decision as logged at the default level: a smoke test's response (what a
/// version answered, which may hold data or secrets) is evidence for the SNS decision
/// and the debug log only. Names, outcomes, expectations and durations stay.
pub fn log_view(decision: &Decision) -> Decision {
    without_responses(decision, NOT_LOGGED)
}

/// The decision as the ledger keeps it: [`log_view`]'s, saying where the responses are.
pub fn kept_view(decision: &Decision) -> Decision {
    without_responses(decision, NOT_KEPT)
}

/// `decision` with each smoke test's response evidence replaced by `note`.
fn without_responses(decision: &Decision, note: &str) -> Decision {
    let mut view = decision.clone();
    for check in &mut view.checks {
        let response = check.name.starts_with("smoke[")
            && (check.name.ends_with(".json_subset")
                || check.name.ends_with(".body_regex")
                || check.name.contains(".json_pointer"));
        if response {
            check.actual = json!(note);
            if check.detail.is_some() {
                check.detail = Some(note.to_owned());
            }
        }
    }
    view
}

/// The decision as one log field: [`log_view`], fitted to
/// [`LOG_RECORD_MAX_BYTES`](crate::limits::LOG_RECORD_MAX_BYTES) (long untrusted text is
/// cut and marked), so that one record stays one CloudWatch Logs event.
pub fn log_record(decision: &Decision) -> String {
    crate::limits::fit_json(
        &serde_json::to_value(log_view(decision)).unwrap_or_default(),
        crate::limits::LOG_RECORD_MAX_BYTES,
        false,
    )
}

/// One structured log record, one SNS message, one EMF document.
async fn explain<D, P, N, K>(hook: &Hook<'_, D, P, N, K>, decision: &Decision, reported: &Reported)
where
    N: Notifier,
    K: DecisionLog,
{
    tracing::debug!(
        decision = %crate::limits::fit_json(
            &serde_json::to_value(decision).unwrap_or_default(),
            crate::limits::LOG_RECORD_MAX_BYTES,
            false,
        ),
        "the decision with every check's evidence"
    );
    let record = log_record(decision);
    let reported_text = format!("{reported:?}");
    match decision.verdict {
        Verdict::Succeeded => tracing::info!(
            decision = %record,
            reported = %reported_text,
            verdict = decision.verdict.as_str(),
            "{}", crate::limits::cut(&decision.reason, 4096)
        ),
        Verdict::Failed => tracing::warn!(
            decision = %record,
            reported = %reported_text,
            verdict = decision.verdict.as_str(),
            "{}", crate::limits::cut(&decision.reason, 4096)
        ),
    }
    if let Err(e) = hook.notifier.announce(decision).await {
        tracing::error!(error = %e, "could not announce the decision on SNS");
    }
    keep(hook.decisions, decision).await;
    Emf::rollgate()
        .dimension("Component", hook.component)
        .dimension("Verdict", decision.verdict.as_str())
        .metric("GateDecisions", 1.0, "Count")
        .metric("GateDuration", decision.duration_ms as f64, "Milliseconds")
        .metric(
            "FailedChecks",
            decision.count(Outcome::Fail) as f64,
            "Count",
        )
        .metric(
            "InconclusiveChecks",
            decision.count(Outcome::Inconclusive) as f64,
            "Count",
        )
        .property(
            "FunctionName",
            decision.function_name.clone().unwrap_or_default(),
        )
        .property(
            "DeploymentId",
            decision.deployment_id.clone().unwrap_or_default(),
        )
        .property(
            "ReportAccepted",
            matches!(
                reported,
                Reported::Accepted { .. } | Reported::AlreadyCompleted
            ),
        )
        .emit();
}

/// Keep the decision for the people on call, without a smoke test's response (that
/// stays in the SNS decision only: the ledger is read by more people than the topic). A
/// failure is logged and changes nothing: CodeDeploy has had the verdict already.
async fn keep<K: DecisionLog>(log: &K, decision: &Decision) {
    match log.keep(&kept_view(decision), epoch_ms()).await {
        Ok(true) => {}
        Ok(false) => tracing::debug!("the decision was not kept: no ledger, or no target"),
        Err(e) => tracing::error!(error = %e, "could not keep the decision in the ledger"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_decision_holds_no_smoke_response() {
        let secret = "sk-live-0123456789";
        let decision = Decision {
            component: "pre-traffic-hook".into(),
            verdict: Verdict::Failed,
            reason: "1 of 3 checks failed".into(),
            deployment_id: Some("d-1".into()),
            function_name: Some("orders".into()),
            alias: Some("live".into()),
            current_version: Some("1".into()),
            target_version: Some("2".into()),
            policy_source: None,
            checks: vec![
                CheckResult::pass(
                    "smoke[health].function_error",
                    json!("none"),
                    json!({"function_error": null}),
                ),
                CheckResult::fail(
                    "smoke[health].json_subset",
                    json!({"status": "ok"}),
                    json!({"status": "down", "token": secret}),
                )
                .with_detail(format!("/token: unexpected {secret}")),
                CheckResult::pass(
                    "smoke[health].json_pointer/token",
                    json!(secret),
                    json!(secret),
                ),
                CheckResult::pass("smoke[health].body_regex", json!("ok"), json!(secret)),
                CheckResult::pass("config.state", json!("Active"), json!("Active")),
            ],
            duration_ms: 5,
        };
        let view = log_view(&decision);
        let logged = serde_json::to_string(&view).unwrap();
        // The expectation of a json_pointer check is the policy's, not the response's.
        assert_eq!(logged.matches(secret).count(), 1, "{logged}");
        assert_eq!(view.checks[0], decision.checks[0]);
        assert_eq!(view.checks[4], decision.checks[4]);
        assert_eq!(view.checks[1].actual, json!(NOT_LOGGED));
        assert_eq!(view.checks[1].detail.as_deref(), Some(NOT_LOGGED));
        assert_eq!(view.checks[1].outcome, Outcome::Fail);
        // The SNS record keeps everything.
        assert!(serde_json::to_string(&decision).unwrap().contains(secret));
    }
}
