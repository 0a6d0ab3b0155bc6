//! The alarm-rollback orchestration: ledger updates from CodeDeploy events, and for an
//! alarm: resolve targets, decide per function and alias, act exactly once, explain.

use super::cloudtrail::AliasChange;
use super::decide::{Action, AliasState, Facts, NoAction, decide};
use super::event::{AlarmSignal, DeploymentChange, Inbound};
use super::ledger::{Claim, ClaimOutcome, DeploymentRecord, DeploymentStatus};
use super::ledger::{Freeze, History, Origin, ReleaseContext, RollbackSettings};
use super::ledger::{rollback_sort, stop_sort};
use super::ports::UpdateOutcome;
use super::ports::{AlarmTags, Announcer, Ledger, ReleaseMeta, Releases, StopOutcome};
use super::targets::{self, Target};
use crate::clock::Instant;
use crate::decision::{CheckResult, Decision, Outcome, Verdict};
use crate::dora;
use crate::error::{Error, Result};
use crate::failure::{Class, Failure};
use crate::metrics::Emf;
use crate::policy::Policy;
use crate::ports::PolicyStore;
use crate::scope::{AllowList, Home};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const COMPONENT: &str = "alarm-rollback";
pub use crate::config::DEFAULT_BAKE_MINUTES;

#[derive(Debug, Clone)]
pub struct Settings {
    pub bake_minutes: u64,
    pub dry_run: bool,
    /// The account and region whose functions this function may act on.
    pub home: Home,
    /// Function ARN patterns it may act on (within home).
    pub allow: AllowList,
    /// rollgate's own roles (patterns): the alias changes they make are recorded where
    /// they act.
    pub own_roles: AllowList,
    /// The invocation's request id: a manual request that brings none of its own is
    /// keyed by it (Lambda's retries of an invocation keep it).
    pub request_id: String,
}

impl Settings {
    /// From the function's configuration, with home from `invoked_function_arn` (see
    /// [`Home::from_parts`]).
    pub fn new(config: &crate::config::RollbackConfig, invoked_function_arn: &str) -> Self {
        Settings {
            bake_minutes: config.bake_minutes,
            dry_run: config.dry_run,
            home: Home::from_parts(
                invoked_function_arn,
                config.common.account_id.as_deref(),
                config.common.region.as_deref(),
            ),
            allow: AllowList::parse(&config.allow),
            own_roles: AllowList::parse(&config.own_roles.join(",")),
            request_id: String::new(),
        }
    }

    pub fn with_request_id(self, request_id: impl Into<String>) -> Self {
        Settings {
            request_id: request_id.into(),
            ..self
        }
    }
}

pub struct Deps<'a, L, T, R, P, A> {
    pub ledger: &'a L,
    pub tags: &'a T,
    pub releases: &'a R,
    pub policies: &'a P,
    pub announcer: &'a A,
    pub settings: Settings,
}

/// What happened for one function and alias.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TargetOutcome {
    pub function: Option<String>,
    pub alias: Option<String>,
    /// `stop_deployment`, `rollback` or `none`.
    pub action: &'static str,
    /// The action was carried out (false for no-ops, dry runs and errors).
    pub acted: bool,
    pub dry_run: bool,
    pub reason: String,
    pub deployment_id: Option<String>,
    pub bad_version: Option<String>,
    pub good_version: Option<String>,
    pub error: bool,
}

/// Epoch milliseconds of a timestamp as AWS writes them in events: RFC 3339
/// (`2026-12-03T10:00:00Z`, `...+00:00`) or with the offset CloudWatch alarms use
/// (`2019-10-02T17:04:40.985+0000`, in `state.timestamp` and SNS `StateChangeTime`).
pub fn timestamp_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let digits = s[i + 1..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3 = &s[i + 1..i + 1 + digits.min(3)];
        millis = first3.parse::<i64>().ok()? * 10_i64.pow(3 - first3.len() as u32);
        i += 1 + digits;
    }
    let offset_min = match &s[i..] {
        "Z" | "z" => 0,
        off if off.len() == 6 && off.as_bytes()[3] == b':' => {
            sign(off)? * (num(i + 1, 2)? * 60 + num(i + 4, 2)?)
        }
        off if off.len() == 5 => sign(off)? * (num(i + 1, 2)? * 60 + num(i + 3, 2)?),
        _ => return None,
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

fn sign(offset: &str) -> Option<i64> {
    match offset.as_bytes().first() {
        Some(b'+') => Some(1),
        Some(b'-') => Some(-1),
        _ => None,
    }
}

pub use crate::clock::epoch_ms as now_ms;

/// One invocation of alarm-rollback: parse the payload (refusing, before anything is
/// done, one of no accepted shape or from another account or region), record deployment
/// state changes, act on alarms. A failed action fails the invocation
/// ([`Class::ActionFailed`]): Lambda's asynchronous retry delivers the event again, and
/// the retry redoes only what failed.
pub async fn handle_payload<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    payload: &Value,
) -> std::result::Result<Value, Failure>
where
    L: Ledger,
    T: AlarmTags,
    R: Releases,
    P: PolicyStore,
    A: Announcer,
{
    let inbound = super::event::parse_at_home(payload, &deps.settings.home)?;
    let mut results = Vec::new();
    let mut outcomes_all = Vec::new();
    for item in inbound {
        match item {
            Inbound::Deployment(change) => {
                results.push(record(deps, &change).await?);
            }
            Inbound::AliasChange(change) => {
                results.push(record_alias_change(deps, &change).await?);
            }
            Inbound::Alarm(alarm) => {
                let outcomes = handle_alarm(deps, &alarm).await;
                results.push(json!({"alarm": alarm.alarm_name, "outcomes": outcomes}));
                outcomes_all.extend(outcomes);
            }
            Inbound::Manual(request) => {
                let outcomes = super::manual::handle(deps, &request).await;
                results.push(json!({"request": request.action.name(), "outcomes": outcomes}));
                outcomes_all.extend(outcomes);
            }
            Inbound::Schedule { rule } => {
                let summary = delivery_summary(deps.ledger).await?;
                results.push(json!({"schedule": rule, "delivery": summary}));
            }
        }
    }
    if let Some(why) = retry_needed(&outcomes_all) {
        return Err(Failure::new(Class::ActionFailed, why));
    }
    Ok(json!({"results": results}))
}

