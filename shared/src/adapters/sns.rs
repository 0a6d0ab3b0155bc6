//! SNS: announce every decision, with message attributes subscribers can filter on; with
//! a chat topic, each decision also as a chat card (`crate::chat`) on that topic.

use crate::chat::Card;
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::limits::{SNS_ATTRIBUTE_MAX_CHARS, SNS_MESSAGE_MAX_BYTES, cut, fit_json};
use crate::ports::Notifier;
use crate::rollback::ports::Announcer;
use crate::scope::{Arn, Home};
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

/// Room kept for the message attributes (at most a handful, each value cut to
/// [`SNS_ATTRIBUTE_MAX_CHARS`] characters) out of SNS's 256 KiB for body and attributes.
const ATTRIBUTES_ROOM: usize = 16 * 1024;

/// What the body of one message may take.
pub const MAX_BODY_BYTES: usize = SNS_MESSAGE_MAX_BYTES - ATTRIBUTES_ROOM;

#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: Option<String>,
    chat: Option<ChatTopic>,
}

/// Where chat cards go (`ROLLGATE_CHAT_TOPIC_ARN`), and the home the ARNs a card names are
/// written in: the topic's own partition, region and account, which are the stack's.
#[derive(Clone, Debug)]
struct ChatTopic {
    arn: String,
    home: Home,
}

impl SnsNotifier {
    /// With no topic the notifier only logs that it has nowhere to publish.
    pub fn new(client: Client, topic_arn: Option<String>) -> Self {
        Self {
            client,
            topic_arn,
            chat: None,
        }
    }

    /// Also publish every decision as a chat card on `chat_topic_arn` (`None`: no cards).
    /// The decision topic keeps its messages as they are: the card is a message of its
    /// own, on a topic of its own, because the chat service drops what is not a card.
    pub fn with_chat_topic(mut self, chat_topic_arn: Option<String>) -> Self {
        self.chat = chat_topic_arn.map(|arn| {
            let home = match Arn::parse(&arn) {
                Some(a) => Home {
                    partition: Some(a.partition.to_owned()).filter(|x| !x.is_empty()),
                    region: Some(a.region.to_owned()).filter(|x| !x.is_empty()),
                    account: Some(a.account.to_owned()).filter(|x| !x.is_empty()),
                },
                None => Home::default(),
            };
            ChatTopic { arn, home }
        });
        self
    }
}

/// The subject line a person sees in an e-mail subscription (printable ASCII, under
/// 100 characters).
pub fn subject(decision: &Decision) -> String {
    let what = match (&decision.function_name, &decision.target_version) {
        (Some(f), Some(v)) => format!("{f}:{v}"),
        (Some(f), None) => f.clone(),
        _ => decision
            .deployment_id
            .clone()
            .unwrap_or_else(|| "unknown".into()),
    };
    crate::limits::subject(&format!(
        "rollgate {}: {} {}",
        decision.component,
        decision.verdict.as_str(),
        what
    ))
}

/// The message body: the decision as JSON, fitted to [`MAX_BODY_BYTES`] (the longest
/// texts, such as a smoke test's answer or an alarm's reason, cut and marked).
pub fn body(decision: &Decision) -> String {
    fit_json(
        &serde_json::to_value(decision).unwrap_or_default(),
        MAX_BODY_BYTES,
        true,
    )
}

/// A redrive summary's body: JSON text fitted like a decision; other text cut.
pub fn fit_text(text: &str) -> String {
    if text.len() <= MAX_BODY_BYTES {
        return text.to_owned();
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => fit_json(&v, MAX_BODY_BYTES, true),
        // Characters are at most 4 bytes: this many always fit.
        Err(_) => cut(text, MAX_BODY_BYTES / 4),
    }
}

/// A `String` message attribute, its value cut to [`SNS_ATTRIBUTE_MAX_CHARS`].
pub fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(cut(value, SNS_ATTRIBUTE_MAX_CHARS))
        .build()
        .expect("data_type is set")
}

