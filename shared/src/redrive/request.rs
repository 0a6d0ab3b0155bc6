//! The redrive request: parsing and validation (pure) and the filter.

pub use crate::scope::AllowList;

use super::ports::AttributeValue;
use crate::names::{Arn, FunctionRef, is_account, is_qualifier, is_queue_name};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Highest rate a request may ask for (messages per second).
pub const MAX_RATE: f64 = 3000.0;
/// The slowest rate accepted, messages per second: slower, one invocation of at most 15
/// minutes would move a handful of messages (`rate: 1e-9` ran at the engine's own pace).
pub const MIN_RATE: f64 = 0.1;
/// SQS carries at most 10 message attributes: a filter on more can never match.
pub const MAX_FILTER_ATTRIBUTES: usize = 10;
/// Body conditions of one filter.
pub const MAX_FILTER_CONDITIONS: usize = 50;
/// The largest value a body condition may compare with: a message body is at most 256 KiB.
pub const MAX_FILTER_VALUE_BYTES: usize = 262_144;
/// Rate ceiling when the request gives none.
pub const DEFAULT_RATE: f64 = 1000.0;
pub const MAX_CONCURRENCY: usize = 16;
pub const DEFAULT_CONCURRENCY: usize = 4;
/// How long a copy job keeps the originals it copied hidden, by default (seconds): the
/// time within which its continuations must be invoked.
pub const DEFAULT_HOLD_SECONDS: u64 = 3600;
/// Bounds of `hold_seconds`. SQS hides a message at most 12 hours from its receipt; one
/// run (15 minutes at most) is kept out of that, so a copy held near its end still ends
/// hidden within SQS's limit.
pub const MIN_HOLD_SECONDS: u64 = 60;
pub const MAX_HOLD_SECONDS: u64 = 43_200 - 900;
/// Messages one `peek` page returns at most, and by default.
pub const MAX_PAGE_SIZE: usize = 100;
pub const DEFAULT_PAGE_SIZE: usize = 10;
/// How deep `peek` pages go: the cursor remembers every message shown, and each page
/// receives them again to skip them.
pub const MAX_PEEK_DEPTH: usize = 1000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

fn bad(field: &str, message: impl Into<String>) -> RequestError {
    RequestError::Field {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// What the invocation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Move (or, with `dry_run`, count) messages.
    #[default]
    Redrive,
    /// Describe the source's message move tasks (`ListMessageMoveTasks`).
    Status,
    /// Cancel a message move task.
    Cancel,
    /// Show a page of messages and hand them back at once (`page_size`, `cursor`).
    Peek,
}

/// What happens to a message once its destination accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Delete it from the DLQ.
    #[default]
    Move,
    /// Keep it: hidden until the job's hold ends, so no later run of the job copies it
    /// again, and visible again at once when the job ends within one run.
    Copy,
}

/// Where redriven messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The queue whose RedrivePolicy names the DLQ.
    SourceOfDlq,
    /// A queue by URL, ARN or name.
    Queue(String),
    /// `lambda:<name>[:<qualifier>]`: unwrap and invoke asynchronously.
    Lambda {
        function: String,
        qualifier: Option<String>,
    },
    /// `sns` (each message's topic, from its SNS envelope) or `sns:<topic ARN>`: an SNS
    /// subscription's dead letters, published to the topic again.
    Topic(Option<String>),
    /// `events` (the bus of each message's rule, from `RULE_ARN`) or `events:<bus name or
    /// ARN>`: an EventBridge rule's dead letters, put on the bus again (`PutEvents`).
    Bus(Option<String>),
    /// `target`: an EventBridge rule's dead letters, each delivered straight to the target
    /// its `TARGET_ARN` attribute names (a Lambda function, an SQS queue or an SNS topic).
    RuleTarget,
}

/// One predicate on the JSON body, addressed by a JSON pointer (`/detail/type`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyPredicate {
    pub pointer: String,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub one_of: Option<Vec<Value>>,
    #[serde(default)]
    pub exists: Option<bool>,
}

/// Selects which messages move: all conditions must hold.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Message attribute name → required string value (String and Number types).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Predicates on the body, which must then be JSON.
    #[serde(default)]
    pub body: Vec<BodyPredicate>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.body.is_empty()
    }

    /// Whether a message with this body and these attributes is selected.
    pub fn matches(&self, body: &str, attributes: &BTreeMap<String, AttributeValue>) -> bool {
        let attrs_ok = self.attributes.iter().all(|(name, want)| {
            attributes
                .get(name)
                .and_then(|a| a.string.as_deref())
                .is_some_and(|v| v == want)
        });
        if !attrs_ok {
            return false;
        }
        if self.body.is_empty() {
            return true;
        }
        let Ok(doc) = serde_json::from_str::<Value>(body) else {
            return false;
        };
        self.body.iter().all(|p| {
            let found = doc.pointer(&p.pointer);
            p.exists.is_none_or(|e| e == found.is_some())
                && p.equals.as_ref().is_none_or(|v| found == Some(v))
                && p.one_of
                    .as_ref()
                    .is_none_or(|vs| found.is_some_and(|f| vs.contains(f)))
        })
    }
}

