//! `status [FUNCTION]`: per alias, what it serves now (Lambda), the latest release, a
//! freeze or rollout, and the last decisions rollgate recorded (the ledger).

use crate::args::StatusArgs;
use crate::context::Context;
use crate::error::Result;
use crate::out;
use crate::view::{self, Entry};
use rollgate::clock::{epoch_ms, utc};
use rollgate::rollback::ports::Ledger;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Decisions shown per alias.
const LAST: usize = 3;

#[derive(Debug, Serialize)]
pub struct AliasStatus {
    pub function: String,
    pub alias: String,
    /// `None`: the alias does not exist (any more).
    pub version: Option<String>,
    pub weights: BTreeMap<String, f64>,
    pub latest_release: Option<Entry>,
    /// A freeze in force: until when, by whom.
    pub frozen: Option<String>,
    pub rollout: Option<Entry>,
    pub last_decisions: Vec<Entry>,
}

pub async fn run(ctx: &Context, a: &StatusArgs) -> Result<()> {
    let targets = targets(ctx, a.function.as_deref()).await?;
    let mut all = Vec::new();
    for (function, alias) in targets {
        all.push(one(ctx, function, alias).await?);
    }
    if ctx.json {
        out::json(&all);
        return Ok(());
    }
    if all.is_empty() {
        println!("rollgate has recorded no release here yet");
        return Ok(());
    }
    println!("{}", render(&all));
    Ok(())
}

/// The `(function, alias)` pairs asked about: one alias, every alias of a function the
/// ledger recorded, or every one of the account.
pub async fn targets(ctx: &Context, function: Option<&str>) -> Result<Vec<(String, String)>> {
    let Some(text) = function else {
        return Ok(ctx.ledger.tracked().await?);
    };
    let (function, alias) = out::target(text)?;
    if let Some(alias) = alias {
        return Ok(vec![(function, alias)]);
    }
    // The alias index the ledger keeps per function (`fn#<function>` / `alias#<alias>`).
    let mut aliases: Vec<(String, String)> = ctx
        .ledger
        .aliases(&function)
        .await?
        .into_iter()
        .map(|a| (function.clone(), a))
        .collect();
    aliases.sort();
    aliases.dedup();
    Ok(aliases)
}

async fn one(ctx: &Context, function: String, alias: String) -> Result<AliasStatus> {
    let (state, rows) = tokio::join!(
        ctx.lambda.alias_state(&function, &alias),
        ctx.ledger.alias_rows(&function, &alias)
    );
    let (state, rows) = (state?, rows?);
    let entries = view::newest_first(rows.iter().filter_map(|r| view::entry(&alias, r)).collect());
    let pick = |kind: &str| entries.iter().find(|e| e.kind == kind).cloned();
    let now = epoch_ms();
    let frozen = entries
        .iter()
        .find(|e| e.kind == "freeze")
        .and_then(|e| {
            e.row
                .get("until_ms")
                .and_then(Value::as_i64)
                .map(|u| (u, e))
        })
        .filter(|(until, _)| *until > now)
        .map(|(until, e)| {
            format!(
                "until {} by {}",
                utc(until),
                e.row["by"].as_str().unwrap_or("?")
            )
        });
    let decisions = entries
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                "rollback" | "stop" | "request" | "shift" | "rollout-step" | "gate"
            )
        })
        .take(LAST)
        .cloned()
        .collect();
    Ok(AliasStatus {
        version: state.as_ref().map(|s| s.version.clone()),
        weights: state.map(|s| s.weights).unwrap_or_default(),
        latest_release: pick("release"),
        rollout: pick("rollout"),
        frozen,
        last_decisions: decisions,
        function,
        alias,
    })
}

fn render(all: &[AliasStatus]) -> String {
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            let weights = s
                .weights
                .iter()
                .map(|(v, w)| format!("{v}={:.0}%", w * 100.0))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                s.function.clone(),
                s.alias.clone(),
                s.version.clone().unwrap_or_else(|| "(no alias)".into()),
                if weights.is_empty() {
                    "-".into()
                } else {
                    weights
                },
                s.frozen.clone().unwrap_or_else(|| "-".into()),
                s.latest_release
                    .as_ref()
                    .map_or("-".into(), |e| e.summary.clone()),
            ]
        })
        .collect();
    let mut text = out::table(
        &[
            "FUNCTION",
            "ALIAS",
            "VERSION",
            "WEIGHTS",
            "FROZEN",
            "LATEST RELEASE",
        ],
        &rows,
    );
    for s in all {
        if let Some(r) = &s.rollout {
            text.push_str(&format!("\n\n{}:{} {}", s.function, s.alias, r.summary));
        }
        if s.last_decisions.is_empty() {
            continue;
        }
        text.push_str(&format!("\n\n{}:{} last decisions:", s.function, s.alias));
        for e in &s.last_decisions {
            text.push_str(&format!(
                "\n  {}  {:<12}  {}",
                utc(e.at_ms),
                e.kind,
                e.summary
            ));
        }
    }
    text
}
