//! SQS: the redrive's queue port ([`crate::redrive::ports::Queues`]).

use crate::error::{Error, Result};
use crate::redrive::ports::{
    AttributeValue, EntryFailure, MoveTask, Outgoing, QueueInfo, Queues, Received,
};
use crate::redrive::request::queue_url_parts;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the attempts that SQS throttled and the SDK then retried: a throttled attempt
/// is marked in the operation's config bag after it, and counted when the next attempt
/// of the same operation starts (the last attempt's throttle is an error the caller sees
/// and counts itself).
#[derive(Debug, Clone)]
struct ThrottleCounter(Arc<AtomicU64>);

#[derive(Debug, Clone, Copy)]
struct ThrottledAttempt;

impl Storable for ThrottledAttempt {
    type Storer = StoreReplace<Self>;
}

impl Intercept for ThrottleCounter {
    fn name(&self) -> &'static str {
        "RollgateThrottleCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        if cfg.load::<ThrottledAttempt>().is_some() {
            self.0.fetch_add(1, Ordering::Relaxed);
            cfg.interceptor_state().unset::<ThrottledAttempt>();
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let throttled = context.response().is_some_and(|r| {
            let header = |name: &str| r.headers().get(name).map(str::to_owned);
            is_throttle_answer(
                r.status().as_u16(),
                header("x-amzn-query-error").or_else(|| header("x-amzn-errortype")),
                r.body().bytes(),
            )
        });
        if throttled {
            cfg.interceptor_state().store_put(ThrottledAttempt);
        }
        Ok(())
    }
}

/// Whether an answer is SQS throttling: HTTP 429, or an error code (the
/// `x-amzn-query-error` / `x-amzn-errortype` header, else the JSON body's `__type`) of
/// the throttling kind (`RequestThrottled`, `ThrottlingException`, `KmsThrottled`...).
fn is_throttle_answer(status: u16, header: Option<String>, body: Option<&[u8]>) -> bool {
    if status == 429 {
        return true;
    }
    if status < 400 {
        return false;
    }
    let code = header
        .map(|h| h.split([';', ':']).next().unwrap_or_default().to_owned())
        .or_else(|| {
            let v: serde_json::Value = serde_json::from_slice(body?).ok()?;
            Some(v.get("__type")?.as_str()?.rsplit('#').next()?.to_owned())
        })
        .unwrap_or_default();
    code.contains("Throttl") || code == "TooManyRequestsException"
}

#[derive(Clone, Debug)]
pub struct Sqs {
    client: Client,
    /// Throttled attempts the SDK's retries absorbed.
    absorbed: Arc<AtomicU64>,
}

impl Sqs {
    /// The client, with an interceptor that counts the throttling answers its retries
    /// absorb (a redrive reports them: they are invisible in the calls' results).
    pub fn new(client: Client) -> Self {
        let absorbed = Arc::new(AtomicU64::new(0));
        let config = client
            .config()
            .to_builder()
            .interceptor(ThrottleCounter(absorbed.clone()))
            .build();
        Self {
            client: Client::from_conf(config),
            absorbed,
        }
    }

    async fn url_for(&self, reference: &str) -> Result<String> {
        if let Some((account, name)) = url_parts(reference) {
            // The SDK sends every call to its own regional endpoint, whatever the host
            // of a queue URL: ask SQS for this queue's URL and accept the one given only
            // if it is that URL, so that another host, region or path is never taken
            // for a queue of this account.
            let canonical = self.lookup_url(reference, Some(account), name).await?;
            if !same_url(&canonical, reference) {
                return Err(Error::InvalidEvent(format!(
                    "{reference} is not the URL of queue {name} of account {account} ({canonical}); nothing was touched"
                )));
            }
            return Ok(canonical);
        }
        if reference.starts_with("arn:") {
            let arn = crate::names::Arn::parse(reference)
                .filter(|a| a.service == "sqs" && !a.resource.contains(':'))
                .ok_or_else(|| {
                    Error::InvalidEvent(format!(
                        "source/destination: {reference} is not an SQS queue ARN"
                    ))
                })?;
            return self
                .lookup_url(reference, Some(arn.account), arn.resource)
                .await;
        }
        self.lookup_url(reference, None, reference).await
    }

