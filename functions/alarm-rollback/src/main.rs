//! EventBridge alarm state changes (and CloudWatch Lambda actions, SNS alarm
//! notifications) → stop or roll back the release; CodeDeploy state changes → ledger;
//! an operator's requests (rollback now, freeze, unfreeze) → the same claims.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollgate::adapters::cloudwatch_alarms::CloudWatchAlarms;
use rollgate::adapters::dynamodb::DynamoLedger;
use rollgate::adapters::{AwsReleases, CodeDeploy, Lambda, SnsNotifier, SsmPolicies};
use rollgate::config::{ProcessEnv, RollbackConfig};
use rollgate::failure::Failure;
use rollgate::rollback::run::{self, Deps, Settings};
use serde_json::Value;

struct Clients {
    ledger: DynamoLedger,
    tags: CloudWatchAlarms,
    releases: AwsReleases,
    policies: SsmPolicies,
    announcer: SnsNotifier,
    config: RollbackConfig,
}

async fn handle(c: &Clients, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let (payload, ctx) = event.into_parts();
    let deps = Deps {
        ledger: &c.ledger,
        tags: &c.tags,
        releases: &c.releases,
        policies: &c.policies,
        announcer: &c.announcer,
        settings: Settings::new(&c.config, &ctx.invoked_function_arn)
            .with_request_id(ctx.request_id.clone()),
    };
    run::handle_payload(&deps, &payload).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = RollbackConfig::read(&ProcessEnv)?;
    let aws = rollgate::init(&config.common).await;
    let clients = Clients {
        ledger: DynamoLedger::new(aws.dynamodb(), config.ledger_table.clone()),
        tags: CloudWatchAlarms::new(aws.cloudwatch()),
        releases: AwsReleases::new(CodeDeploy::new(aws.codedeploy()), Lambda::new(aws.lambda())),
        policies: SsmPolicies::new(aws.ssm(), config.policy_prefix.clone()),
        announcer: SnsNotifier::new(aws.sns(), config.common.topic_arn.clone())
            .with_chat_topic(config.common.chat_topic_arn.clone()),
        config,
    };
    lambda_runtime::run(service_fn(|event| handle(&clients, event))).await
}
