//! SNS: announce every decision, with message attributes subscribers can filter on.

use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::ports::Notifier;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

/// SNS accepts 256 KiB per message; keep a margin for attributes and the envelope.
const MAX_MESSAGE_BYTES: usize = 240 * 1024;

#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: Option<String>,
}

impl SnsNotifier {
    /// With no topic the notifier only logs that it has nowhere to publish.
    pub fn new(client: Client, topic_arn: Option<String>) -> Self {
        Self { client, topic_arn }
    }
}

/// The subject line a person sees in an e-mail subscription (<= 100 ASCII characters).
pub fn subject(decision: &Decision) -> String {
    let what = match (&decision.function_name, &decision.target_version) {
        (Some(f), Some(v)) => format!("{f}:{v}"),
        (Some(f), None) => f.clone(),
        _ => decision
            .deployment_id
            .clone()
            .unwrap_or_else(|| "unknown".into()),
    };
    let s = format!(
        "rollgate {}: {} {}",
        decision.component,
        decision.verdict.as_str(),
        what
    );
    let s: String = s
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect();
    s.chars().take(100).collect()
}

/// The message body: the decision as JSON, with check evidence shortened if it would not fit.
pub fn body(decision: &Decision) -> String {
    let text = serde_json::to_string_pretty(decision).unwrap_or_default();
    if text.len() <= MAX_MESSAGE_BYTES {
        return text;
    }
    let mut slim = decision.clone();
    for c in &mut slim.checks {
        c.actual = serde_json::Value::String("(omitted: message too large)".into());
    }
    serde_json::to_string(&slim).unwrap_or_default()
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data_type is set")
}

impl Notifier for SnsNotifier {
    async fn announce(&self, decision: &Decision) -> Result<()> {
        let Some(topic) = &self.topic_arn else {
            tracing::warn!("ROLLGATE_TOPIC_ARN is not set: decision not published on SNS");
            return Ok(());
        };
        let mut req = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(subject(decision))
            .message(body(decision))
            .message_attributes("component", attribute(&decision.component))
            .message_attributes("verdict", attribute(decision.verdict.as_str()));
        if let Some(f) = decision.function_name.as_deref().filter(|f| !f.is_empty()) {
            req = req.message_attributes("function", attribute(f));
        }
        if let Some(d) = decision.deployment_id.as_deref().filter(|d| !d.is_empty()) {
            req = req.message_attributes("deployment", attribute(d));
        }
        req.send()
            .await
            .map_err(|e| Error::aws("sns", "Publish", e))?;
        Ok(())
    }
}

impl crate::redrive::ports::SummarySink for SnsNotifier {
    async fn summary(&self, subject: &str, body: &str, attributes: &[(&str, &str)]) -> Result<()> {
        let Some(topic) = &self.topic_arn else {
            tracing::warn!("ROLLGATE_TOPIC_ARN is not set: summary not published on SNS");
            return Ok(());
        };
        let mut req = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(subject.chars().take(100).collect::<String>())
            .message(body);
        for (name, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
            req = req.message_attributes(*name, attribute(value));
        }
        req.send()
            .await
            .map_err(|e| Error::aws("sns", "Publish", e))?;
        Ok(())
    }
}
