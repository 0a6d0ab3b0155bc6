//! The redrive run: resolve and authorise, then copy with several workers, or start a
//! message move task, or describe one. Generic over the ports, so tests use fakes.

use super::message;
use super::peek::Peeked;
use super::ports::{
    EntryFailure, EventInvoker, MoveTask, Objects, Outgoing, QueueInfo, Queues, Received, Republish,
};
use super::rate::Aimd;
use super::request::{
    Action, AllowList, DEFAULT_RATE, Destination, Mode, Request, RunCounts, queue_url_parts,
};
use crate::clock::Instant;
use crate::error::{Error, Result};
use crate::failure::{self, Class};
use crate::scope::Home;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

pub const COMPONENT: &str = "dlq-redrive";
const BATCH: i32 = 10;
const SEND_ATTEMPTS: u32 = 6;
const DELETE_ATTEMPTS: u32 = 4;
const MAX_REPORTED_FAILURES: usize = 50;

/// Why a run stopped receiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// The DLQ had nothing more to give.
    Drained,
    /// `max_messages` were moved.
    MaxMessages,
    /// The time was up: the report carries a continuation.
    Deadline,
    /// Receiving from the DLQ failed.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub message_id: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    pub body: String,
}

impl Report {
    /// The report as logged at the default level: the dry run's sample holds message
    /// bodies, which are data (and may be secrets); the log keeps their ids and sizes.
    /// The invocation's answer and the SNS summary carry the full report.
    pub fn log_view(&self) -> Report {
        let mut view = self.clone();
        for s in &mut view.sample {
            s.body = format!("({} bytes, not logged)", s.body.len());
        }
        for m in &mut view.messages {
            m.body = format!("({} bytes, not logged)", m.body.len());
            m.attributes.clear();
        }
        view
    }
}

/// What a run did. Counts are for this run; `totals` adds earlier runs of a continued
/// redrive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub component: &'static str,
    pub action: &'static str,
    /// `move`, or `copy`: the originals stay in the DLQ.
    pub mode: Mode,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// A shared DLQ sent back to its sources: messages each one accepted, by ARN.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub destinations: BTreeMap<String, u64>,
    pub dry_run: bool,
    pub moved: u64,
    /// Copy mode: copies the destination accepted (their originals stay).
    pub copied: u64,
    /// Copy mode: originals this job copied stay hidden until then (epoch ms), so no
    /// continuation copies them again: set when the run continues, and on every run of a
    /// continued job (its earlier runs' copies); absent for a job done in one run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_until_ms: Option<i64>,
    /// Dry run: messages that would move.
    pub would_move: u64,
    pub filtered: u64,
    pub failed: u64,
    /// Messages in the DLQ when the run ended.
    pub remaining: Option<u64>,
    /// Sent but not deleted from the DLQ: they will be redriven again. Copy mode: copied
    /// but their originals could not be kept hidden: a continuation may copy them again.
    pub duplicates: u64,
    /// Throttling answers met, those the SDK's retries absorbed included (the rate was
    /// halved for each the run met, and once per batch for those absorbed).
    pub throttled: u64,
    /// Of `throttled`, the attempts the SDK retried on its own.
    pub throttled_absorbed: u64,
    pub duration_ms: u64,
    /// Moved (or copied) per second of run time.
    pub rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<Sample>,
    /// Peek: the page's messages, and the cursor of the next page (absent when the queue
    /// has nothing more to show).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Peeked>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The request to invoke next when the run stopped at its deadline.
    pub continuation: Option<Value>,
    pub totals: Totals,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<MoveTask>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<MoveTask>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub runs: u32,
    pub moved: u64,
    pub duplicates: u64,
    pub copied: u64,
}

/// Time limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// No receive starts after this.
    pub stop_receiving: Instant,
    /// In-flight work gives up here (the report still has to be written).
    pub hard: Instant,
}

impl Limits {
    /// From the Lambda hard deadline: keep a drain window (a quarter of the time, at
    /// most 10 s) for in-flight batches, and honour the request's `max_run_seconds`.
    pub fn new(now: Instant, hard: Instant, max_run: Option<Duration>) -> Self {
        let total = hard.saturating_duration_since(now);
        let drain = (total / 4).min(Duration::from_secs(10));
        let mut stop = hard - drain;
        if let Some(m) = max_run {
            stop = stop.min(now + m);
        }
        Self {
            stop_receiving: stop,
            hard,
        }
    }
}

/// Everything the run talks to.
pub struct Redrive<'a, Q, L, T, O> {
    pub queues: &'a Q,
    pub lambda: &'a L,
    pub republish: &'a T,
    pub objects: &'a O,
    pub allow: &'a AllowList,
    /// Where the function runs: the account and region a queue name or URL is in.
    pub home: &'a Home,
}

/// What every worker of one run shares: its limits, tally, send rate and start.
#[derive(Clone, Copy)]
pub(super) struct Shared<'a> {
    pub(super) limits: Limits,
    pub(super) tally: &'a Mutex<Tally>,
    pub(super) rate: &'a Mutex<Aimd>,
    pub(super) clock: Instant,
}

impl Shared<'_> {
    /// A throttling answer: halve the rate, and count it.
    fn throttled(&self) {
        lock(self.rate).throttled();
        lock(self.tally).throttled += 1;
    }

    /// Throttles the SDK absorbed (its running count now): the new ones are counted, and
    /// the rate is halved once for them, as for one the run met itself.
    fn absorbed(&self, count: u64) {
        let new = lock(self.tally).absorb(count);
        if new > 0 {
            lock(self.rate).throttled();
        }
    }
}

/// Of one receive, the messages to send now; the rest (filtered out, over the quota, or
/// a dry run's) are held back to be handed back at the end, and counted.
pub(super) fn choose(req: &Request, got: Vec<Received>, t: &mut Tally) -> Vec<Received> {
    let mut chosen = Vec::new();
    for m in got {
        let selected = req.filter.matches(&m.body, &m.attributes);
        let within = req.max_messages.is_none_or(|max| t.claimed < max);
        if selected && within && !req.dry_run {
            t.claimed += 1;
            chosen.push(m);
            continue;
        }
        if !selected {
            t.filtered += 1;
        } else if req.dry_run && within {
            t.claimed += 1;
            t.would_move += 1;
            if t.sample.len() < 10 {
                t.sample.push(Sample {
                    message_id: m.message_id.clone(),
                    group_id: m.group_id.clone(),
                    body: m.body.chars().take(200).collect(),
                });
            }
        }
        t.held.push((m.message_id, m.receipt_handle));
    }
    chosen
}

