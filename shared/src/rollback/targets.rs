//! Which functions an alarm guards.
//!
//! First the alarm's own metrics: a `FunctionName` dimension names the function,
//! `Resource=<function>:<alias>` the alias, `ExecutedVersion` the version the alarm is
//! about (metric-math alarms contribute every metric they read). An alarm without such
//! dimensions (a composite alarm, a custom metric) is read through its tags:
//! `rollgate:function` (`<fn>` or `<fn>:<alias>`), `rollgate:alias`, `rollgate:group`.
//! A group — from the alarm's tag or a guarded function's own `rollgate:group` tag —
//! brings in every function of that group.

use super::event::AlarmSignal;
use crate::names::{FunctionRef, is_alias};
use std::collections::{BTreeMap, BTreeSet};

pub const TAG_FUNCTION: &str = "rollgate:function";
pub const TAG_ALIAS: &str = "rollgate:alias";
pub const TAG_GROUP: &str = "rollgate:group";

/// One guarded function, with the alias when the alarm names one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Target {
    pub function: String,
    /// `None`: every alias rollgate has seen deployed for the function.
    pub alias: Option<String>,
    /// The version the alarm watches (`ExecutedVersion`), if it names one.
    pub version: Option<String>,
}

/// Where the targets came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Dimensions,
    Tags,
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resolution {
    pub source: Source,
    pub targets: BTreeSet<Target>,
    pub groups: BTreeSet<String>,
}

