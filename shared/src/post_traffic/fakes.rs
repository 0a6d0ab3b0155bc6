//! In-memory post-traffic ports, for tests of the bake's rounds and continuation
//! (the `fakes` feature): CloudWatch as a traffic model per version and period, the
//! continuation as a list of hand-offs, HTTP probes as a fixed answer.

use super::decide::AlarmState;
use super::probe::{Answer, HttpClient};
use super::{Continuation, MetricQuery, Metrics, Series, ShiftRecords};
use crate::clock::{Clock, TokioClock};
use crate::error::{Error, Result};
use crate::rollback::ledger::ShiftJudgement;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// What one version served in one period: each request's latency, and the errors and
/// throttles among them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Served {
    pub latencies_ms: Vec<f64>,
    pub errors: f64,
    pub throttles: f64,
}

impl Served {
    /// `invocations` requests without errors, log-normally spread so that the median is
    /// `p50_ms` and the 99th percentile `p99_ms` (deterministic: the distribution's
    /// quantiles at evenly spaced levels).
    pub fn healthy(invocations: f64, p50_ms: f64, p99_ms: f64) -> Self {
        let n = invocations.max(0.0) as usize;
        let sigma = (p99_ms / p50_ms).ln() / super::stats::normal_isf(0.01);
        let latencies_ms = (0..n)
            .map(|i| {
                let level = (i as f64 + 0.5) / n as f64;
                p50_ms * (sigma * -super::stats::normal_isf(level)).exp()
            })
            .collect();
        Served {
            latencies_ms,
            errors: 0.0,
            throttles: 0.0,
        }
    }

    pub fn with_errors(mut self, errors: f64) -> Self {
        self.errors = errors;
        self
    }

    fn invocations(&self) -> f64 {
        self.latencies_ms.len() as f64
    }
}

/// A statistic of raw values as CloudWatch defines it: `Sum`, `SampleCount`, `Average`,
/// `Minimum`, `Maximum`, `pNN` (nearest rank), and the trimmed count `TC(a:b)` and
/// percentile rank `PR(a:b)` with absolute bounds (`a` exclusive, `b` inclusive; either
/// may be left out). `None` for no values or a statistic it does not know.
pub fn statistic(stat: &str, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let in_range = |range: &str| -> Option<f64> {
        let (low, high) = range.split_once(':')?;
        let low: f64 = if low.is_empty() {
            f64::NEG_INFINITY
        } else {
            low.parse().ok()?
        };
        let high: f64 = if high.is_empty() {
            f64::INFINITY
        } else {
            high.parse().ok()?
        };
        Some(values.iter().filter(|v| **v > low && **v <= high).count() as f64)
    };
    if let Some(range) = stat.strip_prefix("TC(").and_then(|r| r.strip_suffix(')')) {
        return in_range(range);
    }
    if let Some(range) = stat.strip_prefix("PR(").and_then(|r| r.strip_suffix(')')) {
        return in_range(range).map(|c| 100.0 * c / n);
    }
    match stat {
        "Sum" => Some(values.iter().sum()),
        "SampleCount" => Some(n),
        "Average" => Some(values.iter().sum::<f64>() / n),
        "Minimum" => values.iter().copied().reduce(f64::min),
        "Maximum" => values.iter().copied().reduce(f64::max),
        _ => {
            let p: f64 = stat.strip_prefix('p')?.parse().ok()?;
            let mut sorted = values.to_vec();
            sorted.sort_by(f64::total_cmp);
            let rank = ((p / 100.0 * n).ceil() as usize).clamp(1, sorted.len());
            Some(sorted[rank - 1])
        }
    }
}

/// The traffic a function served: `(version, period start in epoch ms)` → what that
/// version served in that period, or `None` (no datapoint, as CloudWatch returns for a
/// period without invocations).
pub type TrafficModel = Box<dyn Fn(&str, i64) -> Option<Served> + Send + Sync>;

/// CloudWatch, answering from a [`TrafficModel`]: a query's version is its
/// `ExecutedVersion` dimension, its value the statistic the query names over that
/// period's requests; no datapoint lies in the future of the clock. Custom metrics (no
/// `ExecutedVersion`) answer from `custom` by metric name, once per period.
pub struct FakeMetrics {
    pub traffic: TrafficModel,
    pub clock: TokioClock,
    pub custom: BTreeMap<String, f64>,
    pub alarms: Mutex<Vec<AlarmState>>,
    /// `GetMetricData` answers with this error while set.
    pub unavailable: AtomicBool,
    /// Every read: (start, end) in epoch seconds.
    pub reads: Mutex<Vec<(i64, i64)>>,
}

impl FakeMetrics {
    pub fn new(clock: TokioClock, traffic: TrafficModel) -> Self {
        FakeMetrics {
            traffic,
            clock,
            custom: BTreeMap::new(),
            alarms: Mutex::new(Vec::new()),
            unavailable: AtomicBool::new(false),
            reads: Mutex::new(Vec::new()),
        }
    }

