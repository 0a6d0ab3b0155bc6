//! Helpers shared by the fuzz targets.

use serde_json::Value;

/// Whether two JSON documents are equal, numbers within a relative 1e-9: serde_json's
/// default float parsing is not always exact to the last bit, so a float that goes
/// through text twice may move by one ulp without anything being wrong.
pub fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x == y {
                return true;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_close(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_close(a, b)))
        }
        _ => a == b,
    }
}

/// The fuzz input as a JSON document, as the Lambda runtime would hand it over, or
/// `None` when it is not JSON (the runtime rejects those before any rollgate code runs).
pub fn json_payload(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}
