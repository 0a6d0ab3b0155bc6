//! The redrive engine through the in-memory ports of `fakes`: conservation under
//! injected send and delete failures, dry run, FIFO order, Lambda replay, refusals.

use super::fakes::{MemInvoker, MemObjects, MemQueues, MemRepublish, MemSink, SendFault};
use super::ports::AttributeValue;
use super::{AllowList, Redrive, handle_request};
use crate::error::Error;
use crate::scope::Home;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const ALLOW: &str = "arn:aws:s3:::failures/*,arn:aws:sqs:us-east-1:123456789012:*,arn:aws:lambda:us-east-1:123456789012:function:*,arn:aws:sns:us-east-1:123456789012:*,arn:aws:events:us-east-1:123456789012:event-bus/*";

struct World {
    queues: MemQueues,
    lambda: MemInvoker,
    republish: MemRepublish,
    objects: MemObjects,
    sink: MemSink,
    allow: AllowList,
    home: Home,
}

impl World {
    fn new() -> Self {
        World {
            queues: MemQueues::default(),
            lambda: MemInvoker::default(),
            republish: MemRepublish::default(),
            objects: MemObjects::default(),
            sink: MemSink::default(),
            allow: AllowList::parse(ALLOW),
            home: Home::default(),
        }
    }

    async fn run(&self, request: Value) -> Result<Value, crate::failure::Failure> {
        let engine = Redrive {
            queues: &self.queues,
            lambda: &self.lambda,
            republish: &self.republish,
            objects: &self.objects,
            allow: &self.allow,
            home: &self.home,
        };
        handle_request(&engine, &self.sink, &request, 0).await
    }

    /// A DLQ `orders-dlq` (of `orders`) holding `n` messages `{"n": i}`.
    fn dlq_with(&self, n: usize) -> String {
        let dlq = self.queues.pair("orders", false);
        for i in 0..n {
            self.queues.put(&dlq, &json!({ "n": i }).to_string(), None);
        }
        dlq
    }

    /// The `n` of each group's messages in `queue`, in queue order; asserts that each
    /// group arrived in order.
    fn group_orders(&self, queue: &str, groups: &[&str]) -> Vec<Vec<u64>> {
        let bodies: Vec<Value> = self
            .queues
            .bodies(queue)
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect();
        groups
            .iter()
            .map(|g| {
                let order: Vec<u64> = bodies
                    .iter()
                    .filter(|b| b["g"] == *g)
                    .map(|b| b["n"].as_u64().unwrap())
                    .collect();
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(order, sorted, "{queue} group {g}");
                order
            })
            .collect()
    }

