//! The ledger's rows of one alias (as JSON objects, the way an operator reads them) as
//! the data the reports take: its deployment records, and its releases with how each
//! ended, for the delivery metrics ([`crate::dora`]).

use super::ledger::{DeploymentKind, DeploymentRecord, DeploymentStatus, Origin};
use crate::dora::{Outcome, Release, Restore};
use serde_json::Value;

fn s(row: &Value, k: &str) -> Option<String> {
    row.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn n(row: &Value, k: &str) -> Option<i64> {
    row.get(k).and_then(Value::as_i64)
}

/// A `dep#` row as the record it was written from.
pub fn record(row: &Value) -> Option<DeploymentRecord> {
    if !s(row, "sk")?.starts_with("dep#") {
        return None;
    }
    Some(DeploymentRecord {
        deployment_id: s(row, "deployment_id")?,
        application: s(row, "application").unwrap_or_default(),
        deployment_group: s(row, "deployment_group").unwrap_or_default(),
        function: s(row, "function")?,
        alias: s(row, "alias")?,
        from_version: s(row, "from_version").unwrap_or_default(),
        to_version: s(row, "to_version").unwrap_or_default(),
        status: DeploymentStatus::parse(&s(row, "status")?)?,
        kind: if s(row, "kind").as_deref() == Some("rollback") {
            DeploymentKind::Rollback
        } else {
            DeploymentKind::Release
        },
        created_ms: n(row, "created_ms").unwrap_or_default(),
        started_ms: n(row, "started_ms"),
        ended_ms: n(row, "ended_ms"),
        origin: Origin::parse(s(row, "origin").as_deref()),
        initiator: s(row, "initiator"),
    })
}

/// The claim rows (`rb#`, `stop#`) about `deployment_id` that rollgate carried out.
pub fn acted_claims<'a>(rows: &'a [Value], deployment_id: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| {
            let sk = r.get("sk").and_then(Value::as_str).unwrap_or("");
            let outcome = r.get("outcome").and_then(Value::as_str).unwrap_or("");
            (sk.starts_with("rb#") && outcome.starts_with("rolled_back")
                || sk.starts_with("stop#") && outcome == "stopped")
                && r.get("deployment_id").and_then(Value::as_str) == Some(deployment_id)
        })
        .collect()
}

/// Every release of one alias's rows (CodeDeploy's own rollback deployments are not
/// releases), with how it ended: rolled back or stopped by rollgate (its claim, and the
/// time from the trigger to the settled action), else as its status says (a deployment
/// stopped by someone else is a failure).
pub fn releases(rows: &[Value]) -> Vec<Release> {
    rows.iter()
        .filter_map(record)
        .filter(|r| r.kind == DeploymentKind::Release)
        .map(|r| {
            let claims = acted_claims(rows, &r.deployment_id);
            let restore = claims.first().and_then(|c| {
                Some(Restore {
                    alarm_ms: n(c, "since_ms")?,
                    restored_ms: n(c, "settled_ms")?,
                })
            });
            let by_rollgate = claims.first().map(|c| {
                let sk = c.get("sk").and_then(Value::as_str).unwrap_or("");
                if sk.starts_with("rb#") {
                    Outcome::RolledBack
                } else {
                    Outcome::Stopped
                }
            });
            let outcome = by_rollgate.unwrap_or(match r.status {
                DeploymentStatus::InProgress => Outcome::InProgress,
                DeploymentStatus::Succeeded => Outcome::Succeeded,
                DeploymentStatus::Failed | DeploymentStatus::Stopped => Outcome::Failed,
            });
            Release {
                function: r.function,
                alias: r.alias,
                deployment_id: r.deployment_id,
                at_ms: r.created_ms,
                outcome,
                restore: by_rollgate.and(restore),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(id: &str, status: &str, kind: &str, created: i64) -> Value {
        json!({"sk": format!("dep#{created:013}#{id}"), "deployment_id": id, "function": "orders",
            "alias": "live", "from_version": "1", "to_version": "2", "status": status,
            "kind": kind, "created_ms": created, "origin": "codedeploy"})
    }

    #[test]
    fn each_release_ends_as_the_ledger_says() {
        let rows = vec![
            dep("d-1", "Succeeded", "release", 1_000),
            dep("d-2", "Succeeded", "release", 2_000),
            json!({"sk": "rb#rev-9", "deployment_id": "d-2", "outcome": "rolled_back (alias revision r)",
                "since_ms": 2_500, "settled_ms": 2_900}),
            dep("d-3", "Stopped", "release", 3_000),
            json!({"sk": "stop#d-3", "deployment_id": "d-3", "outcome": "stopped",
                "since_ms": 3_100, "settled_ms": 3_400}),
            dep("d-4", "Stopped", "release", 4_000),
            json!({"sk": "stop#d-4", "deployment_id": "d-4", "outcome": "failed: throttled"}),
            dep("d-5", "InProgress", "release", 5_000),
            dep("d-6", "Succeeded", "rollback", 6_000),
            dep("d-7", "Failed", "release", 7_000),
        ];
        let got: Vec<(String, Outcome, Option<i64>)> = releases(&rows)
            .into_iter()
            .map(|r| {
                (
                    r.deployment_id,
                    r.outcome,
                    r.restore.and_then(|x| x.duration_ms()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("d-1".into(), Outcome::Succeeded, None),
                ("d-2".into(), Outcome::RolledBack, Some(400)),
                ("d-3".into(), Outcome::Stopped, Some(300)),
                ("d-4".into(), Outcome::Failed, None),
                ("d-5".into(), Outcome::InProgress, None),
                ("d-7".into(), Outcome::Failed, None),
            ]
        );
    }
}
