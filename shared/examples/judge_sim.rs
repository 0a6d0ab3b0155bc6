//! The canary judge on simulated traffic, for `make bench` (section `judge`).
//!
//! Each trial runs the real post-traffic gate (`hook::run_gate` with `PostTraffic`)
//! through the in-memory CloudWatch of `post_traffic::fakes`, which answers every query
//! the gate makes (sums, sample counts, percentiles, trimmed counts) from simulated
//! requests, on tokio's paused clock. On the same requests it also runs Kayenta's
//! Mann-Whitney classifier as its documentation and source describe it, on the
//! per-period values Kayenta would be given (p99 per period, error rate per period).
//!
//!     cargo run --release -p rollgate --features fakes --example judge_sim -- [trials] [seed]
//!
//! Prints one JSON object: the cells and, per cell, the share of trials each judge
//! failed, passed or left inconclusive. Deterministic for a seed.

use rollgate::clock::{Instant, TokioClock};
use rollgate::decision::{Decision, Outcome};
use rollgate::fakes::{FakeDeployments, FakeNotifier, FakePolicies};
use rollgate::hook::{self, Hook, HookEvent};
use rollgate::post_traffic::fakes::{
    FakeContinuation, FakeHttp, FakeMetrics, FakeShiftRecords, Served, statistic,
};
use rollgate::post_traffic::{Ports, PostTraffic, stats};
use rollgate::report::ReportSlot;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const MINUTE_MS: i64 = 60_000;
/// CodeDeploy's `LambdaCanary10Percent10Minutes`-style canary: ten minutes of split
/// traffic before the full shift (the judge leaves out the first, the warm-up).
const CANARY_MINUTES: i64 = 10;
const HOOK_START_MS: i64 = 1_800_000_000_000;
const TIMEOUT_MS: f64 = 3_000.0;
const BASE_ERROR_RATE: f64 = 0.001;
const TOLERANCE_PCT: f64 = 20.0;

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Log-normal body with a heavier log-normal tail for 5 % of requests.
    HeavyTail,
    /// Log-normal, with 2 % of requests pinned at the timeout (ties).
    Timeouts,
}

#[derive(Clone, Copy, Debug)]
struct Change {
    name: &'static str,
    latency: f64,
    errors: f64,
    /// What the judge should say: "none" (must not fail), "latency" or "errors".
    regression: &'static str,
}

const CHANGES: [Change; 7] = [
    Change {
        name: "none",
        latency: 1.0,
        errors: 1.0,
        regression: "none",
    },
    Change {
        name: "better",
        latency: 0.8,
        errors: 0.5,
        regression: "none",
    },
    Change {
        name: "latency x1.2",
        latency: 1.2,
        errors: 1.0,
        regression: "margin",
    },
    Change {
        name: "latency x1.5",
        latency: 1.5,
        errors: 1.0,
        regression: "latency",
    },
    Change {
        name: "latency x2",
        latency: 2.0,
        errors: 1.0,
        regression: "latency",
    },
    Change {
        name: "errors x2",
        latency: 1.0,
        errors: 2.0,
        regression: "errors",
    },
    Change {
        name: "errors x10",
        latency: 1.0,
        errors: 10.0,
        regression: "errors",
    },
];

fn normal(rng: &mut fastrand::Rng) -> f64 {
    // Box-Muller.
    let (u1, u2) = (rng.f64().max(1e-300), rng.f64());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn latency(rng: &mut fastrand::Rng, shape: Shape, factor: f64) -> f64 {
    let base = match shape {
        Shape::HeavyTail => {
            if rng.f64() < 0.05 {
                250.0 * (0.7 * normal(rng)).exp()
            } else {
                50.0 * (0.5 * normal(rng)).exp()
            }
        }
        Shape::Timeouts => {
            if rng.f64() < 0.02 {
                TIMEOUT_MS
            } else {
                80.0 * (0.6 * normal(rng)).exp()
            }
        }
    };
    // Lambda's Duration is reported to the hundredth of a millisecond, and a request
    // never outlasts the timeout.
    ((base * factor).min(TIMEOUT_MS) * 100.0).round() / 100.0
}

fn poisson_binomial(rng: &mut fastrand::Rng, n: usize, p: f64) -> f64 {
    (0..n).filter(|_| rng.f64() < p).count() as f64
}

/// Every minute of one trial: what each version served.
fn simulate(
    seed: u64,
    per_minute: f64,
    new_share: f64,
    shape: Shape,
    change: Change,
) -> HashMap<(String, i64), Served> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = HashMap::new();
    let start = HOOK_START_MS - CANARY_MINUTES * MINUTE_MS;
    for minute in 0..CANARY_MINUTES {
        let at = start + minute * MINUTE_MS;
        for (version, share, factor, error_factor) in [
            ("1", 1.0 - new_share, 1.0, 1.0),
            ("2", new_share, change.latency, change.errors),
        ] {
            // Poisson arrivals around the mean rate.
            let mean = per_minute * share;
            let n = (mean + mean.sqrt() * normal(&mut rng)).round().max(0.0) as usize;
            let latencies_ms: Vec<f64> = (0..n).map(|_| latency(&mut rng, shape, factor)).collect();
            let errors = poisson_binomial(&mut rng, n, BASE_ERROR_RATE * error_factor);
            if n > 0 {
                out.insert(
                    (version.to_owned(), at),
                    Served {
                        latencies_ms,
                        errors,
                        throttles: 0.0,
                    },
                );
            }
        }
    }
    out
}

