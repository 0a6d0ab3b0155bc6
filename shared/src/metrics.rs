//! CloudWatch embedded metric format (EMF): metrics as one structured log line, with no
//! API call on the hot path. CloudWatch Logs extracts them from the function's log.

use crate::limits::DIMENSION_VALUE_MAX_CHARS;
use serde_json::{Map, Value, json};

pub use crate::config::DEFAULT_METRICS_NAMESPACE as DEFAULT_NAMESPACE;

static NAMESPACE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The namespace of every document [`Emf::rollgate`] makes, set once in `main`.
pub fn set_namespace(namespace: &str) {
    let _ = NAMESPACE.set(namespace.to_owned());
}

/// One EMF document: dimensions, metrics with units, and extra searchable properties.
#[derive(Debug, Clone)]
pub struct Emf {
    namespace: String,
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, f64, &'static str)>,
    properties: Map<String, Value>,
}

impl Emf {
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            dimensions: Vec::new(),
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// In the namespace set once by [`set_namespace`] (from `ROLLGATE_METRICS_NAMESPACE`
    /// in each function's configuration), else `Rollgate`.
    pub fn rollgate() -> Self {
        Self::new(
            NAMESPACE
                .get()
                .map_or(DEFAULT_NAMESPACE, String::as_str)
                .to_owned(),
        )
    }

    /// A dimension; its value is cut to CloudWatch's 1024 characters (cloudwatch model,
    /// `DimensionValue`), or the whole document would be dropped.
    pub fn dimension(mut self, name: &str, value: &str) -> Self {
        self.dimensions.push((
            name.to_owned(),
            crate::limits::cut(value, DIMENSION_VALUE_MAX_CHARS),
        ));
        self
    }

    pub fn metric(mut self, name: &str, value: f64, unit: &'static str) -> Self {
        self.metrics.push((name.to_owned(), value, unit));
        self
    }

    /// A metric only when there is a value: a figure that is not defined (a rate of no
    /// releases, a time to restore without a restore) is left out rather than sent as 0.
    pub fn metric_opt(self, name: &str, value: Option<f64>, unit: &'static str) -> Self {
        match value {
            Some(value) => self.metric(name, value, unit),
            None => self,
        }
    }

    /// A property is searchable in the log but is not a dimension (no cardinality cost).
    /// Text is cut to [`DIMENSION_VALUE_MAX_CHARS`](crate::limits::DIMENSION_VALUE_MAX_CHARS) too: a property holds ids and names, and
    /// one from an event (a forged deployment id) must not make the line too long for one
    /// CloudWatch Logs event.
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        let value = match value.into() {
            Value::String(s) => Value::String(crate::limits::cut(&s, DIMENSION_VALUE_MAX_CHARS)),
            other => other,
        };
        self.properties.insert(name.to_owned(), value);
        self
    }

    pub fn to_json(&self, timestamp_ms: u64) -> Value {
        let mut doc = self.properties.clone();
        for (name, value) in &self.dimensions {
            doc.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, value, _) in &self.metrics {
            doc.insert(name.clone(), json!(value));
        }
        let dims: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|(n, _, u)| json!({"Name": n, "Unit": u}))
            .collect();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dims],
                    "Metrics": metrics,
                }]
            }),
        );
        Value::Object(doc)
    }

    /// Write the document as one line on stdout, where Lambda's log capture picks it up.
    pub fn emit(&self) {
        let now = crate::clock::epoch_ms().max(0) as u64;
        println!("{}", self.to_json(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_to_cloudwatch_limits() {
        let id = "d-".to_owned() + &"A".repeat(300_000);
        let doc = Emf::new("Rollgate")
            .dimension("Component", &id)
            .property("DeploymentId", id.clone())
            .property("Count", 3)
            .to_json(0);
        for key in ["Component", "DeploymentId"] {
            let v = doc[key].as_str().unwrap();
            assert_eq!(v.chars().count(), DIMENSION_VALUE_MAX_CHARS);
            assert!(crate::limits::was_cut(v));
        }
        assert_eq!(doc["Count"], 3);
    }

    #[test]
    fn emf_document_declares_every_metric_and_dimension() {
        let doc = Emf::new("Rollgate")
            .dimension("Component", "pre-traffic-hook")
            .dimension("Verdict", "Failed")
            .metric("GateDecisions", 1.0, "Count")
            .metric("GateDuration", 812.0, "Milliseconds")
            .property("FunctionName", "orders")
            .to_json(1_700_000_000_000);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Rollgate");
        assert_eq!(cw["Dimensions"], json!([["Component", "Verdict"]]));
        assert_eq!(
            cw["Metrics"][1],
            json!({"Name": "GateDuration", "Unit": "Milliseconds"})
        );
        assert_eq!(doc["Verdict"], "Failed");
        assert_eq!(doc["GateDuration"], 812.0);
        assert_eq!(doc["FunctionName"], "orders");
        // Every metric and dimension named in the metadata has a value at the root.
        for m in cw["Metrics"].as_array().unwrap() {
            assert!(doc.get(m["Name"].as_str().unwrap()).is_some());
        }
    }
}
