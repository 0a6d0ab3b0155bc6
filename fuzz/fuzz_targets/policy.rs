//! The policy loader both hooks and alarm-rollback use (`Policy::parse`, which also
//! validates the `post_traffic` and `rollback` sections). The text comes from an SSM
//! parameter anyone with write access can change. It must never panic; an error names
//! a field path; an accepted policy, written back as JSON, is accepted again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollgate::policy::Policy;
use rollgate_fuzz::json_close;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(text) {
        Ok(policy) => {
            policy.validate().expect("a parsed policy validates");
            let written = serde_json::to_string(&policy).expect("a policy serialises");
            let again = Policy::parse(&written)
                .unwrap_or_else(|e| panic!("accepted, then rejected its own JSON: {e}\n{written}"));
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
});
