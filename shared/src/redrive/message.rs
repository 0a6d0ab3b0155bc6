//! Per-message decisions: the copy sent to a queue (provenance, deduplication id),
//! the event replayed into a Lambda function, and FIFO send rounds.

use super::ports::{AttributeValue, Outgoing, Received};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The one attribute rollgate adds: `{"message_id", "source", "receive_count"}` as JSON.
pub const PROVENANCE_ATTRIBUTE: &str = "rollgate.redrive";
/// SQS allows 10 message attributes.
pub const MAX_ATTRIBUTES: usize = 10;
/// SQS's message size limit (body + attribute names, types and values).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Deterministic deduplication id for a FIFO destination: the same DLQ message gives
/// the same id on every attempt and every run, so a resend after a failed delete is
/// dropped by the destination inside its 5-minute window.
pub fn deduplication_id(source_arn: &str, message_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(source_arn.as_bytes());
    h.update(b"\n");
    h.update(message_id.as_bytes());
    hex::encode(h.finalize())
}

/// What is wrong with an entry's FIFO group or deduplication id, checked before it is
/// sent (SQS refuses more than 128 characters, or any but ASCII letters, digits and
/// punctuation); `None` when both are fine or absent.
pub fn fifo_id_problem(o: &Outgoing) -> Option<String> {
    for (field, value) in [
        ("MessageGroupId", &o.group_id),
        ("MessageDeduplicationId", &o.deduplication_id),
    ] {
        if let Some(v) = value
            && let Err(why) = crate::limits::check_fifo_id(v)
        {
            return Some(format!("{field} {why}"));
        }
    }
    None
}

fn size(body: &str, attributes: &BTreeMap<String, AttributeValue>) -> usize {
    body.len()
        + attributes
            .iter()
            .map(|(k, v)| {
                k.len()
                    + v.data_type.len()
                    + v.string.as_ref().map_or(0, String::len)
                    + v.binary.as_ref().map_or(0, Vec::len)
            })
            .sum::<usize>()
}

/// SQS's limit on one `SendMessageBatch`: the messages' sizes added up, 1 MiB (sqs model,
/// `SendMessageBatch` documentation). Ten messages near the single-message limit would
/// make a batch SQS refuses whole (`BatchRequestTooLong`).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// SNS's limit on one `PublishBatch`, the messages and their attributes added up, which is
/// also its limit on one message (sns model, `PublishBatch`).
pub const MAX_SNS_BATCH_BYTES: usize = 262_144;

/// An SQS message's or SNS message's size: body and attributes (names, types, values).
pub fn entry_size(e: &Outgoing) -> usize {
    size(&e.body, &e.attributes)
}

/// Entries per batch call: SQS's `SendMessageBatch`, SNS's `PublishBatch` and
/// EventBridge's `PutEvents` each take at most 10.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// Entries of these `sizes` split, in order, into runs of at most
/// [`MAX_BATCH_ENTRIES`] whose sizes add up to at most `max` bytes (one entry is never
/// split: a single one is at most that size, or is refused alone).
pub fn batch_runs(sizes: &[usize], max: usize) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut total) = (0, 0);
    for (i, &n) in sizes.iter().enumerate() {
        if i > start && (total + n > max || i - start >= MAX_BATCH_ENTRIES) {
            runs.push(start..i);
            (start, total) = (i, 0);
        }
        total += n;
    }
    if start < sizes.len() {
        runs.push(start..sizes.len());
    }
    runs
}

/// Whether and how a copy says where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    Off,
    /// `{"message_id", "source", "receive_count"}`.
    Moved,
    /// The same with `"copy": true`: the original stays in the DLQ.
    Copied,
}

