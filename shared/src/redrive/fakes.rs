//! In-memory implementations of the redrive ports, for Rust tests of the engine
//! (`cfg(test)`, or the crate's `fakes` feature). The queues keep SQS's rules that the
//! engine relies on: a received message is hidden until it is deleted or released, a
//! delete needs the receipt handle of the latest receive, a FIFO queue hands out one
//! message of a group at a time and drops a deduplication id it has seen. Faults can be
//! scripted: a whole call failing, some entries of a batch failing, deletes failing.

use super::ports::{
    AttributeValue, EntryFailure, EventInvoker, MoveTask, Outgoing, QueueInfo, Queues, Received,
    Republish, SummarySink,
};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A message in a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: String,
    pub body: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub group_id: Option<String>,
    pub receive_count: u32,
    /// The receipt handle while it is in flight.
    pub in_flight: Option<String>,
    /// The queue it was dead-lettered from (SQS's `DeadLetterQueueSourceArn`).
    pub source: Option<String>,
}

#[derive(Debug, Default)]
pub struct MemQueue {
    pub fifo: bool,
    /// The queues whose dead letters land here (their redrive policies name this queue).
    pub dead_letters_of: Vec<String>,
    pub messages: Vec<Stored>,
    pub seen_dedup: BTreeSet<String>,
}

/// A scripted fault of the next `SendMessageBatch`.
#[derive(Debug)]
pub enum SendFault {
    /// The whole call fails.
    Call(Error),
    /// The first `count` entries of the batch fail with `code`.
    Entries {
        count: usize,
        code: &'static str,
        sender_fault: bool,
    },
}

#[derive(Debug, Default)]
pub struct QueuesState {
    pub queues: BTreeMap<String, MemQueue>,
    pub send_faults: VecDeque<SendFault>,
    /// How many of the next `DeleteMessageBatch` calls fail every entry.
    pub failing_deletes: usize,
    /// Every `SendMessageBatch`: queue and entry count.
    pub sends: Vec<(String, usize)>,
    /// Every reference `resolve` was asked about (what IAM would see asked).
    pub resolved: Vec<String>,
    /// Throttled attempts an SDK would absorb per `SendMessageBatch`, and their running
    /// count ([`Queues::absorbed_throttles`]).
    pub absorbed_per_send: u64,
    pub absorbed: u64,
    /// Every `StartMessageMoveTask`: source and destination ARNs.
    pub moves: Vec<(String, Option<String>)>,
    /// Messages kept hidden by `ChangeMessageVisibilityBatch`, with the seconds asked.
    pub holds: Vec<(String, i32)>,
    /// How many of the next calls keeping messages hidden fail whole.
    pub failing_holds: usize,
    next: u64,
}

impl QueuesState {
    fn next(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{}", self.next)
    }
}

#[derive(Debug, Default)]
pub struct MemQueues(Mutex<QueuesState>);

pub fn url(name: &str) -> String {
    format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}")
}

pub fn arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

fn name_of(reference: &str) -> &str {
    reference.rsplit(['/', ':']).next().unwrap_or(reference)
}

