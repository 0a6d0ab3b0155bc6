//! CodeDeploy `AfterAllowTraffic` hook: wires the AWS clients to the post-traffic gate.
//! A bake longer than one run continues in an asynchronous invoke of this same function,
//! whose payload carries the state; only the invocation that decides reports.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollgate::adapters::cloudwatch::CloudWatch;
use rollgate::adapters::http::Http;
use rollgate::adapters::{CodeDeploy, SnsNotifier, SsmPolicies, ssm::DEFAULT_PREFIX};
use rollgate::failure::{Class, Failure};
use rollgate::hook::{self, DEFAULT_REPORT_MARGIN, Hook, HookEvent};
use rollgate::post_traffic::{BakeState, COMPONENT, CONTINUATION_KEY, Continuation, PostTraffic};
use rollgate::report::{ReportSlot, install_panic_reporter};
use serde_json::Value;
use std::time::Duration;

static SLOT: ReportSlot = ReportSlot::new();

struct Deps {
    deployments: CodeDeploy,
    policies: SsmPolicies,
    notifier: SnsNotifier,
    metrics: CloudWatch,
    http: Http,
    lambda: aws_sdk_lambda::Client,
    margin: Duration,
    max_run: Option<Duration>,
    self_name: Option<String>,
}

/// Continuation through Lambda (`Invoke`, `Event`) and CodeDeploy (`GetDeployment`).
struct SelfInvoke<'a> {
    deps: &'a Deps,
    function: String,
}

impl Continuation for SelfInvoke<'_> {
    async fn deployment_started_ms(&self, deployment_id: &str) -> rollgate::Result<i64> {
        let out = self
            .deps
            .deployments
            .client()
            .get_deployment()
            .deployment_id(deployment_id)
            .send()
            .await
            .map_err(|e| rollgate::Error::aws("codedeploy", "GetDeployment", e))?;
        let info = out.deployment_info();
        let time = info
            .and_then(|i| i.create_time().or(i.start_time()))
            .ok_or_else(|| rollgate::Error::DeploymentNotFound(deployment_id.to_owned()))?;
        Ok(time.secs() * 1000 + i64::from(time.subsec_nanos() / 1_000_000))
    }

    async fn continue_later(&self, payload: Value) -> rollgate::Result<()> {
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        self.deps
            .lambda
            .invoke()
            .function_name(&self.function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(body))
            .send()
            .await
            .map_err(|e| rollgate::Error::aws("lambda", "Invoke", e))?;
        tracing::info!(function = %self.function, "bake handed to a new invocation");
        Ok(())
    }
}

async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let (payload, ctx) = event.into_parts();
    let parsed = HookEvent::from_value(&payload)?;
    let resume = match payload.get(CONTINUATION_KEY) {
        None => None,
        Some(state) => Some(
            serde_json::from_value::<BakeState>(state.clone()).map_err(|e| {
                Failure::new(
                    Class::InvalidEvent,
                    format!("invalid {CONTINUATION_KEY}: {e}"),
                )
            })?,
        ),
    };
    let mut event = payload.clone();
    if let Value::Object(map) = &mut event {
        map.remove(CONTINUATION_KEY);
    }
    let mut deadline = hook::hard_deadline(ctx.deadline, deps.margin, Duration::from_secs(900));
    if let Some(cap) = deps.max_run {
        deadline = deadline.min(std::time::Instant::now() + cap);
    }
    // Which function to continue in: explicit setting, else the ARN we were invoked by
    // (keeps the same version or alias), else the runtime's function name.
    let function = deps
        .self_name
        .clone()
        .or_else(|| Some(ctx.invoked_function_arn.clone()).filter(|a| a.starts_with("arn:")))
        .or_else(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
        .unwrap_or_default();
    let continuation = SelfInvoke { deps, function };
    let mut gate = PostTraffic::new(&deps.metrics, &continuation, &deps.http, event, resume);
    gate.max_run = deps.max_run;
    let frame = Hook {
        component: COMPONENT,
        deployments: &deps.deployments,
        policies: &deps.policies,
        notifier: &deps.notifier,
        slot: &SLOT,
    };
    // An unreported decision fails the invocation so that Lambda's async retry reports.
    hook::run_gate(&frame, &gate, parsed, deadline)
        .await
        .into_result()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollgate::logging::init();
    let aws = rollgate::aws::Aws::from_env().await;
    let deployments = CodeDeploy::new(aws.codedeploy());
    install_panic_reporter(&SLOT, deployments.clone());
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let deps = Deps {
        deployments,
        policies: SsmPolicies::new(
            aws.ssm(),
            env("ROLLGATE_POLICY_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.to_owned()),
        ),
        notifier: SnsNotifier::new(aws.sns(), env("ROLLGATE_TOPIC_ARN")),
        metrics: CloudWatch::new(aws.cloudwatch()),
        http: Http::new(),
        lambda: aws.lambda(),
        margin: env("ROLLGATE_REPORT_MARGIN_MS")
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_REPORT_MARGIN),
        max_run: env("ROLLGATE_MAX_RUN_SECONDS")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64),
        self_name: env("ROLLGATE_SELF_FUNCTION"),
    };
    lambda_runtime::run(service_fn(|event| handle(&deps, event))).await
}
