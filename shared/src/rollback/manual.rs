//! An operator's requests to alarm-rollback, each for one function (every alias the
//! ledger recorded for it, or the one named):
//!
//! - `rollback`: now, whatever the bake window or the policy's switch says, decided by
//!   the same table as an alarm ([`super::decide`]: stop the deployment in flight, or
//!   point the alias back at the version before the release) and carried out through the
//!   same claim, so that it and an alarm (or a second request) never both act;
//! - `freeze`: hold automatic rollbacks for a while (at most [`MAX_FREEZE_MINUTES`]);
//!   alarms are still decided and announced, as what would have been done;
//! - `unfreeze`: lift a freeze before its time.
//!
//! The allow-list and home scope alarms obey apply; each request leaves a ledger row per
//! alias ([`super::ledger::RequestRow`]) and an announcement. The requester is who the
//! caller says it is: the right to invoke the function is the access control (see
//! docs/cli.md).

use super::decide::NoAction;
use super::event::{AlarmSignal, Envelope};
use super::ledger::{Freeze, RequestRow};
use super::ports::{AlarmTags, Announcer, Ledger, Releases};
use super::run::{Deps, TargetOutcome, allowed, announce, failed, no_action, now_ms, one_target};
use crate::clock::{Instant, utc};
use crate::decision::CheckResult;
use crate::error::Error;
use crate::names::FunctionRef;
use crate::ports::PolicyStore;
use serde::Deserialize;
use serde_json::{Value, json};

/// A requester or a reason given by a person (manual requests, rollouts): at most this
/// many characters, so that it fits every message, attribute and key it goes into.
/// rollgate's own bound, not an AWS limit.
pub const MANUAL_TEXT_MAX_CHARS: usize = 256;

/// The longest freeze: a forgotten one must not hold rollbacks back for long.
pub const MAX_FREEZE_MINUTES: u64 = 7 * 24 * 60;

/// The longest request id: the ledger keys and the claims carry it.
pub const MAX_REQUEST_ID_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualAction {
    Rollback,
    Freeze { minutes: u64 },
    Unfreeze,
}

impl ManualAction {
    pub fn name(self) -> &'static str {
        match self {
            ManualAction::Rollback => "rollback",
            ManualAction::Freeze { .. } => "freeze",
            ManualAction::Unfreeze => "unfreeze",
        }
    }
}

/// A checked request: nothing was read or changed before it passed.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualRequest {
    pub action: ManualAction,
    /// As given: a name or an ARN (scoped to home when handled).
    pub function: String,
    /// `None`: every alias the ledger recorded for the function.
    pub alias: Option<String>,
    pub requester: String,
    pub reason: String,
    /// The caller's id for the request (a retry of the same request carries the same);
    /// `None`: the invocation's request id is used.
    pub request_id: Option<String>,
}

