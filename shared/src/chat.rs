//! Chat cards: a decision in the custom notification format of Amazon Q Developer in chat
//! applications (formerly AWS Chatbot), so that a Slack or Microsoft Teams channel
//! subscribed to the chat topic shows a readable card: what was decided about which
//! release and why, with the numbers, what to do next, and keywords.
//!
//! The format and its limits are `schema/chat-notification.schema.json`; its `$comment`
//! says which of them were read on AWS's page
//! (<https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>) and which
//! rest on copies of it. The service drops a message that is not in the format without an
//! error, so every limit is kept here whatever the decision holds: text too long for its
//! field is cut and marked ([`crate::limits::cut`]), lists are capped, and the card always
//! fits one SNS message. Where no limit is known (how many next steps, keywords, related
//! resources; how long a thread id or a summary), rollgate keeps its own, small one.
//!
//! Text that comes from outside (alarm reasons, smoke-test answers, check names, function
//! names from an AppSpec) is shown with the characters that would make it a mention, a
//! link or a code block replaced ([`plain`]); values are shown as inline code.
//!
//! Pure: [`card`] takes the decision, the attributes it is announced with and the home
//! its ARNs are written in; the SNS adapter publishes the result.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::decision::{CheckResult, Decision, Outcome, Verdict};
use crate::limits::{SNS_MESSAGE_MAX_BYTES, cut};
use crate::scope::Home;

/// `version`: the only one the format has.
pub const VERSION: &str = "1.0";
/// `source` of a custom notification.
pub const SOURCE: &str = "custom";
/// `content.textType`: rendered in the chat application's own markdown.
pub const TEXT_TYPE: &str = "client-markdown";

/// `content.title`: at most 250 characters (the format's limit, as the schema records it).
pub const TITLE_MAX_CHARS: usize = 250;
/// `content.description`: at most 8000 characters (the format's limit).
pub const DESCRIPTION_MAX_CHARS: usize = 8000;
/// Each of `content.nextSteps`: at most 350 characters (the format's limit).
pub const NEXT_STEP_MAX_CHARS: usize = 350;
/// Each of `content.keywords`: at most 75 characters (the format's limit).
pub const KEYWORD_MAX_CHARS: usize = 75;

/// rollgate's own caps, where no limit is known.
pub const MAX_NEXT_STEPS: usize = 5;
pub const MAX_KEYWORDS: usize = 8;
pub const MAX_RELATED_RESOURCES: usize = 5;
pub const RELATED_RESOURCE_MAX_CHARS: usize = 1024;
pub const SUMMARY_MAX_CHARS: usize = 250;
pub const THREAD_ID_MAX_CHARS: usize = 128;
/// Letters, digits and `-` only, at most 100, as a custom action's `NotificationType` is
/// written (<https://docs.aws.amazon.com/chatbot/latest/APIReference/API_CustomActionAttachment.html>).
pub const EVENT_TYPE_MAX_CHARS: usize = 100;
pub const MAX_CONTEXT_ENTRIES: usize = 12;
pub const CONTEXT_VALUE_MAX_CHARS: usize = 256;
/// Checks listed one by one in the description (the rest are counted).
pub const MAX_CHECKS_LISTED: usize = 20;

/// What one card may take as an SNS message: SNS's 256 KiB less room for the message
/// attributes published with it. The caps above keep a card far below (about 80 KB at
/// worst, every character a four-byte one); [`Card::to_json`] checks it anyway.
pub const CARD_MAX_BYTES: usize = SNS_MESSAGE_MAX_BYTES - 16 * 1024;

/// Room kept at the end of the description for the "more checks" line and the timing.
const DESCRIPTION_TAIL: usize = 600;
/// How much of one value of a check (expected, actual) a line shows.
const EVIDENCE_MAX_CHARS: usize = 160;

/// One custom notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    pub version: &'static str,
    pub source: &'static str,
    pub content: Content,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    pub text_type: &'static str,
    pub title: String,
    pub description: String,
    pub next_steps: Vec<String>,
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// One release's cards thread together: the deployment (or rollout) id.
    pub thread_id: String,
    pub summary: String,
    pub event_type: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_resources: Vec<String>,
    pub additional_context: BTreeMap<String, String>,
    pub enable_custom_actions: bool,
}

