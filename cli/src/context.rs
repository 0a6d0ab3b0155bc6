//! What every command uses: the stack's names, the SDK clients, the output mode, and the
//! one way rollgate's functions are asked to act.

use crate::args::Global;
use crate::error::{CliError, Result};
use rollgate::adapters::{Aws, CloudWatch, DynamoLedger, Lambda};
use rollgate::ports::Functions;
use serde_json::Value;
use std::time::Duration;

pub struct Context {
    pub stack: String,
    pub json: bool,
    pub ledger: DynamoLedger,
    pub lambda: Lambda,
    pub cloudwatch: CloudWatch,
}

/// SDK attempts per call: the standard retry of the AWS CLI.
const ATTEMPTS: u32 = 3;

impl Context {
    pub async fn load(global: &Global) -> Self {
        let aws = Aws::load(ATTEMPTS, std::env::var("AWS_CA_BUNDLE").ok().as_deref()).await;
        Context {
            stack: global.stack.clone(),
            json: global.json,
            ledger: DynamoLedger::new(aws.dynamodb(), format!("{}-ledger", global.stack)),
            lambda: Lambda::new(aws.lambda()),
            cloudwatch: CloudWatch::new(aws.cloudwatch()),
        }
    }

    /// The stack's function of that role: `alarm-rollback`, `dlq-redrive`, `rollout`.
    pub fn function(&self, role: &str) -> String {
        format!("{}-{role}", self.stack)
    }

    /// Invoke the stack's `role` function synchronously with `payload`; its answer, or
    /// its failure with the `errorType` it named.
    pub async fn invoke(&self, role: &str, payload: &Value, timeout: Duration) -> Result<Value> {
        let function = self.function(role);
        let out = self
            .lambda
            .invoke(
                &function,
                "$LATEST",
                payload.to_string().into_bytes(),
                timeout,
            )
            .await?;
        let body: Value = serde_json::from_slice(&out.payload).unwrap_or(Value::Null);
        if out.function_error.is_some() {
            let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
            return Err(CliError::Function {
                function,
                error_type: text("errorType")
                    .or(out.error_type)
                    .unwrap_or_else(|| "Unhandled".into()),
                message: text("errorMessage").unwrap_or_else(|| body.to_string()),
            });
        }
        Ok(body)
    }
}
