//! `peek`: a page of a queue's messages, handed back at once, and a cursor to the next.
//!
//! SQS has no offset to page by: every receive returns some of the visible messages. A
//! page therefore receives until it has `page_size` messages it has not shown before,
//! keeping what it received hidden meanwhile (so no message comes twice in one page),
//! and then makes all of it visible again. The cursor remembers what earlier pages
//! showed, as a short hash of each message id, and is bound to the queue.

use super::engine::{Limits, Redrive, Report, backoff, retryable};
use super::ports::{AttributeValue, EventInvoker, Objects, QueueInfo, Queues, Received, Republish};
use super::request::{MAX_PEEK_DEPTH, Request};
use crate::clock::Instant;
use crate::error::{Error, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// A page stops growing past this many bytes of bodies and attributes, below Lambda's
/// 6 MB response limit (a synchronous invoke's answer carries the page).
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
const VERSION: &str = "p1";
/// Hex characters of one remembered message (64 bits of its id's SHA-256).
const KEY_HEX: usize = 16;

/// One message as a page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peeked {
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    pub receive_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_source: Option<String>,
    pub body: String,
    /// Name → `{"data_type", "string_value" | "binary_value" (base64)}`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

fn attribute(a: &AttributeValue) -> serde_json::Value {
    let mut v = serde_json::json!({ "data_type": a.data_type });
    if let Some(s) = &a.string {
        v["string_value"] = s.clone().into();
    }
    if let Some(b) = &a.binary {
        v["binary_value"] = aws_smithy_types::base64::encode(b).into();
    }
    v
}

impl Peeked {
    fn of(m: &Received) -> Self {
        Self {
            message_id: m.message_id.clone(),
            group_id: m.group_id.clone(),
            receive_count: m.receive_count,
            dead_letter_source: m.dead_letter_source.clone(),
            body: m.body.clone(),
            attributes: m
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), attribute(v)))
                .collect(),
        }
    }

    fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.to_string().len())
                .sum::<usize>()
    }
}

fn key(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..KEY_HEX / 2])
}

/// What earlier pages showed, and of which queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    queue: Option<String>,
    seen: BTreeSet<String>,
}

impl Cursor {
    /// `p1.<queue key>.<message keys>`; the error says what is wrong.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut parts = text.split('.');
        let (Some(VERSION), Some(queue), Some(keys), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a cursor of an earlier peek page (pass it as it was returned)".into());
        };
        let hex_ok = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if queue.len() != KEY_HEX || !hex_ok(queue) || keys.len() % KEY_HEX != 0 || !hex_ok(keys) {
            return Err("not a cursor of an earlier peek page (pass it as it was returned)".into());
        }
        let seen: BTreeSet<String> = (0..keys.len() / KEY_HEX)
            .map(|i| keys[i * KEY_HEX..(i + 1) * KEY_HEX].to_owned())
            .collect();
        if seen.len() >= MAX_PEEK_DEPTH {
            return Err(format!(
                "peek goes {MAX_PEEK_DEPTH} messages deep; to count or select further, use dry_run with a filter"
            ));
        }
        Ok(Self {
            queue: Some(queue.to_owned()),
            seen,
        })
    }

    fn encode(&self, queue_arn: &str) -> String {
        let keys: String = self.seen.iter().map(String::as_str).collect();
        format!("{VERSION}.{}.{keys}", key(queue_arn))
    }

    fn check_queue(&self, queue_arn: &str) -> Result<()> {
        match &self.queue {
            Some(q) if *q != key(queue_arn) => Err(Error::InvalidEvent(format!(
                "cursor: belongs to a page of another queue than {queue_arn}"
            ))),
            _ => Ok(()),
        }
    }
}

/// What one page gathered.
#[derive(Default)]
struct Page {
    shown: Vec<Peeked>,
    bytes: usize,
    full: bool,
    /// A receive came back empty: nothing more is visible.
    exhausted: bool,
    filtered: u64,
    held: Vec<(String, String)>,
}

