//! The post-traffic gate (`AfterAllowTraffic`): judge the new version on its own
//! CloudWatch metrics (`ExecutedVersion`), against the old version over the canary window
//! and against absolute limits over the bake window; continue itself in a new invocation
//! when the bake outlasts this one.

pub mod decide;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
/// The post-traffic section of the policy document (it lives with the document).
pub use crate::policy::post_traffic as policy;
pub mod probe;
pub mod stats;

use crate::clock::{Clock, SystemClock};
use crate::decision::{CheckResult, Outcome, Verdict};
use crate::error::Result;
use crate::hook::{Budget, Evaluator};
use crate::policy::Policy;
use crate::ports::DeploymentInfo;
use crate::rollback::ledger::ShiftJudgement;
use decide::{AlarmState, LatencyBins, Traffic, VersionWindow};
use policy::PostTrafficPolicy;
use probe::HttpClient;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

pub const COMPONENT: &str = "post-traffic-hook";
/// Key of the continuation state in the self-invoke payload.
pub const CONTINUATION_KEY: &str = "rollgate_continuation";

/// A post-traffic event split into the CodeDeploy event itself and the bake state a
/// previous run handed on under [`CONTINUATION_KEY`], if any. A state that cannot be read
/// is an invalid event, naming the key.
pub fn split_continuation(mut payload: Value) -> Result<(Value, Option<BakeState>)> {
    let state = match &mut payload {
        Value::Object(map) => map.remove(CONTINUATION_KEY),
        _ => None,
    };
    let resume = match state {
        None => None,
        Some(state) => Some(serde_json::from_value::<BakeState>(state).map_err(|e| {
            crate::error::Error::InvalidEvent(format!("invalid {CONTINUATION_KEY}: {e}"))
        })?),
    };
    Ok((payload, resume))
}
/// Time kept free before this invocation's deadline for one more round and the hand-off.
pub const HAND_OFF_MARGIN: Duration = Duration::from_secs(5);
/// No chain of continuations runs past this (CodeDeploy gives a hook one hour).
pub const MAX_TOTAL: Duration = Duration::from_secs(50 * 60);
/// The least an invocation must be able to wait before it hands off; with less, every
/// invocation would hand off at once and the chain would spin until the bake ends.
pub const MIN_STEP: Duration = Duration::from_secs(1);
/// Deployment statuses after which there is nothing left to judge.
const ENDED: [&str; 3] = ["Succeeded", "Failed", "Stopped"];

/// What an invocation does before its next round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Sleep this long, then run the round here.
    Round(Duration),
    /// The round lies beyond this invocation: sleep this long, then hand off.
    HandOff(Duration),
    /// This invocation cannot wait long enough to make progress (its timeout is too
    /// short for the margin a hand-off needs).
    TooShort,
}

/// Plan the wait for the round due at `next_ms`. `fresh`: this invocation has run no
/// round yet (so a too-short one would only pass the work on unchanged).
pub fn plan_step(now_ms: i64, next_ms: i64, remaining: Duration, fresh: bool) -> Step {
    let wait = Duration::from_millis((next_ms - now_ms).max(0) as u64);
    if wait + HAND_OFF_MARGIN <= remaining {
        return Step::Round(wait);
    }
    let usable = remaining.saturating_sub(HAND_OFF_MARGIN);
    if fresh && usable < MIN_STEP {
        Step::TooShort
    } else {
        Step::HandOff(usable)
    }
}

/// One `MetricDataQuery` with a `MetricStat`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub id: String,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub stat: String,
    pub period_seconds: u32,
}

/// Datapoints of one query: (period start, epoch seconds; value), ascending.
pub type Series = Vec<(i64, f64)>;

pub trait Metrics: Send + Sync {
    /// One `GetMetricData` call (following `NextToken`) for every query; result by id.
    fn metric_data(
        &self,
        queries: &[MetricQuery],
        start_epoch_s: i64,
        end_epoch_s: i64,
    ) -> impl Future<Output = Result<BTreeMap<String, Series>>> + Send;

