//! What arrives at the alarm-rollback function, normalised.
//!
//! One alarm state change can reach rollgate in three envelopes, all understood here:
//! - the EventBridge event `detail-type: "CloudWatch Alarm State Change"`;
//! - the payload of an alarm's direct Lambda action (`{"alarmArn", "alarmData": {...}}`);
//! - an SNS notification (`{"Records": [{"Sns": {"Message": "<alarm JSON>"}}]}`),
//!   whose message uses the older PascalCase alarm format (`Trigger.Dimensions`...).
//!
//! The same function also receives EventBridge "CodeDeploy Deployment State-change
//! Notification" events, which feed the deployment ledger.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use super::cloudtrail;
use crate::error::Error;
use crate::limits::{ALARM_NAME_MAX_CHARS, ALARM_STATE_REASON_MAX_CHARS, cut};
use crate::scope::Home;

pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";
pub const DEPLOYMENT_DETAIL_TYPE: &str = "CodeDeploy Deployment State-change Notification";
/// The only source of [`DEPLOYMENT_DETAIL_TYPE`] events.
const DEPLOYMENT_SOURCE: &str = "aws.codedeploy";
/// What an EventBridge schedule rule sends its target (`source` `aws.events`): the
/// account's delivery summary is due.
pub const SCHEDULED_DETAIL_TYPE: &str = "Scheduled Event";
const SCHEDULED_SOURCE: &str = "aws.events";

/// The envelope an alarm arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Envelope {
    EventBridge,
    LambdaAction,
    Sns,
    /// Not an alarm: an operator's rollback request ([`super::manual`]), decided and
    /// carried out as an alarm would be.
    Manual,
}

/// One metric an alarm watches, with its dimensions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MetricRef {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub dimensions: BTreeMap<String, String>,
}

/// An alarm state change, whatever envelope it came in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlarmSignal {
    pub envelope: Envelope,
    pub alarm_name: String,
    pub alarm_arn: Option<String>,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub previous_state: Option<String>,
    /// When the alarm changed state, as the alarm reported it.
    pub state_timestamp: Option<String>,
    pub reason: Option<String>,
    /// A composite alarm (its configuration has an `alarmRule` and no metrics).
    pub composite: bool,
    pub metrics: Vec<MetricRef>,
    /// The delivery's own id (EventBridge `id`, SNS `MessageId`), when it has one.
    pub delivery_id: Option<String>,
}

impl AlarmSignal {
    /// Identifies the state change itself, not its delivery: the same transition
    /// delivered twice, or once per envelope, has the same key.
    pub fn event_key(&self) -> String {
        if self.envelope == Envelope::Manual {
            return format!("manual:{}", self.delivery_id.as_deref().unwrap_or("-"));
        }
        match &self.state_timestamp {
            Some(ts) => format!("alarm:{}:{}@{}", self.alarm_name, self.state, ts),
            None => format!(
                "alarm:{}:{}#{}",
                self.alarm_name,
                self.state,
                self.delivery_id.as_deref().unwrap_or("-")
            ),
        }
    }

    pub fn is_alarm(&self) -> bool {
        self.state == "ALARM"
    }

    pub fn is_manual(&self) -> bool {
        self.envelope == Envelope::Manual
    }

    /// What asked for the action, as the announcements say it: `alarm X fired`, or
    /// `manual rollback by alice (reason: ...)`.
    pub fn cause(&self) -> String {
        match (self.envelope, &self.reason) {
            (Envelope::Manual, Some(r)) => format!("{} (reason: {r})", self.alarm_name),
            (Envelope::Manual, None) => self.alarm_name.clone(),
            _ => format!("alarm {} fired", self.alarm_name),
        }
    }
}

/// A CodeDeploy deployment state change (START, SUCCESS, FAILURE, STOP, READY).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeploymentChange {
    pub event_id: Option<String>,
    pub application: String,
    pub deployment_group: String,
    pub deployment_id: String,
    pub state: String,
    /// The event's `time`, RFC 3339.
    pub time: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Alarm(AlarmSignal),
    Deployment(DeploymentChange),
    /// A Lambda alias moved by any caller, as CloudTrail recorded it.
    AliasChange(super::cloudtrail::AliasChange),
    /// An operator's request: roll back now, freeze, unfreeze.
    Manual(super::manual::ManualRequest),
    /// The stack's schedule: emit the whole account's delivery metrics. The rule's ARN.
    Schedule {
        rule: Option<String>,
    },
}

