//! Cards of every kind of decision, checked against schema/chat-notification.schema.json
//! (the same file the integration test validates received cards with), and the limits.

use super::*;
use crate::decision::{CheckResult, Decision, Outcome, Verdict};
use crate::limits::was_cut;
use serde_json::{Value, json};

const SCHEMA: &str = include_str!("../../schema/chat-notification.schema.json");

/// Where errors of `value` against `schema` are, for the keywords the card schema uses
/// (type, enum, required, properties, additionalProperties, items, maxLength); empty when
/// it conforms.
fn errors(schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let ty = schema["type"].as_str().unwrap_or("");
    let type_ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        out.push(format!("{at}: not a {ty}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        out.push(format!("{at}: {value} not in {allowed:?}"));
    }
    if let (Some(max), Some(s)) = (schema["maxLength"].as_u64(), value.as_str())
        && s.chars().count() as u64 > max
    {
        out.push(format!(
            "{at}: {} characters, over {max}",
            s.chars().count()
        ));
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            errors(&schema["items"], item, &format!("{at}[{i}]"), out);
        }
    }
    let Some(map) = value.as_object() else {
        return;
    };
    for name in schema["required"].as_array().into_iter().flatten() {
        if !map.contains_key(name.as_str().unwrap()) {
            out.push(format!("{at}: {name} is required"));
        }
    }
    for (k, v) in map {
        match (&schema["properties"][k], &schema["additionalProperties"]) {
            (Value::Null, Value::Bool(false)) => out.push(format!("{at}.{k}: not allowed")),
            (Value::Null, Value::Object(_)) => errors(
                &schema["additionalProperties"],
                v,
                &format!("{at}.{k}"),
                out,
            ),
            (Value::Null, _) => {}
            (sub, _) => errors(sub, v, &format!("{at}.{k}"), out),
        }
    }
}

/// The card's JSON text, parsed, after checking it against the schema and SNS's size.
fn valid(card: &Card) -> Value {
    let text = card.to_json();
    assert!(text.len() <= CARD_MAX_BYTES, "{} bytes", text.len());
    let value: Value = serde_json::from_str(&text).expect("the card is JSON");
    let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    let mut found = Vec::new();
    errors(&schema, &value, "card", &mut found);
    assert!(found.is_empty(), "{found:#?}\n{value:#}");
    value
}

fn home() -> Home {
    Home {
        partition: Some("aws".into()),
        region: Some("eu-west-1".into()),
        account: Some("123456789012".into()),
    }
}

