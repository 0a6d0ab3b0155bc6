//! The decision table: for one guarded function and alias, what to do about an alarm.
//!
//! | latest release in the ledger | alias | decision |
//! |---|---|---|
//! | none | – | nothing: no deployment recorded |
//! | any, but the alarm changed state before it started | – | nothing: the transition is not about this release |
//! | in progress, CodeDeploy's | – | `StopDeployment` with `autoRollbackEnabled` |
//! | in progress, a rollout's or another tool's shift | on the previous version with weight on the release, or on the release | `UpdateAlias` back to the previous version alone, guarded by the alias `RevisionId` |
//! | failed or stopped | – | nothing: CodeDeploy already ended it |
//! | succeeded, ended longer ago than the bake window | – | nothing: outside the window |
//! | succeeded within the window | on the released version, no routing | `UpdateAlias` back to the previous version, guarded by the alias `RevisionId` |
//! | succeeded within the window | on the previous version | nothing: already rolled back |
//! | succeeded within the window | anything else | nothing: somebody moved the alias since |
//!
//! Also nothing when rollback is disabled by policy, when the alarm is about another
//! version than the release (`ExecutedVersion`), when the previous version is
//! quarantined, or when the alias does not exist.

use super::ledger::{DeploymentRecord, DeploymentStatus, History, Origin};
use std::collections::BTreeMap;
use std::fmt;

/// The alias as `GetAlias` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasState {
    pub version: String,
    /// `RoutingConfig.AdditionalVersionWeights`.
    pub weights: BTreeMap<String, f64>,
    pub revision_id: String,
}

/// Everything the decision depends on.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now_ms: i64,
    pub bake_minutes: u64,
    pub enabled: bool,
    pub history: &'a History,
    /// `None`: the alias does not exist.
    pub alias: Option<&'a AliasState>,
    /// The version the alarm watches, when it names one.
    pub alarm_version: Option<&'a str>,
    /// When the alarm changed state (epoch ms), as the alarm reported it. A late
    /// delivery of a transition from before a release never undoes that release.
    pub transition_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    StopDeployment {
        deployment_id: String,
        bad_version: String,
    },
    RollBack {
        deployment_id: String,
        bad_version: String,
        good_version: String,
        expected_revision: String,
    },
    Nothing(NoAction),
}

impl Action {
    /// Short name for metrics and message attributes.
    pub fn name(&self) -> &'static str {
        match self {
            Action::StopDeployment { .. } => "stop_deployment",
            Action::RollBack { .. } => "rollback",
            Action::Nothing(_) => "none",
        }
    }
}

/// Why nothing was done. `Display` is the sentence announced.
#[derive(Debug, Clone, PartialEq)]
pub enum NoAction {
    Disabled,
    NoDeploymentRecorded,
    AliasMissing,
    LastDeploymentEnded {
        deployment_id: String,
        status: DeploymentStatus,
    },
    NoEndTime {
        deployment_id: String,
    },
    OutsideBakeWindow {
        deployment_id: String,
        minutes_ago: i64,
        bake_minutes: u64,
    },
    OtherVersion {
        alarm_version: String,
        release_version: String,
    },
    AlreadyRolledBack {
        version: String,
    },
    AliasMoved {
        alias_version: String,
        release_version: String,
    },
    PreviousQuarantined {
        version: String,
    },
    NoPreviousVersion,
    /// Another invocation claimed the same action first (duplicate event, second alarm).
    ClaimedElsewhere {
        by_event: String,
    },
    /// The alias changed between reading it and `UpdateAlias`: nothing was overwritten.
    StaleRevision {
        expected_revision: String,
    },
    /// `StopDeployment` found the deployment finished, and it was not a success to undo.
    DeploymentAlreadyCompleted {
        deployment_id: String,
    },
    NoTargets,
    /// The alarm names a function by an ARN of another account, region or partition.
    ForeignFunction {
        function: String,
    },
    /// The function is outside the rollback allow-list (`ROLLGATE_ROLLBACK_ALLOW`).
    NotAllowed {
        arn: String,
    },
    NotAlarm {
        state: String,
    },
    /// The alarm changed state before the release started: it judged the version before.
    TransitionBeforeRelease {
        deployment_id: String,
        transition_ms: i64,
        release_started_ms: i64,
    },
}