impl Card {
    /// The card as the SNS message body: always valid JSON in the format, at most
    /// [`CARD_MAX_BYTES`].
    pub fn to_json(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        if text.len() <= CARD_MAX_BYTES {
            return text;
        }
        // Not reachable with the caps above; a smaller card rather than a lost one.
        let mut small = self.clone();
        small.content.description = cut(&self.content.description, 1000);
        small.content.next_steps.clear();
        small.metadata.related_resources.clear();
        small.metadata.additional_context.clear();
        serde_json::to_string(&small).unwrap_or_default()
    }
}

/// Which function of rollgate decided, and so how the card reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gate,
    Rollback,
    Rollout,
    Redrive,
    Other,
}

/// A decision with what it was announced with.
struct View<'a> {
    d: &'a Decision,
    attributes: &'a [(&'a str, String)],
    kind: Kind,
}

/// The card of `decision`, announced with `attributes` (alarm-rollback's `action`,
/// `alarm`, `dry_run`; the rollout's `action`, `status`, `weight`...); ARNs of the
/// resources it names are written in `home` when its region and account are known.
pub fn card(decision: &Decision, attributes: &[(&str, String)], home: &Home) -> Card {
    let kind = match decision.component.as_str() {
        "pre-traffic-hook" | "post-traffic-hook" => Kind::Gate,
        "alarm-rollback" => Kind::Rollback,
        "rollout" => Kind::Rollout,
        "dlq-redrive" => Kind::Redrive,
        _ => Kind::Other,
    };
    let v = View {
        d: decision,
        attributes,
        kind,
    };
    let title = cut(&v.title(), TITLE_MAX_CHARS);
    let reason = plain(&cut(&decision.reason, SUMMARY_MAX_CHARS));
    Card {
        version: VERSION,
        source: SOURCE,
        content: Content {
            text_type: TEXT_TYPE,
            description: v.description(),
            next_steps: v.next_steps(),
            keywords: v.keywords(),
            title: title.clone(),
        },
        metadata: Metadata {
            thread_id: v.thread_id(),
            summary: cut(&format!("{title}: {reason}"), SUMMARY_MAX_CHARS),
            event_type: v.event_type(),
            related_resources: v.related_resources(home),
            additional_context: v.context(),
            enable_custom_actions: true,
        },
    }
}

/// Outside text as card text: one line; `<`, `>` and backticks (a mention, a link, a
/// code block) replaced by look-alikes; control characters by spaces.
pub fn plain(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            '`' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// `text`, at most `max` characters, as inline code.
fn code(text: &str, max: usize) -> String {
    format!("`{}`", plain(&cut(text, max)))
}

/// A JSON value as compact text (a string without its quotes).
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn mark(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "✅",
        Outcome::Fail => "❌",
        Outcome::Inconclusive => "❔",
    }
}

/// Only letters, digits and `-`, at most `max` characters.
fn slug(text: &str, max: usize) -> String {
    let s: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(max)
        .collect();
    s.trim_matches('-').to_owned()
}