/// Totals carried from one run of a long redrive to the next.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Carried {
    pub run: u32,
    pub moved: u64,
    pub duplicates: u64,
    /// Copy mode: copies made by earlier runs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub copied: u64,
    /// Copy mode: when the originals copied by earlier runs become visible again (epoch
    /// milliseconds); a continuation invoked later would copy them twice, and is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_until_ms: Option<i64>,
    /// An S3 source: the last key an earlier run handled (listing goes on after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    action: Action,
    source: Option<String>,
    destination: Option<String>,
    max_messages: Option<u64>,
    rate: Option<f64>,
    filter: Option<Filter>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    native: bool,
    max_run_seconds: Option<u64>,
    concurrency: Option<usize>,
    #[serde(default = "yes")]
    provenance: bool,
    message_group_id: Option<String>,
    task_handle: Option<String>,
    continuation: Option<Carried>,
    #[serde(default)]
    mode: Mode,
    hold_seconds: Option<u64>,
    page_size: Option<usize>,
    cursor: Option<String>,
    #[serde(default)]
    sns_attributes: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

/// What one run did, as a continuation carries it forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunCounts {
    /// Messages the destination accepted (moved, or copied in copy mode).
    pub moved: u64,
    pub duplicates: u64,
}

/// An S3 prefix of Lambda failure records (`s3://<bucket>/<prefix>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    /// The ARN the allow-list is checked on: `arn:aws:s3:::<bucket>/<prefix>`.
    pub fn arn(&self) -> String {
        format!("arn:aws:s3:::{}/{}", self.bucket, self.prefix)
    }
}

/// An S3 bucket name (S3's rules for new buckets): 3-63 lowercase letters, digits, '.'
/// and '-', beginning and ending with a letter or digit.
fn is_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// `s3://<bucket>/<prefix>`: `None` for any other source; an error for a malformed one.
fn parse_s3(text: &str) -> Result<Option<S3Location>, RequestError> {
    let Some(rest) = text.strip_prefix("s3://") else {
        return Ok(None);
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if !is_bucket_name(bucket) || prefix.len() > 1024 || prefix.chars().any(char::is_control) {
        return Err(bad(
            "source",
            format!(
                "{text:?}: expected s3://<bucket>/<prefix> (a bucket name is 3-63 lowercase letters, digits, '.' or '-'; a prefix at most 1024 bytes)"
            ),
        ));
    }
    Ok(Some(S3Location {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
    }))
}

/// What an S3 source of failure records cannot do: it has no attributes to filter on,
/// no move task, no peek, and its records go to a function or a queue.
fn check_s3(raw: &Raw, filter: &Filter, destination: &Destination) -> Result<(), RequestError> {
    let refused = [
        (
            "native",
            raw.native,
            "a message move task moves SQS messages",
        ),
        (
            "action",
            raw.action != Action::Redrive,
            "an S3 source is redriven only",
        ),
        (
            "filter.attributes",
            !filter.attributes.is_empty(),
            "S3 records carry no message attributes: filter on the body",
        ),
        (
            "destination",
            !matches!(
                destination,
                Destination::SourceOfDlq | Destination::Queue(_) | Destination::Lambda { .. }
            ),
            "an S3 source goes to each record's function (the default), lambda:<function> or a queue",
        ),
    ];
    match refused.into_iter().find(|(_, given, _)| *given) {
        Some((field, _, why)) => Err(bad(field, why)),
        None => Ok(()),
    }
}

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub action: Action,
    pub source: String,
    pub destination: Destination,
    pub max_messages: Option<u64>,
    pub rate: Option<f64>,
    pub filter: Filter,
    pub dry_run: bool,
    pub native: bool,
    pub max_run_seconds: Option<u64>,
    pub concurrency: usize,
    pub provenance: bool,
    /// Group for messages that reach a FIFO destination without one.
    pub message_group_id: Option<String>,
    pub task_handle: Option<String>,
    pub carried: Carried,
    pub mode: Mode,
    /// Copy mode: how long the job keeps the originals it copied hidden.
    pub hold_seconds: u64,
    /// Peek: messages per page, and where the last page ended.
    pub page_size: usize,
    pub cursor: Option<String>,
    /// SNS destination: string attributes added to every message published, for example
    /// one that only the subscription to reach filters on.
    pub sns_attributes: BTreeMap<String, String>,
    /// An S3 source (`s3://<bucket>/<prefix>`) instead of a queue.
    pub s3: Option<S3Location>,
    /// The request as received, to build the continuation from.
    pub original: Value,
}

/// Longest queue URL accepted (a real one is well under 200 characters).
const MAX_QUEUE_URL: usize = 2048;

/// `(host, account, name)` of a queue URL `http(s)://<host>/<account>/<name>`; `None` for
/// anything else (a name, an ARN, a URL with another path).
pub fn queue_url_parts(reference: &str) -> Option<(&str, &str, &str)> {
    let rest = reference
        .strip_prefix("https://")
        .or_else(|| reference.strip_prefix("http://"))?;
    let mut parts = rest.split('/');
    let (host, account, name) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then_some((host, account, name))
}

