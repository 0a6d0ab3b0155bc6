//! Delivery metrics: DORA's deployment frequency, change failure rate and time to restore,
//! and rollgate's own rollback rate, per function and for the account, over a window.
//!
//! Pure and self-contained: the caller reads the ledger and hands over one [`Release`] per
//! release (CodeDeploy's own rollback deployments are not releases); nothing here knows the
//! ledger's rows, so either side can change without the other.
//!
//! How each figure is computed from the releases whose `at_ms` lies in the window
//! (`start <= at_ms < end`; the others are only counted as `outside_window`):
//!
//! | figure | definition | evidence |
//! |---|---|---|
//! | deployment frequency | releases / the window's length in days | releases, days |
//! | change failure rate | releases that failed, were stopped or rolled back / finished releases | both counts |
//! | rollback rate | releases rollgate rolled back or stopped / finished releases | both counts |
//! | time to restore | median and 90th percentile (nearest rank) of alarm transition → alias restored, over the releases rollgate restored | samples, discarded |
//!
//! A release still in progress counts for the frequency but for neither rate: its outcome
//! is not known yet. A restore that ends before its alarm (clocks apart) is discarded and
//! counted as such. A figure without data (a rate of no finished release, a time to restore
//! without a restore) is `None`, never 0.
//!
//! # Bands
//!
//! Source: *Accelerate State of DevOps Report 2023* (DORA, Google Cloud; report version
//! v.2023-12), chapter 1 "How do you compare?", the table of software delivery performance
//! levels (one row per level: deployment frequency, change lead time, change failure rate,
//! failed deployment recovery time, share of respondents),
//! <https://dora.dev/research/2023/dora-report/>. The three columns rollgate measures, as
//! that table gives them (change lead time is left out: rollgate does not measure it):
//!
//! | level | deployment frequency | change failure rate | failed deployment recovery time |
//! |---|---|---|---|
//! | elite | on demand | 5% | less than one hour |
//! | high | between once per day and once per week | 10% | less than one day |
//! | medium | between once per week and once per month | 15% | between one day and one week |
//! | low | between once per week and once per month | 64% | between one month and six months |
//!
//! In 2023 the low level deploys as often as the medium one: the two differ in stability
//! only. The change failure rates are one value per level, not ranges. The 2023 answer
//! choices for frequency and recovery time are DORA's survey buckets
//! (<https://github.com/dora-team/dora.dev/blob/main/hugo/data/survey_questions/2023.json>;
//! "on demand" is "multiple deploys per day").
//!
//! rollgate reads the table as thresholds ([`Band`]): a frequency above once a day is elite,
//! at least once a week high, at least once in 30 days medium (the range the medium and low
//! levels share), less low (slower than every 2023 level); a change failure rate up to 5% is
//! elite, up to 10% high, up to 15% medium, above low; a median time to restore under an
//! hour is elite, under a day high, under a week medium, longer low (the table has no level
//! between one week and one month; rollgate counts it as low). The rollback rate is
//! rollgate's own figure and has no band.
//!
//! The values above were checked against a sponsor's transcription of that table
//! (<https://octopus.com/blog/software-delivery-performance-clusters-2023>); the report PDF
//! itself could not be read when they were.
//!
//! The 2024 report (<https://dora.dev/research/2024/dora-report/>) re-clustered the levels;
//! as transcribed (<https://octopus.com/blog/2024-devops-performance-clusters>), high's
//! change failure rate (20%) is above medium's (10%), medium recovers in less than a day,
//! and low deploys between once per month and once every six months, fails 40% and
//! recovers in one week to one month. Change failure rates that do not fall with the level
//! cannot be read as thresholds, so the bands follow the 2023 table.

use crate::metrics::Emf;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// The window the delivery metrics are computed over unless the caller says otherwise.
pub const DEFAULT_WINDOW_DAYS: u32 = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoraError {
    #[error("the window ends at {end_ms} ms, not after it starts at {start_ms} ms")]
    EmptyWindow { start_ms: i64, end_ms: i64 },
}

/// A span of time, `start <= t < end`, epoch milliseconds; never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    start_ms: i64,
    end_ms: i64,
}

impl Window {
    pub fn new(start_ms: i64, end_ms: i64) -> Result<Self, DoraError> {
        if end_ms <= start_ms {
            return Err(DoraError::EmptyWindow { start_ms, end_ms });
        }
        Ok(Self { start_ms, end_ms })
    }

    /// The `days` before `end_ms`.
    pub fn trailing_days(end_ms: i64, days: u32) -> Result<Self, DoraError> {
        Self::new(end_ms.saturating_sub(i64::from(days) * DAY_MS), end_ms)
    }

    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    pub fn end_ms(&self) -> i64 {
        self.end_ms
    }