// --- EventBridge / Lambda action (camelCase) -------------------------------------

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: Option<StateDetail>,
    previous_state: Option<StateDetail>,
    #[serde(default)]
    configuration: Configuration,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateDetail {
    value: String,
    reason: Option<String>,
    timestamp: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Configuration {
    #[serde(default)]
    metrics: Vec<MetricQuery>,
    alarm_rule: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricQuery {
    metric_stat: Option<MetricStat>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MetricStat {
    metric: Metric,
}

#[derive(Debug, Serialize, Deserialize)]
struct Metric {
    namespace: Option<String>,
    name: Option<String>,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LambdaAction {
    alarm_arn: Option<String>,
    alarm_data: AlarmDetail,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentDetail {
    application: String,
    deployment_group: String,
    deployment_id: String,
    state: String,
}

fn from_detail(
    envelope: Envelope,
    d: AlarmDetail,
    arn: Option<String>,
    delivery_id: Option<String>,
) -> AlarmSignal {
    let state = d.state.unwrap_or(StateDetail {
        value: String::new(),
        reason: None,
        timestamp: None,
    });
    AlarmSignal {
        envelope,
        alarm_name: d.alarm_name,
        alarm_arn: arn,
        state: state.value,
        previous_state: d.previous_state.map(|p| p.value),
        state_timestamp: state.timestamp,
        reason: state.reason.map(|r| cut(&r, ALARM_STATE_REASON_MAX_CHARS)),
        composite: d.configuration.alarm_rule.is_some(),
        metrics: d
            .configuration
            .metrics
            .into_iter()
            .filter_map(|q| q.metric_stat)
            .map(|s| MetricRef {
                namespace: s.metric.namespace,
                name: s.metric.name,
                dimensions: s.metric.dimensions,
            })
            .collect(),
        delivery_id,
    }
}

// --- SNS (PascalCase alarm notification) ------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAlarm {
    alarm_name: String,
    alarm_arn: Option<String>,
    new_state_value: String,
    old_state_value: Option<String>,
    new_state_reason: Option<String>,
    state_change_time: Option<String>,
    #[serde(default)]
    trigger: Option<Trigger>,
    /// Composite alarms carry their rule here.
    alarm_rule: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Trigger {
    metric_name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    dimensions: Vec<SnsDimension>,
    #[serde(default)]
    metrics: Vec<SnsMetricQuery>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnsDimension {
    #[serde(alias = "Name")]
    name: String,
    #[serde(alias = "Value")]
    value: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMetricQuery {
    metric_stat: Option<SnsMetricStat>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMetricStat {
    metric: SnsMetric,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMetric {
    metric_name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    dimensions: Vec<SnsDimension>,
}

fn dims(list: Vec<SnsDimension>) -> BTreeMap<String, String> {
    list.into_iter().map(|d| (d.name, d.value)).collect()
}

fn from_sns(message: &str, message_id: Option<String>) -> Result<AlarmSignal, Error> {
    let a: SnsAlarm = serde_json::from_str(message).map_err(|e| {
        Error::InvalidEvent(format!(
            "Records[].Sns.Message is not a CloudWatch alarm notification: {e}"
        ))
    })?;
    let trigger = a.trigger.unwrap_or_default();
    let mut metrics = Vec::new();
    if trigger.metric_name.is_some() || !trigger.dimensions.is_empty() {
        metrics.push(MetricRef {
            namespace: trigger.namespace,
            name: trigger.metric_name,
            dimensions: dims(trigger.dimensions),
        });
    }
    for q in trigger.metrics {
        if let Some(s) = q.metric_stat {
            metrics.push(MetricRef {
                namespace: s.metric.namespace,
                name: s.metric.metric_name,
                dimensions: dims(s.metric.dimensions),
            });
        }
    }
    Ok(AlarmSignal {
        envelope: Envelope::Sns,
        alarm_name: a.alarm_name,
        alarm_arn: a.alarm_arn,
        state: a.new_state_value,
        previous_state: a.old_state_value,
        state_timestamp: a.state_change_time,
        reason: a
            .new_state_reason
            .map(|r| cut(&r, ALARM_STATE_REASON_MAX_CHARS)),
        composite: a.alarm_rule.is_some() && metrics.is_empty(),
        metrics,
        delivery_id: message_id,
    })
}

fn invalid(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidEvent(format!("{what}: {e}"))
}

/// Recognise and parse one invocation payload. An SNS batch may hold several alarms.
pub fn parse(payload: &Value) -> Result<Vec<Inbound>, Error> {
    let obj = payload
        .as_object()
        .ok_or_else(|| Error::InvalidEvent("expected a JSON object".into()))?;
    if let Some(kind) = obj.get("detail-type").and_then(Value::as_str) {
        return parse_eventbridge(payload, obj, kind);
    }
    if obj.contains_key("alarmData") {
        let a: LambdaAction = serde_path_to_error::deserialize(payload)
            .map_err(|e| invalid("CloudWatch alarm Lambda action", e))?;
        return Ok(vec![Inbound::Alarm(from_detail(
            Envelope::LambdaAction,
            a.alarm_data,
            a.alarm_arn,
            None,
        ))]);
    }
    if let Some(records) = obj.get("Records").and_then(Value::as_array) {
        return parse_sns_records(records);
    }
    if obj.contains_key("action") {
        return Ok(vec![Inbound::Manual(super::manual::parse(payload)?)]);
    }
    Err(Error::InvalidEvent(
        "not an alarm state change (EventBridge, Lambda action or SNS), a CodeDeploy state-change event nor a manual request (`action`: rollback, freeze or unfreeze)"
            .into(),
    ))
}

/// An EventBridge event of `kind`: an alarm state change from CloudWatch or a deployment
/// state change from CodeDeploy.
fn parse_eventbridge(
    payload: &Value,
    obj: &serde_json::Map<String, Value>,
    kind: &str,
) -> Result<Vec<Inbound>, Error> {
    // Only CloudWatch emits alarm state changes and only CodeDeploy deployment state
    // changes (EventBridge refuses `aws.*` sources from anybody else): an event of these
    // kinds from another source is forged and changes nothing.
    let want = match kind {
        ALARM_DETAIL_TYPE => "aws.cloudwatch",
        DEPLOYMENT_DETAIL_TYPE => DEPLOYMENT_SOURCE,
        cloudtrail::DETAIL_TYPE => cloudtrail::SOURCE,
        SCHEDULED_DETAIL_TYPE => SCHEDULED_SOURCE,
        other => {
            return Err(Error::InvalidEvent(format!(
                "detail-type {other:?} is not handled (expected {ALARM_DETAIL_TYPE:?}, {DEPLOYMENT_DETAIL_TYPE:?}, {:?} or {SCHEDULED_DETAIL_TYPE:?})",
                cloudtrail::DETAIL_TYPE
            )));
        }
    };
    check_source(obj, kind, want)?;
    if kind == SCHEDULED_DETAIL_TYPE {
        let ev: EventBridgeEvent<Value> = serde_path_to_error::deserialize(payload)
            .map_err(|e| invalid("EventBridge Scheduled Event", e))?;
        let rule = ev.resources.and_then(|r| r.into_iter().next());
        return Ok(vec![Inbound::Schedule { rule }]);
    }
    if kind == ALARM_DETAIL_TYPE {
        let ev: EventBridgeEvent<AlarmDetail> = serde_path_to_error::deserialize(payload)
            .map_err(|e| invalid("CloudWatch Alarm State Change event", e))?;
        let arn = ev
            .resources
            .as_ref()
            .and_then(|r| r.iter().find(|a| a.contains(":alarm:")).cloned());
        let alarm = from_detail(Envelope::EventBridge, ev.detail, arn, ev.id);
        return Ok(vec![Inbound::Alarm(alarm)]);
    }
    if kind == cloudtrail::DETAIL_TYPE {
        let ev: EventBridgeEvent<Value> = serde_path_to_error::deserialize(payload)
            .map_err(|e| invalid("CloudTrail event", e))?;
        let time_ms = ev.time.map(|t| t.timestamp_millis());
        let change = cloudtrail::parse_detail(&ev.detail, time_ms)?;
        return Ok(vec![Inbound::AliasChange(change)]);
    }
    Ok(vec![Inbound::Deployment(deployment_change(payload)?)])
}

/// `source` must be the one AWS service that emits events of `kind`.
fn check_source(obj: &serde_json::Map<String, Value>, kind: &str, want: &str) -> Result<(), Error> {
    let source = obj.get("source").and_then(Value::as_str);
    if source != Some(want) {
        return Err(Error::InvalidEvent(format!(
            "source {} is not {want:?}: a {kind:?} event comes only from {want}",
            source.map_or_else(|| "(missing)".to_owned(), |s| format!("{s:?}"))
        )));
    }
    Ok(())
}

fn deployment_change(payload: &Value) -> Result<DeploymentChange, Error> {
    let ev: EventBridgeEvent<DeploymentDetail> = serde_path_to_error::deserialize(payload)
        .map_err(|e| invalid("CodeDeploy state-change event", e))?;
    Ok(DeploymentChange {
        event_id: ev.id,
        application: ev.detail.application,
        deployment_group: ev.detail.deployment_group,
        deployment_id: ev.detail.deployment_id,
        state: ev.detail.state,
        time: ev.time.map(|t| t.to_rfc3339()),
    })
}

/// A CodeDeploy deployment state-change event from `home`, checked as [`parse_at_home`]
/// checks one, without the alarm and CloudTrail parsers (the rollout function takes only
/// these, and its package stays under 3 MiB without them). `None`: another kind.
pub fn deployment_at_home(payload: &Value, home: &Home) -> Result<Option<DeploymentChange>, Error> {
    let obj = payload
        .as_object()
        .ok_or_else(|| Error::InvalidEvent("expected a JSON object".into()))?;
    if obj.get("detail-type").and_then(Value::as_str) != Some(DEPLOYMENT_DETAIL_TYPE) {
        return Ok(None);
    }
    check_source(obj, DEPLOYMENT_DETAIL_TYPE, DEPLOYMENT_SOURCE)?;
    let change = deployment_change(payload)?;
    home.admit(&origin(payload))?;
    Ok(Some(change))
}

/// An SNS delivery: each record's message is one alarm notification.
fn parse_sns_records(records: &[Value]) -> Result<Vec<Inbound>, Error> {
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let sns = r
            .get("Sns")
            .ok_or_else(|| Error::InvalidEvent(format!("Records[{i}].Sns is missing")))?;
        let message = sns
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::InvalidEvent(format!("Records[{i}].Sns.Message is missing")))?;
        let id = sns
            .get("MessageId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        out.push(Inbound::Alarm(from_sns(message, id)?));
    }
    Ok(out)
}

/// What a payload claims about where it comes from, as `(field, value)`: account ids,
/// regions and ARNs, wherever each envelope carries them (EventBridge `account`, `region`,
/// `resources`; a Lambda action's `accountId`, `region`, `alarmArn`; an SNS alarm
/// notification's `AWSAccountId` and `AlarmArn`). Only string values: other types were
/// already refused by [`parse`].
pub fn origin(payload: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut take = |field: String, v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str) {
            out.push((field, s.to_owned()));
        }
    };
    for key in ["account", "accountId", "region", "alarmArn"] {
        take(key.to_owned(), payload.get(key));
    }
    if let Some(resources) = payload.get("resources").and_then(Value::as_array) {
        for (i, r) in resources.iter().enumerate() {
            take(format!("resources[{i}]"), Some(r));
        }
    }
    if let Some(records) = payload.get("Records").and_then(Value::as_array) {
        for (i, r) in records.iter().enumerate() {
            let message = r
                .pointer("/Sns/Message")
                .and_then(Value::as_str)
                .and_then(|m| serde_json::from_str::<Value>(m).ok());
            if let Some(m) = message {
                for key in ["AWSAccountId", "AlarmArn"] {
                    take(format!("Records[{i}].Sns.Message.{key}"), m.get(key));
                }
            }
        }
    }
    out
}

/// An alarm name CloudWatch could have made: 1 to 255 characters (cloudwatch model,
/// shape `AlarmName`). Longer is forged, and would go on into AWS calls and messages.
fn check_alarm_name(name: &str) -> Result<(), Error> {
    let n = name.chars().count();
    if n == 0 || n > ALARM_NAME_MAX_CHARS {
        return Err(Error::InvalidEvent(format!(
            "alarm name has {n} characters; CloudWatch alarm names have 1 to {ALARM_NAME_MAX_CHARS}"
        )));
    }
    Ok(())
}

/// [`parse`], then refuse a payload that claims another account, region or partition
/// than `home` (see [`origin`]): nothing of it is acted on.
pub fn parse_at_home(payload: &Value, home: &Home) -> Result<Vec<Inbound>, Error> {
    let inbound = parse(payload)?;
    for item in &inbound {
        if let Inbound::Alarm(alarm) = item {
            check_alarm_name(&alarm.alarm_name)?;
        }
    }
    home.admit(&origin(payload))?;
    Ok(inbound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
    }

    fn sample(name: &str) -> Value {
        let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn one_alarm(v: &Value) -> AlarmSignal {
        match parse(v).unwrap().pop().unwrap() {
            Inbound::Alarm(a) => a,
            other => panic!("{other:?}"),
        }
    }

    /// A 5 MB reason (CloudWatch writes at most 1023 characters) is cut and marked, in
    /// every envelope; a name longer than CloudWatch allows is refused.
    #[test]
    fn untrusted_alarm_text_is_bounded() {
        let huge = "r".repeat(5_000_000);
        let mut eb = sample("alarm-rollback-eventbridge.json");
        eb["detail"]["state"]["reason"] = Value::from(huge.clone());
        let mut sns = sample("alarm-rollback-sns.json");
        let mut message: Value =
            serde_json::from_str(sns["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        message["NewStateReason"] = Value::from(huge);
        sns["Records"][0]["Sns"]["Message"] = Value::from(message.to_string());
        for v in [&eb, &sns] {
            let reason = one_alarm(v).reason.unwrap();
            assert_eq!(reason.chars().count(), ALARM_STATE_REASON_MAX_CHARS);
            assert!(crate::limits::was_cut(&reason));
        }
        let mut long = sample("alarm-rollback-eventbridge.json");
        long["detail"]["alarmName"] = Value::from("a".repeat(255));
        assert!(parse_at_home(&long, &home()).is_ok());
        long["detail"]["alarmName"] = Value::from("a".repeat(256));
        let err = parse_at_home(&long, &home()).unwrap_err().to_string();
        assert!(err.contains("256 characters"), "{err}");
    }

    #[test]
    fn every_shape_of_the_same_alarm_means_the_same() {
        let eb = one_alarm(&sample("alarm-rollback-eventbridge.json"));
        let la = one_alarm(&sample("alarm-rollback-lambda-action.json"));
        let sns = one_alarm(&sample("alarm-rollback-sns.json"));
        assert_eq!(eb.envelope, Envelope::EventBridge);
        assert_eq!(la.envelope, Envelope::LambdaAction);
        assert_eq!(sns.envelope, Envelope::Sns);
        for a in [&eb, &la, &sns] {
            assert_eq!(a.alarm_name, "orders-errors");
            assert_eq!(a.state, "ALARM");
            assert!(!a.composite);
            assert_eq!(a.metrics[0].dimensions["FunctionName"], "orders");
            assert_eq!(a.metrics[0].dimensions["Resource"], "orders:live");
            assert_eq!(
                a.alarm_arn.as_deref(),
                Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-errors")
            );
        }
        // One state change, one key, whatever the envelope.
        assert_eq!(eb.event_key(), la.event_key());
        assert_eq!(eb.event_key(), sns.event_key());
    }

    #[test]
    fn composite_and_metric_math_alarms() {
        let c = one_alarm(&sample("alarm-rollback-composite.json"));
        assert!(c.composite && c.metrics.is_empty());
        let m = one_alarm(&sample("alarm-rollback-metric-math.json"));
        assert_eq!(m.metrics.len(), 2);
        assert_eq!(m.metrics[1].dimensions["FunctionName"], "payments");
    }

    #[test]
    fn codedeploy_event_is_a_deployment_change() {
        match parse(&sample("alarm-rollback-codedeploy.json"))
            .unwrap()
            .pop()
            .unwrap()
        {
            Inbound::Deployment(d) => {
                assert_eq!(d.deployment_id, "d-EXAMPLE01");
                assert_eq!(d.state, "SUCCESS");
                assert_eq!(d.application, "orders");
                assert!(d.time.unwrap().starts_with("2026-"));
            }
            other => panic!("{other:?}"),
        }
    }

    fn home() -> Home {
        Home::from_parts(
            "arn:aws:lambda:us-east-1:123456789012:function:rollgate-alarm-rollback",
            None,
            None,
        )
    }

    #[test]
    fn the_rollouts_reader_takes_deployment_changes_from_home_only() {
        let v = sample("alarm-rollback-codedeploy.json");
        let change = deployment_at_home(&v, &home()).unwrap().unwrap();
        let Inbound::Deployment(parsed) = parse(&v).unwrap().pop().unwrap() else {
            panic!("a deployment change");
        };
        assert_eq!(change, parsed);
        // Another kind is not this reader's: no alarm is parsed here.
        assert_eq!(
            deployment_at_home(&sample("alarm-rollback-eventbridge.json"), &home()).unwrap(),
            None
        );
        let mut forged = v.clone();
        forged["source"] = Value::from("my.app");
        assert!(deployment_at_home(&forged, &home()).is_err());
        let mut elsewhere = v;
        elsewhere["account"] = Value::from("210987654321");
        assert!(deployment_at_home(&elsewhere, &home()).is_err());
    }

    #[test]
    fn every_sample_comes_from_home_and_names_its_origin() {
        for name in [
            "alarm-rollback-eventbridge.json",
            "alarm-rollback-lambda-action.json",
            "alarm-rollback-sns.json",
            "alarm-rollback-composite.json",
            "alarm-rollback-metric-math.json",
            "alarm-rollback-codedeploy.json",
        ] {
            let v = sample(name);
            let claims = origin(&v);
            assert!(!claims.is_empty(), "{name}: no claim of origin found");
            assert!(parse_at_home(&v, &home()).is_ok(), "{name}");
        }
        let sns = origin(&sample("alarm-rollback-sns.json"));
        let fields: Vec<&str> = sns.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "Records[0].Sns.Message.AWSAccountId",
                "Records[0].Sns.Message.AlarmArn"
            ]
        );
    }

    #[test]
    fn an_event_of_another_account_or_region_is_refused_naming_the_field() {
        let refused = |v: &Value| parse_at_home(v, &home()).unwrap_err().to_string();
        let mut eb = sample("alarm-rollback-eventbridge.json");
        eb["account"] = "111122223333".into();
        assert!(refused(&eb).contains("account: account \"111122223333\""));
        let mut eb = sample("alarm-rollback-eventbridge.json");
        eb["resources"][0] = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:orders-errors".into();
        assert!(refused(&eb).contains("resources[0]: region \"eu-west-1\""));
        let mut la = sample("alarm-rollback-lambda-action.json");
        la["accountId"] = "111122223333".into();
        assert!(refused(&la).contains("accountId: account"));
        let mut sns = sample("alarm-rollback-sns.json");
        let mut m: Value =
            serde_json::from_str(sns["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        m["AlarmArn"] = "arn:aws:cloudwatch:us-east-1:111122223333:alarm:orders-errors".into();
        sns["Records"][0]["Sns"]["Message"] = m.to_string().into();
        assert!(refused(&sns).contains("Records[0].Sns.Message.AlarmArn: account"));
        let mut cd = sample("alarm-rollback-codedeploy.json");
        cd["region"] = "eu-west-1".into();
        assert!(refused(&cd).contains("region: region"));
        // A malformed event is refused for its shape first.
        assert!(refused(&serde_json::json!({"account": "1"})).contains("not an alarm"));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let e = parse(&serde_json::json!({"detail-type": "Other", "detail": {}})).unwrap_err();
        assert!(e.to_string().contains("\"Other\""), "{e}");
        let e = parse(&serde_json::json!({"Records": [{"Sns": {"Message": "nope"}}]})).unwrap_err();
        assert!(e.to_string().contains("Records[].Sns.Message"), "{e}");
        let e = parse(&serde_json::json!({"detail-type": ALARM_DETAIL_TYPE, "source": "aws.cloudwatch", "detail": {}}))
            .unwrap_err();
        assert!(e.to_string().contains("alarmName"), "{e}");
        assert!(parse(&serde_json::json!([])).is_err());
        // A forged source is refused, whatever the detail says.
        let mut forged = sample("alarm-rollback-eventbridge.json");
        forged["source"] = "custom.attacker".into();
        let e = parse(&forged).unwrap_err().to_string();
        assert!(
            e.contains("source \"custom.attacker\"") && e.contains("aws.cloudwatch"),
            "{e}"
        );
        let mut forged = sample("alarm-rollback-codedeploy.json");
        forged.as_object_mut().unwrap().remove("source");
        let e = parse(&forged).unwrap_err().to_string();
        assert!(
            e.contains("(missing)") && e.contains("aws.codedeploy"),
            "{e}"
        );
        assert!(parse(&serde_json::json!({"hello": 1})).is_err());
    }
}