/// A queue reference as the request may give it: a name, an SQS ARN or a queue URL
/// (`http(s)://<host>/<account>/<name>`). Anything else (wildcards, path traversal,
/// control characters, oversized text) is refused here, before any AWS call.
pub fn check_queue_reference(field: &str, text: &str) -> Result<(), RequestError> {
    let bad_ref = |why: &str| bad(field, format!("{why}; expected a queue name, ARN or URL"));
    if text.len() > MAX_QUEUE_URL {
        return Err(bad_ref(&format!(
            "{} characters is too long",
            text.chars().count()
        )));
    }
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad_ref("contains whitespace or control characters"));
    }
    if text.starts_with("https://") || text.starts_with("http://") {
        return match queue_url_parts(text) {
            Some((host, account, name))
                if !host.is_empty() && is_account(account) && is_queue_name(name) =>
            {
                Ok(())
            }
            _ => Err(bad_ref(&format!(
                "{text} is not a queue URL (http(s)://<host>/<account>/<queue name>)"
            ))),
        };
    }
    if text.starts_with("arn:") {
        return match Arn::parse(text) {
            Some(a)
                if a.service == "sqs"
                    && !a.region.is_empty()
                    && is_account(a.account)
                    && is_queue_name(a.resource) =>
            {
                Ok(())
            }
            _ => Err(bad_ref(&format!("{text} is not an SQS queue ARN"))),
        };
    }
    if is_queue_name(text) {
        Ok(())
    } else {
        Err(bad_ref(&format!(
            "{text:?} is not a queue name (1-80 letters, digits, '-' or '_', optionally '.fifo')"
        )))
    }
}

fn parse_destination(text: &str) -> Result<Destination, RequestError> {
    match text {
        "target" => return Ok(Destination::RuleTarget),
        "events" => return Ok(Destination::Bus(None)),
        "sns" => return Ok(Destination::Topic(None)),
        _ => {}
    }
    if let Some(bus) = text.strip_prefix("events:") {
        return parse_bus(text, bus);
    }
    if let Some(topic) = text.strip_prefix("sns:") {
        return parse_topic(text, topic);
    }
    let Some(rest) = text.strip_prefix("lambda:") else {
        if text.trim().is_empty() {
            return Err(bad("destination", "must not be empty"));
        }
        check_queue_reference("destination", text)?;
        return Ok(Destination::Queue(text.to_owned()));
    };
    parse_lambda(text, rest)
}

/// `events:<bus name or ARN>`.
fn parse_bus(text: &str, bus: &str) -> Result<Destination, RequestError> {
    let name = bus.strip_prefix("arn:").map_or(Some(bus), |_| {
        crate::names::Arn::parse(bus)
            .filter(|a| a.service == "events" && is_account(a.account))
            .and_then(|a| a.resource.strip_prefix("event-bus/"))
    });
    if !name.is_some_and(super::message::is_bus_name) {
        return Err(bad(
            "destination",
            format!(
                "{text:?}: expected events:<bus name or ARN> (a name is 1-256 letters, digits, '.', '-', '_' or '/'), or events alone for each message's rule's bus"
            ),
        ));
    }
    Ok(Destination::Bus(Some(bus.to_owned())))
}

/// `sns:<topic ARN>`.
fn parse_topic(text: &str, topic: &str) -> Result<Destination, RequestError> {
    if !crate::names::is_topic_arn(topic) {
        return Err(bad(
            "destination",
            format!(
                "{text:?}: expected sns:<topic ARN> (arn:<partition>:sns:<region>:<account>:<topic name>), or sns alone for each message's own topic"
            ),
        ));
    }
    Ok(Destination::Topic(Some(topic.to_owned())))
}

/// `lambda:<name or ARN>[:<qualifier>]` (`rest` is what follows `lambda:`).
fn parse_lambda(text: &str, rest: &str) -> Result<Destination, RequestError> {
    // A full function ARN is accepted after the prefix too.
    let (function, qualifier) = if rest.starts_with("arn:") {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            7 => (rest.to_owned(), None),
            8 => (parts[..7].join(":"), Some(parts[7].to_owned())),
            _ => return Err(bad("destination", "lambda:<function ARN> is malformed")),
        }
    } else {
        match rest.split_once(':') {
            Some((f, q)) => (f.to_owned(), Some(q.to_owned())),
            None => (rest.to_owned(), None),
        }
    };
    if function.is_empty() || qualifier.as_deref().is_some_and(str::is_empty) {
        return Err(bad(
            "destination",
            "expected lambda:<name>[:<qualifier>] with a non-empty name and qualifier",
        ));
    }
    // The name (or the ARN's parts) and qualifier as Lambda spells them: a wildcard or a
    // path would otherwise be checked against the allow-list's patterns as text.
    let name_ok = FunctionRef::parse(&function)
        .is_ok_and(|r| r.qualifier.is_none() && (r.is_arn() || r.account.is_none()));
    if !name_ok || !qualifier.as_deref().is_none_or(is_qualifier) {
        return Err(bad(
            "destination",
            format!(
                "{text:?}: a function name is 1-64 letters, digits, '-' or '_' (or its ARN), a qualifier $LATEST, a version or an alias"
            ),
        ));
    }
    Ok(Destination::Lambda {
        function,
        qualifier,
    })
}

