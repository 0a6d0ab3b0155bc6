//! The pre-traffic gate (`BeforeAllowTraffic`): configuration checks on the target
//! version, then the policy's smoke tests invoked on that exact version, concurrently.

pub mod checks;

use crate::clock::Instant;
use crate::decision::CheckResult;
use crate::error::Error;
use crate::hook::{Budget, Evaluator};
use crate::policy::{Policy, SmokeTest};
use crate::ports::InvokeOutcome;
use crate::ports::{DeploymentInfo, Functions};
use futures::StreamExt;
use std::time::Duration;

pub const COMPONENT: &str = "pre-traffic-hook";

/// Backoff before retry `attempt` (1-based) of a smoke test: from 100 ms, at most 2 s.
pub fn backoff(attempt: u32) -> Duration {
    crate::clock::backoff(attempt, Duration::from_millis(100), Duration::from_secs(2))
}

pub struct PreTraffic<'a, F> {
    pub functions: &'a F,
}

impl<F: Functions> PreTraffic<'_, F> {
    /// One smoke test: invoke the target version, retrying transient errors with backoff
    /// while the budget lasts, then evaluate every expectation.
    async fn smoke(
        &self,
        function: &str,
        version: &str,
        test: &SmokeTest,
        budget: Budget,
    ) -> Vec<CheckResult> {
        let started = Instant::now();
        let payload = test.payload_bytes();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = budget.remaining();
            if left.is_zero() {
                return vec![checks::smoke_error(
                    &test.name,
                    "the gate budget ran out before the smoke test could run",
                    attempts - 1,
                    started.elapsed().as_millis() as u64,
                )];
            }
            match self
                .functions
                .invoke(function, version, payload.clone(), left)
                .await
            {
                Ok(outcome) => {
                    let outcome = InvokeOutcome {
                        attempts,
                        ..outcome
                    };
                    return checks::evaluate_smoke(test, &outcome);
                }
                Err(e) if e.is_retryable() && attempts <= test.retries => {
                    tracing::info!(test = %test.name, attempt = attempts, error = %e, "transient invoke error, retrying");
                    let pause = backoff(attempts).min(budget.remaining());
                    tokio::time::sleep(pause).await;
                }
                Err(e) => {
                    let message = if budget.remaining().is_zero() {
                        format!("no answer before the gate budget ran out: {e}")
                    } else {
                        e.to_string()
                    };
                    return vec![checks::smoke_error(
                        &test.name,
                        &message,
                        attempts,
                        started.elapsed().as_millis() as u64,
                    )];
                }
            }
        }
    }
}

impl<F: Functions> Evaluator for PreTraffic<'_, F> {
    fn budget(&self, policy: &Policy) -> Duration {
        policy.pre_traffic.budget()
    }

    async fn evaluate(
        &self,
        info: &DeploymentInfo,
        policy: &Policy,
        budget: Budget,
        out: &mut Vec<CheckResult>,
    ) -> Option<String> {
        let target = &info.target;
        // Always the version number, never the alias: the alias still serves the old one.
        let started = Instant::now();
        let snapshot = match self
            .functions
            .configuration(&target.function_name, &target.target_version)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                let name = if matches!(e, Error::FunctionNotFound(_)) {
                    "function"
                } else {
                    "config"
                };
                out.push(
                    CheckResult::fail(
                        name,
                        serde_json::json!(format!(
                            "{}:{}",
                            target.function_name, target.target_version
                        )),
                        serde_json::json!(null),
                    )
                    .with_detail(e.to_string())
                    .with_duration_ms(started.elapsed().as_millis() as u64),
                );
                return None;
            }
        };
        let config = checks::config_checks(&snapshot, &policy.pre_traffic.checks);
        let config_ok = config.iter().all(CheckResult::passed);
        out.extend(config);
        if !config_ok {
            // A version that is not Active (or violates a guard) is not invoked at all.
            return None;
        }

        let tests = &policy.pre_traffic.smoke_tests;
        let concurrency = policy.pre_traffic.concurrency.max(1);
        // Futures are created up front (they do nothing until polled) and run at most
        // `concurrency` at a time.
        let pending: Vec<_> = tests
            .iter()
            .map(|t| self.smoke(&target.function_name, &target.target_version, t, budget))
            .collect();
        let mut results = futures::stream::iter(pending).buffer_unordered(concurrency);
        while let Some(r) = results.next().await {
            out.extend(r);
        }
        None
    }
}