/// The copy of `m` for a queue. Body and attributes are kept as received; provenance
/// is added when asked and when it fits (attribute count and size).
pub fn outgoing(
    m: &Received,
    entry_id: usize,
    source_arn: &str,
    fifo_destination: bool,
    default_group: Option<&str>,
    provenance: Provenance,
) -> Outgoing {
    let attributes = with_provenance(
        m,
        &m.body,
        m.attributes.clone(),
        (source_arn, provenance, MAX_MESSAGE_BYTES),
    );
    let (group_id, deduplication_id) = if fifo_destination {
        (
            Some(
                m.group_id
                    .clone()
                    .or_else(|| default_group.map(str::to_owned))
                    .unwrap_or_else(|| "rollgate-redrive".into()),
            ),
            Some(deduplication_id(source_arn, &m.message_id)),
        )
    } else {
        (None, None)
    };
    Outgoing {
        id: entry_id.to_string(),
        body: m.body.clone(),
        attributes,
        group_id,
        deduplication_id,
        subject: None,
    }
}

/// Provenance added to `attributes` when asked and when it fits (attribute count, and
/// `max` bytes with the body).
fn with_provenance(
    m: &Received,
    body: &str,
    mut attributes: BTreeMap<String, AttributeValue>,
    (source_arn, provenance, max): (&str, Provenance, usize),
) -> BTreeMap<String, AttributeValue> {
    if provenance == Provenance::Off {
        return attributes;
    }
    let mut tag = serde_json::json!({
        "message_id": m.message_id,
        "source": source_arn,
        "receive_count": m.receive_count,
    });
    if provenance == Provenance::Copied {
        tag["copy"] = Value::Bool(true);
    }
    let before = attributes.clone();
    attributes.insert(
        PROVENANCE_ATTRIBUTE.into(),
        AttributeValue::string(tag.to_string()),
    );
    if attributes.len() <= MAX_ATTRIBUTES && size(body, &attributes) <= max {
        attributes
    } else {
        before
    }
}

/// An SNS subscription's dead letter as SNS delivered it: the topic it came from, when
/// its envelope says (`None` for a raw-delivery message), and what to publish again.
/// Envelope (`Type: Notification`): `Message`, `Subject` and `MessageAttributes`
/// (`{Type, Value}`, binary values in base64). Raw delivery: the body and the SQS message
/// attributes (SNS carried the publisher's attributes over with their types).
pub fn sns_outgoing(
    m: &Received,
    entry_id: usize,
    source_arn: &str,
    provenance: Provenance,
    extra: &BTreeMap<String, String>,
) -> (Option<String>, Outgoing) {
    let envelope = serde_json::from_str::<Value>(&m.body).ok().filter(|v| {
        v["Type"] == "Notification" && v["TopicArn"].is_string() && v["Message"].is_string()
    });
    let (topic, body, subject, mut attributes) = match &envelope {
        Some(env) => (
            env["TopicArn"].as_str().map(str::to_owned),
            env["Message"].as_str().unwrap_or_default().to_owned(),
            env["Subject"].as_str().map(str::to_owned),
            envelope_attributes(&env["MessageAttributes"]),
        ),
        None => (None, m.body.clone(), None, m.attributes.clone()),
    };
    for (k, v) in extra {
        attributes.insert(k.clone(), AttributeValue::string(v.clone()));
    }
    let attributes = with_provenance(
        m,
        &body,
        attributes,
        (source_arn, provenance, MAX_SNS_BATCH_BYTES),
    );
    let outgoing = Outgoing {
        id: entry_id.to_string(),
        body,
        attributes,
        group_id: None,
        deduplication_id: None,
        subject,
    };
    (topic, outgoing)
}

/// For a FIFO topic: the message's group (or `default_group`) and the deduplication id
/// of [`deduplication_id`]; a standard topic takes neither.
pub fn sns_fifo_ids(
    o: &mut Outgoing,
    m: &Received,
    (source_arn, topic_arn): (&str, &str),
    default_group: Option<&str>,
) {
    if topic_arn.ends_with(".fifo") {
        o.group_id = Some(
            m.group_id
                .clone()
                .or_else(|| default_group.map(str::to_owned))
                .unwrap_or_else(|| "rollgate-redrive".into()),
        );
        o.deduplication_id = Some(deduplication_id(source_arn, &m.message_id));
    }
}

