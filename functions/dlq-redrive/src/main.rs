//! DLQ redrive, invoked by hand: wires SQS, Lambda and SNS to the redrive engine.
//! Request and report: docs/redrive.md.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollgate::adapters::{EventBridge, Lambda, Republisher, S3, SnsNotifier, Sqs};
use rollgate::config::{ProcessEnv, RedriveConfig};
use rollgate::failure::Failure;
use rollgate::redrive::{self, AllowList, Redrive};
use rollgate::scope::Home;
use serde_json::Value;

struct Deps {
    queues: Sqs,
    lambda: Lambda,
    notifier: SnsNotifier,
    republisher: Republisher,
    objects: S3,
    allow: AllowList,
    config: RedriveConfig,
}

async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let (payload, ctx) = event.into_parts();
    let common = &deps.config.common;
    let home = Home::from_parts(
        &ctx.invoked_function_arn,
        common.account_id.as_deref(),
        common.region.as_deref(),
    );
    let engine = Redrive {
        queues: &deps.queues,
        lambda: &deps.lambda,
        republish: &deps.republisher,
        objects: &deps.objects,
        allow: &deps.allow,
        home: &home,
    };
    redrive::handle_request(&engine, &deps.notifier, &payload, ctx.deadline).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = RedriveConfig::read(&ProcessEnv)?;
    let aws = rollgate::init(&config.common).await;
    let deps = Deps {
        queues: Sqs::new(aws.sqs()),
        lambda: Lambda::new(aws.lambda()),
        notifier: SnsNotifier::new(aws.sns(), config.common.topic_arn.clone())
            .with_chat_topic(config.common.chat_topic_arn.clone()),
        republisher: Republisher {
            sns: SnsNotifier::new(aws.sns(), None),
            events: EventBridge::new(aws.eventbridge()),
        },
        objects: S3::new(aws.s3()),
        allow: AllowList::parse(&config.allow),
        config,
    };
    lambda_runtime::run(service_fn(|event| handle(&deps, event))).await
}
