//! Releases made by any tool: Lambda's `CreateAlias` and `UpdateAlias` calls, as
//! EventBridge delivers them from CloudTrail (`detail-type: "AWS API Call via CloudTrail"`,
//! `source: "aws.lambda"`), turned into ledger rows. CodePipeline's Lambda deploy action,
//! Terraform, CDK, SAM without a DeploymentPreference and the CLI all move aliases this
//! way; their releases then get the same bake-window rollback as CodeDeploy's.
//!
//! | the call | row |
//! |---|---|
//! | failed (`errorCode`) | none |
//! | made by CodeDeploy (`invokedBy`) | none: the deployment's own state change records it |
//! | made by one of rollgate's roles | none: rollgate records its own changes |
//! | alias on `v` with `{w: weight}` | release `v → w`, in progress (a shift) |
//! | alias on `w`, no weights, `w` ≠ the version it served | release `served → w`, succeeded at the call's time |
//! | alias back on the version it served before a shift | CodeDeploy-like rollback row: the shift ended |
//! | alias on the version it already served | none: nothing was released |
//!
//! "The version it served" is what the ledger last saw the alias serve
//! ([`History::serving`]); an alias rollgate never saw has no previous version, and an
//! alarm then finds nothing to go back to.

use super::decide::AliasState;
use super::ledger::{DeploymentKind, DeploymentRecord, DeploymentStatus, History, Origin};
use crate::error::Error;
use crate::names::{self, FunctionRef};
use crate::scope::AllowList;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
pub const SOURCE: &str = "aws.lambda";
/// The calls that move an alias. Lambda names its CloudTrail events after the API version
/// (`UpdateAlias20150331`); the bare name is accepted too.
pub const ALIAS_CALLS: [&str; 2] = ["CreateAlias", "UpdateAlias"];
/// The services whose own alias changes are recorded by other events.
const RECORDED_ELSEWHERE: [&str; 1] = ["codedeploy.amazonaws.com"];

/// One alias change, as CloudTrail recorded the call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AliasChange {
    /// CloudTrail's `eventID`.
    pub event_id: String,
    /// `CreateAlias` or `UpdateAlias`.
    pub call: String,
    pub function: String,
    pub alias: String,
    /// `FunctionVersion` after the call.
    pub version: String,
    /// `RoutingConfig.AdditionalVersionWeights` after the call.
    pub weights: BTreeMap<String, f64>,
    /// `eventTime`, epoch ms.
    pub at_ms: i64,
    /// `userIdentity.arn` (or its type when it has none).
    pub caller: String,
    /// The role an assumed-role caller came from (`sessionContext.sessionIssuer.arn`).
    pub role: Option<String>,
    /// `userIdentity.invokedBy`: the service that made the call for the caller.
    pub invoked_by: Option<String>,
    /// `errorCode` of a call Lambda refused.
    pub error: Option<String>,
}

impl AliasChange {
    /// Who made the release, for the ledger and the announcement.
    pub fn initiator(&self) -> String {
        match &self.invoked_by {
            Some(via) => format!("{} via {via}", self.caller),
            None => self.caller.clone(),
        }
    }