fn envelope_attributes(v: &Value) -> BTreeMap<String, AttributeValue> {
    let Some(map) = v.as_object() else {
        return BTreeMap::new();
    };
    map.iter()
        .filter_map(|(name, a)| {
            let data_type = a["Type"].as_str()?.to_owned();
            let value = a["Value"].as_str()?;
            let binary = data_type
                .starts_with("Binary")
                .then(|| aws_smithy_types::base64::decode(value).ok())
                .flatten();
            Some((
                name.clone(),
                AttributeValue {
                    string: binary.is_none().then(|| value.to_owned()),
                    binary,
                    data_type,
                },
            ))
        })
        .collect()
}

/// The message attributes EventBridge adds to a rule target's dead letter
/// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
pub const RULE_ATTRIBUTES: [&str; 6] = [
    "RULE_ARN",
    "TARGET_ARN",
    "ERROR_CODE",
    "ERROR_MESSAGE",
    "EXHAUSTED_RETRY_CONDITION",
    "RETRY_ATTEMPTS",
];

/// The target an EventBridge rule's dead letter was meant for (`TARGET_ARN`).
pub fn rule_target(m: &Received) -> Option<String> {
    m.attributes
        .get("TARGET_ARN")
        .and_then(|a| a.string.clone())
        .filter(|arn| crate::names::Arn::parse(arn).is_some())
}

/// An event bus name as `PutEvents` takes it (`EventBusName`, without an ARN): 1-256 of
/// letters, digits, `.`, `-`, `_` and `/` (a partner bus).
pub fn is_bus_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/'))
}

/// The bus an EventBridge rule's dead letter came from, from its `RULE_ARN`
/// (`rule/<name>` on the default bus, `rule/<bus>/<name>` on another), as an ARN.
pub fn rule_bus(m: &Received) -> Option<String> {
    let rule = m.attributes.get("RULE_ARN")?.string.as_deref()?;
    let a = crate::names::Arn::parse(rule).filter(|a| a.service == "events")?;
    let path = a.resource.strip_prefix("rule/")?;
    let bus = path.rsplit_once('/').map_or("default", |(bus, _)| bus);
    Some(format!(
        "arn:{}:events:{}:{}:event-bus/{bus}",
        a.partition, a.region, a.account
    ))
}

/// The parts of an event `PutEvents` takes again.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    pub source: String,
    pub detail_type: String,
    /// The `detail` object as JSON text.
    pub detail: String,
    pub resources: Vec<String>,
    /// RFC 3339, as the event carried it.
    pub time: Option<String>,
}

impl BusEvent {
    /// Its size as EventBridge counts it against 256 KiB: the time (14 bytes), source,
    /// detail type, detail and resources in UTF-8 ("Calculating PutEvents event entry
    /// size", EventBridge user guide).
    pub fn size(&self) -> usize {
        self.time.as_ref().map_or(0, |_| 14)
            + self.source.len()
            + self.detail_type.len()
            + self.detail.len()
            + self.resources.iter().map(String::len).sum::<usize>()
    }
}

