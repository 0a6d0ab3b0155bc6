//! The property of every fuzz target, one function per target (`fuzz_targets/<name>.rs`
//! calls it on each input libFuzzer makes). A property never panics on any input, and
//! asserts what the parser promises about what it accepts and what it rejects.
//!
//! This file is also compiled into the workspace's tests (`shared/tests/fuzz_replay.rs`),
//! which run every property on the committed seeds, AWS's published samples and `events/`
//! at each `make test`: it may use only `rollgate` and `serde_json`.

use serde_json::Value;

/// A target's property: panics when the input breaks it.
pub type Property = fn(&[u8]);

/// Every target by name (its `fuzz_targets/<name>.rs` and `corpus/<name>/`), with its
/// property.
pub const TARGETS: &[(&str, Property)] = &[
    ("appspec", appspec::check),
    ("policy", policy::check),
    ("hook_event", hook_event::check),
    ("rollback_event", rollback_event::check),
    ("redrive_request", redrive_request::check),
];

/// Whether two JSON documents are equal, numbers within a relative 1e-9: serde_json's
/// default float parsing is not always exact to the last bit, so a float that goes
/// through text twice may move by one ulp without anything being wrong.
pub fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x == y {
                return true;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_close(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_close(a, b)))
        }
        _ => a == b,
    }
}