    pub fn contains(&self, at_ms: i64) -> bool {
        self.start_ms <= at_ms && at_ms < self.end_ms
    }

    /// The window's length in days (fractional).
    pub fn days(&self) -> f64 {
        (self.end_ms - self.start_ms).max(1) as f64 / DAY_MS as f64
    }
}

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not finished yet: counts for the frequency only.
    InProgress,
    Succeeded,
    /// The deployment failed (a gate, CodeDeploy), or someone other than rollgate stopped it.
    Failed,
    /// rollgate stopped it while it ran (alarm-rollback's stop claim, a judged shift).
    Stopped,
    /// rollgate pointed the alias back after the release (a rollback claim).
    RolledBack,
}

impl Outcome {
    pub fn is_final(self) -> bool {
        self != Outcome::InProgress
    }

    /// Counts as a change failure.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Stopped | Outcome::RolledBack
        )
    }

    /// Undone by rollgate itself.
    pub fn is_undone_by_rollgate(self) -> bool {
        matches!(self, Outcome::Stopped | Outcome::RolledBack)
    }
}

/// When rollgate restored an alias: the alarm's transition to `ALARM` and the moment the
/// alias served the good version again (the stop or `UpdateAlias` settled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    pub alarm_ms: i64,
    pub restored_ms: i64,
}

impl Restore {
    /// `None` when the alias was restored before the alarm (clocks apart): not a sample.
    pub fn duration_ms(&self) -> Option<i64> {
        (self.restored_ms >= self.alarm_ms).then(|| self.restored_ms - self.alarm_ms)
    }
}

/// One release of a function's alias, as the ledger knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub function: String,
    pub alias: String,
    pub deployment_id: String,
    /// When the release started (the ledger row's creation), epoch milliseconds.
    pub at_ms: i64,
    pub outcome: Outcome,
    /// Set when rollgate stopped or rolled the release back after an alarm.
    pub restore: Option<Restore>,
}

