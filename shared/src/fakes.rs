//! In-memory ports of the hook frame and the pre-traffic gate ([`crate::ports`]), for
//! tests of the frame and the gates without AWS (the `fakes` feature). The post-traffic,
//! rollback and redrive ports have theirs beside them (`post_traffic::fakes`, ...).

use crate::appspec::{LambdaTarget, LifecycleHook as Hook};
use crate::decision::{Decision, Verdict};
use crate::error::{Error, Result};
use crate::ports::{
    DecisionLog, DeploymentInfo, Deployments, FunctionSnapshot, Functions, InvokeOutcome, Notifier,
    PolicyDocument, PolicyStore, ReportOutcome,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn target() -> LambdaTarget {
    LambdaTarget {
        function_name: "orders".into(),
        function_ref: "orders".into(),
        alias: "live".into(),
        current_version: "1".into(),
        target_version: "2".into(),
        hooks: vec![Hook {
            event: "BeforeAllowTraffic".into(),
            function: "CodeDeployHook_pre".into(),
        }],
    }
}

pub fn throttled() -> Error {
    Error::Aws {
        service: "lambda",
        operation: "Invoke",
        code: Some("TooManyRequestsException".into()),
        message: "Rate exceeded".into(),
        retryable: true,
    }
}

#[derive(Clone, Default)]
pub struct FakeDeployments {
    pub lookup_delay: Duration,
    pub missing: bool,
    /// The deployment's status (`InProgress` when unset).
    pub status: Option<String>,
    pub reports: Arc<Mutex<Vec<(String, String, Verdict)>>>,
    pub report_errors: Arc<Mutex<VecDeque<Error>>>,
}

impl FakeDeployments {
    pub fn reports(&self) -> Vec<(String, String, Verdict)> {
        self.reports.lock().unwrap().clone()
    }
}

impl Deployments for FakeDeployments {
    async fn lambda_deployment(&self, deployment_id: &str) -> Result<DeploymentInfo> {
        tokio::time::sleep(self.lookup_delay).await;
        if self.missing {
            return Err(Error::DeploymentNotFound(deployment_id.into()));
        }
        Ok(DeploymentInfo {
            deployment_id: deployment_id.into(),
            application: "orders".into(),
            deployment_group: "live".into(),
            status: self.status.clone().unwrap_or_else(|| "InProgress".into()),
            target: target(),
        })
    }

    async fn report_hook(
        &self,
        deployment_id: &str,
        execution_id: &str,
        verdict: Verdict,
    ) -> Result<ReportOutcome> {
        if let Some(e) = self.report_errors.lock().unwrap().pop_front() {
            return Err(e);
        }
        let mut reports = self.reports.lock().unwrap();
        if reports
            .iter()
            .any(|(d, e, _)| d == deployment_id && e == execution_id)
        {
            return Ok(ReportOutcome::AlreadyCompleted);
        }
        reports.push((deployment_id.into(), execution_id.into(), verdict));
        Ok(ReportOutcome::Accepted)
    }
}

/// What one invoke of the fake function does.
#[derive(Clone)]
pub enum Answer {
    Ok(&'static str),
    FunctionError(&'static str),
    Fail(fn() -> Error),
}

#[derive(Default)]
pub struct FakeFunctions {
    pub snapshot: FunctionSnapshot,
    pub missing: bool,
    pub delay: Duration,
    /// Answers in order; the last one repeats.
    pub answers: Mutex<VecDeque<Answer>>,
    pub calls: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub qualifiers: Mutex<Vec<String>>,
}

pub fn active_snapshot() -> FunctionSnapshot {
    FunctionSnapshot {
        version: "2".into(),
        state: Some("Active".into()),
        last_update_status: Some("Successful".into()),
        architectures: vec!["arm64".into()],
        runtime: Some("provided.al2023".into()),
        memory_mb: Some(256),
        timeout_seconds: Some(10),
        env_keys: vec!["TABLE_NAME".into()],
        ..Default::default()
    }
}

impl FakeFunctions {
    pub fn answering(answers: Vec<Answer>) -> Self {
        Self {
            snapshot: active_snapshot(),
            answers: Mutex::new(answers.into()),
            ..Default::default()
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn next_answer(&self) -> Answer {
        let mut answers = self.answers.lock().unwrap();
        if answers.len() > 1 {
            answers.pop_front().unwrap()
        } else {
            answers.front().cloned().unwrap_or(Answer::Ok("{}"))
        }
    }
}

impl Functions for FakeFunctions {
    async fn configuration(&self, function: &str, version: &str) -> Result<FunctionSnapshot> {
        if self.missing {
            return Err(Error::FunctionNotFound(format!("{function}:{version}")));
        }
        Ok(self.snapshot.clone())
    }

    async fn invoke(
        &self,
        _function: &str,
        version: &str,
        _payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<InvokeOutcome> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.qualifiers.lock().unwrap().push(version.into());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let slept = tokio::time::timeout(timeout, tokio::time::sleep(self.delay)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if slept.is_err() {
            return Err(Error::Aws {
                service: "lambda",
                operation: "Invoke",
                code: None,
                message: "operation timed out".into(),
                retryable: true,
            });
        }
        let (function_error, body) = match self.next_answer() {
            Answer::Ok(body) => (None, body),
            Answer::FunctionError(body) => (Some("Unhandled".to_owned()), body),
            Answer::Fail(make) => return Err(make()),
        };
        Ok(InvokeOutcome {
            error_type: function_error.as_ref().and_then(|_| {
                serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v["errorType"].as_str().map(str::to_owned))
            }),
            function_error,
            payload: body.as_bytes().to_vec(),
            duration_ms: self.delay.as_millis() as u64,
            executed_version: Some(version.into()),
            attempts: 1,
        })
    }
}

#[derive(Default)]
pub struct FakePolicies(pub Option<String>);

impl PolicyStore for FakePolicies {
    async fn policy(&self, function: &str) -> Result<Option<PolicyDocument>> {
        Ok(self.0.clone().map(|text| PolicyDocument {
            source: format!("ssm:/rollgate/policies/{function}"),
            text,
        }))
    }
}

#[derive(Default)]
pub struct FakeNotifier(pub Mutex<Vec<Decision>>);

impl Notifier for FakeNotifier {
    async fn announce(&self, decision: &Decision) -> Result<()> {
        self.0.lock().unwrap().push(decision.clone());
        Ok(())
    }
}

/// The decisions kept, with when; or every write refused (`denied`), as IAM would.
#[derive(Clone, Default)]
pub struct FakeDecisionLog {
    pub kept: Arc<Mutex<Vec<(Decision, i64)>>>,
    pub denied: bool,
}

impl FakeDecisionLog {
    pub fn kept(&self) -> Vec<(Decision, i64)> {
        self.kept.lock().unwrap().clone()
    }
}

impl DecisionLog for FakeDecisionLog {
    async fn keep(&self, decision: &Decision, at_ms: i64) -> Result<bool> {
        if self.denied {
            return Err(Error::Aws {
                service: "dynamodb",
                operation: "PutItem",
                code: Some("AccessDeniedException".into()),
                message: "not authorized to perform: dynamodb:PutItem".into(),
                retryable: false,
            });
        }
        if decision.function_name.is_none() || decision.alias.is_none() {
            return Ok(false);
        }
        self.kept.lock().unwrap().push((decision.clone(), at_ms));
        Ok(true)
    }
}
