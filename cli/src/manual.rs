//! `rollback`, `freeze`, `unfreeze`: requests to alarm-rollback, which carries them out
//! through the claims, allow-list and announcements it uses for alarms.

use crate::args::{FreezeArgs, ManualArgs};
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::out;
use serde_json::{Value, json};
use std::time::Duration;

/// alarm-rollback answers within its own timeout; this is a bound, not a wait.
const TIMEOUT: Duration = Duration::from_secs(120);

pub async fn rollback(ctx: &Context, a: &ManualArgs) -> Result<()> {
    send(ctx, "rollback", a, None).await
}

pub async fn freeze(ctx: &Context, a: &FreezeArgs) -> Result<()> {
    let minutes = out::minutes(&a.duration)?;
    send(ctx, "freeze", &a.manual, Some(minutes)).await
}

pub async fn unfreeze(ctx: &Context, a: &ManualArgs) -> Result<()> {
    send(ctx, "unfreeze", a, None).await
}

/// The request alarm-rollback takes (see `rollgate::rollback::manual`).
pub fn request(
    action: &str,
    a: &ManualArgs,
    minutes: Option<u64>,
    request_id: &str,
) -> Result<Value> {
    let (function, alias) = out::target(&a.target)?;
    let mut req = json!({"action": action, "function": function, "reason": a.reason,
        "requester": out::requester(a.requester.as_deref()), "request_id": request_id});
    if let Some(alias) = alias {
        req["alias"] = json!(alias);
    }
    if let Some(m) = minutes {
        req["minutes"] = json!(m);
    }
    Ok(req)
}

async fn send(ctx: &Context, action: &str, a: &ManualArgs, minutes: Option<u64>) -> Result<()> {
    let req = request(action, a, minutes, &out::request_id())?;
    let answer = ctx.invoke("alarm-rollback", &req, TIMEOUT).await?;
    let outcomes: Vec<Value> = answer
        .pointer("/results/0/outcomes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ctx.json {
        out::json(&json!({"request": req, "outcomes": outcomes}));
    } else {
        println!("{}", outcome_table(&outcomes));
    }
    if outcomes.iter().any(|o| o["acted"] == true) {
        return Ok(());
    }
    Err(CliError::NothingDone(format!(
        "{action}: nothing was changed (see the reason above)"
    )))
}

fn outcome_table(outcomes: &[Value]) -> String {
    let s = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                s(o, "function"),
                s(o, "alias"),
                s(o, "action"),
                if o["acted"] == true { "yes" } else { "no" }.into(),
                s(o, "reason"),
            ]
        })
        .collect();
    out::table(&["FUNCTION", "ALIAS", "ACTION", "DONE", "REASON"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the CLI sends is what alarm-rollback's parser takes.
    #[test]
    fn the_requests_are_what_alarm_rollback_accepts() {
        let a = ManualArgs {
            target: "orders:live".into(),
            reason: "incident 42".into(),
            requester: Some("alice".into()),
        };
        for (action, minutes) in [
            ("rollback", None),
            ("freeze", Some(120)),
            ("unfreeze", None),
        ] {
            let req = request(action, &a, minutes, "cli-1").unwrap();
            let parsed = rollgate::rollback::manual::parse(&req).unwrap();
            assert_eq!(parsed.action.name(), action);
            assert_eq!(parsed.alias.as_deref(), Some("live"));
            assert_eq!(parsed.request_id.as_deref(), Some("cli-1"));
        }
        let all = ManualArgs {
            target: "orders".into(),
            ..a
        };
        let req = request("rollback", &all, None, "cli-2").unwrap();
        assert_eq!(rollgate::rollback::manual::parse(&req).unwrap().alias, None);
    }
}
