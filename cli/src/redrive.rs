//! `redrive SOURCE`: asks dlq-redrive to move dead letters back and invokes each
//! continuation it returns until the job is done, showing progress (moved, remaining,
//! rate) on stderr; prints the last report at the end.

use crate::args::RedriveArgs;
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::out;
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Lambda's longest run, and a minute more for the answer.
const TIMEOUT: Duration = Duration::from_secs(16 * 60);

/// The request dlq-redrive takes (docs/redrive.md).
pub fn request(a: &RedriveArgs) -> Result<Value> {
    let mut req = json!({"source": a.source});
    let mut set = |k: &str, v: Value| {
        req[k] = v;
    };
    if let Some(d) = &a.destination {
        set("destination", json!(d));
    }
    if let Some(r) = a.rate {
        set("rate", json!(r));
    }
    if let Some(m) = a.max_messages {
        set("max_messages", json!(m));
    }
    if let Some(s) = a.max_run_seconds {
        set("max_run_seconds", json!(s));
    }
    if a.dry_run {
        set("dry_run", json!(true));
    }
    if a.copy {
        set("mode", json!("copy"));
    }
    if !a.filters.is_empty() {
        let mut attrs = serde_json::Map::new();
        for f in &a.filters {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| CliError::Usage(format!("--filter {f:?}: expected NAME=VALUE")))?;
            attrs.insert(k.to_owned(), json!(v));
        }
        set("filter", json!({"attributes": attrs}));
    }
    Ok(req)
}

pub async fn run(ctx: &Context, a: &RedriveArgs) -> Result<()> {
    let mut req = request(a)?;
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut runs = 0;
    let report = loop {
        let report = ctx.invoke("dlq-redrive", &req, TIMEOUT).await?;
        runs += 1;
        progress(&report, started.elapsed(), tty);
        match report.get("continuation") {
            Some(next) if !next.is_null() => req = next.clone(),
            _ => break report,
        }
    };
    if tty {
        eprintln!();
    }
    if ctx.json {
        out::json(&json!({"runs": runs, "report": report}));
    } else {
        println!("{}", summary(&report, runs));
    }
    match report.get("failed").and_then(Value::as_u64) {
        Some(n) if n > 0 => Err(CliError::NothingDone(format!(
            "{n} message(s) could not be moved and are still in the DLQ (see failures)"
        ))),
        _ => Ok(()),
    }
}

fn count(r: &Value, k: &str) -> u64 {
    r.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// `[#######-------] moved 700 / remaining 300 · 212 msg/s`, redrawn in place on a
/// terminal, a line per run otherwise.
pub fn progress_line(report: &Value, elapsed: Duration) -> String {
    let moved = report
        .pointer("/totals/moved")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| count(report, "moved"))
        + report
            .pointer("/totals/copied")
            .and_then(Value::as_u64)
            .unwrap_or(0);
    let remaining = count(report, "remaining");
    let total = moved + remaining;
    let width = 30;
    let done = if total == 0 {
        width
    } else {
        (moved as usize * width) / total as usize
    };
    let rate = moved as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "[{}{}] moved {moved} / remaining {remaining} · {rate:.0} msg/s",
        "#".repeat(done),
        "-".repeat(width - done)
    )
}

fn progress(report: &Value, elapsed: Duration, tty: bool) {
    let line = progress_line(report, elapsed);
    let mut err = std::io::stderr();
    if tty {
        let _ = write!(err, "\r{line}");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

fn summary(r: &Value, runs: u32) -> String {
    // A continued job's counts are its last run's; `totals` carries the whole job's.
    let total = |k: &str| r.pointer(&format!("/totals/{k}")).and_then(Value::as_u64);
    let mut rows: Vec<Vec<String>> = [
        "moved",
        "copied",
        "would_move",
        "filtered",
        "failed",
        "duplicates",
        "remaining",
    ]
    .iter()
    .filter(|k| r.get(**k).is_some())
    .map(|k| {
        let n = total(k).unwrap_or_else(|| count(r, k));
        vec![(*k).to_owned(), n.to_string()]
    })
    .collect();
    rows.push(vec!["runs".into(), runs.to_string()]);
    rows.push(vec![
        "stopped".into(),
        r["stopped"].as_str().unwrap_or("-").into(),
    ]);
    if let Some(d) = r.get("destinations").and_then(Value::as_object) {
        for (arn, n) in d {
            let name = arn.rsplit(':').next().unwrap_or(arn);
            rows.push(vec![format!("  to {name}"), n.to_string()]);
        }
    }
    let mut text = out::table(&["", ""], &rows).trim_start().to_owned();
    if let Some(fails) = r.get("failures").and_then(Value::as_array) {
        for f in fails.iter().take(10) {
            text.push_str(&format!("\n  failed {}: {}", f["message_id"], f["message"]));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_moved_remaining_and_rate() {
        let r = json!({"moved": 100, "remaining": 300, "totals": {"runs": 2, "moved": 100}});
        let line = progress_line(&r, Duration::from_secs(2));
        assert_eq!(
            line,
            format!(
                "[{}{}] moved 100 / remaining 300 · 50 msg/s",
                "#".repeat(7),
                "-".repeat(23)
            )
        );
        let done = progress_line(&json!({"moved": 0, "remaining": 0}), Duration::ZERO);
        assert!(done.starts_with(&format!("[{}]", "#".repeat(30))), "{done}");
    }

    #[test]
    fn options_become_the_request() {
        let a = RedriveArgs {
            source: "orders-dlq".into(),
            destination: Some("orders".into()),
            rate: Some(50.0),
            max_messages: Some(10),
            filters: vec!["tenant=acme".into()],
            dry_run: true,
            copy: true,
            max_run_seconds: Some(30),
        };
        let req = request(&a).unwrap();
        assert_eq!(
            req,
            json!({"source": "orders-dlq", "destination": "orders", "rate": 50.0,
                "max_messages": 10, "max_run_seconds": 30, "dry_run": true, "mode": "copy",
                "filter": {"attributes": {"tenant": "acme"}}})
        );
        let bad = RedriveArgs {
            filters: vec!["tenant".into()],
            ..a
        };
        assert_eq!(request(&bad).unwrap_err().code(), 2);
    }
}