    /// `GetQueueUrl` of `name` (in `account`, else the caller's); errors name `reference`.
    async fn lookup_url(
        &self,
        reference: &str,
        account: Option<&str>,
        name: &str,
    ) -> Result<String> {
        let out = self
            .client
            .get_queue_url()
            .queue_name(name)
            .set_queue_owner_aws_account_id(account.map(str::to_owned))
            .send()
            .await
            .map_err(|e| missing_queue(reference, Error::aws("sqs", "GetQueueUrl", e)))?;
        out.queue_url()
            .map(str::to_owned)
            .ok_or_else(|| Error::InvalidEvent(format!("queue {reference}: no URL")))
    }
}

/// `(account, name)` of a queue URL `http(s)://<host>/<account>/<name>`.
/// SQS's "no such queue" as the clear error naming the reference; other errors as they are.
fn missing_queue(reference: &str, err: Error) -> Error {
    match err.code() {
        Some(c) if c.contains("NonExistentQueue") || c == "QueueDoesNotExist" => {
            Error::InvalidEvent(format!("queue {reference} does not exist"))
        }
        _ => err,
    }
}

fn url_parts(reference: &str) -> Option<(&str, &str)> {
    queue_url_parts(reference).map(|(_host, account, name)| (account, name))
}

/// Queue URLs compare without their scheme and with the host in any case.
fn same_url(a: &str, b: &str) -> bool {
    let strip = |u: &str| {
        let rest = u
            .strip_prefix("https://")
            .or_else(|| u.strip_prefix("http://"))
            .unwrap_or(u)
            .to_owned();
        match rest.split_once('/') {
            Some((host, path)) => format!("{}/{path}", host.to_ascii_lowercase()),
            None => rest.to_ascii_lowercase(),
        }
    };
    strip(a) == strip(b)
}

/// The queue a reference resolved to must be the one it names: an ARN of another
/// partition, region or account is never taken for this account's queue of that name.
fn check_resolved(reference: &str, arn: &str) -> Result<()> {
    if reference.starts_with("arn:") && reference != arn {
        return Err(Error::InvalidEvent(format!(
            "{reference} resolves to {arn}, another queue (partition, region or account differ); nothing was touched"
        )));
    }
    Ok(())
}

fn to_sdk(v: &AttributeValue) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type(&v.data_type)
        .set_string_value(v.string.clone())
        .set_binary_value(v.binary.clone().map(Blob::new))
        .build()
        .ok()
}

/// One `SendMessageBatch` of entries that fit in one request.
async fn send_run(
    client: &Client,
    queue: &QueueInfo,
    entries: &[Outgoing],
) -> Result<Vec<EntryFailure>> {
    let mut req = client.send_message_batch().queue_url(&queue.url);
    // An id SQS would refuse fails its entry here, as SQS would (a sender fault),
    // and the rest of the batch goes.
    let mut refused = Vec::new();
    for e in entries {
        if let Some(why) = crate::redrive::message::fifo_id_problem(e) {
            refused.push(EntryFailure {
                id: e.id.clone(),
                code: "InvalidParameterValue".into(),
                message: why,
                sender_fault: true,
            });
            continue;
        }
        let mut b = SendMessageBatchRequestEntry::builder()
            .id(&e.id)
            .message_body(&e.body)
            .set_message_group_id(e.group_id.clone())
            .set_message_deduplication_id(e.deduplication_id.clone());
        for (name, value) in &e.attributes {
            if let Some(v) = to_sdk(value) {
                b = b.message_attributes(name, v);
            }
        }
        req = req.entries(
            b.build()
                .map_err(|err| Error::InvalidEvent(format!("batch entry {}: {err}", e.id)))?,
        );
    }
    if refused.len() == entries.len() {
        return Ok(refused);
    }
    let out = req
        .send()
        .await
        .map_err(|e| Error::aws("sqs", "SendMessageBatch", e))?;
    refused.extend(failures(out.failed()));
    Ok(refused)
}

fn failures(list: &[aws_sdk_sqs::types::BatchResultErrorEntry]) -> Vec<EntryFailure> {
    list.iter()
        .map(|f| EntryFailure {
            id: f.id().to_owned(),
            code: f.code().to_owned(),
            message: f.message().unwrap_or_default().to_owned(),
            sender_fault: f.sender_fault(),
        })
        .collect()
}

impl Queues for Sqs {
    fn absorbed_throttles(&self) -> u64 {
        self.absorbed.load(Ordering::Relaxed)
    }