/// The fuzz input as a JSON document, as the Lambda runtime would hand it over, or
/// `None` when it is not JSON (the runtime rejects those before any rollgate code runs).
pub fn json_payload(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

pub mod appspec {
    use rollgate::appspec::{self, LAMBDA_RESOURCE_TYPE, LambdaTarget};
    use serde_json::{Map, Value, json};

    fn positive_version(v: &str) -> bool {
        v.parse::<u64>().is_ok_and(|n| n > 0 && n.to_string() == v)
    }

    fn name_chars(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// `target` as a JSON AppSpec, one list item per hook so that order and repeats survive.
    fn as_json_appspec(t: &LambdaTarget) -> String {
        let hooks: Vec<Value> = t
            .hooks
            .iter()
            .map(|h| {
                let mut m = Map::new();
                m.insert(h.event.clone(), Value::String(h.function.clone()));
                Value::Object(m)
            })
            .collect();
        json!({
            "version": 0.0,
            "Resources": [{"fn": {
                "Type": LAMBDA_RESOURCE_TYPE,
                "Properties": {
                    "Name": t.function_ref,
                    "Alias": t.alias,
                    "CurrentVersion": t.current_version,
                    "TargetVersion": t.target_version,
                }
            }}],
            "Hooks": hooks,
        })
        .to_string()
    }

    /// The AppSpec parser (`rollgate::appspec::parse`), JSON and YAML: the text comes from
    /// whoever created the deployment. It must never panic; what it accepts must satisfy the
    /// rules it promises, and must come out the same when written back as a JSON AppSpec.
    pub fn check(data: &[u8]) {
        // CodeDeploy hands the AppSpec over as a string; non-UTF-8 never reaches the parser.
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        match appspec::parse(text) {
            Ok(t) => {
                assert!(
                    !t.function_name.is_empty() && t.function_name.len() <= 64,
                    "{t:?}"
                );
                assert!(name_chars(&t.function_name), "{t:?}");
                assert!(!t.alias.is_empty() && t.alias.len() <= 128, "{t:?}");
                assert!(name_chars(&t.alias), "{t:?}");
                assert!(positive_version(&t.current_version), "{t:?}");
                assert!(positive_version(&t.target_version), "{t:?}");
                let _ = serde_json::to_string(&t).expect("a LambdaTarget serialises");
                let again = appspec::parse(&as_json_appspec(&t))
                    .unwrap_or_else(|e| panic!("accepted {t:?}, rejected as JSON: {e}"));
                assert_eq!(again, t);
            }
            Err(e) => assert!(!e.to_string().trim().is_empty(), "{e:?}"),
        }
    }
}

pub mod policy {
    use super::json_close;
    use rollgate::policy::Policy;

    /// The policy loader both hooks and alarm-rollback use (`Policy::parse`, which also
    /// validates the `post_traffic` and `rollback` sections). The text comes from an SSM
    /// parameter anyone with write access can change. It must never panic; an error names
    /// a field path; an accepted policy, written back as JSON, is accepted again unchanged.
    pub fn check(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        match Policy::parse(text) {
            Ok(policy) => {
                policy.validate().expect("a parsed policy validates");
                let written = serde_json::to_string(&policy).expect("a policy serialises");
                let again = Policy::parse(&written).unwrap_or_else(|e| {
                    panic!("accepted, then rejected its own JSON: {e}\n{written}")
                });
                let (a, b) = (
                    serde_json::to_value(&policy).expect("serialises"),
                    serde_json::to_value(&again).expect("serialises"),
                );
                assert!(
                    json_close(&a, &b),
                    "round trip changed the policy:\n{a}\n{b}"
                );
                // The derived views the functions use must not panic either.
                let _ = policy.pre_traffic.budget();
                if let Some(post) = &policy.post_traffic {
                    let _ = post.max_bake_seconds();
                }
            }
            Err(e) => {
                assert!(!e.path().is_empty(), "{e:?}");
                assert!(!e.to_string().trim().is_empty(), "{e:?}");
            }
        }
    }
}

pub mod hook_event {
    use super::{json_close, json_payload};
    use rollgate::hook::HookEvent;
    use rollgate::post_traffic::{BakeState, CONTINUATION_KEY};

    /// The payload of the pre- and post-traffic hooks, decoded as their `main.rs` does:
    /// `HookEvent::from_value`, then (post-traffic) the `rollgate_continuation` bake state
    /// that a previous invocation of the hook handed over. Never panics; errors say what is
    /// wrong; the ids are passed on unchanged; a decoded bake state survives the JSON round
    /// trip to the next invocation.
    pub fn check(data: &[u8]) {
        let Some(payload) = json_payload(data) else {
            return;
        };
        match HookEvent::from_value(&payload) {
            Ok(ev) => {
                // The ids go back to CodeDeploy exactly as they came: no length or character
                // rule of our own (a real execution id is ~300 characters; CodeDeploy is the
                // judge of its own ids), only a non-blank string.
                for (id, key) in [
                    (&ev.deployment_id, "DeploymentId"),
                    (&ev.execution_id, "LifecycleEventHookExecutionId"),
                ] {
                    assert!(!id.trim().is_empty(), "{ev:?}");
                    assert_eq!(payload[key].as_str(), Some(id.as_str()), "{ev:?}");
                }
            }
            Err(e) => assert!(!e.to_string().trim().is_empty(), "{e:?}"),
        }
        if let Some(state) = payload.get(CONTINUATION_KEY)
            && let Ok(bake) = serde_json::from_value::<BakeState>(state.clone())
        {
            let written = serde_json::to_value(&bake).expect("a bake state serialises");
            let text = serde_json::to_string(&written).expect("and prints");
            let again: BakeState = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("bake state does not read back: {e}\n{text}"));
            let reread = serde_json::to_value(&again).expect("serialises");
            assert!(json_close(&written, &reread), "{written}\n{reread}");
        }
    }
}

pub mod rollback_event {
    use super::json_payload;
    use rollgate::rollback::event::{self, Inbound};
    use rollgate::rollback::{run, targets};
    use rollgate::scope::{AllowList, Home};

    /// What the alarm-rollback function decodes (`rollback::event::parse`): EventBridge
    /// alarm state changes, alarm Lambda actions, SNS-wrapped alarm notifications (a JSON
    /// string inside JSON) and CodeDeploy state-change events. Never panics; errors say
    /// what is wrong; every decoded item can be keyed and logged. Then the scope checks:
    /// the event's claims of origin against a home, and the alarm's targets against it and
    /// an allow-list: whatever is kept is a plain function name of home, inside the list.
    pub fn check(data: &[u8]) {
        let Some(payload) = json_payload(data) else {
            return;
        };
        match event::parse(&payload) {
            Ok(items) => {
                for item in items {
                    match item {
                        Inbound::Alarm(alarm) => {
                            let key = alarm.event_key();
                            assert!(key.starts_with("alarm:"), "{key}");
                            let _ = alarm.is_alarm();
                            serde_json::to_string(&alarm).expect("an alarm serialises");
                            let home =
                                Home::from_parts("", Some("123456789012"), Some("us-east-1"));
                            let allow = AllowList::parse(
                                "arn:aws:lambda:us-east-1:123456789012:function:o?d*",
                            );
                            let resolved = targets::resolve(&alarm, None);
                            let (kept, _) = run::scope_targets(&home, &allow, resolved.targets);
                            for t in kept {
                                assert!(!t.function.contains(':'), "{t:?}");
                                assert!(allow.allows(&home.function_arn(&t.function)), "{t:?}");
                            }
                        }
                        Inbound::Deployment(change) => {
                            serde_json::to_string(&change).expect("a change serialises");
                        }
                        Inbound::AliasChange(_) | Inbound::Manual(_) | Inbound::Schedule { .. } => {
                        }
                    }
                }
            }
            Err(e) => assert!(!e.to_string().trim().is_empty(), "{e:?}"),
        }
        let home = Home::from_parts(
            "arn:aws:lambda:us-east-1:123456789012:function:rollgate-alarm-rollback",
            None,
            None,
        );
        if let Err(e) = event::parse_at_home(&payload, &home) {
            assert!(!e.to_string().trim().is_empty(), "{e:?}");
        }
    }
}

pub mod redrive_request {
    use super::json_payload;
    use rollgate::redrive::request::{Mode, RequestError, RunCounts};
    use rollgate::redrive::{AllowList, Request};
    use std::collections::BTreeMap;

    /// The dlq-redrive request (`redrive::Request::parse`), which a person types. Never
    /// panics; errors name a field (never an empty one); the continuation an accepted request hands to the next
    /// run parses again and counts one more run. The filter it carries is then run on the
    /// input itself as a message body, and the allow-list parser on the source.
    pub fn check(data: &[u8]) {
        let Some(payload) = json_payload(data) else {
            return;
        };
        match Request::parse(&payload) {
            Ok(req) => {
                let body = String::from_utf8_lossy(data);
                let _ = req.filter.matches(&body, &BTreeMap::new());
                let allow = AllowList::parse(&req.source);
                let _ = allow.allows(&req.source);
                let done = RunCounts {
                    moved: 1,
                    duplicates: 1,
                };
                let next = req.continuation(done, Some(1));
                let again = Request::parse(&next)
                    .unwrap_or_else(|e| panic!("continuation rejected: {e}\n{next}"));
                assert_eq!(again.action, req.action);
                assert_eq!(again.source, req.source);
                assert_eq!(again.destination, req.destination);
                assert_eq!(again.mode, req.mode);
                // Copy mode counts the destination's accepted messages as copies, and keeps
                // the hold; move mode counts them as moved and carries no hold.
                let copy = req.mode == Mode::Copy;
                let expect = |before: u64, step: u64| before.saturating_add(step);
                let c = &again.carried;
                let was = &req.carried;
                assert_eq!(c.run, was.run.saturating_add(1), "{next}");
                assert_eq!(c.duplicates, expect(was.duplicates, 1), "{next}");
                if copy {
                    assert_eq!(c.moved, was.moved, "{next}");
                    assert_eq!(c.copied, expect(was.copied, 1), "{next}");
                    assert_eq!(c.hold_until_ms, Some(1), "{next}");
                } else {
                    assert_eq!(c.moved, expect(was.moved, 1), "{next}");
                    assert_eq!(c.copied, was.copied, "{next}");
                    assert_eq!(c.hold_until_ms, None, "{next}");
                }
            }
            Err(e) => {
                let RequestError::Field { field, message } = &e;
                assert!(!field.is_empty() && !message.is_empty(), "{e:?}");
            }
        }
    }
}