/// A CodeDeploy state change: write the deployment into the ledger, with the function's
/// group and its policy's rollback settings as they stand now (an alarm later acts on
/// them without reading either again).
pub async fn record<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    change: &DeploymentChange,
) -> Result<Value>
where
    L: Ledger,
    R: Releases,
    P: PolicyStore,
{
    let meta = match deps.releases.release(&change.deployment_id).await {
        Ok(meta) => meta,
        // The state-change rule cannot tell Lambda deployments from EC2/ECS ones (the
        // event carries no compute platform): another platform's deployment is none of
        // rollgate's business. A no-op, not an error, so that Lambda does not retry it.
        Err(Error::NotLambda { id, platform }) => {
            tracing::info!(deployment = %id, platform = %platform, "not a Lambda deployment: ignored");
            return Ok(json!({"ignored": id, "platform": platform,
                "reason": format!("deployment {id} is a {platform} deployment, not a Lambda one")}));
        }
        // A Lambda deployment that cannot be read yet (not found, throttled) fails the
        // invocation: Lambda's asynchronous retry records it later.
        Err(e) => return Err(e),
    };
    let from_event = DeploymentStatus::from_event_state(&change.state);
    let live = DeploymentStatus::parse(&meta.info.status);
    let status = match (live, from_event) {
        // CodeDeploy's own answer wins once final: the event may be an older one.
        (Some(l), _) if l.is_final() => l,
        (_, Some(e)) => e,
        (Some(l), None) => l,
        (None, None) => DeploymentStatus::InProgress,
    };
    let event_ms = change.time.as_deref().and_then(timestamp_ms);
    let rec = to_record(&meta, status, event_ms);
    store(deps, &rec).await
}

/// An alias moved outside CodeDeploy (CloudTrail): a release in the ledger, from the
/// version the ledger last saw the alias serve, unless the call released nothing, is
/// recorded elsewhere, or was superseded since (see [`super::cloudtrail`]). Only
/// functions in scope are recorded.
pub async fn record_alias_change<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    change: &AliasChange,
) -> Result<Value>
where
    L: Ledger,
    R: Releases,
    P: PolicyStore,
{
    let ignored = |reason: String| {
        tracing::info!(event = %change.event_id, function = %change.function, alias = %change.alias, %reason, "alias change not recorded");
        Ok(
            json!({"ignored": format!("ct-{}", change.event_id), "function": change.function,
            "alias": change.alias, "reason": reason}),
        )
    };
    if let Some(reason) = change.not_recorded(&deps.settings.own_roles) {
        return ignored(reason);
    }
    if let Err(why) = allowed(&deps.settings.home, &deps.settings.allow, &change.function) {
        return ignored(why.to_string());
    }
    let (history, now) = tokio::try_join!(
        deps.ledger.history(&change.function, &change.alias),
        deps.releases.alias(&change.function, &change.alias)
    )?;
    if let Some(reason) = super::cloudtrail::superseded(change, now.as_ref()) {
        return ignored(reason);
    }
    match super::cloudtrail::to_record(change, &history) {
        Some(rec) => store(deps, &rec).await,
        None => ignored(format!(
            "the alias already served version {}: nothing was released",
            change.version
        )),
    }
}

/// Write a release into the ledger with the function's group and its policy's rollback
/// settings as they stand now (an alarm later acts on them without reading either again).
async fn store<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    rec: &DeploymentRecord,
) -> Result<Value>
where
    L: Ledger,
    R: Releases,
    P: PolicyStore,
{
    let (group, rollback) = tokio::join!(
        deps.releases.function_group(&rec.function),
        read_rollback_settings(deps.policies, &rec.function, deps.settings.bake_minutes)
    );
    let group = group.or_else(|e| {
        // A transient failure is retried (group rollback needs the group); a refusal
        // (no lambda:ListTags, say) is logged loudly and the release recorded without it.
        if e.is_retryable() {
            return Err(e);
        }
        tracing::error!(error = %e, function = %rec.function, "could not read the function's tags: recorded without a group");
        Ok(None)
    })?;
    let context = ReleaseContext {
        group: group.clone(),
        rollback,
    };
    deps.ledger.record_deployment(rec, &context).await?;
    if rec.status.is_final() {
        emit_delivery(deps.ledger, &rec.function).await;
    }
    tracing::info!(
        deployment = %rec.deployment_id, function = %rec.function, alias = %rec.alias,
        status = rec.status.as_str(), kind = ?rec.kind, origin = rec.origin.as_str(),
        "deployment recorded in the ledger"
    );
    Ok(
        json!({"recorded": rec.deployment_id, "status": rec.status.as_str(),
        "function": rec.function, "alias": rec.alias, "group": group,
        "from_version": rec.from_version, "to_version": rec.to_version,
        "origin": rec.origin.as_str(), "initiator": rec.initiator,
        "rollback": context.rollback}),
    )
}

fn to_record(
    meta: &ReleaseMeta,
    status: DeploymentStatus,
    event_ms: Option<i64>,
) -> DeploymentRecord {
    let t = &meta.info.target;
    DeploymentRecord {
        deployment_id: meta.info.deployment_id.clone(),
        application: meta.info.application.clone(),
        deployment_group: meta.info.deployment_group.clone(),
        function: t.function_name.clone(),
        alias: t.alias.clone(),
        from_version: t.current_version.clone(),
        to_version: t.target_version.clone(),
        status,
        kind: meta.kind,
        created_ms: meta.created_ms,
        started_ms: meta.started_ms,
        ended_ms: if status.is_final() {
            meta.ended_ms.or(event_ms)
        } else {
            None
        },
        origin: Origin::CodeDeploy,
        initiator: None,
    }
}

