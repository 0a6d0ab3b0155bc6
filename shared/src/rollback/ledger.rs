//! The deployment ledger's model: what is stored per function and alias, and its keys.
//!
//! One DynamoDB table, string keys `pk`/`sk`:
//!
//! | pk | sk | item |
//! |---|---|---|
//! | `fn#<function>#<alias>` | `dep#<created ms, 13 digits>#<deployment id>` | a CodeDeploy deployment: versions, status, times, kind; the function's group and its policy's rollback settings when recorded |
//! | `fn#<function>#<alias>` | `rb#<alias RevisionId>` | a rollback claim: written once (conditional) before `UpdateAlias` |
//! | `fn#<function>#<alias>` | `stop#<deployment id>` | a stop claim: written once before `StopDeployment` |
//! | `fn#<function>#<alias>` | `quarantine#<version>` | a version rollgate took out of service; never restored |
//! | `fn#<function>` | `alias#<alias>` | the aliases rollgate has seen deployed |
//! | `group#<group>` | `member#<function>#<alias>` | the functions of a `rollgate:group` |
//! | `fn#<function>#<alias>` | `rollout` | the alias's rollgate rollout (running, or the last one): its state as JSON, its sequence, whether it ended |
//! | `fn#<function>#<alias>` | `rollout#<id>#<seq, 6 digits>` | one change of a rollout: step, weight, verdict, who, why |
//! | `fn#<function>#<alias>` | `shift#<deployment id>#<round, 3 digits>` | one judgement during a CodeDeploy deployment's traffic shift ([`ShiftJudgement`]); `shift#<deployment id>#end` once it ended |
//! | `fn#<function>#<alias>` | `freeze` | the alias's latest freeze ([`Freeze`]): automatic rollbacks held until a time; lifted early by an unfreeze |
//! | `fn#<function>#<alias>` | `req#<ms, 13 digits>#<request id>` | one manual request (rollback, freeze, unfreeze): who, why, what came of it ([`RequestRow`]) |
//!
//! Deployment keys sort by creation time, and `dep#` < `quarantine#` with no other prefix
//! between them: one descending `Query` over that range reads the quarantined versions
//! and then the newest deployments ([`HISTORY_RANGE`]). The `freeze` row sorts between
//! them on purpose: the same read tells whether automatic rollbacks are held. Claims are keyed by the alias revision an action is based on: two
//! alarms (or two deliveries of one) that saw the same revision compete for one item,
//! and only the winner acts.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

/// Who moved the alias: CodeDeploy, a rollgate rollout, or any other caller of Lambda's
/// API (CodePipeline, Terraform, CDK, the CLI), learnt from CloudTrail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    #[default]
    CodeDeploy,
    Rollout,
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::CodeDeploy => "codedeploy",
            Origin::Rollout => "rollout",
            Origin::Api => "api",
        }
    }

    /// Rows written before the origin was recorded are CodeDeploy's.
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("rollout") => Origin::Rollout,
            Some("api") => Origin::Api,
            _ => Origin::CodeDeploy,
        }
    }
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
    /// Who moved the alias.
    #[serde(default)]
    pub origin: Origin,
    /// Who asked for the release, as the source names them (a CloudTrail
    /// `userIdentity.arn`, a rollout's requester); `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
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

/// The sort-key range of one `Query` that reads a function and alias's history: every
/// `dep#` and `quarantine#` row and nothing else (`$` follows `#`).
pub const HISTORY_RANGE: (&str, &str) = ("dep#", "quarantine$");

pub fn rollback_sort(alias_revision: &str) -> String {
    format!("rb#{alias_revision}")
}

pub fn stop_sort(deployment_id: &str) -> String {
    format!("stop#{deployment_id}")
}

/// The sort key of an alias's rollout state.
pub const ROLLOUT_SORT: &str = "rollout";

/// The sort-key prefix of one rollout's change rows.
pub fn rollout_event_prefix(id: &str) -> String {
    format!("rollout#{id}#")
}

pub fn rollout_event_sort(id: &str, seq: u64) -> String {
    format!("{}{seq:06}", rollout_event_prefix(id))
}

/// The sort-key prefix of a deployment's shift judgements (and its `end` row).
pub fn shift_prefix(deployment_id: &str) -> String {
    format!("shift#{deployment_id}#")
}

/// Outside the ledger's history range (`dep#`..`quarantine$`): an alarm's one read of a
/// release's history never pages through a shift's rounds.
pub fn shift_sort(deployment_id: &str, round: u32) -> String {
    format!("{}{round:03}", shift_prefix(deployment_id))
}