    async fn resolve(&self, reference: &str) -> Result<QueueInfo> {
        let url = self.url_for(reference).await?;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .attribute_names(QueueAttributeName::FifoQueue)
            .send()
            .await
            .map_err(|e| missing_queue(reference, Error::aws("sqs", "GetQueueAttributes", e)))?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        let arn = attrs
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .ok_or_else(|| Error::InvalidEvent(format!("queue {reference}: no QueueArn")))?;
        check_resolved(reference, &arn)?;
        let fifo = attrs
            .get(&QueueAttributeName::FifoQueue)
            .is_some_and(|v| v == "true")
            || url.ends_with(".fifo");
        Ok(QueueInfo { url, arn, fifo })
    }

    async fn dead_letter_sources(&self, dlq: &QueueInfo) -> Result<Vec<String>> {
        let mut urls = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_dead_letter_source_queues()
                .queue_url(&dlq.url)
                .set_next_token(token)
                .max_results(1000)
                .send()
                .await
                .map_err(|e| Error::aws("sqs", "ListDeadLetterSourceQueues", e))?;
            urls.extend(out.queue_urls().iter().cloned());
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(urls);
            }
        }
    }

    async fn receive(
        &self,
        queue: &QueueInfo,
        max: i32,
        wait_seconds: i32,
        visibility_seconds: i32,
    ) -> Result<Vec<Received>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_seconds)
            .visibility_timeout(visibility_seconds)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| Error::aws("sqs", "ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| {
                let system = m.attributes().cloned().unwrap_or_default();
                let attributes: BTreeMap<String, AttributeValue> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    AttributeValue {
                                        data_type: v.data_type().to_owned(),
                                        string: v.string_value().map(str::to_owned),
                                        binary: v.binary_value().map(|b| b.as_ref().to_vec()),
                                    },
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Received {
                    message_id: m.message_id().unwrap_or_default().to_owned(),
                    receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    attributes,
                    group_id: system
                        .get(&MessageSystemAttributeName::MessageGroupId)
                        .cloned(),
                    receive_count: system
                        .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0),
                    dead_letter_source: system
                        .get(&MessageSystemAttributeName::DeadLetterQueueSourceArn)
                        .cloned(),
                }
            })
            .collect())
    }

    async fn send_batch(
        &self,
        queue: &QueueInfo,
        entries: &[Outgoing],
    ) -> Result<Vec<EntryFailure>> {
        // One call per run of entries that SQS takes in one request (at most 1 MiB in all).
        super::send_messages_in_runs(
            entries,
            crate::redrive::message::MAX_BATCH_BYTES,
            "SendMessageBatch",
            |run| send_run(&self.client, queue, run),
        )
        .await
    }

    async fn delete_batch(
        &self,
        queue: &QueueInfo,
        receipts: &[(String, String)],
    ) -> Result<Vec<EntryFailure>> {
        let mut req = self.client.delete_message_batch().queue_url(&queue.url);
        for (id, handle) in receipts {
            req = req.entries(
                DeleteMessageBatchRequestEntry::builder()
                    .id(id)
                    .receipt_handle(handle)
                    .build()
                    .map_err(|e| Error::InvalidEvent(e.to_string()))?,
            );
        }
        let out = req
            .send()
            .await
            .map_err(|e| Error::aws("sqs", "DeleteMessageBatch", e))?;
        Ok(failures(out.failed()))
    }

    async fn change_visibility(
        &self,
        queue: &QueueInfo,
        receipts: &[(String, String)],
        seconds: i32,
    ) -> Result<Vec<EntryFailure>> {
        if receipts.is_empty() {
            return Ok(Vec::new());
        }
        let mut req = self
            .client
            .change_message_visibility_batch()
            .queue_url(&queue.url);
        // Entry ids must be unique in the batch: the position is.
        for (i, (_, handle)) in receipts.iter().enumerate() {
            req = req.entries(
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(seconds)
                    .build()
                    .map_err(|e| Error::InvalidEvent(e.to_string()))?,
            );
        }
        let out = req
            .send()
            .await
            .map_err(|e| Error::aws("sqs", "ChangeMessageVisibilityBatch", e))?;
        Ok(failures(out.failed()))
    }

    async fn depth(&self, queue: &QueueInfo) -> Result<u64> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&queue.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| Error::aws("sqs", "GetQueueAttributes", e))?;
        Ok(out
            .attributes()
            .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
            .unwrap_or(0))
    }

    async fn start_move(
        &self,
        source_arn: &str,
        destination_arn: Option<&str>,
        max_per_second: Option<i32>,
    ) -> Result<String> {
        let out = self
            .client
            .start_message_move_task()
            .source_arn(source_arn)
            .set_destination_arn(destination_arn.map(str::to_owned))
            .set_max_number_of_messages_per_second(max_per_second)
            .send()
            .await
            .map_err(|e| Error::aws("sqs", "StartMessageMoveTask", e))?;
        Ok(out.task_handle().unwrap_or_default().to_owned())
    }

    async fn list_moves(&self, source_arn: &str) -> Result<Vec<MoveTask>> {
        let out = self
            .client
            .list_message_move_tasks()
            .source_arn(source_arn)
            .max_results(10)
            .send()
            .await
            .map_err(|e| Error::aws("sqs", "ListMessageMoveTasks", e))?;
        Ok(out
            .results()
            .iter()
            .map(|t| MoveTask {
                task_handle: t.task_handle().map(str::to_owned),
                status: t.status().unwrap_or_default().to_owned(),
                source_arn: t.source_arn().unwrap_or(source_arn).to_owned(),
                destination_arn: t.destination_arn().map(str::to_owned),
                max_messages_per_second: t.max_number_of_messages_per_second(),
                messages_moved: t.approximate_number_of_messages_moved(),
                messages_to_move: t.approximate_number_of_messages_to_move(),
                failure_reason: t.failure_reason().map(str::to_owned),
                started_ms: t.started_timestamp(),
            })
            .collect())
    }

    async fn cancel_move(&self, task_handle: &str) -> Result<i64> {
        let out = self
            .client
            .cancel_message_move_task()
            .task_handle(task_handle)
            .send()
            .await
            .map_err(|e| Error::aws("sqs", "CancelMessageMoveTask", e))?;
        Ok(out.approximate_number_of_messages_moved())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_answers_are_told_from_other_errors() {
        let h = |v: &str| Some(v.to_owned());
        // SQS's JSON protocol: the query-compatible code in a header, the type in the body.
        assert!(is_throttle_answer(400, h("RequestThrottled;Sender"), None));
        assert!(is_throttle_answer(
            400,
            h("AWS.SimpleQueueService.RequestThrottled;Sender"),
            None
        ));
        assert!(is_throttle_answer(
            400,
            h("ThrottlingException:http://internal"),
            None
        ));
        let body = br#"{"__type":"com.amazonaws.sqs#KmsThrottled","message":"x"}"#;
        assert!(is_throttle_answer(400, None, Some(body)));
        assert!(is_throttle_answer(429, None, None));
        assert!(!is_throttle_answer(
            400,
            h("InvalidParameterValue;Sender"),
            None
        ));
        assert!(!is_throttle_answer(
            500,
            None,
            Some(br#"{"__type":"InternalError"}"#)
        ));
        assert!(!is_throttle_answer(200, h("RequestThrottled;Sender"), None));
        assert!(!is_throttle_answer(400, None, Some(b"not json")));
    }

    #[test]
    fn queue_urls_and_arns_must_name_the_queue_found() {
        assert_eq!(
            url_parts("https://sqs.us-east-1.amazonaws.com/123456789012/q"),
            Some(("123456789012", "q"))
        );
        assert_eq!(url_parts("https://h/123/q/../../123/p"), None);
        assert_eq!(url_parts("orders"), None);
        assert!(same_url(
            "https://SQS.us-east-1.amazonaws.com/1/q",
            "http://sqs.us-east-1.amazonaws.com/1/q"
        ));
        assert!(!same_url(
            "https://sqs.us-east-1.amazonaws.com/1/q",
            "https://attacker.example.com/1/q"
        ));
        assert!(!same_url(
            "https://sqs.us-east-1.amazonaws.com/1/q",
            "https://sqs.us-east-1.amazonaws.com/1/Q"
        ));
        let arn = "arn:aws:sqs:us-east-1:123456789012:q";
        assert!(check_resolved(arn, arn).is_ok());
        assert!(check_resolved("q", arn).is_ok());
        for other in [
            "arn:aws:sqs:eu-west-1:123456789012:q",
            "arn:aws:sqs:us-east-1:999999999999:q",
            "arn:aws-cn:sqs:us-east-1:123456789012:q",
        ] {
            let e = check_resolved(other, arn).unwrap_err().to_string();
            assert!(e.contains("another queue"), "{e}");
        }
    }
}
