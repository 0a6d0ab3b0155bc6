//! One adapter per AWS service, each implementing a port from [`crate::ports`].

pub mod aws;
pub mod cloudwatch;
pub mod cloudwatch_alarms;
pub mod codedeploy;
pub mod continuation;
pub mod dynamodb;
pub mod eventbridge;
pub mod http;
pub mod lambda;
pub mod s3;
pub mod scheduler;
pub mod sns;
pub mod sqs;
pub mod ssm;

pub use aws::Aws;
pub use cloudwatch::CloudWatch;
pub use codedeploy::CodeDeploy;
pub use dynamodb::DynamoLedger;
pub use eventbridge::EventBridge;
pub use lambda::Lambda;
pub use s3::S3;
pub use scheduler::Scheduler;
pub use sns::SnsNotifier;
pub use sqs::Sqs;
pub use ssm::SsmPolicies;

/// What both hooks talk to: CodeDeploy, the policy store, the decision topic and the
/// ledger that keeps their decisions.
pub struct HookClients {
    pub deployments: CodeDeploy,
    pub policies: SsmPolicies,
    pub notifier: SnsNotifier,
    /// `None`: decisions are not kept (no `ROLLGATE_LEDGER_TABLE`).
    pub decisions: Option<DynamoLedger>,
}

impl HookClients {
    pub fn new(aws: &Aws, policy_prefix: &str, topic_arn: Option<String>) -> Self {
        HookClients {
            deployments: CodeDeploy::new(aws.codedeploy()),
            policies: SsmPolicies::new(aws.ssm(), policy_prefix.to_owned()),
            notifier: SnsNotifier::new(aws.sns(), topic_arn),
            decisions: None,
        }
    }

    /// Keep each decision in the ledger `table` (`None`: keep none).
    pub fn with_ledger(mut self, aws: &Aws, table: Option<String>) -> Self {
        self.decisions = table.map(|t| DynamoLedger::new(aws.dynamodb(), t));
        self
    }

    /// Also publish each decision as a chat card on `chat_topic_arn` (`None`: no cards).
    pub fn with_chat_topic(mut self, chat_topic_arn: Option<String>) -> Self {
        self.notifier = self.notifier.with_chat_topic(chat_topic_arn);
        self
    }

    /// The hook frame of `component` over these clients, reporting through `slot`.
    pub fn frame<'a>(
        &'a self,
        component: &'static str,
        slot: &'a crate::report::ReportSlot,
    ) -> crate::hook::Hook<'a, CodeDeploy, SsmPolicies, SnsNotifier, Option<DynamoLedger>> {
        crate::hook::Hook::new(
            component,
            &self.deployments,
            &self.policies,
            &self.notifier,
            &self.decisions,
            slot,
        )
    }
}

/// alarm-rollback's releases: CodeDeploy for deployments and stops, Lambda for aliases and
/// group tags (one adapter per service; this only joins them behind the port).
#[derive(Clone, Debug)]
pub struct AwsReleases {
    codedeploy: CodeDeploy,
    lambda: Lambda,
}

impl AwsReleases {
    pub fn new(codedeploy: CodeDeploy, lambda: Lambda) -> Self {
        Self { codedeploy, lambda }
    }
}

impl crate::rollback::ports::Releases for AwsReleases {
    async fn release(
        &self,
        deployment_id: &str,
    ) -> crate::Result<crate::rollback::ports::ReleaseMeta> {
        self.codedeploy.release_meta(deployment_id).await
    }

    async fn stop(
        &self,
        deployment_id: &str,
    ) -> crate::Result<crate::rollback::ports::StopOutcome> {
        self.codedeploy.stop(deployment_id).await
    }

    async fn alias(
        &self,
        function: &str,
        alias: &str,
    ) -> crate::Result<Option<crate::rollback::decide::AliasState>> {
        self.lambda.alias_state(function, alias).await
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        revision_id: &str,
    ) -> crate::Result<crate::rollback::ports::UpdateOutcome> {
        self.lambda
            .point_alias(function, alias, version, revision_id)
            .await
    }

    async fn function_group(&self, function: &str) -> crate::Result<Option<String>> {
        self.lambda.group_tag(function).await
    }
}

/// [`send_in_runs`] of SQS or SNS messages, each sized by its body and attributes.
pub(crate) async fn send_messages_in_runs<'e, F, Fut>(
    entries: &'e [crate::redrive::ports::Outgoing],
    max: usize,
    operation: &str,
    send: F,
) -> crate::error::Result<Vec<crate::redrive::ports::EntryFailure>>
where
    F: FnMut(&'e [crate::redrive::ports::Outgoing]) -> Fut,
    Fut: std::future::Future<Output = crate::error::Result<Vec<crate::redrive::ports::EntryFailure>>>,
{
    let sizes: Vec<usize> = entries
        .iter()
        .map(crate::redrive::message::entry_size)
        .collect();
    send_in_runs(entries, (&sizes, max), operation, send).await
}

/// A batch sent as runs of entries that each fit one request (`max` bytes in all, each
/// entry of `sizes`, see [`crate::redrive::message::batch_runs`]), one call per run. Once
/// a run has gone, a later run's failed call fails only its own entries, so what was sent
/// is never sent again; a failure of the first call is the whole call's.
pub(crate) async fn send_in_runs<'e, F, Fut>(
    entries: &'e [crate::redrive::ports::Outgoing],
    (sizes, max): (&[usize], usize),
    operation: &str,
    mut send: F,
) -> crate::error::Result<Vec<crate::redrive::ports::EntryFailure>>
where
    F: FnMut(&'e [crate::redrive::ports::Outgoing]) -> Fut,
    Fut: std::future::Future<Output = crate::error::Result<Vec<crate::redrive::ports::EntryFailure>>>,
{
    let mut failed = Vec::new();
    for (n, run) in crate::redrive::message::batch_runs(sizes, max)
        .into_iter()
        .enumerate()
    {
        match send(&entries[run.clone()]).await {
            Ok(f) => failed.extend(f),
            Err(e) if n == 0 => return Err(e),
            Err(e) => {
                failed.extend(
                    entries[run]
                        .iter()
                        .map(|o| crate::redrive::ports::EntryFailure {
                            id: o.id.clone(),
                            code: e.code().unwrap_or(operation).to_owned(),
                            message: e.to_string(),
                            sender_fault: !e.is_retryable(),
                        }),
                )
            }
        }
    }
    Ok(failed)
}

/// Where dlq-redrive publishes dead letters again: SNS topics and EventBridge buses.
pub struct Republisher {
    pub sns: SnsNotifier,
    pub events: EventBridge,
}

impl crate::redrive::ports::Republish for Republisher {
    async fn publish_batch(
        &self,
        topic_arn: &str,
        entries: &[crate::redrive::ports::Outgoing],
    ) -> crate::error::Result<Vec<crate::redrive::ports::EntryFailure>> {
        self.sns.publish_batch(topic_arn, entries).await
    }

    async fn put_events(
        &self,
        bus: &str,
        entries: &[crate::redrive::ports::Outgoing],
    ) -> crate::error::Result<Vec<crate::redrive::ports::EntryFailure>> {
        self.events.put_events(bus, entries).await
    }
}
