//! `report`: the delivery metrics of the account and of each function, from the ledger;
//! `report DEPLOYMENT --html FILE`: that deployment's page (`rollgate::report_page`), from
//! its ledger rows and its versions' metrics in CloudWatch.

use crate::args::ReportArgs;
use crate::context::Context;
use crate::error::{CliError, Result};
use crate::out;
use rollgate::clock::{epoch_ms, utc};
use rollgate::decision::{CheckResult, Decision, Outcome, Verdict};
use rollgate::dora::{self, Window};
use rollgate::post_traffic::{Metrics, lambda_query};
use rollgate::report_page::{
    self, ReportData, ReportDecision, Series, TimelineEntry, TimelineKind,
};
use rollgate::rollback::delivery;
use rollgate::rollback::ledger::ShiftJudgement;
use serde_json::{Value, json};

pub async fn run(ctx: &Context, a: &ReportArgs) -> Result<()> {
    match &a.deployment {
        Some(id) => page(ctx, id, a).await,
        None if a.html.is_some() => Err(CliError::Usage(
            "--html needs a deployment: rollgate report DEPLOYMENT --html FILE".into(),
        )),
        None => metrics(ctx, a).await,
    }
}

/// Every alias's rows: `(alias, rows)` of the function asked about, or of the account.
async fn all_rows(ctx: &Context, function: Option<&str>) -> Result<Vec<(String, Vec<Value>)>> {
    let mut out = Vec::new();
    for (f, alias) in crate::status::targets(ctx, function).await? {
        out.push((alias.clone(), ctx.ledger.alias_rows(&f, &alias).await?));
    }
    Ok(out)
}

async fn metrics(ctx: &Context, a: &ReportArgs) -> Result<()> {
    let window = Window::trailing_days(epoch_ms(), a.days.max(1))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let releases: Vec<dora::Release> = all_rows(ctx, a.function.as_deref())
        .await?
        .iter()
        .flat_map(|(_, rows)| delivery::releases(rows))
        .collect();
    let summary = dora::summarize(&releases, window);
    if ctx.json {
        out::json(&summary);
        return Ok(());
    }
    let rate = |r: &dora::Rate| r.percent.map_or("-".into(), |p| format!("{p:.1}%"));
    let row = |name: &str, f: &dora::Figures| {
        vec![
            name.to_owned(),
            f.counts.releases.to_string(),
            format!("{:.2}", f.deployment_frequency.per_day),
            rate(&f.change_failure_rate),
            rate(&f.rollback_rate),
            f.time_to_restore
                .median_ms
                .map_or("-".into(), dora::human_ms),
        ]
    };
    let mut rows: Vec<Vec<String>> = summary
        .functions
        .iter()
        .map(|f| row(&f.function, &f.figures))
        .collect();
    rows.push(row("(account)", &summary.account));
    println!(
        "delivery over the {} days to {}",
        a.days,
        utc(window.end_ms())
    );
    let headers = [
        "FUNCTION",
        "RELEASES",
        "PER DAY",
        "CHANGE FAILURE",
        "ROLLBACK",
        "RESTORE (MEDIAN)",
    ];
    println!("{}", out::table(&headers, &rows));
    for line in summary.account.explain() {
        println!("  {line}");
    }
    Ok(())
}