impl NoAction {
    /// The explanation of the reasons that carry no data.
    fn fixed_text(&self) -> Option<&'static str> {
        Some(match self {
            NoAction::Disabled => "rollback is disabled by the function's policy",
            NoAction::NoDeploymentRecorded => {
                "no CodeDeploy deployment is recorded in the ledger for this alias"
            }
            NoAction::AliasMissing => "the alias does not exist",
            NoAction::NoPreviousVersion => "the release has no previous version to go back to",
            NoAction::NoTargets => {
                "the alarm guards no function (no FunctionName/Resource dimension naming a valid function, no rollgate tags)"
            }
            _ => return None,
        })
    }

    fn fmt_transition(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let NoAction::TransitionBeforeRelease {
            deployment_id,
            transition_ms,
            release_started_ms,
        } = self
        else {
            return Ok(());
        };
        write!(
            f,
            "the alarm went to ALARM {} s before deployment {deployment_id} started (transition at {transition_ms} ms, release at {release_started_ms} ms since the epoch): it is about the version before, not this release",
            release_started_ms.saturating_sub(*transition_ms) / 1000
        )
    }
}

impl fmt::Display for NoAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.fixed_text() {
            return f.write_str(text);
        }
        match self {
            NoAction::LastDeploymentEnded {
                deployment_id,
                status,
            } => write!(
                f,
                "the last deployment {deployment_id} ended {}: CodeDeploy already handled it",
                status.as_str()
            ),
            NoAction::NoEndTime { deployment_id } => write!(
                f,
                "deployment {deployment_id} succeeded but its end time is unknown; not rolling back blind"
            ),
            NoAction::OutsideBakeWindow {
                deployment_id,
                minutes_ago,
                bake_minutes,
            } => write!(
                f,
                "deployment {deployment_id} finished {minutes_ago} minutes ago, outside the {bake_minutes}-minute bake window"
            ),
            NoAction::OtherVersion {
                alarm_version,
                release_version,
            } => write!(
                f,
                "the alarm watches version {alarm_version}, not the released version {release_version}"
            ),
            NoAction::AlreadyRolledBack { version } => {
                write!(f, "already rolled back: the alias is on version {version}")
            }
            NoAction::AliasMoved {
                alias_version,
                release_version,
            } => write!(
                f,
                "the alias is on version {alias_version}, not the released version {release_version}: somebody changed it since; not overwriting"
            ),
            NoAction::PreviousQuarantined { version } => write!(
                f,
                "the previous version {version} is quarantined and is never restored"
            ),
            NoAction::ClaimedElsewhere { by_event } => write!(
                f,
                "the same action was already claimed by {by_event} (duplicate delivery or concurrent alarm)"
            ),
            NoAction::StaleRevision { expected_revision } => write!(
                f,
                "the alias changed after revision {expected_revision} was read: UpdateAlias refused, nothing overwritten"
            ),
            NoAction::DeploymentAlreadyCompleted { deployment_id } => {
                write!(f, "deployment {deployment_id} had already completed")
            }
            NoAction::ForeignFunction { function } => write!(
                f,
                "{function} is a function of another account, region or partition: alarm-rollback acts only on its own"
            ),
            NoAction::NotAllowed { arn } => write!(
                f,
                "{arn} is not in the rollback allow-list (ROLLGATE_ROLLBACK_ALLOW): left alone"
            ),
            NoAction::NotAlarm { state } => {
                write!(f, "the alarm went to {state}, not ALARM")
            }
            NoAction::TransitionBeforeRelease { .. } => self.fmt_transition(f),
            // Told by `fixed_text`.
            NoAction::Disabled
            | NoAction::NoDeploymentRecorded
            | NoAction::AliasMissing
            | NoAction::NoPreviousVersion
            | NoAction::NoTargets => Ok(()),
        }
    }
}