/// The row written once the judge stops watching a shift.
pub fn shift_end_sort(deployment_id: &str) -> String {
    format!("{}end", shift_prefix(deployment_id))
}

/// What the judge found at one round of a traffic shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftVerdict {
    Pass,
    Fail,
    Inconclusive,
    /// The metrics could not be read: nothing was judged.
    Unread,
}

/// One `shift#<deployment>#<round>` row: written by the rollout function's judge during
/// a CodeDeploy shift, read by the post-traffic hook once all traffic has moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftJudgement {
    pub at_ms: i64,
    pub round: u32,
    /// The new version's share of traffic when judged; absent when the alias was not
    /// split (nothing judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<ShiftVerdict>,
    /// The checks that failed (a failed round).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    /// The round's checks, each with its expected and actual values (a judged round;
    /// rows written before they were kept have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::decision::CheckResult>,
    /// Why nothing was judged (an unread round).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How `StopDeployment` went (a failed round).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
}

impl ShiftJudgement {
    /// A round with nothing judged yet (the caller sets what it found).
    pub fn new(at_ms: i64, round: u32, weight: Option<f64>) -> Self {
        ShiftJudgement {
            at_ms,
            round,
            weight,
            verdict: None,
            failed: Vec::new(),
            checks: Vec::new(),
            detail: None,
            stop: None,
        }
    }
}

/// The partition of an alias's gate decisions, apart from the alias's ledger: the hooks'
/// roles may write only partitions starting `gate#` (IAM's `dynamodb:LeadingKeys`), so a
/// hook, which runs whatever function is being deployed, can neither forge nor overwrite a
/// release, a claim or a freeze.
pub fn decision_partition(function: &str, alias: &str) -> String {
    format!("{DECISION_PARTITION_PREFIX}{function}#{alias}")
}

/// What every decision partition starts with (the hooks' IAM condition names it).
pub const DECISION_PARTITION_PREFIX: &str = "gate#";

/// The sort-key prefix of the gates' decisions about one deployment.
pub fn decision_prefix(deployment_id: &str) -> String {
    format!("decision#{deployment_id}#")
}

/// One gate's decision about a deployment, in [`decision_partition`]; a deployment's
/// decisions sort by time.
pub fn decision_sort(deployment_id: &str, at_ms: i64, component: &str) -> String {
    format!(
        "{}{:013}#{component}",
        decision_prefix(deployment_id),
        at_ms.max(0)
    )
}

/// The sort key of an alias's freeze: inside [`HISTORY_RANGE`] (`dep#` < `freeze` <
/// `quarantine#`), so the alarm's one history read carries it.
pub const FREEZE_SORT: &str = "freeze";

/// The sort-key prefix of manual requests (outside [`HISTORY_RANGE`]).
pub const REQUEST_PREFIX: &str = "req#";

pub fn request_sort(at_ms: i64, request_id: &str) -> String {
    format!("{REQUEST_PREFIX}{:013}#{request_id}", at_ms.max(0))
}

/// Automatic rollbacks of one alias held until `until_ms`: its alarms are still decided
/// and announced, as what would have been done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub until_ms: i64,
    pub by: String,
    pub reason: String,
    pub at_ms: i64,
    /// The request that froze it: a second delivery of the same request changes nothing.
    pub request_id: String,
    /// Who lifted it before its time, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_ms: Option<i64>,
}

impl Freeze {
    /// Whether automatic rollbacks are held at `now_ms`.
    pub fn holds(&self, now_ms: i64) -> bool {
        now_ms < self.until_ms
    }
}

/// One manual request as the ledger keeps it, per alias it was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRow {
    pub function: String,
    pub alias: String,
    pub request_id: String,
    /// `rollback`, `freeze` or `unfreeze`.
    pub action: String,
    pub requester: String,
    pub reason: String,
    pub at_ms: i64,
    /// What came of it, as announced.
    pub outcome: String,
    /// Whether something was changed (an alias moved, a deployment stopped, a freeze set or lifted).
    pub acted: bool,
}

impl RequestRow {
    pub fn sort_key(&self) -> String {
        request_sort(self.at_ms, &self.request_id)
    }
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

/// What rollgate wrote beside a deployment when it recorded a state change: the
/// function's `rollgate:group` tag and its policy's rollback settings at that moment.
/// An alarm then needs neither `GetFunction` nor `GetParameter` before it acts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseContext {
    pub group: Option<String>,
    /// `None` when the policy could not be read when the deployment was recorded: the
    /// alarm reads it then.
    pub rollback: Option<RollbackSettings>,
}

