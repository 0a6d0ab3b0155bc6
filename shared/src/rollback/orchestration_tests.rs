//! The alarm-rollback orchestration (`run`) through the in-memory ports of `fakes`: per
//! target stop, alias rollback, races, claims, retries, dry run, and the ledger.

use super::event::{self, Inbound};
use super::fakes::{Announced, FakeReleases, Journal, MemLedger, MemPolicies, MemTags};
use super::ledger::{DeploymentKind, DeploymentStatus};
use super::ports::{ReleaseMeta, StopOutcome};
use super::run::{self, Deps, Settings, TargetOutcome};
use crate::appspec::LambdaTarget;
use crate::error::Error;
use crate::ports::DeploymentInfo;
use crate::scope::{AllowList, Home};
use serde_json::Value;

const MIN: i64 = 60_000;

struct World {
    ledger: MemLedger,
    tags: MemTags,
    releases: FakeReleases,
    policies: MemPolicies,
    announced: Announced,
    settings: Settings,
    /// Every AWS call the fakes answered, in order.
    journal: Journal,
}

impl World {
    fn new() -> Self {
        let journal = Journal::default();
        World {
            ledger: MemLedger::with_journal(journal.clone()),
            tags: MemTags {
                journal: journal.clone(),
                ..MemTags::default()
            },
            releases: FakeReleases::with_journal(journal.clone()),
            policies: MemPolicies {
                journal: journal.clone(),
                ..MemPolicies::default()
            },
            announced: Announced::default(),
            journal,
            settings: Settings {
                bake_minutes: 60,
                dry_run: false,
                home: Home::from_parts("", Some("123456789012"), Some("us-east-1")),
                allow: AllowList::parse("*"),
                own_roles: AllowList::default(),
            },
        }
    }

    fn deps(&self) -> Deps<'_, MemLedger, MemTags, FakeReleases, MemPolicies, Announced> {
        Deps {
            ledger: &self.ledger,
            tags: &self.tags,
            releases: &self.releases,
            policies: &self.policies,
            announcer: &self.announced,
            settings: self.settings.clone(),
        }
    }

    /// orders:live released 1 -> 2 (`d-1`), started 20 minutes ago; the alias as given.
    async fn released(&self, status: DeploymentStatus, ended_min_ago: Option<i64>, alias: &str) {
        self.deployed("orders", "d-1", status, ended_min_ago, alias)
            .await;
    }

    /// `function`:live released 1 -> 2 as deployment `id`, started 20 minutes ago, and
    /// recorded the way the function does it: from CodeDeploy's state-change event.
    async fn deployed(
        &self,
        function: &str,
        id: &str,
        status: DeploymentStatus,
        ended_min_ago: Option<i64>,
        alias: &str,
    ) {
        let now = run::now_ms();
        let info = DeploymentInfo {
            deployment_id: id.into(),
            application: function.into(),
            deployment_group: "live".into(),
            status: status.as_str().into(),
            target: LambdaTarget {
                function_name: function.into(),
                function_ref: function.into(),
                alias: "live".into(),
                current_version: "1".into(),
                target_version: "2".into(),
                hooks: vec![],
            },
        };
        self.releases.world().releases.insert(
            id.into(),
            ReleaseMeta {
                info,
                kind: DeploymentKind::Release,
                created_ms: now - 20 * MIN,
                started_ms: Some(now - 20 * MIN),
                ended_ms: ended_min_ago.map(|m| now - m * MIN),
            },
        );
        let state = match status {
            DeploymentStatus::InProgress => "START",
            DeploymentStatus::Succeeded => "SUCCESS",
            DeploymentStatus::Failed => "FAILURE",
            DeploymentStatus::Stopped => "STOP",
        };
        run::record(&self.deps(), &change(id, state)).await.unwrap();
        self.releases.set_alias(function, "live", alias);
    }

    async fn alarm(&self, transition: Option<&str>) -> Vec<TargetOutcome> {
        let signal = alarm_signal(transition);
        run::handle_alarm(&self.deps(), &signal).await
    }

    fn alias_version(&self) -> String {
        self.releases.world().aliases[&("orders".into(), "live".into())]
            .version
            .clone()
    }
}