async fn page(ctx: &Context, deployment: &str, a: &ReportArgs) -> Result<()> {
    let html = a.html.as_deref();
    let data = gather(ctx, deployment, a.function.as_deref()).await?;
    if let Some(path) = html {
        std::fs::write(path, report_page::render(&data)).map_err(|e| CliError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    }
    if ctx.json {
        out::json(&data);
    } else if let Some(path) = html {
        println!(
            "wrote {path}: {} timeline entries, {} checks, {} charts; {}",
            data.timeline.len(),
            data.checks.len(),
            data.series.len(),
            data.decision
                .as_ref()
                .map_or("no decision", |d| d.reason.as_str())
        );
    }
    Ok(())
}

/// The page's data: the deployment's row, what rollgate did about it, its gates' and
/// shift's judgements, and its versions' error rate and p99 latency over its time. The
/// deployment is looked for in every alias of the ledger, or of `function`.
async fn gather(ctx: &Context, deployment: &str, function: Option<&str>) -> Result<ReportData> {
    for (_, rows) in all_rows(ctx, function).await? {
        let Some(record) = rows
            .iter()
            .filter_map(delivery::record)
            .find(|r| r.deployment_id == deployment)
        else {
            continue;
        };
        let mut data = ReportData::from_record(&record, epoch_ms());
        add_gates(&mut data, &rows, deployment);
        add_rollout(&mut data, &rows, deployment);
        add_actions(&mut data, &rows, deployment);
        add_shift(&mut data, &rows, deployment);
        data.series = series(ctx, &data).await?;
        return Ok(data);
    }
    Err(CliError::NothingDone(format!(
        "the ledger holds no deployment {deployment}"
    )))
}

/// The gates' decisions (`decision#` rows): each check with its expected and actual
/// values, a timeline entry each, and what the last one came to (an alarm's action,
/// added after, overrides it). A gate that decided more than once (its report to
/// CodeDeploy failed and Lambda retried it) shows every attempt on the timeline, and
/// only its last attempt's checks.
fn add_gates(data: &mut ReportData, rows: &[Value], deployment: &str) {
    let prefix = rollgate::rollback::ledger::decision_prefix(deployment);
    let mut kept: Vec<(i64, Decision)> = rows_under(rows, &prefix)
        .filter_map(|r| {
            let text = r.get("decision").and_then(Value::as_str)?;
            let d = serde_json::from_str::<Decision>(text).ok()?;
            Some((r.get("at_ms").and_then(Value::as_i64).unwrap_or(0), d))
        })
        .collect();
    kept.sort_by_key(|(at, _)| *at);
    for (i, (at, d)) in kept.iter().enumerate() {
        let superseded = kept[i + 1..]
            .iter()
            .any(|(_, e)| e.component == d.component);
        let mut entry = TimelineEntry::from_decision(*at, d);
        if superseded {
            entry.detail = Some(format!(
                "superseded by the gate's later attempt (Lambda retried the invocation): {}",
                entry.detail.unwrap_or_default()
            ));
        } else {
            data.add_decision_checks(d);
        }
        data.timeline.push(entry);
    }
    let last = kept.pop();
    let Some((at, d)) = last else { return };
    let (action, outcome) = match (d.verdict, data.status.as_str()) {
        (Verdict::Failed, _) => ("stopped", Outcome::Fail),
        (Verdict::Succeeded, "Succeeded") => ("released", Outcome::Pass),
        (Verdict::Succeeded, _) => ("none", Outcome::Inconclusive),
    };
    data.decision = Some(ReportDecision {
        action: action.into(),
        outcome,
        reason: format!("{} {}: {}", d.component, d.verdict.as_str(), d.reason),
        component: Some(d.component.clone()),
        at_ms: Some(at),
    });
}

/// The alarms (or requests) and the actions rollgate took on the deployment, and the
/// decision they came to.
fn add_actions(data: &mut ReportData, rows: &[Value], deployment: &str) {
    for c in delivery::acted_claims(rows, deployment) {
        let stop = field(c, "sk").starts_with("stop#");
        let by = field(c, "alarm");
        if let Some(at) = c.get("since_ms").and_then(Value::as_i64) {
            let (kind, title) = if by.starts_with("manual ") {
                (TimelineKind::Note, format!("{by}: requested"))
            } else {
                (TimelineKind::Alarm, format!("alarm {by} went to ALARM"))
            };
            data.timeline.push(TimelineEntry::new(at, kind, title));
        }
        let at = c
            .get("settled_ms")
            .or(c.get("at_ms"))
            .and_then(Value::as_i64);
        let (kind, action, what) = if stop {
            (
                TimelineKind::Stop,
                "stop_deployment",
                "deployment stopped, CodeDeploy rolled back".to_owned(),
            )
        } else {
            let what = format!("alias back on version {}", field(c, "good_version"));
            (TimelineKind::Rollback, "rollback", what)
        };
        data.timeline.push(
            TimelineEntry::new(at.unwrap_or(0), kind, what.clone())
                .with_detail(field(c, "outcome")),
        );
        data.decision = Some(ReportDecision {
            action: action.into(),
            outcome: Outcome::Fail,
            reason: format!(
                "{by}: {what}; version {} quarantined",
                field(c, "bad_version")
            ),
            component: Some("alarm-rollback".into()),
            at_ms: at,
        });
    }
}

/// A rollgate rollout's changes (its `rollout#<id>#<seq>` rows): each on the timeline;
/// the checks of its pre-traffic gate and of its last judged step, each with its
/// expected and actual values; and, once it ended, what it came to (an alarm's action,
/// added after, overrides it).
fn add_rollout(data: &mut ReportData, rows: &[Value], deployment: &str) {
    let prefix = rollgate::rollback::ledger::rollout_event_prefix(deployment);
    let mut changes: Vec<Value> = rows_under(rows, &prefix)
        .filter_map(|r| serde_json::from_str(r.get("event")?.as_str()?).ok())
        .collect();
    changes.sort_by_key(|c| c.get("seq").and_then(Value::as_u64).unwrap_or(0));
    for c in &changes {
        data.timeline.push(rollout_entry(c, &data.to_version));
    }
    if let Some(start) = changes.iter().find(|c| field(c, "action") == "start") {
        add_change_checks(
            data,
            "rollout (pre-traffic gate)",
            start,
            change_checks(start),
        );
    }
    let judged = changes
        .iter()
        .rev()
        .filter(|c| field(c, "action") == "step")
        .find_map(|c| {
            let checks = change_checks(c);
            (!checks.is_empty()).then_some((c, checks))
        });
    if let Some((step, checks)) = judged {
        let n = step.get("step").and_then(Value::as_u64).unwrap_or(0);
        add_change_checks(data, &format!("rollout (judge, step {n})"), step, checks);
    }
    if let Some(d) = changes.last().and_then(rollout_decision) {
        data.decision = Some(d);
    }
}

/// The rows whose sort key starts with `prefix`.
fn rows_under<'a>(rows: &'a [Value], prefix: &'a str) -> impl Iterator<Item = &'a Value> {
    rows.iter().filter(move |r| {
        r.get("sk")
            .and_then(Value::as_str)
            .is_some_and(|sk| sk.starts_with(prefix))
    })
}

fn field(row: &Value, key: &str) -> String {
    row.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn change_checks(change: &Value) -> Vec<CheckResult> {
    change
        .get("checks")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// One change of a rollout on the timeline, with the verdict it was decided on.
fn rollout_entry(c: &Value, to_version: &str) -> TimelineEntry {
    let weight = c.get("weight").and_then(Value::as_f64).unwrap_or(0.0);
    let mut entry = TimelineEntry::new(
        c.get("at_ms").and_then(Value::as_i64).unwrap_or(0),
        TimelineKind::Rollout,
        format!(
            "rollout {} by {}: {}, step {}, {weight}% on version {to_version}",
            field(c, "action"),
            field(c, "by"),
            field(c, "status"),
            c.get("step").and_then(Value::as_u64).unwrap_or(0),
        ),
    );
    if !field(c, "reason").is_empty() {
        entry.detail = Some(field(c, "reason"));
    }
    entry.outcome = match field(c, "verdict").as_str() {
        "pass" => Some(Outcome::Pass),
        "fail" => Some(Outcome::Fail),
        "inconclusive" => Some(Outcome::Inconclusive),
        _ => None,
    };
    entry
}

/// A change's `checks` under `component`, and a line for those its row left out.
fn add_change_checks(
    data: &mut ReportData,
    component: &str,
    change: &Value,
    checks: Vec<CheckResult>,
) {
    data.add_checks(component, checks);
    if let Some(n) = change.get("checks_left_out").and_then(Value::as_u64) {
        let note = CheckResult::pass("passed checks left out", Value::Null, json!(n)).with_detail(
            format!(
                "{n} more checks passed; the ledger row keeps the first {} that say most",
                rollgate::rollout::run::ROW_MAX_CHECKS
            ),
        );
        data.add_checks(component, [note]);
    }
}

/// What an ended rollout came to; `None` while it runs or is paused.
fn rollout_decision(last: &Value) -> Option<ReportDecision> {
    let (action, outcome) = match (
        field(last, "status").as_str(),
        field(last, "action").as_str(),
    ) {
        ("succeeded", _) => ("released", Outcome::Pass),
        // A failed pre-traffic gate never moved the alias.
        ("failed", "start") => ("stopped", Outcome::Fail),
        ("failed", _) => ("rolled back", Outcome::Fail),
        ("aborted", _) => ("aborted", Outcome::Fail),
        ("interrupted", _) => ("none", Outcome::Inconclusive),
        _ => return None,
    };
    Some(ReportDecision {
        action: action.into(),
        outcome,
        reason: format!(
            "rollout {} by {}: {}",
            field(last, "action"),
            field(last, "by"),
            field(last, "reason")
        ),
        component: Some("rollout".into()),
        at_ms: last.get("at_ms").and_then(Value::as_i64),
    })
}

/// The rollout function's judgements during the deployment's traffic shift: each round
/// on the timeline, and the checks of the last judged round (rows written before checks
/// were kept name only the failed ones).
fn add_shift(data: &mut ReportData, rows: &[Value], deployment: &str) {
    let prefix = rollgate::rollback::ledger::shift_prefix(deployment);
    let mut last_judged: Option<ShiftJudgement> = None;
    for r in rows_under(rows, &prefix) {
        if field(r, "sk").ends_with("#end") {
            continue;
        }
        let Ok(j) = serde_json::from_str::<ShiftJudgement>(r["event"].as_str().unwrap_or(""))
        else {
            continue;
        };
        data.timeline.push(TimelineEntry::from_shift(&j));
        let judged = !j.checks.is_empty() || !j.failed.is_empty();
        if judged && last_judged.as_ref().is_none_or(|l| l.round < j.round) {
            last_judged = Some(j);
        }
    }
    let Some(j) = last_judged else { return };
    let component = format!("rollout (shift judge, round {})", j.round);
    let checks: Vec<CheckResult> = if j.checks.is_empty() {
        j.failed
            .iter()
            .map(|name| {
                CheckResult::fail(name.clone(), Value::Null, Value::Null).with_detail(
                    "the round's row keeps only the failed checks' names (written before rollgate kept their values)",
                )
            })
            .collect()
    } else {
        j.checks
    };
    data.add_checks(&component, checks);
}

/// Error rate (%) and p99 latency (ms) of the old and the new version, a point a minute,
/// from 10 minutes before the deployment to 30 after its last moment (or now).
async fn series(ctx: &Context, data: &ReportData) -> Result<Vec<Series>> {
    let first = data.timeline.iter().map(|e| e.at_ms).min().unwrap_or(0);
    let last = data.timeline.iter().map(|e| e.at_ms).max().unwrap_or(first);
    let start = (first - 10 * 60_000) / 1000;
    let end = ((last + 30 * 60_000).min(epoch_ms())) / 1000;
    let q = |id: &str, v: &str, metric: &str, stat: &str| {
        lambda_query(id.into(), &data.function, &data.alias, v, metric, stat, 60)
    };
    let (old, new) = (&data.from_version, &data.to_version);
    let queries = vec![
        q("oi", old, "Invocations", "Sum"),
        q("oe", old, "Errors", "Sum"),
        q("op", old, "Duration", "p99"),
        q("ni", new, "Invocations", "Sum"),
        q("ne", new, "Errors", "Sum"),
        q("np", new, "Duration", "p99"),
    ];
    let got = ctx
        .cloudwatch
        .metric_data(&queries, start, end.max(start + 60))
        .await?;
    let ms = |s: &[(i64, f64)]| s.iter().map(|(t, v)| (t * 1000, *v)).collect::<Vec<_>>();
    let rate = |inv: &str, err: &str| {
        let errors: std::collections::BTreeMap<i64, f64> = got[err].iter().copied().collect();
        got[inv]
            .iter()
            .filter(|(_, n)| *n > 0.0)
            .map(|(t, n)| (t * 1000, 100.0 * errors.get(t).copied().unwrap_or(0.0) / n))
            .collect::<Vec<_>>()
    };
    Ok(vec![
        Series {
            metric: "error rate".into(),
            unit: "%".into(),
            old: rate("oi", "oe"),
            new: rate("ni", "ne"),
        },
        Series {
            metric: "p99 latency".into(),
            unit: "ms".into(),
            old: ms(&got["op"]),
            new: ms(&got["np"]),
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(component: &str, verdict: Verdict, check: CheckResult) -> String {
        serde_json::to_string(&Decision {
            component: component.into(),
            verdict,
            reason: format!("{} checks", check.name),
            deployment_id: Some("d-1".into()),
            function_name: Some("orders".into()),
            alias: Some("live".into()),
            current_version: Some("1".into()),
            target_version: Some("2".into()),
            policy_source: None,
            checks: vec![check],
            duration_ms: 5,
        })
        .unwrap()
    }

    fn data(status: &str) -> ReportData {
        ReportData {
            deployment_id: "d-1".into(),
            function: "orders".into(),
            alias: "live".into(),
            from_version: "1".into(),
            to_version: "2".into(),
            status: status.into(),
            origin: None,
            initiator: None,
            timeline: Vec::new(),
            checks: Vec::new(),
            series: Vec::new(),
            decision: None,
            generated_at_ms: 0,
        }
    }

    #[test]
    fn a_retried_gate_shows_every_attempt_and_only_the_last_attempts_checks() {
        let first = CheckResult::fail("smoke[a].status", json!(200), json!(500));
        let retry = CheckResult::pass("smoke[a].status", json!(200), json!(200));
        let post = CheckResult::pass("canary.error_rate", json!(0.01), json!(0.0));
        // Out of time order, as a Query of several components may return them; another
        // deployment's row is not this page's.
        let rows = [
            json!({"sk": "decision#d-1#0000000000900#pre-traffic-hook", "at_ms": 900,
                "decision": decision("pre-traffic-hook", Verdict::Succeeded, retry.clone())}),
            json!({"sk": "decision#d-1#0000000000100#pre-traffic-hook", "at_ms": 100,
                "decision": decision("pre-traffic-hook", Verdict::Failed, first)}),
            json!({"sk": "decision#d-1#0000000002000#post-traffic-hook", "at_ms": 2000,
                "decision": decision("post-traffic-hook", Verdict::Succeeded, post.clone())}),
            json!({"sk": "decision#d-10#0000000003000#post-traffic-hook", "at_ms": 3000,
                "decision": decision("post-traffic-hook", Verdict::Failed, post.clone())}),
        ];
        let mut page = data("Succeeded");
        add_gates(&mut page, &rows, "d-1");
        assert_eq!(
            shown(&page),
            [("pre-traffic-hook", &retry), ("post-traffic-hook", &post)]
        );
        let times: Vec<i64> = page.timeline.iter().map(|e| e.at_ms).collect();
        assert_eq!(times, [100, 900, 2000]);
        let first_detail = page.timeline[0].detail.as_deref().unwrap();
        assert!(
            first_detail.starts_with("superseded by the gate's later attempt"),
            "{first_detail}"
        );
        assert!(
            !page.timeline[1]
                .detail
                .as_deref()
                .unwrap()
                .contains("superseded")
        );
        let d = page.decision.unwrap();
        assert_eq!((d.action.as_str(), d.at_ms), ("released", Some(2000)));
    }

    /// The page's checks as `(component, check)`.
    fn shown(page: &ReportData) -> Vec<(&str, &CheckResult)> {
        page.checks
            .iter()
            .map(|c| (c.component.as_str(), &c.check))
            .collect()
    }

    fn change(seq: u64, action: &str, status: &str, step: u64, checks: &[CheckResult]) -> Value {
        let verdict = checks
            .iter()
            .any(|c| !c.passed())
            .then_some("fail")
            .or((!checks.is_empty()).then_some("pass"));
        let event = json!({"at_ms": 1000 * seq, "seq": seq, "action": action, "by": "alice",
            "status": status, "step": step, "weight": 10.0, "verdict": verdict,
            "reason": format!("{action} reason"), "checks": checks});
        json!({"sk": format!("rollout#ro-1#{seq:06}"), "event": event.to_string()})
    }

    #[test]
    fn a_rollout_shows_each_change_its_gate_and_its_last_judged_steps_checks() {
        let gate = CheckResult::pass("config.state", json!("Active"), json!("Active"));
        let early = CheckResult::pass("canary.latency", json!("<= 1.2x"), json!("1.0x"));
        let late = CheckResult::fail("canary.latency", json!("<= 1.2x"), json!("2.1x"));
        let rows = [
            change(2, "step", "running", 2, std::slice::from_ref(&early)),
            change(1, "start", "running", 1, std::slice::from_ref(&gate)),
            change(3, "pause", "paused", 2, &[]),
            change(4, "step", "failed", 2, std::slice::from_ref(&late)),
            // Another rollout's row is not this page's.
            {
                let mut other = change(9, "start", "running", 1, std::slice::from_ref(&early));
                other["sk"] = json!("rollout#ro-10#000009");
                other
            },
        ];
        let mut page = data("Failed");
        add_rollout(&mut page, &rows, "ro-1");
        let times: Vec<i64> = page.timeline.iter().map(|e| e.at_ms).collect();
        assert_eq!(times, [1000, 2000, 3000, 4000]);
        assert!(
            page.timeline
                .iter()
                .all(|e| e.kind == TimelineKind::Rollout)
        );
        assert_eq!(page.timeline[3].outcome, Some(Outcome::Fail));
        assert_eq!(
            shown(&page),
            [
                ("rollout (pre-traffic gate)", &gate),
                ("rollout (judge, step 2)", &late)
            ]
        );
        let d = page.decision.unwrap();
        assert_eq!(
            (d.action.as_str(), d.outcome, d.at_ms),
            ("rolled back", Outcome::Fail, Some(4000))
        );
        assert!(d.reason.contains("step reason"), "{}", d.reason);
    }

    #[test]
    fn a_shift_shows_its_last_judged_rounds_checks_and_old_rows_their_failed_names() {
        let pass = CheckResult::pass("canary.error_rate", json!(0.01), json!(0.0));
        let fail = CheckResult::fail("canary.latency", json!("<= 1.2x"), json!("2.0x"));
        let round = |n: u32, checks: Vec<CheckResult>, failed: Vec<String>| {
            let j = ShiftJudgement {
                checks,
                failed,
                ..ShiftJudgement::new(i64::from(n) * 1000, n, Some(0.1))
            };
            json!({"sk": format!("shift#d-1#{n:03}"), "event": serde_json::to_string(&j).unwrap()})
        };
        let rows = [
            round(
                2,
                vec![pass.clone(), fail.clone()],
                vec!["canary.latency".into()],
            ),
            round(1, vec![pass.clone()], vec![]),
            json!({"sk": "shift#d-1#end", "event": "{}"}),
        ];
        let mut page = data("Stopped");
        add_shift(&mut page, &rows, "d-1");
        assert_eq!(page.timeline.len(), 2);
        let checks: Vec<&CheckResult> = page.checks.iter().map(|c| &c.check).collect();
        assert_eq!(checks, [&pass, &fail]);
        assert_eq!(page.checks[0].component, "rollout (shift judge, round 2)");
        // A row written before the checks were kept: the failed names, values unknown.
        let mut old = data("Stopped");
        add_shift(
            &mut old,
            &[round(3, vec![], vec!["canary.latency".into()])],
            "d-1",
        );
        assert_eq!(old.checks.len(), 1);
        assert_eq!(old.checks[0].check.name, "canary.latency");
        assert!(!old.checks[0].check.passed());
    }
}