/// A policy's `rollback` section as applied (recorded with a deployment, or read when an
/// alarm fires): whether to act, the bake window, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackSettings {
    pub enabled: bool,
    pub bake_minutes: u64,
    /// Where the settings came from (the policy's name, or why the defaults applied).
    pub source: String,
}

impl RollbackSettings {
    /// Rollback enabled with the stack's bake window, `source` saying why.
    pub fn defaults(bake_minutes: u64, source: impl Into<String>) -> Self {
        RollbackSettings {
            enabled: true,
            bake_minutes,
            source: source.into(),
        }
    }
}

/// What the ledger knows about one function and alias.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Newest first.
    pub deployments: Vec<DeploymentRecord>,
    pub quarantined: BTreeSet<String>,
    /// What was recorded beside each deployment, by deployment id.
    pub contexts: BTreeMap<String, ReleaseContext>,
    /// The alias's latest freeze, in force or not.
    pub freeze: Option<Freeze>,
}

impl History {
    /// The newest deployment that released a version (CodeDeploy's own rollback
    /// deployments are not releases).
    pub fn latest_release(&self) -> Option<&DeploymentRecord> {
        self.deployments
            .iter()
            .find(|d| d.kind == DeploymentKind::Release)
    }

    /// The version the alias served after the newest row the ledger holds: a succeeded
    /// change's new version (unless rollgate quarantined it, and so pointed the alias
    /// back), else the version before it (a shift in progress serves the old version
    /// with weights; a failed or stopped one returned to it). `None` for an alias the
    /// ledger never saw.
    pub fn serving(&self) -> Option<String> {
        let last = self.deployments.first()?;
        let version = match last.status {
            DeploymentStatus::Succeeded if !self.quarantined.contains(&last.to_version) => {
                &last.to_version
            }
            _ => &last.from_version,
        };
        (!version.is_empty()).then(|| version.clone())
    }

    /// What was recorded beside the newest release.
    pub fn latest_context(&self) -> Option<&ReleaseContext> {
        self.contexts.get(&self.latest_release()?.deployment_id)
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
    /// When what asked for the action happened (the alarm's transition, the manual
    /// request): with the time the claim settles, the time to restore.
    pub since_ms: Option<i64>,
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
            origin: Origin::CodeDeploy,
            initiator: None,
        };
        let h = History {
            deployments: vec![
                rec("d-rb", DeploymentKind::Rollback),
                rec("d-1", DeploymentKind::Release),
            ],
            quarantined: BTreeSet::new(),
            contexts: BTreeMap::from([("d-1".into(), ReleaseContext::default())]),
            freeze: None,
        };
        assert_eq!(h.latest_release().unwrap().deployment_id, "d-1");
        assert_eq!(h.latest_context(), Some(&ReleaseContext::default()));
    }

    #[test]
    fn the_history_range_holds_deployments_and_quarantines_only() {
        let (low, high) = HISTORY_RANGE;
        let inside = |k: &str| low <= k && k <= high;
        // Every kind of row a function and alias's partition holds.
        assert!(inside(&deployment_sort(0, "d-A")));
        assert!(inside(&deployment_sort(i64::MAX, "d-ZZZZZZZZZ")));
        assert!(inside(&quarantine_sort("1")));
        assert!(inside(&quarantine_sort("$LATEST")));
        assert!(inside(&quarantine_sort(&"9".repeat(40))));
        assert!(!inside(&rollback_sort(
            "0d8f1c2e-aaaa-4bbb-8ccc-000000000000"
        )));
        assert!(!inside(&stop_sort("d-ABCDEFGHI")));
        assert!(!inside(ROLLOUT_SORT));
        assert!(!inside(&shift_sort("d-ABCDEFGHI", 288)));
        assert!(!inside(&shift_end_sort("d-ABCDEFGHI")));
        assert!(!inside(&rollout_event_sort("rl-0123456789abcdef", 12)));
        assert!(!inside(&request_sort(i64::MAX, "r-1")));
        assert!(!inside(&request_sort(0, "")));
        // The freeze is read with the history, after the quarantines and before the
        // newest deployment.
        assert!(inside(FREEZE_SORT));
        assert!(FREEZE_SORT > deployment_sort(i64::MAX, "d-ZZZZZZZZZ").as_str());
        assert!(FREEZE_SORT < quarantine_sort("").as_str());
        // Descending, quarantines come before the newest deployment.
        assert!(quarantine_sort("1") > deployment_sort(i64::MAX, "d-Z"));
    }
}