impl ManualRequest {
    /// The request as the alarm path takes it: an alarm the operator raised, keyed by the
    /// request id so that its claims compete with those of alarms and other requests.
    pub fn signal(&self, request_id: &str) -> AlarmSignal {
        AlarmSignal {
            envelope: Envelope::Manual,
            alarm_name: format!("manual {} by {}", self.action.name(), self.requester),
            alarm_arn: None,
            state: "ALARM".into(),
            previous_state: None,
            state_timestamp: None,
            reason: Some(self.reason.clone()),
            composite: false,
            metrics: Vec::new(),
            delivery_id: Some(request_id.to_owned()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    action: String,
    function: String,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    requester: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    minutes: Option<u64>,
    #[serde(default)]
    request_id: Option<String>,
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidEvent(format!("manual request: {e}"))
}

/// A required free-text field: 1 to [`MANUAL_TEXT_MAX_CHARS`] characters, not blank.
fn text(field: &str, v: Option<String>) -> Result<String, Error> {
    match v {
        Some(s) if !s.trim().is_empty() && s.chars().count() <= MANUAL_TEXT_MAX_CHARS => Ok(s),
        Some(_) => Err(invalid(format!(
            "`{field}` must be 1 to {MANUAL_TEXT_MAX_CHARS} characters"
        ))),
        None => Err(invalid(format!("`{field}` is required"))),
    }
}

fn request_id(v: Option<String>) -> Result<Option<String>, Error> {
    let Some(id) = v else { return Ok(None) };
    let ok = (1..=MAX_REQUEST_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !ok {
        return Err(invalid(format!(
            "`request_id` must be 1 to {MAX_REQUEST_ID_CHARS} letters, digits or -_.:"
        )));
    }
    Ok(Some(id))
}

fn action(name: &str, minutes: Option<u64>) -> Result<ManualAction, Error> {
    match (name, minutes) {
        ("rollback", None) => Ok(ManualAction::Rollback),
        ("unfreeze", None) => Ok(ManualAction::Unfreeze),
        ("freeze", Some(m)) if (1..=MAX_FREEZE_MINUTES).contains(&m) => {
            Ok(ManualAction::Freeze { minutes: m })
        }
        ("freeze", Some(m)) => Err(invalid(format!(
            "a freeze lasts 1 to {MAX_FREEZE_MINUTES} minutes, not {m}"
        ))),
        ("freeze", None) => Err(invalid("a freeze needs `minutes`: it is always time-boxed")),
        ("rollback" | "unfreeze", Some(_)) => Err(invalid("`minutes` belongs to freeze")),
        (other, _) => Err(invalid(format!(
            "action {other:?} is not rollback, freeze or unfreeze"
        ))),
    }
}

/// Parse and check a manual request.
pub fn parse(payload: &Value) -> Result<ManualRequest, Error> {
    let raw: Raw = serde_path_to_error::deserialize(payload).map_err(invalid)?;
    let action = action(&raw.action, raw.minutes)?;
    let f = FunctionRef::parse(&raw.function).map_err(|e| invalid(format!("function: {e}")))?;
    if f.qualifier.is_some() {
        return Err(invalid(
            "function: name the function, and the alias in `alias`",
        ));
    }
    if let Some(a) = &raw.alias
        && !crate::names::is_alias(a)
    {
        return Err(invalid(format!("alias {a:?} is not an alias name")));
    }
    Ok(ManualRequest {
        action,
        function: raw.function.clone(),
        alias: raw.alias,
        requester: text("requester", raw.requester)?,
        reason: text("reason", raw.reason)?,
        request_id: request_id(raw.request_id)?,
    })
}

/// Carry out a request for every alias it is about; each outcome is announced (but a
/// repeated freeze of the same request) and kept in the ledger.
pub async fn handle<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    req: &ManualRequest,
) -> Vec<TargetOutcome>
where
    L: Ledger,
    T: AlarmTags,
    R: Releases,
    P: PolicyStore,
    A: Announcer,
{
    let started = Instant::now();
    let id = req
        .request_id
        .clone()
        .unwrap_or_else(|| deps.settings.request_id.clone());
    let signal = req.signal(&id);
    let minutes = match req.action {
        ManualAction::Freeze { minutes } => Some(minutes),
        _ => None,
    };
    let evidence = vec![CheckResult::pass(
        "request",
        json!(req.action.name()),
        json!({"requester": req.requester, "reason": req.reason, "request_id": id,
            "function": req.function, "alias": req.alias, "minutes": minutes}),
    )];
    let scoped = match in_scope(deps, req) {
        Ok(function) => aliases(deps, req, &function).await.map(|a| (function, a)),
        Err(o) => Err(o),
    };
    let (function, aliases) = match scoped {
        Ok(found) => found,
        Err(o) => {
            announce(deps, &signal, &o, evidence, started).await;
            return vec![*o];
        }
    };
    let mut out = Vec::new();
    for alias in aliases {
        let mut ev = evidence.clone();
        let (o, say) = one_alias(deps, req, &signal, &function, &alias, &mut ev).await;
        if say {
            note(deps.ledger, req, &id, &o).await;
            announce(deps, &signal, &o, ev, started).await;
        }
        out.push(o);
    }
    out
}

/// The function as the ledger names it, if alarm-rollback may act on it.
fn in_scope<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    req: &ManualRequest,
) -> Result<String, Box<TargetOutcome>> {
    let refused = |why: NoAction, function: &str| TargetOutcome {
        function: Some(function.to_owned()),
        alias: req.alias.clone(),
        action: req.action.name(),
        ..no_action(why, deps.settings.dry_run)
    };
    let home = &deps.settings.home;
    let Some(name) = home.local_function(&req.function) else {
        let why = NoAction::ForeignFunction {
            function: req.function.clone(),
        };
        return Err(Box::new(refused(why, &req.function)));
    };
    allowed(home, &deps.settings.allow, &name).map_err(|why| Box::new(refused(why, &name)))?;
    Ok(name)
}

/// The aliases a request is about: the one named, or every alias the ledger recorded.
async fn aliases<L: Ledger, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    req: &ManualRequest,
    function: &str,
) -> Result<Vec<String>, Box<TargetOutcome>> {
    let base = TargetOutcome {
        function: Some(function.to_owned()),
        action: req.action.name(),
        ..no_action(NoAction::NoDeploymentRecorded, deps.settings.dry_run)
    };
    if let Some(a) = &req.alias {
        return Ok(vec![a.clone()]);
    }
    match deps.ledger.aliases(function).await {
        Ok(a) if !a.is_empty() => Ok(a),
        Ok(_) => Err(Box::new(TargetOutcome {
            reason: format!(
                "no alias of {function} is recorded in the ledger: name the alias ({function}:ALIAS)"
            ),
            ..base
        })),
        Err(e) => Err(Box::new(failed(base, &e.to_string()))),
    }
}

/// The request for one alias; with the outcome, whether to announce and keep it (a
/// second delivery of a freeze changes nothing and says nothing).
async fn one_alias<L, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    req: &ManualRequest,
    signal: &AlarmSignal,
    function: &str,
    alias: &str,
    evidence: &mut Vec<CheckResult>,
) -> (TargetOutcome, bool)
where
    L: Ledger,
    R: Releases,
    P: PolicyStore,
{
    let o = TargetOutcome {
        function: Some(function.to_owned()),
        alias: Some(alias.to_owned()),
        action: req.action.name(),
        ..no_action(NoAction::NoDeploymentRecorded, deps.settings.dry_run)
    };
    match req.action {
        ManualAction::Rollback => {
            let (o, _) = one_target(deps, signal, function, alias, None, evidence).await;
            (o, true)
        }
        ManualAction::Freeze { minutes } => {
            freeze(deps, req, signal, function, alias, minutes, o).await
        }
        ManualAction::Unfreeze => (unfreeze(deps, req, function, alias, o).await, true),
    }
}