    /// `DescribeAlarms` for these names (missing alarms are simply absent).
    fn alarms(&self, names: &[String]) -> impl Future<Output = Result<Vec<AlarmState>>> + Send;
}

pub trait Continuation: Send + Sync {
    /// When the deployment started (`GetDeployment` createTime), epoch milliseconds.
    fn deployment_started_ms(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<i64>> + Send;

    /// Asynchronously invoke this function again with `payload`.
    fn continue_later(&self, payload: Value) -> impl Future<Output = Result<()>> + Send;
}

/// The ledger's rows of the judge during a deployment's traffic shift (written by the
/// rollout function); the gate reuses them instead of judging the shift blind.
pub trait ShiftRecords: Send + Sync {
    /// The rounds of `deployment_id`'s shift of `function:alias`, oldest first.
    fn shift_judgements(
        &self,
        function: &str,
        alias: &str,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Vec<ShiftJudgement>>> + Send;
}

/// No ledger configured: no shift was ever judged.
impl<T: ShiftRecords> ShiftRecords for Option<T> {
    async fn shift_judgements(
        &self,
        function: &str,
        alias: &str,
        deployment_id: &str,
    ) -> Result<Vec<ShiftJudgement>> {
        match self {
            Some(records) => {
                records
                    .shift_judgements(function, alias, deployment_id)
                    .await
            }
            None => Ok(Vec::new()),
        }
    }
}

/// What one invocation hands the next: the windows and the evidence so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BakeState {
    pub deployment_start_ms: i64,
    /// When the hook first ran: full shift, end of the canary window.
    pub bake_start_ms: i64,
    /// Planned end of the bake (before any `extend`).
    pub bake_end_ms: i64,
    /// Invocations of this hook so far for this execution (1 = the first).
    pub hop: u32,
    pub rounds: u32,
    /// The canary comparison, decided in the first round.
    #[serde(default)]
    pub canary: Vec<CheckResult>,
    /// What the judge found during the traffic shift, read when the hook first ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<CheckResult>,
    /// Bake-window invocation counts of the new version seen at each round.
    #[serde(default)]
    pub invocations_seen: Vec<f64>,
    /// Requests of each HTTP probe so far (same order as the policy's `probes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<probe::ProbeTally>,
    /// When the next round is due (epoch ms): a continuation waits for it instead of
    /// polling early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_round_ms: Option<i64>,
}

impl BakeState {
    /// The judgements carried from round to round: the shift's and the canary's.
    fn judged(&self) -> Vec<CheckResult> {
        self.shift.iter().chain(&self.canary).cloned().collect()
    }
}

/// A query of one `AWS/Lambda` metric of one version behind an alias (`ExecutedVersion`).
pub fn lambda_query(
    id: String,
    function: &str,
    alias: &str,
    version: &str,
    metric: &str,
    stat: &str,
    period: u32,
) -> MetricQuery {
    MetricQuery {
        id,
        namespace: "AWS/Lambda".into(),
        metric_name: metric.into(),
        dimensions: vec![
            ("FunctionName".into(), function.into()),
            ("Resource".into(), format!("{function}:{alias}")),
            ("ExecutedVersion".into(), version.into()),
        ],
        stat: stat.into(),
        period_seconds: period,
    }
}

/// The statistics read for each version every round: `(id suffix, metric, statistic)`.
fn lambda_metrics() -> Vec<(String, &'static str, String)> {
    let mut out = vec![
        ("invocations".to_owned(), "Invocations", "Sum".to_owned()),
        ("errors".to_owned(), "Errors", "Sum".to_owned()),
        ("throttles".to_owned(), "Throttles", "Sum".to_owned()),
        ("durations".to_owned(), "Duration", "SampleCount".to_owned()),
    ];
    for p in decide::PERCENTILES {
        out.push((format!("p{p}"), "Duration", format!("p{p}")));
    }
    out
}

/// A bound of an extended statistic (`TC(a:b)`), in milliseconds: at most four decimals,
/// no trailing zeros.
pub fn bound(ms: f64) -> String {
    let text = format!("{ms:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Every query of a round: both versions' Lambda metrics (and, with `bake.max_p99_ms`,
/// the new version's requests slower than it), then the custom metrics.
pub fn round_queries(info: &DeploymentInfo, policy: &PostTrafficPolicy) -> Vec<MetricQuery> {
    let t = &info.target;
    let period = policy.period_seconds;
    let mut out = Vec::new();
    for (side, version) in [("old", &t.current_version), ("new", &t.target_version)] {
        for (key, metric, stat) in lambda_metrics() {
            out.push(lambda_query(
                format!("{side}_{key}"),
                &t.function_name,
                &t.alias,
                version,
                metric,
                &stat,
                period,
            ));
        }
    }
    if let Some(max) = policy.bake.max_p99_ms {
        out.push(lambda_query(
            "new_over_limit".into(),
            &t.function_name,
            &t.alias,
            &t.target_version,
            "Duration",
            &format!("TC({}:)", bound(max)),
            period,
        ));
    }
    for (i, m) in policy.metrics.iter().enumerate() {
        out.push(MetricQuery {
            id: format!("custom_{i}"),
            namespace: m.namespace.clone(),
            metric_name: m.metric_name.clone(),
            dimensions: m
                .dimensions
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            stat: m.statistic.clone(),
            period_seconds: period,
        });
    }
    out
}

/// The trimmed counts of the canary's latency bins: the old version's cut at `edges`,
/// the new version's at `edges x (1 + tolerance)` (ids `old_bin_<i>`, `new_bin_<i>`).
pub fn bin_queries(
    info: &DeploymentInfo,
    policy: &PostTrafficPolicy,
    edges: &[f64],
) -> Vec<MetricQuery> {
    let t = &info.target;
    let scale = 1.0 + policy.canary.max_latency_increase_pct / 100.0;
    let mut out = Vec::new();
    for (side, version, factor) in [
        ("old", &t.current_version, 1.0),
        ("new", &t.target_version, scale),
    ] {
        let cut: Vec<String> = edges.iter().map(|e| bound(e * factor)).collect();
        for i in 0..=cut.len() {
            let low = if i == 0 { "" } else { cut[i - 1].as_str() };
            let high = cut.get(i).map_or("", String::as_str);
            out.push(lambda_query(
                format!("{side}_bin_{i}"),
                &t.function_name,
                &t.alias,
                version,
                "Duration",
                &format!("TC({low}:{high})"),
                policy.period_seconds,
            ));
        }
    }
    out
}

/// Which periods a window holds: those starting at `starts_from_ms` or later whose end
/// lies after `ends_after_ms` and at or before `ends_by_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub starts_from_ms: i64,
    pub ends_after_ms: i64,
    pub ends_by_ms: i64,
}

impl Span {
    /// The canary: after the warm-up, ending by the full shift and by what is complete.
    pub fn canary(warm_from_ms: i64, bake_start_ms: i64, complete_by_ms: i64) -> Self {
        Span {
            starts_from_ms: warm_from_ms,
            ends_after_ms: i64::MIN,
            ends_by_ms: bake_start_ms.min(complete_by_ms),
        }
    }

    /// The bake: periods reaching past the full shift, as far as they are complete.
    pub fn bake(bake_start_ms: i64, complete_by_ms: i64) -> Self {
        Span {
            starts_from_ms: i64::MIN,
            ends_after_ms: bake_start_ms,
            ends_by_ms: complete_by_ms,
        }
    }

    fn holds(&self, period_start_s: i64, period_s: u32) -> bool {
        let start = period_start_s * 1000;
        let end = start + i64::from(period_s) * 1000;
        start >= self.starts_from_ms && end > self.ends_after_ms && end <= self.ends_by_ms
    }
}

/// A series' values in `span`, and whether any of them was not a finite number.
pub fn values(series: Option<&Series>, span: Span, period_s: u32) -> (Vec<f64>, bool) {
    let mut not_finite = false;
    let kept = series
        .map(|s| {
            s.iter()
                .filter(|(t, _)| span.holds(*t, period_s))
                .filter_map(|(_, v)| {
                    not_finite |= !v.is_finite();
                    v.is_finite().then_some(*v)
                })
                .collect()
        })
        .unwrap_or_default();
    (kept, not_finite)
}

/// A sum that is +0.0 when empty (`Iterator::sum` of no f64 is -0.0, which reads
/// oddly in a decision record).
fn total(values: &[f64]) -> f64 {
    values.iter().fold(0.0, |a, b| a + b)
}

pub fn version_window(
    data: &BTreeMap<String, Series>,
    side: &str,
    span: Span,
    period_s: u32,
) -> VersionWindow {
    let mut not_finite = false;
    let mut get = |key: &str| {
        let (v, bad) = values(data.get(&format!("{side}_{key}")), span, period_s);
        not_finite |= bad;
        v
    };
    let percentiles = decide::PERCENTILES
        .iter()
        .map(|p| (*p, get(&format!("p{p}"))))
        .collect();
    let over_limit = data
        .contains_key(&format!("{side}_over_limit"))
        .then(|| total(&get("over_limit")));
    VersionWindow {
        invocations: total(&get("invocations")),
        errors: total(&get("errors")),
        throttles: total(&get("throttles")),
        durations: total(&get("durations")),
        over_limit,
        percentiles,
        not_finite,
    }
}

/// Request counts per bin over the canary window, from [`bin_queries`]' answers.
pub fn latency_bins(
    data: &BTreeMap<String, Series>,
    edges: &[f64],
    span: Span,
    period_s: u32,
) -> (LatencyBins, bool) {
    let mut not_finite = false;
    let mut side = |name: &str| -> Vec<f64> {
        (0..=edges.len())
            .map(|i| {
                let (v, bad) = values(data.get(&format!("{name}_bin_{i}")), span, period_s);
                not_finite |= bad;
                total(&v)
            })
            .collect()
    };
    let bins = LatencyBins {
        edges_ms: edges.to_vec(),
        old: side("old"),
        new: side("new"),
    };
    (bins, not_finite)
}

pub struct PostTraffic<'a, M, C, H, J> {
    pub metrics: &'a M,
    pub continuation: &'a C,
    /// Sends the policy's HTTP probes.
    pub http: &'a H,
    /// The judge's rounds during the traffic shift.
    pub shifts: &'a J,
    /// The state carried by a continuation payload; `None` for CodeDeploy's own invoke.
    pub resume: Option<BakeState>,
    /// The original event, re-sent with the state when continuing.
    pub event: Value,
    /// Caps one invocation's run below the Lambda deadline (`ROLLGATE_MAX_RUN_SECONDS`).
    pub max_run: Option<Duration>,
    /// Wall-clock time: the bake's windows and rounds are read on it.
    pub clock: &'a dyn Clock,
}

/// The ports of the gate, all borrowed for one invocation.
pub struct Ports<'a, M, C, H, J> {
    pub metrics: &'a M,
    pub continuation: &'a C,
    pub http: &'a H,
    pub shifts: &'a J,
}