/// An EventBridge event (the body of a rule's dead letter) as `PutEvents` takes it; the
/// error says why it cannot be put again.
pub fn bus_event(body: &str) -> Result<BusEvent, String> {
    let event: Value = serde_json::from_str(body)
        .map_err(|_| "the body is not an EventBridge event (not JSON)".to_owned())?;
    let text = |key: &str| {
        event[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the event has no {key}"))
    };
    let source = text("source")?;
    if source.starts_with("aws.") {
        return Err(format!(
            "an event of an AWS service ({source}) cannot be put again: EventBridge refuses PutEvents of aws.* sources (NotAuthorizedForSourceException); use destination target"
        ));
    }
    if !event["detail"].is_object() {
        return Err("the event has no detail object".into());
    }
    Ok(BusEvent {
        source,
        detail_type: text("detail-type")?,
        detail: event["detail"].to_string(),
        resources: event["resources"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        time: event["time"].as_str().map(str::to_owned),
    })
}

/// A rule's dead letter as one `PutEvents` entry: the event is the body (the adapter
/// takes its parts with [`bus_event`]); EventBridge carries no message attributes.
pub fn as_event_entry(m: &Received, entry_id: usize) -> Outgoing {
    Outgoing {
        id: entry_id.to_string(),
        body: m.body.clone(),
        attributes: BTreeMap::new(),
        group_id: None,
        deduplication_id: None,
        subject: None,
    }
}

/// EventBridge's limit on one `PutEvents`: the entries' sizes ([`BusEvent::size`]) added
/// up, 256 KiB.
pub const MAX_PUT_EVENTS_BYTES: usize = 262_144;

/// The kind of target dlq-redrive can deliver an EventBridge dead letter to: `lambda`
/// (a function), `sqs` or `sns`; `None` for any other.
pub fn target_kind(arn: &str) -> Option<&'static str> {
    let a = crate::names::Arn::parse(arn)?;
    match a.service {
        "lambda" if a.resource.starts_with("function:") => Some("lambda"),
        "sqs" if crate::names::is_queue_name(a.resource) => Some("sqs"),
        "sns" if crate::names::is_topic_name(a.resource) => Some("sns"),
        _ => None,
    }
}

/// The dead letter as its target would have received it: the event, without the
/// attributes EventBridge added.
pub fn without_rule_attributes(m: &Received) -> Received {
    let mut m = m.clone();
    m.attributes
        .retain(|k, _| !RULE_ATTRIBUTES.contains(&k.as_str()));
    m
}

/// A function ARN as `(function ARN, qualifier)`:
/// `arn:aws:lambda:r:a:function:f:live` → (`arn:aws:lambda:r:a:function:f`, `live`).
pub fn split_function_arn(arn: &str) -> (&str, Option<&str>) {
    match arn.match_indices(':').nth(6) {
        Some((at, _)) => (&arn[..at], Some(&arn[at + 1..])),
        None => (arn, None),
    }
}

/// The function a Lambda failure record names (`requestContext.functionArn`), as
/// `(function ARN, qualifier)`.
pub fn record_function(body: &str) -> Option<(String, Option<String>)> {
    let record: Value = serde_json::from_str(body).ok()?;
    let arn = record["requestContext"]["functionArn"].as_str()?;
    let (function, qualifier) = split_function_arn(arn);
    let parsed = crate::names::FunctionRef::parse(function).ok()?;
    (parsed.is_arn() && qualifier.is_none_or(crate::names::is_qualifier))
        .then(|| (function.to_owned(), qualifier.map(str::to_owned)))
}

/// The original event of a Lambda DLQ message.
#[derive(Debug, Clone, PartialEq)]
pub enum LambdaRecord {
    /// An async-invocation DLQ message: the body *is* the event (attributes
    /// `RequestID`, `ErrorCode`, `ErrorMessage` describe the failure).
    DeadLetter { payload: Vec<u8> },
    /// An on-failure destination record: the event is its `requestPayload`.
    OnFailure {
        payload: Vec<u8>,
        request_id: Option<String>,
    },
}

impl LambdaRecord {
    pub fn payload(&self) -> &[u8] {
        match self {
            LambdaRecord::DeadLetter { payload } | LambdaRecord::OnFailure { payload, .. } => {
                payload
            }
        }
    }
}

/// Recognise an on-failure destination record (`requestContext` + `requestPayload`);
/// anything else is taken as an async-invocation DLQ message, byte for byte.
pub fn unwrap_lambda(body: &str) -> LambdaRecord {
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(body)
        && let Some(ctx) = map.get("requestContext").filter(|c| c.is_object())
        && let Some(payload) = map.get("requestPayload").or_else(|| {
            // A stream's or Kafka's record names its batch (`KinesisBatchInfo`, ...).
            map.keys()
                .any(|k| k.ends_with("BatchInfo"))
                .then(|| map.get("payload"))
                .flatten()
        })
    {
        // A stream's or Kafka's record in S3 carries the batch as `payload`, JSON text.
        let payload = match payload {
            Value::String(text) if !map.contains_key("requestPayload") => text.as_bytes().to_vec(),
            other => serde_json::to_vec(other).unwrap_or_default(),
        };
        return LambdaRecord::OnFailure {
            payload,
            request_id: ctx
                .get("requestId")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
    }
    LambdaRecord::DeadLetter {
        payload: body.as_bytes().to_vec(),
    }
}

/// Split a FIFO batch into send rounds: round k holds the k-th message of every group
/// (in receive order). A round is sent only after the previous one was accepted, so a
/// failed entry never lets a later message of its group overtake it.
pub fn fifo_rounds(groups: &[Option<String>]) -> Vec<Vec<usize>> {
    let mut seen: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let k = seen.entry(g.as_deref()).or_insert(0);
        if rounds.len() <= *k {
            rounds.push(Vec::new());
        }
        rounds[*k].push(i);
        *k += 1;
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(attrs: usize) -> Received {
        Received {
            message_id: "m-1".into(),
            receipt_handle: "r".into(),
            body: "{\"a\":1}".into(),
            attributes: (0..attrs)
                .map(|i| (format!("k{i}"), AttributeValue::string(i.to_string())))
                .collect(),
            group_id: Some("g".into()),
            receive_count: 3,
            dead_letter_source: None,
        }
    }

    fn sizes(entries: &[Outgoing]) -> Vec<usize> {
        entries.iter().map(entry_size).collect()
    }

    #[test]
    fn batches_are_split_under_sqs_total_size() {
        let entry = |i: usize, n: usize| Outgoing {
            id: i.to_string(),
            body: "x".repeat(n),
            attributes: BTreeMap::new(),
            group_id: None,
            deduplication_id: None,
            subject: None,
        };
        let small: Vec<_> = (0..10).map(|i| entry(i, 100)).collect();
        assert_eq!(batch_runs(&sizes(&small), MAX_BATCH_BYTES), vec![0..10]);
        // Ten messages of 300 KB: 3 fit in 1 MiB (900 KB), the fourth would not.
        let big: Vec<_> = (0..10).map(|i| entry(i, 300_000)).collect();
        assert_eq!(
            batch_runs(&sizes(&big), MAX_BATCH_BYTES),
            vec![0..3, 3..6, 6..9, 9..10]
        );
        for run in batch_runs(&sizes(&big), MAX_BATCH_BYTES) {
            let total: usize = big[run].iter().map(|e| e.body.len()).sum();
            assert!(total <= MAX_BATCH_BYTES);
        }
        // A message of exactly the limit goes alone.
        let edge = vec![entry(0, 10), entry(1, MAX_BATCH_BYTES), entry(2, 10)];
        assert_eq!(
            batch_runs(&sizes(&edge), MAX_BATCH_BYTES),
            vec![0..1, 1..2, 2..3]
        );
        assert!(batch_runs(&[], MAX_BATCH_BYTES).is_empty());
        // Never more than ten entries in one call, whatever their size.
        assert_eq!(
            batch_runs(&[1; 23], MAX_BATCH_BYTES),
            vec![0..10, 10..20, 20..23]
        );
    }

    #[test]
    fn fifo_ids_are_checked_before_sending() {
        let m = Received {
            message_id: "m-1".into(),
            receipt_handle: "r".into(),
            body: "{}".into(),
            attributes: BTreeMap::new(),
            group_id: None,
            receive_count: 1,
            dead_letter_source: None,
        };
        let ok = outgoing(
            &m,
            0,
            "arn:aws:sqs:us-east-1:123456789012:q.fifo",
            true,
            Some("g"),
            Provenance::Moved,
        );
        assert_eq!(fifo_id_problem(&ok), None);
        // Our own deduplication id is 64 hex characters, well inside SQS's 128.
        assert_eq!(ok.deduplication_id.as_ref().unwrap().len(), 64);
        let long = "g".repeat(200);
        let bad = outgoing(&m, 0, "arn:q", true, Some(&long), Provenance::Moved);
        let why = fifo_id_problem(&bad).unwrap();
        assert!(why.contains("MessageGroupId has 200 characters"), "{why}");
    }

    #[test]
    fn dedup_id_is_deterministic_and_distinct() {
        let a = deduplication_id("arn:q", "m-1");
        assert_eq!(a, deduplication_id("arn:q", "m-1"));
        assert_ne!(a, deduplication_id("arn:q", "m-2"));
        assert_ne!(a, deduplication_id("arn:other", "m-1"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn provenance_is_added_when_it_fits() {
        let o = outgoing(&msg(2), 7, "arn:q", true, None, Provenance::Moved);
        assert_eq!(o.id, "7");
        assert_eq!(o.attributes.len(), 3);
        let tag: Value = serde_json::from_str(
            o.attributes[PROVENANCE_ATTRIBUTE]
                .string
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(tag["message_id"], "m-1");
        assert_eq!(tag["receive_count"], 3);
        assert_eq!(o.group_id.as_deref(), Some("g"));
        assert_eq!(
            o.deduplication_id.as_deref(),
            Some(deduplication_id("arn:q", "m-1").as_str())
        );
        // Ten attributes already: the originals win, provenance is skipped.
        assert_eq!(
            outgoing(&msg(10), 0, "arn:q", false, None, Provenance::Moved).attributes,
            msg(10).attributes
        );
        assert!(tag.get("copy").is_none(), "{tag}");
        let copy = outgoing(&msg(1), 0, "arn:q", false, None, Provenance::Copied);
        let tag = copy.attributes[PROVENANCE_ATTRIBUTE]
            .string
            .as_deref()
            .unwrap();
        assert_eq!(serde_json::from_str::<Value>(tag).unwrap()["copy"], true);
        let plain = outgoing(&msg(1), 0, "arn:q", false, None, Provenance::Off);
        assert_eq!(plain.attributes, msg(1).attributes);
        assert_eq!((plain.group_id, plain.deduplication_id), (None, None));
    }

    #[test]
    fn lambda_records_unwrap_to_the_original_event() {
        let body = r#"{"version":"1.0","timestamp":"t","requestContext":{"requestId":"abc","functionArn":"arn:f","condition":"RetriesExhausted","approximateInvokeCount":3},"requestPayload":{"order":42},"responseContext":{"statusCode":200},"responsePayload":{"errorType":"X"}}"#;
        assert_eq!(
            unwrap_lambda(body),
            LambdaRecord::OnFailure {
                payload: br#"{"order":42}"#.to_vec(),
                request_id: Some("abc".into())
            }
        );
        let raw = r#"{ "order": 42 }"#;
        assert_eq!(unwrap_lambda(raw).payload(), raw.as_bytes());
        assert_eq!(unwrap_lambda("plain text").payload(), b"plain text");
    }

    #[test]
    fn fifo_rounds_keep_group_order() {
        let g = |s: &str| Some(s.to_owned());
        let rounds = fifo_rounds(&[g("a"), g("a"), g("b"), g("a"), g("b"), None]);
        assert_eq!(rounds, vec![vec![0, 2, 5], vec![1, 4], vec![3]]);
    }
}
