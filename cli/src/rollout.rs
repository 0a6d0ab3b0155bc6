//! `rollout start|pause|resume|promote|abort|status FUNCTION[:ALIAS]`: requests to the
//! rollout function (docs/rollout.md); its answer is the rollout as it stands.

use crate::args::RolloutArgs;
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::out;
use rollgate::clock::utc;
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// The request the rollout function takes (`rollgate::rollout::request`).
pub fn request(a: &RolloutArgs) -> Result<Value> {
    let (function, alias) = out::target(&a.target)?;
    let mut req = json!({"action": a.action, "function": function,
        "requester": out::requester(a.requester.as_deref())});
    if let Some(alias) = alias {
        req["alias"] = json!(alias);
    }
    match (&a.version, a.action.as_str()) {
        (Some(v), "start") => req["version"] = json!(v),
        (None, "start") => return Err(CliError::Usage("rollout start needs --version".into())),
        (Some(_), _) => return Err(CliError::Usage("--version belongs to rollout start".into())),
        (None, _) => {}
    }
    if let Some(r) = &a.reason {
        req["reason"] = json!(r);
    }
    Ok(req)
}

pub async fn run(ctx: &Context, a: &RolloutArgs) -> Result<()> {
    let req = request(a)?;
    let answer = ctx.invoke("rollout", &req, TIMEOUT).await?;
    if ctx.json {
        out::json(&answer);
        return Ok(());
    }
    let r = &answer["rollout"];
    if r.is_null() {
        println!("no rollout of {}", a.target);
        return Ok(());
    }
    println!("{}", summary(r));
    if let Some(reason) = answer.pointer("/decision/reason").and_then(Value::as_str) {
        println!("decision: {reason}");
    }
    Ok(())
}

/// One rollout state as a few lines.
pub fn summary(r: &Value) -> String {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("-");
    let step = r.get("step").and_then(Value::as_u64).unwrap_or(0) + 1;
    let steps = r.get("steps").and_then(Value::as_array).map_or(0, Vec::len);
    let mut text = format!(
        "rollout {} of {}:{}: version {} -> {}, {} at step {step} of {steps}",
        s("id"),
        s("function"),
        s("alias"),
        s("from_version"),
        s("to_version"),
        s("status")
    );
    if let Some(t) = r.get("updated_ms").and_then(Value::as_i64) {
        text.push_str(&format!(" (since {}", utc(t)));
        text.push_str(&format!(", asked by {})", s("requester")));
    }
    if !s("reason").is_empty() && s("reason") != "-" {
        text.push_str(&format!("\nreason: {}", s("reason")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requests_are_what_the_rollout_function_accepts() {
        for action in ["start", "pause", "resume", "promote", "abort", "status"] {
            let a = RolloutArgs {
                action: action.into(),
                target: "orders:live".into(),
                version: (action == "start").then(|| "7".into()),
                reason: Some("canary".into()),
                requester: Some("alice".into()),
            };
            let req = request(&a).unwrap();
            let env = rollgate::rollout::request::parse(&req).unwrap();
            assert_eq!(
                (env.function.as_str(), env.alias.as_str()),
                ("orders", "live")
            );
        }
        let no_version = RolloutArgs {
            action: "start".into(),
            target: "orders".into(),
            version: None,
            reason: None,
            requester: None,
        };
        assert_eq!(request(&no_version).unwrap_err().code(), 2);
    }
}