impl<'a, M: Metrics, C: Continuation, H: HttpClient, J: ShiftRecords> PostTraffic<'a, M, C, H, J> {
    pub fn new(ports: Ports<'a, M, C, H, J>, event: Value, resume: Option<BakeState>) -> Self {
        Self {
            metrics: ports.metrics,
            continuation: ports.continuation,
            http: ports.http,
            shifts: ports.shifts,
            resume,
            event,
            max_run: None,
            clock: &SystemClock,
        }
    }

    async fn start_state(
        &self,
        info: &DeploymentInfo,
        policy: &PostTrafficPolicy,
    ) -> Result<BakeState> {
        if let Some(mut s) = self.resume.clone() {
            s.hop += 1;
            return Ok(s);
        }
        let now = self.clock.now_ms();
        let t = &info.target;
        // Independent reads: one round trip for both.
        let (started, rounds) = tokio::join!(
            self.continuation.deployment_started_ms(&info.deployment_id),
            self.shifts
                .shift_judgements(&t.function_name, &t.alias, &info.deployment_id)
        );
        let started = started?;
        let shift = match rounds {
            Ok(rounds) => decide::shift_check(&rounds),
            // The gate judges the whole canary window itself: an unread ledger fails nothing.
            Err(e) => Some(
                CheckResult::new(
                    decide::SHIFT_CHECK,
                    Outcome::Inconclusive,
                    json!("the ledger's shift#<deployment> rows"),
                    json!(null),
                )
                .with_detail(format!(
                    "the judgements of the traffic shift could not be read: {e}"
                )),
            ),
        };
        Ok(BakeState {
            deployment_start_ms: started.min(now),
            bake_start_ms: now,
            bake_end_ms: now + (policy.bake_minutes * 60_000.0) as i64,
            hop: 1,
            rounds: 0,
            canary: Vec::new(),
            shift,
            invocations_seen: Vec::new(),
            probes: Vec::new(),
            next_round_ms: None,
        })
    }

