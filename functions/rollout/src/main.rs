//! Progressive rollouts and the steps Scheduler invokes (docs/rollout.md).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollgate::adapters::{CloudWatch, CodeDeploy, DynamoLedger, Lambda, Scheduler, SnsNotifier};
use rollgate::config::{ProcessEnv, RolloutConfig};
use rollgate::failure::Failure;
use rollgate::rollout::run::{Deps, Settings};
use serde_json::Value;

struct Clients {
    scheduler: Scheduler,
    ledger: DynamoLedger,
    lambda: Lambda,
    policies: rollgate::adapters::SsmPolicies,
    metrics: CloudWatch,
    announcer: SnsNotifier,
    codedeploy: CodeDeploy,
    config: RolloutConfig,
}

async fn handle(c: &Clients, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let (payload, ctx) = event.into_parts();
    let settings = Settings::new(&c.config, &ctx.invoked_function_arn);
    let schedules = c.scheduler.targeting(&settings.schedule_target);
    let deps = Deps {
        store: &c.ledger,
        aliases: &c.lambda,
        schedules: &schedules,
        functions: &c.lambda,
        policies: &c.policies,
        metrics: &c.metrics,
        ledger: &c.ledger,
        announcer: &c.announcer,
        shifts: &c.codedeploy,
        settings,
        clock: &rollgate::clock::SystemClock,
    };
    deps.handle(&payload).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = RolloutConfig::read(&ProcessEnv)?;
    let aws = rollgate::init(&config.common).await;
    let (group, role) = (config.schedule_group.clone(), config.scheduler_role.clone());
    let clients = Clients {
        ledger: DynamoLedger::new(aws.dynamodb(), config.ledger_table.clone()),
        lambda: Lambda::new(aws.lambda()),
        policies: rollgate::adapters::SsmPolicies::new(aws.ssm(), config.policy_prefix.clone()),
        metrics: CloudWatch::new(aws.cloudwatch()),
        announcer: SnsNotifier::new(aws.sns(), config.common.topic_arn.clone())
            .with_chat_topic(config.common.chat_topic_arn.clone()),
        codedeploy: CodeDeploy::new(aws.codedeploy()),
        scheduler: Scheduler::new(aws.scheduler(), group, role),
        config,
    };
    lambda_runtime::run(service_fn(|event| handle(&clients, event))).await
}
