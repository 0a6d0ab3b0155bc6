//! AWS's own limits on the values rollgate reads from AWS or sends to it, in one place.
//!
//! Each constant names its source: the service's API model (botocore
//! `botocore/data/<service>/<version>/service-2.json`: `min`, `max`, `pattern`) or, where
//! the model leaves a limit to the prose, the member's documentation in that model.
//! `tests/test_aws_limits.py` reads this file and checks every constant against the
//! model: never tighter on what comes from AWS, never looser on what goes to it.
//!
//! Input from AWS is never refused for a length the model allows. Text that is only
//! carried along (an alarm's reason, a smoke test's answer) is cut to fit what it goes
//! into, and marked as cut.

use serde_json::Value;

/// SNS `Publish`: message body and message attributes together, at most 256 KiB
/// (262,144 bytes), the default `MaximumMessageSize` of a topic (sns `PublishInput.Message`
/// documentation).
pub const SNS_MESSAGE_MAX_BYTES: usize = 262_144;

/// SNS `Publish` `Subject`: "less than 100 characters", no line breaks or control
/// characters (sns `PublishInput.Subject` documentation).
pub const SNS_SUBJECT_MAX_CHARS: usize = 99;

/// SNS message attribute values rollgate sets (function, deployment, alarm...): cut to
/// this, so that attributes never crowd out the body.
pub const SNS_ATTRIBUTE_MAX_CHARS: usize = 1024;

/// SQS `MessageGroupId` and `MessageDeduplicationId`: at most 128 characters, each an
/// ASCII letter, digit or punctuation character (sqs `SendMessageBatchRequestEntry`
/// documentation).
pub const SQS_FIFO_ID_MAX_CHARS: usize = 128;

/// CloudWatch `StateReason`: at most 1023 characters (cloudwatch model, shape
/// `StateReason`, `max`).
pub const ALARM_STATE_REASON_MAX_CHARS: usize = 1023;

/// CloudWatch `AlarmName`: 1 to 255 characters (cloudwatch model, shape `AlarmName`).
pub const ALARM_NAME_MAX_CHARS: usize = 255;

/// CloudWatch `DimensionValue`: at most 1024 characters (cloudwatch model, shape
/// `DimensionValue`); EMF dimensions and properties are cut to it.
pub const DIMENSION_VALUE_MAX_CHARS: usize = 1024;

/// CloudWatch Logs: one log event is at most 256 KiB including 26 bytes of overhead
/// (logs `PutLogEvents` documentation). Lambda turns each line a function writes into
/// one event; a record rollgate logs is kept well under it.
pub const LOG_EVENT_MAX_BYTES: usize = 262_144 - 26;

/// What one structured log record of a decision may take (a quarter of an event).
pub const LOG_RECORD_MAX_BYTES: usize = 64 * 1024;

/// The mark left where rollgate cut a text: the number of characters it had.
fn cut_mark(total: usize) -> String {
    format!(" …[cut by rollgate: {total} characters in all]")
}

/// `text` as it is when it has at most `max` characters; else its beginning and a mark
/// saying it was cut and how long it was, `max` characters in all.
pub fn cut(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_owned();
    }
    let mark = cut_mark(total);
    let keep = max.saturating_sub(mark.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&mark);
    if out.chars().count() > max {
        // `max` is smaller than the mark itself: the beginning alone.
        return text.chars().take(max).collect();
    }
    out
}

/// Whether `text` was cut by [`cut`].
pub fn was_cut(text: &str) -> bool {
    text.contains("…[cut by rollgate: ")
}

fn cut_strings(value: &mut Value, max: usize) {
    match value {
        Value::String(s) if s.chars().count() > max => *s = cut(s, max),
        Value::Array(items) => items.iter_mut().for_each(|v| cut_strings(v, max)),
        Value::Object(map) => map.values_mut().for_each(|v| cut_strings(v, max)),
        _ => {}
    }
}

