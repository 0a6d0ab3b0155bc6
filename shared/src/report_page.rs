//! The report page of one deployment: a single self-contained HTML5 document that shows
//! what happened to a release and why, for `rollgate report DEPLOYMENT --html FILE`.
//!
//! [`ReportData`] is plain data (the CLI also prints it with `--json`): the deployment,
//! its timeline, every check with its expected and actual values and the component that
//! ran it, the new version's metrics against the old one's, and the decision.
//! [`render`] turns it into the page, purely:
//!
//! - everything is inline: the CSS in one `<style>` element, the charts as SVG drawn here;
//!   no script, font, image, frame or link to anything outside the page. Its
//!   Content-Security-Policy (`default-src 'none'`, the style allowed by its hash) forbids
//!   every fetch, so even a bug in the escaping could not load or run anything;
//! - every text from outside (names, reasons, alarm texts, check values) is HTML-escaped
//!   and cut to a bounded length ([`MAX_TEXT_CHARS`], [`MAX_NAME_CHARS`],
//!   [`MAX_VALUE_CHARS`]);
//! - the page's size is bounded: at most [`MAX_CHECKS`] checks (every failed and
//!   inconclusive one first), [`MAX_TIMELINE`] timeline entries, [`MAX_SERIES`] charts and
//!   [`MAX_POINTS`] points per line (the lowest and highest value of each interval); the
//!   page says what it left out;
//! - times are UTC, ISO 8601; a chart without data says "no data".

use crate::clock;
use crate::decision::{CheckResult, Decision, Outcome, Verdict};
use crate::limits;
use crate::rollback::ledger::{DeploymentKind, DeploymentRecord, ShiftJudgement, ShiftVerdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Checks shown at most; failed and inconclusive ones are kept first.
pub const MAX_CHECKS: usize = 300;
/// Timeline entries shown at most: the first and the last halves.
pub const MAX_TIMELINE: usize = 400;
/// Charts drawn at most.
pub const MAX_SERIES: usize = 8;
/// Points per line at most (each version's line of each chart).
pub const MAX_POINTS: usize = 600;
/// Timeline events marked on a chart at most.
pub const MAX_MARKERS: usize = 12;
/// Characters of a free text (a reason, a detail, a title) at most.
pub const MAX_TEXT_CHARS: usize = 1_000;
/// Characters of a name (function, alias, version, check, component, metric) at most.
pub const MAX_NAME_CHARS: usize = 200;
/// Characters of one expected or actual value at most (its JSON text: as many bytes).
pub const MAX_VALUE_CHARS: usize = 1_500;

/// Everything the page shows about one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    pub deployment_id: String,
    pub function: String,
    pub alias: String,
    /// The version the alias was on before.
    pub from_version: String,
    /// The version being released.
    pub to_version: String,
    /// The deployment's status as the ledger holds it (`Succeeded`, `Stopped`, ...).
    pub status: String,
    /// Who moved the alias (`codedeploy`, `rollout`, `api`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Who asked for the release, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// In any order: the page sorts it by time.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    #[serde(default)]
    pub checks: Vec<ReportCheck>,
    #[serde(default)]
    pub series: Vec<Series>,
    /// `None` while nothing has been decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<ReportDecision>,
    /// When the page was made, epoch milliseconds.
    pub generated_at_ms: i64,
}

/// What a timeline entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    /// Created, started or ended (CodeDeploy, a rollout, an alias call).
    Deployment,
    /// Traffic moved, or a judgement during the shift.
    Shift,
    /// A gate's decision (pre-traffic, post-traffic).
    Gate,
    Alarm,
    Rollback,
    Stop,
    /// A rollgate rollout's step or operator action.
    Rollout,
    Note,
}

impl TimelineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Deployment => "deployment",
            TimelineKind::Shift => "shift",
            TimelineKind::Gate => "gate",
            TimelineKind::Alarm => "alarm",
            TimelineKind::Rollback => "rollback",
            TimelineKind::Stop => "stop",
            TimelineKind::Rollout => "rollout",
            TimelineKind::Note => "note",
        }
    }

    /// Marked on the charts: the moments that explain a change in the lines.
    fn marked(self) -> bool {
        matches!(
            self,
            TimelineKind::Shift | TimelineKind::Alarm | TimelineKind::Rollback | TimelineKind::Stop
        )
    }
}

/// One moment of the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Epoch milliseconds.
    pub at_ms: i64,
    pub kind: TimelineKind,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How it went, when it was a judgement (a gate, a shift round, an action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

impl TimelineEntry {
    pub fn new(at_ms: i64, kind: TimelineKind, title: impl Into<String>) -> Self {
        TimelineEntry {
            at_ms,
            kind,
            title: title.into(),
            detail: None,
            outcome: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// One round of the judge during a CodeDeploy traffic shift (a `shift#` ledger row).
    pub fn from_shift(j: &ShiftJudgement) -> Self {
        let share = j
            .weight
            .map(|w| format!("{} % on the new version", fmt_num(w * 100.0)))
            .unwrap_or_else(|| "alias not split".to_owned());
        let verdict = match j.verdict {
            Some(ShiftVerdict::Pass) => "pass",
            Some(ShiftVerdict::Fail) => "fail",
            Some(ShiftVerdict::Inconclusive) => "inconclusive",
            Some(ShiftVerdict::Unread) => "metrics not read",
            None => "nothing judged",
        };
        let mut detail: Vec<String> = Vec::new();
        if !j.failed.is_empty() {
            detail.push(format!("failed: {}", j.failed.join(", ")));
        }
        detail.extend(j.detail.clone());
        detail.extend(j.stop.as_ref().map(|s| format!("stop: {s}")));
        let mut entry = TimelineEntry::new(
            j.at_ms,
            TimelineKind::Shift,
            format!("shift round {} ({share}): {verdict}", j.round),
        );
        entry.outcome = j.verdict.map(|v| match v {
            ShiftVerdict::Pass => Outcome::Pass,
            ShiftVerdict::Fail => Outcome::Fail,
            ShiftVerdict::Inconclusive | ShiftVerdict::Unread => Outcome::Inconclusive,
        });
        if !detail.is_empty() {
            entry.detail = Some(detail.join("; "));
        }
        entry
    }

    /// A gate's decision, at the time the caller knows it was made.
    pub fn from_decision(at_ms: i64, d: &Decision) -> Self {
        let outcome = match d.verdict {
            Verdict::Succeeded => Outcome::Pass,
            Verdict::Failed => Outcome::Fail,
        };
        TimelineEntry::new(
            at_ms,
            TimelineKind::Gate,
            format!("{}: {}", d.component, d.verdict.as_str()),
        )
        .with_detail(d.reason.clone())
        .with_outcome(outcome)
    }
}

/// One check, with the rollgate component that ran it (`pre-traffic-hook`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportCheck {
    pub component: String,
    pub check: CheckResult,
}

/// One metric over time, for both versions: `(epoch ms, value in unit)`, in any order.
/// Values that are not finite numbers are left out of the chart (and counted on it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// What is measured: `error rate`, `p99 latency`.
    pub metric: String,
    /// `%`, `ms`, `count`.
    pub unit: String,
    #[serde(default)]
    pub old: Vec<(i64, f64)>,
    #[serde(default)]
    pub new: Vec<(i64, f64)>,
}

/// How the deployment ended, in one line and one reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportDecision {
    /// What was done: `released`, `stopped`, `rolled back`, `none`.
    pub action: String,
    /// `pass`: the release stands; `fail`: it was stopped or undone; `inconclusive`:
    /// nothing decided either way.
    pub outcome: Outcome,
    pub reason: String,
    /// Which rollgate component decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<i64>,
}