#[derive(Default)]
pub(super) struct Tally {
    pub(super) moved: u64,
    pub(super) would_move: u64,
    pub(super) filtered: u64,
    pub(super) failed: u64,
    pub(super) duplicates: u64,
    pub(super) throttled: u64,
    /// Throttles the SDK's retries absorbed during the run, and the SDK's running count
    /// when last looked at.
    pub(super) absorbed: u64,
    pub(super) absorbed_seen: u64,
    pub(super) claimed: u64,
    pub(super) stopped_deadline: bool,
    pub(super) stopped_max: bool,
    pub(super) receive_error: Option<String>,
    pub(super) failures: Vec<Failure>,
    pub(super) sample: Vec<Sample>,
    pub(super) held: Vec<(String, String)>,
    /// Copy mode: originals whose copy was accepted, kept in flight.
    pub(super) copies: Vec<(String, String)>,
    /// Of a shared DLQ: messages each source queue accepted.
    pub(super) per_destination: BTreeMap<String, u64>,
}

impl Tally {
    /// The counts into the report, and why the run stopped; what a continuation carries.
    pub(super) fn fill(mut self, req: &Request, report: &mut Report) -> RunCounts {
        if req.mode == Mode::Copy {
            report.copied = self.moved;
        } else {
            report.moved = self.moved;
        }
        report.would_move = self.would_move;
        report.filtered = self.filtered;
        report.failed = self.failed;
        report.duplicates = self.duplicates;
        report.destinations = std::mem::take(&mut self.per_destination);
        report.throttled = self.throttled + self.absorbed;
        report.throttled_absorbed = self.absorbed;
        report.failures = std::mem::take(&mut self.failures);
        report.sample = std::mem::take(&mut self.sample);
        report.stopped = Some(self.stopped());
        if let Some(e) = self.receive_error {
            report.failures.push(Failure {
                message_id: String::new(),
                code: "ReceiveFailed".into(),
                message: e,
            });
        }
        RunCounts {
            moved: self.moved,
            duplicates: self.duplicates,
        }
    }

    fn stopped(&self) -> Stopped {
        if self.receive_error.is_some() {
            Stopped::Error
        } else if self.stopped_max {
            Stopped::MaxMessages
        } else if self.stopped_deadline {
            Stopped::Deadline
        } else {
            Stopped::Drained
        }
    }

    /// Take the SDK's running count of absorbed throttles; the new ones since last time.
    fn absorb(&mut self, count: u64) -> u64 {
        let new = count.saturating_sub(self.absorbed_seen);
        self.absorbed_seen = self.absorbed_seen.max(count);
        self.absorbed += new;
        new
    }

    pub(super) fn fail(&mut self, message_id: &str, code: &str, message: &str) {
        self.failed += 1;
        if self.failures.len() < MAX_REPORTED_FAILURES {
            self.failures.push(Failure {
                message_id: message_id.into(),
                code: code.into(),
                message: message.into(),
            });
        }
    }
}

pub(super) enum Target {
    Queue(QueueInfo),
    /// A DLQ several queues dead-letter into, with no destination given: each message
    /// goes back to the queue SQS recorded on it (`DeadLetterQueueSourceArn`); one with
    /// no such mark, or naming a queue not among these, stays.
    Sources(Vec<QueueInfo>),
    Lambda {
        function: String,
        qualifier: Option<String>,
    },
    /// An SNS subscription's DLQ: published again to the given topic, or to the topic
    /// each message's envelope names.
    Topic(Option<String>),
    /// An EventBridge rule's DLQ: each message to the target it names.
    RuleTargets,
    /// An EventBridge rule's DLQ: put on the given bus again, or on its rule's bus.
    Bus(Option<String>),
    /// Lambda failure records (an S3 source): each into the function it names.
    RecordFunctions,
}