impl MemQueues {
    pub fn state(&self) -> MutexGuard<'_, QueuesState> {
        lock(&self.0)
    }

    /// Every message in flight in `queue` visible again, as when their visibility
    /// timeouts end.
    pub fn end_holds(&self, queue: &str) {
        let mut s = self.state();
        for m in &mut s
            .queues
            .get_mut(queue)
            .expect("a queue of the test")
            .messages
        {
            m.in_flight = None;
        }
    }

    /// `queue`'s messages: `(visible, in flight)`.
    pub fn visibility(&self, queue: &str) -> (usize, usize) {
        let s = self.state();
        let msgs = &s.queues[queue].messages;
        let flying = msgs.iter().filter(|m| m.in_flight.is_some()).count();
        (msgs.len() - flying, flying)
    }

    /// A source queue and its DLQ; returns the DLQ's name.
    pub fn pair(&self, source: &str, fifo: bool) -> String {
        let suffix = if fifo { ".fifo" } else { "" };
        let (src, dlq) = (format!("{source}{suffix}"), format!("{source}-dlq{suffix}"));
        let mut s = self.state();
        s.queues.insert(
            src.clone(),
            MemQueue {
                fifo,
                ..MemQueue::default()
            },
        );
        s.queues.insert(
            dlq.clone(),
            MemQueue {
                fifo,
                dead_letters_of: vec![src],
                ..MemQueue::default()
            },
        );
        dlq
    }

    /// Put `body` into `queue` as a message that failed there before.
    pub fn put(&self, queue: &str, body: &str, group: Option<&str>) {
        self.put_from(queue, body, group, None);
    }

    /// Put `body` with these message attributes into `queue`.
    pub fn put_with(&self, queue: &str, body: &str, attributes: BTreeMap<String, AttributeValue>) {
        self.put(queue, body, None);
        let mut s = self.state();
        let q = s.queues.get_mut(queue).expect("a queue of the test");
        q.messages.last_mut().expect("just put").attributes = attributes;
    }

    /// Put `body` into the DLQ `queue` as SQS dead-letters it from the queue `source`
    /// (recorded on the message as `DeadLetterQueueSourceArn`; `None`: not recorded).
    pub fn put_from(&self, queue: &str, body: &str, group: Option<&str>, source: Option<&str>) {
        let mut s = self.state();
        let id = s.next("m");
        let q = s.queues.get_mut(queue).expect("a queue of the test");
        q.messages.push(Stored {
            id,
            body: body.to_owned(),
            attributes: BTreeMap::new(),
            group_id: group.map(str::to_owned),
            receive_count: 3,
            in_flight: None,
            source: source.map(arn),
        });
    }

    /// A DLQ `dlq` shared by the source queues `sources`.
    pub fn shared_dlq(&self, dlq: &str, sources: &[&str], fifo: bool) {
        let mut s = self.state();
        for src in sources {
            s.queues.insert(
                (*src).to_owned(),
                MemQueue {
                    fifo,
                    ..MemQueue::default()
                },
            );
        }
        s.queues.insert(
            dlq.to_owned(),
            MemQueue {
                fifo,
                dead_letters_of: sources.iter().map(|s| (*s).to_owned()).collect(),
                ..MemQueue::default()
            },
        );
    }

    /// The bodies in `queue`, in order.
    pub fn bodies(&self, queue: &str) -> Vec<String> {
        self.state().queues[queue]
            .messages
            .iter()
            .map(|m| m.body.clone())
            .collect()
    }

    fn info(&self, name: &str) -> Result<QueueInfo> {
        let s = self.state();
        let q = s
            .queues
            .get(name)
            .ok_or_else(|| Error::InvalidEvent(format!("queue {name} does not exist")))?;
        Ok(QueueInfo {
            url: url(name),
            arn: arn(name),
            fifo: q.fifo,
        })
    }
}

impl Queues for MemQueues {
    fn absorbed_throttles(&self) -> u64 {
        self.state().absorbed
    }

    async fn resolve(&self, reference: &str) -> Result<QueueInfo> {
        self.state().resolved.push(reference.to_owned());
        self.info(name_of(reference))
    }

    async fn dead_letter_sources(&self, dlq: &QueueInfo) -> Result<Vec<String>> {
        let dlq = name_of(&dlq.arn);
        let s = self.state();
        Ok(s.queues
            .get(dlq)
            .map(|q| q.dead_letters_of.iter().map(|src| url(src)).collect())
            .unwrap_or_default())
    }