/// The function's rollback policy, its defaults when it has none or is invalid (a
/// broken policy must not block an emergency rollback: the source says so); `None` when
/// it cannot be read.
async fn read_rollback_settings<P: PolicyStore>(
    policies: &P,
    function: &str,
    default_bake: u64,
) -> Option<RollbackSettings> {
    match policies.policy(function).await {
        Ok(None) => Some(RollbackSettings::defaults(default_bake, "default")),
        Ok(Some(doc)) => Some(match Policy::parse(&doc.text) {
            Ok(p) => {
                let r = p.rollback.unwrap_or(crate::policy::RollbackPolicy {
                    enabled: true,
                    bake_minutes: None,
                });
                RollbackSettings {
                    enabled: r.enabled,
                    bake_minutes: r.bake_minutes.unwrap_or(default_bake),
                    source: doc.source,
                }
            }
            Err(e) => RollbackSettings::defaults(
                default_bake,
                format!("default (policy {} is invalid: {e})", doc.source),
            ),
        }),
        Err(e) => {
            tracing::warn!(error = %e, %function, "could not read the function's policy");
            None
        }
    }
}

/// The rollback settings an alarm acts on: those recorded with the newest release (its
/// policy when it was deployed), else the policy read now, else the defaults.
async fn target_settings<P: PolicyStore>(
    policies: &P,
    function: &str,
    history: &History,
    default_bake: u64,
) -> RollbackSettings {
    if let (Some(release), Some(r)) = (
        history.latest_release(),
        history.latest_context().and_then(|c| c.rollback.as_ref()),
    ) {
        return RollbackSettings {
            source: format!(
                "{} (as recorded with deployment {})",
                r.source, release.deployment_id
            ),
            ..r.clone()
        };
    }
    read_rollback_settings(policies, function, default_bake)
        .await
        .unwrap_or_else(|| RollbackSettings::defaults(default_bake, "default (policy unreadable)"))
}

/// An alarm state change: decide and act for every function it guards. The functions
/// the alarm names are acted on first; the groups their releases belong to are expanded
/// after (the named function's rollback waits for no other lookup).
pub async fn handle_alarm<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    alarm: &AlarmSignal,
) -> Vec<TargetOutcome>
where
    L: Ledger,
    T: AlarmTags,
    R: Releases,
    P: PolicyStore,
    A: Announcer,
{
    let started = Instant::now();
    let none = |reason: NoAction| no_action(reason, deps.settings.dry_run);
    if !alarm.is_alarm() {
        // Transitions to OK / INSUFFICIENT_DATA are logged, not announced.
        let o = none(NoAction::NotAlarm {
            state: alarm.state.clone(),
        });
        tracing::info!(alarm = %alarm.alarm_name, reason = %o.reason, "ignored");
        return vec![o];
    }
    let mut evidence = vec![CheckResult::pass(
        "alarm",
        json!("ALARM"),
        json!({"name": alarm.alarm_name, "state": alarm.state, "envelope": alarm.envelope,
            "event": alarm.event_key(), "reason": alarm.reason}),
    )];
    let Guarded {
        named,
        refused,
        mut groups,
    } = guarded(deps, alarm, &mut evidence).await;
    let mut out = Vec::new();
    for (function, why) in refused {
        out.push(refused_target(deps, alarm, function, why, &evidence, started).await);
    }
    let mut done = BTreeSet::new();
    for (function, alias, version) in named {
        let mut ev = evidence.clone();
        let (o, group) =
            one_target(deps, alarm, &function, &alias, version.as_deref(), &mut ev).await;
        announce(deps, alarm, &o, ev, started).await;
        out.push(o);
        groups.extend(group);
        done.insert((function, alias));
    }
    for (group, function, alias) in group_members(deps, &groups, &done).await {
        if let Err(why) = allowed(&deps.settings.home, &deps.settings.allow, &function) {
            out.push(refused_target(deps, alarm, function, why, &evidence, started).await);
            continue;
        }
        let mut ev = evidence.clone();
        ev.push(CheckResult::pass(
            "group",
            json!(group),
            json!({"member": format!("{function}:{alias}")}),
        ));
        let (o, _) = one_target(deps, alarm, &function, &alias, None, &mut ev).await;
        announce(deps, alarm, &o, ev, started).await;
        out.push(o);
    }
    if out.is_empty() {
        let o = none(NoAction::NoTargets);
        tracing::info!(alarm = %alarm.alarm_name, "the alarm guards no function: ignored");
        announce(deps, alarm, &o, evidence, started).await;
        return vec![o];
    }
    out
}

/// A function the alarm guards but alarm-rollback may not act on: announced, left alone.
async fn refused_target<L, T, R, P, A: Announcer>(
    deps: &Deps<'_, L, T, R, P, A>,
    alarm: &AlarmSignal,
    function: String,
    why: NoAction,
    evidence: &[CheckResult],
    started: Instant,
) -> TargetOutcome {
    let o = TargetOutcome {
        function: Some(function),
        ..no_action(why, deps.settings.dry_run)
    };
    tracing::info!(alarm = %alarm.alarm_name, reason = %o.reason, "out of scope: left alone");
    announce(deps, alarm, &o, evidence.to_vec(), started).await;
    o
}

/// `(group, function, alias)` of the members of `groups` not in `done`, each once.
async fn group_members<L: Ledger, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    groups: &BTreeSet<String>,
    done: &BTreeSet<(String, String)>,
) -> Vec<(String, String, String)> {
    let mut seen = done.clone();
    let mut out = Vec::new();
    for g in groups {
        match deps.ledger.group_members(g).await {
            Ok(members) => {
                for (f, a) in members {
                    if seen.insert((f.clone(), a.clone())) {
                        out.push((g.clone(), f, a));
                    }
                }
            }
            Err(e) => tracing::warn!(group = %g, error = %e, "could not read the group's members"),
        }
    }
    out
}

/// A target left alone, and why.
pub(super) fn no_action(reason: NoAction, dry_run: bool) -> TargetOutcome {
    TargetOutcome {
        function: None,
        alias: None,
        action: "none",
        acted: false,
        dry_run,
        reason: reason.to_string(),
        deployment_id: None,
        bad_version: None,
        good_version: None,
        error: false,
    }
}