/// The attributes every decision carries (component, verdict, function and deployment
/// when known) and `extra` ones; empty values are left out.
fn decision_attributes<'a>(
    decision: &Decision,
    extra: &[(&'a str, String)],
) -> Vec<(&'a str, String)> {
    let mut out = vec![
        ("component", decision.component.clone()),
        ("verdict", decision.verdict.as_str().to_owned()),
    ];
    if let Some(f) = decision.function_name.as_deref() {
        out.push(("function", f.to_owned()));
    }
    if let Some(d) = decision.deployment_id.as_deref() {
        out.push(("deployment", d.to_owned()));
    }
    out.extend(extra.iter().cloned());
    out.retain(|(_, v)| !v.is_empty());
    out
}

impl SnsNotifier {
    /// Publish one decision under `subject` with its attributes, and at the same time its
    /// chat card when there is a chat topic.
    async fn publish_decision(
        &self,
        decision: &Decision,
        subject: String,
        extra: &[(&str, String)],
    ) -> Result<()> {
        let attributes = decision_attributes(decision, extra);
        let (published, ()) = tokio::join!(
            self.publish_json(decision, subject, &attributes),
            self.publish_card(|home| crate::chat::card(decision, extra, home), &attributes),
        );
        published
    }

    async fn publish_json(
        &self,
        decision: &Decision,
        subject: String,
        attributes: &[(&str, String)],
    ) -> Result<()> {
        let Some(topic) = &self.topic_arn else {
            tracing::warn!("ROLLGATE_TOPIC_ARN is not set: decision not published on SNS");
            return Ok(());
        };
        let mut req = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(subject)
            .message(body(decision));
        for (k, v) in attributes {
            req = req.message_attributes(*k, attribute(v));
        }
        req.send()
            .await
            .map_err(|e| Error::aws("sns", "Publish", e))?;
        Ok(())
    }

    /// Publish a chat card, with the same attributes as the message it stands for (so that
    /// a subscription filter on the chat topic can, say, send only failures to a channel).
    ///
    /// A card that could not be published is logged, naming the variable, and changes
    /// nothing else. That is the policy of the announcement it stands for: every caller
    /// logs a failed decision publish and goes on (`hook::explain`, `rollback::run`,
    /// `rollout::apply`, `redrive::engine::announce`): the verdict is reported, the alias
    /// moved or left, the ledger written whether SNS took the message or not, and Lambda's
    /// retry of a failed invocation would redo work for a message. The card is a second
    /// view of that announcement, so it gets no more weight than the announcement itself;
    /// nor is its failure returned as the announcement's, which did reach its own topic.
    async fn publish_card(&self, card: impl FnOnce(&Home) -> Card, attributes: &[(&str, String)]) {
        let Some(chat) = &self.chat else {
            return;
        };
        let mut req = self
            .client
            .publish()
            .topic_arn(&chat.arn)
            .message(card(&chat.home).to_json());
        for (k, v) in attributes {
            req = req.message_attributes(*k, attribute(v));
        }
        if let Err(e) = req.send().await {
            let error = Error::aws("sns", "Publish", e);
            tracing::error!(
                error = %error,
                topic = %chat.arn,
                "ROLLGATE_CHAT_TOPIC_ARN: the chat card was not published; the decision stands and was announced as usual"
            );
        }
    }
}

impl Notifier for SnsNotifier {
    async fn announce(&self, decision: &Decision) -> Result<()> {
        self.publish_decision(decision, subject(decision), &[])
            .await
    }
}

impl crate::redrive::ports::SummarySink for SnsNotifier {
    /// The report, and at the same time its chat card when there is a chat topic.
    async fn summary(&self, subject: &str, body: &str, attributes: &[(&str, &str)]) -> Result<()> {
        let owned: Vec<(&str, String)> = attributes
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        let report: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let (published, ()) = tokio::join!(
            self.publish_summary(subject, body, attributes),
            self.publish_card(
                |home| crate::chat::redrive_card(&report, &owned, home),
                &owned
            ),
        );
        published
    }
}

impl SnsNotifier {
    async fn publish_summary(
        &self,
        subject: &str,
        body: &str,
        attributes: &[(&str, &str)],
    ) -> Result<()> {
        let Some(topic) = &self.topic_arn else {
            tracing::warn!("ROLLGATE_TOPIC_ARN is not set: summary not published on SNS");
            return Ok(());
        };
        let mut req = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(crate::limits::subject(subject))
            .message(fit_text(body));
        for (name, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
            req = req.message_attributes(*name, attribute(value));
        }
        req.send()
            .await
            .map_err(|e| Error::aws("sns", "Publish", e))?;
        Ok(())
    }
}

/// `rollgate alarm-rollback: rollback orders:live` (printable ASCII, under 100 characters).
pub fn announcement_subject(decision: &Decision, action: &str) -> String {
    let what = match (&decision.function_name, &decision.alias) {
        (Some(f), Some(a)) => format!("{f}:{a}"),
        (Some(f), None) => f.clone(),
        _ => "no function".into(),
    };
    crate::limits::subject(&format!("rollgate {}: {action} {what}", decision.component))
}

/// alarm-rollback's decisions: subject by action and alias, and its attributes (action,
/// alias, ...) besides every decision's.
impl Announcer for SnsNotifier {
    async fn announce(&self, decision: &Decision, attributes: &[(&str, String)]) -> Result<()> {
        let action = attributes
            .iter()
            .find(|(k, _)| *k == "action")
            .map(|(_, v)| v.as_str())
            .unwrap_or("none");
        self.publish_decision(decision, announcement_subject(decision, action), attributes)
            .await
    }
}

/// One `PublishBatch` of entries that fit in one request.
async fn publish_run(
    client: &Client,
    topic_arn: &str,
    entries: &[crate::redrive::ports::Outgoing],
) -> Result<Vec<crate::redrive::ports::EntryFailure>> {
    use aws_sdk_sns::types::PublishBatchRequestEntry;
    let mut req = client.publish_batch().topic_arn(topic_arn);
    for e in entries {
        let mut b = PublishBatchRequestEntry::builder()
            .id(&e.id)
            .message(&e.body)
            .set_subject(e.subject.clone())
            .set_message_group_id(e.group_id.clone())
            .set_message_deduplication_id(e.deduplication_id.clone());
        for (name, v) in &e.attributes {
            if let Ok(a) = MessageAttributeValue::builder()
                .data_type(&v.data_type)
                .set_string_value(v.string.clone())
                .set_binary_value(v.binary.clone().map(aws_smithy_types::Blob::new))
                .build()
            {
                b = b.message_attributes(name, a);
            }
        }
        req = req.publish_batch_request_entries(
            b.build()
                .map_err(|err| Error::InvalidEvent(format!("batch entry {}: {err}", e.id)))?,
        );
    }
    let out = req
        .send()
        .await
        .map_err(|e| Error::aws("sns", "PublishBatch", e))?;
    Ok(out
        .failed()
        .iter()
        .map(|f| crate::redrive::ports::EntryFailure {
            id: f.id().to_owned(),
            code: f.code().to_owned(),
            message: f.message().unwrap_or_default().to_owned(),
            sender_fault: f.sender_fault(),
        })
        .collect())
}

/// dlq-redrive publishes an SNS subscription's dead letters to their topic again.
impl SnsNotifier {
    pub async fn publish_batch(
        &self,
        topic_arn: &str,
        entries: &[crate::redrive::ports::Outgoing],
    ) -> Result<Vec<crate::redrive::ports::EntryFailure>> {
        // One call per run of entries SNS takes in one request (256 KiB in all).
        super::send_messages_in_runs(
            entries,
            crate::redrive::message::MAX_SNS_BATCH_BYTES,
            "PublishBatch",
            |run| publish_run(&self.client, topic_arn, run),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{CheckResult, Verdict};
    use serde_json::json;

    fn decision(reason: String, actual: String) -> Decision {
        Decision {
            component: "alarm-rollback".into(),
            verdict: Verdict::Failed,
            reason,
            deployment_id: Some("d-ABCDEFGHI".into()),
            function_name: Some("orders".into()),
            alias: Some("live".into()),
            current_version: Some("1".into()),
            target_version: Some("2".into()),
            policy_source: None,
            checks: vec![CheckResult::fail("alarm", json!("ALARM"), json!(actual))],
            duration_ms: 1,
        }
    }

    /// A 5 MB alarm reason and a 1 MB smoke answer still make one message SNS takes.
    #[test]
    fn bodies_and_attributes_stay_inside_sns_limits() {
        let d = decision("r".repeat(5_000_000), "a".repeat(1 << 20));
        let text = body(&d);
        assert!(text.len() <= MAX_BODY_BYTES, "{}", text.len());
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["function_name"], "orders");
        assert!(crate::limits::was_cut(back["reason"].as_str().unwrap()));
        let small = decision("fine".into(), "ok".into());
        assert_eq!(
            body(&small),
            serde_json::to_string_pretty(&small).unwrap(),
            "a message that fits is sent whole"
        );
        let long_id = "d-".to_owned() + &"A".repeat(300_000);
        let a = attribute(&long_id);
        assert_eq!(
            a.string_value().unwrap().chars().count(),
            SNS_ATTRIBUTE_MAX_CHARS
        );
        let s = subject(&Decision {
            function_name: Some("f".repeat(200)),
            ..small
        });
        assert!(s.chars().count() < 100);
        assert!(fit_text(&"x".repeat(1 << 20)).len() <= MAX_BODY_BYTES);
    }
}
