//! `example-app`: the consumer function rollgate deploys in the tests and the demo.
//!
//! A release's behaviour is its code. The crate builds one binary per behaviour so that
//! v1 and v2 of one function can differ the way real releases do:
//!
//! | binary | answers |
//! |---|---|
//! | `example-app` | `{"status":"ok","echo":<payload>}` (or as `MODE` says) |
//! | `example-app-broken` | a function error, `errorType` `BrokenRelease` |
//! | `example-app-degraded` | `{"status":"degraded"}` |
//!
//! Under the local emulator a version's `Handler` names its binary; on AWS each
//! behaviour is a separate build. `DELAY_MS` or a payload field `sleep_ms` delays the
//! answer (for budget and latency tests).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Healthy,
    Broken,
    Degraded,
}

impl Mode {
    /// `MODE` from the environment, else `default`.
    pub fn from_env(default: Mode) -> Mode {
        match std::env::var("MODE").as_deref() {
            Ok("broken") => Mode::Broken,
            Ok("degraded") => Mode::Degraded,
            Ok("healthy") => Mode::Healthy,
            _ => default,
        }
    }
}

#[derive(Debug)]
struct BrokenRelease(String);

impl std::fmt::Display for BrokenRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BrokenRelease {}

/// Handle one event in `mode`.
pub async fn handle(mode: Mode, payload: Value) -> Result<Value, Error> {
    let delay = payload
        .get("sleep_ms")
        .and_then(Value::as_u64)
        .or_else(|| std::env::var("DELAY_MS").ok().and_then(|d| d.parse().ok()))
        .unwrap_or(0);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay.min(60_000))).await;
    }
    match mode {
        Mode::Broken => Err(Box::new(BrokenRelease("this release is broken".into()))),
        Mode::Degraded => Ok(json!({"status": "degraded"})),
        Mode::Healthy => Ok(json!({"status": "ok", "echo": payload})),
    }
}

/// Run the Lambda runtime loop in `mode`.
pub async fn run(mode: Mode) -> Result<(), Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        handle(mode, event.payload)
    }))
    .await
}
