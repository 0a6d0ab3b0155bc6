//! The decision record: what rollgate decided, and every piece of evidence behind it.
//!
//! Every function ends an invocation by building one [`Decision`], logging it as one
//! structured record, publishing it on SNS and counting it in EMF metrics.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not enough evidence either way (a skipped check, missing data).
    Inconclusive,
}

/// One check with what was expected, what was seen and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable, human-readable name, e.g. `config.state` or `smoke[health].json_pointer./status`.
    pub name: String,
    pub outcome: Outcome,
    /// What the policy asked for.
    pub expected: Value,
    /// What was observed.
    pub actual: Value,
    /// Free text that explains a failure (error message, mismatch path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Wall time the check took, in milliseconds (0 for checks on data already fetched).
    #[serde(default)]
    pub duration_ms: u64,
}

impl CheckResult {
    pub fn new(name: impl Into<String>, outcome: Outcome, expected: Value, actual: Value) -> Self {
        Self {
            name: name.into(),
            outcome,
            expected,
            actual,
            detail: None,
            duration_ms: 0,
        }
    }

    pub fn pass(name: impl Into<String>, expected: Value, actual: Value) -> Self {
        Self::new(name, Outcome::Pass, expected, actual)
    }

    pub fn fail(name: impl Into<String>, expected: Value, actual: Value) -> Self {
        Self::new(name, Outcome::Fail, expected, actual)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = ms;
        self
    }

    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }
}

/// The verdict a gate reports to CodeDeploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Succeeded,
    Failed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Succeeded => "Succeeded",
            Verdict::Failed => "Failed",
        }
    }

    /// A gate passes only when every check passed; `Inconclusive` fails closed
    /// unless the caller decided otherwise before building the checks.
    pub fn from_checks(checks: &[CheckResult]) -> Self {
        if checks.iter().all(CheckResult::passed) {
            Verdict::Succeeded
        } else {
            Verdict::Failed
        }
    }

    /// Fails only on a failed check: inconclusive checks do not count either way.
    pub fn unless_failed(checks: &[CheckResult]) -> Self {
        if checks.iter().any(|c| c.outcome == Outcome::Fail) {
            Verdict::Failed
        } else {
            Verdict::Succeeded
        }
    }
}

/// The complete, explainable record of one gate decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Which rollgate component decided (`pre-traffic-hook`, ...).
    pub component: String,
    pub verdict: Verdict,
    /// One sentence a person can read: why this verdict.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    /// Where the policy came from (`ssm:/rollgate/policies/orders`, `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_source: Option<String>,
    pub checks: Vec<CheckResult>,
    pub duration_ms: u64,
}

impl Decision {
    /// Checks that did not pass: failed, and inconclusive ones.
    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed())
    }

    /// How many checks ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome == outcome).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn verdict_needs_every_check_to_pass() {
        let ok = CheckResult::pass("a", json!(1), json!(1));
        let bad = CheckResult::fail("b", json!(1), json!(2));
        let unsure = CheckResult::new("c", Outcome::Inconclusive, json!(null), json!(null));
        assert_eq!(Verdict::from_checks(&[]), Verdict::Succeeded);
        assert_eq!(
            Verdict::from_checks(std::slice::from_ref(&ok)),
            Verdict::Succeeded
        );
        assert_eq!(Verdict::from_checks(&[ok.clone(), bad]), Verdict::Failed);
        assert_eq!(
            Verdict::from_checks(&[ok.clone(), unsure.clone()]),
            Verdict::Failed
        );
        assert_eq!(
            Verdict::unless_failed(&[ok.clone(), unsure.clone()]),
            Verdict::Succeeded
        );
        let bad = CheckResult::fail("b", json!(1), json!(2));
        assert_eq!(Verdict::unless_failed(&[ok, unsure, bad]), Verdict::Failed);
    }

    #[test]
    fn check_result_serialises_evidence() {
        let c = CheckResult::fail(
            "smoke[x].duration",
            json!({"max_ms": 10}),
            json!({"ms": 12}),
        )
        .with_detail("too slow")
        .with_duration_ms(12);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["outcome"], "fail");
        assert_eq!(v["detail"], "too slow");
        assert_eq!(v["duration_ms"], 12);
    }
}