/// The request's JSON as its fields; an error names the field serde stopped at.
fn read_raw(value: &Value) -> Result<Raw, RequestError> {
    let raw: Raw = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        bad(
            // "" is an unknown top-level key that is itself empty (`{"": 1}`).
            if path == "." || path.is_empty() {
                "request"
            } else {
                &path
            },
            e.inner().to_string(),
        )
    })?;
    Ok(raw)
}

/// Counts, rate, concurrency and run time within their bounds.
fn check_limits(raw: &Raw) -> Result<(), RequestError> {
    if raw.max_messages == Some(0) {
        return Err(bad("max_messages", "must be at least 1"));
    }
    if let Some(r) = raw.rate
        && !(r.is_finite() && (MIN_RATE..=MAX_RATE).contains(&r))
    {
        return Err(bad(
            "rate",
            format!("must be between {MIN_RATE} and {MAX_RATE} messages per second"),
        ));
    }
    if !(1..=MAX_CONCURRENCY).contains(&raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY)) {
        return Err(bad(
            "concurrency",
            format!("must be between 1 and {MAX_CONCURRENCY}"),
        ));
    }
    if raw.max_run_seconds == Some(0) {
        return Err(bad("max_run_seconds", "must be at least 1"));
    }
    Ok(())
}

/// A filter a message could match: no more attribute conditions than SQS carries
/// attributes, a bounded number of body conditions, none comparing with more than a
/// body can hold.
fn check_filter(filter: &Filter) -> Result<(), RequestError> {
    let at_most = |field: &str, n: usize, max: usize, why: &str| {
        if n > max {
            Err(bad(field, format!("{n} conditions, at most {max}{why}")))
        } else {
            Ok(())
        }
    };
    at_most(
        "filter.attributes",
        filter.attributes.len(),
        MAX_FILTER_ATTRIBUTES,
        ": SQS carries at most 10 message attributes, so no message could match more",
    )?;
    at_most("filter.body", filter.body.len(), MAX_FILTER_CONDITIONS, "")?;
    for (i, p) in filter.body.iter().enumerate() {
        let size = p
            .equals
            .iter()
            .chain(p.one_of.iter().flatten())
            .map(|v| v.to_string().len())
            .sum::<usize>()
            + p.pointer.len();
        if size > MAX_FILTER_VALUE_BYTES {
            return Err(bad(
                &format!("filter.body[{i}]"),
                format!(
                    "compares with {size} bytes, more than a message body can hold ({MAX_FILTER_VALUE_BYTES})"
                ),
            ));
        }
        if !(p.pointer.is_empty() || p.pointer.starts_with('/')) {
            return Err(bad(
                &format!("filter.body[{i}].pointer"),
                "a JSON pointer starts with '/'",
            ));
        }
        if p.equals.is_none() && p.one_of.is_none() && p.exists.is_none() {
            return Err(bad(
                &format!("filter.body[{i}]"),
                "give equals, one_of or exists",
            ));
        }
    }
    Ok(())
}

/// Copy mode: not with a move task, not from a FIFO queue; `hold_seconds` only with it.
fn check_copy(raw: &Raw, source: &str) -> Result<(), RequestError> {
    if raw.mode != Mode::Copy {
        return match raw.hold_seconds {
            Some(_) => Err(bad("hold_seconds", "only with mode: copy")),
            None => Ok(()),
        };
    }
    if raw.native {
        return Err(bad(
            "mode",
            "a message move task moves: copy with native is not possible",
        ));
    }
    if source.ends_with(".fifo") {
        return Err(bad(
            "mode",
            "copy from a FIFO queue is not possible: SQS hands out none of a group's later messages while its earlier ones are kept, so only each group's first messages could be copied",
        ));
    }
    if raw
        .hold_seconds
        .is_some_and(|h| !(MIN_HOLD_SECONDS..=MAX_HOLD_SECONDS).contains(&h))
    {
        return Err(bad(
            "hold_seconds",
            format!(
                "must be between {MIN_HOLD_SECONDS} and {MAX_HOLD_SECONDS} (SQS hides a message at most 12 hours)"
            ),
        ));
    }
    Ok(())
}

/// Attributes added to what is published to SNS: only with an SNS destination, and within
/// SNS's rules (at most 10 attributes with the provenance one; names of 1-256 letters,
/// digits, `_`, `-` and `.`, not starting with `AWS.` or `Amazon.`; a value).
fn check_sns_attributes(
    attributes: &BTreeMap<String, String>,
    destination: &Destination,
) -> Result<(), RequestError> {
    if attributes.is_empty() {
        return Ok(());
    }
    if !matches!(destination, Destination::Topic(_)) {
        return Err(bad("sns_attributes", "only with an sns destination"));
    }
    if attributes.len() > MAX_FILTER_ATTRIBUTES - 1 {
        return Err(bad(
            "sns_attributes",
            format!(
                "{} attributes, at most {}: SNS carries 10 with rollgate's provenance",
                attributes.len(),
                MAX_FILTER_ATTRIBUTES - 1
            ),
        ));
    }
    for (name, value) in attributes {
        let name_ok = (1..=256).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !name.to_ascii_lowercase().starts_with("aws.")
            && !name.to_ascii_lowercase().starts_with("amazon.");
        if !name_ok {
            return Err(bad(
                &format!("sns_attributes.{name}"),
                "an attribute name is 1-256 letters, digits, '_', '-' or '.', not starting with AWS. or Amazon.",
            ));
        }
        if value.is_empty() || value.len() > MAX_FILTER_VALUE_BYTES {
            return Err(bad(
                &format!("sns_attributes.{name}"),
                "the value must be 1 byte to 256 KiB",
            ));
        }
    }
    Ok(())
}

