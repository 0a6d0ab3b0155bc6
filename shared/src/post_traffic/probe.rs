//! HTTP probes for functions behind a URL (function URL, API Gateway, ALB): requests sent
//! during the bake, each judged on status and latency. Their tally travels with the bake
//! state, so a bake that continues itself keeps counting.

use super::policy::HttpProbe;
use crate::decision::CheckResult;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::future::Future;
use std::time::Duration;

/// What one request of a probe got.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The server answered with this status after this long.
    Status { status: u16, latency: Duration },
    /// No answer: connection refused, TLS failure, timeout...
    Error(String),
}

/// Port: send one HTTP request.
pub trait HttpClient: Send + Sync {
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&str>,
        timeout: Duration,
    ) -> impl Future<Output = Answer> + Send;
}

/// The requests of one probe so far, over every round and invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeTally {
    pub sent: u32,
    pub ok: u32,
    /// Answered with a status the probe does not expect.
    pub wrong_status: u32,
    /// Answered in time but slower than `max_latency_ms`.
    pub slow: u32,
    /// No answer at all.
    pub errors: u32,
    pub worst_latency_ms: u64,
    /// The first few failures, as evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

const EXAMPLES: usize = 5;

impl ProbeTally {
    pub fn failed(&self) -> u32 {
        self.wrong_status + self.slow + self.errors
    }

    pub fn record(&mut self, probe: &HttpProbe, answer: &Answer) {
        self.sent += 1;
        let failure = match answer {
            Answer::Status { status, latency } => {
                let ms = latency.as_millis() as u64;
                self.worst_latency_ms = self.worst_latency_ms.max(ms);
                if !probe.expect_status.contains(status) {
                    self.wrong_status += 1;
                    Some(format!(
                        "status {status}, expected {:?}",
                        probe.expect_status
                    ))
                } else if probe.max_latency_ms.is_some_and(|max| ms > max) {
                    self.slow += 1;
                    Some(format!(
                        "{ms} ms, more than {} ms",
                        probe.max_latency_ms.unwrap_or_default()
                    ))
                } else {
                    self.ok += 1;
                    None
                }
            }
            Answer::Error(e) => {
                self.errors += 1;
                Some(format!("no answer: {e}"))
            }
        };
        if let Some(f) = failure
            && self.examples.len() < EXAMPLES
        {
            self.examples.push(f);
        }
    }
}

/// `probe[<name>]`: Pass while the failed share stays within `max_failure_rate`;
/// Inconclusive before the first request.
pub fn probe_check(probe: &HttpProbe, tally: &ProbeTally) -> CheckResult {
    let name = format!("probe[{}]", probe.name);
    let expected = json!({
        "method": probe.method, "url": probe.url, "status": probe.expect_status,
        "max_latency_ms": probe.max_latency_ms, "max_failure_rate": probe.max_failure_rate,
    });
    let actual = serde_json::to_value(tally).unwrap_or_default();
    if tally.sent == 0 {
        return CheckResult::new(
            name,
            crate::decision::Outcome::Inconclusive,
            expected,
            actual,
        )
        .with_detail("no request sent yet");
    }
    let rate = f64::from(tally.failed()) / f64::from(tally.sent);
    if rate > probe.max_failure_rate {
        CheckResult::fail(name, expected, actual).with_detail(format!(
            "{} of {} requests failed ({:.1}% > {:.1}%): {}",
            tally.failed(),
            tally.sent,
            rate * 100.0,
            probe.max_failure_rate * 100.0,
            tally.examples.join("; ")
        ))
    } else {
        CheckResult::pass(name, expected, actual)
    }
}