/// The published-shape sample (events/alarm-rollback-eventbridge.json): alarm
/// `orders-errors` on `FunctionName=orders`, `Resource=orders:live`, going to ALARM, with
/// `transition` as `state.timestamp` (none: no timestamp).
fn alarm_signal(transition: Option<&str>) -> event::AlarmSignal {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/alarm-rollback-eventbridge.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    match transition {
        Some(t) => v["detail"]["state"]["timestamp"] = Value::from(t),
        None => {
            v["detail"]["state"]
                .as_object_mut()
                .unwrap()
                .remove("timestamp");
        }
    }
    match event::parse(&v).unwrap().pop().unwrap() {
        Inbound::Alarm(a) => a,
        other => panic!("{other:?}"),
    }
}

fn one(outcomes: Vec<TargetOutcome>) -> TargetOutcome {
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    outcomes.into_iter().next().unwrap()
}

#[tokio::test]
async fn an_alarm_in_the_bake_window_rolls_back_once_and_quarantines() {
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    let o = one(w.alarm(None).await);
    assert_eq!(
        (o.action, o.acted, o.error),
        ("rollback", true, false),
        "{o:?}"
    );
    assert_eq!(w.alias_version(), "1");
    assert_eq!(
        w.releases.world().updates,
        vec![("orders".into(), "live".into(), "1".into())]
    );
    {
        let rows = w.ledger.rows();
        let claim = rows.claims.values().next().unwrap();
        assert!(claim.1.as_deref().unwrap().starts_with("rolled_back"));
        assert!(rows.quarantined[&("orders".into(), "live".into())].contains("2"));
    }
    let announced = w.announced.all();
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0].1["action"], "rollback");
    // The same transition delivered again acts no more.
    let again = one(w.alarm(None).await);
    assert_eq!((again.action, again.acted), ("none", false), "{again:?}");
    assert!(
        again.reason.contains("already rolled back") || again.reason.contains("already claimed"),
        "{}",
        again.reason
    );
    assert_eq!(w.releases.world().updates.len(), 1);
    assert_eq!(run::retry_needed(&[again]), None);
}

#[tokio::test]
async fn an_alarm_during_the_deployment_stops_it() {
    let w = World::new();
    w.released(DeploymentStatus::InProgress, None, "1").await;
    let o = one(w.alarm(None).await);
    assert_eq!((o.action, o.acted), ("stop_deployment", true), "{o:?}");
    assert_eq!(w.releases.world().stops, vec!["d-1".to_owned()]);
    assert_eq!(w.releases.world().updates, vec![]);
    assert!(w.ledger.rows().quarantined[&("orders".into(), "live".into())].contains("2"));
}

#[tokio::test]
async fn a_deployment_that_finished_meanwhile_is_refreshed_and_rolled_back() {
    let w = World::new();
    w.released(DeploymentStatus::InProgress, None, "2").await;
    {
        let mut world = w.releases.world();
        world
            .stop_answers
            .push_back(Ok(StopOutcome::AlreadyCompleted));
        let info = DeploymentInfo {
            deployment_id: "d-1".into(),
            application: "orders".into(),
            deployment_group: "live".into(),
            status: "Succeeded".into(),
            target: LambdaTarget {
                function_name: "orders".into(),
                function_ref: "orders".into(),
                alias: "live".into(),
                current_version: "1".into(),
                target_version: "2".into(),
                hooks: vec![],
            },
        };
        let now = run::now_ms();
        world.releases.insert(
            "d-1".into(),
            ReleaseMeta {
                info,
                kind: DeploymentKind::Release,
                created_ms: now - 20 * MIN,
                started_ms: Some(now - 20 * MIN),
                ended_ms: Some(now - MIN),
            },
        );
    }
    let o = one(w.alarm(None).await);
    assert_eq!((o.action, o.acted), ("rollback", true), "{o:?}");
    assert_eq!(w.alias_version(), "1");
}