/// `value` as JSON text of at most `max_bytes` bytes. When the whole does not fit, its
/// longest strings are cut (and marked) until it does: the structure, every key and every
/// short value stay. `pretty` is used only when the pretty text fits as it is.
pub fn fit_json(value: &Value, max_bytes: usize, pretty: bool) -> String {
    if pretty {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        if text.len() <= max_bytes {
            return text;
        }
    }
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.len() <= max_bytes {
        return text;
    }
    let mut cap = max_bytes / 2;
    while cap >= 64 {
        let mut slim = value.clone();
        cut_strings(&mut slim, cap);
        let text = serde_json::to_string(&slim).unwrap_or_default();
        if text.len() <= max_bytes {
            return text;
        }
        cap /= 2;
    }
    // Too many values even when each is short: say so rather than send a broken text.
    let note = serde_json::json!({
        "cut_by_rollgate": format!("the record had {} bytes, over the {max_bytes}-byte limit", text.len()),
    });
    serde_json::to_string(&note).unwrap_or_default()
}

/// An SQS FIFO `MessageGroupId` or `MessageDeduplicationId` as SQS accepts it; the error
/// says what is wrong.
pub fn check_fifo_id(value: &str) -> Result<(), String> {
    let n = value.chars().count();
    if n == 0 {
        return Err("is empty".into());
    }
    if n > SQS_FIFO_ID_MAX_CHARS {
        return Err(format!(
            "has {n} characters; SQS accepts at most {SQS_FIFO_ID_MAX_CHARS}"
        ));
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "contains {c:?}; SQS accepts only ASCII letters, digits and punctuation"
        ));
    }
    Ok(())
}

/// An SNS subject line: printable ASCII only, at most [`SNS_SUBJECT_MAX_CHARS`].
pub fn subject(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .take(SNS_SUBJECT_MAX_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_and_marked() {
        assert_eq!(cut("abc", 3), "abc");
        let long = "x".repeat(5_000_000);
        let c = cut(&long, ALARM_STATE_REASON_MAX_CHARS);
        assert_eq!(c.chars().count(), ALARM_STATE_REASON_MAX_CHARS);
        assert!(was_cut(&c));
        assert!(c.contains("5000000 characters"));
        // Multi-byte characters are counted as characters, never split.
        let wide = "é".repeat(2000);
        let c = cut(&wide, 1000);
        assert_eq!(c.chars().count(), 1000);
        assert!(c.starts_with('é'));
        // A limit smaller than the mark keeps the beginning only.
        assert_eq!(cut("abcdefgh", 3), "abc");
    }

    #[test]
    fn json_is_fitted_by_cutting_its_longest_strings() {
        let big = json!({"reason": "r".repeat(5 << 20), "name": "orders", "n": 3,
            "checks": [{"actual": "a".repeat(300_000)}, {"actual": "ok"}]});
        let text = fit_json(&big, SNS_MESSAGE_MAX_BYTES - 4096, true);
        assert!(text.len() <= SNS_MESSAGE_MAX_BYTES - 4096, "{}", text.len());
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], "orders");
        assert_eq!(back["n"], 3);
        assert_eq!(back["checks"][1]["actual"], "ok");
        assert!(was_cut(back["reason"].as_str().unwrap()));
        assert!(was_cut(back["checks"][0]["actual"].as_str().unwrap()));
        // Small values come back as they were, pretty when asked.
        let small = json!({"a": 1});
        assert_eq!(fit_json(&small, 100, true), "{\n  \"a\": 1\n}");
        // Too many values to fit at all: a valid note, never a broken text.
        let many = Value::Array((0..10_000).map(|i| json!(i)).collect());
        let text = fit_json(&many, 1000, false);
        assert!(text.len() <= 1000);
        assert!(serde_json::from_str::<Value>(&text).unwrap()["cut_by_rollgate"].is_string());
    }

    #[test]
    fn fifo_ids_follow_sqs_rules() {
        assert!(check_fifo_id("orders-7").is_ok());
        assert!(check_fifo_id(&"g".repeat(128)).is_ok());
        assert!(check_fifo_id("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~").is_ok());
        assert!(check_fifo_id(&"g".repeat(129)).unwrap_err().contains("129"));
        assert!(check_fifo_id("a b").is_err());
        assert!(check_fifo_id("é").is_err());
        assert!(check_fifo_id("").is_err());
    }

    #[test]
    fn subjects_are_printable_ascii_under_100() {
        let s = subject(&format!(
            "rollgate: {}\nnext",
            "é".repeat(3) + &"x".repeat(200)
        ));
        assert_eq!(s.chars().count(), SNS_SUBJECT_MAX_CHARS);
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '));
    }
}
