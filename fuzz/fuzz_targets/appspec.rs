//! The AppSpec parser (`rollgate::appspec::parse`), JSON and YAML: the text comes from
//! whoever created the deployment. It must never panic; what it accepts must satisfy the
//! rules it promises, and must come out the same when written back as a JSON AppSpec.
#![no_main]

use libfuzzer_sys::fuzz_target;
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

fuzz_target!(|data: &[u8]| {
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
});