/// A DORA performance level; see the module documentation for the thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Elite,
    High,
    Medium,
    Low,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Elite => "elite",
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
        }
    }

    /// More than once a day elite, at least once a week high, at least once in 30 days
    /// medium (2023's medium and low levels share that range), else low.
    pub fn of_frequency(per_day: f64) -> Band {
        if per_day > 1.0 {
            Band::Elite
        } else if per_day >= 1.0 / 7.0 {
            Band::High
        } else if per_day >= 1.0 / 30.0 {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// Up to 5 % elite, up to 10 % high, up to 15 % medium, else low.
    pub fn of_change_failure_rate(percent: f64) -> Band {
        if percent <= 5.0 {
            Band::Elite
        } else if percent <= 10.0 {
            Band::High
        } else if percent <= 15.0 {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// Under an hour elite, under a day high, under a week medium, else low.
    pub fn of_time_to_restore(ms: i64) -> Band {
        const HOUR_MS: i64 = 3_600_000;
        if ms < HOUR_MS {
            Band::Elite
        } else if ms < DAY_MS {
            Band::High
        } else if ms < 7 * DAY_MS {
            Band::Medium
        } else {
            Band::Low
        }
    }
}

/// Releases in the window by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub releases: u64,
    pub in_progress: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub stopped: u64,
    pub rolled_back: u64,
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        self.releases += 1;
        match outcome {
            Outcome::InProgress => self.in_progress += 1,
            Outcome::Succeeded => self.succeeded += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Stopped => self.stopped += 1,
            Outcome::RolledBack => self.rolled_back += 1,
        }
    }

    /// Releases with a final outcome: the rates' denominator.
    pub fn finished(&self) -> u64 {
        self.releases - self.in_progress
    }

    /// Failed, stopped or rolled back.
    pub fn failures(&self) -> u64 {
        self.failed + self.stopped + self.rolled_back
    }

    /// Stopped or rolled back by rollgate.
    pub fn undone(&self) -> u64 {
        self.stopped + self.rolled_back
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeploymentFrequency {
    pub releases: u64,
    pub days: f64,
    pub per_day: f64,
    pub band: Band,
}

/// `count` of `of`, as a percentage; `None` when `of` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub count: u64,
    pub of: u64,
    pub percent: Option<f64>,
    /// Only for the change failure rate.
    pub band: Option<Band>,
}

impl Rate {
    fn new(count: u64, of: u64) -> Self {
        Self {
            count,
            of,
            percent: (of > 0).then(|| count as f64 * 100.0 / of as f64),
            band: None,
        }
    }

    fn banded(self, band: fn(f64) -> Band) -> Self {
        Self {
            band: self.percent.map(band),
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeToRestore {
    /// Restores measured.
    pub samples: u64,
    /// Restores left out: restored before their alarm.
    pub discarded: u64,
    pub median_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    /// Of the median.
    pub band: Option<Band>,
}

impl TimeToRestore {
    fn of(restores: &[Restore]) -> Self {
        let mut durations: Vec<i64> = restores.iter().filter_map(Restore::duration_ms).collect();
        durations.sort_unstable();
        let median_ms = nearest_rank(&durations, 50.0);
        Self {
            samples: durations.len() as u64,
            discarded: (restores.len() - durations.len()) as u64,
            median_ms,
            p90_ms: nearest_rank(&durations, 90.0),
            band: median_ms.map(Band::of_time_to_restore),
        }
    }
}

/// The `p`th percentile of sorted values by nearest rank (the smallest value with at least
/// `p` % of the values at or below it).
fn nearest_rank(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Every figure of one function, or of the account, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub counts: Counts,
    pub deployment_frequency: DeploymentFrequency,
    pub change_failure_rate: Rate,
    pub rollback_rate: Rate,
    pub time_to_restore: TimeToRestore,
}

impl Figures {
    fn of(releases: &[&Release], window: &Window) -> Self {
        let mut counts = Counts::default();
        for r in releases {
            counts.add(r.outcome);
        }
        let restores: Vec<Restore> = releases.iter().filter_map(|r| r.restore).collect();
        let days = window.days();
        let per_day = counts.releases as f64 / days;
        Self {
            counts,
            deployment_frequency: DeploymentFrequency {
                releases: counts.releases,
                days,
                per_day,
                band: Band::of_frequency(per_day),
            },
            change_failure_rate: Rate::new(counts.failures(), counts.finished())
                .banded(Band::of_change_failure_rate),
            rollback_rate: Rate::new(counts.undone(), counts.finished()),
            time_to_restore: TimeToRestore::of(&restores),
        }
    }

    /// One sentence per figure, with the counts it comes from.
    pub fn explain(&self) -> Vec<String> {
        let f = &self.deployment_frequency;
        vec![
            format!(
                "deployment frequency: {:.2} a day ({} releases in {:.1} days; {})",
                f.per_day,
                f.releases,
                f.days,
                f.band.as_str()
            ),
            explain_rate(
                "change failure rate",
                &self.change_failure_rate,
                "failed, were stopped or rolled back",
            ),
            explain_rate(
                "rollback rate",
                &self.rollback_rate,
                "were rolled back or stopped by rollgate",
            ),
            explain_restore(&self.time_to_restore),
        ]
    }
}

fn explain_rate(name: &str, rate: &Rate, what: &str) -> String {
    let band = rate
        .band
        .map(|b| format!("; {}", b.as_str()))
        .unwrap_or_default();
    match rate.percent {
        Some(p) => format!(
            "{name}: {p:.1}% ({} of {} finished releases {what}{band})",
            rate.count, rate.of
        ),
        None => format!("{name}: none (no finished release)"),
    }
}

fn explain_restore(t: &TimeToRestore) -> String {
    let discarded = if t.discarded > 0 {
        format!("; {} discarded: restored before the alarm", t.discarded)
    } else {
        String::new()
    };
    match (t.median_ms, t.p90_ms, t.band) {
        (Some(median), Some(p90), Some(band)) => format!(
            "time to restore: median {}, p90 {} ({} restores{discarded}; {})",
            human_ms(median),
            human_ms(p90),
            t.samples,
            band.as_str()
        ),
        _ => format!("time to restore: none (no restore{discarded})"),
    }
}

/// A duration as people read it: `850ms`, `12.5s`, `4m05s`, `2h10m`, `3d04h`.
pub fn human_ms(ms: i64) -> String {
    const S: i64 = 1_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;
    if ms < S {
        format!("{ms}ms")
    } else if ms < M {
        format!("{:.1}s", ms as f64 / S as f64)
    } else if ms < H {
        format!("{}m{:02}s", ms / M, ms % M / S)
    } else if ms < DAY_MS {
        format!("{}h{:02}m", ms / H, ms % H / M)
    } else {
        format!("{}d{:02}h", ms / DAY_MS, ms % DAY_MS / H)
    }
}

/// One function's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionFigures {
    pub function: String,
    pub figures: Figures,
}

/// The figures of every function released in the window, and of the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub window: Window,
    /// Releases given but not in the window (left out of every figure).
    pub outside_window: u64,
    pub account: Figures,
    /// By function name.
    pub functions: Vec<FunctionFigures>,
}

/// The delivery metrics of `releases` over `window`.
pub fn summarize(releases: &[Release], window: Window) -> Summary {
    let inside: Vec<&Release> = releases
        .iter()
        .filter(|r| window.contains(r.at_ms))
        .collect();
    let mut by_function: BTreeMap<&str, Vec<&Release>> = BTreeMap::new();
    for r in &inside {
        by_function.entry(r.function.as_str()).or_default().push(r);
    }
    Summary {
        window,
        outside_window: (releases.len() - inside.len()) as u64,
        account: Figures::of(&inside, &window),
        functions: by_function
            .into_iter()
            .map(|(function, list)| FunctionFigures {
                function: function.to_owned(),
                figures: Figures::of(&list, &window),
            })
            .collect(),
    }
}

/// The EMF documents of a summary: one per function (dimension `Function`) and one for the
/// account (no dimension), in the namespace of [`Emf::rollgate`]. A figure without data is
/// left out of its document. The dashboard (infra/template.yaml) graphs these names.
pub fn emf(summary: &Summary) -> Vec<Emf> {
    let mut docs: Vec<Emf> = summary
        .functions
        .iter()
        .map(|f| function_document(&f.function, &f.figures, &summary.window))
        .collect();
    docs.push(account_document(&summary.account, &summary.window));
    docs
}

fn function_document(function: &str, x: &Figures, window: &Window) -> Emf {
    let doc = Emf::rollgate()
        .dimension("Function", function)
        .metric("Releases", x.counts.releases as f64, "Count")
        .metric(
            "DeploymentFrequency",
            x.deployment_frequency.per_day,
            "None",
        )
        .metric_opt(
            "ChangeFailureRate",
            x.change_failure_rate.percent,
            "Percent",
        )
        .metric_opt("RollbackRate", x.rollback_rate.percent, "Percent")
        .metric_opt(
            "TimeToRestoreP50",
            as_f64(x.time_to_restore.median_ms),
            "Milliseconds",
        )
        .metric_opt(
            "TimeToRestoreP90",
            as_f64(x.time_to_restore.p90_ms),
            "Milliseconds",
        )
        .metric("RestoreSamples", x.time_to_restore.samples as f64, "Count");
    evidence(doc, x, window)
}

fn account_document(x: &Figures, window: &Window) -> Emf {
    let doc = Emf::rollgate()
        .metric("Releases", x.counts.releases as f64, "Count")
        .metric(
            "DeploymentFrequency",
            x.deployment_frequency.per_day,
            "None",
        )
        .metric_opt(
            "ChangeFailureRate",
            x.change_failure_rate.percent,
            "Percent",
        )
        .metric_opt("RollbackRate", x.rollback_rate.percent, "Percent")
        .metric_opt(
            "TimeToRestoreP50",
            as_f64(x.time_to_restore.median_ms),
            "Milliseconds",
        )
        .metric_opt(
            "TimeToRestoreP90",
            as_f64(x.time_to_restore.p90_ms),
            "Milliseconds",
        )
        .metric("RestoreSamples", x.time_to_restore.samples as f64, "Count");
    evidence(doc, x, window)
}

fn as_f64(ms: Option<i64>) -> Option<f64> {
    ms.map(|v| v as f64)
}

/// The counts behind the figures and their bands, as searchable properties.
fn evidence(doc: Emf, x: &Figures, window: &Window) -> Emf {
    let band = |b: Option<Band>| b.map_or("", Band::as_str);
    doc.property("WindowStartMs", window.start_ms())
        .property("WindowEndMs", window.end_ms())
        .property("FinishedReleases", x.counts.finished())
        .property("ChangeFailures", x.counts.failures())
        .property("RolledBackOrStopped", x.counts.undone())
        .property("RestoresDiscarded", x.time_to_restore.discarded)
        .property(
            "DeploymentFrequencyBand",
            x.deployment_frequency.band.as_str(),
        )
        .property("ChangeFailureRateBand", band(x.change_failure_rate.band))
        .property("TimeToRestoreBand", band(x.time_to_restore.band))
}

/// Which documents [`emit`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The releases given are the whole account's: every function's document and the
    /// account's.
    Account,
    /// The releases given are some functions' only (say, one function's ledger rows read
    /// when its deployment ended): their documents, not an account figure made of them.
    Functions,
}

/// The documents of `summary` that `scope` allows: [`emf`], without the account's for
/// [`Scope::Functions`].
pub fn documents(summary: &Summary, scope: Scope) -> Vec<Emf> {
    let mut docs = emf(summary);
    if scope == Scope::Functions {
        docs.truncate(summary.functions.len());
    }
    docs
}

/// Compute the delivery metrics of `releases` over `window` and write their EMF documents
/// ([`documents`]) to stdout (Lambda's log, where CloudWatch extracts the metrics). The
/// summary is returned for the caller's log or answer.
pub fn emit(releases: &[Release], window: Window, scope: Scope) -> Summary {
    let summary = summarize(releases, window);
    for doc in documents(&summary, scope) {
        doc.emit();
    }
    summary
}

#[cfg(test)]
mod tests;
