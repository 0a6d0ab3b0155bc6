//! What the alarm-rollback function decodes (`rollback::event::parse`): EventBridge
//! alarm state changes, alarm Lambda actions, SNS-wrapped alarm notifications (a JSON
//! string inside JSON) and CodeDeploy state-change events. Never panics; errors say
//! what is wrong; every decoded item can be keyed and logged. Then the scope checks:
//! the event's claims of origin against a home, and the alarm's targets against it and
//! an allow-list: whatever is kept is a plain function name of home, inside the list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollgate::rollback::event::{self, Inbound};
use rollgate::rollback::{run, targets};
use rollgate::scope::{AllowList, Home};
use rollgate_fuzz::json_payload;

fuzz_target!(|data: &[u8]| {
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
                        let home = Home::from_parts("", Some("123456789012"), Some("us-east-1"));
                        let allow =
                            AllowList::parse("arn:aws:lambda:us-east-1:123456789012:function:o?d*");
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
                    Inbound::AliasChange(_) | Inbound::Manual(_) | Inbound::Schedule { .. } => {}
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
});