/// Peek takes a page size and a cursor and nothing that moves; the others take neither.
fn check_peek(raw: &Raw) -> Result<(), RequestError> {
    if raw.action != Action::Peek {
        for (field, given) in [
            ("page_size", raw.page_size.is_some()),
            ("cursor", raw.cursor.is_some()),
        ] {
            if given {
                return Err(bad(field, "only with action: peek"));
            }
        }
        return Ok(());
    }
    for (field, given) in [
        ("destination", raw.destination.is_some()),
        ("native", raw.native),
        ("dry_run", raw.dry_run),
        ("max_messages", raw.max_messages.is_some()),
        ("mode", raw.mode != Mode::Move),
    ] {
        if given {
            return Err(bad(field, "peek moves nothing: leave it out"));
        }
    }
    if !(1..=MAX_PAGE_SIZE).contains(&raw.page_size.unwrap_or(DEFAULT_PAGE_SIZE)) {
        return Err(bad(
            "page_size",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    if let Some(c) = &raw.cursor {
        super::peek::Cursor::parse(c).map_err(|why| bad("cursor", why))?;
    }
    Ok(())
}

/// What a native message move task cannot do.
fn check_native(raw: &Raw, filter: &Filter, destination: &Destination) -> Result<(), RequestError> {
    if !filter.is_empty() {
        return Err(bad(
            "native",
            "a message move task cannot filter: drop the filter or native",
        ));
    }
    if raw.dry_run || raw.max_messages.is_some() {
        return Err(bad(
            "native",
            "a message move task cannot dry-run or stop at max_messages",
        ));
    }
    if !matches!(
        destination,
        Destination::Queue(_) | Destination::SourceOfDlq
    ) {
        return Err(bad(
            "native",
            "a message move task moves between SQS queues only",
        ));
    }
    if raw
        .rate
        .is_some_and(|r| !(1.0..=500.0).contains(&r) || r.fract() != 0.0)
    {
        return Err(bad(
            "rate",
            "with native, a whole number of messages per second from 1 to 500",
        ));
    }
    Ok(())
}

/// A refused request fails the invocation as `InvalidRequest`.
impl From<RequestError> for crate::failure::Failure {
    fn from(e: RequestError) -> Self {
        crate::failure::Failure::new(crate::failure::Class::InvalidRequest, e.to_string())
    }
}

impl Request {
    /// How the copies sent say where they came from.
    pub fn provenance(&self) -> super::message::Provenance {
        use super::message::Provenance;
        match (self.provenance, self.mode) {
            (false, _) => Provenance::Off,
            (true, Mode::Move) => Provenance::Moved,
            (true, Mode::Copy) => Provenance::Copied,
        }
    }

    /// Parse and validate; the error names the offending field.
    pub fn parse(value: &Value) -> Result<Self, RequestError> {
        if !value.is_object() {
            let kind = crate::hook::kind(value);
            return Err(bad(
                "request",
                format!("expected a JSON object, got {kind}"),
            ));
        }
        let mut raw = read_raw(value)?;
        let source = raw
            .source
            .take()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                bad(
                    "source",
                    "required: the DLQ's URL, ARN or name, or s3://<bucket>/<prefix> of Lambda's failure records",
                )
            })?;
        let s3 = parse_s3(&source)?;
        if s3.is_none() {
            check_queue_reference("source", &source)?;
        }
        let destination = match raw.destination.as_deref() {
            None => Destination::SourceOfDlq,
            Some(d) => parse_destination(d)?,
        };
        check_limits(&raw)?;
        let filter = raw.filter.take().unwrap_or_default();
        check_filter(&filter)?;
        if raw.native {
            check_native(&raw, &filter, &destination)?;
        }
        if s3.is_some() {
            check_s3(&raw, &filter, &destination)?;
        }
        check_copy(&raw, &source)?;
        check_sns_attributes(&raw.sns_attributes, &destination)?;
        check_peek(&raw)?;
        if raw.action == Action::Cancel && raw.task_handle.is_none() {
            return Err(bad("task_handle", "required to cancel a message move task"));
        }
        Ok(Self {
            action: raw.action,
            source,
            destination,
            max_messages: raw.max_messages,
            rate: raw.rate,
            filter,
            dry_run: raw.dry_run,
            native: raw.native,
            max_run_seconds: raw.max_run_seconds,
            concurrency: raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
            provenance: raw.provenance,
            message_group_id: match raw.message_group_id {
                Some(g) => Some(
                    crate::limits::check_fifo_id(&g)
                        .map(|()| g)
                        .map_err(|why| bad("message_group_id", why))?,
                ),
                None => None,
            },
            task_handle: raw.task_handle,
            carried: raw.continuation.unwrap_or_default(),
            mode: raw.mode,
            hold_seconds: raw.hold_seconds.unwrap_or(DEFAULT_HOLD_SECONDS),
            page_size: raw.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
            cursor: raw.cursor,
            sns_attributes: raw.sns_attributes,
            s3,
            original: value.clone(),
        })
    }

    /// The request that continues this one after this run's counts (`done.moved` in
    /// copy mode are copies); `hold_until_ms` is when the copies stay hidden until.
    pub fn continuation(&self, done: RunCounts, hold_until_ms: Option<i64>) -> Value {
        self.continue_after(done, hold_until_ms, None)
    }

    /// [`Self::continuation`] of an S3 source: listing goes on after the key `after`.
    pub fn continue_after(
        &self,
        done: RunCounts,
        hold_until_ms: Option<i64>,
        after: Option<String>,
    ) -> Value {
        let mut next = self.original.clone();
        let copy = self.mode == Mode::Copy;
        let (moved, copied) = if copy {
            (0, done.moved)
        } else {
            (done.moved, 0)
        };
        let carried = Carried {
            // The carried totals come from the request: saturate, never overflow.
            run: self.carried.run.saturating_add(1),
            moved: self.carried.moved.saturating_add(moved),
            duplicates: self.carried.duplicates.saturating_add(done.duplicates),
            copied: self.carried.copied.saturating_add(copied),
            hold_until_ms: hold_until_ms.filter(|_| copy),
            after,
        };
        if let Value::Object(map) = &mut next {
            if let Some(max) = self.max_messages {
                map.insert(
                    "max_messages".into(),
                    Value::from(max.saturating_sub(done.moved).max(1)),
                );
            }
            map.insert(
                "continuation".into(),
                serde_json::to_value(carried).unwrap_or(Value::Null),
            );
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimal_request_defaults() {
        let r = Request::parse(&json!({"source": "orders-dlq"})).unwrap();
        assert_eq!(r.action, Action::Redrive);
        assert_eq!(r.destination, Destination::SourceOfDlq);
        assert_eq!(r.concurrency, DEFAULT_CONCURRENCY);
        assert!(r.provenance && !r.dry_run && r.filter.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let err = |v: Value| Request::parse(&v).unwrap_err().to_string();
        assert!(err(json!({})).starts_with("source:"));
        assert_eq!(
            err(json!([{"source": "q"}])),
            "request: expected a JSON object, got an array"
        );
        assert_eq!(
            err(json!(null)),
            "request: expected a JSON object, got null"
        );
        assert!(err(json!({"source": "q", "rate": 0})).starts_with("rate:"));
        assert!(err(json!({"source": "q", "max_messages": "x"})).starts_with("max_messages"));
        assert!(err(json!({"source": "q", "colour": 1})).contains("colour"));
        // An empty unknown key still gets a field name (the `policy` fuzz target found
        // the same gap in the policy parser).
        assert!(err(json!({"source": "q", "": 1})).starts_with("request: unknown field ``"));
        assert!(err(json!({"source": "q", "destination": "lambda:"})).starts_with("destination:"));
        assert!(
            err(json!({"source": "q", "filter": {"body": [{"pointer": "a", "equals": 1}]}}))
                .starts_with("filter.body[0].pointer:")
        );
        assert!(
            err(json!({"source": "q", "native": true, "filter": {"attributes": {"a": "b"}}}))
                .starts_with("native:")
        );
        assert!(err(json!({"source": "q", "action": "cancel"})).starts_with("task_handle:"));
        assert!(err(json!({"source": "q", "concurrency": 99})).starts_with("concurrency:"));
        // SQS takes at most 128 ASCII letters, digits and punctuation as a group id.
        let group = |g: String| json!({"source": "q", "message_group_id": g});
        assert!(Request::parse(&group("g".repeat(128))).is_ok());
        assert_eq!(
            err(group("g".repeat(200))),
            "message_group_id: has 200 characters; SQS accepts at most 128"
        );
        assert!(err(group("a b".into())).starts_with("message_group_id: contains ' '"));
        // What cannot work is refused before anything moves.
        assert!(err(json!({"source": "q", "rate": 1e-9})).starts_with("rate: must be between 0.1"));
        let many: serde_json::Map<String, Value> =
            (0..11).map(|i| (format!("a{i}"), json!("x"))).collect();
        assert!(
            err(json!({"source": "q", "filter": {"attributes": many}}))
                .starts_with("filter.attributes: 11 conditions")
        );
        let conditions: Vec<Value> = (0..51)
            .map(|i| json!({"pointer": format!("/{i}"), "exists": true}))
            .collect();
        assert!(
            err(json!({"source": "q", "filter": {"body": conditions}}))
                .starts_with("filter.body: 51 conditions, at most 50")
        );
        let huge = "x".repeat(300_000);
        assert!(
            err(json!({"source": "q", "filter": {"body": [{"pointer": "/a", "equals": huge}]}}))
                .starts_with("filter.body[0]: compares with")
        );
    }

    #[test]
    fn lambda_destinations() {
        let d = |s: &str| parse_destination(s).unwrap();
        assert_eq!(
            d("lambda:orders:live"),
            Destination::Lambda {
                function: "orders".into(),
                qualifier: Some("live".into())
            }
        );
        assert_eq!(
            d("lambda:arn:aws:lambda:us-east-1:123456789012:function:f:7"),
            Destination::Lambda {
                function: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
                qualifier: Some("7".into())
            }
        );
        assert_eq!(d("orders"), Destination::Queue("orders".into()));
    }

    #[test]
    fn hostile_references_are_refused_before_any_call() {
        let err = |v: Value| Request::parse(&v).unwrap_err().to_string();
        for source in [
            "redrive-*",
            "../private",
            "q\u{0}\n",
            "https://h/123/q/../../123/private",
            "https://h/q",
            "arn:aws:sqs:us-east-1:123:q:extra",
            "arn:aws:lambda:us-east-1:123:function:q",
            &"q".repeat(81),
            &format!("https://h/123/{}", "q".repeat(3000)),
        ] {
            assert!(
                err(json!({"source": source})).starts_with("source:"),
                "{source}"
            );
        }
        for ok in [
            "orders-dlq",
            "orders.fifo",
            "arn:aws-cn:sqs:cn-north-1:123456789012:orders_dlq",
            "https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq",
            "http://127.0.0.1:4566/000000000000/orders-dlq.fifo",
        ] {
            Request::parse(&json!({"source": ok})).unwrap();
        }
        for dest in [
            "lambda:redrive-*",
            "lambda:app/../../other",
            "lambda:app:live:extra",
            "lambda:app:l*ve",
            "lambda:arn:aws:lambda:us-east-1:123:layer:x",
            "lambda:arn:aws:lambda:us-east-1:abc:function:x",
            "other-*",
        ] {
            assert!(
                err(json!({"source": "q", "destination": dest})).starts_with("destination:"),
                "{dest}"
            );
        }
        for ok in [
            "lambda:app",
            "lambda:app:$LATEST",
            "lambda:app:7",
            "lambda:app:live",
        ] {
            Request::parse(&json!({"source": "q", "destination": ok})).unwrap();
        }
    }

    #[test]
    fn filter_on_attributes_and_body() {
        let f: Filter = serde_json::from_value(json!({
            "attributes": {"tenant": "a"},
            "body": [{"pointer": "/type", "one_of": ["x", "y"]}, {"pointer": "/skip", "exists": false}]
        }))
        .unwrap();
        let attrs = |t: &str| BTreeMap::from([("tenant".to_owned(), AttributeValue::string(t))]);
        assert!(f.matches(r#"{"type":"x"}"#, &attrs("a")));
        assert!(!f.matches(r#"{"type":"x"}"#, &attrs("b")));
        assert!(!f.matches(r#"{"type":"z"}"#, &attrs("a")));
        assert!(!f.matches(r#"{"type":"x","skip":1}"#, &attrs("a")));
        assert!(!f.matches("not json", &attrs("a")));
        assert!(Filter::default().matches("not json", &BTreeMap::new()));
    }

    #[test]
    fn continuation_carries_totals_and_shrinks_the_quota() {
        let r = Request::parse(&json!({"source": "q", "max_messages": 100})).unwrap();
        let next = r.continuation(counts(40, 1), None);
        assert_eq!(next["max_messages"], 60);
        assert_eq!(
            next["continuation"],
            json!({"run": 1, "moved": 40, "duplicates": 1})
        );
        let again = Request::parse(&next).unwrap();
        assert_eq!(
            again.continuation(counts(10, 0), None)["continuation"]["moved"],
            50
        );
    }

    fn counts(moved: u64, duplicates: u64) -> RunCounts {
        RunCounts { moved, duplicates }
    }

    #[test]
    fn copy_mode_carries_copies_and_the_hold() {
        let r =
            Request::parse(&json!({"source": "q", "mode": "copy", "max_messages": 100})).unwrap();
        assert_eq!((r.mode, r.hold_seconds), (Mode::Copy, DEFAULT_HOLD_SECONDS));
        let next = r.continuation(counts(40, 0), Some(5_000));
        assert_eq!(next["max_messages"], 60);
        assert_eq!(
            next["continuation"],
            json!({"run": 1, "moved": 0, "duplicates": 0, "copied": 40, "hold_until_ms": 5000})
        );
        let again = Request::parse(&next).unwrap();
        assert_eq!(again.carried.hold_until_ms, Some(5_000));
        assert_eq!(
            again.continuation(counts(1, 0), Some(9))["continuation"]["copied"],
            41
        );
    }

    #[test]
    fn sns_destinations_and_their_attributes() {
        let topic = "arn:aws:sns:us-east-1:123456789012:orders.fifo";
        let parse = |v: Value| Request::parse(&v).map(|r| r.destination);
        assert_eq!(
            parse(json!({"source": "q", "destination": "sns"})),
            Ok(Destination::Topic(None))
        );
        assert_eq!(
            parse(json!({"source": "q", "destination": format!("sns:{topic}")})),
            Ok(Destination::Topic(Some(topic.into())))
        );
        let err = |v: Value| Request::parse(&v).unwrap_err().to_string();
        for bad in [
            "sns:",
            "sns:orders",
            "sns:arn:aws:sqs:us-east-1:123456789012:q",
            "sns:arn:aws:sns:us-east-1:1234:t",
            "sns:arn:aws:sns:us-east-1:123456789012:a*",
        ] {
            assert!(
                err(json!({"source": "q", "destination": bad})).starts_with("destination:"),
                "{bad}"
            );
        }
        assert!(
            err(json!({"source": "q", "destination": "sns", "native": true}))
                .starts_with("native:")
        );
        assert!(
            err(json!({"source": "q", "sns_attributes": {"a": "b"}}))
                .starts_with("sns_attributes: only")
        );
        for (name, value) in [("AWS.x", "v"), ("a b", "v"), (".a", "v"), ("ok", "")] {
            assert!(
                err(json!({"source": "q", "destination": "sns", "sns_attributes": {name: value}}))
                    .starts_with(&format!("sns_attributes.{name}:")),
                "{name}"
            );
        }
        let ten: BTreeMap<String, String> =
            (0..10).map(|i| (format!("a{i}"), "v".into())).collect();
        assert!(
            err(json!({"source": "q", "destination": "sns", "sns_attributes": ten}))
                .starts_with("sns_attributes: 10 attributes")
        );
    }

    #[test]
    fn eventbridge_destinations() {
        let parse = |d: &str| {
            Request::parse(&json!({"source": "q", "destination": d})).map(|r| r.destination)
        };
        assert_eq!(parse("target"), Ok(Destination::RuleTarget));
        assert_eq!(parse("events"), Ok(Destination::Bus(None)));
        assert_eq!(
            parse("events:shop"),
            Ok(Destination::Bus(Some("shop".into())))
        );
        let arn = "arn:aws:events:us-east-1:123456789012:event-bus/shop";
        assert_eq!(
            parse(&format!("events:{arn}")),
            Ok(Destination::Bus(Some(arn.into())))
        );
        for bad in [
            "events:",
            "events:a b",
            "events:arn:aws:sqs:us-east-1:123456789012:q",
            "events:arn:aws:events:us-east-1:1:event-bus/x",
        ] {
            assert!(
                parse(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("destination:"),
                "{bad}"
            );
        }
        let native =
            Request::parse(&json!({"source": "q", "destination": "target", "native": true}));
        assert!(native.unwrap_err().to_string().starts_with("native:"));
    }

    #[test]
    fn copy_and_peek_refuse_what_cannot_work() {
        let err = |v: Value| Request::parse(&v).unwrap_err().to_string();
        assert!(err(json!({"source": "q", "mode": "copy", "native": true})).starts_with("mode:"));
        assert!(
            err(json!({"source": "q.fifo", "mode": "copy"})).starts_with("mode: copy from a FIFO")
        );
        assert!(err(json!({"source": "q", "hold_seconds": 600})).starts_with("hold_seconds: only"));
        for h in [0, 59, MAX_HOLD_SECONDS + 1] {
            assert!(
                err(json!({"source": "q", "mode": "copy", "hold_seconds": h}))
                    .starts_with("hold_seconds:")
            );
        }
        assert!(err(json!({"source": "q", "mode": "clone"})).starts_with("mode:"));
        assert!(err(json!({"source": "q", "page_size": 5})).starts_with("page_size: only"));
        assert!(err(json!({"source": "q", "cursor": "x"})).starts_with("cursor: only"));
        for (field, value) in [
            ("destination", json!("other")),
            ("native", json!(true)),
            ("dry_run", json!(true)),
            ("max_messages", json!(5)),
            ("mode", json!("copy")),
        ] {
            let mut req = json!({"source": "q", "action": "peek"});
            req[field] = value;
            assert!(
                err(req).starts_with(&format!("{field}: peek moves nothing")),
                "{field}"
            );
        }
        for size in [0, MAX_PAGE_SIZE + 1] {
            assert!(
                err(json!({"source": "q", "action": "peek", "page_size": size}))
                    .starts_with("page_size:")
            );
        }
        assert!(
            err(json!({"source": "q", "action": "peek", "cursor": "not a cursor"}))
                .starts_with("cursor:")
        );
        let peek = Request::parse(&json!({"source": "q", "action": "peek"})).unwrap();
        assert_eq!(
            (peek.action, peek.page_size),
            (Action::Peek, DEFAULT_PAGE_SIZE)
        );
    }

    #[test]
    fn continuation_totals_from_the_request_saturate() {
        // The carried totals are whatever the request says: the largest values must not
        // overflow (a panic in debug builds, a silent wrap to 0 in release).
        let r = Request::parse(&json!({"source": "q", "continuation":
            {"run": u32::MAX, "moved": u64::MAX, "duplicates": u64::MAX}}))
        .unwrap();
        let next = r.continuation(counts(1, 1), None);
        assert_eq!(
            next["continuation"],
            json!({"run": u32::MAX, "moved": u64::MAX, "duplicates": u64::MAX})
        );
        assert!(Request::parse(&next).is_ok());
    }
}