/// rollgate's verdicts on one trial: (canary.error_rate, canary.latency).
async fn rollgate(served: Arc<HashMap<(String, i64), Served>>) -> (Outcome, Outcome) {
    let clock = TokioClock::starting_at(HOOK_START_MS);
    let model =
        move |version: &str, period_ms: i64| served.get(&(version.to_owned(), period_ms)).cloned();
    let metrics = FakeMetrics::new(clock, Box::new(model));
    let continuation = FakeContinuation::started_at(HOOK_START_MS - CANARY_MINUTES * MINUTE_MS);
    let http = FakeHttp::answering(200, Duration::from_millis(1));
    // The defaults, with no bake: the canary's judgement is what is measured.
    let policy = json!({"post_traffic": {"bake_minutes": 0}}).to_string();
    let (deployments, policies, notifier) = (
        FakeDeployments::default(),
        FakePolicies(Some(policy)),
        FakeNotifier::default(),
    );
    let event = json!({"DeploymentId": "d-SIM", "LifecycleEventHookExecutionId": "x"});
    let shifts = FakeShiftRecords::default();
    let ports = Ports {
        metrics: &metrics,
        continuation: &continuation,
        http: &http,
        shifts: &shifts,
    };
    let mut gate = PostTraffic::new(ports, event.clone(), None);
    gate.clock = &clock;
    let slot = ReportSlot::new();
    let frame = Hook::new(
        "post-traffic-hook",
        &deployments,
        &policies,
        &notifier,
        &None::<rollgate::fakes::FakeDecisionLog>,
        &slot,
    );
    let decision: Decision = hook::run_gate(
        &frame,
        &gate,
        HookEvent::from_value(&event).expect("event"),
        Instant::now() + Duration::from_secs(900),
    )
    .await
    .decision();
    let outcome = |name: &str| {
        decision
            .checks
            .iter()
            .find(|c| c.name == name)
            .map_or(Outcome::Inconclusive, |c| c.outcome)
    };
    (outcome("canary.error_rate"), outcome("canary.latency"))
}

/// Kayenta's Mann-Whitney classifier on per-period values: a two-sided Mann-Whitney test
/// with the confidence interval of the location shift (Hodges-Lehmann) at 95 %; High
/// (a failure) when the interval's lower end lies above a quarter of the estimate's size
/// and the effect size (mean ratio, experiment over control) reaches the allowed increase
/// `1 + tolerance`; otherwise Pass. No data: Nodata (counted as inconclusive).
fn kayenta(control: &[f64], experiment: &[f64], allowed_ratio: f64) -> Outcome {
    if control.is_empty() || experiment.is_empty() {
        return Outcome::Inconclusive;
    }
    let mut diffs: Vec<f64> = experiment
        .iter()
        .flat_map(|e| control.iter().map(move |c| e - c))
        .collect();
    diffs.sort_by(f64::total_cmp);
    let (n, m) = (experiment.len() as f64, control.len() as f64);
    let estimate = if diffs.len() % 2 == 1 {
        diffs[diffs.len() / 2]
    } else {
        (diffs[diffs.len() / 2 - 1] + diffs[diffs.len() / 2]) / 2.0
    };
    let z = stats::normal_isf(0.025);
    let k = (n * m / 2.0 - z * (n * m * (n + m + 1.0) / 12.0).sqrt())
        .floor()
        .max(0.0) as usize;
    let lower = diffs[k.min(diffs.len() - 1)];
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let ratio = mean(experiment) / mean(control);
    if lower > 0.25 * estimate.abs() && ratio >= allowed_ratio {
        Outcome::Fail
    } else {
        Outcome::Pass
    }
}

