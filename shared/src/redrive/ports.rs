//! What the redrive needs from AWS, as small traits over plain data. The SQS adapter
//! ([`crate::adapters::sqs`]) and the Lambda adapter implement them; unit tests use
//! in-memory fakes.

use crate::error::Result;
use std::collections::BTreeMap;
use std::future::Future;

/// One message attribute, kept exactly as SQS returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeValue {
    /// `String`, `Number`, `Binary`, optionally with a custom suffix (`String.json`).
    pub data_type: String,
    pub string: Option<String>,
    pub binary: Option<Vec<u8>>,
}

impl AttributeValue {
    pub fn string(value: impl Into<String>) -> Self {
        Self {
            data_type: "String".into(),
            string: Some(value.into()),
            binary: None,
        }
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub group_id: Option<String>,
    pub receive_count: u32,
    /// The queue SQS moved the message here from (`DeadLetterQueueSourceArn`), for a
    /// message it dead-lettered.
    pub dead_letter_source: Option<String>,
}

/// A queue, resolved from a URL, ARN or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    pub url: String,
    pub arn: String,
    pub fifo: bool,
}

/// One entry of a `SendMessageBatch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Batch entry id (unique within the batch).
    pub id: String,
    pub body: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    /// SNS only: the message's subject.
    pub subject: Option<String>,
}

/// A batch entry SQS, SNS or EventBridge did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFailure {
    pub id: String,
    pub code: String,
    pub message: String,
    /// SQS's `SenderFault`: the same entry will fail again.
    pub sender_fault: bool,
}

/// A message move task as `ListMessageMoveTasks` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MoveTask {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_handle: Option<String>,
    pub status: String,
    pub source_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_messages_per_second: Option<i32>,
    pub messages_moved: i64,
    pub messages_to_move: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub started_ms: i64,
}

pub trait Queues: Send + Sync {
    /// Throttled attempts the SDK's own retries absorbed since the client was made (a
    /// running count; the calls' results never show them).
    fn absorbed_throttles(&self) -> u64 {
        0
    }

    /// URL, ARN or name → URL, ARN and whether it is FIFO (read only).
    fn resolve(&self, reference: &str) -> impl Future<Output = Result<QueueInfo>> + Send;

    /// `ListDeadLetterSourceQueues`: URLs of the queues whose RedrivePolicy names `dlq`.
    fn dead_letter_sources(
        &self,
        dlq: &QueueInfo,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// `ReceiveMessage` with all attributes; `visibility_seconds` hides what is returned.
    fn receive(
        &self,
        queue: &QueueInfo,
        max: i32,
        wait_seconds: i32,
        visibility_seconds: i32,
    ) -> impl Future<Output = Result<Vec<Received>>> + Send;

    /// `SendMessageBatch`: `Err` when the whole call failed, else the failed entries.
    fn send_batch(
        &self,
        queue: &QueueInfo,
        entries: &[Outgoing],
    ) -> impl Future<Output = Result<Vec<EntryFailure>>> + Send;

    /// `DeleteMessageBatch` of `(entry id, receipt handle)` pairs.
    fn delete_batch(
        &self,
        queue: &QueueInfo,
        receipts: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<EntryFailure>>> + Send;

    /// `ChangeMessageVisibilityBatch` of `(message id, receipt handle)` pairs: 0 hands
    /// the messages back to the queue now, more keeps them hidden that long. `Err` when
    /// the whole call failed, else the entries it did not change (their ids are positions
    /// in `receipts`).
    fn change_visibility(
        &self,
        queue: &QueueInfo,
        receipts: &[(String, String)],
        seconds: i32,
    ) -> impl Future<Output = Result<Vec<EntryFailure>>> + Send;

    /// Visible + in-flight + delayed messages (`ApproximateNumberOf*`).
    fn depth(&self, queue: &QueueInfo) -> impl Future<Output = Result<u64>> + Send;

    /// `StartMessageMoveTask` → the task handle.
    fn start_move(
        &self,
        source_arn: &str,
        destination_arn: Option<&str>,
        max_per_second: Option<i32>,
    ) -> impl Future<Output = Result<String>> + Send;

    /// `ListMessageMoveTasks` (newest first, up to 10).
    fn list_moves(&self, source_arn: &str) -> impl Future<Output = Result<Vec<MoveTask>>> + Send;

    /// `CancelMessageMoveTask` → messages moved so far.
    fn cancel_move(&self, task_handle: &str) -> impl Future<Output = Result<i64>> + Send;
}

/// Asynchronous (`InvocationType: Event`) invokes, for Lambda DLQ replays.
pub trait EventInvoker: Send + Sync {
    fn invoke_event(
        &self,
        function: &str,
        qualifier: Option<&str>,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Where dead letters are published again: SNS topics (a subscription's dead letters) and
/// EventBridge buses (a rule's).
pub trait Republish: Send + Sync {
    /// `PublishBatch` to `topic_arn`: `Err` when the whole call failed, else the failed
    /// entries (SNS's `SenderFault` marks those that would fail again).
    fn publish_batch(
        &self,
        topic_arn: &str,
        entries: &[Outgoing],
    ) -> impl Future<Output = Result<Vec<EntryFailure>>> + Send;

    /// `PutEvents` of the events in the entries' bodies (see
    /// [`crate::redrive::message::bus_event`]) to the bus `bus` (name or ARN): `Err` when
    /// the whole call failed, else the failed entries.
    fn put_events(
        &self,
        bus: &str,
        entries: &[Outgoing],
    ) -> impl Future<Output = Result<Vec<EntryFailure>>> + Send;
}

/// S3, for a prefix of Lambda failure records.
pub trait Objects: Send + Sync {
    /// `ListObjectsV2`: up to `max` keys under `prefix` after the key `after`, in order.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        max: i32,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// `GetObject`: the object's body as text.
    fn get(&self, bucket: &str, key: &str) -> impl Future<Output = Result<String>> + Send;

    /// `DeleteObject`.
    fn delete(&self, bucket: &str, key: &str) -> impl Future<Output = Result<()>> + Send;
}

/// Where the run's summary goes (SNS).
pub trait SummarySink: Send + Sync {
    fn summary(
        &self,
        subject: &str,
        body: &str,
        attributes: &[(&str, &str)],
    ) -> impl Future<Output = Result<()>> + Send;
}