    /// Hand the rest of the bake to a new invocation; the reason to log. On failure the
    /// caller decides now.
    async fn hand_off(&self, state: &BakeState) -> Result<String> {
        let mut payload = self.event.clone();
        if let Value::Object(map) = &mut payload {
            map.insert(
                CONTINUATION_KEY.into(),
                serde_json::to_value(state).unwrap_or(Value::Null),
            );
        }
        self.continuation.continue_later(payload).await?;
        Ok(format!(
            "bake continues in invocation {} (round {}, {} s of bake left)",
            state.hop + 1,
            state.rounds,
            ((state.bake_end_ms - self.clock.now_ms()) / 1000).max(0)
        ))
    }
}

impl<M: Metrics, C: Continuation, H: HttpClient, J: ShiftRecords> Evaluator
    for PostTraffic<'_, M, C, H, J>
{
    fn verdict(&self, checks: &[CheckResult]) -> Verdict {
        // Lack of data is decided once, by `bake.traffic` and `on_no_data`; an
        // inconclusive comparison (no canary window, too few periods) fails nothing.
        Verdict::unless_failed(checks)
    }

    fn budget(&self, _policy: &Policy) -> Duration {
        // The bake is bounded by its own clock and MAX_TOTAL; the frame's hard deadline
        // (this invocation's) is what limits one run.
        self.max_run.unwrap_or(MAX_TOTAL)
    }

    async fn evaluate(
        &self,
        info: &DeploymentInfo,
        policy: &Policy,
        budget: Budget,
        out: &mut Vec<CheckResult>,
    ) -> Option<String> {
        let policy = policy.post_traffic.clone().unwrap_or_default();
        if ENDED.contains(&info.status.as_str()) {
            // CodeDeploy ended it (stopped, rolled back, or a forged or stale event):
            // a bake could change nothing, and continuing would only cost invocations.
            out.push(
                CheckResult::fail("deployment.status", json!("InProgress"), json!(info.status))
                    .with_detail(format!(
                        "deployment {} has already ended ({}): nothing to bake",
                        info.deployment_id, info.status
                    )),
            );
            return None;
        }
        let mut state = match self.start_state(info, &policy).await {
            Ok(s) => s,
            Err(e) => {
                out.push(
                    CheckResult::fail(
                        "deployment.start_time",
                        json!("GetDeployment createTime"),
                        json!(null),
                    )
                    .with_detail(e.to_string()),
                );
                return None;
            }
        };
        if let Some(failed) = state.shift.as_ref().filter(|c| c.outcome == Outcome::Fail) {
            // The judge already failed this release while traffic was split.
            out.push(failed.clone());
            return None;
        }
        let plan = BakePlan::new(info, &policy, &state);
        let mut fresh = true;
        let mut last: Option<(Vec<CheckResult>, CheckResult)> = None;
        loop {
            if let Some(next) = state.next_round_ms {
                let step = plan_step(self.clock.now_ms(), next, budget.remaining(), fresh);
                if let Some(end) = self.wait(step, &policy, &state, budget, &mut last).await {
                    out.extend(end.checks);
                    return end.handed_off;
                }
            }
            fresh = false;
            match self.round(&plan, &policy, &mut state).await {
                RoundEnd::Decided(checks) => {
                    out.extend(checks);
                    return None;
                }
                RoundEnd::Next { round, evidence } => last = Some((round, *evidence)),
            }
        }
    }
}