fn attrs(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// A hook's decision, as `hook::run_gate` builds it.
fn gate(component: &str, checks: Vec<CheckResult>) -> Decision {
    let verdict = Verdict::from_checks(&checks);
    Decision {
        component: component.into(),
        verdict,
        reason: match verdict {
            Verdict::Succeeded => "all 2 checks passed on orders:7".into(),
            Verdict::Failed => "1 of 2 checks failed on orders:7: smoke[health]".into(),
        },
        deployment_id: Some("d-ABCDEF123".into()),
        function_name: Some("orders".into()),
        alias: Some("live".into()),
        current_version: Some("6".into()),
        target_version: Some("7".into()),
        policy_source: Some("ssm:/rollgate/policies/orders".into()),
        checks,
        duration_ms: 1234,
    }
}

/// alarm-rollback's decision, as `rollback::run::to_decision` builds it (the bad version
/// is the target, the good one the current, and an `action` check closes the list).
fn rollback(action: &str, acted: bool, dry_run: bool, error: bool, reason: &str) -> Decision {
    Decision {
        component: "alarm-rollback".into(),
        verdict: if error {
            Verdict::Failed
        } else {
            Verdict::Succeeded
        },
        reason: reason.into(),
        deployment_id: Some("d-ABCDEF123".into()),
        function_name: Some("orders".into()),
        alias: Some("live".into()),
        current_version: Some("6".into()),
        target_version: Some("7".into()),
        policy_source: None,
        checks: vec![
            CheckResult::pass(
                "targets",
                json!({"alarm": "orders-5xx"}),
                json!(["orders:live"]),
            ),
            CheckResult::new(
                "action",
                if error { Outcome::Fail } else { Outcome::Pass },
                json!({"alarm": "orders-5xx"}),
                json!({"action": action, "acted": acted, "dry_run": dry_run}),
            ),
        ],
        duration_ms: 80,
    }
}

fn rollback_attrs(action: &str, dry_run: bool) -> Vec<(&'static str, String)> {
    let dry = if dry_run { "true" } else { "false" };
    attrs(&[
        ("action", action),
        ("alarm", "orders-5xx"),
        ("dry_run", dry),
        ("alias", "live"),
    ])
}

#[test]
fn a_passed_gate_names_the_release_and_what_to_look_at() {
    let d = gate(
        "pre-traffic-hook",
        vec![
            CheckResult::pass("config.state", json!("Active"), json!("Active")),
            CheckResult::pass(
                "smoke[health]",
                json!({"status": "ok"}),
                json!({"status": "ok"}),
            ),
        ],
    );
    let v = valid(&card(&d, &[], &home()));
    let title = v["content"]["title"].as_str().unwrap();
    assert_eq!(title, "✅ pre-traffic gate passed: orders:live, version 7");
    let text = v["content"]["description"].as_str().unwrap();
    assert!(text.contains("all 2 checks passed on orders:7"), "{text}");
    assert!(
        text.contains("*Versions:* 6 → 7") && text.contains("`d-ABCDEF123`"),
        "{text}"
    );
    assert!(
        text.contains("0 failed, 0 inconclusive, 2 passed (2 in all)"),
        "{text}"
    );
    assert!(text.contains("✅ `smoke[health]`"), "{text}");
    let steps: Vec<&str> = v["content"]["nextSteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps[0].contains("`rollgate status orders`"));
    assert!(steps[1].contains("`rollgate history orders`"));
    assert!(steps[2].contains("`rollgate report d-ABCDEF123 --html d-ABCDEF123.html`"));
    assert_eq!(
        v["content"]["keywords"],
        json!(["rollgate", "pre-traffic-hook", "passed", "orders"])
    );
    assert_eq!(v["content"]["textType"], "client-markdown");
    let m = &v["metadata"];
    assert_eq!(m["threadId"], "rollgate-d-ABCDEF123");
    assert_eq!(m["eventType"], "rollgate-pre-traffic-hook-passed");
    assert_eq!(
        m["relatedResources"],
        json!(["arn:aws:lambda:eu-west-1:123456789012:function:orders:live"])
    );
    assert_eq!(m["additionalContext"]["verdict"], "Succeeded");
    assert_eq!(m["additionalContext"]["targetVersion"], "7");
    assert_eq!(m["enableCustomActions"], true);
    assert!(m["summary"].as_str().unwrap().starts_with(title));
}

#[test]
fn a_failed_gate_shows_each_failed_check_with_expected_and_actual() {
    let d = gate(
        "post-traffic-hook",
        vec![
            CheckResult::pass("config.state", json!("Active"), json!("Active")),
            CheckResult::fail(
                "canary.error_rate",
                json!({"max_ratio": 1.5}),
                json!({"new": 0.12, "old": 0.01}),
            )
            .with_detail("the new version fails 12 times as often"),
            CheckResult::new(
                "bake.p99",
                Outcome::Inconclusive,
                json!({"max_ms": 800}),
                json!(null),
            ),
        ],
    );
    let v = valid(&card(&d, &[], &home()));
    assert_eq!(
        v["content"]["title"],
        "🛑 post-traffic gate failed: orders:live, version 7"
    );
    let text = v["content"]["description"].as_str().unwrap();
    assert!(
        text.contains("• ❌ `canary.error_rate` expected `{\"max_ratio\":1.5}`, actual `{\"new\":0.12,\"old\":0.01}` (the new version fails 12 times as often)"),
        "{text}"
    );
    assert!(text.contains("• ❔ `bake.p99`"), "{text}");
    assert!(
        !text.contains("`config.state`"),
        "passed checks are only counted: {text}"
    );
    assert!(
        text.contains("1 failed, 1 inconclusive, 1 passed (3 in all)"),
        "{text}"
    );
    assert!(
        text.contains(
            "…and 1 more check not listed here: `rollgate report d-ABCDEF123` shows them all"
        ),
        "{text}"
    );
    let first = v["content"]["nextSteps"][0].as_str().unwrap();
    assert!(first.contains("back on version 6"), "{first}");
    assert_eq!(
        v["metadata"]["eventType"],
        "rollgate-post-traffic-hook-failed"
    );
}

#[test]
fn a_rollback_that_acted_says_from_which_version_to_which() {
    let d = rollback(
        "rollback",
        true,
        false,
        false,
        "rolled back: orders-5xx went to ALARM 10 minutes after the release, inside the bake window",
    );
    let v = valid(&card(&d, &rollback_attrs("rollback", false), &home()));
    assert_eq!(
        v["content"]["title"],
        "⏪ rolled orders:live back from version 7 to 6"
    );
    let text = v["content"]["description"].as_str().unwrap();
    assert!(
        text.contains("*Alarm:* `orders-5xx`") && text.contains("*Versions:* bad 7, last good 6"),
        "{text}"
    );
    assert!(
        v["content"]["nextSteps"][0]
            .as_str()
            .unwrap()
            .contains("Version 7 is quarantined")
    );
    assert_eq!(
        v["metadata"]["eventType"],
        "rollgate-alarm-rollback-rollback"
    );
    assert!(
        v["content"]["keywords"]
            .as_array()
            .unwrap()
            .contains(&json!("orders-5xx"))
    );
    // The same release's gate and rollback cards share one thread.
    let gate_card = card(&gate("pre-traffic-hook", vec![]), &[], &home());
    assert_eq!(
        v["metadata"]["threadId"],
        json!(gate_card.metadata.thread_id)
    );
}

#[test]
fn a_stopped_deployment_names_the_deployment() {
    let d = rollback(
        "stop_deployment",
        true,
        false,
        false,
        "stopped deployment d-ABCDEF123 with automatic rollback",
    );
    let v = valid(&card(
        &d,
        &rollback_attrs("stop_deployment", false),
        &home(),
    ));
    assert_eq!(
        v["content"]["title"],
        "⏹️ stopped deployment d-ABCDEF123 of orders:live, back to version 6"
    );
}

#[test]
fn a_dry_run_says_what_it_would_have_done_and_that_nothing_changed() {
    let d = rollback(
        "rollback",
        false,
        true,
        false,
        "dry run: would point orders:live back from version 7 to 6",
    );
    let v = valid(&card(&d, &rollback_attrs("rollback", true), &home()));
    assert_eq!(
        v["content"]["title"],
        "🧪 dry run: would roll orders:live back from version 7 to 6"
    );
    assert!(
        v["content"]["description"]
            .as_str()
            .unwrap()
            .contains("*Dry run:* nothing was changed")
    );
    assert!(
        v["content"]["nextSteps"][0]
            .as_str()
            .unwrap()
            .contains("DryRun=false")
    );
    assert!(
        v["content"]["keywords"]
            .as_array()
            .unwrap()
            .contains(&json!("dry-run"))
    );
    assert_eq!(v["metadata"]["additionalContext"]["dry-run"], "true");
}

#[test]
fn no_action_and_a_failed_action_read_differently() {
    let d = rollback(
        "none",
        false,
        false,
        false,
        "no rollback: the release ended 90 minutes ago, after its 60-minute bake window",
    );
    let v = valid(&card(&d, &rollback_attrs("none", false), &home()));
    assert_eq!(v["content"]["title"], "ℹ️ no rollback for orders:live");
    assert!(
        v["content"]["description"]
            .as_str()
            .unwrap()
            .contains("after its 60-minute bake window")
    );
    assert_eq!(
        v["metadata"]["eventType"],
        "rollgate-alarm-rollback-no-action"
    );
    let failed = rollback(
        "rollback",
        false,
        false,
        true,
        "rollback failed: UpdateAlias: throttled",
    );
    let v = valid(&card(&failed, &rollback_attrs("rollback", false), &home()));
    assert_eq!(v["content"]["title"], "❗ rollback failed for orders:live");
    assert!(
        v["content"]["nextSteps"][0]
            .as_str()
            .unwrap()
            .contains("`rollgate rollback orders:live --reason ...`")
    );
}

#[test]
fn a_rollout_step_shows_its_action_status_and_weight() {
    // As `rollout::run::decision_for` builds it; the rollout's id is its deployment id.
    let d = Decision {
        component: "rollout".into(),
        verdict: Verdict::Succeeded,
        reason: "step 2 of 4: 25% on version 7 for 4h".into(),
        deployment_id: Some("ro-orders-live-7".into()),
        function_name: Some("orders".into()),
        alias: Some("live".into()),
        current_version: Some("6".into()),
        target_version: Some("7".into()),
        policy_source: None,
        checks: vec![CheckResult::pass(
            "canary.error_rate",
            json!({"max_ratio": 1.5}),
            json!({"ratio": 1.0}),
        )],
        duration_ms: 0,
    };
    let a = attrs(&[
        ("action", "advance"),
        ("status", "running"),
        ("alias", "live"),
        ("rollout", "ro-orders-live-7"),
        ("weight", "25"),
    ]);
    let v = valid(&card(&d, &a, &home()));
    assert_eq!(
        v["content"]["title"],
        "🚦 rollout of orders:live to version 7: advance (running, 25 % on it)"
    );
    assert_eq!(v["metadata"]["threadId"], "rollgate-ro-orders-live-7");
    assert_eq!(v["metadata"]["eventType"], "rollgate-rollout-running");
    let failed = Decision {
        verdict: Verdict::Failed,
        ..d
    };
    let a = attrs(&[("action", "judged"), ("status", "failed"), ("weight", "0")]);
    let v = valid(&card(&failed, &a, &home()));
    assert!(
        v["content"]["title"]
            .as_str()
            .unwrap()
            .starts_with("🛑 rollout of orders:live")
    );
    assert!(
        v["content"]["nextSteps"][0]
            .as_str()
            .unwrap()
            .contains("Version 6 serves all traffic again")
    );
}

#[test]
fn a_redrive_card_counts_and_never_shows_a_message_body() {
    let report = json!({"component": "dlq-redrive", "action": "redrive", "mode": "move",
        "source": "arn:aws:sqs:eu-west-1:123456789012:orders-dlq",
        "destination": "arn:aws:sqs:eu-west-1:123456789012:orders",
        "moved": 248, "copied": 0, "would_move": 0, "filtered": 0, "failed": 2, "remaining": 0,
        "duplicates": 1, "duration_ms": 5000, "rate": 49.6, "stopped": "drained",
        "failures": [{"message_id": "m-1", "code": "KmsThrottled", "message": "slow down"},
                     {"message_id": "m-2", "code": "KmsThrottled", "message": "slow down"}],
        "sample": [{"message_id": "m-9", "body": "card 4111-1111-1111-1111"}],
        "continuation": null, "totals": {"runs": 1, "moved": 248, "duplicates": 1, "copied": 0}});
    assert_eq!(redrive_decision(&report).verdict, Verdict::Failed);
    let a = attrs(&[
        ("component", "dlq-redrive"),
        ("verdict", "drained"),
        ("source", "arn:aws:sqs:eu-west-1:123456789012:orders-dlq"),
        ("destination", "arn:aws:sqs:eu-west-1:123456789012:orders"),
    ]);
    let v = valid(&redrive_card(&report, &a, &home()));
    assert_eq!(v["metadata"]["additionalContext"]["action"], "redrive");
    let text = serde_json::to_string(&v).unwrap();
    assert!(!text.contains("4111"), "{text}");
    assert_eq!(
        v["content"]["title"],
        "⚠️ redrive of arn:aws:sqs:eu-west-1:123456789012:orders-dlq: 248 moved, 2 failed"
    );
    let desc = v["content"]["description"].as_str().unwrap();
    assert!(
        desc.contains(
            "*Moved:* 248 · *copied:* 0 · *failed:* 2 · *remaining:* 0 · *duplicates:* 1"
        ),
        "{desc}"
    );
    assert!(
        desc.contains("• ❌ `failure[KmsThrottled]` expected `0`, actual `2` (slow down)"),
        "{desc}"
    );
    assert!(!desc.contains("`moved`"), "{desc}");
    assert_eq!(
        v["metadata"]["relatedResources"].as_array().unwrap().len(),
        2
    );
    assert!(
        v["content"]["nextSteps"][0]
            .as_str()
            .unwrap()
            .contains("Read the failures")
    );
    // A run stopped at its deadline says how to go on.
    let cont = json!({"source": "orders-dlq", "moved": 10, "continuation": {"source": "orders-dlq"}, "stopped": "deadline"});
    let v = valid(&redrive_card(
        &cont,
        &attrs(&[("source", "orders-dlq")]),
        &home(),
    ));
    assert!(
        v["content"]["nextSteps"][0]
            .as_str()
            .unwrap()
            .contains("`rollgate redrive orders-dlq`")
    );
    assert_eq!(
        v["content"]["title"],
        "📬 redrive of orders-dlq: 10 moved, 0 failed"
    );
    // A dry run says what would move.
    let dry =
        json!({"action": "dry_run", "source": "orders-dlq", "would_move": 7, "continuation": null});
    let v = valid(&redrive_card(
        &dry,
        &attrs(&[("source", "orders-dlq")]),
        &home(),
    ));
    assert_eq!(
        v["content"]["title"],
        "📬 redrive dry run of orders-dlq: 7 would move"
    );
    assert_eq!(v["metadata"]["eventType"], "rollgate-dlq-redrive-dry-run");
}

#[test]
fn thousands_of_checks_and_huge_texts_still_make_a_valid_card() {
    let huge = "é".repeat(100_000);
    // 30 checks with huge texts, 4970 more failed ones, 5000 passed.
    let mut checks: Vec<CheckResult> = (0..30)
        .map(|i| {
            CheckResult::fail(
                format!("smoke[{i}]-{huge}"),
                json!(huge),
                json!({"body": huge}),
            )
            .with_detail(huge.clone())
        })
        .collect();
    checks.extend((30..5000).map(|i| CheckResult::fail(format!("smoke[{i}]"), json!(1), json!(2))));
    checks.extend((0..5000).map(|i| CheckResult::pass(format!("ok[{i}]"), json!(1), json!(1))));
    let mut d = gate("pre-traffic-hook", checks);
    d.reason = "r".repeat(5_000_000);
    d.function_name = Some(format!("orders{huge}"));
    d.alias = Some(huge.clone());
    d.deployment_id = Some(format!("d-{huge}"));
    d.policy_source = Some(huge.clone());
    let long_attrs: Vec<(&'static str, String)> = [
        "alarm",
        "action",
        "status",
        "weight",
        "rollout",
        "source",
        "destination",
        "x1",
        "x2",
        "x3",
        "x4",
        "x5",
    ]
    .into_iter()
    .map(|k| (k, format!("arn:{huge}")))
    .collect();
    let c = card(&d, &long_attrs, &home());
    let v = valid(&c);
    let desc = v["content"]["description"].as_str().unwrap();
    assert!(desc.chars().count() <= DESCRIPTION_MAX_CHARS);
    assert!(was_cut(desc), "the reason is cut and marked");
    let listed = desc.matches("• ❌").count();
    assert!((1..=MAX_CHECKS_LISTED).contains(&listed), "{listed} listed");
    assert!(desc.contains("5000 failed, 0 inconclusive, 5000 passed (10000 in all)"));
    assert!(desc.contains(&format!("…and {} more", 10_000 - listed)));
    assert!(c.metadata.thread_id.chars().count() <= THREAD_ID_MAX_CHARS);
    assert!(c.metadata.summary.chars().count() <= SUMMARY_MAX_CHARS);
    assert!(c.metadata.event_type.len() <= EVENT_TYPE_MAX_CHARS);
    assert!(c.metadata.related_resources.len() <= MAX_RELATED_RESOURCES);
    assert!(
        c.metadata
            .related_resources
            .iter()
            .all(|r| r.chars().count() <= RELATED_RESOURCE_MAX_CHARS)
    );
    assert!(c.metadata.additional_context.len() <= MAX_CONTEXT_ENTRIES);
    assert!(
        c.metadata
            .additional_context
            .values()
            .all(|x| x.chars().count() <= CONTEXT_VALUE_MAX_CHARS)
    );
    assert!(
        c.content.next_steps.len() <= MAX_NEXT_STEPS && c.content.keywords.len() <= MAX_KEYWORDS
    );
    // The same long id always threads the same way; another one does not.
    assert_eq!(
        card(&d, &[], &home()).metadata.thread_id,
        c.metadata.thread_id
    );
    let other = Decision {
        deployment_id: Some(format!("d-x{huge}")),
        ..d.clone()
    };
    assert_ne!(
        card(&other, &[], &home()).metadata.thread_id,
        c.metadata.thread_id
    );
}

#[test]
fn outside_text_cannot_mention_link_or_break_the_markup() {
    let mut d = gate(
        "pre-traffic-hook",
        vec![CheckResult::fail(
            "smoke[<!channel>]",
            json!("`ok`"),
            json!("<https://evil.example|click> @here\n```"),
        )],
    );
    d.reason = "<!here> alarm reason with `backticks`\nand a second line".into();
    d.function_name = Some("<!everyone>".into());
    let v = valid(&card(&d, &attrs(&[("alarm", "<@U123>")]), &Home::default()));
    let text = serde_json::to_string(&v["content"]).unwrap()
        + &serde_json::to_string(&v["metadata"]).unwrap();
    for bad in ["<!", "<@", "<https", "```"] {
        assert!(!text.contains(bad), "{bad} in {text}");
    }
    let desc = v["content"]["description"].as_str().unwrap();
    assert!(
        desc.starts_with("*Why:* ‹!here› alarm reason with 'backticks' and a second line\n"),
        "{desc}"
    );
    // Without a known home no ARN is made up.
    assert!(v["metadata"].get("relatedResources").is_none());
}

#[test]
fn the_schema_check_refuses_a_broken_card() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let good = serde_json::to_value(card(&gate("pre-traffic-hook", vec![]), &[], &home())).unwrap();
    let mut found = Vec::new();
    errors(&schema, &good, "card", &mut found);
    assert!(found.is_empty(), "{found:?}");
    let broken = [
        ("/version", json!("2.0")),
        ("/source", json!("rollgate")),
        ("/content/textType", json!("markdown")),
        ("/content/title", json!("t".repeat(TITLE_MAX_CHARS + 1))),
        (
            "/content/description",
            json!("d".repeat(DESCRIPTION_MAX_CHARS + 1)),
        ),
        (
            "/content/nextSteps",
            json!(["s".repeat(NEXT_STEP_MAX_CHARS + 1)]),
        ),
        (
            "/content/keywords",
            json!(["k".repeat(KEYWORD_MAX_CHARS + 1)]),
        ),
        ("/metadata/enableCustomActions", json!("yes")),
        ("/metadata/additionalContext", json!({"n": 1})),
    ];
    for (pointer, bad) in broken {
        let mut card = good.clone();
        *card.pointer_mut(pointer).unwrap() = bad;
        let mut found = Vec::new();
        errors(&schema, &card, "card", &mut found);
        assert!(!found.is_empty(), "{pointer} accepted");
    }
    let mut no_description = good.clone();
    no_description["content"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    let mut extra = good;
    extra["content"]["body"] = json!("x");
    for card in [no_description, extra] {
        let mut found = Vec::new();
        errors(&schema, &card, "card", &mut found);
        assert!(!found.is_empty(), "accepted: {card}");
    }
}

#[test]
fn plain_text_keeps_words_and_drops_markup() {
    assert_eq!(plain("a<b>c`d\te"), "a‹b›c'd e");
    assert_eq!(slug("pre-traffic_hook x/y", 100), "pre-traffic-hook-x-y");
    assert_eq!(fingerprint("abc"), fingerprint("abc"));
    assert_ne!(fingerprint("abc"), fingerprint("abd"));
}