impl ReportData {
    /// The page's frame for a ledger row: the deployment, and its creation, start and end
    /// on the timeline. The caller adds checks, series, other events and the decision.
    pub fn from_record(record: &DeploymentRecord, generated_at_ms: i64) -> Self {
        ReportData {
            deployment_id: record.deployment_id.clone(),
            function: record.function.clone(),
            alias: record.alias.clone(),
            from_version: record.from_version.clone(),
            to_version: record.to_version.clone(),
            status: record.status.as_str().to_owned(),
            origin: Some(record.origin.as_str().to_owned()),
            initiator: record.initiator.clone(),
            timeline: record_timeline(record),
            checks: Vec::new(),
            series: Vec::new(),
            decision: None,
            generated_at_ms,
        }
    }

    /// Every check of a decision, under the component that made it.
    pub fn add_decision_checks(&mut self, decision: &Decision) {
        self.add_checks(&decision.component, decision.checks.iter().cloned());
    }

    /// `checks`, each under `component` (the rollgate component that ran it).
    pub fn add_checks(&mut self, component: &str, checks: impl IntoIterator<Item = CheckResult>) {
        self.checks
            .extend(checks.into_iter().map(|check| ReportCheck {
                component: component.to_owned(),
                check,
            }));
    }
}

/// A ledger row's moments: created, started, ended.
pub fn record_timeline(record: &DeploymentRecord) -> Vec<TimelineEntry> {
    let what = match record.kind {
        DeploymentKind::Release => "release",
        DeploymentKind::Rollback => "rollback",
    };
    let mut out = vec![
        TimelineEntry::new(
            record.created_ms,
            TimelineKind::Deployment,
            format!("deployment created ({what}, {})", record.origin.as_str()),
        )
        .with_detail(format!(
            "{}:{} from version {} to {}",
            record.function, record.alias, record.from_version, record.to_version
        )),
    ];
    if let Some(at) = record.started_ms {
        out.push(TimelineEntry::new(
            at,
            TimelineKind::Deployment,
            "deployment started",
        ));
    }
    if let Some(at) = record.ended_ms {
        out.push(TimelineEntry::new(
            at,
            TimelineKind::Deployment,
            format!("deployment ended: {}", record.status.as_str()),
        ));
    }
    out
}

// ----------------------------------------------------------------------------------------
// Text

/// `text` safe as HTML text and as a quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newlines have no place in a page.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A name, cut and escaped.
fn name(text: &str) -> String {
    escape(&limits::cut(text, MAX_NAME_CHARS))
}

/// A free text, cut and escaped.
fn text(text: &str) -> String {
    escape(&limits::cut(text, MAX_TEXT_CHARS))
}

/// A duration as `+1h02m03s`, `+2m40s`, `+5s`.
fn offset(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("+{sec}s"),
        (0, min, sec) => format!("+{min}m{sec:02}s"),
        (h, min, sec) => format!("+{h}h{min:02}m{sec:02}s"),
    }
}

/// A number as people read it: no more digits than it deserves.
fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".to_owned();
    }
    let s = if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Inconclusive => "inconclusive",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

// ----------------------------------------------------------------------------------------
// The page

