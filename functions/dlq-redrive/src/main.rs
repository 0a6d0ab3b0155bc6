//! DLQ redrive, invoked by hand: wires SQS, Lambda and SNS to the redrive engine.
//! Request and report: docs/redrive.md.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollgate::adapters::{Lambda, SnsNotifier, Sqs};
use rollgate::failure::{Class, Failure};
use rollgate::hook::hard_deadline;
use rollgate::redrive::{self, AllowList, Limits, Redrive, Request};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Kept back from Lambda's deadline for releasing held messages and reporting.
const REPORT_MARGIN: Duration = Duration::from_secs(3);
/// Used when the runtime gives no usable deadline (local runtimes).
const FALLBACK: Duration = Duration::from_secs(900);

struct Deps {
    queues: Sqs,
    lambda: Lambda,
    notifier: SnsNotifier,
    allow: AllowList,
}

async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let (payload, ctx) = event.into_parts();
    // A bad request fails the invocation, naming the field, before any AWS call.
    let request = Request::parse(&payload)?;
    let hard = hard_deadline(ctx.deadline, REPORT_MARGIN, FALLBACK);
    let limits = Limits::new(
        Instant::now(),
        hard,
        request.max_run_seconds.map(Duration::from_secs),
    );
    let engine = Redrive {
        queues: &deps.queues,
        lambda: &deps.lambda,
        allow: &deps.allow,
    };
    let report = engine.run(&request, limits).await.map_err(refusal)?;
    tracing::info!(
        report = %rollgate::limits::fit_json(
            &serde_json::to_value(report.log_view()).unwrap_or_default(),
            rollgate::limits::LOG_RECORD_MAX_BYTES,
            false,
        ),
        "redrive finished"
    );
    redrive::announce(&deps.notifier, &report).await;
    Ok(serde_json::to_value(report).unwrap_or_default())
}

/// The engine refuses what the request names but may not touch (outside the allow-list,
/// the source itself as destination...) as an invalid event: for a request, that is an
/// invalid request.
fn refusal(e: rollgate::Error) -> Failure {
    match e {
        rollgate::Error::InvalidEvent(message) => Failure::new(Class::InvalidRequest, message),
        e => e.into(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollgate::logging::init();
    let aws = rollgate::aws::Aws::from_env().await;
    let deps = Deps {
        queues: Sqs::new(aws.sqs()),
        lambda: Lambda::new(aws.lambda()),
        notifier: SnsNotifier::new(
            aws.sns(),
            std::env::var("ROLLGATE_TOPIC_ARN")
                .ok()
                .filter(|t| !t.is_empty()),
        ),
        allow: AllowList::parse(&std::env::var("ROLLGATE_REDRIVE_ALLOW").unwrap_or_default()),
    };
    lambda_runtime::run(service_fn(|event| handle(&deps, event))).await
}
