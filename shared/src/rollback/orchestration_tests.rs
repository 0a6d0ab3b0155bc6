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
                request_id: "inv-1".into(),
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
    // Each rollback: history and alias, claim, UpdateAlias, settle, quarantine, then the
    // function's releases for its delivery metrics; the group's members in between.
    let one_rollback = [
        "Query",
        "GetAlias",
        "PutItem",
        "UpdateAlias",
        "UpdateItem",
        "PutItem",
    ];
    let mut expected: Vec<&str> = one_rollback.to_vec();
    expected.extend(["Query", "Query"]);
    expected.extend(one_rollback);
    expected.push("Query");
    assert_eq!(w.journal.calls(), expected);
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

// --- An operator's requests ---------------------------------------------------------

impl World {
    /// A manual request as the CLI sends it, through the whole handler.
    async fn request(&self, payload: Value) -> std::result::Result<Value, crate::failure::Failure> {
        run::handle_payload(&self.deps(), &payload).await
    }
}

fn manual(action: &str, extra: Value) -> Value {
    let mut v = serde_json::json!({"action": action, "function": "orders", "alias": "live",
        "requester": "alice", "reason": "incident 42"});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn outcomes(v: &Value) -> Vec<Value> {
    v["results"][0]["outcomes"].as_array().unwrap().clone()
}

/// The reason of the first outcome of a handled request.
fn first_reason(v: &Value) -> String {
    outcomes(v)[0]["reason"].as_str().unwrap().to_owned()
}

/// "Now": a release that ended three hours ago (outside the 60-minute window), with the
/// policy's switch off, is rolled back once; a second delivery, and an alarm after it,
/// find it done. The ledger keeps the request; the announcement says who and why.
#[tokio::test]
async fn a_manual_rollback_ignores_the_window_and_the_switch_and_acts_once() {
    let mut w = World::new();
    w.policies.documents.insert(
        "orders".into(),
        r#"{"rollback": {"enabled": false}}"#.into(),
    );
    w.released(DeploymentStatus::Succeeded, Some(180), "2")
        .await;
    assert!(
        !one(w.alarm(None).await).acted,
        "the alarm alone does nothing here"
    );
    let before = w.announced.all().len();
    let req = manual("rollback", serde_json::json!({"request_id": "r-1"}));
    let out = w.request(req.clone()).await.unwrap();
    let o = &outcomes(&out)[0];
    assert_eq!(
        (o["action"].as_str(), o["acted"].as_bool()),
        (Some("rollback"), Some(true)),
        "{o}"
    );
    let reason = o["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("manual rollback by alice (reason: incident 42) after deployment d-1"),
        "{reason}"
    );
    assert_eq!(w.alias_version(), "1");
    assert!(w.ledger.rows().quarantined[&("orders".into(), "live".into())].contains("2"));
    let again = w.request(req).await.unwrap();
    assert_eq!(outcomes(&again)[0]["acted"], false);
    assert!(one(w.alarm(None).await).acted.eq(&false));
    assert_eq!(
        w.releases.world().updates.len(),
        1,
        "one UpdateAlias in all"
    );
    let rows = w.ledger.rows();
    let claim = rows.claims.values().next().unwrap();
    assert_eq!(claim.0, "manual:r-1");
    assert_eq!(rows.requests.len(), 2);
    assert!(rows.requests[0].acted && rows.requests[0].requester == "alice");
    drop(rows);
    let announced = w.announced.all();
    assert_eq!(announced[before].1["action"], "rollback");
    assert_eq!(announced[before].1["alarm"], "manual rollback by alice");
}

/// During a CodeDeploy deployment, "now" stops it (CodeDeploy rolls back); the request
/// id defaults to the invocation's.
#[tokio::test]
async fn a_manual_rollback_during_a_deployment_stops_it() {
    let w = World::new();
    w.released(DeploymentStatus::InProgress, None, "1").await;
    let out = w
        .request(manual("rollback", serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(outcomes(&out)[0]["action"], "stop_deployment");
    assert_eq!(w.releases.world().stops, vec!["d-1".to_owned()]);
    assert_eq!(
        w.ledger.rows().claims.values().next().unwrap().0,
        "manual:inv-1"
    );
}

/// A frozen alias's alarm is decided and announced as what would be done, and nothing
/// moves; after the unfreeze the next alarm acts. The freeze is read with the history:
/// no call is added before `UpdateAlias`.
#[tokio::test]
async fn a_freeze_holds_alarms_back_until_it_is_lifted() {
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    let out = w
        .request(manual(
            "freeze",
            serde_json::json!({"minutes": 120, "request_id": "f-1"}),
        ))
        .await
        .unwrap();
    let o = &outcomes(&out)[0];
    assert_eq!(
        (o["action"].as_str(), o["acted"].as_bool()),
        (Some("freeze"), Some(true)),
        "{o}"
    );
    assert!(
        o["reason"].as_str().unwrap().contains("frozen until 20"),
        "{o}"
    );
    let held = one(w.alarm(None).await);
    assert_eq!(
        (held.action, held.acted, held.error),
        ("rollback", false, false),
        "{held:?}"
    );
    assert!(
        held.reason.starts_with("would roll back (frozen until "),
        "{}",
        held.reason
    );
    assert!(held.reason.contains("by alice: incident 42): point orders:live back from version 2 to 1, because alarm orders-errors fired"), "{}", held.reason);
    assert_eq!(w.releases.world().updates, vec![]);
    assert!(
        w.ledger.rows().claims.is_empty(),
        "nothing claimed while frozen"
    );
    let last = w.announced.all().pop().unwrap();
    assert!(last.0.reason.starts_with("would roll back"));
    // The same freeze delivered again says nothing more.
    let n = w.announced.all().len();
    w.request(manual(
        "freeze",
        serde_json::json!({"minutes": 120, "request_id": "f-1"}),
    ))
    .await
    .unwrap();
    assert_eq!(w.announced.all().len(), n);
    let out = w
        .request(manual("unfreeze", serde_json::json!({})))
        .await
        .unwrap();
    let o = &outcomes(&out)[0];
    assert_eq!(o["acted"], true, "{o}");
    assert!(
        o["reason"].as_str().unwrap().contains("lifted by alice"),
        "{o}"
    );
    w.journal.clear();
    let acted = one(w.alarm(Some("2099-01-01T00:00:00.000+0000")).await);
    assert!(acted.acted, "{acted:?}");
    assert_eq!(
        w.journal.before_update_alias().len(),
        3,
        "{:?}",
        w.journal.calls()
    );
    let again = w
        .request(manual("unfreeze", serde_json::json!({})))
        .await
        .unwrap();
    assert!(first_reason(&again).contains("was not frozen"));
}

/// A freeze past its time holds nothing; a manual rollback is never held by one.
#[tokio::test]
async fn an_expired_freeze_holds_nothing_and_a_manual_rollback_is_never_held() {
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    let past = super::ledger::Freeze {
        until_ms: run::now_ms() - 1,
        by: "bob".into(),
        reason: "old".into(),
        at_ms: 0,
        request_id: "f-0".into(),
        lifted_by: None,
        lifted_ms: None,
    };
    w.ledger
        .rows()
        .freezes
        .insert(("orders".into(), "live".into()), past.clone());
    assert!(one(w.alarm(None).await).acted);
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    let mut current = past;
    current.until_ms = run::now_ms() + 60 * MIN;
    w.ledger
        .rows()
        .freezes
        .insert(("orders".into(), "live".into()), current);
    let out = w
        .request(manual("rollback", serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(outcomes(&out)[0]["acted"], true);
}

/// Outside the allow-list or home, nothing is read or written for the function; the
/// refusal is announced. A freeze of an alias that does not exist is refused.
#[tokio::test]
async fn requests_keep_to_the_allow_list_and_existing_aliases() {
    let mut w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    w.settings.allow =
        AllowList::parse("arn:aws:lambda:us-east-1:123456789012:function:payments-*");
    w.journal.clear();
    let requests = [
        ("rollback", serde_json::json!({})),
        ("freeze", serde_json::json!({"minutes": 5})),
        ("unfreeze", serde_json::json!({})),
    ];
    for (action, extra) in requests {
        let out = w.request(manual(action, extra)).await.unwrap();
        let o = &outcomes(&out)[0];
        assert_eq!(o["acted"], false, "{o}");
        assert!(
            o["reason"]
                .as_str()
                .unwrap()
                .contains("not in the rollback allow-list"),
            "{o}"
        );
    }
    assert_eq!(
        w.journal.calls(),
        Vec::<&str>::new(),
        "no call for a refused function"
    );
    let foreign = "arn:aws:lambda:eu-west-1:123456789012:function:orders";
    let out = w
        .request(manual("rollback", serde_json::json!({"function": foreign})))
        .await
        .unwrap();
    assert!(first_reason(&out).contains("another account, region"));
    assert_eq!(w.announced.all().len(), 4, "every refusal announced");
    assert!(w.ledger.rows().freezes.is_empty() && w.ledger.rows().requests.is_empty());
    w.settings.allow = AllowList::parse("*");
    let out = w
        .request(manual(
            "freeze",
            serde_json::json!({"alias": "liev", "minutes": 5}),
        ))
        .await
        .unwrap();
    assert!(first_reason(&out).contains("alias does not exist"));
    assert!(w.ledger.rows().freezes.is_empty());
}

/// Without an alias, a freeze covers every alias the ledger recorded for the function;
/// a function with none is told to name one.
#[tokio::test]
async fn a_freeze_without_an_alias_covers_every_recorded_alias() {
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    let mut req = manual("freeze", serde_json::json!({"minutes": 30}));
    req.as_object_mut().unwrap().remove("alias");
    let out = w.request(req.clone()).await.unwrap();
    assert_eq!(outcomes(&out).len(), 1);
    assert!(
        w.ledger
            .rows()
            .freezes
            .contains_key(&("orders".into(), "live".into()))
    );
    req["function"] = Value::from("payments");
    let out = w.request(req).await.unwrap();
    assert!(first_reason(&out).contains("name the alias"));
}

/// A malformed request is refused before anything is read or written.
#[tokio::test]
async fn a_bad_request_changes_nothing() {
    let w = World::new();
    w.journal.clear();
    let err = w
        .request(manual("freeze", serde_json::json!({"minutes": 100_000})))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("a freeze lasts 1 to 10080 minutes"),
        "{err}"
    );
    assert_eq!(w.journal.calls(), Vec::<&str>::new());
    assert!(w.announced.all().is_empty());
}

/// What the function tells CloudWatch about a function's delivery after a rollback: the
/// release rolled back is a change failure and a rollback, with its time to restore.
#[tokio::test]
async fn the_delivery_metrics_count_the_rolled_back_release() {
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(10), "2").await;
    let before = run::emit_delivery(&w.ledger, "orders").await.unwrap();
    assert_eq!(before.account.counts.releases, 1);
    assert_eq!(before.account.change_failure_rate.count, 0);
    let transition = crate::clock::utc(run::now_ms() - 1_000);
    assert!(one(w.alarm(Some(&transition)).await).acted);
    let after = run::emit_delivery(&w.ledger, "orders").await.unwrap();
    let f = &after.functions[0].figures;
    assert_eq!(
        (f.change_failure_rate.count, f.change_failure_rate.of),
        (1, 1)
    );
    assert_eq!(f.rollback_rate.count, 1);
    assert_eq!(f.time_to_restore.samples, 1, "{:?}", f.time_to_restore);
}

// --- The stack's schedule: the account's delivery metrics ---------------------------

/// The event an EventBridge schedule rule sends (tests/fixtures/samples, whose source
/// SOURCES.md names).
fn scheduled_event() -> Value {
    serde_json::from_str(include_str!(
        "../../../tests/fixtures/samples/eventbridge-scheduled-event.json"
    ))
    .unwrap()
}

#[tokio::test]
async fn the_schedule_summarises_every_release_of_the_account_in_one_read() {
    let w = World::new();
    w.deployed("orders", "d-1", DeploymentStatus::Succeeded, Some(90), "2")
        .await;
    w.deployed("payments", "d-2", DeploymentStatus::Failed, Some(30), "2")
        .await;
    w.deployed("search", "d-3", DeploymentStatus::Succeeded, Some(10), "2")
        .await;
    w.journal.clear();
    let out = w.request(scheduled_event()).await.unwrap();
    let result = &out["results"][0];
    assert_eq!(
        result["schedule"],
        "arn:aws:events:us-east-1:123456789012:rule/rollgate-delivery-summary"
    );
    let account = &result["delivery"]["account"];
    assert_eq!(account["counts"]["releases"], 3, "{out:#}");
    assert_eq!(account["change_failure_rate"]["count"], 1, "{account:#}");
    assert_eq!(result["delivery"]["functions"].as_array().unwrap().len(), 3);
    // One read of the table; nothing written, moved or announced.
    assert_eq!(w.journal.calls(), vec!["Scan"]);
}

#[tokio::test]
async fn a_summary_that_cannot_read_the_ledger_fails_for_a_retry_and_touches_nothing() {
    let w = World::new();
    w.released(DeploymentStatus::Succeeded, Some(90), "2").await;
    *w.ledger.scan_error.lock().unwrap() = Some(Error::Aws {
        service: "dynamodb",
        operation: "Scan",
        code: Some("AccessDeniedException".into()),
        message: "not authorized to perform: dynamodb:Scan".into(),
        retryable: false,
    });
    w.journal.clear();
    let failure = w.request(scheduled_event()).await.unwrap_err();
    assert_eq!(failure.class.as_str(), "AwsCallFailed", "{failure:?}");
    assert!(failure.message.contains("dynamodb:Scan"), "{failure:?}");
    assert_eq!(w.journal.calls(), vec!["Scan"]);
}

#[tokio::test]
async fn a_scheduled_event_from_anybody_but_eventbridge_or_another_account_is_refused() {
    let w = World::new();
    let mut forged = scheduled_event();
    forged["source"] = "my.app".into();
    let failure = w.request(forged).await.unwrap_err();
    assert!(failure.message.contains("aws.events"), "{failure:?}");
    let mut elsewhere = scheduled_event();
    elsewhere["account"] = "999999999999".into();
    assert_eq!(
        w.request(elsewhere).await.unwrap_err().class.as_str(),
        "InvalidEvent"
    );
    assert!(w.journal.calls().is_empty());
}
