//! What the alarm-rollback function decodes (`rollback::event::parse`): EventBridge
//! alarm state changes, alarm Lambda actions, SNS-wrapped alarm notifications (a JSON
//! string inside JSON) and CodeDeploy state-change events. Never panics; errors say
//! what is wrong; every decoded item can be keyed and logged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollgate::rollback::event::{self, Inbound};
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
                    }
                    Inbound::Deployment(change) => {
                        serde_json::to_string(&change).expect("a change serialises");
                    }
                }
            }
        }
        Err(e) => assert!(!e.to_string().trim().is_empty(), "{e:?}"),
    }
});