/// FNV-1a: a stable short fingerprint of a text too long to use whole.
fn fingerprint(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl View<'_> {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn check(&self, name: &str) -> Option<&CheckResult> {
        self.d.checks.iter().find(|c| c.name == name)
    }

    /// A number of a redrive report, carried in the check of that name.
    fn count(&self, name: &str) -> u64 {
        self.check(name)
            .and_then(|c| c.actual.as_u64())
            .unwrap_or(0)
    }

    /// alarm-rollback's action (`rollback`, `stop_deployment`, `none`...), its `acted`
    /// and `dry_run`, from the attributes or else the `action` check.
    fn rollback_action(&self) -> (String, bool, bool) {
        let evidence = self.check("action").map(|c| &c.actual);
        let action = self
            .attr("action")
            .map(str::to_owned)
            .or_else(|| {
                evidence
                    .and_then(|a| a["action"].as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "none".to_owned());
        let acted = evidence.is_some_and(|a| a["acted"] == json!(true));
        let dry_run = self.attr("dry_run") == Some("true")
            || evidence.is_some_and(|a| a["dry_run"] == json!(true));
        (action, acted, dry_run)
    }

    /// `orders:live`, or what else names the release.
    fn release(&self) -> String {
        let d = self.d;
        let function = d.function_name.as_deref().filter(|f| !f.is_empty());
        let alias = d
            .alias
            .as_deref()
            .or_else(|| self.attr("alias"))
            .filter(|a| !a.is_empty());
        match (function, alias) {
            (Some(f), Some(a)) => format!("{}:{}", plain(&cut(f, 80)), plain(&cut(a, 80))),
            (Some(f), None) => plain(&cut(f, 80)),
            (None, _) => match d.deployment_id.as_deref().filter(|x| !x.is_empty()) {
                Some(id) => format!("release {}", plain(&cut(id, 80))),
                None => "an unknown release".to_owned(),
            },
        }
    }

    fn version(v: Option<&str>) -> String {
        plain(&cut(v.unwrap_or("?"), 40))
    }

    fn title(&self) -> String {
        let d = self.d;
        let (from, to) = (
            Self::version(d.current_version.as_deref()),
            Self::version(d.target_version.as_deref()),
        );
        let release = self.release();
        match self.kind {
            Kind::Gate => {
                let stage = if d.component == "post-traffic-hook" {
                    "post-traffic gate"
                } else {
                    "pre-traffic gate"
                };
                match d.verdict {
                    Verdict::Succeeded => format!("✅ {stage} passed: {release}, version {to}"),
                    Verdict::Failed => format!("🛑 {stage} failed: {release}, version {to}"),
                }
            }
            Kind::Rollback => self.rollback_title(&release, &from, &to),
            Kind::Rollout => self.rollout_title(&release, &to),
            Kind::Redrive => self.redrive_title(),
            Kind::Other => format!(
                "rollgate {}: {} {release}",
                plain(&cut(&d.component, 60)),
                d.verdict.as_str()
            ),
        }
    }

    fn rollback_title(&self, release: &str, good: &str, bad: &str) -> String {
        let (action, acted, dry_run) = self.rollback_action();
        let deployment = plain(&cut(self.d.deployment_id.as_deref().unwrap_or("?"), 60));
        if self.d.verdict == Verdict::Failed {
            return format!("❗ {} failed for {release}", plain(&cut(&action, 40)));
        }
        match (action.as_str(), acted, dry_run) {
            ("rollback", _, true) => {
                format!("🧪 dry run: would roll {release} back from version {bad} to {good}")
            }
            ("rollback", true, _) => {
                format!("⏪ rolled {release} back from version {bad} to {good}")
            }
            ("stop_deployment", _, true) => {
                format!("🧪 dry run: would stop deployment {deployment} of {release}")
            }
            ("stop_deployment", true, _) => {
                format!("⏹️ stopped deployment {deployment} of {release}, back to version {good}")
            }
            ("none", _, _) => format!("ℹ️ no rollback for {release}"),
            (other, _, _) => format!("ℹ️ alarm-rollback: {} {release}", plain(&cut(other, 40))),
        }
    }

    fn rollout_title(&self, release: &str, to: &str) -> String {
        let action = plain(&cut(self.attr("action").unwrap_or("step"), 40));
        if action == "judge_shift" {
            return format!("🛑 traffic shift of {release} to version {to} stopped by the judge");
        }
        let mut state: Vec<String> = Vec::new();
        if let Some(status) = self.attr("status") {
            state.push(plain(&cut(status, 40)));
        }
        if let Some(w) = self.attr("weight") {
            state.push(format!("{} % on it", plain(&cut(w, 12))));
        }
        let state = if state.is_empty() {
            String::new()
        } else {
            format!(" ({})", state.join(", "))
        };
        let icon = if self.d.verdict == Verdict::Failed {
            "🛑"
        } else {
            "🚦"
        };
        format!("{icon} rollout of {release} to version {to}: {action}{state}")
    }

    fn redrive_title(&self) -> String {
        let source = plain(&cut(self.attr("source").unwrap_or("the DLQ"), 120));
        let action = self.attr("action").unwrap_or("redrive");
        let icon = if self.d.verdict == Verdict::Failed {
            "⚠️"
        } else {
            "📬"
        };
        match action {
            "dry_run" => format!(
                "{icon} redrive dry run of {source}: {} would move",
                self.count("would_move")
            ),
            "status" | "cancel" => format!("{icon} redrive {action} of {source}"),
            _ => format!(
                "{icon} redrive of {source}: {} moved, {} failed",
                self.count("moved") + self.count("copied"),
                self.count("failed")
            ),
        }
    }

    /// The short word of what happened (`failed`, `rollback`, `dry-run`, `running`...).
    fn outcome(&self) -> String {
        let failed = self.d.verdict == Verdict::Failed;
        let (action, _, dry_run) = self.rollback_action();
        let word = match self.kind {
            _ if failed => "failed",
            Kind::Gate | Kind::Other => "passed",
            Kind::Rollback if action == "none" => "no-action",
            Kind::Rollback if dry_run => "dry-run",
            Kind::Rollback => action.as_str(),
            Kind::Rollout => self.attr("status").unwrap_or("running"),
            Kind::Redrive => self.attr("action").unwrap_or("redrive"),
        };
        slug(word, 40)
    }

    fn description(&self) -> String {
        let mut text = String::new();
        let mut add = |line: String| {
            text.push_str(&line);
            text.push('\n');
        };
        add(format!("*Why:* {}", plain(&cut(&self.d.reason, 1500))));
        for fact in self.facts() {
            add(fact);
        }
        add(self.check_counts());
        let listed = self.check_lines(&mut text);
        let d = self.d;
        let more = d.checks.len().saturating_sub(listed);
        if more > 0 && self.kind != Kind::Redrive {
            let whole = match d.deployment_id.as_deref().filter(|x| !x.is_empty()) {
                Some(id) => format!("`rollgate report {}`", plain(&cut(id, 100))),
                None => "the decision topic's message".to_owned(),
            };
            let noun = if more == 1 { "check" } else { "checks" };
            text.push_str(&format!(
                "…and {more} more {noun} not listed here: {whole} shows them all\n"
            ));
        }
        text.push_str(&format!("_decided in {} ms_", d.duration_ms));
        cut(&text, DESCRIPTION_MAX_CHARS)
    }

    /// Lines of what the decision is about: function, versions, deployment, policy, and
    /// what each function adds (alarm, rollout step, redrive numbers).
    fn facts(&self) -> Vec<String> {
        let d = self.d;
        let mut facts = Vec::new();
        if let Some(f) = d.function_name.as_deref().filter(|f| !f.is_empty()) {
            let alias = d.alias.as_deref().or_else(|| self.attr("alias"));
            let alias = alias.map(|a| format!(" alias {}", code(a, 128)));
            facts.push(format!(
                "*Function:* {}{}",
                code(f, 140),
                alias.unwrap_or_default()
            ));
        }
        if d.current_version.is_some() || d.target_version.is_some() {
            let (from, to) = (
                Self::version(d.current_version.as_deref()),
                Self::version(d.target_version.as_deref()),
            );
            facts.push(match self.kind {
                Kind::Rollback => format!("*Versions:* bad {to}, last good {from}"),
                _ => format!("*Versions:* {from} → {to}"),
            });
        }
        if let Some(id) = d.deployment_id.as_deref().filter(|x| !x.is_empty()) {
            facts.push(format!("*Deployment:* {}", code(id, 200)));
        }
        if let Some(p) = d.policy_source.as_deref() {
            facts.push(format!("*Policy:* {}", code(p, 300)));
        }
        for (name, label) in [
            ("alarm", "Alarm"),
            ("action", "Action"),
            ("status", "Status"),
            ("weight", "Weight on the new version (%)"),
            ("rollout", "Rollout"),
            ("source", "Source"),
            ("destination", "Destination"),
        ] {
            if let Some(value) = self.attr(name) {
                facts.push(format!("*{label}:* {}", code(value, 300)));
            }
        }
        if self.kind == Kind::Rollback && self.rollback_action().2 {
            facts.push("*Dry run:* nothing was changed".to_owned());
        }
        facts
    }

    fn check_counts(&self) -> String {
        let d = self.d;
        if self.kind == Kind::Redrive {
            let n = |k: &str| self.count(k);
            return format!(
                "*Moved:* {} · *copied:* {} · *failed:* {} · *remaining:* {} · *duplicates:* {} · *filtered:* {}",
                n("moved"),
                n("copied"),
                n("failed"),
                self.check("remaining")
                    .filter(|c| !c.actual.is_null())
                    .map_or_else(|| "?".to_owned(), |c| value_text(&c.actual)),
                n("duplicates"),
                n("filtered")
            );
        }
        format!(
            "*Checks:* {} failed, {} inconclusive, {} passed ({} in all)",
            d.count(Outcome::Fail),
            d.count(Outcome::Inconclusive),
            d.count(Outcome::Pass),
            d.checks.len()
        )
    }

    /// One line per check worth reading (failed first, then inconclusive; passed ones
    /// only when nothing else is listed), while they fit; returns how many were listed.
    fn check_lines(&self, text: &mut String) -> usize {
        let d = self.d;
        let failed = d.checks.iter().filter(|c| c.outcome == Outcome::Fail);
        let unsure = d
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Inconclusive);
        let passed = d.checks.iter().filter(|c| c.outcome == Outcome::Pass);
        let worth: Vec<&CheckResult> = if self.kind == Kind::Redrive {
            // Its numbers are in the counts line; only the failures by code are listed.
            failed.filter(|c| c.name.starts_with("failure[")).collect()
        } else if d.checks.iter().all(CheckResult::passed) {
            passed.collect()
        } else {
            failed.chain(unsure).collect()
        };
        let budget = DESCRIPTION_MAX_CHARS - DESCRIPTION_TAIL;
        let mut used = text.chars().count();
        let mut listed = 0;
        for c in worth.into_iter().take(MAX_CHECKS_LISTED) {
            let line = check_line(c);
            let n = line.chars().count() + 1;
            if used + n > budget {
                break;
            }
            text.push_str(&line);
            text.push('\n');
            used += n;
            listed += 1;
        }
        listed
    }

    fn next_steps(&self) -> Vec<String> {
        let mut steps = self.what_to_do();
        let d = self.d;
        if let Some(f) = d.function_name.as_deref().filter(|f| !f.is_empty()) {
            let f = plain(&cut(f, 140));
            steps.push(format!("See where it stands: `rollgate status {f}`"));
            steps.push(format!(
                "Its releases and rollbacks: `rollgate history {f}`"
            ));
        }
        if let Some(id) = d.deployment_id.as_deref().filter(|x| !x.is_empty()) {
            let id = plain(&cut(id, 140));
            steps.push(format!(
                "Every check, with charts: `rollgate report {id} --html {}.html`",
                slug(&id, 60)
            ));
        }
        steps
            .into_iter()
            .take(MAX_NEXT_STEPS)
            .map(|s| cut(&s, NEXT_STEP_MAX_CHARS))
            .collect()
    }

    /// The step that depends on what was decided.
    fn what_to_do(&self) -> Vec<String> {
        let d = self.d;
        let failed = d.verdict == Verdict::Failed;
        let good = Self::version(d.current_version.as_deref());
        let bad = Self::version(d.target_version.as_deref());
        let step = match self.kind {
            Kind::Gate if failed && d.component == "post-traffic-hook" => format!(
                "CodeDeploy puts the alias back on version {good}: fix what the failed checks show before releasing again"
            ),
            Kind::Gate if failed => format!(
                "No traffic reached version {bad}: fix what the failed checks show, publish a new version and deploy again"
            ),
            Kind::Rollback => return self.rollback_steps(&bad),
            Kind::Rollout if failed => format!(
                "Version {good} serves all traffic again: fix what the failed checks show before a new rollout"
            ),
            Kind::Redrive => return self.redrive_steps(),
            _ => return Vec::new(),
        };
        vec![step]
    }

    fn rollback_steps(&self, bad: &str) -> Vec<String> {
        let (action, _, dry_run) = self.rollback_action();
        let release = self.release();
        if self.d.verdict == Verdict::Failed {
            return vec![format!(
                "The action failed and Lambda retries it; if it keeps failing, roll back by hand: `rollgate rollback {release} --reason ...`"
            )];
        }
        if dry_run && action != "none" {
            return vec![
                "Dry run: nothing was changed. Deploy the stack with DryRun=false to let rollgate act"
                    .to_owned(),
            ];
        }
        match action.as_str() {
            "rollback" | "stop_deployment" => vec![format!(
                "Version {bad} is quarantined: find why the alarm fired before releasing it again"
            )],
            _ => Vec::new(),
        }
    }

    fn redrive_steps(&self) -> Vec<String> {
        let mut steps = Vec::new();
        let source = plain(&cut(self.attr("source").unwrap_or("SOURCE"), 200));
        if self.count("failed") > 0 {
            steps.push(
                "Read the failures (code and message of each) in the report on the decision topic; the failed messages are still in the DLQ"
                    .to_owned(),
            );
        }
        if self
            .check("continuation")
            .is_some_and(|c| c.actual == json!(true))
        {
            steps.push(format!(
                "The run stopped at its deadline: `rollgate redrive {source}` runs the continuations until it is done"
            ));
        }
        steps
    }

    fn keywords(&self) -> Vec<String> {
        let d = self.d;
        let mut words = vec!["rollgate".to_owned(), d.component.clone(), self.outcome()];
        if let Some(f) = d.function_name.as_deref().filter(|f| !f.is_empty()) {
            words.push(f.to_owned());
        }
        if let Some(a) = self.attr("alarm") {
            words.push(a.to_owned());
        }
        let mut out: Vec<String> = Vec::new();
        for w in words {
            let w = cut(&plain(&w), KEYWORD_MAX_CHARS);
            if !w.trim().is_empty() && !out.contains(&w) {
                out.push(w);
            }
        }
        out.truncate(MAX_KEYWORDS);
        out
    }

    /// The release's thread: its deployment (or rollout) id; else its function and
    /// alias; a redrive's, its source.
    fn thread_id(&self) -> String {
        let d = self.d;
        let id = match (d.deployment_id.as_deref(), d.function_name.as_deref()) {
            (Some(id), _) if !id.is_empty() => format!("rollgate-{id}"),
            (_, Some(f)) if !f.is_empty() => {
                format!("rollgate-{f}-{}", d.alias.as_deref().unwrap_or(""))
            }
            _ => format!(
                "rollgate-{}-{}",
                d.component,
                self.attr("source").unwrap_or("")
            ),
        };
        if id.chars().count() <= THREAD_ID_MAX_CHARS {
            return id;
        }
        // The same long id always gives the same thread id.
        let keep: String = id.chars().take(THREAD_ID_MAX_CHARS - 17).collect();
        format!("{keep}-{}", fingerprint(&id))
    }

    fn event_type(&self) -> String {
        slug(
            &format!("rollgate-{}-{}", self.d.component, self.outcome()),
            EVENT_TYPE_MAX_CHARS,
        )
    }

    /// ARNs of what the card is about: the function's alias (when home is known), a
    /// redrive's queues, functions and topics.
    fn related_resources(&self, home: &Home) -> Vec<String> {
        let d = self.d;
        let mut out = Vec::new();
        let known = home.region.is_some() && home.account.is_some();
        if let Some(f) = d
            .function_name
            .as_deref()
            .filter(|f| !f.is_empty() && known)
        {
            let arn = home.function_arn(f);
            out.push(match d.alias.as_deref().filter(|a| !a.is_empty()) {
                Some(a) if !arn.ends_with(&format!(":{a}")) => format!("{arn}:{a}"),
                _ => arn,
            });
        }
        for name in ["source", "destination"] {
            if let Some(arn) = self.attr(name).filter(|a| a.starts_with("arn:")) {
                out.push(arn.to_owned());
            }
        }
        let mut unique: Vec<String> = Vec::new();
        for r in out {
            let r = cut(&r, RELATED_RESOURCE_MAX_CHARS);
            if !unique.contains(&r) {
                unique.push(r);
            }
        }
        unique.truncate(MAX_RELATED_RESOURCES);
        unique
    }

    /// String values a custom action can match on: the decision's ids, then the
    /// attributes it was announced with.
    fn context(&self) -> BTreeMap<String, String> {
        let d = self.d;
        let mut entries: Vec<(String, String)> = vec![
            ("component".into(), d.component.clone()),
            ("verdict".into(), d.verdict.as_str().to_owned()),
        ];
        for (k, v) in [
            ("function", &d.function_name),
            ("alias", &d.alias),
            ("deployment", &d.deployment_id),
            ("currentVersion", &d.current_version),
            ("targetVersion", &d.target_version),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                entries.push((k.into(), v.to_owned()));
            }
        }
        for (k, v) in self.attributes.iter().filter(|(_, v)| !v.is_empty()) {
            entries.push((slug(k, 64), v.clone()));
        }
        let mut map = BTreeMap::new();
        for (k, v) in entries {
            if map.len() == MAX_CONTEXT_ENTRIES {
                break;
            }
            if !k.is_empty() {
                map.entry(k)
                    .or_insert_with(|| cut(&plain(&v), CONTEXT_VALUE_MAX_CHARS));
            }
        }
        map
    }
}