/// The `(function, alias, version)` the alarm names (its dimensions or its tags, an
/// alias-less function expanded to the aliases the ledger recorded) within scope and the
/// allow-list, the functions left out with why, and the groups its tags name. Adds the
/// `alarm.tags` and `targets` evidence.
async fn guarded<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    alarm: &AlarmSignal,
    evidence: &mut Vec<CheckResult>,
) -> Guarded
where
    L: Ledger,
    T: AlarmTags,
{
    let tags = match (&alarm.alarm_arn, targets::needs_tags(alarm)) {
        (Some(arn), true) => match deps.tags.tags(arn).await {
            Ok(t) => Some(t),
            Err(e) => {
                evidence.push(
                    CheckResult::new("alarm.tags", Outcome::Inconclusive, json!(arn), json!(null))
                        .with_detail(e.to_string()),
                );
                None
            }
        },
        _ => None,
    };
    let mut resolution = targets::resolve(alarm, tags.as_ref());
    // Out of scope targets are dropped before any AWS call is made with their names.
    let (home, allow) = (&deps.settings.home, &deps.settings.allow);
    let (in_scope, refused) = scope_targets(home, allow, std::mem::take(&mut resolution.targets));
    let named = with_aliases(deps.ledger, &in_scope).await;
    evidence.push(CheckResult::pass(
        "targets",
        json!(resolution.source),
        json!({"targets": named.iter().map(|(f, a, _)| format!("{f}:{a}")).collect::<Vec<_>>(),
            "groups": resolution.groups,
            "out_of_scope": refused.iter().map(|(f, _)| f).collect::<Vec<_>>()}),
    ));
    Guarded {
        named,
        refused,
        groups: resolution.groups,
    }
}

/// What an alarm names: the targets to act on, those left alone and why, and the groups
/// its tags name.
struct Guarded {
    named: Vec<(String, String, Option<String>)>,
    refused: Vec<(String, NoAction)>,
    groups: BTreeSet<String>,
}

/// Targets with their aliases (a function named without one: every alias the ledger
/// recorded for it); each `(function, alias, version)` once.
async fn with_aliases<L: Ledger>(
    ledger: &L,
    targets: &BTreeSet<Target>,
) -> Vec<(String, String, Option<String>)> {
    let mut out: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    for Target {
        function,
        alias,
        version,
    } in targets
    {
        let aliases = match alias {
            Some(a) => vec![a.clone()],
            None => ledger.aliases(function).await.unwrap_or_default(),
        };
        if aliases.is_empty() {
            // Nothing recorded: still decide (and say so) under the function's name.
            out.entry((function.clone(), String::new()))
                .or_insert(version.clone());
        }
        for a in aliases {
            out.entry((function.clone(), a)).or_insert(version.clone());
        }
    }
    out.into_iter().map(|((f, a), v)| (f, a, v)).collect()
}

/// Split targets into those alarm-rollback may act on and those it leaves alone, with
/// why. A function given by an ARN of home becomes its plain name (the ledger's key); an
/// ARN of another account, region or partition, or a function outside the allow-list, is
/// out of scope.
pub fn scope_targets(
    home: &Home,
    allow: &AllowList,
    targets: BTreeSet<Target>,
) -> (BTreeSet<Target>, Vec<(String, NoAction)>) {
    let mut in_scope = BTreeSet::new();
    let mut refused: Vec<(String, NoAction)> = Vec::new();
    for t in targets {
        let Some(name) = home.local_function(&t.function) else {
            let why = NoAction::ForeignFunction {
                function: t.function.clone(),
            };
            refuse_once(&mut refused, t.function, why);
            continue;
        };
        match allowed(home, allow, &name) {
            Ok(()) => {
                in_scope.insert(Target {
                    function: name,
                    ..t
                });
            }
            Err(why) => refuse_once(&mut refused, name, why),
        }
    }
    (in_scope, refused)
}

/// Whether the allow-list covers `name`, a function of home.
pub(super) fn allowed(
    home: &Home,
    allow: &AllowList,
    name: &str,
) -> std::result::Result<(), NoAction> {
    let arn = home.function_arn(name);
    if allow.allows(&arn) {
        Ok(())
    } else {
        Err(NoAction::NotAllowed { arn })
    }
}

/// One refusal per function, whatever its aliases.
fn refuse_once(refused: &mut Vec<(String, NoAction)>, function: String, why: NoAction) {
    if !refused.iter().any(|(f, _)| *f == function) {
        refused.push((function, why));
    }
}

/// Decide and act for one function and alias; with the outcome, the group its newest
/// release was recorded in.
pub(super) async fn one_target<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    alarm: &AlarmSignal,
    function: &str,
    alias: &str,
    version: Option<&str>,
    evidence: &mut Vec<CheckResult>,
) -> (TargetOutcome, Option<String>)
where
    L: Ledger,
    R: Releases,
    P: PolicyStore,
{
    let mut o = TargetOutcome {
        function: Some(function.to_owned()),
        alias: (!alias.is_empty()).then(|| alias.to_owned()),
        ..no_action(NoAction::NoDeploymentRecorded, deps.settings.dry_run)
    };
    if alias.is_empty() {
        return (o, None);
    }
    let mut refreshed = false;
    let mut group = None;
    loop {
        let read = match read_and_decide(deps, alarm, function, alias, version, evidence).await {
            Ok(read) => read,
            Err(e) => return (failed(o, &e.to_string()), group),
        };
        group = read.group.clone();
        o.action = read.action.name();
        if let Some(held) = held_back(alarm, function, alias, &read, &o) {
            return (held, group);
        }
        let target = TargetRef {
            alarm,
            function,
            alias,
            when: read.when,
        };
        let step = match read.action {
            Action::Nothing(n) => {
                o.reason = n.to_string();
                return (o, group);
            }
            Action::StopDeployment {
                deployment_id,
                bad_version,
            } => stop(deps, &target, o, deployment_id, bad_version, !refreshed).await,
            Action::RollBack {
                deployment_id,
                bad_version,
                good_version,
                expected_revision,
            } => {
                let release = Release {
                    deployment_id,
                    bad_version,
                    good_version,
                    expected_revision,
                };
                Step::Done(roll_back(deps, &target, o, release).await)
            }
        };
        match step {
            Step::Done(outcome) => return (outcome, group),
            Step::DecideAgain(outcome) => {
                o = outcome;
                refreshed = true;
            }
        }
    }
}

