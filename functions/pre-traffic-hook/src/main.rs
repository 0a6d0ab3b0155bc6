//! CodeDeploy `BeforeAllowTraffic` hook: wires the AWS clients to the pre-traffic gate.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollgate::adapters::{CodeDeploy, Lambda, SnsNotifier, SsmPolicies, ssm::DEFAULT_PREFIX};
use rollgate::failure::Failure;
use rollgate::hook::{self, DEFAULT_REPORT_MARGIN, Hook, HookEvent};
use rollgate::pre_traffic::{COMPONENT, PreTraffic};
use rollgate::report::{ReportSlot, install_panic_reporter};
use serde_json::Value;
use std::time::Duration;

static SLOT: ReportSlot = ReportSlot::new();

struct Deps {
    deployments: CodeDeploy,
    functions: Lambda,
    policies: SsmPolicies,
    notifier: SnsNotifier,
    margin: Duration,
}

async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let (payload, ctx) = event.into_parts();
    // A malformed event cannot be reported to CodeDeploy: fail the invocation with a
    // message that names the field, and touch nothing.
    let event = HookEvent::from_value(&payload)?;
    let deadline = hook::hard_deadline(ctx.deadline, deps.margin, Duration::from_secs(900));
    let frame = Hook {
        component: COMPONENT,
        deployments: &deps.deployments,
        policies: &deps.policies,
        notifier: &deps.notifier,
        slot: &SLOT,
    };
    let gate = PreTraffic {
        functions: &deps.functions,
    };
    // An unreported decision fails the invocation: CodeDeploy invokes hooks
    // asynchronously, so Lambda runs it again and that run reports.
    hook::run_gate(&frame, &gate, event, deadline)
        .await
        .into_result()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollgate::logging::init();
    let aws = rollgate::aws::Aws::from_env().await;
    let deployments = CodeDeploy::new(aws.codedeploy());
    install_panic_reporter(&SLOT, deployments.clone());
    let margin = std::env::var("ROLLGATE_REPORT_MARGIN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_REPORT_MARGIN);
    let deps = Deps {
        deployments,
        functions: Lambda::new(aws.lambda()),
        policies: SsmPolicies::new(
            aws.ssm(),
            std::env::var("ROLLGATE_POLICY_PREFIX").unwrap_or_else(|_| DEFAULT_PREFIX.to_owned()),
        ),
        notifier: SnsNotifier::new(
            aws.sns(),
            std::env::var("ROLLGATE_TOPIC_ARN")
                .ok()
                .filter(|t| !t.is_empty()),
        ),
        margin,
    };
    lambda_runtime::run(service_fn(|event| handle(&deps, event))).await
}