impl Target {
    /// What the report says the destination is.
    pub(super) fn describe(&self) -> String {
        match self {
            Target::Queue(q) => q.arn.clone(),
            Target::Sources(queues) => format!(
                "each message's source queue: {}",
                queues
                    .iter()
                    .map(|q| q.arn.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Target::Lambda {
                function,
                qualifier,
            } => match qualifier {
                Some(q) => format!("lambda:{function}:{q}"),
                None => format!("lambda:{function}"),
            },
            Target::Topic(Some(topic)) => topic.clone(),
            Target::Topic(None) => "each message's SNS topic".into(),
            Target::RuleTargets => "each message's EventBridge target (TARGET_ARN)".into(),
            Target::Bus(Some(bus)) => bus.clone(),
            Target::Bus(None) => "each message's rule's event bus (RULE_ARN)".into(),
            Target::RecordFunctions => "each record's function".into(),
        }
    }
}

/// Where one round of a batch goes.
#[derive(Clone, Copy)]
enum Sink<'a> {
    Queue(&'a QueueInfo),
    Topic(&'a str),
    Bus(&'a str),
}

/// A queue whose RedrivePolicy names itself, redriven to its source: refused.
fn own_dlq(queue: &QueueInfo) -> Error {
    Error::InvalidEvent(format!(
        "destination: {} is its own dead-letter queue (its RedrivePolicy names itself): its messages would loop; give a destination",
        queue.arn
    ))
}

fn is_throttle(code: &str) -> bool {
    code.contains("Throttl") || code == "TooManyRequestsException" || code == "SlowDown"
}

pub(super) fn code_of(e: &Error) -> String {
    e.code().unwrap_or("Error").to_owned()
}

pub(super) fn retryable(e: &Error) -> bool {
    e.is_retryable() || e.code().is_some_and(is_throttle)
}

pub(super) fn backoff(attempt: u32) -> Duration {
    crate::clock::backoff(
        attempt,
        Duration::from_millis(100),
        Duration::from_millis(3_200),
    )
}

/// `partition:service:region:account` of an ARN, to build sibling ARNs.
fn arn_prefix(arn: &str) -> Option<(String, String, String)> {
    let a = crate::names::Arn::parse(arn)?;
    Some((
        a.partition.to_owned(),
        a.region.to_owned(),
        a.account.to_owned(),
    ))
}

/// The ARN a queue reference names, when it is known without asking SQS: an ARN as
/// written, a URL's account and name (region from an `sqs.<region>.` host, else home), a
/// bare name in the home account. The allow-list is checked on it before SQS is asked
/// anything: the template scopes the role to the same list, so a question about a queue
/// outside it would come back as AWS's AccessDenied instead of rollgate's explanation.
pub fn named_queue_arn(reference: &str, home: &Home) -> Option<String> {
    let reference = reference.trim();
    if reference.starts_with("arn:") {
        return Some(reference.to_owned());
    }
    let partition = home.partition.as_deref().unwrap_or("aws");
    if reference.starts_with("https://") || reference.starts_with("http://") {
        let (host, account, name) = queue_url_parts(reference)?;
        if account.is_empty() || name.is_empty() {
            return None;
        }
        let region = host
            .strip_prefix("sqs.")
            .and_then(|h| h.split('.').next())
            .filter(|r| r.contains('-'))
            .map(str::to_owned)
            .or_else(|| home.region.clone())?;
        return Some(format!("arn:{partition}:sqs:{region}:{account}:{name}"));
    }
    let (region, account) = (home.region.as_deref()?, home.account.as_deref()?);
    (!reference.is_empty() && !reference.contains('/'))
        .then(|| format!("arn:{partition}:sqs:{region}:{account}:{reference}"))
}

/// A request error about a queue, prefixed with the field that named it.
fn in_field(field: &str, e: Error) -> Error {
    match e {
        Error::InvalidEvent(m) => {
            let m = m.strip_prefix("source/destination: ").unwrap_or(&m);
            Error::InvalidEvent(format!("{field}: {m}"))
        }
        other => other,
    }
}

pub(super) fn not_allowed(field: &str, arn: &str) -> Error {
    Error::InvalidEvent(format!(
        "{field}: {arn} is not in the allow-list (ROLLGATE_REDRIVE_ALLOW); nothing was touched"
    ))
}

impl<Q: Queues, L: EventInvoker, T: Republish, O: Objects> Redrive<'_, Q, L, T, O> {
    /// Refuse a queue outside the allow-list from its reference alone (see
    /// [`named_queue_arn`]); what cannot be told so is checked once it is resolved.
    fn allowed_before_asking(&self, field: &str, reference: &str) -> Result<()> {
        match named_queue_arn(reference, self.home) {
            Some(arn) if !self.allow.allows(&arn) => Err(not_allowed(field, &arn)),
            _ => Ok(()),
        }
    }

    /// Run `req`. `Err` only for a request that cannot start (bad field, not allowed,
    /// unknown queue): then nothing was changed.
    pub async fn run(&self, req: &Request, limits: Limits) -> Result<Report> {
        if let Some(loc) = &req.s3 {
            return self.run_objects(req, loc, limits).await;
        }
        let started = Instant::now();
        self.allowed_before_asking("source", &req.source)?;
        let source = self
            .queues
            .resolve(&req.source)
            .await
            .map_err(|e| in_field("source", e))?;
        if !self.allow.allows(&source.arn) {
            return Err(not_allowed("source", &source.arn));
        }
        let mut report = Report::empty(req, &source.arn);
        match req.action {
            Action::Peek => {
                report.action = "peek";
                self.peek(req, &source, limits, &mut report).await?;
                return Ok(self.finish(report, started));
            }
            Action::Status => {
                report.action = "status";
                report.tasks = self.queues.list_moves(&source.arn).await?;
                return Ok(self.finish(report, started));
            }
            Action::Cancel => {
                report.action = "cancel";
                let handle = req.task_handle.as_deref().unwrap_or_default();
                report.moved = self.queues.cancel_move(handle).await?.max(0) as u64;
                report.tasks = self.queues.list_moves(&source.arn).await?;
                return Ok(self.finish(report, started));
            }
            Action::Redrive => {}
        }
        let target = self.destination(req, &source).await?;
        report.destination = Some(target.describe());
        if req.native {
            // Validated: native needs a queue. SQS's own task sends a shared DLQ's
            // messages back to their sources itself.
            let dest = match &target {
                Target::Queue(dest) => Some(dest),
                _ => None,
            };
            report.action = "native";
            report.task = Some(self.start_native(req, &source, dest).await?);
            return Ok(self.finish(report, started));
        }
        if req.dry_run {
            report.action = "dry_run";
        }
        let hold_until_ms = self.copy_hold(req)?;
        let tally = self
            .move_messages(req, &source, &target, (limits, hold_until_ms))
            .await;
        self.report_tally((req, hold_until_ms), &source, tally, &mut report)
            .await;
        Ok(self.finish(report, started))
    }

    /// SQS's own move task (`StartMessageMoveTask`), as `ListMessageMoveTasks` shows it.
    async fn start_native(
        &self,
        req: &Request,
        source: &QueueInfo,
        dest: Option<&QueueInfo>,
    ) -> Result<MoveTask> {
        let explicit = !matches!(req.destination, Destination::SourceOfDlq);
        let rate = req.rate.map(|r| r as i32);
        let destination = dest.filter(|_| explicit).map(|d| d.arn.as_str());
        let handle = self
            .queues
            .start_move(&source.arn, destination, rate)
            .await?;
        let tasks = self
            .queues
            .list_moves(&source.arn)
            .await
            .unwrap_or_default();
        Ok(tasks
            .into_iter()
            .find(|t| t.task_handle.as_deref() == Some(handle.as_str()))
            .unwrap_or_else(|| MoveTask {
                task_handle: Some(handle),
                status: "RUNNING".into(),
                source_arn: source.arn.clone(),
                destination_arn: destination.map(str::to_owned),
                max_messages_per_second: rate,
                messages_moved: 0,
                messages_to_move: None,
                failure_reason: None,
                started_ms: 0,
            }))
    }

    /// Copy mode: when the job's copied originals become visible again (epoch ms), set
    /// by its first run. A continuation invoked after that would copy them twice.
    fn copy_hold(&self, req: &Request) -> Result<Option<i64>> {
        if req.mode != Mode::Copy || req.dry_run {
            return Ok(None);
        }
        let now = crate::clock::epoch_ms();
        match req.carried.hold_until_ms {
            Some(until) if until <= now => Err(Error::InvalidEvent(format!(
                "continuation: this copy job's hold ended {} s ago: the originals its earlier runs copied are visible again and would be copied twice; start a new job (a longer hold_seconds keeps them hidden longer)",
                (now - until) / 1000
            ))),
            Some(until) => Ok(Some(until)),
            None => Ok(Some(now + req.hold_seconds as i64 * 1000)),
        }
    }

    /// Move the messages with `req.concurrency` workers; hand back everything held back
    /// (filtered, over the quota, unsendable, dry run) now rather than when its visibility
    /// timeout ends. Copy mode: the originals copied stay hidden until the job's hold
    /// ends when the run hands back a continuation, and are handed back now when not.
    async fn move_messages(
        &self,
        req: &Request,
        source: &QueueInfo,
        target: &Target,
        (limits, hold_until_ms): (Limits, Option<i64>),
    ) -> Tally {
        let tally = Mutex::new(Tally {
            absorbed_seen: self.queues.absorbed_throttles(),
            ..Tally::default()
        });
        let rate = Mutex::new(Aimd::new(req.rate.unwrap_or(DEFAULT_RATE)));
        let clock = Instant::now();
        let workers = (0..req.concurrency).map(|_| {
            let sh = Shared {
                limits,
                tally: &tally,
                rate: &rate,
                clock,
            };
            self.worker(req, source, target, sh)
        });
        futures::future::join_all(workers).await;
        let mut t = tally.into_inner().unwrap_or_else(|p| p.into_inner());
        t.absorb(self.queues.absorbed_throttles());
        let mut handed_back = std::mem::take(&mut t.held);
        let copies = std::mem::take(&mut t.copies);
        match hold_until_ms {
            Some(until) if t.stopped() == Stopped::Deadline => {
                t.duplicates += self.hold(source, &copies, until, clock).await;
            }
            _ => handed_back.extend(copies),
        }
        for chunk in handed_back.chunks(BATCH as usize) {
            if let Err(e) = self.queues.change_visibility(source, chunk, 0).await {
                tracing::warn!(error = %e, "could not release held messages; they reappear after their visibility timeout");
            }
        }
        t
    }

    /// Keep copied originals hidden until `until` (epoch ms), within SQS's 12 hours from
    /// their receipt (this run started at `run_start`); the number not kept hidden.
    async fn hold(
        &self,
        source: &QueueInfo,
        copies: &[(String, String)],
        until: i64,
        run_start: Instant,
    ) -> u64 {
        let wanted = (until - crate::clock::epoch_ms()).max(1000) as u64 / 1000;
        let room = 43_200u64.saturating_sub(run_start.elapsed().as_secs() + 60);
        let seconds = wanted.min(room).max(1) as i32;
        let mut not_held = 0u64;
        for chunk in copies.chunks(BATCH as usize) {
            match self.queues.change_visibility(source, chunk, seconds).await {
                Ok(failures) => not_held += failures.len() as u64,
                Err(e) => {
                    tracing::warn!(error = %e, "could not keep copied originals hidden: a continuation may copy them again");
                    not_held += chunk.len() as u64;
                }
            }
        }
        not_held
    }

    /// The tally into the report: counts, why the run stopped, what is left, and the
    /// continuation when the deadline stopped it.
    async fn report_tally(
        &self,
        (req, hold_until_ms): (&Request, Option<i64>),
        source: &QueueInfo,
        t: Tally,
        report: &mut Report,
    ) {
        let done = t.fill(req, report);
        report.remaining = self.queues.depth(source).await.ok();
        let deadline = report.stopped == Some(Stopped::Deadline);
        if req.mode == Mode::Copy && (deadline || req.carried.run > 0) {
            // Earlier runs' originals stay hidden until the hold ends, this run's too
            // when it continues.
            report.hold_until_ms = hold_until_ms;
        }
        if deadline && !req.dry_run {
            report.continuation = Some(req.continuation(done, hold_until_ms));
        }
    }
}

impl Report {
    /// Nothing done yet, for `req` on the queue `source_arn`.
    pub fn empty(req: &Request, source_arn: &str) -> Report {
        Report {
            component: COMPONENT,
            action: "redrive",
            mode: req.mode,
            source: source_arn.to_owned(),
            destination: None,
            destinations: BTreeMap::new(),
            dry_run: req.dry_run,
            moved: 0,
            copied: 0,
            hold_until_ms: None,
            would_move: 0,
            filtered: 0,
            failed: 0,
            remaining: None,
            duplicates: 0,
            throttled: 0,
            throttled_absorbed: 0,
            duration_ms: 0,
            rate: 0.0,
            stopped: None,
            failures: Vec::new(),
            sample: Vec::new(),
            messages: Vec::new(),
            cursor: None,
            note: None,
            continuation: None,
            totals: Totals {
                runs: req.carried.run.saturating_add(1),
                moved: req.carried.moved,
                duplicates: req.carried.duplicates,
                copied: req.carried.copied,
            },
            task: None,
            tasks: Vec::new(),
        }
    }
}

impl<Q: Queues, L: EventInvoker, T: Republish, O: Objects> Redrive<'_, Q, L, T, O> {
    pub(super) fn finish(&self, mut report: Report, started: Instant) -> Report {
        let elapsed = started.elapsed();
        report.duration_ms = elapsed.as_millis() as u64;
        report.rate = if elapsed.as_secs_f64() > 0.0 {
            ((report.moved + report.copied) as f64 / elapsed.as_secs_f64() * 10.0).round() / 10.0
        } else {
            0.0
        };
        report.totals.moved = report.totals.moved.saturating_add(report.moved);
        report.totals.duplicates = report.totals.duplicates.saturating_add(report.duplicates);
        report.totals.copied = report.totals.copied.saturating_add(report.copied);
        report
    }

    pub(super) async fn destination(&self, req: &Request, source: &QueueInfo) -> Result<Target> {
        match &req.destination {
            Destination::Lambda {
                function,
                qualifier,
            } => self.lambda_target(function, qualifier.as_deref(), source),
            Destination::Topic(topic) => {
                if let Some(t) = topic
                    && !self.allow.allows(t)
                {
                    return Err(not_allowed("destination", t));
                }
                Ok(Target::Topic(topic.clone()))
            }
            Destination::RuleTarget => Ok(Target::RuleTargets),
            Destination::Bus(bus) => {
                if let Some(b) = bus {
                    let arn = self.bus_arn(b, source);
                    if !self.allow.allows(&arn) {
                        return Err(not_allowed("destination", &arn));
                    }
                }
                Ok(Target::Bus(bus.clone()))
            }
            Destination::Queue(reference) => {
                self.allowed_before_asking("destination", reference)?;
                let q = self
                    .queues
                    .resolve(reference)
                    .await
                    .map_err(|e| in_field("destination", e))?;
                if !self.allow.allows(&q.arn) {
                    return Err(not_allowed("destination", &q.arn));
                }
                if q.arn == source.arn {
                    return Err(Error::InvalidEvent(
                        "destination: is the source queue itself".into(),
                    ));
                }
                Ok(Target::Queue(q))
            }
            Destination::SourceOfDlq => self.source_of_dlq(source).await,
        }
    }

    /// A function destination, checked against the allow-list as the ARN it names (in the
    /// source's account and region when given by name).
    pub(super) fn lambda_target(
        &self,
        function: &str,
        qualifier: Option<&str>,
        source: &QueueInfo,
    ) -> Result<Target> {
        let arn = if function.starts_with("arn:") {
            function.to_owned()
        } else {
            let (partition, region, account) = arn_prefix(&source.arn)
                .ok_or_else(|| Error::InvalidEvent("source: not an ARN".into()))?;
            format!("arn:{partition}:lambda:{region}:{account}:function:{function}")
        };
        let checked = match qualifier {
            Some(q) => format!("{arn}:{q}"),
            None => arn,
        };
        if !self.allow.allows(&checked) {
            return Err(not_allowed("destination", &checked));
        }
        Ok(Target::Lambda {
            function: function.to_owned(),
            qualifier: qualifier.map(str::to_owned),
        })
    }

    /// No destination given: the queue whose RedrivePolicy names the DLQ, or each
    /// message's own source when several do.
    async fn source_of_dlq(&self, source: &QueueInfo) -> Result<Target> {
        let urls = self.queues.dead_letter_sources(source).await?;
        match urls.as_slice() {
            [one] => {
                self.allowed_before_asking("destination", one)?;
                let q = self.queues.resolve(one).await?;
                if !self.allow.allows(&q.arn) {
                    return Err(not_allowed("destination", &q.arn));
                }
                if q.arn == source.arn {
                    // Moving its messages back into it would move them again and
                    // again, until the deadline: refused before anything moves.
                    return Err(own_dlq(source));
                }
                Ok(Target::Queue(q))
            }
            [] => Err(Error::InvalidEvent(format!(
                "destination: no queue names {} as its dead-letter queue; give a destination (for an SNS subscription's DLQ sns, for an EventBridge rule target's target)",
                source.arn
            ))),
            many => self.sources(source, many).await,
        }
    }

    /// The queues of a shared DLQ, each message to go back where it came from. A source
    /// outside the allow-list is not asked about: its messages stay, reported.
    async fn sources(&self, dlq: &QueueInfo, urls: &[String]) -> Result<Target> {
        let mut queues = Vec::new();
        for url in urls {
            if self.allowed_before_asking("destination", url).is_err() {
                continue;
            }
            let q = self.queues.resolve(url).await?;
            if q.arn == dlq.arn {
                return Err(own_dlq(dlq));
            }
            if self.allow.allows(&q.arn) {
                queues.push(q);
            }
        }
        if queues.is_empty() {
            return Err(not_allowed("destination", &urls.join(", ")));
        }
        Ok(Target::Sources(queues))
    }

    /// Send each message back to the queue it was dead-lettered from; element i of the
    /// answer says whether msgs[i] was accepted. Messages of one destination go together
    /// (FIFO order holds per destination, as in [`Self::send_to_queue`]).
    async fn send_by_source(
        &self,
        req: &Request,
        source: &QueueInfo,
        queues: &[QueueInfo],
        msgs: &[Received],
        sh: Shared<'_>,
    ) -> Vec<bool> {
        let mut ok = vec![false; msgs.len()];
        let mut by_dest: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let dest = m
                .dead_letter_source
                .as_deref()
                .and_then(|arn| queues.iter().position(|q| q.arn == arn));
            match dest {
                Some(d) => match by_dest.iter_mut().find(|(q, _)| *q == d) {
                    Some((_, v)) => v.push(i),
                    None => by_dest.push((d, vec![i])),
                },
                None => {
                    let why = match &m.dead_letter_source {
                        None => "SQS recorded no source queue on it (DeadLetterQueueSourceArn): it stays; give a destination".to_owned(),
                        Some(arn) => format!("its source queue {arn} is not one whose RedrivePolicy names this DLQ now (deleted, changed, or outside the allow-list): it stays; give a destination"),
                    };
                    lock(sh.tally).fail(&m.message_id, "SourceUnknown", &why);
                }
            }
        }
        for (d, idx) in by_dest {
            let dest = &queues[d];
            let part: Vec<Received> = idx.iter().map(|&i| msgs[i].clone()).collect();
            let sent = self.send_to_queue(req, (source, dest), &part, sh).await;
            scatter((&mut ok, &idx), &sent, Some((sh.tally, dest.arn.clone())));
        }
        ok
    }

    async fn worker(&self, req: &Request, source: &QueueInfo, target: &Target, sh: Shared<'_>) {
        let Shared { limits, tally, .. } = sh;
        let mut receive_errors = 0u32;
        loop {
            sh.absorbed(self.queues.absorbed_throttles());
            let now = Instant::now();
            if now >= limits.stop_receiving {
                lock(tally).stopped_deadline = true;
                return;
            }
            if req
                .max_messages
                .is_some_and(|max| lock(tally).claimed >= max)
            {
                lock(tally).stopped_max = true;
                return;
            }
            // Hidden until shortly after the function would be killed, and handed
            // back explicitly at the end of the run.
            let visibility =
                (limits.hard.saturating_duration_since(now).as_secs() + 5).clamp(5, 43_200) as i32;
            let got = match self.queues.receive(source, BATCH, 1, visibility).await {
                Ok(got) => {
                    receive_errors = 0;
                    got
                }
                Err(e) if retryable(&e) && receive_errors < 5 => {
                    receive_errors += 1;
                    if e.code().is_some_and(is_throttle) {
                        lock(tally).throttled += 1;
                    }
                    tokio::time::sleep(backoff(receive_errors)).await;
                    continue;
                }
                Err(e) => {
                    lock(tally).receive_error = Some(e.to_string());
                    return;
                }
            };
            if got.is_empty() {
                return;
            }
            let chosen = choose(req, got, &mut lock(tally));
            if chosen.is_empty() {
                continue;
            }
            let sent = self.send(req, source, target, &chosen, sh).await;
            self.settle(req, source, (&chosen, &sent), tally).await;
        }
    }

    /// Send `chosen` to the target; element i of the answer says whether chosen[i] went.
    pub(super) async fn send(
        &self,
        req: &Request,
        source: &QueueInfo,
        target: &Target,
        chosen: &[Received],
        sh: Shared<'_>,
    ) -> Vec<bool> {
        match target {
            Target::Queue(dest) => self.send_to_queue(req, (source, dest), chosen, sh).await,
            Target::Sources(queues) => self.send_by_source(req, source, queues, chosen, sh).await,
            Target::Lambda {
                function,
                qualifier,
            } => {
                self.send_to_lambda(function, qualifier.as_deref(), chosen, sh)
                    .await
            }
            Target::Topic(topic) => {
                self.send_to_topics(req, source, topic.as_deref(), chosen, sh)
                    .await
            }
            Target::RuleTargets => self.send_to_rule_targets(req, source, chosen, sh).await,
            Target::Bus(bus) => self.send_to_buses(source, bus.as_deref(), chosen, sh).await,
            Target::RecordFunctions => self.send_to_record_functions(chosen, sh).await,
        }
    }

    /// After a send: only what the destination accepted leaves the DLQ (copy mode: is
    /// kept in flight); the rest is held back, to be handed back at the end of the run.
    async fn settle(
        &self,
        req: &Request,
        source: &QueueInfo,
        (chosen, sent): (&[Received], &[bool]),
        tally: &Mutex<Tally>,
    ) {
        let mut accepted = Vec::new();
        {
            let mut t = lock(tally);
            for (m, ok) in chosen.iter().zip(sent) {
                if *ok {
                    accepted.push(m);
                } else {
                    t.claimed -= 1;
                    t.held
                        .push((m.message_id.clone(), m.receipt_handle.clone()));
                }
            }
            if req.mode == Mode::Copy {
                t.moved += accepted.len() as u64;
                t.copies.extend(
                    accepted
                        .iter()
                        .map(|m| (m.message_id.clone(), m.receipt_handle.clone())),
                );
                return;
            }
        }
        self.delete(source, &accepted, tally).await;
    }

    async fn pace(&self, n: usize, rate: &Mutex<Aimd>, clock: Instant) {
        let wait = lock(rate).reserve(n, clock.elapsed().as_secs_f64());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Send `msgs` to a queue; element i of the answer says whether msgs[i] was accepted.
    async fn send_to_queue(
        &self,
        req: &Request,
        (source, dest): (&QueueInfo, &QueueInfo),
        msgs: &[Received],
        sh: Shared<'_>,
    ) -> Vec<bool> {
        let entries: Vec<Outgoing> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| {
                message::outgoing(
                    m,
                    i,
                    &source.arn,
                    dest.fifo,
                    req.message_group_id.as_deref(),
                    req.provenance(),
                )
            })
            .collect();
        let ids: Vec<&str> = msgs.iter().map(|m| m.message_id.as_str()).collect();
        self.send_in_rounds((Sink::Queue(dest), dest.fifo), &entries, &ids, sh)
            .await
    }

    /// Send `entries` (of the messages `ids`) to `sink`; element i of the answer says
    /// whether entries[i] was accepted. FIFO: in rounds, each group's next message only
    /// after its previous one was accepted; a group whose message failed sends nothing
    /// more in this batch, so order within a group holds.
    async fn send_in_rounds(
        &self,
        (sink, fifo): (Sink<'_>, bool),
        entries: &[Outgoing],
        ids: &[&str],
        sh: Shared<'_>,
    ) -> Vec<bool> {
        let mut ok = vec![false; entries.len()];
        let rounds = if fifo {
            let groups: Vec<Option<String>> = entries.iter().map(|e| e.group_id.clone()).collect();
            message::fifo_rounds(&groups)
        } else {
            vec![(0..entries.len()).collect()]
        };
        let mut blocked: Vec<Option<String>> = Vec::new();
        for round in rounds {
            let pending: Vec<usize> = round
                .into_iter()
                .filter(|&i| !blocked.contains(&entries[i].group_id))
                .collect();
            let failed = self.send_round(sink, entries, pending, &mut ok, sh).await;
            let mut t = lock(sh.tally);
            for (i, code, text) in failed {
                if !ok[i] {
                    t.fail(ids[i], &code, &text);
                    if fifo {
                        blocked.push(entries[i].group_id.clone());
                    }
                }
            }
        }
        ok
    }

    /// Publish an SNS subscription's dead letters again, each to `fixed` or to the topic
    /// its envelope names; element i of the answer says whether msgs[i] was accepted. A
    /// message naming no topic (raw delivery) or one outside the allow-list stays,
    /// reported. Per topic as [`Self::send_to_queue`] per queue (FIFO order per group).
    async fn send_to_topics(
        &self,
        req: &Request,
        source: &QueueInfo,
        fixed: Option<&str>,
        msgs: &[Received],
        sh: Shared<'_>,
    ) -> Vec<bool> {
        let mut ok = vec![false; msgs.len()];
        let mut by_topic: BTreeMap<String, Vec<(usize, Outgoing)>> = BTreeMap::new();
        for (i, m) in msgs.iter().enumerate() {
            let (named, mut o) =
                message::sns_outgoing(m, i, &source.arn, req.provenance(), &req.sns_attributes);
            let Some(topic) = fixed.map(str::to_owned).or(named) else {
                lock(sh.tally).fail(&m.message_id, "SourceUnknown", "no SNS envelope names its topic (raw message delivery): it stays; give destination sns:<topic ARN>");
                continue;
            };
            if !self.allow.allows(&topic) {
                let why = format!(
                    "its topic {topic} is outside the allow-list (ROLLGATE_REDRIVE_ALLOW): it stays"
                );
                lock(sh.tally).fail(&m.message_id, "NotAllowed", &why);
                continue;
            }
            message::sns_fifo_ids(
                &mut o,
                m,
                (&source.arn, &topic),
                req.message_group_id.as_deref(),
            );
            by_topic.entry(topic).or_default().push((i, o));
        }
        for (topic, part) in by_topic {
            let (idx, entries): (Vec<usize>, Vec<Outgoing>) = part.into_iter().unzip();
            let ids: Vec<&str> = idx.iter().map(|&i| msgs[i].message_id.as_str()).collect();
            let fifo = topic.ends_with(".fifo");
            let sent = self
                .send_in_rounds((Sink::Topic(&topic), fifo), &entries, &ids, sh)
                .await;
            // Counted per topic when each message names its own (a fixed one is the
            // report's `destination`).
            let counted = fixed.is_none().then_some((sh.tally, topic));
            scatter((&mut ok, &idx), &sent, counted);
        }
        ok
    }

    /// A bus name or ARN as an ARN, in the source queue's account and region.
    fn bus_arn(&self, bus: &str, source: &QueueInfo) -> String {
        if bus.starts_with("arn:") {
            return bus.to_owned();
        }
        let (partition, region, account) = arn_prefix(&source.arn).unwrap_or_default();
        format!("arn:{partition}:events:{region}:{account}:event-bus/{bus}")
    }

    /// An EventBridge rule's dead letters put on a bus again (`PutEvents`): `fixed`, or
    /// the bus of each message's rule. A message that is not an event that can be put
    /// again (an AWS service's, not JSON), names no rule, or whose bus is outside the
    /// allow-list stays, reported. Element i of the answer says whether msgs[i] went.
    async fn send_to_buses(
        &self,
        source: &QueueInfo,
        fixed: Option<&str>,
        msgs: &[Received],
        sh: Shared<'_>,
    ) -> Vec<bool> {
        let mut ok = vec![false; msgs.len()];
        let mut by_bus: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, m) in msgs.iter().enumerate() {
            let bus = fixed
                .map(|b| self.bus_arn(b, source))
                .or_else(|| message::rule_bus(m));
            let refused = match (message::bus_event(&m.body), bus) {
                (Err(why), _) => ("NotAnEvent", why),
                (Ok(_), None) => (
                    "SourceUnknown",
                    "no RULE_ARN attribute names its rule's bus; give destination events:<bus>"
                        .to_owned(),
                ),
                (Ok(_), Some(bus)) if !self.allow.allows(&bus) => (
                    "NotAllowed",
                    format!(
                        "its bus {bus} is outside the allow-list (ROLLGATE_REDRIVE_ALLOW): it stays"
                    ),
                ),
                (Ok(_), Some(bus)) => {
                    by_bus.entry(bus).or_default().push(i);
                    continue;
                }
            };
            lock(sh.tally).fail(&m.message_id, refused.0, &refused.1);
        }
        for (bus, idx) in by_bus {
            let entries: Vec<Outgoing> = idx
                .iter()
                .enumerate()
                .map(|(k, &i)| message::as_event_entry(&msgs[i], k))
                .collect();
            let ids: Vec<&str> = idx.iter().map(|&i| msgs[i].message_id.as_str()).collect();
            let sent = self
                .send_in_rounds((Sink::Bus(&bus), false), &entries, &ids, sh)
                .await;
            let counted = fixed.is_none().then_some((sh.tally, bus));
            scatter((&mut ok, &idx), &sent, counted);
        }
        ok
    }

    /// An EventBridge rule's dead letters, each to the target EventBridge could not deliver
    /// it to (`TARGET_ARN`), as the event itself with EventBridge's error attributes taken
    /// off: invoked asynchronously (Lambda), sent (SQS) or published (SNS). A message
    /// without the attribute, or whose target is of another kind or outside the
    /// allow-list, stays, reported. Element i of the answer says whether msgs[i] went.
    async fn send_to_rule_targets(
        &self,
        req: &Request,
        source: &QueueInfo,
        msgs: &[Received],
        sh: Shared<'_>,
    ) -> Vec<bool> {
        let mut ok = vec![false; msgs.len()];
        let mut by_target: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, m) in msgs.iter().enumerate() {
            let refused = match message::rule_target(m) {
                None => ("SourceUnknown", "no TARGET_ARN attribute: not an EventBridge rule's dead letter; give a destination".to_owned()),
                Some(arn) if message::target_kind(&arn).is_none() => ("UnsupportedTarget", format!("{arn}: dlq-redrive delivers to Lambda functions, SQS queues and SNS topics; it stays")),
                Some(arn) if !self.allow.allows(&arn) => ("NotAllowed", format!("its target {arn} is outside the allow-list (ROLLGATE_REDRIVE_ALLOW): it stays")),
                Some(arn) => {
                    by_target.entry(arn).or_default().push(i);
                    continue;
                }
            };
            lock(sh.tally).fail(&m.message_id, refused.0, &refused.1);
        }
        for (arn, idx) in by_target {
            let part: Vec<Received> = idx
                .iter()
                .map(|&i| message::without_rule_attributes(&msgs[i]))
                .collect();
            let sent = self.send_to_one_target(req, source, &arn, &part, sh).await;
            scatter((&mut ok, &idx), &sent, Some((sh.tally, arn)));
        }
        ok
    }