/// What one read of a target gave: the action decided, the group of the newest release
/// and the alias's freeze.
struct Read {
    action: Action,
    group: Option<String>,
    /// How the newest release is named in a rollback's reason: when it is being undone
    /// (in its bake window, or during its shift) and who made it, when known.
    when: String,
    freeze: Option<Freeze>,
}

/// An action an alarm asked for that the alias's freeze holds back: decided and
/// announced as what would have been done, not done. A manual rollback is never held.
fn held_back(
    alarm: &AlarmSignal,
    function: &str,
    alias: &str,
    read: &Read,
    o: &TargetOutcome,
) -> Option<TargetOutcome> {
    let f = read.freeze.as_ref().filter(|f| f.holds(now_ms()))?;
    if alarm.is_manual() {
        return None;
    }
    let mut held = o.clone();
    let what = match &read.action {
        Action::Nothing(_) => return None,
        Action::StopDeployment {
            deployment_id,
            bad_version,
        } => {
            held.deployment_id = Some(deployment_id.clone());
            held.bad_version = Some(bad_version.clone());
            format!("stop deployment {deployment_id}, CodeDeploy rolling back")
        }
        Action::RollBack {
            deployment_id,
            bad_version,
            good_version,
            ..
        } => {
            held.deployment_id = Some(deployment_id.clone());
            held.bad_version = Some(bad_version.clone());
            held.good_version = Some(good_version.clone());
            format!("point {function}:{alias} back from version {bad_version} to {good_version}")
        }
    };
    held.reason = format!(
        "would roll back (frozen until {} by {}: {}): {what}, because {} {}",
        crate::clock::utc(f.until_ms),
        f.by,
        f.reason,
        alarm.cause(),
        read.when
    );
    Some(held)
}

/// Read the ledger and the alias together (the rollback settings come with the ledger's
/// release row), keep both as evidence, and decide.
async fn read_and_decide<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    alarm: &AlarmSignal,
    function: &str,
    alias: &str,
    version: Option<&str>,
    evidence: &mut Vec<CheckResult>,
) -> crate::error::Result<Read>
where
    L: Ledger,
    R: Releases,
    P: PolicyStore,
{
    let (history, alias_state) = tokio::try_join!(
        deps.ledger.history(function, alias),
        deps.releases.alias(function, alias)
    )?;
    let manual = alarm.is_manual();
    let settings = if manual {
        // An operator's rollback: neither the policy's switch nor its bake window apply.
        RollbackSettings {
            enabled: true,
            bake_minutes: u64::MAX,
            source: "a manual request (the policy's switch and bake window do not apply)".into(),
        }
    } else {
        target_settings(
            deps.policies,
            function,
            &history,
            deps.settings.bake_minutes,
        )
        .await
    };
    evidence.push(CheckResult::pass(
        "policy.rollback",
        json!({"source": settings.source}),
        json!({"enabled": settings.enabled,
            "bake_minutes": (!manual).then_some(settings.bake_minutes)}),
    ));
    if let Some(f) = history.freeze.as_ref().filter(|f| f.holds(now_ms())) {
        evidence.push(CheckResult::pass(
            "freeze",
            json!(null),
            json!({"until": crate::clock::utc(f.until_ms), "by": f.by, "reason": f.reason,
                "applies": !manual}),
        ));
    }
    evidence.push(CheckResult::pass(
        "ledger.latest_release",
        json!(null),
        json!(history.latest_release()),
    ));
    evidence.push(CheckResult::pass(
        "alias",
        json!(alias),
        alias_json(alias_state.as_ref()),
    ));
    let action = decide(&Facts {
        now_ms: now_ms(),
        bake_minutes: settings.bake_minutes,
        enabled: settings.enabled,
        history: &history,
        alias: alias_state.as_ref(),
        alarm_version: version,
        transition_ms: alarm.state_timestamp.as_deref().and_then(timestamp_ms),
    });
    let bake = (!manual).then_some(settings.bake_minutes);
    Ok(Read {
        action,
        group: history.latest_context().and_then(|c| c.group.clone()),
        when: release_words(history.latest_release(), bake),
        freeze: history.freeze,
    })
}

/// "within the 60-minute bake window of deployment d-1", "during the traffic shift of
/// deployment ct-..." ("after deployment d-1" with no window: a manual rollback) and who
/// released it, when the ledger knows.
fn release_words(release: Option<&DeploymentRecord>, bake_minutes: Option<u64>) -> String {
    let window = |of: &str| match bake_minutes {
        Some(m) => format!("within the {m}-minute bake window of {of}"),
        None => format!("after {of}"),
    };
    let Some(r) = release else {
        return window("the release");
    };
    let when = if r.status == DeploymentStatus::InProgress {
        "during the traffic shift of deployment".to_owned()
    } else {
        window("deployment")
    };
    match &r.initiator {
        Some(who) => format!("{when} {} (released by {who})", r.deployment_id),
        None => format!("{when} {}", r.deployment_id),
    }
}

/// The alarm and the function and alias it is being acted on for.
struct TargetRef<'a> {
    alarm: &'a AlarmSignal,
    function: &'a str,
    alias: &'a str,
    /// See [`Read::when`].
    when: String,
}

/// A rollback [`decide`] asked for.
struct Release {
    deployment_id: String,
    bad_version: String,
    good_version: String,
    expected_revision: String,
}

/// How an action ended: decided, or the ledger was refreshed and the target must be
/// decided again (a deployment that finished while the alarm was on its way).
enum Step {
    Done(TargetOutcome),
    DecideAgain(TargetOutcome),
}