const CSS: &str = "\
:root{color-scheme:light;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--pass:#1a7f37;--fail:#cf222e;--unsure:#9a6700;--old:#57606a;--new:#d9480f}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1200px;padding:24px;font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
code,pre,time{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace;font-size:12px}
.sub,.meta,.note,figcaption{color:var(--muted)}.note{font-style:italic}
.decision{border:2px solid var(--line);border-radius:6px;padding:10px 14px;margin-top:16px}.decision h2{margin-top:0}
.decision.fail{border-color:var(--fail);background:#fff5f5}.decision.pass{border-color:var(--pass);background:#f4fbf6}.decision.inconclusive{border-color:var(--unsure);background:#fffbea}
.decision .action{font-size:18px;font-weight:600;margin:0 0 4px}.decision .reason{margin:0 0 4px;white-space:pre-wrap;overflow-wrap:anywhere}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff;background:var(--muted)}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}.badge.inconclusive{background:var(--unsure)}
ol.timeline{list-style:none;margin:0;padding:0 0 0 14px;border-left:3px solid var(--line)}
ol.timeline li{margin:0 0 10px;padding-left:8px;position:relative}
ol.timeline li::before{content:'';position:absolute;left:-22px;top:5px;width:11px;height:11px;border-radius:50%;background:var(--muted)}
li.outcome-pass::before{background:var(--pass)!important}li.outcome-fail::before{background:var(--fail)!important}li.outcome-inconclusive::before{background:var(--unsure)!important}
.kind{display:inline-block;min-width:78px;font-weight:600;text-transform:uppercase;font-size:11px;color:var(--muted)}
.since{display:inline-block;min-width:64px;color:var(--muted);font-size:12px;margin:0 6px}.title{font-weight:600;overflow-wrap:anywhere}
.detail{white-space:pre-wrap;overflow-wrap:anywhere;color:var(--fg)}li .detail{margin-top:2px;color:var(--muted)}
figure.chart{margin:0 0 18px}svg{max-width:100%;height:auto;font:11px system-ui,sans-serif}
svg .axis{stroke:#8c959f;stroke-width:1}svg .grid{stroke:#eaeef2;stroke-width:1}svg .tick{fill:var(--muted)}
svg .marker{stroke:#8250df;stroke-width:1;stroke-dasharray:3 3}svg .marker-label{fill:#8250df;font-size:10px}
.nodata{display:flex;align-items:center;justify-content:center;height:120px;border:1px dashed var(--line);color:var(--muted);font-size:16px}
table{border-collapse:collapse;width:100%;table-layout:fixed}th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa}td code{white-space:pre-wrap;word-break:break-word}tr.outcome-fail td{background:#fff5f5}tr.outcome-inconclusive td{background:#fffbea}
col.c-component{width:11%}col.c-name{width:17%}col.c-outcome{width:10%}col.c-expected{width:21%}col.c-actual{width:25%}col.c-detail{width:16%}
footer{margin-top:32px;color:var(--muted);font-size:12px}
";

/// The page's Content-Security-Policy: nothing may be fetched or run; the one `<style>`
/// element is allowed by its hash.
pub fn content_security_policy() -> String {
    let hash = base64(&Sha256::digest(CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; font-src 'none'; \
         script-src 'none'; connect-src 'none'; object-src 'none'; frame-src 'none'; \
         base-uri 'none'; form-action 'none'"
    )
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The whole page.
pub fn render(data: &ReportData) -> String {
    let mut page = String::with_capacity(64 * 1024);
    page.push_str(&head(data));
    page.push_str("<body>\n");
    page.push_str(&header_html(data));
    page.push_str(&decision_html(data));
    page.push_str(&timeline_html(data));
    page.push_str(&charts_html(data));
    page.push_str(&checks_html(data));
    page.push_str(
        "<footer>One self-contained page written by rollgate: no scripts, fonts, images or \
         requests of any kind (its Content-Security-Policy forbids them). Times are UTC, \
         ISO 8601.</footer>\n</body>\n</html>\n",
    );
    page
}

fn head(data: &ReportData) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>rollgate report: {} ({}:{})</title>\n<style>{CSS}</style>\n</head>\n",
        escape(&content_security_policy()),
        name(&data.deployment_id),
        name(&data.function),
        name(&data.alias),
    )
}

fn header_html(data: &ReportData) -> String {
    let mut sub = format!(
        "<span class=\"target\">{}:{}</span> · version <span class=\"from\">{}</span> → \
         <span class=\"to\">{}</span> · status <span class=\"status\">{}</span>",
        name(&data.function),
        name(&data.alias),
        name(&data.from_version),
        name(&data.to_version),
        name(&data.status),
    );
    if let Some(origin) = &data.origin {
        sub.push_str(&format!(" · made by {}", name(origin)));
    }
    if let Some(who) = &data.initiator {
        sub.push_str(&format!(" ({})", name(who)));
    }
    format!(
        "<header>\n<h1>Deployment <span id=\"deployment-id\">{}</span></h1>\n\
         <p class=\"sub\">{sub}</p>\n<p class=\"meta\">Report generated \
         <time datetime=\"{at}\">{at}</time>. All times UTC.</p>\n</header>\n",
        name(&data.deployment_id),
        at = clock::utc(data.generated_at_ms),
    )
}

fn decision_html(data: &ReportData) -> String {
    let Some(d) = &data.decision else {
        return "<section id=\"decision\" class=\"decision inconclusive\"><h2>Decision</h2>\
                <p class=\"action\">nothing decided yet</p></section>\n"
            .to_owned();
    };
    let mut by = String::new();
    if let Some(c) = &d.component {
        by.push_str(&format!("by {}", name(c)));
    }
    if let Some(at) = d.at_ms {
        by.push_str(&format!(
            " at <time datetime=\"{t}\">{t}</time>",
            t = clock::utc(at)
        ));
    }
    format!(
        "<section id=\"decision\" class=\"decision {o}\" data-outcome=\"{o}\">\
         <h2>Decision</h2>\n<p class=\"action\">{} <span class=\"badge {o}\">{o}</span></p>\n\
         <p class=\"reason\">{}</p>\n<p class=\"meta\">{by}</p>\n</section>\n",
        name(&d.action),
        text(&d.reason),
        o = outcome_str(d.outcome),
    )
}

/// Indices of the entries shown: all of them, or the first and the last halves.
fn kept_range(len: usize, max: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    if len <= max {
        return (0..len, len..len);
    }
    let head = max / 2;
    (0..head, len - (max - head)..len)
}

fn timeline_html(data: &ReportData) -> String {
    let mut entries: Vec<&TimelineEntry> = data.timeline.iter().collect();
    entries.sort_by_key(|e| e.at_ms);
    let mut out = String::from("<section id=\"timeline\"><h2>Timeline</h2>\n");
    if entries.is_empty() {
        out.push_str("<p class=\"nodata-text\">no events recorded</p>\n</section>\n");
        return out;
    }
    let start = entries[0].at_ms;
    let (first, last) = kept_range(entries.len(), MAX_TIMELINE);
    out.push_str("<ol class=\"timeline\">\n");
    for e in &entries[first.clone()] {
        out.push_str(&timeline_item(e, start));
    }
    if !last.is_empty() {
        out.push_str(&format!(
            "<li class=\"omitted note\">… {} left out (the page shows the first {} and \
             the last {}) …</li>\n",
            plural(entries.len() - first.len() - last.len(), "entry", "entries"),
            first.len(),
            last.len()
        ));
    }
    for e in &entries[last] {
        out.push_str(&timeline_item(e, start));
    }
    out.push_str("</ol>\n</section>\n");
    out
}

fn timeline_item(e: &TimelineEntry, start: i64) -> String {
    let kind = e.kind.as_str();
    let (class, badge) = match e.outcome {
        Some(o) => (
            format!(" outcome-{}", outcome_str(o)),
            format!(" <span class=\"badge {o}\">{o}</span>", o = outcome_str(o)),
        ),
        None => (String::new(), String::new()),
    };
    let detail = e
        .detail
        .as_deref()
        .map(|d| format!("<div class=\"detail\">{}</div>", text(d)))
        .unwrap_or_default();
    format!(
        "<li class=\"event kind-{kind}{class}\" data-kind=\"{kind}\">\
         <time datetime=\"{t}\">{t}</time><span class=\"since\">{}</span>\
         <span class=\"kind\">{kind}</span> <span class=\"title\">{}</span>{badge}{detail}</li>\n",
        offset(e.at_ms.saturating_sub(start)),
        text(&e.title),
        t = clock::utc(e.at_ms),
    )
}

// ----------------------------------------------------------------------------------------
// Checks

/// The checks shown, in their order: every one when they fit; else failed and
/// inconclusive ones first, then passed ones, up to `max`. Also how many were left out.
fn select_checks(checks: &[ReportCheck], max: usize) -> (Vec<&ReportCheck>, usize) {
    if checks.len() <= max {
        return (checks.iter().collect(), 0);
    }
    let mut keep: Vec<usize> = (0..checks.len())
        .filter(|&i| !checks[i].check.passed())
        .take(max)
        .collect();
    let room = max - keep.len();
    keep.extend(
        (0..checks.len())
            .filter(|&i| checks[i].check.passed())
            .take(room),
    );
    keep.sort_unstable();
    let shown = keep.iter().map(|&i| &checks[i]).collect();
    (shown, checks.len() - keep.len())
}

fn checks_html(data: &ReportData) -> String {
    let mut out = String::from("<section id=\"checks\"><h2>Checks</h2>\n");
    if data.checks.is_empty() {
        out.push_str("<p class=\"nodata-text\">no checks recorded</p>\n</section>\n");
        return out;
    }
    let count = |o| data.checks.iter().filter(|c| c.check.outcome == o).count();
    out.push_str(&format!(
        "<p class=\"summary\">{}: {} passed, {} failed, {} inconclusive.</p>\n",
        plural(data.checks.len(), "check", "checks"),
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Inconclusive)
    ));
    let (shown, omitted) = select_checks(&data.checks, MAX_CHECKS);
    if omitted > 0 {
        out.push_str(&format!(
            "<p class=\"note omitted\">The page shows {} of {} checks (at most \
             {MAX_CHECKS}): every failed and inconclusive one first, then passed ones; {} left \
             out.</p>\n",
            shown.len(),
            data.checks.len(),
            omitted
        ));
    }
    out.push_str(
        "<table>\n<colgroup><col class=\"c-component\"><col class=\"c-name\">\
         <col class=\"c-outcome\"><col class=\"c-expected\"><col class=\"c-actual\">\
         <col class=\"c-detail\"></colgroup>\n<thead><tr><th>component</th><th>check</th>\
         <th>outcome</th><th>expected</th><th>actual</th><th>detail</th></tr></thead>\n<tbody>\n",
    );
    for c in shown {
        out.push_str(&check_row(c));
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}

fn check_row(c: &ReportCheck) -> String {
    let o = outcome_str(c.check.outcome);
    let mut detail = c.check.detail.as_deref().map(text).unwrap_or_default();
    if c.check.duration_ms > 0 {
        if !detail.is_empty() {
            detail.push(' ');
        }
        detail.push_str(&format!(
            "<span class=\"took\">(took {} ms)</span>",
            c.check.duration_ms
        ));
    }
    format!(
        "<tr class=\"check outcome-{o}\" data-outcome=\"{o}\"><td class=\"component\">{}</td>\
         <td class=\"name\"><code>{}</code></td><td class=\"outcome\">\
         <span class=\"badge {o}\">{o}</span></td><td class=\"expected\">{}</td>\
         <td class=\"actual\">{}</td><td class=\"detail\">{detail}</td></tr>\n",
        name(&c.component),
        name(&c.check.name),
        value_html(&c.check.expected),
        value_html(&c.check.actual),
    )
}

/// An expected or actual value: a string as it is, anything else as JSON (pretty when
/// long), cut to [`MAX_VALUE_CHARS`].
fn value_html(v: &Value) -> String {
    let shown = match v {
        Value::String(s) => limits::cut(s, MAX_VALUE_CHARS),
        other => {
            let long = serde_json::to_string(other).map_or(0, |s| s.len()) > 80;
            limits::fit_json(other, MAX_VALUE_CHARS, long)
        }
    };
    format!("<code>{}</code>", escape(&shown))
}

// ----------------------------------------------------------------------------------------
// Charts

/// The SVG's size and the plot area inside it, in SVG units.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 44.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

/// One version's line, ready to draw.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    /// Finite points, by time, downsampled to at most [`MAX_POINTS`].
    points: Vec<(i64, f64)>,
    /// Finite points given.
    given: usize,
    /// Points left out because their value was not a finite number.
    not_finite: usize,
}

impl Line {
    fn new(raw: &[(i64, f64)]) -> Self {
        let mut points: Vec<(i64, f64)> =
            raw.iter().copied().filter(|(_, v)| v.is_finite()).collect();
        points.sort_by_key(|p| p.0);
        let given = points.len();
        Line {
            points: downsample(&points, MAX_POINTS),
            given,
            not_finite: raw.len() - given,
        }
    }
}

/// At most `max` points of `points` (sorted by time): the lowest and the highest value
/// of each of `max / 2` runs of consecutive points, in time order, so that a spike
/// survives.
fn downsample(points: &[(i64, f64)], max: usize) -> Vec<(i64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    if max < 2 {
        return points[..max].to_vec();
    }
    let run = points.len().div_ceil(max / 2);
    let mut out = Vec::with_capacity(max);
    for chunk in points.chunks(run) {
        let lo = (0..chunk.len())
            .min_by(|&a, &b| chunk[a].1.total_cmp(&chunk[b].1))
            .unwrap_or(0);
        let hi = (0..chunk.len())
            .max_by(|&a, &b| chunk[a].1.total_cmp(&chunk[b].1))
            .unwrap_or(0);
        out.push(chunk[lo.min(hi)]);
        if lo != hi {
            out.push(chunk[lo.max(hi)]);
        }
    }
    out
}

/// The smallest of 1, 2, 2.5 and 5 times a power of ten that is at least `v` (> 0); `v`
/// itself when that is beyond the largest number.
fn nice_ceil(v: f64) -> f64 {
    if !(v > 0.0 && v.is_finite()) {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|n| v <= n * (1.0 + 1e-9))
        .filter(|n| n.is_finite())
        .unwrap_or(v)
}

/// Where the data sit on the plot: time `t0..t1` across, value `v0..v1` up.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Frame {
    t0: i64,
    t1: i64,
    v0: f64,
    v1: f64,
}