/// Kayenta's per-period series over the same canary window as rollgate's (after the
/// warm-up minute): p99 and error rate of each minute with traffic.
fn kayenta_verdicts(served: &HashMap<(String, i64), Served>) -> (Outcome, Outcome) {
    let start = HOOK_START_MS - CANARY_MINUTES * MINUTE_MS;
    let series = |version: &str| -> (Vec<f64>, Vec<f64>) {
        (1..CANARY_MINUTES)
            .filter_map(|minute| served.get(&(version.to_owned(), start + minute * MINUTE_MS)))
            .map(|s| {
                let p99 = statistic("p99", &s.latencies_ms).unwrap_or(0.0);
                (p99, s.errors / s.latencies_ms.len() as f64)
            })
            .unzip()
    };
    let (old_p99, old_err) = series("1");
    let (new_p99, new_err) = series("2");
    let allowed = 1.0 + TOLERANCE_PCT / 100.0;
    // An error-rate series of zeros has no ratio: Kayenta calls identical data a Pass.
    let errors = if old_err.iter().chain(&new_err).all(|e| *e == 0.0) {
        Outcome::Pass
    } else {
        kayenta(&old_err, &new_err, allowed.max(f64::MIN_POSITIVE))
    };
    (errors, kayenta(&old_p99, &new_p99, allowed))
}

#[derive(Default)]
struct Tally {
    fail: u32,
    pass: u32,
    inconclusive: u32,
}

impl Tally {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Fail => self.fail += 1,
            Outcome::Pass => self.pass += 1,
            Outcome::Inconclusive => self.inconclusive += 1,
        }
    }

    fn json(&self, trials: u32) -> Value {
        let share = |x: u32| (f64::from(x) / f64::from(trials) * 1000.0).round() / 1000.0;
        json!({"fail": share(self.fail), "pass": share(self.pass), "inconclusive": share(self.inconclusive)})
    }
}

/// The verdict that counts for a cell: the latency judgement for latency changes, the
/// error judgement for error changes, and either failing for the cells without a
/// regression (a false fail).
fn verdict(change: Change, errors: Outcome, latency: Outcome) -> Outcome {
    match change.regression {
        "latency" | "margin" => latency,
        "errors" => errors,
        _ if errors == Outcome::Fail || latency == Outcome::Fail => Outcome::Fail,
        _ if errors == Outcome::Pass && latency == Outcome::Pass => Outcome::Pass,
        _ => Outcome::Inconclusive,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trials: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let seed: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    let mut cells = Vec::new();
    for per_minute in [20.0, 100.0, 1000.0] {
        for new_share in [0.1, 0.5] {
            for shape in [Shape::HeavyTail, Shape::Timeouts] {
                for change in CHANGES {
                    if change.regression == "errors" && matches!(shape, Shape::Timeouts) {
                        continue; // errors do not depend on the latency's shape
                    }
                    let (mut ours, mut theirs) = (Tally::default(), Tally::default());
                    for t in 0..trials {
                        let trial_seed = seed
                            ^ (u64::from(t) << 20)
                            ^ (per_minute as u64) << 8
                            ^ ((new_share * 10.0) as u64);
                        let served =
                            Arc::new(simulate(trial_seed, per_minute, new_share, shape, change));
                        let (errors, latency) = runtime.block_on(rollgate(served.clone()));
                        ours.add(verdict(change, errors, latency));
                        let (k_errors, k_latency) = kayenta_verdicts(&served);
                        theirs.add(verdict(change, k_errors, k_latency));
                    }
                    cells.push(json!({
                        "per_minute": per_minute, "split": format!("{:.0}/{:.0}", (1.0 - new_share) * 100.0, new_share * 100.0),
                        "shape": format!("{shape:?}"), "change": change.name, "regression": change.regression,
                        "rollgate": ours.json(trials), "kayenta": theirs.json(trials),
                    }));
                }
            }
        }
    }
    let out = json!({"trials": trials, "seed": seed, "canary_minutes": CANARY_MINUTES,
                     "base_error_rate": BASE_ERROR_RATE, "tolerance_pct": TOLERANCE_PCT, "cells": cells});
    println!("{out}");
}