/// Claim the action in the ledger: `Err` is the outcome to return (lost or failed).
async fn claim<L: Ledger>(
    ledger: &L,
    claim: &Claim,
    o: TargetOutcome,
) -> std::result::Result<TargetOutcome, TargetOutcome> {
    match ledger.claim(claim).await {
        Err(e) => Err(failed(o, &e.to_string())),
        Ok(ClaimOutcome::Lost { by_event }) => Err(TargetOutcome {
            action: "none",
            reason: NoAction::ClaimedElsewhere { by_event }.to_string(),
            ..o
        }),
        Ok(ClaimOutcome::Won) => Ok(o),
    }
}

/// Stop the deployment in flight, once. When it turns out to have finished already, the
/// ledger is refreshed from CodeDeploy (once: `may_refresh`) and the target decided again.
async fn stop<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    t: &TargetRef<'_>,
    mut o: TargetOutcome,
    deployment_id: String,
    bad_version: String,
    may_refresh: bool,
) -> Step
where
    L: Ledger,
    R: Releases,
{
    let cause = t.alarm.cause();
    o.deployment_id = Some(deployment_id.clone());
    o.bad_version = Some(bad_version.clone());
    if deps.settings.dry_run {
        o.reason = format!(
            "dry run: would stop deployment {deployment_id} (rolling back to the current version) because {cause}"
        );
        return Step::Done(o);
    }
    let sort = stop_sort(&deployment_id);
    let claim_row = claim_for(
        t.alarm,
        t.function,
        t.alias,
        sort,
        &deployment_id,
        &bad_version,
        None,
    );
    let o = match claim(deps.ledger, &claim_row, o).await {
        Ok(o) => o,
        Err(done) => return Step::Done(done),
    };
    match deps.releases.stop(&deployment_id).await {
        Ok(StopOutcome::Requested) => {
            let why = format!("{cause} during deployment {deployment_id}");
            settle_acted(deps.ledger, &claim_row, "stopped", &why).await;
            Step::Done(TargetOutcome {
                acted: true,
                reason: format!(
                    "{why}: stopped it with automatic rollback; version {bad_version} quarantined"
                ),
                ..o
            })
        }
        Ok(StopOutcome::AlreadyCompleted) if may_refresh => {
            let _ = deps.ledger.settle(&claim_row, "already_completed").await;
            let refreshed = match deps.releases.release(&deployment_id).await {
                Ok(meta) => {
                    let status = DeploymentStatus::parse(&meta.info.status)
                        .unwrap_or(DeploymentStatus::Succeeded);
                    let rec = to_record(&meta, status, Some(now_ms()));
                    deps.ledger
                        .record_deployment(&rec, &ReleaseContext::default())
                        .await
                }
                Err(e) => Err(e),
            };
            match refreshed {
                Ok(()) => Step::DecideAgain(o),
                Err(e) => Step::Done(failed(o, &e.to_string())),
            }
        }
        Ok(StopOutcome::AlreadyCompleted) => Step::Done(TargetOutcome {
            action: "none",
            reason: NoAction::DeploymentAlreadyCompleted { deployment_id }.to_string(),
            ..o
        }),
        Err(e) => Step::Done(settle_failed(deps.ledger, &claim_row, o, &e).await),
    }
}

/// A won claim whose action failed: settled as failed (so that the retry can take it
/// again), and the outcome an error.
async fn settle_failed<L: Ledger>(
    ledger: &L,
    claim: &Claim,
    o: TargetOutcome,
    e: &crate::error::Error,
) -> TargetOutcome {
    let _ = ledger.settle(claim, &format!("failed: {e}")).await;
    failed(o, &e.to_string())
}

/// A won claim whose action went through: settled, the bad version quarantined, and
/// the function's delivery metrics told again.
async fn settle_acted<L: Ledger>(ledger: &L, claim: &Claim, settled: &str, why: &str) {
    let _ = ledger.settle(claim, settled).await;
    if let Err(e) = ledger.quarantine(claim, why).await {
        tracing::warn!(error = %e, "could not quarantine version {}", claim.bad_version);
    }
    emit_delivery(ledger, &claim.function).await;
}

/// The function's delivery metrics over the last 30 days as EMF (its own documents: the
/// account's figures are `rollgate report`'s), after a release ends and after each
/// rollback or stop; never on the way to `UpdateAlias` or `StopDeployment`. The summary is
/// returned for tests; a ledger that cannot be read is logged, and nothing is emitted.
pub async fn emit_delivery<L: Ledger>(ledger: &L, function: &str) -> Option<dora::Summary> {
    let window = dora::Window::trailing_days(now_ms(), dora::DEFAULT_WINDOW_DAYS).ok()?;
    match ledger.releases(function).await {
        Ok(releases) => Some(dora::emit(&releases, window, dora::Scope::Functions)),
        Err(e) => {
            tracing::warn!(error = %e, function, "could not read the releases for the delivery metrics");
            None
        }
    }
}

/// The stack's schedule: the delivery metrics of the whole account (every function's
/// and the account's documents) from every release in the ledger. A failed read fails
/// the invocation (Lambda retries a scheduled event); nothing else is touched.
pub async fn delivery_summary<L: Ledger>(ledger: &L) -> Result<dora::Summary> {
    let window = dora::Window::trailing_days(now_ms(), dora::DEFAULT_WINDOW_DAYS)
        .map_err(|e| Error::Config(e.to_string()))?;
    let releases = ledger.account_releases().await?;
    let summary = dora::emit(&releases, window, dora::Scope::Account);
    tracing::info!(
        releases = summary.account.counts.releases,
        functions = summary.functions.len(),
        "emitted the account's delivery metrics"
    );
    Ok(summary)
}