impl Frame {
    /// The frame around every point of both lines (at least one point); a single instant
    /// gets a minute around it, values start at zero unless one is negative.
    fn around(lines: &[&Line]) -> Self {
        let (mut t0, mut t1) = (i64::MAX, i64::MIN);
        let (mut lo, mut hi) = (0f64, 0f64);
        for &(t, v) in lines.iter().flat_map(|l| l.points.iter()) {
            (t0, t1) = (t0.min(t), t1.max(t));
            (lo, hi) = (lo.min(v), hi.max(v));
        }
        if t0 >= t1 {
            (t0, t1) = (t0.saturating_sub(30_000), t0.saturating_add(30_000));
        }
        let v0 = if lo < 0.0 { -nice_ceil(-lo) } else { 0.0 };
        let v1 = if hi > 0.0 { nice_ceil(hi) } else { v0 + 1.0 };
        Frame { t0, t1, v0, v1 }
    }

    fn x(&self, t: i64) -> f64 {
        let (from_start, span) = (
            i128::from(t) - i128::from(self.t0),
            i128::from(self.t1) - i128::from(self.t0),
        );
        LEFT + from_start as f64 / span as f64 * PLOT_W
    }

    /// Halves first, so that values near the largest number do not overflow.
    fn y(&self, v: f64) -> f64 {
        TOP + PLOT_H - (v / 2.0 - self.v0 / 2.0) / (self.v1 / 2.0 - self.v0 / 2.0) * PLOT_H
    }