#[tokio::test]
async fn an_alias_moved_meanwhile_is_not_overwritten() {
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    w.releases.world().races = 1;
    let o = one(w.alarm(None).await);
    assert_eq!((o.action, o.acted), ("none", false), "{o:?}");
    assert!(o.reason.contains("UpdateAlias refused"), "{}", o.reason);
    assert_eq!(w.releases.world().updates, vec![]);
    let rows = w.ledger.rows();
    assert_eq!(
        rows.claims.values().next().unwrap().1.as_deref(),
        Some("stale")
    );
}

#[tokio::test]
async fn a_failed_rollback_fails_the_invocation_and_its_retry_acts() {
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    w.releases.world().update_errors.push_back(Error::Aws {
        service: "lambda",
        operation: "UpdateAlias",
        code: Some("ServiceException".into()),
        message: "try later".into(),
        retryable: true,
    });
    let first = one(w.alarm(None).await);
    assert!(first.error && !first.acted, "{first:?}");
    let why = run::retry_needed(std::slice::from_ref(&first)).unwrap();
    assert!(why.contains("try later"), "{why}");
    assert!(
        w.ledger
            .rows()
            .claims
            .values()
            .next()
            .unwrap()
            .1
            .as_deref()
            .unwrap()
            .starts_with("failed")
    );
    // Lambda's retry delivers the same event: the failed claim is taken again.
    let retry = one(w.alarm(None).await);
    assert_eq!((retry.action, retry.acted), ("rollback", true), "{retry:?}");
    assert_eq!(w.alias_version(), "1");
}

#[tokio::test]
async fn a_dry_run_says_what_it_would_do_and_does_nothing() {
    let mut w = World::new();
    w.settings.dry_run = true;
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    let o = one(w.alarm(None).await);
    assert_eq!(
        (o.action, o.acted, o.dry_run),
        ("rollback", false, true),
        "{o:?}"
    );
    assert!(
        o.reason
            .starts_with("dry run: would point orders:live back"),
        "{}",
        o.reason
    );
    assert_eq!(w.alias_version(), "2");
    assert!(w.ledger.rows().claims.is_empty());
}

#[tokio::test]
async fn a_transition_from_before_the_release_changes_nothing() {
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    let o = one(w.alarm(Some("2001-01-01T00:00:00.000+0000")).await);
    assert_eq!((o.action, o.acted), ("none", false), "{o:?}");
    assert!(o.reason.contains("not this release"), "{}", o.reason);
    assert_eq!(w.alias_version(), "2");
    // A transition after the release started is acted on.
    let o = one(w.alarm(Some("2100-01-01T00:00:00.000+0000")).await);
    assert_eq!(o.action, "rollback");
}

#[tokio::test]
async fn a_policy_that_disables_rollback_is_honoured() {
    let mut w = World::new();
    w.policies.documents.insert(
        "orders".into(),
        r#"{"version": 1, "rollback": {"enabled": false}}"#.into(),
    );
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    let o = one(w.alarm(None).await);
    assert_eq!((o.action, o.acted), ("none", false), "{o:?}");
    assert!(o.reason.contains("disabled"), "{}", o.reason);
}

#[tokio::test]
async fn state_changes_feed_the_ledger_and_other_platforms_are_ignored() {
    let w = World::new();
    w.releases.world().servers.insert("d-EC2".into());
    let ignored = run::record(&w.deps(), &change("d-EC2", "START"))
        .await
        .unwrap();
    assert_eq!(ignored["ignored"], "d-EC2");
    assert!(w.ledger.rows().deployments.is_empty());
    // A Lambda deployment CodeDeploy cannot show yet fails, for Lambda's retry.
    let err = run::record(&w.deps(), &change("d-LATER", "START"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeploymentNotFound(_)), "{err}");
}