    async fn receive(
        &self,
        queue: &QueueInfo,
        max: i32,
        _wait: i32,
        _vis: i32,
    ) -> Result<Vec<Received>> {
        let mut s = self.state();
        let mut handles = Vec::new();
        for _ in 0..max.max(0) {
            handles.push(s.next("rh"));
        }
        let q = s.queues.get_mut(name_of(&queue.arn)).expect("known queue");
        let mut busy: BTreeSet<Option<String>> = q
            .messages
            .iter()
            .filter(|m| m.in_flight.is_some() && q.fifo)
            .map(|m| m.group_id.clone())
            .collect();
        let mut out = Vec::new();
        for m in q.messages.iter_mut().filter(|m| m.in_flight.is_none()) {
            if out.len() >= max.max(0) as usize {
                break;
            }
            if q.fifo && !busy.insert(m.group_id.clone()) {
                continue; // one message of a FIFO group at a time
            }
            let handle = handles.pop().unwrap_or_default();
            m.in_flight = Some(handle.clone());
            m.receive_count += 1;
            out.push(Received {
                message_id: m.id.clone(),
                receipt_handle: handle,
                body: m.body.clone(),
                attributes: m.attributes.clone(),
                group_id: m.group_id.clone(),
                receive_count: m.receive_count,
                dead_letter_source: m.source.clone(),
            });
        }
        Ok(out)
    }

    async fn send_batch(
        &self,
        queue: &QueueInfo,
        entries: &[Outgoing],
    ) -> Result<Vec<EntryFailure>> {
        let mut s = self.state();
        s.absorbed += s.absorbed_per_send;
        s.sends
            .push((name_of(&queue.arn).to_owned(), entries.len()));
        let failing = match s.send_faults.pop_front() {
            Some(SendFault::Call(e)) => return Err(e),
            Some(SendFault::Entries {
                count,
                code,
                sender_fault,
            }) => Some((count, code, sender_fault)),
            None => None,
        };
        let mut failures = Vec::new();
        let mut accepted = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            match failing {
                Some((count, code, sender_fault)) if i < count => failures.push(EntryFailure {
                    id: e.id.clone(),
                    code: code.into(),
                    message: "scripted".into(),
                    sender_fault,
                }),
                _ => accepted.push(e.clone()),
            }
        }
        for e in accepted {
            let id = s.next("m");
            let q = s.queues.get_mut(name_of(&queue.arn)).expect("known queue");
            if let Some(d) = &e.deduplication_id
                && !q.seen_dedup.insert(d.clone())
            {
                continue; // FIFO deduplication: accepted, not delivered again
            }
            q.messages.push(Stored {
                id,
                body: e.body,
                attributes: e.attributes,
                group_id: e.group_id,
                receive_count: 0,
                in_flight: None,
                source: None,
            });
        }
        Ok(failures)
    }

    async fn delete_batch(
        &self,
        queue: &QueueInfo,
        receipts: &[(String, String)],
    ) -> Result<Vec<EntryFailure>> {
        let mut s = self.state();
        if s.failing_deletes > 0 {
            s.failing_deletes -= 1;
            return Ok(receipts
                .iter()
                .map(|(id, _)| EntryFailure {
                    id: id.clone(),
                    code: "InternalError".into(),
                    message: "scripted".into(),
                    sender_fault: false,
                })
                .collect());
        }
        let q = s.queues.get_mut(name_of(&queue.arn)).expect("known queue");
        let mut failures = Vec::new();
        for (id, handle) in receipts {
            match q
                .messages
                .iter()
                .position(|m| m.in_flight.as_ref() == Some(handle))
            {
                Some(i) => {
                    q.messages.remove(i);
                }
                None => failures.push(EntryFailure {
                    id: id.clone(),
                    code: "ReceiptHandleIsInvalid".into(),
                    message: "no message has this receipt handle".into(),
                    sender_fault: true,
                }),
            }
        }
        Ok(failures)
    }

    /// 0 hands the messages back; more keeps them in flight (the in-memory queues have
    /// no clock: until [`MemQueues::end_holds`]), recorded in `holds`.
    async fn change_visibility(
        &self,
        queue: &QueueInfo,
        receipts: &[(String, String)],
        seconds: i32,
    ) -> Result<Vec<EntryFailure>> {
        let mut s = self.state();
        if seconds > 0 && s.failing_holds > 0 {
            s.failing_holds -= 1;
            return Err(Error::Aws {
                service: "sqs",
                operation: "ChangeMessageVisibilityBatch",
                code: Some("InternalError".into()),
                message: "scripted".into(),
                retryable: true,
            });
        }
        let q = s.queues.get_mut(name_of(&queue.arn)).expect("known queue");
        let mut held = Vec::new();
        for (_, handle) in receipts {
            for m in q
                .messages
                .iter_mut()
                .filter(|m| m.in_flight.as_ref() == Some(handle))
            {
                if seconds == 0 {
                    m.in_flight = None;
                } else {
                    held.push((m.id.clone(), seconds));
                }
            }
        }
        s.holds.extend(held);
        Ok(Vec::new())
    }

    async fn depth(&self, queue: &QueueInfo) -> Result<u64> {
        Ok(self.state().queues[name_of(&queue.arn)].messages.len() as u64)
    }

    /// Recorded (`moves`), not carried out: the in-memory queues have no move tasks.
    async fn start_move(
        &self,
        source: &str,
        destination: Option<&str>,
        _rate: Option<i32>,
    ) -> Result<String> {
        let mut s = self.state();
        s.moves
            .push((source.to_owned(), destination.map(str::to_owned)));
        Ok(s.next("task"))
    }

    async fn list_moves(&self, _source: &str) -> Result<Vec<MoveTask>> {
        Ok(Vec::new())
    }

    async fn cancel_move(&self, _task_handle: &str) -> Result<i64> {
        Err(Error::InvalidEvent(
            "the in-memory queues have no move tasks".into(),
        ))
    }
}

