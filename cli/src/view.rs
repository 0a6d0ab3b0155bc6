//! The ledger's rows as an operator reads them: one entry per row, with when, what and
//! the details, whatever kind of row it is (see `rollgate::rollback::ledger` for keys).

use rollgate::clock::utc;
use serde::Serialize;
use serde_json::Value;

/// One row of the ledger, explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Epoch ms; 0 when the row has no time.
    pub at_ms: i64,
    pub alias: String,
    /// `release`, `rollback`, `stop`, `quarantine`, `freeze`, `request`, `rollout`,
    /// `rollout-step`, `shift`, `gate`.
    pub kind: &'static str,
    pub summary: String,
    /// The row itself.
    #[serde(skip)]
    pub row: Value,
}

fn s<'a>(row: &'a Value, k: &str) -> &'a str {
    row.get(k).and_then(Value::as_str).unwrap_or("")
}

fn n(row: &Value, k: &str) -> Option<i64> {
    row.get(k).and_then(Value::as_i64)
}

/// The JSON text a row keeps in `field` (rollout state, rollout and shift events).
fn inner(row: &Value, field: &str) -> Value {
    serde_json::from_str(s(row, field)).unwrap_or(Value::Null)
}

/// An entry for one row of `alias`'s partition; `None` for rows that are not history
/// (the alias index).
pub fn entry(alias: &str, row: &Value) -> Option<Entry> {
    let sk = s(row, "sk");
    let (kind, at_ms, summary) = if sk.starts_with("dep#") {
        release(row)
    } else if sk.starts_with("rb#") || sk.starts_with("stop#") {
        claim(sk, row)
    } else if sk.starts_with("quarantine#") {
        let text = format!(
            "version {} quarantined: {}",
            s(row, "version"),
            s(row, "reason")
        );
        ("quarantine", n(row, "at_ms"), text)
    } else if sk == "freeze" {
        freeze(row)
    } else if sk.starts_with("req#") {
        let text = format!(
            "manual {} by {} ({}): {}",
            s(row, "action"),
            s(row, "requester"),
            s(row, "reason"),
            s(row, "outcome")
        );
        ("request", n(row, "at_ms"), text)
    } else if sk == "rollout" {
        rollout(row)
    } else if sk.starts_with("rollout#") {
        rollout_step(&inner(row, "event"))
    } else if sk.starts_with("shift#") {
        shift(sk, &inner(row, "event"))
    } else if sk.starts_with("decision#") {
        gate(row)
    } else {
        return None;
    };
    Some(Entry {
        at_ms: at_ms.unwrap_or(0),
        alias: alias.to_owned(),
        kind,
        summary,
        row: row.clone(),
    })
}

fn release(row: &Value) -> (&'static str, Option<i64>, String) {
    let kind = if s(row, "kind") == "rollback" {
        "CodeDeploy rollback"
    } else {
        "release"
    };
    let mut text = format!(
        "{kind} {}: version {} -> {} {}",
        s(row, "deployment_id"),
        s(row, "from_version"),
        s(row, "to_version"),
        s(row, "status")
    );
    match s(row, "initiator") {
        "" => text.push_str(&format!(" ({})", s(row, "origin"))),
        who => text.push_str(&format!(" ({}, by {who})", s(row, "origin"))),
    }
    let at = n(row, "started_ms").or(n(row, "created_ms"));
    ("release", at, text)
}

fn claim(sk: &str, row: &Value) -> (&'static str, Option<i64>, String) {
    let (kind, what) = if sk.starts_with("rb#") {
        let to = s(row, "good_version");
        (
            "rollback",
            format!("alias back from version {} to {to}", s(row, "bad_version")),
        )
    } else {
        (
            "stop",
            format!("stop deployment {}", s(row, "deployment_id")),
        )
    };
    let mut text = format!(
        "{what}, asked by {}: {}",
        s(row, "alarm"),
        s(row, "outcome")
    );
    if let (Some(since), Some(done)) = (n(row, "since_ms"), n(row, "settled_ms")) {
        text.push_str(&format!(
            " ({} s after the trigger)",
            (done - since).max(0) / 1000
        ));
    }
    (kind, n(row, "at_ms"), text)
}

fn freeze(row: &Value) -> (&'static str, Option<i64>, String) {
    let mut text = format!(
        "automatic rollbacks frozen until {} by {}: {}",
        utc(n(row, "until_ms").unwrap_or(0)),
        s(row, "by"),
        s(row, "reason")
    );
    if let Some(lifted) = n(row, "lifted_ms") {
        text.push_str(&format!(
            "; lifted by {} at {}",
            s(row, "lifted_by"),
            utc(lifted)
        ));
    }
    ("freeze", n(row, "at_ms"), text)
}

fn rollout(row: &Value) -> (&'static str, Option<i64>, String) {
    let st = inner(row, "state");
    let text = format!(
        "rollout {} of version {} -> {}: {} at step {} of {}",
        s(&st, "id"),
        s(&st, "from_version"),
        s(&st, "to_version"),
        s(&st, "status"),
        n(&st, "step").unwrap_or(0) + 1,
        st.get("steps")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    );
    ("rollout", n(&st, "updated_ms"), text)
}

fn rollout_step(ev: &Value) -> (&'static str, Option<i64>, String) {
    let mut text = format!(
        "rollout {} by {}: {} at step {}, weight {}",
        s(ev, "action"),
        s(ev, "by"),
        s(ev, "status"),
        n(ev, "step").unwrap_or(0),
        ev.get("weight").and_then(Value::as_f64).unwrap_or(0.0)
    );
    if let Some(v) = ev.get("verdict").and_then(Value::as_str) {
        text.push_str(&format!(", verdict {v}"));
    }
    if !s(ev, "reason").is_empty() {
        text.push_str(&format!(" ({})", s(ev, "reason")));
    }
    ("rollout-step", n(ev, "at_ms"), text)
}