    fn numbers(&self, queue: &str) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .queues
            .bodies(queue)
            .iter()
            .map(|b| {
                serde_json::from_str::<Value>(b).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        v.sort_unstable();
        v
    }
}

#[tokio::test]
async fn every_message_moves_back_to_its_queue_once() {
    let w = World::new();
    let dlq = w.dlq_with(25);
    let report = w.run(json!({ "source": dlq })).await.unwrap();
    assert_eq!(
        (
            &report["moved"],
            &report["remaining"],
            &report["failed"],
            &report["duplicates"]
        ),
        (&json!(25), &json!(0), &json!(0), &json!(0)),
        "{report}"
    );
    assert_eq!(w.numbers("orders"), (0..25).collect::<Vec<_>>());
    assert!(w.queues.bodies(&dlq).is_empty());
    // Provenance travels with each copy.
    let state = w.queues.state();
    assert!(
        state.queues["orders"]
            .messages
            .iter()
            .all(|m| m.attributes.contains_key("rollgate.redrive"))
    );
    drop(state);
    assert_eq!(w.sink.0.lock().unwrap().len(), 1, "one summary");
}

#[tokio::test]
async fn throttles_the_sdk_absorbed_are_counted() {
    let w = World::new();
    let dlq = w.dlq_with(25);
    // Throttles absorbed before the run are not this run's.
    w.queues.state().absorbed = 7;
    w.queues.state().absorbed_per_send = 1;
    let report = w.run(json!({ "source": dlq })).await.unwrap();
    let sends = w.queues.state().sends.len() as u64;
    assert!(sends >= 3, "{sends}");
    assert_eq!(report["moved"], 25, "{report}");
    assert_eq!(report["throttled_absorbed"], sends, "{report}");
    assert_eq!(report["throttled"], sends, "{report}");
}

#[tokio::test]
async fn failed_sends_are_retried_and_nothing_is_lost() {
    let w = World::new();
    let dlq = w.dlq_with(30);
    {
        let mut s = w.queues.state();
        s.send_faults.push_back(SendFault::Entries {
            count: 4,
            code: "InternalError",
            sender_fault: false,
        });
        s.send_faults.push_back(SendFault::Call(Error::Aws {
            service: "sqs",
            operation: "SendMessageBatch",
            code: Some("ServiceUnavailable".into()),
            message: "try later".into(),
            retryable: true,
        }));
    }
    let report = w.run(json!({ "source": dlq })).await.unwrap();
    assert_eq!(report["moved"], 30, "{report}");
    assert_eq!(w.numbers("orders"), (0..30).collect::<Vec<_>>());
    assert!(w.queues.bodies(&dlq).is_empty());
}

#[tokio::test]
async fn a_refused_message_stays_in_the_dlq() {
    let w = World::new();
    let dlq = w.dlq_with(10);
    w.queues.state().send_faults.push_back(SendFault::Entries {
        count: 2,
        code: "InvalidMessageContents",
        sender_fault: true,
    });
    let report = w.run(json!({ "source": dlq })).await.unwrap();
    assert_eq!(
        (&report["moved"], &report["failed"]),
        (&json!(8), &json!(2)),
        "{report}"
    );
    // Conservation: every message is in exactly one of the two queues.
    let mut all = w.numbers("orders");
    all.extend(w.numbers(&dlq));
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert_eq!(report["remaining"], 2);
}

#[tokio::test]
async fn a_failed_delete_is_counted_as_a_duplicate_not_lost() {
    let w = World::new();
    let dlq = w.dlq_with(10);
    w.queues.state().failing_deletes = 10;
    let report = w
        .run(json!({ "source": dlq, "max_messages": 10 }))
        .await
        .unwrap();
    let duplicates = report["duplicates"].as_u64().unwrap();
    assert!(duplicates > 0, "{report}");
    // What could not be deleted is still in the DLQ: it will be redriven again.
    assert_eq!(w.queues.bodies(&dlq).len() as u64, duplicates, "{report}");
    assert_eq!(w.numbers("orders"), (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_dry_run_moves_nothing_and_hands_every_message_back() {
    let w = World::new();
    let dlq = w.dlq_with(12);
    let report = w
        .run(json!({ "source": dlq, "dry_run": true }))
        .await
        .unwrap();
    assert_eq!(
        (&report["moved"], &report["would_move"]),
        (&json!(0), &json!(12)),
        "{report}"
    );
    assert!(w.queues.bodies("orders").is_empty());
    let state = w.queues.state();
    assert!(
        state.queues[&dlq]
            .messages
            .iter()
            .all(|m| m.in_flight.is_none())
    );
    assert_eq!(state.sends, vec![]);
}

#[tokio::test]
async fn fifo_groups_keep_their_order() {
    let w = World::new();
    let dlq = w.queues.pair("orders", true);
    for i in 0..12 {
        let group = if i % 2 == 0 { "a" } else { "b" };
        w.queues.put(
            &dlq,
            &json!({ "n": i, "g": group }).to_string(),
            Some(group),
        );
    }
    let report = w.run(json!({ "source": dlq })).await.unwrap();
    assert_eq!(report["moved"], 12, "{report}");
    for order in w.group_orders("orders.fifo", &["a", "b"]) {
        assert_eq!(order.len(), 6);
    }
}

#[tokio::test]
async fn lambda_dead_letters_are_replayed_into_the_function() {
    let w = World::new();
    let dlq = w.dlq_with(5);
    let report = w
        .run(json!({ "source": dlq, "destination": "lambda:orders:live" }))
        .await
        .unwrap();
    assert_eq!(report["moved"], 5, "{report}");
    let invoked = w.lambda.invoked.lock().unwrap();
    assert_eq!(invoked.len(), 5);
    assert!(
        invoked
            .iter()
            .all(|(f, q, _)| f == "orders" && q.as_deref() == Some("live"))
    );
    assert!(w.queues.bodies(&dlq).is_empty());
}

#[tokio::test]
async fn queues_outside_the_allow_list_are_refused_before_anything_moves() {
    let mut w = World::new();
    w.allow = AllowList::parse("arn:aws:sqs:us-east-1:123456789012:payments-*");
    let dlq = w.dlq_with(3);
    let err = w.run(json!({ "source": dlq })).await.unwrap_err();
    assert_eq!(err.class.as_str(), "InvalidRequest", "{err}");
    assert_eq!(w.queues.bodies(&dlq).len(), 3);
    assert!(w.queues.state().sends.is_empty());
    let err = w
        .run(json!({ "source": dlq, "rate": 0 }))
        .await
        .unwrap_err();
    assert_eq!(err.class.as_str(), "InvalidRequest", "{err}");
}

#[tokio::test]
async fn a_queue_that_is_its_own_dlq_is_refused_before_anything_moves() {
    // With the default destination it moved one message into itself 941 times in 10 s.
    let w = World::new();
    w.queues.state().queues.insert(
        "loop".into(),
        super::fakes::MemQueue {
            dead_letters_of: vec!["loop".into()],
            ..Default::default()
        },
    );
    w.queues.put("loop", "{}", None);
    let err = w.run(json!({ "source": "loop" })).await.unwrap_err();
    assert!(
        err.to_string().contains("its own dead-letter queue"),
        "{err}"
    );
    assert_eq!(w.queues.bodies("loop").len(), 1);
    assert!(w.queues.state().sends.is_empty());
}

#[test]
fn a_queue_reference_names_its_arn_before_sqs_is_asked() {
    use super::engine::named_queue_arn;
    let home = Home {
        partition: Some("aws".into()),
        region: Some("eu-west-1".into()),
        account: Some("111122223333".into()),
    };
    let arn = |r: &str| named_queue_arn(r, &home);
    assert_eq!(
        arn("arn:aws:sqs:us-east-1:123456789012:orders").as_deref(),
        Some("arn:aws:sqs:us-east-1:123456789012:orders")
    );
    assert_eq!(
        arn("https://sqs.us-east-2.amazonaws.com/123456789012/orders").as_deref(),
        Some("arn:aws:sqs:us-east-2:123456789012:orders")
    );
    assert_eq!(
        arn("http://localhost:4566/123456789012/orders").as_deref(),
        Some("arn:aws:sqs:eu-west-1:123456789012:orders")
    );
    assert_eq!(
        arn("orders").as_deref(),
        Some("arn:aws:sqs:eu-west-1:111122223333:orders")
    );
    assert_eq!(arn("https://host/only-one-part"), None);
    assert_eq!(named_queue_arn("orders", &Home::default()), None);
}

#[tokio::test]
async fn a_queue_outside_the_allow_list_is_refused_without_asking_sqs() {
    let mut w = World::new();
    w.home = Home {
        partition: Some("aws".into()),
        region: Some("us-east-1".into()),
        account: Some("123456789012".into()),
    };
    w.allow = AllowList::parse("arn:aws:sqs:us-east-1:123456789012:payments-*");
    let err = w
        .run(json!({"source": "private-dlq"}))
        .await
        .expect_err("refused");
    assert!(
        err.message.contains(
            "source: arn:aws:sqs:us-east-1:123456789012:private-dlq is not in the allow-list"
        ),
        "{}",
        err.message
    );
    assert!(
        w.queues.state().resolved.is_empty(),
        "SQS was asked about a queue outside the list"
    );
}

#[tokio::test]
async fn a_shared_dlq_goes_back_to_each_message_s_own_source() {
    let w = World::new();
    w.queues
        .shared_dlq("shared-dlq", &["orders", "payments"], false);
    for i in 0..30 {
        let from = if i % 3 == 0 { "payments" } else { "orders" };
        w.queues.put_from(
            "shared-dlq",
            &json!({ "n": i }).to_string(),
            None,
            Some(from),
        );
    }
    // Sent to the DLQ by hand: SQS recorded no source on it.
    w.queues
        .put_from("shared-dlq", &json!({ "n": 99 }).to_string(), None, None);
    // Dead-lettered from a queue that no longer names this DLQ.
    w.queues.put_from(
        "shared-dlq",
        &json!({ "n": 98 }).to_string(),
        None,
        Some("gone"),
    );
    let report = w.run(json!({ "source": "shared-dlq" })).await.unwrap();
    assert_eq!(report["moved"], 30, "{report}");
    assert_eq!(
        report["destinations"],
        json!({
            super::fakes::arn("orders"): 20,
            super::fakes::arn("payments"): 10
        })
    );
    assert_eq!(
        w.numbers("orders"),
        (0..30).filter(|i| i % 3 != 0).collect::<Vec<_>>()
    );
    assert_eq!(
        w.numbers("payments"),
        (0..30).filter(|i| i % 3 == 0).collect::<Vec<_>>()
    );
    // What cannot be routed stays, visible again, and is reported.
    assert_eq!(w.numbers("shared-dlq"), vec![98, 99]);
    assert_eq!(report["remaining"], 2, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let codes: Vec<&str> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["SourceUnknown", "SourceUnknown"]);
    assert!(
        w.queues.state().queues["shared-dlq"]
            .messages
            .iter()
            .all(|m| m.in_flight.is_none())
    );
}

#[tokio::test]
async fn a_shared_fifo_dlq_keeps_group_order_per_source() {
    let w = World::new();
    w.queues
        .shared_dlq("shared-dlq.fifo", &["a.fifo", "b.fifo"], true);
    for i in 0..24 {
        let (from, group) = match i % 4 {
            0 => ("a.fifo", "g1"),
            1 => ("a.fifo", "g2"),
            2 => ("b.fifo", "g1"),
            _ => ("b.fifo", "g3"),
        };
        w.queues.put_from(
            "shared-dlq.fifo",
            &json!({ "n": i, "g": group }).to_string(),
            Some(group),
            Some(from),
        );
    }
    let report = w.run(json!({ "source": "shared-dlq.fifo" })).await.unwrap();
    assert_eq!(report["moved"], 24, "{report}");
    for q in ["a.fifo", "b.fifo"] {
        assert_eq!(w.queues.bodies(q).len(), 12, "{q}");
        w.group_orders(q, &["g1", "g2", "g3"]);
    }
}

#[tokio::test]
async fn a_native_move_of_a_shared_dlq_leaves_routing_to_sqs() {
    let w = World::new();
    w.queues
        .shared_dlq("shared-dlq", &["orders", "payments"], false);
    let report = w
        .run(json!({ "source": "shared-dlq", "native": true }))
        .await
        .unwrap();
    assert_eq!(report["action"], "native", "{report}");
    assert_eq!(
        w.queues.state().moves,
        [(super::fakes::arn("shared-dlq"), None)]
    );
}

impl World {
    /// An empty standard queue `name` (a staging queue to copy into).
    fn queue(&self, name: &str) {
        self.queues
            .state()
            .queues
            .insert(name.into(), super::fakes::MemQueue::default());
    }

    /// Run `request` and every continuation it hands back; the reports in order.
    async fn run_all(&self, request: Value) -> Vec<Value> {
        let mut reports = vec![self.run(request).await.unwrap()];
        while let Some(next) = reports.last().unwrap().get("continuation").cloned()
            && !next.is_null()
        {
            assert!(reports.len() < 50, "{reports:?}");
            reports.push(self.run(next).await.unwrap());
        }
        reports
    }
}

#[tokio::test]
async fn a_copy_keeps_every_original_and_marks_each_copy() {
    let w = World::new();
    let dlq = w.dlq_with(25);
    w.queue("staging");
    let report = w
        .run(json!({ "source": dlq, "destination": "staging", "mode": "copy" }))
        .await
        .unwrap();
    assert_eq!(
        (
            &report["mode"],
            &report["copied"],
            &report["moved"],
            &report["totals"]["copied"]
        ),
        (&json!("copy"), &json!(25), &json!(0), &json!(25)),
        "{report}"
    );
    assert_eq!(w.numbers("staging"), (0..25).collect::<Vec<_>>());
    // The originals are all still there, visible again at once: the job ended in one run.
    assert_eq!(w.numbers(&dlq), (0..25).collect::<Vec<_>>());
    assert_eq!(w.queues.visibility(&dlq), (25, 0));
    assert!(report.get("hold_until_ms").is_none(), "{report}");
    let state = w.queues.state();
    for m in &state.queues["staging"].messages {
        let tag: Value =
            serde_json::from_str(m.attributes["rollgate.redrive"].string.as_deref().unwrap())
                .unwrap();
        assert_eq!(tag["copy"], true, "{tag}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_copy_job_over_several_runs_copies_each_message_once() {
    let w = World::new();
    let dlq = w.dlq_with(35);
    w.queue("staging");
    let reports = w
        .run_all(
            json!({ "source": dlq, "destination": "staging", "mode": "copy",
                          "rate": 10, "concurrency": 1, "max_run_seconds": 1 }),
        )
        .await;
    assert!(reports.len() >= 3, "{reports:?}");
    assert_eq!(w.numbers("staging"), (0..35).collect::<Vec<_>>());
    assert_eq!(w.numbers(&dlq), (0..35).collect::<Vec<_>>());
    let last = reports.last().unwrap();
    assert_eq!(last["totals"]["copied"], 35, "{last}");
    // Every continued run kept its copies hidden for the job; the last handed its own back
    // and reports until when the earlier ones stay hidden.
    let until = reports[0]["hold_until_ms"].as_i64().unwrap();
    assert!(
        reports.iter().all(|r| r["hold_until_ms"] == until),
        "{reports:?}"
    );
    let last_copied = last["copied"].as_u64().unwrap() as usize;
    assert_eq!(w.queues.visibility(&dlq), (last_copied, 35 - last_copied));
    let holds = w.queues.state().holds.clone();
    assert_eq!(holds.len(), 35 - last_copied);
    assert!(
        holds.iter().all(|(_, s)| (3500..=3600).contains(s)),
        "{holds:?}"
    );
    w.queues.end_holds(&dlq);
    assert_eq!(w.queues.visibility(&dlq), (35, 0));
}

#[tokio::test(start_paused = true)]
async fn copies_whose_originals_could_not_be_kept_hidden_are_counted() {
    let w = World::new();
    let dlq = w.dlq_with(20);
    w.queue("staging");
    w.queues.state().failing_holds = 1;
    let report = w
        .run(
            json!({ "source": dlq, "destination": "staging", "mode": "copy",
                     "rate": 10, "concurrency": 1, "max_run_seconds": 1 }),
        )
        .await
        .unwrap();
    let copied = report["copied"].as_u64().unwrap();
    assert!(copied > 0 && !report["continuation"].is_null(), "{report}");
    // The first batch of ten could not be hidden: a continuation may copy those again.
    assert_eq!(report["duplicates"], copied.min(10), "{report}");
}

#[tokio::test]
async fn a_copy_job_whose_hold_ended_is_refused_before_anything_moves() {
    let w = World::new();
    let dlq = w.dlq_with(5);
    w.queue("staging");
    let err = w
        .run(
            json!({ "source": dlq, "destination": "staging", "mode": "copy",
                     "continuation": {"run": 1, "moved": 0, "duplicates": 0,
                                      "copied": 3, "hold_until_ms": 1} }),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("hold ended"), "{err}");
    assert!(w.queues.bodies("staging").is_empty());
    assert_eq!(w.queues.visibility(&dlq), (5, 0));
}

#[tokio::test]
async fn a_copy_that_failed_leaves_its_original_visible_and_reported() {
    let w = World::new();
    let dlq = w.dlq_with(10);
    w.queue("staging");
    w.queues.state().send_faults.push_back(SendFault::Entries {
        count: 3,
        code: "InvalidMessageContents",
        sender_fault: true,
    });
    let report = w
        .run(json!({ "source": dlq, "destination": "staging", "mode": "copy" }))
        .await
        .unwrap();
    assert_eq!(
        (&report["copied"], &report["failed"]),
        (&json!(7), &json!(3)),
        "{report}"
    );
    assert_eq!(w.queues.bodies("staging").len(), 7);
    assert_eq!(w.queues.visibility(&dlq), (10, 0));
}

#[tokio::test]
async fn peek_pages_show_every_message_once_and_hand_them_back() {
    let w = World::new();
    let dlq = w.dlq_with(25);
    let mut seen = Vec::new();
    let mut request = json!({ "source": dlq, "action": "peek", "page_size": 10 });
    let mut pages = 0;
    loop {
        let page = w.run(request.clone()).await.unwrap();
        pages += 1;
        // Visible again at once, and nothing announced: a peek changes nothing.
        assert_eq!(w.queues.visibility(&dlq), (25, 0), "{page}");
        for m in page["messages"].as_array().into_iter().flatten() {
            let body: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
            seen.push(body["n"].as_u64().unwrap());
        }
        match page.get("cursor") {
            Some(c) => request["cursor"] = c.clone(),
            None => break,
        }
        assert!(pages < 10);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
    assert!(w.sink.0.lock().unwrap().is_empty());
    assert!(w.queues.state().sends.is_empty());
}

#[tokio::test]
async fn peek_filters_and_refuses_a_cursor_of_another_queue() {
    let w = World::new();
    let dlq = w.dlq_with(12);
    let page = w
        .run(json!({ "source": dlq, "action": "peek", "page_size": 3,
                     "filter": {"body": [{"pointer": "/n", "one_of": [2, 5, 7, 11]}]} }))
        .await
        .unwrap();
    let shown: Vec<&Value> = page["messages"].as_array().unwrap().iter().collect();
    assert_eq!(shown.len(), 3, "{page}");
    assert!(page["filtered"].as_u64().unwrap() >= 5, "{page}");
    let other = w.queues.pair("payments", false);
    let err = w
        .run(json!({ "source": other, "action": "peek", "cursor": page["cursor"] }))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cursor: belongs to a page of another queue"),
        "{err}"
    );
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:orders";

/// An SNS subscription's dead letter as SNS puts it in the DLQ without raw delivery: the
/// notification envelope (shape as AWS records it; the signature fields shortened).
fn envelope(topic: &str, n: usize) -> String {
    json!({
        "Type": "Notification",
        "MessageId": format!("0a1b2c3d-0000-4000-8000-{n:012}"),
        "TopicArn": topic,
        "Subject": "order",
        "Message": json!({ "n": n }).to_string(),
        "Timestamp": "2026-12-04T10:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        "MessageAttributes": {
            "tenant": {"Type": "String", "Value": "acme"},
            "blob": {"Type": "Binary", "Value": "AAH/"}
        }
    })
    .to_string()
}

#[tokio::test]
async fn sns_dead_letters_are_published_to_their_own_topics_again() {
    let w = World::new();
    let dlq = w.dlq_with(0);
    let other = "arn:aws:sns:us-east-1:123456789012:payments";
    for n in 0..12 {
        let topic = if n % 3 == 0 { other } else { TOPIC };
        w.queues.put(&dlq, &envelope(topic, n), None);
    }
    let report = w
        .run(json!({ "source": dlq, "destination": "sns",
                     "sns_attributes": {"replay": "billing"} }))
        .await
        .unwrap();
    assert_eq!(
        (&report["moved"], &report["failed"]),
        (&json!(12), &json!(0)),
        "{report}"
    );
    assert_eq!(
        report["destinations"],
        json!({ TOPIC: 8, other: 4 }),
        "{report}"
    );
    assert!(w.queues.bodies(&dlq).is_empty());
    let published = w.republish.published.lock().unwrap();
    let first = &published[TOPIC][0];
    // The envelope is unwrapped to what the publisher sent: message, subject, attributes.
    assert_eq!(first.body, json!({"n": 1}).to_string());
    assert_eq!(first.subject.as_deref(), Some("order"));
    assert_eq!(first.attributes["tenant"].string.as_deref(), Some("acme"));
    assert_eq!(
        first.attributes["blob"].binary.as_deref(),
        Some(&[0u8, 1, 255][..])
    );
    assert_eq!(
        first.attributes["replay"].string.as_deref(),
        Some("billing")
    );
    assert!(first.attributes.contains_key("rollgate.redrive"));
    assert_eq!((&first.group_id, &first.deduplication_id), (&None, &None));
}

#[tokio::test]
async fn raw_sns_dead_letters_need_the_topic_named_and_the_allow_list_holds() {
    let w = World::new();
    let dlq = w.dlq_with(3);
    let report = w
        .run(json!({ "source": dlq, "destination": "sns" }))
        .await
        .unwrap();
    assert_eq!(
        (&report["moved"], &report["failed"]),
        (&json!(0), &json!(3)),
        "{report}"
    );
    assert_eq!(report["failures"][0]["code"], "SourceUnknown", "{report}");
    assert_eq!(w.queues.visibility(&dlq), (3, 0));
    let report = w
        .run(json!({ "source": dlq, "destination": format!("sns:{TOPIC}") }))
        .await
        .unwrap();
    assert_eq!(report["moved"], 3, "{report}");
    assert_eq!(w.republish.bodies(TOPIC).len(), 3);
    // A topic outside the allow-list: named, refused before anything moves; from an
    // envelope, the message stays.
    let foreign = "arn:aws:sns:us-east-1:999999999999:orders";
    let err = w
        .run(json!({ "source": dlq, "destination": format!("sns:{foreign}") }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("allow-list"), "{err}");
    w.queues.put(&dlq, &envelope(foreign, 7), None);
    let report = w
        .run(json!({ "source": dlq, "destination": "sns" }))
        .await
        .unwrap();
    assert_eq!(report["failures"][0]["code"], "NotAllowed", "{report}");
    assert_eq!(w.queues.bodies(&dlq).len(), 1);
}

#[tokio::test]
async fn sns_publish_failures_are_retried_or_leave_the_message_in_the_dlq() {
    let w = World::new();
    let dlq = w.dlq_with(0);
    for n in 0..20 {
        w.queues.put(&dlq, &envelope(TOPIC, n), None);
    }
    {
        let mut f = w.republish.failures.lock().unwrap();
        f.push_back((4, "InternalError", false));
        f.push_back((2, "InvalidParameter", true));
    }
    let report = w
        .run(json!({ "source": dlq, "destination": "sns" }))
        .await
        .unwrap();
    assert_eq!(
        (&report["moved"], &report["failed"]),
        (&json!(18), &json!(2)),
        "{report}"
    );
    // Conservation: each message published once or still in the DLQ.
    let mut all: Vec<u64> = w
        .republish
        .bodies(TOPIC)
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    for b in w.queues.bodies(&dlq) {
        let env: Value = serde_json::from_str(&b).unwrap();
        let inner: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
        all.push(inner["n"].as_u64().unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_fifo_topic_gets_each_group_in_order_with_stable_deduplication_ids() {
    let w = World::new();
    let dlq = w.queues.pair("orders", true);
    let fifo = "arn:aws:sns:us-east-1:123456789012:orders.fifo";
    for n in 0..12 {
        let g = ["a", "b", "c"][n % 3];
        w.queues.put(&dlq, &envelope(fifo, n), Some(g));
    }
    let report = w
        .run(json!({ "source": dlq, "destination": "sns" }))
        .await
        .unwrap();
    assert_eq!(report["moved"], 12, "{report}");
    let published = w.republish.published.lock().unwrap();
    for g in ["a", "b", "c"] {
        let order: Vec<u64> = published[fifo]
            .iter()
            .filter(|o| o.group_id.as_deref() == Some(g))
            .map(|o| {
                serde_json::from_str::<Value>(&o.body).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!((order.len(), &order), (4, &sorted), "group {g}");
    }
}

/// An EventBridge rule target's dead letter: the event, with the attributes EventBridge
/// adds (eb-rule-dlq.html), all `String`.
fn rule_dead_letter(w: &World, dlq: &str, target: Option<&str>, n: usize) {
    rule_dead_letter_of(
        w,
        dlq,
        ("aws.cloudwatch", "rule/rollgate-alarms"),
        target,
        n,
    );
}

fn rule_dead_letter_of(
    w: &World,
    dlq: &str,
    (source, rule): (&str, &str),
    target: Option<&str>,
    n: usize,
) {
    let event = json!({
        "version": "0", "id": format!("6a7e8feb-b491-4cf7-a9f1-bf3703467{n:03}"),
        "detail-type": "CloudWatch Alarm State Change", "source": source,
        "account": "123456789012", "time": "2026-12-04T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-errors"],
        "detail": {"alarmName": "orders-errors", "n": n}
    });
    let mut attributes = BTreeMap::new();
    for (k, v) in [
        (
            "RULE_ARN",
            format!("arn:aws:events:us-east-1:123456789012:{rule}").as_str(),
        ),
        ("ERROR_CODE", "NO_RESOURCE"),
        ("ERROR_MESSAGE", "Function not found"),
        ("EXHAUSTED_RETRY_CONDITION", "MaximumRetryAttempts"),
        ("RETRY_ATTEMPTS", "0"),
    ] {
        attributes.insert(k.to_owned(), AttributeValue::string(v));
    }
    if let Some(t) = target {
        attributes.insert("TARGET_ARN".into(), AttributeValue::string(t));
    }
    w.queues.put_with(dlq, &event.to_string(), attributes);
}

#[tokio::test]
async fn rule_dead_letters_go_straight_to_their_targets() {
    let w = World::new();
    let dlq = w.dlq_with(0);
    w.queue("audit");
    let function = "arn:aws:lambda:us-east-1:123456789012:function:rollgate-alarm-rollback:live";
    let queue = "arn:aws:sqs:us-east-1:123456789012:audit";
    let states = "arn:aws:states:us-east-1:123456789012:stateMachine:orders";
    let foreign = "arn:aws:lambda:us-east-1:999999999999:function:other";
    for n in 0..12 {
        let target = [Some(function), Some(queue), Some(TOPIC)][n % 3];
        rule_dead_letter(&w, &dlq, target, n);
    }
    rule_dead_letter(&w, &dlq, Some(states), 12);
    rule_dead_letter(&w, &dlq, Some(foreign), 13);
    rule_dead_letter(&w, &dlq, None, 14);
    let report = w
        .run(json!({ "source": dlq, "destination": "target" }))
        .await
        .unwrap();
    assert_eq!(
        (&report["moved"], &report["failed"]),
        (&json!(12), &json!(3)),
        "{report}"
    );
    assert_eq!(
        report["destinations"],
        json!({ function: 4, queue: 4, TOPIC: 4 }),
        "{report}"
    );
    let codes: Vec<&str> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 3, "{report}");
    for code in ["UnsupportedTarget", "NotAllowed", "SourceUnknown"] {
        assert!(codes.contains(&code), "{code}: {report}");
    }
    assert_eq!(w.queues.bodies(&dlq).len(), 3);
    // The event itself, as the target would have had it, without EventBridge's attributes.
    let invoked = w.lambda.invoked.lock().unwrap();
    assert_eq!(invoked.len(), 4);
    let (f, q, payload) = &invoked[0];
    assert_eq!(
        (f.as_str(), q.as_deref()),
        (&function[..function.len() - 5], Some("live"))
    );
    let event: Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(event["detail-type"], "CloudWatch Alarm State Change");
    let state = w.queues.state();
    let sent = &state.queues["audit"].messages[0];
    assert!(
        sent.attributes
            .keys()
            .all(|k| !k.starts_with("RULE") && !k.starts_with("ERROR")),
        "{:?}",
        sent.attributes
    );
    assert!(sent.attributes.contains_key("rollgate.redrive"));
    drop(state);
    let published = w.republish.published.lock().unwrap();
    assert_eq!(published[TOPIC].len(), 4);
    assert!(!published[TOPIC][0].attributes.contains_key("TARGET_ARN"));
}

#[tokio::test]
async fn rule_dead_letters_are_put_on_their_rule_s_bus_again() {
    let w = World::new();
    let dlq = w.dlq_with(0);
    let function = "arn:aws:lambda:us-east-1:123456789012:function:orders";
    for n in 0..8 {
        let rule = if n % 2 == 0 {
            "rule/orders"
        } else {
            "rule/shop/orders"
        };
        rule_dead_letter_of(&w, &dlq, ("app.orders", rule), Some(function), n);
    }
    rule_dead_letter_of(
        &w,
        &dlq,
        ("aws.cloudwatch", "rule/alarms"),
        Some(function),
        8,
    );
    rule_dead_letter_of(
        &w,
        &dlq,
        ("app.orders", "rule/elsewhere"),
        Some(function),
        9,
    );
    w.queues.put(&dlq, "not an event", None);
    w.republish
        .failures
        .lock()
        .unwrap()
        .push_back((1, "ThrottlingException", false));
    let report = w
        .run(json!({ "source": dlq, "destination": "events" }))
        .await
        .unwrap();
    let default = "arn:aws:events:us-east-1:123456789012:event-bus/default";
    let shop = "arn:aws:events:us-east-1:123456789012:event-bus/shop";
    assert_eq!(
        report["destinations"],
        json!({ default: 5, shop: 4 }),
        "{report}"
    );
    let codes: Vec<&str> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["NotAnEvent", "NotAnEvent"], "{report}");
    assert!(
        report["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("aws.cloudwatch"),
        "{report}"
    );
    assert_eq!(w.queues.bodies(&dlq).len(), 2);
    let first = w.republish.events.lock().unwrap()[shop][0].clone();
    let event: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        (event["source"].as_str(), event["detail"]["n"].as_u64()),
        (Some("app.orders"), Some(1))
    );
    // A bus named: every event goes there; one outside the allow-list is refused first.
    w.queues.end_holds(&dlq);
    let err = w
        .run(json!({ "source": dlq, "destination": "events:arn:aws:events:us-east-1:999999999999:event-bus/x" }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("allow-list"), "{err}");
}

const BUCKET: &str = "failures";

/// An asynchronous invocation's on-failure record, as Lambda writes it to S3
/// (invocation-async-retain-records.html).
fn async_record(function: &str, qualifier: &str, n: usize) -> String {
    json!({
        "version": "1.0", "timestamp": "2026-12-04T10:00:00.000Z",
        "requestContext": {
            "requestId": format!("e4b46cbf-b738-4a8c-8880-{n:012}"),
            "functionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{function}:{qualifier}"),
            "condition": "RetriesExhausted", "approximateInvokeCount": 3
        },
        "requestPayload": {"order": n},
        "responseContext": {"statusCode": 200, "executedVersion": "3", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "boom"}
    })
    .to_string()
}

fn record_key(function: &str, n: usize) -> String {
    format!(
        "aws/lambda/async/{function}/2026/12/04/2026-12-04T10.00.{:02}-{n:04}",
        n % 60
    )
}

impl World {
    fn records(&self, function: &str, qualifier: &str, n: std::ops::Range<usize>) {
        for i in n {
            self.objects.put(
                BUCKET,
                &record_key(function, i),
                &async_record(function, qualifier, i),
            );
        }
    }

    fn invoked_orders(&self) -> Vec<(String, Option<String>, u64)> {
        let mut v: Vec<_> = self
            .lambda
            .invoked
            .lock()
            .unwrap()
            .iter()
            .map(|(f, q, p)| {
                let payload: Value = serde_json::from_slice(p).unwrap();
                (f.clone(), q.clone(), payload["order"].as_u64().unwrap())
            })
            .collect();
        v.sort();
        v
    }
}

#[tokio::test]
async fn s3_failure_records_are_replayed_into_their_own_functions() {
    let w = World::new();
    w.records("orders", "live", 0..6);
    w.records("payments", "$LATEST", 6..9);
    w.objects
        .put(BUCKET, "aws/lambda/async/orders/junk", "not a record");
    w.objects
        .put(BUCKET, "elsewhere/x", &async_record("orders", "live", 99));
    w.objects.put(
        BUCKET,
        "aws/lambda/async/foreign",
        &async_record("orders", "live", 98).replace("123456789012", "999999999999"),
    );
    *w.objects.failing_gets.lock().unwrap() = 2;
    let report = w
        .run(json!({ "source": format!("s3://{BUCKET}/aws/lambda/async/") }))
        .await
        .unwrap();
    assert_eq!(
        (&report["moved"], &report["failed"]),
        (&json!(9), &json!(2)),
        "{report}"
    );
    let orders = "arn:aws:lambda:us-east-1:123456789012:function:orders";
    let payments = "arn:aws:lambda:us-east-1:123456789012:function:payments";
    assert_eq!(
        report["destinations"],
        json!({ format!("{orders}:live"): 6, format!("{payments}:$LATEST"): 3 }),
        "{report}"
    );
    let invoked = w.invoked_orders();
    assert_eq!(invoked.len(), 9);
    assert_eq!(invoked[0], (orders.to_owned(), Some("live".to_owned()), 0));
    // Replayed objects are gone; the one not a record, the foreign one and the one
    // outside the prefix stay.
    let mut left = w.objects.keys(BUCKET);
    left.sort();
    assert_eq!(
        left,
        [
            "aws/lambda/async/foreign",
            "aws/lambda/async/orders/junk",
            "elsewhere/x"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_s3_redrive_over_several_runs_replays_each_record_once() {
    let w = World::new();
    w.records("orders", "live", 0..50);
    // The first two replays fail for good in the first run: its continuation lists from
    // before them again, and they go then.
    w.lambda
        .errors
        .lock()
        .unwrap()
        .extend((0..2).map(|_| Error::Aws {
            service: "lambda",
            operation: "Invoke",
            code: Some("ResourceConflictException".into()),
            message: "updating".into(),
            retryable: false,
        }));
    let reports = w
        .run_all(json!({ "source": format!("s3://{BUCKET}/aws/"), "rate": 10,
                          "concurrency": 1, "max_run_seconds": 1 }))
        .await;
    assert!(reports.len() >= 3, "{reports:?}");
    assert_eq!(reports[0]["failed"], 2, "{}", reports[0]);
    assert!(
        reports[0]["continuation"]["continuation"]
            .get("after")
            .is_none(),
        "{}",
        reports[0]
    );
    let orders: Vec<u64> = w.invoked_orders().into_iter().map(|(_, _, n)| n).collect();
    assert_eq!(orders, (0..50).collect::<Vec<_>>());
    assert_eq!(reports.last().unwrap()["totals"]["moved"], 50);
    assert!(w.objects.keys(BUCKET).is_empty());
}

#[tokio::test]
async fn s3_records_whose_replay_failed_stay_and_copies_keep_every_object() {
    let w = World::new();
    w.records("orders", "live", 0..5);
    w.lambda
        .errors
        .lock()
        .unwrap()
        .extend((0..6).map(|_| Error::Aws {
            service: "lambda",
            operation: "Invoke",
            code: Some("ResourceNotFoundException".into()),
            message: "gone".into(),
            retryable: false,
        }));
    let report = w
        .run(json!({ "source": format!("s3://{BUCKET}/") }))
        .await
        .unwrap();
    assert_eq!(
        report["moved"].as_u64().unwrap() + report["failed"].as_u64().unwrap(),
        5,
        "{report}"
    );
    assert_eq!(
        w.objects.keys(BUCKET).len() as u64,
        report["failed"].as_u64().unwrap()
    );
    // Copy mode into a queue: each record sent as it is, every object kept.
    let w = World::new();
    w.records("orders", "live", 0..5);
    w.queue("replays");
    *w.objects.failing_deletes.lock().unwrap() = 100;
    let report = w
        .run(json!({ "source": format!("s3://{BUCKET}/"), "destination": "replays", "mode": "copy" }))
        .await
        .unwrap();
    assert_eq!(
        (&report["copied"], &report["duplicates"]),
        (&json!(5), &json!(0)),
        "{report}"
    );
    assert_eq!(w.objects.keys(BUCKET).len(), 5);
    let bodies = w.queues.bodies("replays");
    assert!(bodies[0].contains("requestContext"), "{bodies:?}");
}

#[tokio::test]
async fn a_stream_record_in_s3_replays_its_batch() {
    let w = World::new();
    let batch = json!({"Records": [{"kinesis": {"data": "eyJ0IjoxfQ=="}}]});
    let record = json!({
        "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:consumer",
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0", "timestamp": "2026-12-04T10:00:00.000Z",
        "KinesisBatchInfo": {"shardId": "shardId-000000000000", "batchSize": 1,
                             "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/orders"},
        "payload": batch.to_string()
    });
    w.objects.put(
        BUCKET,
        "aws/lambda/esm/shard/2026/12/04/x",
        &record.to_string(),
    );
    let report = w
        .run(json!({ "source": format!("s3://{BUCKET}/aws/lambda/esm/") }))
        .await
        .unwrap();
    assert_eq!(report["moved"], 1, "{report}");
    let invoked = w.lambda.invoked.lock().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&invoked[0].2).unwrap(),
        batch
    );
    assert_eq!(invoked[0].1, None);
}

#[tokio::test]
async fn s3_sources_refuse_what_they_cannot_do_before_anything_moves() {
    let w = World::new();
    w.records("orders", "live", 0..2);
    for (req, field) in [
        (
            json!({"source": "s3://failures/", "native": true}),
            "native",
        ),
        (
            json!({"source": "s3://failures/", "action": "peek"}),
            "action",
        ),
        (
            json!({"source": "s3://failures/", "destination": "sns"}),
            "destination",
        ),
        (
            json!({"source": "s3://failures/", "filter": {"attributes": {"a": "b"}}}),
            "filter.attributes",
        ),
        (json!({"source": "s3://No_Such/"}), "source"),
    ] {
        let err = w.run(req.clone()).await.unwrap_err().to_string();
        assert!(err.starts_with(&format!("{field}:")), "{req}: {err}");
    }
    let w2 = World {
        allow: AllowList::parse("arn:aws:s3:::other/*,arn:aws:lambda:*"),
        ..World::new()
    };
    w2.records("orders", "live", 0..2);
    let err = w2
        .run(json!({"source": "s3://failures/"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("allow-list"), "{err}");
    assert_eq!(w.objects.keys(BUCKET).len(), 2);
    assert!(w.lambda.invoked.lock().unwrap().is_empty());
}
