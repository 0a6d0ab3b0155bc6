//! An S3 prefix of Lambda failure records as a redrive source: the on-failure records
//! Lambda writes to an S3 destination for asynchronous invocations
//! (`aws/lambda/async/<function>/...`) and for stream and Kafka event source mappings.
//!
//! Each record is replayed into the function it names (`requestContext.functionArn`;
//! async records unwrapped to `requestPayload`, stream records to their `payload`), or
//! into `lambda:<function>`, or sent to a queue as it is; the object is deleted only once
//! the destination accepted it (kept in copy mode). Keys are taken in order; a run that
//! stops at its deadline hands back a continuation that lists on after its last key.

use super::engine::{
    Limits, Redrive, Report, Shared, Stopped, Tally, Target, backoff, choose, code_of, lock,
    not_allowed, retryable, scatter,
};
use super::message;
use super::ports::{EventInvoker, Objects, QueueInfo, Queues, Received, Republish};
use super::rate::Aimd;
use super::request::{DEFAULT_RATE, Destination, Mode, Request, S3Location};
use crate::clock::Instant;
use crate::error::Result;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Keys listed per `ListObjectsV2`.
const PAGE: i32 = 100;
const DELETE_ATTEMPTS: u32 = 4;

/// Whether the run stops before its next batch (time up, or the quota reached); why is
/// noted in the tally.
fn stop_now(req: &Request, sh: Shared<'_>) -> bool {
    let mut t = lock(sh.tally);
    if Instant::now() >= sh.limits.stop_receiving {
        t.stopped_deadline = true;
    } else if req.max_messages.is_some_and(|max| t.claimed >= max) {
        t.stopped_max = true;
    }
    t.stopped_deadline || t.stopped_max
}