/// What does not change from round to round of one bake.
struct BakePlan {
    /// The deployment, for the canary's second read.
    info: DeploymentInfo,
    period: u32,
    queries: Vec<MetricQuery>,
    /// The bake's end with every extension the policy allows.
    cap_ms: i64,
    /// No bake outlasts [`MAX_TOTAL`].
    give_up_ms: i64,
    /// Metrics are read from the deployment's start, on a period boundary.
    query_start_s: i64,
    /// The canary window leaves out the new version's first seconds.
    warm_from_ms: i64,
    /// A period counts once it ended this long ago.
    delay_ms: i64,
}

impl BakePlan {
    fn new(info: &DeploymentInfo, policy: &PostTrafficPolicy, state: &BakeState) -> Self {
        let period = policy.period_seconds;
        BakePlan {
            info: info.clone(),
            period,
            queries: round_queries(info, policy),
            cap_ms: state.bake_start_ms + (policy.max_bake_seconds() * 1000.0) as i64,
            give_up_ms: state.bake_start_ms + MAX_TOTAL.as_millis() as i64,
            query_start_s: (state.deployment_start_ms / 1000).div_euclid(i64::from(period))
                * i64::from(period),
            warm_from_ms: state.deployment_start_ms + (policy.canary.warmup_seconds * 1000) as i64,
            delay_ms: (policy.ingestion_delay_seconds * 1000) as i64,
        }
    }
}

