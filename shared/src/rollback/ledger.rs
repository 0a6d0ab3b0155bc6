//! The deployment ledger's model: what is stored per function and alias, and its keys.
//!
//! One DynamoDB table, string keys `pk`/`sk`:
//!
//! | pk | sk | item |
//! |---|---|---|
//! | `fn#<function>#<alias>` | `dep#<created ms, 13 digits>#<deployment id>` | a CodeDeploy deployment: versions, status, times, kind |
//! | `fn#<function>#<alias>` | `rb#<alias RevisionId>` | a rollback claim: written once (conditional) before `UpdateAlias` |
//! | `fn#<function>#<alias>` | `stop#<deployment id>` | a stop claim: written once before `StopDeployment` |
//! | `fn#<function>#<alias>` | `quarantine#<version>` | a version rollgate took out of service; never restored |
//! | `fn#<function>` | `alias#<alias>` | the aliases rollgate has seen deployed |
//! | `group#<group>` | `member#<function>#<alias>` | the functions of a `rollgate:group` |
//!
//! Deployment keys sort by creation time, so the newest deployment is one descending
//! `Query` away. Claims are keyed by the alias revision an action is based on: two
//! alarms (or two deliveries of one) that saw the same revision compete for one item,
//! and only the winner acts.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentStatus {
    InProgress,
    Succeeded,
    Failed,
    Stopped,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::InProgress => "InProgress",
            DeploymentStatus::Succeeded => "Succeeded",
            DeploymentStatus::Failed => "Failed",
            DeploymentStatus::Stopped => "Stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "InProgress" | "Created" | "Queued" | "Ready" | "Baking" => {
                DeploymentStatus::InProgress
            }
            "Succeeded" => DeploymentStatus::Succeeded,
            "Failed" => DeploymentStatus::Failed,
            "Stopped" => DeploymentStatus::Stopped,
            _ => return None,
        })
    }

    /// The status a CodeDeploy state-change event's `state` reports.
    pub fn from_event_state(state: &str) -> Option<Self> {
        Some(match state {
            "START" | "READY" => DeploymentStatus::InProgress,
            "SUCCESS" => DeploymentStatus::Succeeded,
            "FAILURE" => DeploymentStatus::Failed,
            "STOP" => DeploymentStatus::Stopped,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        self != DeploymentStatus::InProgress
    }
}

/// Whether a deployment released a new version or was CodeDeploy undoing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentKind {
    Release,
    /// Created by CodeDeploy to roll another deployment back (`creator: codeDeployRollback`).
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub deployment_id: String,
    pub application: String,
    pub deployment_group: String,
    pub function: String,
    pub alias: String,
    /// The version the alias was on before (AppSpec `CurrentVersion`).
    pub from_version: String,
    /// The version being released (AppSpec `TargetVersion`).
    pub to_version: String,
    pub status: DeploymentStatus,
    pub kind: DeploymentKind,
    /// Epoch milliseconds.
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
}

impl DeploymentRecord {
    pub fn sort_key(&self) -> String {
        deployment_sort(self.created_ms, &self.deployment_id)
    }
}

pub fn partition(function: &str, alias: &str) -> String {
    format!("fn#{function}#{alias}")
}

pub fn deployment_sort(created_ms: i64, deployment_id: &str) -> String {
    format!("dep#{:013}#{deployment_id}", created_ms.max(0))
}

pub const DEPLOYMENT_PREFIX: &str = "dep#";
pub const QUARANTINE_PREFIX: &str = "quarantine#";

pub fn rollback_sort(alias_revision: &str) -> String {
    format!("rb#{alias_revision}")
}

pub fn stop_sort(deployment_id: &str) -> String {
    format!("stop#{deployment_id}")
}

pub fn quarantine_sort(version: &str) -> String {
    format!("{QUARANTINE_PREFIX}{version}")
}

pub fn function_partition(function: &str) -> String {
    format!("fn#{function}")
}

pub fn alias_sort(alias: &str) -> String {
    format!("alias#{alias}")
}

pub fn group_partition(group: &str) -> String {
    format!("group#{group}")
}

pub fn member_sort(function: &str, alias: &str) -> String {
    format!("member#{function}#{alias}")
}

/// `member#<function>#<alias>` back to its parts.
pub fn parse_member(sort: &str) -> Option<(String, String)> {
    let rest = sort.strip_prefix("member#")?;
    let (f, a) = rest.rsplit_once('#')?;
    Some((f.to_owned(), a.to_owned()))
}

/// What the ledger knows about one function and alias.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Newest first.
    pub deployments: Vec<DeploymentRecord>,
    pub quarantined: BTreeSet<String>,
}

impl History {
    /// The newest deployment that released a version (CodeDeploy's own rollback
    /// deployments are not releases).
    pub fn latest_release(&self) -> Option<&DeploymentRecord> {
        self.deployments
            .iter()
            .find(|d| d.kind == DeploymentKind::Release)
    }
}

/// A claim on one action, written with a condition so that only one invocation acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub function: String,
    pub alias: String,
    /// `rb#<revision>` or `stop#<deployment>`.
    pub sort: String,
    /// The alarm state change that claims it ([`super::event::AlarmSignal::event_key`]).
    pub event_key: String,
    pub alarm: String,
    pub deployment_id: String,
    pub bad_version: String,
    pub good_version: Option<String>,
    pub at_ms: i64,
}

/// The result of a conditional claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Won,
    /// Somebody claimed it before; the event key of that claim.
    Lost {
        by_event: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_keys_sort_by_creation_time() {
        let a = deployment_sort(999, "d-B");
        let b = deployment_sort(1_000, "d-A");
        assert!(a < b, "{a} {b}");
        assert_eq!(b, "dep#0000000001000#d-A");
        assert_eq!(partition("orders", "live"), "fn#orders#live");
        assert_eq!(rollback_sort("rev-1"), "rb#rev-1");
        assert_eq!(
            parse_member(&member_sort("orders", "live")),
            Some(("orders".into(), "live".into()))
        );
        assert_eq!(parse_member("fn#x"), None);
    }

    #[test]
    fn statuses_from_events_never_go_back() {
        use DeploymentStatus::*;
        assert_eq!(
            DeploymentStatus::from_event_state("START"),
            Some(InProgress)
        );
        assert_eq!(
            DeploymentStatus::from_event_state("SUCCESS"),
            Some(Succeeded)
        );
        assert_eq!(DeploymentStatus::from_event_state("FAILURE"), Some(Failed));
        assert_eq!(DeploymentStatus::from_event_state("STOP"), Some(Stopped));
        assert_eq!(DeploymentStatus::from_event_state("BOGUS"), None);
        assert_eq!(DeploymentStatus::parse("Created"), Some(InProgress));
        assert_eq!(DeploymentStatus::parse(Succeeded.as_str()), Some(Succeeded));
    }

    #[test]
    fn latest_release_skips_codedeploy_rollbacks() {
        let rec = |id: &str, kind| DeploymentRecord {
            deployment_id: id.into(),
            application: "a".into(),
            deployment_group: "g".into(),
            function: "f".into(),
            alias: "live".into(),
            from_version: "1".into(),
            to_version: "2".into(),
            status: DeploymentStatus::Succeeded,
            kind,
            created_ms: 0,
            started_ms: None,
            ended_ms: None,
        };
        let h = History {
            deployments: vec![
                rec("d-rb", DeploymentKind::Rollback),
                rec("d-1", DeploymentKind::Release),
            ],
            quarantined: BTreeSet::new(),
        };
        assert_eq!(h.latest_release().unwrap().deployment_id, "d-1");
    }
}