impl<Q: Queues, L: EventInvoker, T: Republish, O: Objects> Redrive<'_, Q, L, T, O> {
    /// Redrive the records under `loc`; `Err` only when it cannot start.
    pub(super) async fn run_objects(
        &self,
        req: &Request,
        loc: &S3Location,
        limits: Limits,
    ) -> Result<Report> {
        let started = Instant::now();
        let arn = loc.arn();
        if !self.allow.allows(&arn) {
            return Err(not_allowed("source", &arn));
        }
        // The records' own "queue", for provenance on what goes to a queue.
        let source = QueueInfo {
            url: format!("s3://{}/{}", loc.bucket, loc.prefix),
            arn,
            fifo: false,
        };
        let target = match &req.destination {
            Destination::Lambda { .. } | Destination::Queue(_) => {
                self.destination(req, &source).await?
            }
            _ => Target::RecordFunctions,
        };
        let mut report = Report::empty(req, &source.arn);
        report.destination = Some(target.describe());
        if req.dry_run {
            report.action = "dry_run";
        }
        let tally = Mutex::new(Tally::default());
        let rate = Mutex::new(Aimd::new(req.rate.unwrap_or(DEFAULT_RATE)));
        let sh = Shared {
            limits,
            tally: &tally,
            rate: &rate,
            clock: Instant::now(),
        };
        let after = self.walk(req, (loc, &source), &target, sh).await;
        let t = tally.into_inner().unwrap_or_else(|p| p.into_inner());
        let done = t.fill(req, &mut report);
        if report.stopped == Some(Stopped::Deadline) && !req.dry_run {
            report.continuation = Some(req.continue_after(done, None, after));
        }
        Ok(self.finish(report, started))
    }

    /// List, fetch, send and delete, page by page, until the prefix is done, the quota is
    /// reached or the time is up; where a continuation lists on from. That is the last key
    /// handled, or in move mode the key before the first record that failed in this run:
    /// the continuation takes the failed ones again (those replayed are deleted, so it
    /// does not list them twice). A copy job keeps its objects, and goes on after its
    /// last key.
    async fn walk(
        &self,
        req: &Request,
        (loc, source): (&S3Location, &QueueInfo),
        target: &Target,
        sh: Shared<'_>,
    ) -> Option<String> {
        let mut after = req.carried.after.clone();
        let mut resume: Option<Option<String>> = None;
        let next = |after: Option<String>, resume: Option<Option<String>>| match resume {
            Some(before_failure) if req.mode == Mode::Move => before_failure,
            _ => after,
        };
        loop {
            let keys = match self.list(loc, after.as_deref(), sh).await {
                Some(keys) if !keys.is_empty() => keys,
                _ => return next(after, resume),
            };
            for chunk in keys.chunks(message::MAX_BATCH_ENTRIES) {
                if stop_now(req, sh) {
                    return next(after, resume);
                }
                let got = self.fetch(loc, chunk, sh).await;
                let fetched: Vec<String> = got.iter().map(|m| m.message_id.clone()).collect();
                let chosen = choose(req, got, &mut lock(sh.tally));
                let sent = self.send(req, source, target, &chosen, sh).await;
                self.settle_objects(req, loc, (&chosen, &sent), sh).await;
                let failed = |key: &String| {
                    !fetched.contains(key)
                        || chosen
                            .iter()
                            .zip(&sent)
                            .any(|(m, ok)| !ok && m.message_id == *key)
                };
                if resume.is_none()
                    && let Some(i) = chunk.iter().position(failed)
                {
                    resume = Some(if i == 0 {
                        after.clone()
                    } else {
                        Some(chunk[i - 1].clone())
                    });
                }
                after = chunk.last().cloned();
            }
        }
    }

    /// The next page of keys; `None` (and the run stopped) when listing failed.
    async fn list(
        &self,
        loc: &S3Location,
        after: Option<&str>,
        sh: Shared<'_>,
    ) -> Option<Vec<String>> {
        let mut attempt = 0;
        loop {
            match self
                .objects
                .list(&loc.bucket, &loc.prefix, after, PAGE)
                .await
            {
                Ok(keys) => return Some(keys),
                Err(e) if retryable(&e) && attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    lock(sh.tally).receive_error = Some(e.to_string());
                    return None;
                }
            }
        }
    }

    /// The records of `keys`, each as a message whose id is its key; one that cannot be
    /// read stays, reported.
    async fn fetch(&self, loc: &S3Location, keys: &[String], sh: Shared<'_>) -> Vec<Received> {
        let gets = keys.iter().map(|key| async move {
            let mut attempt = 0;
            loop {
                match self.objects.get(&loc.bucket, key).await {
                    Ok(body) => return Ok(body),
                    Err(e) if retryable(&e) && attempt < 3 => {
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        });
        let bodies = futures::future::join_all(gets).await;
        let mut got = Vec::new();
        for (key, body) in keys.iter().zip(bodies) {
            match body {
                Ok(body) => got.push(Received {
                    message_id: key.clone(),
                    receipt_handle: key.clone(),
                    body,
                    attributes: BTreeMap::new(),
                    group_id: None,
                    receive_count: 0,
                    dead_letter_source: None,
                }),
                Err(e) => lock(sh.tally).fail(key, &code_of(&e), &e.to_string()),
            }
        }
        got
    }

    /// Delete the objects whose record the destination accepted (copy mode: keep them);
    /// one whose delete keeps failing will be replayed again by a later job.
    async fn settle_objects(
        &self,
        req: &Request,
        loc: &S3Location,
        (chosen, sent): (&[Received], &[bool]),
        sh: Shared<'_>,
    ) {
        let mut accepted = 0u64;
        let mut duplicates = 0u64;
        for (m, ok) in chosen.iter().zip(sent) {
            if !ok {
                lock(sh.tally).claimed -= 1;
                continue;
            }
            accepted += 1;
            if req.mode == Mode::Copy {
                continue;
            }
            let mut deleted = false;
            for attempt in 0..DELETE_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                if self
                    .objects
                    .delete(&loc.bucket, &m.message_id)
                    .await
                    .is_ok()
                {
                    deleted = true;
                    break;
                }
            }
            duplicates += u64::from(!deleted);
        }
        let mut t = lock(sh.tally);
        t.moved += accepted;
        t.duplicates += duplicates;
    }

    /// Each record into the function it names (`requestContext.functionArn`, its
    /// qualifier kept); a record naming none, or one outside the allow-list, stays.
    pub(super) async fn send_to_record_functions(
        &self,
        msgs: &[Received],
        sh: Shared<'_>,
    ) -> Vec<bool> {
        let mut ok = vec![false; msgs.len()];
        let mut by_function: BTreeMap<(String, Option<String>), Vec<usize>> = BTreeMap::new();
        for (i, m) in msgs.iter().enumerate() {
            match message::record_function(&m.body) {
                None => lock(sh.tally).fail(&m.message_id, "SourceUnknown", "not a Lambda failure record naming its function (requestContext.functionArn): it stays; give a destination"),
                Some((f, q)) => {
                    let arn = q.as_ref().map_or(f.clone(), |q| format!("{f}:{q}"));
                    if self.allow.allows(&arn) {
                        by_function.entry((f, q)).or_default().push(i);
                    } else {
                        lock(sh.tally).fail(&m.message_id, "NotAllowed", &format!("its function {arn} is outside the allow-list (ROLLGATE_REDRIVE_ALLOW): it stays"));
                    }
                }
            }
        }
        for ((function, qualifier), idx) in by_function {
            let part: Vec<Received> = idx.iter().map(|&i| msgs[i].clone()).collect();
            let sent = self
                .send_to_lambda(&function, qualifier.as_deref(), &part, sh)
                .await;
            let arn = qualifier.map_or(function.clone(), |q| format!("{function}:{q}"));
            scatter((&mut ok, &idx), &sent, Some((sh.tally, arn)));
        }
        ok
    }
}
