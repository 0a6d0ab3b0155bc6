//! The dlq-redrive request (`redrive::Request::parse`), which a person types. Never
//! panics; errors name a field (never an empty one); the continuation an accepted request hands to the next
//! run parses again and counts one more run. The filter it carries is then run on the
//! input itself as a message body, and the allow-list parser on the source.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollgate::redrive::request::RequestError;
use rollgate::redrive::{AllowList, Request};
use rollgate_fuzz::json_payload;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Some(payload) = json_payload(data) else {
        return;
    };
    match Request::parse(&payload) {
        Ok(req) => {
            let body = String::from_utf8_lossy(data);
            let _ = req.filter.matches(&body, &BTreeMap::new());
            let allow = AllowList::parse(&req.source);
            let _ = allow.allows(&req.source);
            let next = req.continuation(1, 1);
            let again = Request::parse(&next)
                .unwrap_or_else(|e| panic!("continuation rejected: {e}\n{next}"));
            assert_eq!(again.action, req.action);
            assert_eq!(again.source, req.source);
            assert_eq!(again.destination, req.destination);
            assert_eq!(
                again.carried.run,
                req.carried.run.saturating_add(1),
                "{next}"
            );
            assert_eq!(
                again.carried.moved,
                req.carried.moved.saturating_add(1),
                "{next}"
            );
        }
        Err(e) => {
            let RequestError::Field { field, message } = &e;
            assert!(!field.is_empty() && !message.is_empty(), "{e:?}");
        }
    }
});