async fn freeze<L: Ledger, T, R: Releases, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    req: &ManualRequest,
    signal: &AlarmSignal,
    function: &str,
    alias: &str,
    minutes: u64,
    o: TargetOutcome,
) -> (TargetOutcome, bool) {
    // A typo must not look like a freeze: the alias must exist.
    match deps.releases.alias(function, alias).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            let why = NoAction::AliasMissing.to_string();
            return (TargetOutcome { reason: why, ..o }, true);
        }
        Err(e) => return (failed(o, &e.to_string()), true),
    }
    let at_ms = now_ms();
    let until_ms = at_ms.saturating_add(i64::try_from(minutes).unwrap_or(0) * 60_000);
    let f = Freeze {
        until_ms,
        by: req.requester.clone(),
        reason: req.reason.clone(),
        at_ms,
        request_id: signal.delivery_id.clone().unwrap_or_default(),
        lifted_by: None,
        lifted_ms: None,
    };
    match deps.ledger.freeze(function, alias, &f).await {
        Ok(true) => {
            let reason = format!(
                "automatic rollbacks of {function}:{alias} are frozen until {} ({minutes} minutes) by {}: {}; alarms are still decided and announced",
                utc(until_ms),
                req.requester,
                req.reason
            );
            (
                TargetOutcome {
                    acted: true,
                    reason,
                    ..o
                },
                true,
            )
        }
        Ok(false) => {
            let reason = format!("already frozen by request {}", f.request_id);
            (TargetOutcome { reason, ..o }, false)
        }
        Err(e) => (failed(o, &e.to_string()), true),
    }
}

