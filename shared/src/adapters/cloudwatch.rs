//! CloudWatch for the post-traffic hook: one `GetMetricData` call per polling round
//! (every query in it, pages followed by `NextToken`) and `DescribeAlarms` by name.

use crate::error::{Error, Result};
use crate::post_traffic::decide::AlarmState;
use crate::post_traffic::{MetricQuery, Metrics, Series};
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricDataQuery, MetricStat, ScanBy,
};
use std::collections::BTreeMap;

/// CloudWatch's limit on queries in one `GetMetricData` request.
pub const MAX_QUERIES: usize = 500;
/// Pages of one round's answer we are prepared to follow.
const MAX_PAGES: usize = 50;

#[derive(Clone, Debug)]
pub struct CloudWatch {
    client: Client,
}

impl CloudWatch {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn build_error(e: impl std::fmt::Display) -> Error {
    Error::Config(format!("could not build a CloudWatch request: {e}"))
}

/// The SDK's `MetricDataQuery` for one of ours.
pub fn to_sdk(q: &MetricQuery) -> Result<MetricDataQuery> {
    let mut metric = Metric::builder()
        .namespace(&q.namespace)
        .metric_name(&q.metric_name);
    for (name, value) in &q.dimensions {
        metric = metric.dimensions(Dimension::builder().name(name).value(value).build());
    }
    let stat = MetricStat::builder()
        .metric(metric.build())
        .period(q.period_seconds as i32)
        .stat(&q.stat)
        .build();
    Ok(MetricDataQuery::builder()
        .id(&q.id)
        .metric_stat(stat)
        .return_data(true)
        .build())
}

impl Metrics for CloudWatch {
    async fn metric_data(
        &self,
        queries: &[MetricQuery],
        start_epoch_s: i64,
        end_epoch_s: i64,
    ) -> Result<BTreeMap<String, Series>> {
        if queries.len() > MAX_QUERIES {
            return Err(build_error(format!(
                "{} queries, more than the {MAX_QUERIES} one GetMetricData call carries",
                queries.len()
            )));
        }
        let sdk: Vec<MetricDataQuery> = queries.iter().map(to_sdk).collect::<Result<_>>()?;
        let mut out: BTreeMap<String, Series> =
            queries.iter().map(|q| (q.id.clone(), Vec::new())).collect();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(sdk.clone()))
                .start_time(DateTime::from_secs(start_epoch_s))
                .end_time(DateTime::from_secs(end_epoch_s))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| Error::aws("cloudwatch", "GetMetricData", e))?;
            for r in page.metric_data_results() {
                let Some(id) = r.id() else { continue };
                let series = out.entry(id.to_owned()).or_default();
                series.extend(
                    r.timestamps()
                        .iter()
                        .map(|t| t.secs())
                        .zip(r.values().iter().copied()),
                );
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => {
                    for s in out.values_mut() {
                        s.sort_by_key(|(t, _)| *t);
                    }
                    return Ok(out);
                }
            }
        }
        Err(Error::Aws {
            service: "cloudwatch",
            operation: "GetMetricData",
            code: None,
            message: format!("more than {MAX_PAGES} pages of datapoints in one round"),
            retryable: false,
        })
    }

    async fn alarms(&self, names: &[String]) -> Result<Vec<AlarmState>> {
        let mut found = Vec::new();
        // DescribeAlarms takes at most 100 names per call.
        for chunk in names.chunks(100) {
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| Error::aws("cloudwatch", "DescribeAlarms", e))?;
                for a in page.metric_alarms() {
                    found.push(AlarmState {
                        name: a.alarm_name().unwrap_or_default().to_owned(),
                        state: a
                            .state_value()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        reason: a.state_reason().map(str::to_owned),
                    });
                }
                for a in page.composite_alarms() {
                    found.push(AlarmState {
                        name: a.alarm_name().unwrap_or_default().to_owned(),
                        state: a
                            .state_value()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        reason: a.state_reason().map(str::to_owned),
                    });
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}