    async fn send_to_one_target(
        &self,
        req: &Request,
        source: &QueueInfo,
        arn: &str,
        part: &[Received],
        sh: Shared<'_>,
    ) -> Vec<bool> {
        match message::target_kind(arn).unwrap_or_default() {
            "lambda" => {
                let (function, qualifier) = message::split_function_arn(arn);
                self.send_to_lambda(function, qualifier, part, sh).await
            }
            "sqs" => match self.queues.resolve(arn).await {
                Ok(dest) if dest.arn == source.arn => {
                    let mut t = lock(sh.tally);
                    for m in part {
                        t.fail(
                            &m.message_id,
                            "Loop",
                            "its target is this DLQ itself: it stays",
                        );
                    }
                    vec![false; part.len()]
                }
                Ok(dest) => self.send_to_queue(req, (source, &dest), part, sh).await,
                Err(e) => {
                    let mut t = lock(sh.tally);
                    for m in part {
                        t.fail(&m.message_id, &code_of(&e), &e.to_string());
                    }
                    vec![false; part.len()]
                }
            },
            _ => self.send_to_topics(req, source, Some(arn), part, sh).await,
        }
    }

    /// Send the `pending` entries, retrying what failed transiently (paced, with backoff)
    /// until the attempts or the time run out; marks what was accepted in `ok` and returns
    /// `(entry, code, message)` of what was not.
    async fn send_round(
        &self,
        sink: Sink<'_>,
        entries: &[Outgoing],
        mut pending: Vec<usize>,
        ok: &mut [bool],
        sh: Shared<'_>,
    ) -> Vec<(usize, String, String)> {
        let Shared {
            limits,
            rate,
            clock,
            ..
        } = sh;
        let mut attempt = 0u32;
        let mut last_error: Vec<(usize, String, String)> = Vec::new();
        let mut permanent: Vec<(usize, String, String)> = Vec::new();
        while !pending.is_empty() && attempt < SEND_ATTEMPTS && Instant::now() < limits.hard {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            attempt += 1;
            self.pace(pending.len(), rate, clock).await;
            let batch: Vec<Outgoing> = pending.iter().map(|&i| entries[i].clone()).collect();
            let answer: Result<Vec<EntryFailure>> = match sink {
                Sink::Queue(dest) => self.queues.send_batch(dest, &batch).await,
                Sink::Topic(topic) => self.republish.publish_batch(topic, &batch).await,
                Sink::Bus(bus) => self.republish.put_events(bus, &batch).await,
            };
            match answer {
                Ok(failures) => {
                    let throttled = failures.iter().any(|f| is_throttle(&f.code));
                    let mut next = Vec::new();
                    last_error.clear();
                    for &i in &pending {
                        match failures.iter().find(|f| f.id == entries[i].id) {
                            None => ok[i] = true,
                            Some(f) if f.sender_fault && !is_throttle(&f.code) => {
                                permanent.push((i, f.code.clone(), f.message.clone()));
                            }
                            Some(f) => {
                                next.push(i);
                                last_error.push((i, f.code.clone(), f.message.clone()));
                            }
                        }
                    }
                    if throttled {
                        sh.throttled();
                    } else {
                        lock(rate).accepted();
                    }
                    pending = next;
                }
                Err(e) => {
                    last_error = pending
                        .iter()
                        .map(|&i| (i, code_of(&e), e.to_string()))
                        .collect();
                    if e.code().is_some_and(is_throttle) {
                        sh.throttled();
                    }
                    if !retryable(&e) {
                        break;
                    }
                }
            }
        }
        permanent.extend(last_error);
        permanent
    }

