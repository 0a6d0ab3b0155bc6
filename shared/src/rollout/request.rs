//! What a rollout invocation asks: start one, act on the running one (pause, resume,
//! promote, abort), judge a step (the Scheduler's own invoke), or tell its status.

use super::decide::Action;
use crate::error::Error;
use crate::names::{self, FunctionRef};
use crate::policy::rollout::{Step, validate_steps};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Start {
        version: String,
        /// The request's own steps; `None`: the policy's.
        steps: Option<Vec<Step>>,
    },
    Act(Action),
    /// A scheduled judgement of the rollout `rollout_id` made at sequence `seq`.
    Step {
        rollout_id: String,
        seq: u64,
    },
    Status,
    /// A scheduled judgement of a CodeDeploy deployment's traffic shift.
    JudgeShift(ShiftRound),
}

/// Which judgement of a CodeDeploy shift a schedule asks for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShiftRound {
    pub deployment_id: String,
    /// 1 for the first judgement.
    pub round: u32,
    /// When rollgate learnt the deployment started (epoch ms): metrics are read from then.
    pub since_ms: i64,
}

/// A request and whom it is about and from.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub function: String,
    /// The function as given, when it was an ARN (checked against home by the caller).
    pub function_arn: Option<String>,
    pub alias: String,
    pub requester: String,
    pub reason: Option<String>,
    pub request: Request,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    action: String,
    function: String,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    steps: Option<Vec<Step>>,
    #[serde(default)]
    requester: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    rollout_id: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    shift: Option<ShiftRound>,
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidEvent(format!("rollout request: {e}"))
}

/// At most this many characters of a requester or a reason are kept.
pub use crate::rollback::manual::MANUAL_TEXT_MAX_CHARS as MAX_TEXT;

fn text(field: &str, v: Option<String>) -> Result<Option<String>, Error> {
    match v {
        Some(s) if s.chars().count() > MAX_TEXT || s.trim().is_empty() => Err(invalid(format!(
            "{field} must be 1 to {MAX_TEXT} characters"
        ))),
        other => Ok(other),
    }
}