async fn unfreeze<L: Ledger, T, R, P, A>(
    deps: &Deps<'_, L, T, R, P, A>,
    req: &ManualRequest,
    function: &str,
    alias: &str,
    o: TargetOutcome,
) -> TargetOutcome {
    match deps
        .ledger
        .unfreeze(function, alias, &req.requester, now_ms())
        .await
    {
        Ok(Some(f)) => TargetOutcome {
            acted: true,
            reason: format!(
                "automatic rollbacks of {function}:{alias} resume: the freeze by {} until {} was lifted by {}: {}",
                f.by,
                utc(f.until_ms),
                req.requester,
                req.reason
            ),
            ..o
        },
        Ok(None) => TargetOutcome {
            reason: format!("{function}:{alias} was not frozen"),
            ..o
        },
        Err(e) => failed(o, &e.to_string()),
    }
}

/// The request's ledger row for one alias (a failure to write it is logged: the action
/// itself stands, and was announced).
async fn note<L: Ledger>(ledger: &L, req: &ManualRequest, id: &str, o: &TargetOutcome) {
    let row = RequestRow {
        function: o.function.clone().unwrap_or_default(),
        alias: o.alias.clone().unwrap_or_default(),
        request_id: id.to_owned(),
        action: req.action.name().to_owned(),
        requester: req.requester.clone(),
        reason: req.reason.clone(),
        at_ms: now_ms(),
        outcome: o.reason.clone(),
        acted: o.acted,
    };
    if row.alias.is_empty() {
        return;
    }
    if let Err(e) = ledger.note_request(&row).await {
        tracing::warn!(error = %e, "could not keep the manual request in the ledger");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(extra: Value) -> Value {
        let mut v = json!({"action": "rollback", "function": "orders", "alias": "live",
            "requester": "alice", "reason": "errors after the release"});
        for (k, x) in extra.as_object().unwrap() {
            if x.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = x.clone();
            }
        }
        v
    }

    fn refused(extra: Value) -> String {
        parse(&req(extra)).unwrap_err().to_string()
    }

    #[test]
    fn the_three_requests_parse() {
        let r = parse(&req(json!({}))).unwrap();
        assert_eq!(r.action, ManualAction::Rollback);
        assert_eq!(
            (r.function.as_str(), r.alias.as_deref()),
            ("orders", Some("live"))
        );
        let f = parse(&req(
            json!({"action": "freeze", "minutes": 120, "request_id": "r-1"}),
        ))
        .unwrap();
        assert_eq!(f.action, ManualAction::Freeze { minutes: 120 });
        assert_eq!(f.request_id.as_deref(), Some("r-1"));
        let u = parse(&req(json!({"action": "unfreeze", "alias": null}))).unwrap();
        assert_eq!((u.action, u.alias), (ManualAction::Unfreeze, None));
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders";
        assert_eq!(parse(&req(json!({"function": arn}))).unwrap().function, arn);
    }

    #[test]
    fn bad_requests_are_refused_with_the_field_named() {
        assert!(refused(json!({"requester": null})).contains("`requester` is required"));
        assert!(refused(json!({"reason": "  "})).contains("`reason` must be 1 to 256"));
        assert!(refused(json!({"reason": "r".repeat(257)})).contains("`reason`"));
        assert!(refused(json!({"action": "freeze"})).contains("time-boxed"));
        assert!(refused(json!({"action": "freeze", "minutes": 10_081})).contains("10080"));
        assert!(refused(json!({"action": "freeze", "minutes": 0})).contains("not 0"));
        assert!(refused(json!({"minutes": 5})).contains("belongs to freeze"));
        assert!(refused(json!({"action": "restart"})).contains("\"restart\""));
        assert!(refused(json!({"function": "orders:live"})).contains("in `alias`"));
        assert!(refused(json!({"function": "no such/function"})).contains("function"));
        assert!(refused(json!({"alias": "a b"})).contains("not an alias name"));
        assert!(refused(json!({"request_id": "x".repeat(65)})).contains("request_id"));
        assert!(refused(json!({"request_id": "a b"})).contains("request_id"));
        assert!(refused(json!({"extra": 1})).contains("unknown field"));
        assert!(refused(json!({"minutes": "5", "action": "freeze"})).contains("minutes"));
    }

    #[test]
    fn a_request_is_keyed_by_its_id_and_says_who_asked() {
        let r = parse(&req(json!({}))).unwrap();
        let s = r.signal("r-9");
        assert_eq!(s.event_key(), "manual:r-9");
        assert_eq!(
            s.cause(),
            "manual rollback by alice (reason: errors after the release)"
        );
        assert!(s.is_manual() && s.is_alarm());
    }
}