/// How this invocation's part of the bake ended before a round.
struct RunEnd {
    checks: Vec<CheckResult>,
    handed_off: Option<String>,
}

/// How a round ended: with the decision's checks, or with the round's checks and evidence
/// and a next round to come.
enum RoundEnd {
    Decided(Vec<CheckResult>),
    Next {
        round: Vec<CheckResult>,
        evidence: Box<CheckResult>,
    },
}

impl<M: Metrics, C: Continuation, H: HttpClient, J: ShiftRecords> PostTraffic<'_, M, C, H, J> {
    /// Wait for the next round here, or hand the bake to a new invocation when the round
    /// does not fit in this one. `Some` when this invocation's part ends.
    async fn wait(
        &self,
        step: Step,
        policy: &PostTrafficPolicy,
        state: &BakeState,
        budget: Budget,
        last: &mut Option<(Vec<CheckResult>, CheckResult)>,
    ) -> Option<RunEnd> {
        let mut checks: Vec<CheckResult> = state.judged();
        let wait = match step {
            Step::Round(wait) | Step::HandOff(wait) => wait,
            Step::TooShort => {
                checks.push(
                    CheckResult::fail(
                        "continuation",
                        json!({"min_run_seconds": (HAND_OFF_MARGIN + MIN_STEP).as_secs()}),
                        json!({"remaining_ms": budget.remaining().as_millis() as u64}),
                    )
                    .with_detail(
                        "this invocation has too little time to continue the bake: raise the hook's timeout",
                    ),
                );
                return Some(RunEnd {
                    checks,
                    handed_off: None,
                });
            }
        };
        tokio::time::sleep(wait).await;
        if !matches!(step, Step::HandOff(_)) {
            return None;
        }
        let (round, evidence) = last.take().unwrap_or_else(|| {
            let evidence = CheckResult::new(
                "bake.evidence",
                Outcome::Pass,
                json!({"bake_minutes": policy.bake_minutes}),
                json!({"rounds": state.rounds, "invocations_of_hook": state.hop}),
            );
            (Vec::new(), evidence)
        });
        checks.extend(round);
        let handed_off = match self.hand_off(state).await {
            Ok(reason) => {
                checks.push(evidence.with_detail("handed off to a new invocation"));
                Some(reason)
            }
            Err(e) => {
                checks.push(
                    CheckResult::fail("continuation", json!("self-invoke accepted"), json!(null))
                        .with_detail(format!(
                            "the bake outlasts this invocation and continuing it failed: {e}"
                        )),
                );
                None
            }
        };
        Some(RunEnd { checks, handed_off })
    }

    /// One round: read the metrics, judge the canary (once its window is complete) and
    /// the bake so far, run the probes, read the alarms; decide, or plan the next round.
    async fn round(
        &self,
        plan: &BakePlan,
        policy: &PostTrafficPolicy,
        state: &mut BakeState,
    ) -> RoundEnd {
        let period = plan.period;
        state.rounds += 1;
        let now = self.clock.now_ms();
        let complete_by = now - plan.delay_ms;
        let end_s = (now / 1000 + 1).max(plan.query_start_s + 1);
        let data = match self
            .metrics
            .metric_data(&plan.queries, plan.query_start_s, end_s)
            .await
        {
            Ok(d) => d,
            Err(e) => return RoundEnd::Decided(metrics_failed(state, "GetMetricData answers", &e)),
        };
        if state.canary.is_empty() && complete_by >= state.bake_start_ms {
            match self.canary(plan, policy, state, &data).await {
                Ok(checks) => state.canary = checks,
                Err(e) => return RoundEnd::Decided(metrics_failed(state, "latency bins", &e)),
            }
        }
        let span = Span::bake(state.bake_start_ms, complete_by);
        let new_bake = version_window(&data, "new", span, period);
        state.invocations_seen.push(new_bake.invocations);
        let round = self
            .round_checks(policy, &data, &new_bake, span, state)
            .await;
        let old_bake = version_window(&data, "old", span, period);
        let evidence = CheckResult::new(
            "bake.evidence",
            Outcome::Pass,
            json!({"bake_minutes": policy.bake_minutes, "period_seconds": period,
                   "ingestion_delay_seconds": policy.ingestion_delay_seconds}),
            json!({"rounds": state.rounds, "invocations_of_hook": state.hop,
                   "deployment_start_ms": state.deployment_start_ms, "bake_start_ms": state.bake_start_ms,
                   "bake_end_ms": state.bake_end_ms, "now_ms": now, "complete_by_ms": complete_by,
                   "queries_per_round": plan.queries.len(),
                   "new_version": new_bake, "old_version": old_bake,
                   "new_invocations_by_round": state.invocations_seen}),
        );
        if decide::fails_early(policy, &state.canary) || decide::fails_early(policy, &round) {
            let mut checks = state.judged();
            checks.extend(round);
            checks.push(evidence.with_detail("stopped early: a check failed"));
            return RoundEnd::Decided(checks);
        }
        if complete_by >= state.bake_end_ms && !state.canary.is_empty() {
            let extension_s = (complete_by - state.bake_end_ms) as f64 / 1000.0;
            let cap_reached = now >= plan.cap_ms || now >= plan.give_up_ms;
            let mut judged = state.judged();
            judged.extend(round.iter().cloned());
            let undecided = decide::undecided(&judged);
            if let Traffic::Decided(check) = decide::traffic_check(
                policy,
                new_bake.invocations,
                &undecided,
                extension_s,
                cap_reached,
            ) {
                judged.push(*check);
                judged.push(evidence);
                return RoundEnd::Decided(judged);
            }
        }
        state.next_round_ms = Some(next_round(policy, plan, state, now));
        RoundEnd::Next {
            round,
            evidence: Box::new(evidence),
        }
    }

    /// The canary comparison: both versions over the canary window, and the latency bins
    /// cut at the old version's percentiles (a second read, of trimmed counts).
    async fn canary(
        &self,
        plan: &BakePlan,
        policy: &PostTrafficPolicy,
        state: &BakeState,
        data: &BTreeMap<String, Series>,
    ) -> Result<Vec<CheckResult>> {
        let span = Span::canary(plan.warm_from_ms, state.bake_start_ms, state.bake_start_ms);
        let old = version_window(data, "old", span, plan.period);
        let new = version_window(data, "new", span, plan.period);
        let edges = decide::latency_edges(&old);
        let mut bins: Option<LatencyBins> = None;
        if !edges.is_empty() {
            let queries = bin_queries(&plan.info, policy, &edges);
            let end_s = (state.bake_start_ms / 1000 + 1).max(plan.query_start_s + 1);
            let counts = self
                .metrics
                .metric_data(&queries, plan.query_start_s, end_s)
                .await?;
            let (read, not_finite) = latency_bins(&counts, &edges, span, plan.period);
            if !not_finite {
                bins = Some(read);
            }
        }
        Ok(decide::canary_checks(policy, &old, &new, bins.as_ref()))
    }

    /// The round's own checks: the bake's rules, custom metrics, probes, alarms.
    async fn round_checks(
        &self,
        policy: &PostTrafficPolicy,
        data: &BTreeMap<String, Series>,
        new_bake: &VersionWindow,
        span: Span,
        state: &mut BakeState,
    ) -> Vec<CheckResult> {
        let mut round = decide::bake_checks(policy, new_bake);
        for (i, m) in policy.metrics.iter().enumerate() {
            let (v, _) = values(
                data.get(&format!("custom_{i}")),
                span,
                policy.period_seconds,
            );
            round.push(decide::custom_check(m, &v));
        }
        if !policy.probes.is_empty() {
            probe::run_round(self.http, &policy.probes, &mut state.probes).await;
            round.extend(
                policy
                    .probes
                    .iter()
                    .zip(&state.probes)
                    .map(|(p, t)| probe::probe_check(p, t)),
            );
        }
        if !policy.alarms.is_empty() {
            match self.metrics.alarms(&policy.alarms).await {
                Ok(found) => round.extend(decide::alarm_checks(&policy.alarms, &found)),
                Err(e) => round.push(
                    CheckResult::fail("alarms", json!("DescribeAlarms answers"), json!(null))
                        .with_detail(e.to_string()),
                ),
            }
        }
        round
    }
}