    /// The value at `i` quarters of the value range.
    fn value_at(&self, i: u8) -> f64 {
        let f = f64::from(i) / 4.0;
        self.v0 * (1.0 - f) + self.v1 * f
    }

    /// The instant at `i` quarters of the time span.
    fn quarter(&self, i: i64) -> i64 {
        let span = i128::from(self.t1) - i128::from(self.t0);
        (i128::from(self.t0) + span * i128::from(i) / 4) as i64
    }
}

fn charts_html(data: &ReportData) -> String {
    let mut out = String::from("<section id=\"charts\"><h2>New version against old</h2>\n");
    if data.series.is_empty() {
        out.push_str("<p class=\"nodata-text\">no metrics recorded</p>\n</section>\n");
        return out;
    }
    let mut markers: Vec<&TimelineEntry> =
        data.timeline.iter().filter(|e| e.kind.marked()).collect();
    markers.sort_by_key(|e| e.at_ms);
    for s in data.series.iter().take(MAX_SERIES) {
        out.push_str(&chart_html(s, data, &markers));
    }
    if data.series.len() > MAX_SERIES {
        out.push_str(&format!(
            "<p class=\"note omitted\">{} left out (the page draws at most {MAX_SERIES}).</p>\n",
            plural(data.series.len() - MAX_SERIES, "chart", "charts")
        ));
    }
    out.push_str("</section>\n");
    out
}

fn chart_html(s: &Series, data: &ReportData, markers: &[&TimelineEntry]) -> String {
    let (old, new) = (Line::new(&s.old), Line::new(&s.new));
    let title = format!("{} ({})", name(&s.metric), name(&s.unit));
    let body = if old.points.is_empty() && new.points.is_empty() {
        "<div class=\"nodata\">no data</div>".to_owned()
    } else {
        chart_svg(s, data, &old, &new, markers)
    };
    let mut notes = Vec::new();
    for (which, line) in [("old", &old), ("new", &new)] {
        if line.points.len() < line.given {
            notes.push(format!(
                "{which}: {} points drawn as {} (the lowest and highest of each interval)",
                line.given,
                line.points.len()
            ));
        }
        if line.not_finite > 0 {
            notes.push(format!(
                "{which}: {} left out",
                plural(
                    line.not_finite,
                    "value that is not a number",
                    "values that are not numbers"
                )
            ));
        }
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!("<span class=\"note omitted\"> {}.</span>", notes.join("; "))
    };
    format!(
        "<figure class=\"chart\" data-metric=\"{}\">{body}\n<figcaption><strong>{title}</strong>: \
         version {} (old, dashed) against version {} (new, solid), {} and {} points.{notes}\
         </figcaption></figure>\n",
        name(&s.metric),
        name(&data.from_version),
        name(&data.to_version),
        old.given,
        new.given,
    )
}

fn path_d(frame: &Frame, points: &[(i64, f64)]) -> String {
    let mut d = String::with_capacity(points.len() * 16);
    for (i, &(t, v)) in points.iter().enumerate() {
        d.push_str(if i == 0 { "M" } else { " L" });
        d.push_str(&format!("{:.1},{:.1}", frame.x(t), frame.y(v)));
    }
    d
}

fn chart_svg(
    s: &Series,
    data: &ReportData,
    old: &Line,
    new: &Line,
    markers: &[&TimelineEntry],
) -> String {
    let frame = Frame::around(&[old, new]);
    let mut svg = format!(
        "<svg class=\"chart-svg\" viewBox=\"0 0 {WIDTH} \
         {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{} of \
         version {} against version {}\">\n",
        name(&s.metric),
        name(&data.to_version),
        name(&data.from_version),
    );
    svg.push_str(&axes_svg(&frame, &s.unit));
    svg.push_str(&markers_svg(&frame, markers));
    for (class, line, color, dash) in [
        ("old", old, "#57606a", " stroke-dasharray=\"6 4\""),
        ("new", new, "#d9480f", ""),
    ] {
        if line.points.is_empty() {
            continue;
        }
        svg.push_str(&format!(
            "<path class=\"series {class}\" d=\"{}\" fill=\"none\" stroke=\"{color}\" \
             stroke-width=\"2\" stroke-linejoin=\"round\"{dash}/>\n",
            path_d(&frame, &line.points)
        ));
        if line.points.len() <= 60 {
            for &(t, v) in &line.points {
                svg.push_str(&format!(
                    "<circle class=\"point {class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" \
                     fill=\"{color}\"/>",
                    frame.x(t),
                    frame.y(v)
                ));
            }
            svg.push('\n');
        }
    }
    svg.push_str(&legend_svg(data, old, new));
    svg.push_str("</svg>");
    svg
}

fn axes_svg(frame: &Frame, unit: &str) -> String {
    let (bottom, right) = (TOP + PLOT_H, LEFT + PLOT_W);
    let mut out = String::new();
    for i in 0..=4 {
        let v = frame.value_at(i);
        let y = frame.y(v);
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/>\
             <text class=\"tick y\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            LEFT - 6.0,
            y + 4.0,
            escape(&fmt_num(v))
        ));
    }
    let span = frame.t1.saturating_sub(frame.t0);
    for i in 0..=4 {
        let t = frame.quarter(i);
        let iso = clock::utc(t);
        // hh:mm, or hh:mm:ss when the span is under ten minutes.
        let label = if span < 600_000 {
            &iso[11..19]
        } else {
            &iso[11..16]
        };
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        out.push_str(&format!(
            "<text class=\"tick x\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{label}</text>\n",
            frame.x(t),
            bottom + 16.0
        ));
    }
    out.push_str(&format!(
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/>\n\
         <text class=\"tick unit\" x=\"{LEFT}\" y=\"{:.1}\">{}</text>\
         <text class=\"tick span\" x=\"{right}\" y=\"{:.1}\" text-anchor=\"end\">UTC, {} to {}</text>\n",
        TOP - 6.0,
        name(unit),
        bottom + 34.0,
        clock::utc(frame.t0),
        clock::utc(frame.t1),
    ));
    out
}

