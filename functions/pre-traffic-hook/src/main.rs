//! CodeDeploy `BeforeAllowTraffic` hook: wires the configuration and AWS clients to the
//! pre-traffic gate.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollgate::adapters::{HookClients, Lambda};
use rollgate::config::{PreTrafficConfig, ProcessEnv};
use rollgate::failure::Failure;
use rollgate::hook::{self, HookEvent};
use rollgate::pre_traffic::{COMPONENT, PreTraffic};
use rollgate::report::{ReportSlot, install_panic_reporter};
use serde_json::Value;

static SLOT: ReportSlot = ReportSlot::new();

struct Deps {
    hook: HookClients,
    functions: Lambda,
    config: PreTrafficConfig,
}

async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let (payload, ctx) = event.into_parts();
    // A malformed event cannot be reported to CodeDeploy: fail, naming the field.
    let event = HookEvent::from_value(&payload)?;
    let deadline = hook::run_deadline(ctx.deadline, deps.config.report_margin, None);
    let gate = PreTraffic {
        functions: &deps.functions,
    };
    // An unreported decision fails the invocation: Lambda's async retry then reports.
    hook::run_gate(&deps.hook.frame(COMPONENT, &SLOT), &gate, event, deadline)
        .await
        .into_result()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = PreTrafficConfig::read(&ProcessEnv)?;
    let aws = rollgate::init(&config.common).await;
    let hook = HookClients::new(&aws, &config.policy_prefix, config.common.topic_arn.clone())
        .with_chat_topic(config.common.chat_topic_arn.clone())
        .with_ledger(&aws, config.ledger_table.clone());
    install_panic_reporter(&SLOT, hook.deployments.clone());
    let deps = Deps {
        hook,
        functions: Lambda::new(aws.lambda()),
        config,
    };
    lambda_runtime::run(service_fn(|event| handle(&deps, event))).await
}