pub fn decide(facts: &Facts<'_>) -> Action {
    judge(facts).unwrap_or_else(Action::Nothing)
}

/// The table, row by row: each step either lets the decision go on or says why nothing
/// is done.
fn judge(facts: &Facts<'_>) -> Result<Action, NoAction> {
    if !facts.enabled {
        return Err(NoAction::Disabled);
    }
    let release = facts
        .history
        .latest_release()
        .ok_or(NoAction::NoDeploymentRecorded)?;
    about_this_release(facts, release)?;
    match release.status {
        // A shift rollgate's rollout or another tool is making: nobody to stop, the
        // alias itself goes back.
        DeploymentStatus::InProgress if release.origin != Origin::CodeDeploy => {
            return back_to_previous(facts, release);
        }
        DeploymentStatus::InProgress => {
            return Ok(Action::StopDeployment {
                deployment_id: release.deployment_id.clone(),
                bad_version: release.to_version.clone(),
            });
        }
        DeploymentStatus::Failed | DeploymentStatus::Stopped => {
            return Err(NoAction::LastDeploymentEnded {
                deployment_id: release.deployment_id.clone(),
                status: release.status,
            });
        }
        DeploymentStatus::Succeeded => {}
    }
    within_bake_window(facts, release)?;
    back_to_previous(facts, release)
}

/// The alarm is about this release: its version, and a transition after it started.
fn about_this_release(facts: &Facts<'_>, release: &DeploymentRecord) -> Result<(), NoAction> {
    if let Some(v) = facts.alarm_version
        && v != release.to_version
    {
        return Err(NoAction::OtherVersion {
            alarm_version: v.to_owned(),
            release_version: release.to_version.clone(),
        });
    }
    let release_started_ms = release.started_ms.unwrap_or(release.created_ms);
    match facts.transition_ms {
        Some(t) if t < release_started_ms => Err(NoAction::TransitionBeforeRelease {
            deployment_id: release.deployment_id.clone(),
            transition_ms: t,
            release_started_ms,
        }),
        _ => Ok(()),
    }
}

/// A succeeded release ended no longer ago than the bake window.
fn within_bake_window(facts: &Facts<'_>, release: &DeploymentRecord) -> Result<(), NoAction> {
    let ended = release.ended_ms.ok_or_else(|| NoAction::NoEndTime {
        deployment_id: release.deployment_id.clone(),
    })?;
    let age_ms = facts.now_ms.saturating_sub(ended).max(0);
    let window_ms = i64::try_from(facts.bake_minutes)
        .unwrap_or(i64::MAX / 60_000)
        .saturating_mul(60_000);
    if age_ms > window_ms {
        return Err(NoAction::OutsideBakeWindow {
            deployment_id: release.deployment_id.clone(),
            minutes_ago: age_ms / 60_000,
            bake_minutes: facts.bake_minutes,
        });
    }
    Ok(())
}