/// `• ❌ `name` expected `…`, actual `…` (detail)`.
fn check_line(c: &CheckResult) -> String {
    let detail = c
        .detail
        .as_deref()
        .filter(|x| !x.is_empty())
        .map(|x| format!(" ({})", plain(&cut(x, 200))))
        .unwrap_or_default();
    format!(
        "• {} {} expected {}, actual {}{detail}",
        mark(c.outcome),
        code(&c.name, 120),
        code(&value_text(&c.expected), EVIDENCE_MAX_CHARS),
        code(&value_text(&c.actual), EVIDENCE_MAX_CHARS),
    )
}

/// A redrive report (the JSON dlq-redrive announces) as a decision, for its card: the
/// numbers as checks, failures grouped by their code. Message bodies (the report's
/// sample and peeked messages) are never read.
pub fn redrive_decision(report: &Value) -> Decision {
    let n = |k: &str| report.get(k).and_then(Value::as_u64).unwrap_or(0);
    let stopped = report.get("stopped").and_then(Value::as_str).unwrap_or("");
    let failed = n("failed");
    let verdict = if failed > 0 || stopped == "error" {
        Verdict::Failed
    } else {
        Verdict::Succeeded
    };
    let mut checks: Vec<CheckResult> = ["moved", "copied", "would_move", "filtered", "duplicates"]
        .into_iter()
        .map(|k| CheckResult::pass(k, Value::Null, json!(n(k))))
        .collect();
    checks.push(CheckResult::new(
        "failed",
        if failed > 0 {
            Outcome::Fail
        } else {
            Outcome::Pass
        },
        json!(0),
        json!(failed),
    ));
    let remaining = report.get("remaining").cloned().unwrap_or(Value::Null);
    checks.push(CheckResult::pass(
        "remaining",
        Value::Null,
        remaining.clone(),
    ));
    let continuation = report.get("continuation").cloned().unwrap_or(Value::Null);
    let more = !continuation.is_null();
    checks.push(
        CheckResult::pass("continuation", Value::Null, json!(more)).with_detail(if more {
            "the run stopped at its deadline; invoke again with the continuation"
        } else {
            "nothing left to continue"
        }),
    );
    checks.extend(failure_checks(report));
    Decision {
        component: "dlq-redrive".into(),
        verdict,
        reason: redrive_reason(report, stopped, &remaining),
        deployment_id: None,
        function_name: None,
        alias: None,
        current_version: None,
        target_version: None,
        policy_source: None,
        checks,
        duration_ms: n("duration_ms"),
    }
}