    pub(super) async fn send_to_lambda(
        &self,
        function: &str,
        qualifier: Option<&str>,
        msgs: &[Received],
        sh: Shared<'_>,
    ) -> Vec<bool> {
        futures::future::join_all(
            msgs.iter()
                .map(|m| self.invoke_one(function, qualifier, m, sh)),
        )
        .await
    }

    async fn invoke_one(
        &self,
        function: &str,
        qualifier: Option<&str>,
        m: &Received,
        sh: Shared<'_>,
    ) -> bool {
        let Shared {
            limits,
            tally,
            rate,
            clock,
        } = sh;
        let record = message::unwrap_lambda(&m.body);
        let mut attempt = 0u32;
        loop {
            self.pace(1, rate, clock).await;
            let result = self
                .lambda
                .invoke_event(function, qualifier, record.payload().to_vec())
                .await;
            attempt += 1;
            match result {
                Ok(()) => {
                    lock(rate).accepted();
                    return true;
                }
                Err(e) => {
                    if e.code().is_some_and(is_throttle) {
                        sh.throttled();
                    }
                    if !retryable(&e) || attempt >= SEND_ATTEMPTS || Instant::now() >= limits.hard {
                        lock(tally).fail(&m.message_id, &code_of(&e), &e.to_string());
                        return false;
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
    }

    async fn delete(&self, source: &QueueInfo, accepted: &[&Received], tally: &Mutex<Tally>) {
        if accepted.is_empty() {
            return;
        }
        let mut pending: Vec<(String, String)> = accepted
            .iter()
            .enumerate()
            .map(|(i, m)| (i.to_string(), m.receipt_handle.clone()))
            .collect();
        let total = pending.len() as u64;
        for attempt in 0..DELETE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            match self.queues.delete_batch(source, &pending).await {
                Ok(failures) => {
                    pending.retain(|(id, _)| failures.iter().any(|f| &f.id == id));
                }
                Err(e) if retryable(&e) => continue,
                Err(_) => break,
            }
            if pending.is_empty() {
                break;
            }
        }
        let mut t = lock(tally);
        t.moved += total;
        // Copied but still in the DLQ: it will be redriven again.
        t.duplicates += pending.len() as u64;
    }
}

/// One destination's answers (`sent[k]` for the message `idx[k]` of the batch) into the
/// batch's `ok`, counted under `destination` in the report's `destinations` when given.
pub(super) fn scatter(
    (ok, idx): (&mut [bool], &[usize]),
    sent: &[bool],
    counted: Option<(&Mutex<Tally>, String)>,
) {
    for (&i, &s) in idx.iter().zip(sent) {
        ok[i] = s;
    }
    if let Some((tally, destination)) = counted {
        let n = sent.iter().filter(|s| **s).count() as u64;
        *lock(tally).per_destination.entry(destination).or_default() += n;
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Publish the run's summary on SNS and its EMF metrics. Never fails the run.
/// Kept back from Lambda's deadline for releasing held messages and reporting.
pub const REPORT_MARGIN: Duration = Duration::from_secs(3);
/// Used when the runtime gives no usable deadline (local runtimes).
pub const FALLBACK_RUN: Duration = Duration::from_secs(900);

/// One invocation of dlq-redrive: a bad request fails, naming the field, before any AWS
/// call; what the request names but may not touch is refused as an invalid request; the
/// report is logged, announced and returned.
pub async fn handle_request<Q, L, T, O, S>(
    engine: &Redrive<'_, Q, L, T, O>,
    sink: &S,
    payload: &Value,
    deadline_epoch_ms: u64,
) -> std::result::Result<Value, failure::Failure>
where
    Q: Queues,
    L: EventInvoker,
    T: Republish,
    O: Objects,
    S: super::ports::SummarySink,
{
    let request = Request::parse(payload)?;
    let hard = crate::hook::hard_deadline(deadline_epoch_ms, REPORT_MARGIN, FALLBACK_RUN);
    let limits = Limits::new(
        Instant::now(),
        hard,
        request.max_run_seconds.map(Duration::from_secs),
    );
    let report = engine.run(&request, limits).await.map_err(|e| match e {
        Error::InvalidEvent(message) => failure::Failure::new(Class::InvalidRequest, message),
        e => e.into(),
    })?;
    tracing::info!(
        report = %crate::limits::fit_json(
            &serde_json::to_value(report.log_view()).unwrap_or_default(),
            crate::limits::LOG_RECORD_MAX_BYTES,
            false,
        ),
        "redrive finished"
    );
    // A peek changes nothing and its page holds message bodies: it is not announced.
    if request.action != Action::Peek {
        announce(sink, &report).await;
    }
    Ok(serde_json::to_value(report).unwrap_or_default())
}

pub async fn announce<S: super::ports::SummarySink>(sink: &S, report: &Report) {
    let outcome = report
        .stopped
        .map(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .unwrap_or_else(|| report.action.to_owned());
    crate::metrics::Emf::rollgate()
        .dimension("Component", COMPONENT)
        .dimension("Outcome", &outcome)
        .metric("RedriveMoved", report.moved as f64, "Count")
        .metric("RedriveCopied", report.copied as f64, "Count")
        .metric("RedriveFailed", report.failed as f64, "Count")
        .metric("RedriveFiltered", report.filtered as f64, "Count")
        .metric("RedriveDuplicates", report.duplicates as f64, "Count")
        .metric("RedriveDuration", report.duration_ms as f64, "Milliseconds")
        .property("Source", report.source.clone())
        .property(
            "Destination",
            report.destination.clone().unwrap_or_default(),
        )
        .emit();
    let subject = format!(
        "rollgate {COMPONENT}: {} moved={} copied={} failed={} {}",
        report.action, report.moved, report.copied, report.failed, outcome
    );
    let body = serde_json::to_string_pretty(report).unwrap_or_default();
    let dest = report.destination.clone().unwrap_or_default();
    if let Err(e) = sink
        .summary(
            &subject,
            &body,
            &[
                ("component", COMPONENT),
                ("verdict", outcome.as_str()),
                ("source", report.source.as_str()),
                ("destination", dest.as_str()),
            ],
        )
        .await
    {
        tracing::warn!(error = %e, "redrive summary not published");
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn the_logged_report_holds_no_message_body() {
        let body = r#"{"card":"4111-1111-1111-1111"}"#;
        let req =
            Request::parse(&serde_json::json!({"source": "orders-dlq", "dry_run": true})).unwrap();
        let mut report = Report::empty(&req, "arn:aws:sqs:us-east-1:123456789012:orders-dlq");
        report.sample.push(Sample {
            message_id: "m-1".into(),
            group_id: None,
            body: body.into(),
        });
        let logged = serde_json::to_string(&report.log_view()).unwrap();
        assert!(!logged.contains("4111"), "{logged}");
        assert!(
            logged.contains("m-1") && logged.contains("(30 bytes, not logged)"),
            "{logged}"
        );
        assert_eq!(report.sample[0].body, body);
    }
}