/// The canary so far and a failed read, deciding the bake (closed).
fn metrics_failed(state: &BakeState, what: &str, e: &crate::error::Error) -> Vec<CheckResult> {
    let mut checks = state.judged();
    checks.push(CheckResult::fail("metrics", json!(what), json!(null)).with_detail(e.to_string()));
    checks
}

/// When the next round is due: at the poll interval, and at the moment the bake's (or
/// the canary's) last period is complete.
fn next_round(policy: &PostTrafficPolicy, plan: &BakePlan, state: &BakeState, now: i64) -> i64 {
    let poll = now + (policy.poll_seconds * 1000) as i64;
    let milestones = [
        state.bake_start_ms + plan.delay_ms,
        state.bake_end_ms + plan.delay_ms,
    ];
    milestones
        .into_iter()
        .filter(|m| *m > now)
        .fold(poll, i64::min)
}

#[cfg(test)]
mod orchestration_tests;

#[cfg(test)]
mod step_tests {
    use super::{HAND_OFF_MARGIN, MIN_STEP, Step, plan_step};
    use std::time::Duration;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_round_that_fits_is_waited_for_here() {
        assert_eq!(plan_step(0, 60_000, 900 * S, false), Step::Round(60 * S));
        // Overdue rounds run at once.
        assert_eq!(
            plan_step(70_000, 60_000, 900 * S, true),
            Step::Round(Duration::ZERO)
        );
        // Exactly the margin left over still fits.
        assert_eq!(
            plan_step(0, 10_000, 10 * S + HAND_OFF_MARGIN, false),
            Step::Round(10 * S)
        );
    }

    #[test]
    fn a_round_beyond_the_invocation_waits_what_it_can_then_hands_off() {
        assert_eq!(plan_step(0, 60_000, 30 * S, false), Step::HandOff(25 * S));
        // Late in a run that did rounds, a hand-off is right even with no time to wait.
        assert_eq!(
            plan_step(0, 60_000, 2 * S, false),
            Step::HandOff(Duration::ZERO)
        );
    }

    #[test]
    fn a_fresh_invocation_too_short_to_wait_refuses_to_spin() {
        // A timeout below margin + one step would hand off again and again at once.
        assert_eq!(plan_step(0, 60_000, HAND_OFF_MARGIN, true), Step::TooShort);
        assert_eq!(
            plan_step(0, 60_000, HAND_OFF_MARGIN + MIN_STEP / 2, true),
            Step::TooShort
        );
        assert_eq!(
            plan_step(0, 60_000, HAND_OFF_MARGIN + MIN_STEP, true),
            Step::HandOff(MIN_STEP)
        );
    }
}