/// Point the alias back at the version before the release, once, only if nobody moved it
/// since it was read (`RevisionId`).
async fn roll_back<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    t: &TargetRef<'_>,
    mut o: TargetOutcome,
    r: Release,
) -> TargetOutcome
where
    L: Ledger,
    R: Releases,
{
    let (cause, function, alias, when) = (t.alarm.cause(), t.function, t.alias, &t.when);
    let Release {
        deployment_id,
        bad_version,
        good_version,
        expected_revision,
    } = r;
    o.deployment_id = Some(deployment_id.clone());
    o.bad_version = Some(bad_version.clone());
    o.good_version = Some(good_version.clone());
    if deps.settings.dry_run {
        o.reason = format!(
            "dry run: would point {function}:{alias} back from version {bad_version} to {good_version} because {cause} {when}"
        );
        return o;
    }
    let sort = rollback_sort(&expected_revision);
    let claim_row = claim_for(
        t.alarm,
        function,
        alias,
        sort,
        &deployment_id,
        &bad_version,
        Some(&good_version),
    );
    let o = match claim(deps.ledger, &claim_row, o).await {
        Ok(o) => o,
        Err(done) => return done,
    };
    let update = deps
        .releases
        .update_alias(function, alias, &good_version, &expected_revision)
        .await;
    match update {
        Ok(UpdateOutcome::Updated { revision_id }) => {
            let settled = format!("rolled_back (alias revision {revision_id})");
            let why = format!("{cause} {when}");
            settle_acted(deps.ledger, &claim_row, &settled, &why).await;
            TargetOutcome {
                acted: true,
                reason: format!(
                    "{why}: {function}:{alias} points back at version {good_version}; version {bad_version} quarantined"
                ),
                ..o
            }
        }
        Ok(UpdateOutcome::Stale) => {
            let _ = deps.ledger.settle(&claim_row, "stale").await;
            TargetOutcome {
                action: "none",
                reason: NoAction::StaleRevision { expected_revision }.to_string(),
                ..o
            }
        }
        Err(e) => settle_failed(deps.ledger, &claim_row, o, &e).await,
    }
}

/// `Some(message)` when an action failed: the handler then fails the invocation, so
/// that Lambda's asynchronous retry (or EventBridge) delivers the event again and the
/// action is retried. The claim of a failed action can be taken again (see the ledger),
/// and what did succeed is not repeated: the retry finds it claimed or already done.
pub fn retry_needed(outcomes: &[TargetOutcome]) -> Option<String> {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.error)
        .map(|o| {
            format!(
                "{}:{}: {}",
                o.function.as_deref().unwrap_or("?"),
                o.alias.as_deref().unwrap_or("?"),
                o.reason
            )
        })
        .collect();
    (!failed.is_empty()).then(|| {
        format!(
            "{} action(s) failed, failing the invocation so that the event is delivered again: {}",
            failed.len(),
            failed.join("; ")
        )
    })
}

pub(super) fn failed(mut o: TargetOutcome, message: &str) -> TargetOutcome {
    o.error = true;
    o.acted = false;
    o.reason = format!("{} failed: {message}", o.action);
    o
}

fn claim_for(
    alarm: &AlarmSignal,
    function: &str,
    alias: &str,
    sort: String,
    deployment_id: &str,
    bad: &str,
    good: Option<&str>,
) -> Claim {
    Claim {
        function: function.to_owned(),
        alias: alias.to_owned(),
        sort,
        event_key: alarm.event_key(),
        alarm: alarm.alarm_name.clone(),
        deployment_id: deployment_id.to_owned(),
        bad_version: bad.to_owned(),
        good_version: good.map(str::to_owned),
        at_ms: now_ms(),
        since_ms: alarm
            .state_timestamp
            .as_deref()
            .and_then(timestamp_ms)
            .or_else(|| alarm.is_manual().then(now_ms)),
    }
}

fn alias_json(a: Option<&AliasState>) -> Value {
    match a {
        None => Value::Null,
        Some(a) => {
            json!({"version": a.version, "weights": a.weights, "revision_id": a.revision_id})
        }
    }
}

/// The decision record for one target, as logged, published and counted.
pub fn to_decision(
    alarm: &AlarmSignal,
    o: &TargetOutcome,
    checks: Vec<CheckResult>,
    duration_ms: u64,
) -> Decision {
    let mut checks = checks;
    checks.push(CheckResult::new(
        "action",
        if o.error {
            Outcome::Fail
        } else {
            Outcome::Pass
        },
        json!({"alarm": alarm.alarm_name}),
        json!({"action": o.action, "acted": o.acted, "dry_run": o.dry_run}),
    ));
    Decision {
        component: COMPONENT.to_owned(),
        verdict: if o.error {
            Verdict::Failed
        } else {
            Verdict::Succeeded
        },
        reason: o.reason.clone(),
        deployment_id: o.deployment_id.clone(),
        function_name: o.function.clone(),
        alias: o.alias.clone(),
        current_version: o.good_version.clone(),
        target_version: o.bad_version.clone(),
        policy_source: None,
        checks,
        duration_ms,
    }
}

pub(super) async fn announce<L, T, R, P, A: Announcer>(
    deps: &Deps<'_, L, T, R, P, A>,
    alarm: &AlarmSignal,
    o: &TargetOutcome,
    checks: Vec<CheckResult>,
    started: Instant,
) {
    let elapsed = started.elapsed().as_millis() as u64;
    let decision = to_decision(alarm, o, checks, elapsed);
    tracing::info!(
        decision = %serde_json::to_string(&decision).unwrap_or_default(),
        action = o.action, acted = o.acted, reason = %o.reason, "alarm-rollback decision"
    );
    Emf::rollgate()
        .dimension("Component", COMPONENT)
        .dimension("Action", o.action)
        .metric("RollbackDecisions", 1.0, "Count")
        .metric("RollbackActions", if o.acted { 1.0 } else { 0.0 }, "Count")
        .metric("RollbackErrors", if o.error { 1.0 } else { 0.0 }, "Count")
        .property("Alarm", alarm.alarm_name.clone())
        .property("FunctionName", o.function.clone().unwrap_or_default())
        .property("DryRun", o.dry_run)
        .emit();
    let mut attrs = vec![
        ("action", o.action.to_owned()),
        ("alarm", alarm.alarm_name.clone()),
        ("dry_run", o.dry_run.to_string()),
    ];
    if let Some(a) = &o.alias {
        attrs.push(("alias", a.clone()));
    }
    if let Err(e) = deps.announcer.announce(&decision, &attrs).await {
        tracing::error!(error = %e, "could not publish the decision on SNS");
    }
}

#[cfg(test)]
mod tests {
    use super::{TargetOutcome, failed, retry_needed, timestamp_ms};

