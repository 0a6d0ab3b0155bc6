//! CodeDeploy `AfterAllowTraffic` hook: wires the configuration and AWS clients to the
//! post-traffic gate. A bake longer than one run continues in an asynchronous invoke of
//! this same function, whose payload carries the state; only the run that decides reports.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollgate::adapters::HookClients;
use rollgate::adapters::continuation::{BakeClients, SelfInvoke};
use rollgate::config::{PostTrafficConfig, ProcessEnv};
use rollgate::failure::Failure;
use rollgate::hook::{self, HookEvent};
use rollgate::post_traffic::{COMPONENT, PostTraffic, split_continuation};
use rollgate::report::{ReportSlot, install_panic_reporter};
use serde_json::Value;

static SLOT: ReportSlot = ReportSlot::new();

struct Deps {
    hook: HookClients,
    bake: BakeClients,
    config: PostTrafficConfig,
}

async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let (payload, ctx) = event.into_parts();
    let parsed = HookEvent::from_value(&payload)?;
    let (event, resume) = split_continuation(payload)?;
    let (margin, max_run) = (deps.config.report_margin, deps.config.max_run);
    let deadline = hook::run_deadline(ctx.deadline, margin, max_run);
    let continuation = SelfInvoke {
        deployments: &deps.hook.deployments,
        lambda: &deps.bake.lambda,
        function: deps.config.continue_in(&ctx.invoked_function_arn),
    };
    let mut gate = PostTraffic::new(deps.bake.ports(&continuation), event, resume);
    gate.max_run = max_run;
    // An unreported decision fails the invocation so that Lambda's async retry reports.
    hook::run_gate(&deps.hook.frame(COMPONENT, &SLOT), &gate, parsed, deadline)
        .await
        .into_result()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = PostTrafficConfig::read(&ProcessEnv)?;
    let aws = rollgate::init(&config.common).await;
    let hook = HookClients::new(&aws, &config.policy_prefix, config.common.topic_arn.clone())
        .with_chat_topic(config.common.chat_topic_arn.clone())
        .with_ledger(&aws, config.ledger_table.clone());
    install_panic_reporter(&SLOT, hook.deployments.clone());
    let bake = BakeClients::new(&aws, config.ledger_table.clone());
    let deps = Deps { hook, bake, config };
    lambda_runtime::run(service_fn(|event| handle(&deps, event))).await
}