/// Point the alias back at the release's previous version, if the alias still serves
/// exactly the release and the previous version may be restored.
fn back_to_previous(facts: &Facts<'_>, release: &DeploymentRecord) -> Result<Action, NoAction> {
    let alias = facts.alias.ok_or(NoAction::AliasMissing)?;
    if release.from_version.is_empty() || release.from_version == release.to_version {
        return Err(NoAction::NoPreviousVersion);
    }
    if alias.version == release.from_version && alias.weights.is_empty() {
        return Err(NoAction::AlreadyRolledBack {
            version: alias.version.clone(),
        });
    }
    let serves_release = alias.version == release.to_version && alias.weights.is_empty();
    // A shift in progress: the old version with some traffic on the new one.
    let shifting = release.status == DeploymentStatus::InProgress
        && alias.version == release.from_version
        && alias.weights.keys().all(|v| *v == release.to_version);
    if !serves_release && !shifting {
        return Err(NoAction::AliasMoved {
            alias_version: alias.version.clone(),
            release_version: release.to_version.clone(),
        });
    }
    if facts.history.quarantined.contains(&release.from_version) {
        return Err(NoAction::PreviousQuarantined {
            version: release.from_version.clone(),
        });
    }
    Ok(Action::RollBack {
        deployment_id: release.deployment_id.clone(),
        bad_version: release.to_version.clone(),
        good_version: release.from_version.clone(),
        expected_revision: alias.revision_id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollback::ledger::{DeploymentKind, DeploymentRecord};
    use std::collections::BTreeSet;

    const MIN: i64 = 60_000;
    const NOW: i64 = 1_800_000_000_000;

    fn release(status: DeploymentStatus, ended_ago_min: Option<i64>) -> DeploymentRecord {
        DeploymentRecord {
            deployment_id: "d-1".into(),
            application: "app".into(),
            deployment_group: "live".into(),
            function: "orders".into(),
            alias: "live".into(),
            from_version: "1".into(),
            to_version: "2".into(),
            status,
            kind: DeploymentKind::Release,
            created_ms: NOW - 120 * MIN,
            started_ms: Some(NOW - 120 * MIN),
            ended_ms: ended_ago_min.map(|m| NOW - m * MIN),
            origin: crate::rollback::ledger::Origin::CodeDeploy,
            initiator: None,
        }
    }

    fn history(records: Vec<DeploymentRecord>) -> History {
        History {
            deployments: records,
            ..History::default()
        }
    }

    fn alias(version: &str) -> AliasState {
        AliasState {
            version: version.into(),
            weights: BTreeMap::new(),
            revision_id: "rev-A".into(),
        }
    }

    fn run(h: &History, a: Option<&AliasState>) -> Action {
        decide(&Facts {
            now_ms: NOW,
            bake_minutes: 60,
            enabled: true,
            history: h,
            alias: a,
            alarm_version: None,
            transition_ms: None,
        })
    }

    #[test]
    fn in_flight_deployment_is_stopped() {
        let h = history(vec![release(DeploymentStatus::InProgress, None)]);
        let mut canary = alias("1");
        canary.weights.insert("2".into(), 0.1);
        assert_eq!(
            run(&h, Some(&canary)),
            Action::StopDeployment {
                deployment_id: "d-1".into(),
                bad_version: "2".into()
            }
        );
    }

    #[test]
    fn a_shift_made_by_a_rollout_or_another_tool_is_undone_on_the_alias() {
        for origin in [Origin::Rollout, Origin::Api] {
            let h = history(vec![DeploymentRecord {
                origin,
                ..release(DeploymentStatus::InProgress, None)
            }]);
            let mut split = alias("1");
            split.weights.insert("2".into(), 0.25);
            let back = Action::RollBack {
                deployment_id: "d-1".into(),
                bad_version: "2".into(),
                good_version: "1".into(),
                expected_revision: "rev-A".into(),
            };
            assert_eq!(run(&h, Some(&split)), back, "{origin:?} split");
            assert_eq!(
                run(&h, Some(&alias("2"))),
                back,
                "{origin:?} all on the release"
            );
            assert_eq!(
                run(&h, Some(&alias("1"))),
                Action::Nothing(NoAction::AlreadyRolledBack {
                    version: "1".into()
                })
            );
            let mut other = alias("1");
            other.weights.insert("3".into(), 0.5);
            assert!(matches!(
                run(&h, Some(&other)),
                Action::Nothing(NoAction::AliasMoved { .. })
            ));
        }
    }

    #[test]
    fn recent_success_rolls_back_to_the_previous_version() {
        let h = history(vec![release(DeploymentStatus::Succeeded, Some(10))]);
        assert_eq!(
            run(&h, Some(&alias("2"))),
            Action::RollBack {
                deployment_id: "d-1".into(),
                bad_version: "2".into(),
                good_version: "1".into(),
                expected_revision: "rev-A".into()
            }
        );
        // The window's edge is inside it.
        let h = history(vec![release(DeploymentStatus::Succeeded, Some(60))]);
        assert_eq!(run(&h, Some(&alias("2"))).name(), "rollback");
    }

    #[test]
    fn old_success_is_left_alone_with_the_reason() {
        let h = history(vec![release(DeploymentStatus::Succeeded, Some(61))]);
        let a = run(&h, Some(&alias("2")));
        assert_eq!(
            a,
            Action::Nothing(NoAction::OutsideBakeWindow {
                deployment_id: "d-1".into(),
                minutes_ago: 61,
                bake_minutes: 60
            })
        );
        let Action::Nothing(n) = a else { panic!() };
        assert!(
            n.to_string().contains("outside the 60-minute bake window"),
            "{n}"
        );
    }

    #[test]
    fn the_policy_window_is_honoured() {
        let h = history(vec![release(DeploymentStatus::Succeeded, Some(100))]);
        let a = decide(&Facts {
            now_ms: NOW,
            bake_minutes: 120,
            enabled: true,
            history: &h,
            alias: Some(&alias("2")),
            alarm_version: None,
            transition_ms: None,
        });
        assert_eq!(a.name(), "rollback");
        let a = decide(&Facts {
            now_ms: NOW,
            bake_minutes: 0,
            enabled: true,
            history: &h,
            alias: Some(&alias("2")),
            alarm_version: None,
            transition_ms: None,
        });
        assert!(matches!(
            a,
            Action::Nothing(NoAction::OutsideBakeWindow { .. })
        ));
    }

    #[test]
    fn every_no_action_row() {
        let ok = release(DeploymentStatus::Succeeded, Some(5));
        let cases: Vec<(History, Option<AliasState>, NoAction)> = vec![
            (
                history(vec![]),
                Some(alias("2")),
                NoAction::NoDeploymentRecorded,
            ),
            (
                history(vec![release(DeploymentStatus::Failed, Some(5))]),
                Some(alias("1")),
                NoAction::LastDeploymentEnded {
                    deployment_id: "d-1".into(),
                    status: DeploymentStatus::Failed,
                },
            ),
            (
                history(vec![release(DeploymentStatus::Stopped, Some(5))]),
                Some(alias("1")),
                NoAction::LastDeploymentEnded {
                    deployment_id: "d-1".into(),
                    status: DeploymentStatus::Stopped,
                },
            ),
            (
                history(vec![release(DeploymentStatus::Succeeded, None)]),
                Some(alias("2")),
                NoAction::NoEndTime {
                    deployment_id: "d-1".into(),
                },
            ),
            (history(vec![ok.clone()]), None, NoAction::AliasMissing),
            (
                history(vec![ok.clone()]),
                Some(alias("1")),
                NoAction::AlreadyRolledBack {
                    version: "1".into(),
                },
            ),
            (
                history(vec![ok.clone()]),
                Some(alias("3")),
                NoAction::AliasMoved {
                    alias_version: "3".into(),
                    release_version: "2".into(),
                },
            ),
            (
                History {
                    deployments: vec![ok.clone()],
                    quarantined: BTreeSet::from(["1".to_owned()]),
                    ..History::default()
                },
                Some(alias("2")),
                NoAction::PreviousQuarantined {
                    version: "1".into(),
                },
            ),
            (
                history(vec![DeploymentRecord {
                    from_version: "2".into(),
                    ..ok.clone()
                }]),
                Some(alias("2")),
                NoAction::NoPreviousVersion,
            ),
        ];
        for (h, a, expected) in cases {
            assert_eq!(
                run(&h, a.as_ref()),
                Action::Nothing(expected.clone()),
                "{expected}"
            );
        }
        // Weighted routing on the released version: something else is shifting traffic.
        let mut shifting = alias("2");
        shifting.weights.insert("3".into(), 0.5);
        assert!(matches!(
            run(&history(vec![ok.clone()]), Some(&shifting)),
            Action::Nothing(NoAction::AliasMoved { .. })
        ));
    }

    #[test]
    fn disabled_policy_and_other_version() {
        let h = history(vec![release(DeploymentStatus::InProgress, None)]);
        let f = Facts {
            now_ms: NOW,
            bake_minutes: 60,
            enabled: false,
            history: &h,
            alias: Some(&alias("1")),
            alarm_version: None,
            transition_ms: None,
        };
        assert_eq!(decide(&f), Action::Nothing(NoAction::Disabled));
        let f = Facts {
            enabled: true,
            alarm_version: Some("1"),
            ..f
        };
        assert_eq!(
            decide(&f),
            Action::Nothing(NoAction::OtherVersion {
                alarm_version: "1".into(),
                release_version: "2".into()
            })
        );
        let f = Facts {
            alarm_version: Some("2"),
            ..f
        };
        assert_eq!(decide(&f).name(), "stop_deployment");
    }

    #[test]
    fn codedeploy_rollback_deployments_are_not_releases() {
        // CodeDeploy rolled d-1 back (a Rollback deployment 2 -> 1 came after it):
        // the latest *release* failed, so nothing to do.
        let mut rb = release(DeploymentStatus::Succeeded, Some(1));
        rb.deployment_id = "d-rb".into();
        rb.kind = DeploymentKind::Rollback;
        rb.from_version = "2".into();
        rb.to_version = "1".into();
        let h = history(vec![rb, release(DeploymentStatus::Failed, Some(2))]);
        assert!(matches!(
            run(&h, Some(&alias("1"))),
            Action::Nothing(NoAction::LastDeploymentEnded { .. })
        ));
    }

    /// An alarm transition delivered late (EventBridge and Lambda retry events for up to
    /// hours) from before the release started is about the version before: neither a
    /// stop nor a rollback, whatever the release's state.
    #[test]
    fn a_transition_from_before_the_release_never_undoes_it() {
        for (status, ended) in [
            (DeploymentStatus::InProgress, None),
            (DeploymentStatus::Succeeded, Some(10)),
        ] {
            let h = history(vec![release(status, ended)]);
            let started = NOW - 120 * MIN;
            let facts = |t: i64| Facts {
                now_ms: NOW,
                bake_minutes: 60,
                enabled: true,
                history: &h,
                alias: Some(&ALIAS_2),
                alarm_version: None,
                transition_ms: Some(t),
            };
            let a = decide(&facts(started - 1));
            assert_eq!(
                a,
                Action::Nothing(NoAction::TransitionBeforeRelease {
                    deployment_id: "d-1".into(),
                    transition_ms: started - 1,
                    release_started_ms: started,
                })
            );
            let Action::Nothing(n) = a else { panic!() };
            assert!(n.to_string().contains("not this release"), "{n}");
            // At or after the start, the release is judged as before.
            assert_ne!(decide(&facts(started)).name(), "none", "{status:?}");
            assert_ne!(decide(&facts(NOW)).name(), "none", "{status:?}");
        }
    }

    static ALIAS_2: std::sync::LazyLock<AliasState> = std::sync::LazyLock::new(|| alias("2"));

    #[test]
    fn every_reason_reads_as_a_sentence() {
        for n in [
            NoAction::Disabled,
            NoAction::NoTargets,
            NoAction::NotAlarm { state: "OK".into() },
            NoAction::ClaimedElsewhere {
                by_event: "alarm:x".into(),
            },
            NoAction::StaleRevision {
                expected_revision: "r".into(),
            },
            NoAction::DeploymentAlreadyCompleted {
                deployment_id: "d".into(),
            },
        ] {
            let s = n.to_string();
            assert!(s.len() > 10 && !s.ends_with('.'), "{s}");
        }
    }

    #[test]
    fn the_reasons_told_apart_from_the_match_explain_themselves() {
        let told_by_text = [
            NoAction::Disabled,
            NoAction::NoDeploymentRecorded,
            NoAction::AliasMissing,
            NoAction::NoPreviousVersion,
            NoAction::NoTargets,
        ];
        for n in told_by_text {
            assert!(n.fixed_text().is_some(), "{n:?}");
            assert_eq!(n.to_string(), n.fixed_text().unwrap());
        }
        let t = NoAction::TransitionBeforeRelease {
            deployment_id: "d-1".into(),
            transition_ms: 1_000,
            release_started_ms: 61_000,
        };
        assert!(
            t.to_string()
                .starts_with("the alarm went to ALARM 60 s before deployment d-1")
        );
    }
}