    #[test]
    fn timestamps_are_read_as_aws_writes_them() {
        let z = timestamp_ms("2019-10-02T17:04:40.985Z").unwrap();
        assert_eq!(z, 1_570_035_880_985);
        assert_eq!(timestamp_ms("2019-10-02T17:04:40.985+0000"), Some(z));
        assert_eq!(timestamp_ms("2019-10-02T17:04:40.985+00:00"), Some(z));
        assert_eq!(
            timestamp_ms("2019-10-02T19:04:40.985+0200"),
            Some(z),
            "an offset counts"
        );
        assert_eq!(timestamp_ms("2019-10-02T17:04:40Z"), Some(z - 985));
        assert_eq!(
            timestamp_ms("2026-02-28T23:59:59-01:00"),
            timestamp_ms("2026-03-01T00:59:59Z")
        );
        assert_eq!(
            timestamp_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        assert_eq!(timestamp_ms("1970-01-01T00:00:00.1Z"), Some(100));
        assert_eq!(
            timestamp_ms("2019-10-02T17:04:40.985"),
            None,
            "no offset, no time"
        );
        assert_eq!(timestamp_ms("2019-13-02T17:04:40Z"), None);
        assert_eq!(timestamp_ms("yesterday"), None);
        assert_eq!(timestamp_ms(""), None);
    }
    use crate::policy::{Policy, RollbackPolicy};

    #[test]
    fn only_a_failed_action_asks_for_the_event_again() {
        let ok = TargetOutcome {
            function: Some("orders".into()),
            alias: Some("live".into()),
            action: "rollback",
            acted: true,
            dry_run: false,
            reason: "rolled back".into(),
            deployment_id: None,
            bad_version: None,
            good_version: None,
            error: false,
        };
        let nothing = TargetOutcome {
            action: "none",
            acted: false,
            ..ok.clone()
        };
        assert_eq!(retry_needed(&[ok.clone(), nothing]), None);
        let bad = failed(
            TargetOutcome {
                function: Some("billing".into()),
                ..ok.clone()
            },
            "lambda.UpdateAlias failed: ServiceException",
        );
        let why = retry_needed(&[ok, bad]).unwrap();
        assert!(why.starts_with("1 action(s) failed"), "{why}");
        assert!(
            why.contains("billing:live: rollback failed: lambda.UpdateAlias failed"),
            "{why}"
        );
    }

    #[test]
    fn only_home_functions_inside_the_allow_list_are_in_scope() {
        use super::{NoAction, Target, scope_targets};
        use crate::scope::{AllowList, Home};
        let home = Home::from_parts(
            "arn:aws:lambda:us-east-1:123456789012:function:rollgate-alarm-rollback",
            None,
            None,
        );
        let allow = AllowList::parse("arn:aws:lambda:us-east-1:123456789012:function:orders-*");
        let t = |f: &str, alias: Option<&str>| Target {
            function: f.to_owned(),
            alias: alias.map(str::to_owned),
            version: None,
        };
        let targets = [
            t("orders-api", Some("live")),
            t(
                "arn:aws:lambda:us-east-1:123456789012:function:orders-web",
                None,
            ),
            t("billing", Some("live")),
            t("billing", Some("beta")),
            t(
                "arn:aws:lambda:us-east-1:111122223333:function:orders-api",
                None,
            ),
            t(
                "arn:aws:lambda:eu-west-1:123456789012:function:orders-api",
                None,
            ),
        ]
        .into_iter()
        .collect();
        let (kept, refused) = scope_targets(&home, &allow, targets);
        // A home ARN becomes the plain name the ledger is keyed by.
        assert_eq!(
            kept.into_iter()
                .map(|t| (t.function, t.alias))
                .collect::<Vec<_>>(),
            [
                ("orders-api".to_owned(), Some("live".to_owned())),
                ("orders-web".to_owned(), None)
            ]
        );
        let refused: Vec<(String, String)> = refused
            .into_iter()
            .map(|(f, why)| (f, why.to_string()))
            .collect();
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert_eq!(
            refused[0].0,
            "arn:aws:lambda:eu-west-1:123456789012:function:orders-api"
        );
        assert!(
            refused[0]
                .1
                .contains("another account, region or partition")
        );
        assert_eq!(
            refused[1].0,
            "arn:aws:lambda:us-east-1:111122223333:function:orders-api"
        );
        // One refusal per function, whatever its aliases.
        assert_eq!(refused[2].0, "billing");
        assert_eq!(
            refused[2].1,
            NoAction::NotAllowed {
                arn: "arn:aws:lambda:us-east-1:123456789012:function:billing".into()
            }
            .to_string()
        );
        // Unset ROLLGATE_ROLLBACK_ALLOW means every function of home.
        let (kept, refused) = scope_targets(
            &home,
            &AllowList::parse("*"),
            [t("billing", None)].into_iter().collect(),
        );
        assert_eq!((kept.len(), refused.len()), (1, 0));
    }

    #[test]
    fn the_policy_rollback_section() {
        assert_eq!(Policy::parse("{}").unwrap().rollback, None);
        let p = Policy::parse(r#"{"rollback": {"bake_minutes": 15}}"#).unwrap();
        assert_eq!(
            p.rollback,
            Some(RollbackPolicy {
                enabled: true,
                bake_minutes: Some(15)
            })
        );
        assert!(
            !Policy::parse(r#"{"rollback": {"enabled": false}}"#)
                .unwrap()
                .rollback
                .unwrap()
                .enabled
        );
        let err = |t: &str| Policy::parse(t).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"rollback": {"bake_minutes": 10081}}"#),
            "rollback.bake_minutes: must be between 0 and 10080, got 10081"
        );
        let unknown = err(r#"{"rollback": {"bake": 1}}"#);
        assert!(
            unknown.starts_with("rollback") && unknown.contains("unknown field `bake`"),
            "{unknown}"
        );
        assert!(
            err(r#"{"rollback": {"bake_minutes": null}}"#)
                .starts_with("rollback.bake_minutes: invalid type: null")
        );
        assert_eq!(
            err(r#"{"rollback": [1]}"#),
            "rollback: invalid type: array, expected an object"
        );
    }
}