/// Send `count` requests of every probe (concurrently across probes, one after the
/// other within a probe) and add them to the tallies.
pub async fn run_round<H: HttpClient>(
    http: &H,
    probes: &[HttpProbe],
    tallies: &mut Vec<ProbeTally>,
) {
    tallies.resize(probes.len(), ProbeTally::default());
    let rounds = probes.iter().map(|p| async move {
        let headers: Vec<(String, String)> = p
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut answers = Vec::with_capacity(p.count as usize);
        for _ in 0..p.count {
            answers.push(
                http.send(
                    &p.method,
                    &p.url,
                    &headers,
                    p.body.as_deref(),
                    Duration::from_millis(p.timeout_ms),
                )
                .await,
            );
        }
        answers
    });
    let results = futures::future::join_all(rounds).await;
    for ((probe, tally), answers) in probes.iter().zip(tallies.iter_mut()).zip(results) {
        for a in &answers {
            tally.record(probe, a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Outcome;
    use std::sync::Mutex;

    fn probe() -> HttpProbe {
        serde_json::from_value(json!({"name": "home", "url": "https://example.com/health",
                                      "max_latency_ms": 500, "count": 3}))
        .unwrap()
    }

    fn status(status: u16, ms: u64) -> Answer {
        Answer::Status {
            status,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn defaults_and_tally() {
        let p = probe();
        assert_eq!(p.method, "GET");
        assert_eq!(p.expect_status, vec![200]);
        assert_eq!(p.max_failure_rate, 0.0);
        let mut t = ProbeTally::default();
        assert_eq!(probe_check(&p, &t).outcome, Outcome::Inconclusive);
        t.record(&p, &status(200, 20));
        assert_eq!(probe_check(&p, &t).outcome, Outcome::Pass);
        t.record(&p, &status(200, 900));
        t.record(&p, &status(503, 10));
        t.record(&p, &Answer::Error("connection refused".into()));
        assert_eq!(
            (t.sent, t.ok, t.slow, t.wrong_status, t.errors),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(t.worst_latency_ms, 900);
        let c = probe_check(&p, &t);
        assert_eq!(c.outcome, Outcome::Fail);
        let detail = c.detail.unwrap();
        assert!(detail.contains("3 of 4 requests failed"), "{detail}");
        assert!(detail.contains("status 503"), "{detail}");
    }

    #[test]
    fn failure_rate_tolerance() {
        let mut p = probe();
        p.max_failure_rate = 0.25;
        let mut t = ProbeTally::default();
        for _ in 0..3 {
            t.record(&p, &status(200, 1));
        }
        t.record(&p, &status(500, 1));
        assert_eq!(probe_check(&p, &t).outcome, Outcome::Pass);
        t.record(&p, &status(500, 1));
        assert_eq!(probe_check(&p, &t).outcome, Outcome::Fail);
    }

    struct Scripted(Mutex<Vec<Answer>>, Mutex<Vec<String>>);

    impl HttpClient for Scripted {
        async fn send(
            &self,
            method: &str,
            url: &str,
            headers: &[(String, String)],
            _body: Option<&str>,
            _timeout: Duration,
        ) -> Answer {
            self.1
                .lock()
                .unwrap()
                .push(format!("{method} {url} {headers:?}"));
            self.0.lock().unwrap().pop().unwrap_or(status(200, 1))
        }
    }

    #[tokio::test]
    async fn a_round_sends_count_requests_per_probe_and_keeps_counting() {
        let http = Scripted(Mutex::new(vec![status(404, 5)]), Mutex::new(vec![]));
        let mut other = probe();
        other.name = "api".into();
        other.count = 1;
        other.method = "POST".into();
        other.headers.insert("x-canary".into(), "1".into());
        let probes = vec![probe(), other];
        let mut tallies = Vec::new();
        run_round(&http, &probes, &mut tallies).await;
        run_round(&http, &probes, &mut tallies).await;
        assert_eq!(tallies[0].sent + tallies[1].sent, 8);
        assert_eq!(tallies[0].sent, 6);
        assert_eq!(tallies[0].wrong_status + tallies[1].wrong_status, 1);
        let sent = http.1.lock().unwrap();
        assert!(
            sent.iter()
                .any(|s| s.starts_with("POST") && s.contains("x-canary"))
        );
    }
}
