//! The payload of the pre- and post-traffic hooks, decoded as their `main.rs` does:
//! `HookEvent::from_value`, then (post-traffic) the `rollgate_continuation` bake state
//! that a previous invocation of the hook handed over. Never panics; errors say what is
//! wrong; the ids are passed on unchanged; a decoded bake state survives the JSON round
//! trip to the next invocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollgate::hook::HookEvent;
use rollgate::post_traffic::{BakeState, CONTINUATION_KEY};
use rollgate_fuzz::{json_close, json_payload};

fuzz_target!(|data: &[u8]| {
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
});