/// A CodeDeploy state-change event of deployment `id`.
fn change(id: &str, state: &str) -> super::event::DeploymentChange {
    super::event::DeploymentChange {
        event_id: None,
        application: "fleet".into(),
        deployment_group: "web".into(),
        deployment_id: id.into(),
        state: state.into(),
        time: None,
    }
}

/// The evidence of the announced decisions named `check`.
fn evidence(w: &World, check: &str) -> Vec<Value> {
    w.announced
        .all()
        .iter()
        .flat_map(|(d, _)| d.checks.iter())
        .filter(|c| c.name == check)
        .map(|c| serde_json::to_value(c).unwrap())
        .collect()
}

#[tokio::test]
async fn an_alarm_makes_three_calls_before_it_moves_the_alias() {
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    w.journal.clear();
    let o = one(w.alarm(None).await);
    assert_eq!(o.action, "rollback", "{o:?}");
    // The ledger read and GetAlias together, then the claim: no policy, no tags.
    let mut before = w.journal.before_update_alias();
    assert_eq!(before.pop(), Some("PutItem"), "{:?}", w.journal.calls());
    before.sort_unstable();
    assert_eq!(before, ["GetAlias", "Query"], "{:?}", w.journal.calls());
    let policy = &evidence(&w, "policy.rollback")[0];
    assert_eq!(
        policy["expected"]["source"],
        "default (as recorded with deployment d-1)"
    );
}

#[tokio::test]
async fn the_policy_recorded_with_the_release_is_the_one_applied() {
    let mut w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    // A policy written after the release applies from the next release on.
    w.policies.documents.insert(
        "orders".into(),
        r#"{"version": 1, "rollback": {"enabled": false}}"#.into(),
    );
    let o = one(w.alarm(None).await);
    assert_eq!((o.action, o.acted), ("rollback", true), "{o:?}");
}

#[tokio::test]
async fn a_policy_unreadable_when_recorded_is_read_when_the_alarm_fires() {
    let mut w = World::new();
    w.policies.errors.lock().unwrap().push_back(Error::Aws {
        service: "ssm",
        operation: "GetParameter",
        code: Some("ThrottlingException".into()),
        message: "slow down".into(),
        retryable: true,
    });
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    w.policies.documents.insert(
        "orders".into(),
        r#"{"version": 1, "rollback": {"enabled": true, "bake_minutes": 5}}"#.into(),
    );
    let o = one(w.alarm(None).await);
    // Ten minutes after the release ended, outside the policy's 5-minute window.
    assert_eq!((o.action, o.acted), ("none", false), "{o:?}");
    assert!(o.reason.contains("5-minute"), "{}", o.reason);
    assert!(w.journal.calls().contains(&"GetParameter"));
}

#[tokio::test]
async fn a_group_rolls_back_after_the_function_its_alarm_names() {
    let w = World::new();
    w.releases.world().groups.extend([
        ("orders".into(), "checkout".into()),
        ("payments".into(), "checkout".into()),
    ]);
    w.deployed(
        "payments",
        "d-2",
        DeploymentStatus::Succeeded,
        Some(10),
        "2",
    )
    .await;
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    w.journal.clear();
    let outcomes = w.alarm(None).await;
    assert_eq!(
        outcomes
            .iter()
            .map(|o| (o.function.as_deref().unwrap(), o.action, o.acted))
            .collect::<Vec<_>>(),
        [("orders", "rollback", true), ("payments", "rollback", true)]
    );
    assert_eq!(
        w.releases.world().updates,
        [
            ("orders".into(), "live".into(), "1".into()),
            ("payments".into(), "live".into(), "1".into())
        ]
    );
    // The named function moved before the group was looked up.
    let calls = w.journal.calls();
    assert!(
        !w.journal.before_update_alias().contains(&"GetFunction")
            && calls.iter().filter(|c| **c == "Query").count() == 3,
        "{calls:?}"
    );
    assert_eq!(evidence(&w, "group")[0]["expected"], "checkout");
}

