//! EventBridge alarm state changes (and CloudWatch Lambda actions, SNS alarm
//! notifications) → stop or roll back the release; CodeDeploy state changes → ledger.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollgate::adapters::cloudwatch_alarms::CloudWatchAlarms;
use rollgate::adapters::dynamodb::DynamoLedger;
use rollgate::adapters::rollback::{AwsReleases, RollbackAnnouncer};
use rollgate::adapters::{CodeDeploy, SsmPolicies, ssm::DEFAULT_PREFIX};
use rollgate::failure::{Class, Failure};
use rollgate::rollback::event::{self, Inbound};
use rollgate::rollback::run::{self, Deps, Settings};
use serde_json::{Value, json};

struct Clients {
    ledger: DynamoLedger,
    tags: CloudWatchAlarms,
    releases: AwsReleases,
    policies: SsmPolicies,
    announcer: RollbackAnnouncer,
}

async fn handle(c: &Clients, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let (payload, ctx) = event.into_parts();
    let settings = Settings::from_env(&ctx.invoked_function_arn);
    // A payload that is none of the accepted shapes, or that comes from another account
    // or region, is an error naming what is wrong, before anything is done.
    let inbound = event::parse_at_home(&payload, &settings.home)?;
    let deps = Deps {
        ledger: &c.ledger,
        tags: &c.tags,
        releases: &c.releases,
        policies: &c.policies,
        announcer: &c.announcer,
        settings,
    };
    let mut results = Vec::new();
    let mut outcomes_all = Vec::new();
    for item in inbound {
        match item {
            Inbound::Deployment(change) => {
                results.push(run::record(&c.ledger, &c.releases, &change).await?);
            }
            Inbound::Alarm(alarm) => {
                let outcomes = run::handle_alarm(&deps, &alarm).await;
                results.push(json!({"alarm": alarm.alarm_name, "outcomes": outcomes}));
                outcomes_all.extend(outcomes);
            }
        }
    }
    // A failed action fails the invocation: Lambda's asynchronous retry delivers the
    // event again, and the retry redoes only what failed.
    if let Some(why) = run::retry_needed(&outcomes_all) {
        return Err(Failure::new(Class::ActionFailed, why));
    }
    Ok(json!({"results": results}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollgate::logging::init();
    let aws = rollgate::aws::Aws::from_env().await;
    let table = std::env::var("ROLLGATE_LEDGER_TABLE")
        .map_err(|_| "configuration: ROLLGATE_LEDGER_TABLE is not set")?;
    let clients = Clients {
        ledger: DynamoLedger::new(aws.dynamodb(), table),
        tags: CloudWatchAlarms::new(aws.cloudwatch()),
        releases: AwsReleases::new(CodeDeploy::new(aws.codedeploy()), aws.lambda()),
        policies: SsmPolicies::new(
            aws.ssm(),
            std::env::var("ROLLGATE_POLICY_PREFIX").unwrap_or_else(|_| DEFAULT_PREFIX.to_owned()),
        ),
        announcer: RollbackAnnouncer::new(
            aws.sns(),
            std::env::var("ROLLGATE_TOPIC_ARN")
                .ok()
                .filter(|t| !t.is_empty()),
        ),
    };
    lambda_runtime::run(service_fn(|event| handle(&clients, event))).await
}