impl Page {
    /// Take one received message: hold it, and show it when it is new, selected and fits.
    fn take(&mut self, req: &Request, cursor: &Cursor, want: usize, m: Received) {
        self.held
            .push((m.message_id.clone(), m.receipt_handle.clone()));
        let k = key(&m.message_id);
        if self.full || cursor.seen.contains(&k) {
            return;
        }
        if !req.filter.matches(&m.body, &m.attributes) {
            self.filtered += 1;
            return;
        }
        let p = Peeked::of(&m);
        if !self.shown.is_empty() && self.bytes + p.size() > MAX_PAGE_BYTES {
            self.full = true;
            return;
        }
        self.bytes += p.size();
        self.shown.push(p);
        self.full = self.shown.len() >= want;
    }
}

impl<Q: Queues, L: EventInvoker, T: Republish, O: Objects> Redrive<'_, Q, L, T, O> {
    /// One page of `source` into `report` (`messages`, `cursor`, `filtered`), every
    /// message received handed back before the answer.
    pub(super) async fn peek(
        &self,
        req: &Request,
        source: &QueueInfo,
        limits: Limits,
        report: &mut Report,
    ) -> Result<()> {
        let mut cursor = match &req.cursor {
            Some(text) => {
                Cursor::parse(text).map_err(|why| Error::InvalidEvent(format!("cursor: {why}")))?
            }
            None => Cursor::default(),
        };
        cursor.check_queue(&source.arn)?;
        let want = req.page_size.min(MAX_PEEK_DEPTH - cursor.seen.len());
        let mut page = Page::default();
        let gathered = self
            .gather((req, &cursor, want), source, limits, &mut page)
            .await;
        for chunk in page.held.chunks(10) {
            if let Err(e) = self.queues.change_visibility(source, chunk, 0).await {
                tracing::warn!(error = %e, "peek could not hand messages back; they reappear after their visibility timeout");
            }
        }
        gathered?;
        report.filtered = page.filtered;
        cursor
            .seen
            .extend(page.shown.iter().map(|p| key(&p.message_id)));
        let done = page.exhausted && !page.full;
        report.cursor =
            (!done && cursor.seen.len() < MAX_PEEK_DEPTH).then(|| cursor.encode(&source.arn));
        if source.fifo && done && !cursor.seen.is_empty() {
            report.note = Some("FIFO: SQS hands out none of a group's later messages while its earlier ones are held, and every page holds those it showed before: messages after the first of each group may not be shown".into());
        }
        report.messages = page.shown;
        report.remaining = self.queues.depth(source).await.ok();
        Ok(())
    }

    /// Receive into `page` until it is full, the queue gives nothing more or the time is
    /// up; what was received is in `page.held` even when this fails.
    async fn gather(
        &self,
        (req, cursor, want): (&Request, &Cursor, usize),
        source: &QueueInfo,
        limits: Limits,
        page: &mut Page,
    ) -> Result<()> {
        let mut errors = 0u32;
        while !page.full {
            let now = Instant::now();
            if now >= limits.stop_receiving {
                return Ok(());
            }
            let visibility =
                (limits.hard.saturating_duration_since(now).as_secs() + 5).clamp(5, 43_200) as i32;
            let got = match self.queues.receive(source, 10, 1, visibility).await {
                Ok(got) => got,
                Err(e) if retryable(&e) && errors < 5 => {
                    errors += 1;
                    tokio::time::sleep(backoff(errors)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            errors = 0;
            if got.is_empty() {
                page.exhausted = true;
                return Ok(());
            }
            for m in got {
                page.take(req, cursor, want, m);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_refuses_what_it_did_not_write() {
        let mut c = Cursor::default();
        c.seen.insert(key("m-1"));
        c.seen.insert(key("m-2"));
        let text = c.encode("arn:q");
        let back = Cursor::parse(&text).unwrap();
        assert_eq!(back.seen, c.seen);
        assert!(back.check_queue("arn:q").is_ok());
        assert!(back.check_queue("arn:other").is_err());
        for bad in [
            "",
            "p1",
            "p1.x.y",
            "p2.0123456789abcdef.",
            "p1.0123456789abcdef.abc",
            "p1.0123456789ABCDEF.",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Cursor::parse("p1.0123456789abcdef.")
                .unwrap()
                .seen
                .is_empty()
        );
        let deep: String = (0..MAX_PEEK_DEPTH).map(|i| key(&i.to_string())).collect();
        let why = Cursor::parse(&format!("p1.0123456789abcdef.{deep}")).unwrap_err();
        assert!(why.contains("1000 messages deep"), "{why}");
    }
}
