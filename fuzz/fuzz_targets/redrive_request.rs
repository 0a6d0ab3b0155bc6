//! The dlq-redrive request (`redrive::Request::parse`), which a person types. Never
//! panics; errors name a field (never an empty one); the continuation an accepted request hands to the next
//! run parses again and counts one more run. The filter it carries is then run on the
//! input itself as a message body, and the allow-list parser on the source.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollgate::redrive::request::{Mode, RequestError, RunCounts};
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
});