/// A CodeDeploy deployment id as CodeDeploy writes them: `d-` and upper-case letters and
/// digits (nine today; the codedeploy model gives `DeploymentId` no pattern, so up to 64
/// are taken).
pub fn is_deployment_id(id: &str) -> bool {
    id.strip_prefix("d-").is_some_and(|rest| {
        (1..=64).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

/// Parse and check a request; nothing is read or moved before it passes.
pub fn parse(payload: &Value) -> Result<Envelope, Error> {
    let raw: Raw = serde_path_to_error::deserialize(payload).map_err(invalid)?;
    let f = FunctionRef::parse(&raw.function).map_err(|e| invalid(format!("function: {e}")))?;
    if f.qualifier.is_some() {
        return Err(invalid(
            "function: name the function, and the alias in `alias`",
        ));
    }
    let alias = raw.alias.unwrap_or_else(|| "live".into());
    if !names::is_alias(&alias) {
        return Err(invalid(format!("alias {alias:?} is not an alias name")));
    }
    if raw.action != "start" && raw.steps.is_some() {
        return Err(invalid("`steps` belong to start"));
    }
    let request = match raw.action.as_str() {
        "start" => {
            let version = raw
                .version
                .ok_or_else(|| invalid("start needs `version`"))?;
            if !names::is_version(&version) || version == "$LATEST" {
                return Err(invalid(format!(
                    "version {version:?} is not a published version"
                )));
            }
            if let Some(steps) = &raw.steps {
                validate_steps("steps", steps).map_err(invalid)?;
            }
            Request::Start {
                version,
                steps: raw.steps,
            }
        }
        "pause" => Request::Act(Action::Pause),
        "resume" => Request::Act(Action::Resume),
        "promote" => Request::Act(Action::Promote),
        "abort" => Request::Act(Action::Abort),
        "status" => Request::Status,
        "judge_shift" => Request::JudgeShift(
            raw.shift
                .filter(|s| is_deployment_id(&s.deployment_id))
                .ok_or_else(|| {
                    invalid("judge_shift needs `shift` with a CodeDeploy deployment id")
                })?,
        ),
        "step" => Request::Step {
            rollout_id: raw
                .rollout_id
                .ok_or_else(|| invalid("step needs `rollout_id`"))?,
            seq: raw.seq.ok_or_else(|| invalid("step needs `seq`"))?,
        },
        other => {
            return Err(invalid(format!(
                "action {other:?} is not start, pause, resume, promote, abort, status or step"
            )));
        }
    };
    Ok(Envelope {
        function: f.name.to_owned(),
        function_arn: f.is_arn().then(|| raw.function.clone()),
        alias,
        requester: text("requester", raw.requester)?.unwrap_or_else(|| "unknown".into()),
        reason: text("reason", raw.reason)?,
        request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_start_with_its_own_steps() {
        let e = parse(
            &json!({"action": "start", "function": "orders", "version": "7",
            "steps": [{"weight": 5, "hold": "1h"}, {"weight": 25, "hold": "4h"},
                      {"weight": 50, "hold": "8h"}, {"weight": 100}],
            "requester": "pipeline"}),
        )
        .unwrap();
        assert_eq!((e.function.as_str(), e.alias.as_str()), ("orders", "live"));
        let Request::Start { version, steps } = e.request else {
            panic!()
        };
        assert_eq!(version, "7");
        assert_eq!(steps.unwrap()[1].hold, Some(4 * 3600));
    }

    #[test]
    fn the_published_sample_is_a_start() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/rollout-start.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let e = parse(&v).unwrap();
        let Request::Start { steps, .. } = e.request else {
            panic!("{e:?}")
        };
        let weights: Vec<f64> = steps.unwrap().iter().map(|s| s.weight).collect();
        assert_eq!(weights, [5.0, 25.0, 50.0, 100.0]);
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let cases = [
            (
                json!({"action": "start", "function": "orders"}),
                "needs `version`",
            ),
            (
                json!({"action": "start", "function": "orders", "version": "$LATEST"}),
                "published",
            ),
            (
                json!({"action": "start", "function": "orders:live", "version": "2"}),
                "alias",
            ),
            (
                json!({"action": "start", "function": "orders", "version": "2",
                    "steps": [{"weight": 5}, {"weight": 100}]}),
                "held",
            ),
            (json!({"action": "jump", "function": "orders"}), "not start"),
            (
                json!({"action": "pause", "function": "orders", "steps": []}),
                "belong to start",
            ),
            (
                json!({"action": "pause", "function": "x".repeat(65)}),
                "function",
            ),
            (
                json!({"action": "pause", "function": "orders", "requester": ""}),
                "requester",
            ),
            (
                json!({"action": "step", "function": "orders", "rollout_id": "rl-1"}),
                "seq",
            ),
            (
                json!({"action": "pause", "function": "orders", "extra": 1}),
                "unknown field",
            ),
        ];
        for (payload, want) in cases {
            let err = parse(&payload).unwrap_err().to_string();
            assert!(err.contains(want), "{err} / {want}");
        }
    }

    #[test]
    fn operator_actions_and_the_schedulers_step() {
        let e = parse(&json!({"action": "abort", "function":
            "arn:aws:lambda:us-east-1:123456789012:function:orders", "alias": "prod",
            "requester": "alice", "reason": "p99 on the dashboard"}))
        .unwrap();
        assert_eq!(e.request, Request::Act(Action::Abort));
        assert!(e.function_arn.is_some());
        let e =
            parse(&json!({"action": "step", "function": "orders", "rollout_id": "rl-1", "seq": 4}))
                .unwrap();
        assert_eq!(
            e.request,
            Request::Step {
                rollout_id: "rl-1".into(),
                seq: 4
            }
        );
    }
}