fn shift(sk: &str, ev: &Value) -> (&'static str, Option<i64>, String) {
    let deployment = sk.split('#').nth(1).unwrap_or("");
    let text = if sk.ends_with("#end") {
        format!(
            "shift of {deployment}: judge stopped watching ({})",
            s(ev, "status")
        )
    } else {
        let failed = ev
            .get("failed")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let mut t = format!(
            "shift of {deployment} round {}: {} at weight {}",
            n(ev, "round").unwrap_or(0),
            ev.get("verdict")
                .and_then(Value::as_str)
                .unwrap_or("nothing judged"),
            ev.get("weight")
                .and_then(Value::as_f64)
                .map_or("-".into(), |w| w.to_string())
        );
        if !failed.is_empty() {
            t.push_str(&format!(" (failed: {failed})"));
        }
        t
    };
    ("shift", n(ev, "at_ms"), text)
}

/// A gate's decision: who, the verdict on which versions, why, and how many checks.
fn gate(row: &Value) -> (&'static str, Option<i64>, String) {
    let d = inner(row, "decision");
    let checks = d.get("checks").and_then(Value::as_array);
    let failed = checks.map_or(0, |c| {
        c.iter().filter(|c| s(c, "outcome") != "pass").count()
    });
    let text = format!(
        "{} {} {} (version {} -> {}): {} [{} checks, {failed} not passed]",
        s(row, "component"),
        s(row, "verdict"),
        s(row, "deployment_id"),
        s(&d, "current_version"),
        s(&d, "target_version"),
        s(row, "reason"),
        checks.map_or(0, Vec::len)
    );
    ("gate", n(row, "at_ms"), text)
}

/// Entries of several partitions, newest first (ties: by alias, then kind).
pub fn newest_first(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| {
        b.at_ms
            .cmp(&a.at_ms)
            .then_with(|| a.alias.cmp(&b.alias))
            .then_with(|| a.kind.cmp(b.kind))
    });
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_of_row_is_explained() {
        let rows = [
            json!({"sk": "dep#0000000001000#d-1", "deployment_id": "d-1", "from_version": "1",
                "to_version": "2", "status": "Succeeded", "kind": "release", "created_ms": 1000,
                "origin": "codedeploy"}),
            json!({"sk": "rb#rev-1", "alarm": "orders-errors", "bad_version": "2",
                "good_version": "1", "outcome": "rolled_back", "at_ms": 5000, "since_ms": 2000,
                "settled_ms": 6000}),
            json!({"sk": "stop#d-2", "alarm": "manual rollback by alice", "deployment_id": "d-2",
                "outcome": "stopped", "at_ms": 7000}),
            json!({"sk": "quarantine#2", "version": "2", "reason": "alarm x fired", "at_ms": 5001}),
            json!({"sk": "freeze", "until_ms": 0, "by": "bob", "reason": "incident",
                "at_ms": 8000, "lifted_ms": 9000, "lifted_by": "carol"}),
            json!({"sk": "req#0000000009000#r-1", "action": "unfreeze", "requester": "carol",
                "reason": "over", "outcome": "resumed", "at_ms": 9000}),
            json!({"sk": "shift#d-3#002", "event": "{\"at_ms\": 10, \"round\": 2, \"weight\": 0.1, \"verdict\": \"fail\", \"failed\": [\"errors.rate\"]}"}),
            json!({"sk": "alias#live"}),
            json!({"sk": "decision#d-1#0000000000500#pre-traffic-hook", "component": "pre-traffic-hook",
                "verdict": "Failed", "deployment_id": "d-1", "reason": "1 of 2 checks failed",
                "at_ms": 500, "decision": "{\"current_version\": \"1\", \"target_version\": \"2\", \"checks\": [{\"outcome\": \"pass\"}, {\"outcome\": \"inconclusive\"}]}"}),
        ];
        let got: Vec<Entry> = rows.iter().filter_map(|r| entry("live", r)).collect();
        assert_eq!(got.len(), 8, "the index row is not history");
        assert_eq!(
            got[7].summary,
            "pre-traffic-hook Failed d-1 (version 1 -> 2): 1 of 2 checks failed [2 checks, 1 not passed]"
        );
        let text: Vec<&str> = got.iter().map(|e| e.summary.as_str()).collect();
        assert_eq!(
            text[0],
            "release d-1: version 1 -> 2 Succeeded (codedeploy)"
        );
        assert_eq!(
            text[1],
            "alias back from version 2 to 1, asked by orders-errors: rolled_back (4 s after the trigger)"
        );
        assert!(text[2].starts_with("stop deployment d-2, asked by manual rollback by alice"));
        assert!(
            text[4].contains("lifted by carol at 1970-01-01T00:00:09Z"),
            "{}",
            text[4]
        );
        assert_eq!(text[5], "manual unfreeze by carol (over): resumed");
        assert_eq!(
            text[6],
            "shift of d-3 round 2: fail at weight 0.1 (failed: errors.rate)"
        );
        let order: Vec<&str> = newest_first(got).iter().map(|e| e.kind).collect();
        assert_eq!(
            order,
            [
                "request",
                "freeze",
                "stop",
                "quarantine",
                "rollback",
                "release",
                "gate",
                "shift"
            ]
        );
    }
}