/// The published-shape sample (events/alarm-rollback-cloudtrail.json): `UpdateAlias` of
/// orders:live to `version`, with `weights`, by the role `release-pipeline`.
fn alias_call(version: &str, weights: Value, event_id: &str) -> super::cloudtrail::AliasChange {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/alarm-rollback-cloudtrail.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for part in ["requestParameters", "responseElements"] {
        v["detail"][part]["functionVersion"] = Value::from(version);
        v["detail"][part]["routingConfig"] =
            serde_json::json!({"additionalVersionWeights": weights});
    }
    v["detail"]["eventID"] = Value::from(event_id);
    match event::parse(&v).unwrap().pop().unwrap() {
        Inbound::AliasChange(c) => c,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_release_made_with_update_alias_is_rolled_back_by_its_alarm() {
    let w = World::new();
    // CodeDeploy released version 1 -> 2 long ago; then somebody moved the alias to 3.
    w.released(DeploymentStatus::Succeeded, Some(600), "2")
        .await;
    w.releases.set_alias("orders", "live", "3");
    let recorded =
        run::record_alias_change(&w.deps(), &alias_call("3", serde_json::json!({}), "e-1"))
            .await
            .unwrap();
    assert_eq!(recorded["from_version"], "2", "{recorded}");
    assert_eq!(recorded["origin"], "api");
    assert!(
        recorded["initiator"]
            .as_str()
            .unwrap()
            .contains("release-pipeline")
    );
    // The sample's eventTime is long past: the alarm is judged from then.
    let o = one(w.alarm(None).await);
    assert!(o.reason.contains("outside"), "{o:?}");
    // A fresh call, inside the window, is undone.
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(600), "2")
        .await;
    let mut call = alias_call("3", serde_json::json!({}), "e-2");
    call.at_ms = run::now_ms() - 5 * MIN;
    w.releases.set_alias("orders", "live", "3");
    run::record_alias_change(&w.deps(), &call).await.unwrap();
    // A call superseded since (the alias moved on) is not recorded: its successor is.
    let late = run::record_alias_change(&w.deps(), &alias_call("4", serde_json::json!({}), "e-0"))
        .await
        .unwrap();
    assert!(
        late["reason"].as_str().unwrap().contains("superseded"),
        "{late}"
    );
    let o = one(w.alarm(None).await);
    assert_eq!((o.action, o.acted), ("rollback", true), "{o:?}");
    assert_eq!(w.alias_version(), "2");
    assert_eq!(o.deployment_id.as_deref(), Some("ct-e-2"));
}

#[tokio::test]
async fn a_weighted_shift_by_another_tool_is_undone_on_the_alias_and_own_calls_are_skipped() {
    let mut w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(600), "2")
        .await;
    let mut shift = alias_call("2", serde_json::json!({"3": 0.1}), "e-3");
    shift.at_ms = run::now_ms() - MIN;
    {
        let mut world = w.releases.world();
        let a = world
            .aliases
            .get_mut(&("orders".into(), "live".into()))
            .unwrap();
        a.weights.insert("3".into(), 0.1);
    }
    run::record_alias_change(&w.deps(), &shift).await.unwrap();
    let o = one(w.alarm(None).await);
    assert_eq!((o.action, o.acted), ("rollback", true), "{o:?}");
    assert_eq!(w.releases.world().stops, Vec::<String>::new());
    let a = w.releases.world().aliases[&("orders".into(), "live".into())].clone();
    assert_eq!((a.version.as_str(), a.weights.len()), ("2", 0));
    // rollgate's own role moving the alias is not recorded again.
    w.settings.own_roles = AllowList::parse("arn:aws:iam::123456789012:role/release-pipeline");
    let before = w.ledger.rows().deployments.len();
    w.releases.set_alias("orders", "live", "4");
    let skipped =
        run::record_alias_change(&w.deps(), &alias_call("4", serde_json::json!({}), "e-4"))
            .await
            .unwrap();
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("rollgate itself"),
        "{skipped}"
    );
    assert_eq!(w.ledger.rows().deployments.len(), before);
}