    pub fn reads(&self) -> usize {
        self.reads.lock().unwrap().len()
    }

    fn value(&self, query: &MetricQuery, period_start_ms: i64) -> Option<f64> {
        let version = query
            .dimensions
            .iter()
            .find(|(k, _)| k == "ExecutedVersion")
            .map(|(_, v)| v.as_str());
        let Some(version) = version else {
            return self.custom.get(&query.metric_name).copied();
        };
        let served = (self.traffic)(version, period_start_ms)?;
        match query.metric_name.as_str() {
            "Invocations" => Some(served.invocations()),
            "Errors" => Some(served.errors),
            "Throttles" => Some(served.throttles),
            "Duration" => statistic(&query.stat, &served.latencies_ms),
            _ => None,
        }
    }
}

impl Metrics for FakeMetrics {
    async fn metric_data(
        &self,
        queries: &[MetricQuery],
        start_epoch_s: i64,
        end_epoch_s: i64,
    ) -> Result<BTreeMap<String, Series>> {
        self.reads
            .lock()
            .unwrap()
            .push((start_epoch_s, end_epoch_s));
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(injected(
                "cloudwatch",
                "GetMetricData",
                "InternalServiceError",
                true,
            ));
        }
        let now_s = self.clock.now_ms().div_euclid(1000);
        let mut out = BTreeMap::new();
        for q in queries {
            let period = i64::from(q.period_seconds.max(1));
            let mut series = Series::new();
            let mut t = start_epoch_s.div_euclid(period) * period;
            while t < end_epoch_s.min(now_s + 1) {
                if let Some(v) = self.value(q, t * 1000) {
                    series.push((t, v));
                }
                t += period;
            }
            out.insert(q.id.clone(), series);
        }
        Ok(out)
    }

    async fn alarms(&self, names: &[String]) -> Result<Vec<AlarmState>> {
        Ok(self
            .alarms
            .lock()
            .unwrap()
            .iter()
            .filter(|a| names.contains(&a.name))
            .cloned()
            .collect())
    }
}

/// The deployment's start time and the self-invokes handed to it.
#[derive(Default)]
pub struct FakeContinuation {
    pub started_ms: i64,
    /// `GetDeployment` fails while set.
    pub start_unknown: AtomicBool,
    /// The asynchronous invoke is refused while set.
    pub refuse: AtomicBool,
    pub payloads: Mutex<Vec<Value>>,
}

impl FakeContinuation {
    pub fn started_at(started_ms: i64) -> Self {
        FakeContinuation {
            started_ms,
            ..Default::default()
        }
    }

    /// The payloads handed on so far, oldest first.
    pub fn handed_off(&self) -> Vec<Value> {
        self.payloads.lock().unwrap().clone()
    }
}

impl Continuation for FakeContinuation {
    async fn deployment_started_ms(&self, deployment_id: &str) -> Result<i64> {
        if self.start_unknown.load(Ordering::SeqCst) {
            return Err(Error::DeploymentNotFound(deployment_id.into()));
        }
        Ok(self.started_ms)
    }

    async fn continue_later(&self, payload: Value) -> Result<()> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(injected("lambda", "Invoke", "AccessDeniedException", false));
        }
        self.payloads.lock().unwrap().push(payload);
        Ok(())
    }
}

/// The ledger's rounds of the judge during the shift: whatever the test wrote, for any
/// deployment; unreadable while `broken` is set.
#[derive(Default)]
pub struct FakeShiftRecords {
    pub rounds: Mutex<Vec<ShiftJudgement>>,
    pub broken: AtomicBool,
    pub reads: AtomicU32,
}

impl ShiftRecords for FakeShiftRecords {
    async fn shift_judgements(
        &self,
        _function: &str,
        _alias: &str,
        _deployment_id: &str,
    ) -> Result<Vec<ShiftJudgement>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.broken.load(Ordering::SeqCst) {
            return Err(injected(
                "dynamodb",
                "Query",
                "AccessDeniedException",
                false,
            ));
        }
        Ok(self.rounds.lock().unwrap().clone())
    }
}

/// The error a fake port answers while told to fail.
fn injected(service: &'static str, operation: &'static str, code: &str, retryable: bool) -> Error {
    Error::Aws {
        service,
        operation,
        code: Some(code.into()),
        message: "injected".into(),
        retryable,
    }
}

/// An endpoint that answers every request the same way, and counts them.
pub struct FakeHttp {
    pub answer: Answer,
    pub sent: AtomicU32,
}

impl FakeHttp {
    pub fn answering(status: u16, latency: Duration) -> Self {
        FakeHttp {
            answer: Answer::Status { status, latency },
            sent: AtomicU32::new(0),
        }
    }
}

impl HttpClient for FakeHttp {
    async fn send(
        &self,
        _method: &str,
        _url: &str,
        _headers: &[(String, String)],
        _body: Option<&str>,
        _timeout: Duration,
    ) -> Answer {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.answer.clone()
    }
}