/// One asynchronous invoke: function, qualifier, payload.
pub type Invoke = (String, Option<String>, Vec<u8>);

/// Every asynchronous invoke.
#[derive(Debug, Default)]
pub struct MemInvoker {
    pub invoked: Mutex<Vec<Invoke>>,
    /// Errors the next invokes answer.
    pub errors: Mutex<VecDeque<Error>>,
}

impl EventInvoker for MemInvoker {
    async fn invoke_event(
        &self,
        function: &str,
        qualifier: Option<&str>,
        payload: Vec<u8>,
    ) -> Result<()> {
        if let Some(e) = lock(&self.errors).pop_front() {
            return Err(e);
        }
        lock(&self.invoked).push((function.to_owned(), qualifier.map(str::to_owned), payload));
        Ok(())
    }
}

/// Every summary published.
#[derive(Debug, Default)]
pub struct MemSink(pub Mutex<Vec<(String, String)>>);

impl SummarySink for MemSink {
    async fn summary(&self, subject: &str, body: &str, _attributes: &[(&str, &str)]) -> Result<()> {
        lock(&self.0).push((subject.to_owned(), body.to_owned()));
        Ok(())
    }
}

/// SNS topics: what each `PublishBatch` delivered, with scripted entry failures.
#[derive(Debug, Default)]
pub struct MemRepublish {
    /// Topic ARN → the entries it accepted, in order.
    pub published: Mutex<BTreeMap<String, Vec<Outgoing>>>,
    /// Entries of the next calls to fail, as `(count, code, sender_fault)` per call.
    pub failures: Mutex<VecDeque<(usize, &'static str, bool)>>,
    /// FIFO topics drop a deduplication id they have seen (within SNS's 5 minutes).
    seen_dedup: Mutex<BTreeSet<String>>,
    /// Bus ARN → the events put on it, in order.
    pub events: Mutex<BTreeMap<String, Vec<String>>>,
}

impl MemRepublish {
    /// The bodies published to `topic`, in order.
    pub fn bodies(&self, topic: &str) -> Vec<String> {
        lock(&self.published)
            .get(topic)
            .map(|v| v.iter().map(|o| o.body.clone()).collect())
            .unwrap_or_default()
    }
}

impl Republish for MemRepublish {
    async fn publish_batch(
        &self,
        topic_arn: &str,
        entries: &[Outgoing],
    ) -> Result<Vec<EntryFailure>> {
        assert!(entries.len() <= 10, "PublishBatch takes at most 10 entries");
        let fifo = topic_arn.ends_with(".fifo");
        for e in entries {
            assert_eq!(
                fifo,
                e.group_id.is_some() && e.deduplication_id.is_some(),
                "a FIFO topic needs a group and deduplication id, a standard one takes neither"
            );
        }
        let (count, code, sender_fault) =
            lock(&self.failures).pop_front().unwrap_or((0, "", false));
        let mut failures = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if i < count {
                failures.push(EntryFailure {
                    id: e.id.clone(),
                    code: code.into(),
                    message: "scripted".into(),
                    sender_fault,
                });
                continue;
            }
            if let Some(d) = &e.deduplication_id
                && !lock(&self.seen_dedup).insert(d.clone())
            {
                continue;
            }
            lock(&self.published)
                .entry(topic_arn.to_owned())
                .or_default()
                .push(e.clone());
        }
        Ok(failures)
    }