fn markers_svg(frame: &Frame, markers: &[&TimelineEntry]) -> String {
    let mut out = String::new();
    let mut last_label = f64::NEG_INFINITY;
    let inside = markers
        .iter()
        .filter(|e| e.at_ms >= frame.t0 && e.at_ms <= frame.t1)
        .take(MAX_MARKERS);
    for e in inside {
        let x = frame.x(e.at_ms);
        out.push_str(&format!(
            "<line class=\"marker\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{}\">\
             <title>{} {}: {}</title></line>",
            TOP + PLOT_H,
            clock::utc(e.at_ms),
            e.kind.as_str(),
            text(&e.title)
        ));
        // Labels closer than 48 units to the previous one would overlap it.
        if x - last_label >= 48.0 {
            out.push_str(&format!(
                "<text class=\"marker-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 3.0,
                TOP + 10.0,
                e.kind.as_str()
            ));
            last_label = x;
        }
        out.push('\n');
    }
    out
}

fn legend_svg(data: &ReportData, old: &Line, new: &Line) -> String {
    let label = |which: &str, version: &str, line: &Line| {
        let none = if line.points.is_empty() {
            " (no data)"
        } else {
            ""
        };
        format!(
            "{which}: version {}{none}",
            escape(&limits::cut(version, 40))
        )
    };
    let (x_old, x_new) = (LEFT + 150.0, LEFT + 400.0);
    format!(
        "<g class=\"legend\"><line x1=\"{x_old}\" y1=\"10\" x2=\"{}\" y2=\"10\" stroke=\"#57606a\" \
         stroke-width=\"2\" stroke-dasharray=\"6 4\"/><text class=\"legend-old\" x=\"{}\" \
         y=\"14\">{}</text><line x1=\"{x_new}\" y1=\"10\" x2=\"{}\" y2=\"10\" stroke=\"#d9480f\" \
         stroke-width=\"2\"/><text class=\"legend-new\" x=\"{}\" y=\"14\">{}</text></g>\n",
        x_old + 24.0,
        x_old + 30.0,
        label("old", &data.from_version, old),
        x_new + 24.0,
        x_new + 30.0,
        label("new", &data.to_version, new),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollback::ledger::{DeploymentStatus, Origin};
    use serde_json::json;

    fn bare() -> ReportData {
        ReportData {
            deployment_id: "d-TEST".into(),
            function: "orders".into(),
            alias: "live".into(),
            from_version: "6".into(),
            to_version: "7".into(),
            status: "Stopped".into(),
            origin: None,
            initiator: None,
            timeline: Vec::new(),
            checks: Vec::new(),
            series: Vec::new(),
            decision: None,
            generated_at_ms: 1_796_418_000_000,
        }
    }

    fn series(old: Vec<(i64, f64)>, new: Vec<(i64, f64)>) -> Series {
        Series {
            metric: "error rate".into(),
            unit: "%".into(),
            old,
            new,
        }
    }

    fn check(component: &str, name: &str, outcome: Outcome) -> ReportCheck {
        ReportCheck {
            component: component.into(),
            check: CheckResult::new(name, outcome, json!("want"), json!("got")),
        }
    }

    /// The `d` attribute of the first path of class `series <which>`.
    fn path_of(page: &str, which: &str) -> Option<String> {
        let start = page.find(&format!("class=\"series {which}\" d=\""))?;
        let rest = &page[start..];
        let d = &rest[rest.find("d=\"")? + 3..];
        Some(d[..d.find('"')?].to_owned())
    }

    #[test]
    fn times_are_utc_iso_8601() {
        let mut data = bare();
        data.timeline = vec![TimelineEntry::new(
            951_868_799_999,
            TimelineKind::Note,
            "leap",
        )];
        let page = render(&data);
        assert!(
            page.contains("<time datetime=\"2026-12-04T21:00:00Z\">2026-12-04T21:00:00Z</time>")
        );
        assert!(page.contains("<time datetime=\"2000-02-29T23:59:59Z\">"));
        // Far outside any real date: still a page, never a panic.
        data.generated_at_ms = i64::MIN;
        data.timeline[0].at_ms = i64::MAX;
        data.timeline
            .push(TimelineEntry::new(i64::MIN, TimelineKind::Alarm, "first"));
        data.series = vec![
            series(vec![(i64::MIN, 1.0)], vec![(i64::MAX, f64::MAX)]),
            series(vec![(i64::MAX, 1.0)], vec![(i64::MAX - 1, -f64::MAX)]),
            series(
                vec![(0, f64::MAX), (1, -f64::MAX)],
                vec![(0, f64::MIN_POSITIVE)],
            ),
        ];
        let page = render(&data);
        assert!(page.contains("</html>"));
        assert!(!page.contains("NaN") && !page.contains("inf"), "{page}");
    }

    #[test]
    fn untrusted_text_is_escaped_everywhere() {
        let evil = "<script>window.pwned=1</script><img src=x onerror=\"alert('x')\">&";
        let mut data = bare();
        data.function = format!("fn{evil}");
        data.deployment_id = evil.into();
        data.timeline = vec![
            TimelineEntry::new(1_000, TimelineKind::Alarm, evil)
                .with_detail(evil)
                .with_outcome(Outcome::Fail),
        ];
        data.checks = vec![ReportCheck {
            component: evil.into(),
            check: CheckResult::fail(evil, json!(evil), json!({ "reason": evil }))
                .with_detail(evil),
        }];
        data.series = vec![Series {
            metric: evil.into(),
            unit: evil.into(),
            old: vec![(0, 1.0), (1_000, 2.0)],
            new: vec![(0, 1.0), (1_000, 3.0)],
        }];
        data.decision = Some(ReportDecision {
            action: evil.into(),
            outcome: Outcome::Fail,
            reason: format!("alarm said {evil}"),
            component: Some(evil.into()),
            at_ms: Some(1_000),
        });
        let page = render(&data);
        for raw in ["<script", "<img", "onerror=\"", "alert('x')"] {
            assert!(!page.contains(raw), "{raw} left unescaped");
        }
        assert!(page.contains(
            "alarm said &lt;script&gt;window.pwned=1&lt;/script&gt;&lt;img src=x \
             onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;"
        ));
        // In an attribute, the quote cannot end it.
        assert!(page.contains("data-metric=\"&lt;script&gt;"));
        assert_eq!(escape("a\u{0}b\u{1b}c\td"), "a\u{fffd}b\u{fffd}c\td");
    }

    #[test]
    fn the_page_forbids_every_fetch_and_allows_only_its_style() {
        let mut data = bare();
        data.series = vec![series(vec![(0, 1.0), (1_000, 2.0)], vec![(0, 3.0)])];
        data.timeline = vec![TimelineEntry::new(500, TimelineKind::Alarm, "alarm")];
        let page = render(&data);
        let csp = content_security_policy();
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(page.contains(&format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
            escape(&csp)
        )));
        let hash = base64(&Sha256::digest(CSS.as_bytes()));
        assert!(csp.contains(&hash));
        assert!(page.contains(&format!("<style>{CSS}</style>")));
        for fetches in [
            "<script", "<link", "<img", "<iframe", "url(", "@import", "http:", "https:",
        ] {
            assert!(!page.contains(fetches), "the page names {fetches}");
        }
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn a_two_point_series_lands_where_computed_by_hand() {
        // Plot area: x 64..704 (640 wide), y 28..216 (188 high). Values 0..2 (2 is the
        // nice ceiling of the largest value), time 0..60 s.
        let mut data = bare();
        data.generated_at_ms = 0;
        data.series = vec![series(
            vec![(60_000, 1.0), (0, 0.0)], // out of order on purpose
            vec![(0, 0.5), (60_000, 2.0)],
        )];
        let page = render(&data);
        // old: (0 s, 0) -> (64, 216); (60 s, 1) -> (704, 216 - 188/2 = 122).
        assert_eq!(path_of(&page, "old").unwrap(), "M64.0,216.0 L704.0,122.0");
        // new: (0 s, 0.5) -> (64, 216 - 47 = 169); (60 s, 2) -> (704, 28).
        assert_eq!(path_of(&page, "new").unwrap(), "M64.0,169.0 L704.0,28.0");
        assert!(page.contains("<circle class=\"point new\" cx=\"704.0\" cy=\"28.0\""));
        // Value ticks every quarter of 0..2, time ticks to the second (span under 10 min).
        for (v, y) in [
            ("0", "220.0"),
            ("0.5", "173.0"),
            ("1", "126.0"),
            ("2", "32.0"),
        ] {
            assert!(
                page.contains(&format!("y=\"{y}\" text-anchor=\"end\">{v}</text>")),
                "tick {v}"
            );
        }
        assert!(page.contains("text-anchor=\"start\">00:00:00</text>"));
        assert!(page.contains("text-anchor=\"middle\">00:00:30</text>"));
        assert!(page.contains("text-anchor=\"end\">00:01:00</text>"));
        assert!(page.contains("UTC, 1970-01-01T00:00:00Z to 1970-01-01T00:01:00Z"));
        assert!(page.contains(">old: version 6</text>"));
        assert!(page.contains(">new: version 7</text>"));
        assert!(page.contains("stroke-dasharray=\"6 4\""));
    }

    #[test]
    fn frames_start_at_zero_and_widen_a_single_instant() {
        let one = Line::new(&[(90_000, 4.0)]);
        let f = Frame::around(&[&one]);
        assert_eq!((f.t0, f.t1, f.v0, f.v1), (60_000, 120_000, 0.0, 5.0));
        assert_eq!(format!("{:.1},{:.1}", f.x(90_000), f.y(4.0)), "384.0,65.6");
        let negative = Line::new(&[(0, -3.0), (10, 1.5)]);
        let f = Frame::around(&[&negative]);
        assert_eq!((f.v0, f.v1), (-5.0, 2.0));
        let zeros = Line::new(&[(0, 0.0), (10, 0.0)]);
        assert_eq!(Frame::around(&[&zeros]).v1, 1.0);
        for (v, nice) in [
            (0.9, 1.0),
            (1.0, 1.0),
            (1.2, 2.0),
            (2.2, 2.5),
            (3.0, 5.0),
            (7.0, 10.0),
            (120.0, 200.0),
        ] {
            assert_eq!(nice_ceil(v), nice, "{v}");
        }
        assert!((nice_ceil(0.013) - 0.02).abs() < 1e-12);
    }

    #[test]
    fn no_data_says_so() {
        let page = render(&bare());
        for says in [
            "nothing decided yet",
            "no events recorded",
            "no metrics recorded",
            "no checks recorded",
        ] {
            assert!(page.contains(says), "{says}");
        }
        let mut data = bare();
        data.series = vec![
            series(vec![], vec![]),
            series(vec![(0, f64::NAN)], vec![(0, f64::INFINITY)]),
        ];
        let page = render(&data);
        assert_eq!(
            page.matches("<div class=\"nodata\">no data</div>").count(),
            2
        );
        assert!(!page.contains("<svg"));
        assert!(page.contains("old: 1 value that is not a number left out"));
        // One version without data: its line is missing and the legend says why.
        data.series = vec![series(vec![], vec![(0, 1.0), (1_000, 2.0)])];
        let page = render(&data);
        assert!(path_of(&page, "old").is_none());
        assert!(path_of(&page, "new").is_some());
        assert!(page.contains("old: version 6 (no data)"));
    }

    #[test]
    fn the_timeline_is_in_time_order() {
        let mut data = bare();
        data.timeline = vec![
            TimelineEntry::new(3_000, TimelineKind::Rollback, "third"),
            TimelineEntry::new(1_000, TimelineKind::Deployment, "first"),
            TimelineEntry::new(2_000, TimelineKind::Alarm, "second"),
        ];
        let page = render(&data);
        let at = |s: &str| page.find(&format!(">{s}</span>")).unwrap();
        assert!(at("first") < at("second") && at("second") < at("third"));
        assert!(page.contains("<time datetime=\"1970-01-01T00:00:02Z\">"));
        assert!(page.contains("<span class=\"since\">+2s</span>"));
        assert_eq!(offset(3_723_000), "+1h02m03s");
        assert_eq!(offset(160_000), "+2m40s");
    }

    #[test]
    fn thousands_of_checks_events_and_points_stay_bounded() {
        let mut data = bare();
        data.checks = (0..5_000)
            .map(|i| {
                let outcome = if i % 100 == 7 {
                    Outcome::Fail
                } else {
                    Outcome::Pass
                };
                check("post-traffic-hook", &format!("check-{i}"), outcome)
            })
            .collect();
        data.timeline = (0..5_000)
            .map(|i| TimelineEntry::new(i * 1_000, TimelineKind::Note, format!("event-{i}")))
            .collect();
        let mut spiky: Vec<(i64, f64)> = (0..100_000).map(|i| (i * 1_000, 1.0)).collect();
        spiky[50_003].1 = 50.0;
        data.series = vec![series(spiky.clone(), spiky); 10];
        data.decision = Some(ReportDecision {
            action: "rolled back".into(),
            outcome: Outcome::Fail,
            reason: "x".repeat(100_000),
            component: None,
            at_ms: None,
        });
        let page = render(&data);
        assert_eq!(page.matches("<tr class=\"check").count(), MAX_CHECKS);
        // Every failed check is among those shown, in order.
        assert_eq!(page.matches("<tr class=\"check outcome-fail").count(), 50);
        assert!(page.contains(">check-4907</code>"));
        assert!(page.contains("The page shows 300 of 5000 checks"));
        assert!(page.contains("4700 left out"));
        assert_eq!(page.matches("<li class=\"event").count(), MAX_TIMELINE);
        assert!(page.contains(">event-0</span>") && page.contains(">event-4999</span>"));
        assert!(!page.contains(">event-2500</span>"));
        assert!(page.contains("4600 entries left out"));
        assert_eq!(page.matches("<figure class=\"chart\"").count(), MAX_SERIES);
        assert!(page.contains("2 charts left out"));
        let d = path_of(&page, "new").unwrap();
        assert!(d.matches(['M', 'L']).count() <= MAX_POINTS);
        // The spike survives: the top of the plot (50 is its nice ceiling).
        assert!(d.contains(",28.0"), "the spike was lost");
        assert!(page.contains("100000 points drawn as"));
        assert!(page.contains("[cut by rollgate: 100000 characters in all]"));
        assert!(page.len() < 4_000_000, "{} bytes", page.len());
    }

    #[test]
    fn downsampling_keeps_the_extremes_in_time_order() {
        let mut points: Vec<(i64, f64)> = (0..10_000).map(|i| (i, (i % 7) as f64)).collect();
        points[5_003].1 = -9.0;
        points[7_777].1 = 99.0;
        let out = downsample(&points, MAX_POINTS);
        assert!(out.len() <= MAX_POINTS && out.len() > MAX_POINTS / 2);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(out.contains(&(5_003, -9.0)) && out.contains(&(7_777, 99.0)));
        assert_eq!(downsample(&points[..10], MAX_POINTS), points[..10].to_vec());
        assert_eq!(downsample(&points, 1).len(), 1);
    }

    #[test]
    fn values_are_shown_as_text_or_bounded_json() {
        assert_eq!(value_html(&json!("Active")), "<code>Active</code>");
        assert_eq!(
            value_html(&json!({"a": 1})),
            "<code>{&quot;a&quot;:1}</code>"
        );
        assert_eq!(value_html(&json!(null)), "<code>null</code>");
        let big = json!({ "body": "y".repeat(50_000) });
        let shown = value_html(&big);
        assert!(shown.len() < MAX_VALUE_CHARS + 200, "{}", shown.len());
        assert!(shown.contains("cut by rollgate"));
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(12.345), "12.3");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1500.0), "1500");
        assert_eq!(fmt_num(f64::NAN), "n/a");
    }

    #[test]
    fn the_ledger_and_decisions_fill_the_data_and_it_round_trips_as_json() {
        // From JSON, as the ledger's row reads: fields added later with defaults fit.
        let record: DeploymentRecord = serde_json::from_value(json!({
            "deployment_id": "d-1", "application": "app", "deployment_group": "group",
            "function": "orders", "alias": "live", "from_version": "6", "to_version": "7",
            "status": "Stopped", "kind": "release", "created_ms": 1_000,
            "started_ms": 2_000, "ended_ms": 9_000, "origin": "code_deploy"
        }))
        .unwrap();
        assert_eq!(record.status, DeploymentStatus::Stopped);
        assert_eq!(record.origin, Origin::CodeDeploy);
        let mut data = ReportData::from_record(&record, 10_000);
        assert_eq!(data.status, "Stopped");
        assert_eq!(data.timeline.len(), 3);
        assert_eq!(data.timeline[2].title, "deployment ended: Stopped");
        let mut round = ShiftJudgement::new(5_000, 2, Some(0.1));
        round.verdict = Some(ShiftVerdict::Fail);
        round.failed = vec!["canary.error_rate".into()];
        let entry = TimelineEntry::from_shift(&round);
        assert_eq!(entry.title, "shift round 2 (10 % on the new version): fail");
        assert_eq!(entry.outcome, Some(Outcome::Fail));
        assert_eq!(entry.detail.as_deref(), Some("failed: canary.error_rate"));
        data.timeline.push(entry);
        let decision = Decision {
            component: "pre-traffic-hook".into(),
            verdict: Verdict::Succeeded,
            reason: "all 2 checks passed".into(),
            deployment_id: Some("d-1".into()),
            function_name: None,
            alias: None,
            current_version: None,
            target_version: None,
            policy_source: None,
            checks: vec![
                CheckResult::pass("config.state", json!("Active"), json!("Active")),
                CheckResult::pass("config.architecture", json!("arm64"), json!("arm64")),
            ],
            duration_ms: 3,
        };
        data.timeline
            .push(TimelineEntry::from_decision(1_500, &decision));
        data.add_decision_checks(&decision);
        assert_eq!(data.checks[1].component, "pre-traffic-hook");
        assert_eq!(data.checks[1].check.name, "config.architecture");
        data.series = vec![series(vec![(0, 0.5)], vec![(0, 1.5)])];
        let text = serde_json::to_string(&data).unwrap();
        let back: ReportData = serde_json::from_str(&text).unwrap();
        assert_eq!(back, data);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["timeline"][3]["kind"], "shift");
        assert_eq!(v["checks"][0]["check"]["outcome"], "pass");
        assert_eq!(v["series"][0]["old"], json!([[0, 0.5]]));
        assert!(render(&back).contains("pre-traffic-hook: Succeeded"));
    }
}