/// The card of a redrive report (the JSON dlq-redrive announces), announced with
/// `attributes` (source, destination...): [`redrive_decision`]'s card, with the report's
/// action (`redrive`, `dry_run`, `native`, `status`, `cancel`).
pub fn redrive_card(report: &Value, attributes: &[(&str, String)], home: &Home) -> Card {
    let mut attributes = attributes.to_vec();
    if let Some(action) = report.get("action").and_then(Value::as_str)
        && !attributes.iter().any(|(k, _)| *k == "action")
    {
        attributes.push(("action", action.to_owned()));
    }
    card(&redrive_decision(report), &attributes, home)
}

/// One failed check per failure code, with how many messages it took and one message.
fn failure_checks(report: &Value) -> Vec<CheckResult> {
    let mut by_code: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for f in report
        .get("failures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let code = f["code"].as_str().unwrap_or("unknown").to_owned();
        let entry = by_code.entry(code).or_insert((0, String::new()));
        entry.0 += 1;
        if entry.1.is_empty() {
            entry.1 = f["message"].as_str().unwrap_or("").to_owned();
        }
    }
    by_code
        .into_iter()
        .map(|(code, (count, message))| {
            CheckResult::fail(format!("failure[{code}]"), json!(0), json!(count))
                .with_detail(message)
        })
        .collect()
}

fn redrive_reason(report: &Value, stopped: &str, remaining: &Value) -> String {
    let n = |k: &str| report.get(k).and_then(Value::as_u64).unwrap_or(0);
    let source = report.get("source").and_then(Value::as_str).unwrap_or("?");
    let to = report
        .get("destination")
        .and_then(Value::as_str)
        .map(|d| format!(" to {d}"))
        .unwrap_or_default();
    let left = match remaining.as_u64() {
        Some(r) => format!("{r} left in the DLQ"),
        None => "the DLQ's depth unknown".to_owned(),
    };
    let stop = if stopped.is_empty() {
        String::new()
    } else {
        format!("; stopped: {stopped}")
    };
    format!(
        "{} moved and {} copied from {source}{to}, {} failed, {left}{stop}",
        n("moved"),
        n("copied"),
        n("failed")
    )
}

#[cfg(test)]
#[path = "chat_tests.rs"]
mod tests;