impl Resolution {
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.groups.is_empty()
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// `fn`, `fn:alias` or `fn:7` (a version) as written in a `Resource` dimension or tag.
fn split_qualified(value: &str) -> (Option<String>, Option<String>, Option<String>) {
    match value.split_once(':') {
        Some((f, q)) if q.chars().all(|c| c.is_ascii_digit()) && !q.is_empty() => {
            (non_empty(f), None, Some(q.to_owned()))
        }
        Some((f, "$LATEST")) => (non_empty(f), None, None),
        Some((f, q)) => (non_empty(f), non_empty(q), None),
        None => (non_empty(value), None, None),
    }
}

/// Whether a target names a function and alias the way Lambda spells them: a name of
/// 1-64 letters, digits, `-`, `_` (or the function's ARN) and an alias of 1-128 of them.
/// Anything else (wildcards, paths, control characters) guards nothing: it is dropped
/// before any AWS call is made with it.
fn valid(target: &Target) -> bool {
    // A name or a full ARN, unqualified (the alias travels apart).
    let function_ok = FunctionRef::parse(&target.function)
        .is_ok_and(|r| r.qualifier.is_none() && (r.is_arn() || r.account.is_none()));
    function_ok && target.alias.as_deref().is_none_or(is_alias)
}

/// Targets named by the alarm's metric dimensions (no AWS call needed).
pub fn from_dimensions(alarm: &AlarmSignal) -> BTreeSet<Target> {
    let mut out = BTreeSet::new();
    for m in &alarm.metrics {
        let d = &m.dimensions;
        let (res_fn, res_alias, res_version) = d
            .get("Resource")
            .map(|r| split_qualified(r))
            .unwrap_or((None, None, None));
        let Some(function) = d
            .get("FunctionName")
            .and_then(|f| non_empty(f))
            .or(res_fn.clone())
        else {
            continue;
        };
        // A Resource naming another function than FunctionName says nothing about this one.
        let same = res_fn.as_deref().is_none_or(|f| f == function);
        let version = d
            .get("ExecutedVersion")
            .and_then(|v| non_empty(v))
            .or(if same { res_version } else { None });
        let target = Target {
            function,
            alias: if same { res_alias } else { None },
            version,
        };
        if valid(&target) {
            out.insert(target);
        }
    }
    out
}

/// Targets and groups named by the alarm's tags.
pub fn from_tags(tags: &BTreeMap<String, String>) -> (BTreeSet<Target>, BTreeSet<String>) {
    let mut targets = BTreeSet::new();
    let alias_tag = tags.get(TAG_ALIAS).and_then(|a| non_empty(a));
    if let Some(value) = tags.get(TAG_FUNCTION) {
        // Several functions may be listed, separated by commas or spaces.
        for item in value.split([',', ' ']).filter(|s| !s.trim().is_empty()) {
            let (f, alias, version) = split_qualified(item.trim());
            if let Some(function) = f {
                let target = Target {
                    function,
                    alias: alias.or_else(|| alias_tag.clone()),
                    version,
                };
                if valid(&target) {
                    targets.insert(target);
                }
            }
        }
    }
    let groups = tags
        .get(TAG_GROUP)
        .and_then(|g| non_empty(g))
        .into_iter()
        .collect();
    (targets, groups)
}

/// Dimensions first; tags (`None` when they could not be read) only when the dimensions
/// name no function. Composite alarms have no dimensions and always go to the tags.
pub fn resolve(alarm: &AlarmSignal, tags: Option<&BTreeMap<String, String>>) -> Resolution {
    let by_dims = from_dimensions(alarm);
    let tag_groups: BTreeSet<String> = tags
        .and_then(|t| t.get(TAG_GROUP))
        .and_then(|g| non_empty(g))
        .into_iter()
        .collect();
    if !by_dims.is_empty() {
        return Resolution {
            source: Source::Dimensions,
            targets: by_dims,
            groups: tag_groups,
        };
    }
    let (targets, groups) = tags.map(from_tags).unwrap_or_default();
    let source = if targets.is_empty() && groups.is_empty() {
        Source::Nothing
    } else {
        Source::Tags
    };
    Resolution {
        source,
        targets,
        groups,
    }
}

/// Whether [`resolve`] needs the alarm's tags: only when its dimensions name nothing.
pub fn needs_tags(alarm: &AlarmSignal) -> bool {
    from_dimensions(alarm).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollback::event::{Envelope, MetricRef};

    fn alarm(metrics: Vec<&[(&str, &str)]>) -> AlarmSignal {
        AlarmSignal {
            envelope: Envelope::EventBridge,
            alarm_name: "a".into(),
            alarm_arn: Some("arn:aws:cloudwatch:us-east-1:1:alarm:a".into()),
            state: "ALARM".into(),
            previous_state: Some("OK".into()),
            state_timestamp: Some("t".into()),
            reason: None,
            composite: metrics.is_empty(),
            metrics: metrics
                .into_iter()
                .map(|d| MetricRef {
                    namespace: Some("AWS/Lambda".into()),
                    name: Some("Errors".into()),
                    dimensions: d
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                })
                .collect(),
            delivery_id: None,
        }
    }

    fn t(f: &str, alias: Option<&str>, version: Option<&str>) -> Target {
        Target {
            function: f.into(),
            alias: alias.map(Into::into),
            version: version.map(Into::into),
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn function_name_alone_guards_every_alias() {
        let r = resolve(&alarm(vec![&[("FunctionName", "orders")]]), None);
        assert_eq!(r.source, Source::Dimensions);
        assert_eq!(r.targets, BTreeSet::from([t("orders", None, None)]));
    }

    #[test]
    fn resource_names_the_alias_and_executed_version_the_version() {
        let a = alarm(vec![&[
            ("FunctionName", "orders"),
            ("Resource", "orders:live"),
            ("ExecutedVersion", "7"),
        ]]);
        assert_eq!(
            from_dimensions(&a),
            BTreeSet::from([t("orders", Some("live"), Some("7"))])
        );
        // A version qualifier in Resource is a version, not an alias.
        let a = alarm(vec![&[
            ("FunctionName", "orders"),
            ("Resource", "orders:7"),
        ]]);
        assert_eq!(
            from_dimensions(&a),
            BTreeSet::from([t("orders", None, Some("7"))])
        );
        // Resource alone is enough.
        let a = alarm(vec![&[("Resource", "orders:live")]]);
        assert_eq!(
            from_dimensions(&a),
            BTreeSet::from([t("orders", Some("live"), None)])
        );
        // A Resource of another function does not lend its alias.
        let a = alarm(vec![&[
            ("FunctionName", "orders"),
            ("Resource", "other:live"),
        ]]);
        assert_eq!(
            from_dimensions(&a),
            BTreeSet::from([t("orders", None, None)])
        );
    }

    #[test]
    fn metric_math_alarms_guard_every_function_they_read() {
        let a = alarm(vec![
            &[("FunctionName", "orders"), ("Resource", "orders:live")],
            &[("FunctionName", "payments"), ("Resource", "payments:live")],
            &[("FunctionName", "orders"), ("Resource", "orders:live")],
            &[("QueueName", "jobs")],
        ]);
        let r = resolve(&a, None);
        assert_eq!(
            r.targets,
            BTreeSet::from([
                t("orders", Some("live"), None),
                t("payments", Some("live"), None)
            ])
        );
    }

    #[test]
    fn without_function_dimensions_the_tags_decide() {
        let a = alarm(vec![&[("QueueName", "jobs")]]);
        assert!(needs_tags(&a));
        let r = resolve(
            &a,
            Some(&tags(&[(TAG_FUNCTION, "orders"), (TAG_ALIAS, "live")])),
        );
        assert_eq!(r.source, Source::Tags);
        assert_eq!(r.targets, BTreeSet::from([t("orders", Some("live"), None)]));
        // Several functions, one with its own alias.
        let r = resolve(
            &a,
            Some(&tags(&[(TAG_FUNCTION, "a, b:blue"), (TAG_ALIAS, "live")])),
        );
        assert_eq!(
            r.targets,
            BTreeSet::from([t("a", Some("live"), None), t("b", Some("blue"), None)])
        );
    }

    #[test]
    fn composite_alarms_resolve_through_tags_and_groups() {
        let c = alarm(vec![]);
        assert!(needs_tags(&c));
        let r = resolve(&c, Some(&tags(&[(TAG_GROUP, "checkout")])));
        assert_eq!(r.source, Source::Tags);
        assert!(r.targets.is_empty());
        assert_eq!(r.groups, BTreeSet::from(["checkout".to_owned()]));
        assert!(!r.is_empty());
    }

    #[test]
    fn group_tag_adds_to_dimension_targets() {
        let a = alarm(vec![&[("FunctionName", "orders")]]);
        assert!(!needs_tags(&a));
        let r = resolve(&a, Some(&tags(&[(TAG_GROUP, "checkout")])));
        assert_eq!(r.source, Source::Dimensions);
        assert_eq!(r.groups, BTreeSet::from(["checkout".to_owned()]));
    }

    #[test]
    fn an_alarm_that_guards_nothing() {
        let a = alarm(vec![&[("QueueName", "jobs")]]);
        for t in [
            None,
            Some(tags(&[])),
            Some(tags(&[("team", "x"), (TAG_FUNCTION, " ")])),
        ] {
            let r = resolve(&a, t.as_ref());
            assert_eq!(r.source, Source::Nothing);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn names_lambda_would_refuse_guard_nothing() {
        for (f, r) in [
            ("*", "*:*"),
            ("../orders/..", "../orders/..:live"),
            ("orders\u{0}\n", "orders\u{0}\n:live"),
            ("orders", "orders:l*ve"),
            ("orders", "orders:../live"),
            ("arn:aws:lambda:us-east-1:1:layer:orders", "x"),
        ] {
            let a = alarm(vec![&[("FunctionName", f), ("Resource", r)]]);
            assert!(from_dimensions(&a).is_empty(), "{f} {r}");
        }
        let a = alarm(vec![&[(
            "FunctionName",
            "arn:aws:lambda:eu-west-1:999999999999:function:orders",
        )]]);
        assert_eq!(from_dimensions(&a).len(), 1);
        let (targets, _) = from_tags(&tags(&[(TAG_FUNCTION, "orders:live, */x, a:b*")]));
        assert_eq!(
            targets.into_iter().collect::<Vec<_>>(),
            vec![t("orders", Some("live"), None)]
        );
    }
}