    /// Puts each event on `bus` (recorded under the bus in `events`), or fails as
    /// EventBridge would an event it refuses, and as `failures` scripts.
    async fn put_events(&self, bus: &str, entries: &[Outgoing]) -> Result<Vec<EntryFailure>> {
        assert!(entries.len() <= 10, "PutEvents takes at most 10 entries");
        let (count, code, sender_fault) =
            lock(&self.failures).pop_front().unwrap_or((0, "", false));
        let mut failures = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let refused = match super::message::bus_event(&e.body) {
                Err(why) => Some(("NotAnEvent", why, true)),
                Ok(_) if i < count => Some((code, "scripted".to_owned(), sender_fault)),
                Ok(_) => None,
            };
            match refused {
                Some((code, message, sender_fault)) => failures.push(EntryFailure {
                    id: e.id.clone(),
                    code: code.into(),
                    message,
                    sender_fault,
                }),
                None => lock(&self.events)
                    .entry(bus.to_owned())
                    .or_default()
                    .push(e.body.clone()),
            }
        }
        Ok(failures)
    }
}

/// S3 objects by `(bucket, key)`, listed in key order, with scripted failures.
#[derive(Debug, Default)]
pub struct MemObjects {
    pub objects: Mutex<BTreeMap<(String, String), String>>,
    /// How many of the next `GetObject` and `DeleteObject` calls fail (transiently).
    pub failing_gets: Mutex<usize>,
    pub failing_deletes: Mutex<usize>,
    /// Every key `GetObject` was asked for.
    pub gets: Mutex<Vec<String>>,
}

impl MemObjects {
    pub fn put(&self, bucket: &str, key: &str, body: &str) {
        lock(&self.objects).insert((bucket.into(), key.into()), body.into());
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        lock(&self.objects)
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect()
    }
}

fn transient(operation: &'static str) -> Error {
    Error::Aws {
        service: "s3",
        operation,
        code: Some("InternalError".into()),
        message: "scripted".into(),
        retryable: true,
    }
}

fn take_failure(counter: &Mutex<usize>) -> bool {
    let mut n = lock(counter);
    let fail = *n > 0;
    *n = n.saturating_sub(1);
    fail
}

impl super::ports::Objects for MemObjects {
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        max: i32,
    ) -> Result<Vec<String>> {
        Ok(lock(&self.objects)
            .keys()
            .filter(|(b, k)| {
                b == bucket && k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a)
            })
            .take(max.max(0) as usize)
            .map(|(_, k)| k.clone())
            .collect())
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<String> {
        lock(&self.gets).push(key.to_owned());
        if take_failure(&self.failing_gets) {
            return Err(transient("GetObject"));
        }
        lock(&self.objects)
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
            .ok_or_else(|| Error::InvalidEvent(format!("NoSuchKey: {key}")))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        if take_failure(&self.failing_deletes) {
            return Err(transient("DeleteObject"));
        }
        lock(&self.objects).remove(&(bucket.to_owned(), key.to_owned()));
        Ok(())
    }
}