    /// Why this call is not a release to record, if it is not one.
    pub fn not_recorded(&self, own_roles: &AllowList) -> Option<String> {
        if let Some(code) = &self.error {
            return Some(format!("the call failed ({code}): the alias did not move"));
        }
        if let Some(via) = &self.invoked_by
            && RECORDED_ELSEWHERE.contains(&via.as_str())
        {
            return Some(format!(
                "made by {via}: its deployment's state changes record it"
            ));
        }
        if self.role.as_deref().is_some_and(|r| own_roles.allows(r))
            || own_roles.allows(&self.caller)
        {
            return Some("made by rollgate itself: recorded where it acted".into());
        }
        None
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    event_name: String,
    event_time: Option<String>,
    #[serde(default)]
    user_identity: Identity,
    #[serde(default)]
    request_parameters: Option<AliasFields>,
    #[serde(default)]
    response_elements: Option<AliasFields>,
    error_code: Option<String>,
    user_agent: Option<String>,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    #[serde(rename = "type")]
    kind: Option<String>,
    arn: Option<String>,
    invoked_by: Option<String>,
    session_context: Option<SessionContext>,
}

/// `userAgent` and `sourceIPAddress` name the AWS service that made a call for a caller
/// (`codedeploy.amazonaws.com`) when `invokedBy` is missing.
fn service_of(d: &Detail) -> Option<String> {
    d.user_identity.invoked_by.clone().or_else(|| {
        [&d.user_agent, &d.source_ip_address]
            .into_iter()
            .flatten()
            .find(|s| s.ends_with(".amazonaws.com") && !s.contains(' '))
            .cloned()
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionContext {
    session_issuer: Option<Issuer>,
}

#[derive(Debug, Deserialize)]
struct Issuer {
    arn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AliasFields {
    alias_arn: Option<String>,
    function_name: Option<String>,
    name: Option<String>,
    function_version: Option<String>,
    routing_config: Option<Routing>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Routing {
    #[serde(default)]
    additional_version_weights: BTreeMap<String, f64>,
}

/// Whether an event name is one of [`ALIAS_CALLS`], with or without Lambda's API-version
/// suffix.
pub fn is_alias_call(event_name: &str) -> Option<&'static str> {
    ALIAS_CALLS.into_iter().find(|call| {
        event_name.strip_prefix(call).is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix("20150331")
                    .is_some_and(|v| v.is_empty() || v.starts_with('v'))
        })
    })
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidEvent(format!("CloudTrail Lambda alias event: {e}"))
}

/// The `detail` of a CloudTrail event for an alias call. Another Lambda call is refused
/// (the rule should not have sent it); the alias's function, name and version are held to
/// Lambda's naming rules.
pub fn parse_detail(detail: &Value, time_ms: Option<i64>) -> Result<AliasChange, Error> {
    let d: Detail = serde_path_to_error::deserialize(detail).map_err(invalid)?;
    let invoked_by = service_of(&d);
    let call = is_alias_call(&d.event_name).ok_or_else(|| {
        invalid(format!(
            "eventName {:?} is not one of {ALIAS_CALLS:?}",
            d.event_name
        ))
    })?;
    let response = d.response_elements.unwrap_or_default();
    let request = d.request_parameters.unwrap_or_default();
    let (function, alias) = alias_of(&response, &request)?;
    let error = d.error_code.filter(|c| !c.is_empty());
    // A failed call has no response: what it asked for is kept only for the record.
    let version = response
        .function_version
        .or(request.function_version)
        .unwrap_or_default();
    if error.is_none() && !names::is_version(&version) {
        return Err(invalid(format!(
            "functionVersion {version:?} is not a published version"
        )));
    }
    let weights = response
        .routing_config
        .or(request.routing_config)
        .map(|r| r.additional_version_weights)
        .unwrap_or_default();
    if let Some((v, w)) = weights
        .iter()
        .find(|(v, w)| !names::is_version(v) || !(0.0..=1.0).contains(*w))
    {
        return Err(invalid(format!(
            "routing weight {v:?}: {w} is not a version with a weight from 0 to 1"
        )));
    }
    let at_ms = d
        .event_time
        .as_deref()
        .and_then(super::run::timestamp_ms)
        .or(time_ms)
        .ok_or_else(|| invalid("the event has no eventTime"))?;
    let id = &d.user_identity;
    Ok(AliasChange {
        event_id: d.event_id.ok_or_else(|| invalid("eventID is missing"))?,
        call: call.to_owned(),
        function,
        alias,
        version,
        weights,
        at_ms,
        caller: id
            .arn
            .clone()
            .or_else(|| id.kind.clone())
            .unwrap_or_else(|| "unknown".into()),
        role: id
            .session_context
            .as_ref()
            .and_then(|s| s.session_issuer.as_ref())
            .and_then(|i| i.arn.clone()),
        invoked_by,
        error,
    })
}

/// Function and alias: from the alias ARN of the response, else the request's function
/// (a name or an ARN) and alias name.
fn alias_of(response: &AliasFields, request: &AliasFields) -> Result<(String, String), Error> {
    if let Some(arn) = &response.alias_arn {
        let r = FunctionRef::parse(arn).map_err(invalid)?;
        if let Some(alias) = r.qualifier.filter(|q| names::is_alias(q)) {
            return Ok((r.name.to_owned(), alias.to_owned()));
        }
        return Err(invalid(format!("aliasArn {arn:?} names no alias")));
    }
    let function = request
        .function_name
        .as_deref()
        .ok_or_else(|| invalid("requestParameters.functionName is missing"))?;
    let name = FunctionRef::parse(function).map_err(invalid)?.name;
    let alias = request
        .name
        .as_deref()
        .or(response.name.as_deref())
        .filter(|a| names::is_alias(a))
        .ok_or_else(|| invalid("requestParameters.name is not an alias name"))?;
    Ok((name.to_owned(), alias.to_owned()))
}

/// Why a change is no longer the alias's state (`GetAlias` now), if it is not: a later
/// change superseded it, and is recorded by its own event. Events arrive late and in any
/// order; only the change that still stands says what the alias serves.
pub fn superseded(change: &AliasChange, now: Option<&AliasState>) -> Option<String> {
    let Some(now) = now else {
        return Some("the alias no longer exists".into());
    };
    let same_weights = now.weights.len() == change.weights.len()
        && now
            .weights
            .iter()
            .all(|(v, w)| change.weights.get(v).is_some_and(|c| (c - w).abs() < 1e-9));
    if now.version == change.version && same_weights {
        return None;
    }
    Some(format!(
        "superseded: the alias is now on version {} with weights {:?}, not version {} with {:?} as this call left it",
        now.version, now.weights, change.version, change.weights
    ))
}

/// The ledger row of an alias change that still stands ([`superseded`]), given what the
/// ledger knew of the alias; `None`
/// when nothing was released (see the module's table).
pub fn to_record(change: &AliasChange, history: &History) -> Option<DeploymentRecord> {
    let served = history.serving();
    let shifting_to = change.weights.keys().find(|v| **v != change.version);
    let (from, to, status, kind) = match shifting_to {
        Some(new) => (
            change.version.clone(),
            new.clone(),
            DeploymentStatus::InProgress,
            DeploymentKind::Release,
        ),
        None if served.as_deref() == Some(change.version.as_str()) => {
            let shift = history.deployments.first().filter(|d| {
                d.status == DeploymentStatus::InProgress && d.origin != Origin::CodeDeploy
            })?;
            (
                shift.to_version.clone(),
                change.version.clone(),
                DeploymentStatus::Succeeded,
                DeploymentKind::Rollback,
            )
        }
        None => (
            served.unwrap_or_default(),
            change.version.clone(),
            DeploymentStatus::Succeeded,
            DeploymentKind::Release,
        ),
    };
    // CloudTrail's times have whole seconds: a change that still stands sorts after an
    // earlier recorded call of the same second. Never after a CodeDeploy deployment or a
    // rollout, though: one recorded while this call still stands began from the alias
    // this call left (its event was merely handled later), so it is the newer release.
    let created_ms = match history.deployments.first() {
        Some(d) if d.origin == Origin::Api => change.at_ms.max(d.created_ms + 1),
        _ => change.at_ms,
    };
    Some(DeploymentRecord {
        deployment_id: format!("ct-{}", change.event_id),
        application: "cloudtrail".into(),
        deployment_group: change.call.clone(),
        function: change.function.clone(),
        alias: change.alias.clone(),
        from_version: from,
        to_version: to,
        ended_ms: status.is_final().then_some(change.at_ms),
        status,
        kind,
        created_ms,
        started_ms: Some(change.at_ms),
        origin: Origin::Api,
        initiator: Some(change.initiator()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detail(name: &str, version: &str, weights: Value) -> Value {
        json!({
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "AssumedRole",
                "arn": "arn:aws:sts::123456789012:assumed-role/deployer/ci-run-7",
                "sessionContext": {"sessionIssuer": {"type": "Role",
                    "arn": "arn:aws:iam::123456789012:role/deployer"}}
            },
            "eventTime": "2026-12-04T10:00:00Z",
            "eventSource": "lambda.amazonaws.com",
            "eventName": name,
            "requestParameters": {"functionName": "orders", "name": "live",
                "functionVersion": version, "routingConfig": {"additionalVersionWeights": weights}},
            "responseElements": {
                "aliasArn": "arn:aws:lambda:eu-west-1:123456789012:function:orders:live",
                "name": "live", "functionVersion": version,
                "routingConfig": {"additionalVersionWeights": weights},
                "revisionId": "0b1c2d3e-0000-4000-8000-000000000000"
            },
            "eventID": "8a7b6c5d-1111-4222-8333-444455556666",
            "eventType": "AwsApiCall"
        })
    }

    fn served(version: &str) -> History {
        History {
            deployments: vec![DeploymentRecord {
                deployment_id: "d-1".into(),
                application: "a".into(),
                deployment_group: "g".into(),
                function: "orders".into(),
                alias: "live".into(),
                from_version: "1".into(),
                to_version: version.into(),
                status: DeploymentStatus::Succeeded,
                kind: DeploymentKind::Release,
                created_ms: 0,
                started_ms: Some(0),
                ended_ms: Some(1),
                origin: Origin::CodeDeploy,
                initiator: None,
            }],
            ..History::default()
        }
    }

    #[test]
    fn event_names_with_and_without_the_api_version() {
        assert_eq!(is_alias_call("UpdateAlias20150331"), Some("UpdateAlias"));
        assert_eq!(is_alias_call("CreateAlias20150331"), Some("CreateAlias"));
        assert_eq!(is_alias_call("UpdateAlias"), Some("UpdateAlias"));
        assert_eq!(is_alias_call("UpdateAlias20150331v2"), Some("UpdateAlias"));
        assert_eq!(is_alias_call("UpdateAliasX"), None);
        assert_eq!(is_alias_call("DeleteAlias20150331"), None);
        assert_eq!(is_alias_call("UpdateFunctionConfiguration20150331v2"), None);
    }

    #[test]
    fn a_plain_update_is_a_release_from_the_version_served() {
        let c = parse_detail(&detail("UpdateAlias20150331", "3", json!({})), None).unwrap();
        assert_eq!((c.function.as_str(), c.alias.as_str()), ("orders", "live"));
        assert_eq!(
            c.role.as_deref(),
            Some("arn:aws:iam::123456789012:role/deployer")
        );
        let r = to_record(&c, &served("2")).unwrap();
        assert_eq!((r.from_version.as_str(), r.to_version.as_str()), ("2", "3"));
        assert_eq!(r.status, DeploymentStatus::Succeeded);
        assert_eq!(r.ended_ms, Some(c.at_ms));
        assert_eq!(r.origin, Origin::Api);
        assert_eq!(
            r.initiator.as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/deployer/ci-run-7")
        );
        assert_eq!(r.deployment_id, "ct-8a7b6c5d-1111-4222-8333-444455556666");
        // Nothing known before: no previous version to go back to.
        assert_eq!(to_record(&c, &History::default()).unwrap().from_version, "");
        // The version it already served: nothing released.
        assert_eq!(to_record(&c, &served("3")), None);
    }

    #[test]
    fn a_weighted_update_is_a_shift_in_progress_and_its_end_a_release_or_a_return() {
        let shift =
            parse_detail(&detail("UpdateAlias20150331", "2", json!({"3": 0.1})), None).unwrap();
        let r = to_record(&shift, &served("2")).unwrap();
        assert_eq!((r.from_version.as_str(), r.to_version.as_str()), ("2", "3"));
        assert_eq!((r.status, r.ended_ms), (DeploymentStatus::InProgress, None));
        let history = History {
            deployments: vec![r.clone()],
            ..History::default()
        };
        assert_eq!(history.serving().as_deref(), Some("2"));
        // A CodeDeploy deployment recorded before this call's event was handled is newer.
        let mut by_codedeploy = served("2");
        by_codedeploy.deployments[0].created_ms = shift.at_ms + 400;
        let late = to_record(&shift, &by_codedeploy).unwrap();
        assert!(late.created_ms < by_codedeploy.deployments[0].created_ms);
        // The same second as the call recorded before: still after it.
        assert_eq!(r.created_ms, shift.at_ms);
        assert_eq!(
            to_record(&shift, &history).unwrap().created_ms,
            shift.at_ms + 1
        );
        let done = parse_detail(&detail("UpdateAlias20150331", "3", json!({})), None).unwrap();
        let end = to_record(&done, &history).unwrap();
        assert_eq!(
            (end.from_version.as_str(), end.kind),
            ("2", DeploymentKind::Release)
        );
        let back = parse_detail(&detail("UpdateAlias20150331", "2", json!({})), None).unwrap();
        let end = to_record(&back, &history).unwrap();
        assert_eq!(
            (end.from_version.as_str(), end.to_version.as_str(), end.kind),
            ("3", "2", DeploymentKind::Rollback)
        );
    }

    #[test]
    fn calls_recorded_elsewhere_or_failed_are_not_releases() {
        let own = AllowList::parse("arn:aws:iam::123456789012:role/deploy*");
        let c = parse_detail(&detail("UpdateAlias20150331", "3", json!({})), None).unwrap();
        assert!(c.not_recorded(&own).unwrap().contains("rollgate itself"));
        assert_eq!(c.not_recorded(&AllowList::default()), None);
        let mut by_codedeploy = detail("UpdateAlias20150331", "3", json!({}));
        by_codedeploy["userIdentity"]["invokedBy"] = json!("codedeploy.amazonaws.com");
        let c = parse_detail(&by_codedeploy, None).unwrap();
        assert!(
            c.not_recorded(&AllowList::default())
                .unwrap()
                .contains("codedeploy")
        );
        // Named only by the user agent, as CodeDeploy's calls through its role are.
        let mut by_agent = detail("UpdateAlias20150331", "3", json!({}));
        by_agent["userAgent"] = json!("codedeploy.amazonaws.com");
        let c = parse_detail(&by_agent, None).unwrap();
        assert!(
            c.not_recorded(&AllowList::default())
                .unwrap()
                .contains("codedeploy")
        );
        // A CLI user agent names no service.
        let mut by_cli = detail("UpdateAlias20150331", "3", json!({}));
        by_cli["userAgent"] = json!("aws-cli/2.22.0 md/awscrt#0.23.4 command/lambda.update-alias");
        by_cli["sourceIPAddress"] = json!("203.0.113.17");
        assert_eq!(
            parse_detail(&by_cli, None)
                .unwrap()
                .not_recorded(&AllowList::default()),
            None
        );
        let mut failed = detail("UpdateAlias20150331", "3", json!({}));
        failed["errorCode"] = json!("PreconditionFailedException");
        failed["responseElements"] = Value::Null;
        let c = parse_detail(&failed, None).unwrap();
        assert!(
            c.not_recorded(&AllowList::default())
                .unwrap()
                .contains("PreconditionFailed")
        );
    }

    #[test]
    fn only_a_change_that_still_stands_is_recorded() {
        let c = parse_detail(&detail("UpdateAlias20150331", "2", json!({"3": 0.1})), None).unwrap();
        let state = |v: &str, w: &[(&str, f64)]| AliasState {
            version: v.into(),
            weights: w.iter().map(|(k, x)| ((*k).to_owned(), *x)).collect(),
            revision_id: "r".into(),
        };
        assert_eq!(superseded(&c, Some(&state("2", &[("3", 0.1)]))), None);
        assert!(
            superseded(&c, Some(&state("2", &[("3", 0.2)])))
                .unwrap()
                .contains("superseded")
        );
        assert!(superseded(&c, Some(&state("3", &[]))).is_some());
        assert!(superseded(&c, None).unwrap().contains("no longer exists"));
    }

    #[test]
    fn malformed_alias_events_are_refused_with_the_field() {
        let mut bad = detail("UpdateAlias20150331", "$LATEST", json!({}));
        assert!(
            parse_detail(&bad, None)
                .unwrap_err()
                .to_string()
                .contains("functionVersion")
        );
        bad = detail("UpdateAlias20150331", "3", json!({"x": 0.1}));
        assert!(
            parse_detail(&bad, None)
                .unwrap_err()
                .to_string()
                .contains("routing weight")
        );
        bad = detail("DeleteAlias20150331", "3", json!({}));
        assert!(
            parse_detail(&bad, None)
                .unwrap_err()
                .to_string()
                .contains("eventName")
        );
        bad = detail("UpdateAlias20150331", "3", json!({}));
        bad["responseElements"]["aliasArn"] =
            json!("arn:aws:lambda:eu-west-1:123456789012:function:orders");
        assert!(
            parse_detail(&bad, None)
                .unwrap_err()
                .to_string()
                .contains("names no alias")
        );
    }
}
