//! DynamoDB: the deployment ledger (see [`crate::rollback::ledger`] for the keys).

use crate::error::{Error, Result};
use crate::rollback::ledger::{
    self, Claim, ClaimOutcome, DeploymentKind, DeploymentRecord, Freeze, History,
    QUARANTINE_PREFIX, ReleaseContext, RequestRow, RollbackSettings,
};
use crate::rollback::ports::Ledger;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::ReturnValue;
use std::collections::HashMap;

/// Newest deployments read per decision: enough to skip CodeDeploy's own rollbacks.
const HISTORY_DEPTH: usize = 25;

/// Rows per page of the history `Query`: the quarantined versions come first, so a
/// partition with up to 8 of them is read in one call.
const HISTORY_PAGE: i32 = HISTORY_DEPTH as i32 + 8;

/// How a claim whose action failed is settled (`failed: <error>`).
const FAILED_OUTCOME: &str = "failed";

/// A claim is won when nobody holds it, or when the action of the claim there failed:
/// that action did nothing, and a later delivery of the alarm must be able to try again
/// (otherwise one AWS error would block the rollback for good). Acting twice stays
/// impossible: the claim is keyed by the alias RevisionId the action is based on, and
/// `UpdateAlias` carries it.
const CLAIM_CONDITION: &str = "attribute_not_exists(pk) OR begins_with(outcome, :failed)";

#[derive(Clone, Debug)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A rollout's or a shift's event row as stored: JSON of at most
/// [`LOG_RECORD_MAX_BYTES`](crate::limits::LOG_RECORD_MAX_BYTES) (its checks' long values
/// cut), far under DynamoDB's 400 KB item.
fn event_text(event: &serde_json::Value) -> String {
    crate::limits::fit_json(event, crate::limits::LOG_RECORD_MAX_BYTES, false)
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

type Item = HashMap<String, AttributeValue>;

fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// A `dep#` row as its record: the same reading as an operator's ([`item_json`], then
/// [`crate::rollback::delivery::record`]).
fn to_deployment(item: &Item) -> Option<DeploymentRecord> {
    crate::rollback::delivery::record(&item_json(item))
}

/// An alias's `freeze` row.
fn to_freeze(item: &Item) -> Option<Freeze> {
    Some(Freeze {
        until_ms: get_n(item, "until_ms")?,
        by: get_s(item, "by").unwrap_or_default(),
        reason: get_s(item, "reason").unwrap_or_default(),
        at_ms: get_n(item, "at_ms").unwrap_or_default(),
        request_id: get_s(item, "request_id").unwrap_or_default(),
        lifted_by: get_s(item, "lifted_by"),
        lifted_ms: get_n(item, "lifted_ms"),
    })
}

/// The group and rollback settings written beside a deployment (none on rows written
/// before rollgate recorded them).
fn to_context(item: &Item) -> ReleaseContext {
    let rollback = (|| {
        Some(RollbackSettings {
            enabled: *item.get("rollback_enabled")?.as_bool().ok()?,
            bake_minutes: u64::try_from(get_n(item, "bake_minutes")?).ok()?,
            source: get_s(item, "policy_source")?,
        })
    })();
    ReleaseContext {
        group: get_s(item, "group"),
        rollback,
    }
}

fn ddb<E>(
    op: &'static str,
) -> impl FnOnce(SdkError<E, aws_smithy_runtime_api::http::Response>) -> Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    move |e| Error::aws("dynamodb", op, e)
}

impl DynamoLedger {
    /// Every row of `pk` whose sort key starts with `prefix` (every row: ""), in key order.
    async fn query_prefix(&self, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            // DynamoDB refuses an empty key value: no prefix, no sort-key condition.
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk));
            if !prefix.is_empty() {
                q = q
                    .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                    .expression_attribute_values(":p", s(prefix));
            }
            let out = q
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(ddb("Query"))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(items)
    }

    async fn put_if_absent(&self, item: Item) -> Result<bool> {
        self.put_if(item, "attribute_not_exists(pk)", None).await
    }

    /// Put `item` if `condition` holds; `false` when it does not.
    async fn put_if(
        &self,
        item: Item,
        condition: &str,
        values: Option<HashMap<String, AttributeValue>>,
    ) -> Result<bool> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::aws("dynamodb", "PutItem", e)),
        }
    }
}

/// What an operator reads (the `rollgate` CLI): whole partitions as plain JSON.
impl DynamoLedger {
    /// Every row of a partition, newest sort key first, each as a JSON object (strings,
    /// numbers, booleans; other attribute types as null).
    pub async fn partition_rows(&self, pk: &str) -> Result<Vec<serde_json::Value>> {
        let mut items = self.query_prefix(pk, "").await?;
        items.reverse();
        Ok(items.iter().map(item_json).collect())
    }

    /// Every row about one alias, newest sort key first: its partition, then its gates'
    /// decisions (their own partition, [`ledger::decision_partition`]). Two `Query`s.
    pub async fn alias_rows(&self, function: &str, alias: &str) -> Result<Vec<serde_json::Value>> {
        let (own, gate) = (
            ledger::partition(function, alias),
            ledger::decision_partition(function, alias),
        );
        let (rows, gates) = tokio::join!(self.partition_rows(&own), self.partition_rows(&gate));
        let mut rows = rows?;
        rows.extend(gates?);
        Ok(rows)
    }

    /// `(function, alias)` of every alias the ledger has recorded a release of (one
    /// `Scan` of the alias index rows).
    pub async fn tracked(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(sk, :a) AND begins_with(pk, :f)")
                .expression_attribute_values(":a", s("alias#"))
                .expression_attribute_values(":f", s("fn#"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(ddb("Scan"))?;
            for item in page.items() {
                if let (Some(f), Some(a)) = (get_s(item, "function"), get_s(item, "alias")) {
                    out.push((f, a));
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// A ledger item as JSON: `S` as a string, `N` as a number, `BOOL` as a boolean.
pub fn item_json(item: &Item) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in item {
        let j = match v {
            AttributeValue::S(s) => serde_json::Value::from(s.as_str()),
            AttributeValue::N(n) => n
                .parse::<i64>()
                .map(serde_json::Value::from)
                .or_else(|_| n.parse::<f64>().map(serde_json::Value::from))
                .unwrap_or(serde_json::Value::Null),
            AttributeValue::Bool(b) => serde_json::Value::from(*b),
            _ => serde_json::Value::Null,
        };
        m.insert(k.clone(), j);
    }
    serde_json::Value::Object(m)
}

/// The writes of [`Ledger::record_deployment`].
impl DynamoLedger {
    /// The `UpdateItem` of a deployment's row: every field set, the status never taken
    /// back from final to `InProgress`.
    fn deployment_update(
        &self,
        r: &DeploymentRecord,
        context: &ReleaseContext,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let kind = match r.kind {
            DeploymentKind::Release => "release",
            DeploymentKind::Rollback => "rollback",
        };
        let mut sets = vec![
            "deployment_id = :id",
            "application = :app",
            "deployment_group = :dg",
            "#fn = :fn",
            "#alias = :alias",
            "from_version = :from",
            "to_version = :to",
            "kind = :kind",
            "created_ms = :created",
            "origin = :origin",
        ];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(ledger::partition(&r.function, &r.alias)))
            .key("sk", s(r.sort_key()))
            .expression_attribute_names("#fn", "function")
            .expression_attribute_names("#alias", "alias")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":id", s(&r.deployment_id))
            .expression_attribute_values(":app", s(&r.application))
            .expression_attribute_values(":dg", s(&r.deployment_group))
            .expression_attribute_values(":fn", s(&r.function))
            .expression_attribute_values(":alias", s(&r.alias))
            .expression_attribute_values(":from", s(&r.from_version))
            .expression_attribute_values(":to", s(&r.to_version))
            .expression_attribute_values(":kind", s(kind))
            .expression_attribute_values(":created", n(r.created_ms))
            .expression_attribute_values(":origin", s(r.origin.as_str()))
            .expression_attribute_values(":status", s(r.status.as_str()));
        // A final status is never replaced by InProgress (events arrive in any order).
        if r.status.is_final() {
            sets.push("#st = :status");
        } else {
            sets.push("#st = if_not_exists(#st, :status)");
        }
        if let Some(v) = r.started_ms {
            sets.push("started_ms = :started");
            req = req.expression_attribute_values(":started", n(v));
        }
        if let Some(v) = r.ended_ms {
            sets.push("ended_ms = :ended");
            req = req.expression_attribute_values(":ended", n(v));
        }
        if let Some(who) = &r.initiator {
            sets.push("initiator = :who");
            req = req.expression_attribute_values(":who", s(who));
        }
        req = Self::context_sets(req, context, &mut sets);
        req.update_expression(format!("SET {}", sets.join(", ")))
    }

    /// The `SET`s of what was recorded beside a deployment (group, rollback settings).
    fn context_sets(
        mut req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        context: &ReleaseContext,
        sets: &mut Vec<&'static str>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        if let Some(g) = &context.group {
            sets.push("#grp = :grp");
            req = req
                .expression_attribute_names("#grp", "group")
                .expression_attribute_values(":grp", s(g));
        }
        // Settings that could not be read now leave those of an earlier state change.
        if let Some(rb) = &context.rollback {
            sets.extend([
                "rollback_enabled = :rbe",
                "bake_minutes = :bake",
                "policy_source = :psrc",
            ]);
            req = req
                .expression_attribute_values(":rbe", AttributeValue::Bool(rb.enabled))
                .expression_attribute_values(
                    ":bake",
                    AttributeValue::N(rb.bake_minutes.to_string()),
                )
                .expression_attribute_values(":psrc", s(&rb.source));
        }
        req
    }

    /// The index rows that find the deployment's alias from its function and its group.
    async fn index_deployment(&self, r: &DeploymentRecord, group: Option<&str>) -> Result<()> {
        let mut index = vec![(
            ledger::function_partition(&r.function),
            ledger::alias_sort(&r.alias),
        )];
        if let Some(g) = group {
            index.push((
                ledger::group_partition(g),
                ledger::member_sort(&r.function, &r.alias),
            ));
        }
        for (pk, sk) in index {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(pk))
                .item("sk", s(sk))
                .item("function", s(&r.function))
                .item("alias", s(&r.alias))
                .send()
                .await
                .map_err(ddb("PutItem"))?;
        }
        Ok(())
    }
}

impl Ledger for DynamoLedger {
    /// One `Query` (more only past 8 quarantined versions): the history range descending
    /// gives every quarantined version, then the newest deployments.
    async fn history(&self, function: &str, alias: &str) -> Result<History> {
        let pk = ledger::partition(function, alias);
        let (low, high) = ledger::HISTORY_RANGE;
        let mut h = History::default();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":low", s(low))
                .expression_attribute_values(":high", s(high))
                .scan_index_forward(false)
                .limit(HISTORY_PAGE)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(ddb("Query"))?;
            for item in out.items() {
                let quarantine =
                    get_s(item, "sk").is_some_and(|k| k.starts_with(QUARANTINE_PREFIX));
                if quarantine {
                    h.quarantined.extend(get_s(item, "version"));
                } else if get_s(item, "sk").as_deref() == Some(ledger::FREEZE_SORT) {
                    h.freeze = to_freeze(item);
                } else if h.deployments.len() < HISTORY_DEPTH
                    && let Some(d) = to_deployment(item)
                {
                    h.contexts.insert(d.deployment_id.clone(), to_context(item));
                    h.deployments.push(d);
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() && h.deployments.len() < HISTORY_DEPTH => {
                    start = Some(k.clone())
                }
                _ => break,
            }
        }
        Ok(h)
    }

    async fn aliases(&self, function: &str) -> Result<Vec<String>> {
        let items = self
            .query_prefix(&ledger::function_partition(function), "alias#")
            .await?;
        Ok(items.iter().filter_map(|i| get_s(i, "alias")).collect())
    }

    async fn group_members(&self, group: &str) -> Result<Vec<(String, String)>> {
        let items = self
            .query_prefix(&ledger::group_partition(group), "member#")
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| get_s(i, "sk"))
            .filter_map(|sk| ledger::parse_member(&sk))
            .collect())
    }

    async fn record_deployment(
        &self,
        r: &DeploymentRecord,
        context: &ReleaseContext,
    ) -> Result<()> {
        self.deployment_update(r, context)
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        self.index_deployment(r, context.group.as_deref()).await
    }

    async fn claim(&self, c: &Claim) -> Result<ClaimOutcome> {
        let mut item: Item = HashMap::from([
            ("pk".to_owned(), s(ledger::partition(&c.function, &c.alias))),
            ("sk".to_owned(), s(&c.sort)),
            ("event".to_owned(), s(&c.event_key)),
            ("alarm".to_owned(), s(&c.alarm)),
            ("deployment_id".to_owned(), s(&c.deployment_id)),
            ("bad_version".to_owned(), s(&c.bad_version)),
            ("at_ms".to_owned(), n(c.at_ms)),
            ("outcome".to_owned(), s("claimed")),
        ]);
        if let Some(g) = &c.good_version {
            item.insert("good_version".into(), s(g));
        }
        if let Some(t) = c.since_ms {
            item.insert("since_ms".into(), n(t));
        }
        let failed = HashMap::from([(":failed".to_owned(), s(FAILED_OUTCOME))]);
        if self.put_if(item, CLAIM_CONDITION, Some(failed)).await? {
            return Ok(ClaimOutcome::Won);
        }
        let existing = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(ledger::partition(&c.function, &c.alias)))
            .key("sk", s(&c.sort))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb("GetItem"))?;
        Ok(ClaimOutcome::Lost {
            by_event: existing
                .item()
                .and_then(|i| get_s(i, "event"))
                .unwrap_or_else(|| "an earlier invocation".into()),
        })
    }

    async fn settle(&self, c: &Claim, outcome: &str) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(ledger::partition(&c.function, &c.alias)))
            .key("sk", s(&c.sort))
            .update_expression("SET outcome = :o, settled_ms = :t")
            .expression_attribute_values(":o", s(outcome))
            .expression_attribute_values(":t", n(crate::clock::epoch_ms()))
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    async fn quarantine(&self, c: &Claim, reason: &str) -> Result<()> {
        let item: Item = HashMap::from([
            ("pk".to_owned(), s(ledger::partition(&c.function, &c.alias))),
            ("sk".to_owned(), s(ledger::quarantine_sort(&c.bad_version))),
            ("version".to_owned(), s(&c.bad_version)),
            ("reason".to_owned(), s(reason)),
            ("event".to_owned(), s(&c.event_key)),
            ("deployment_id".to_owned(), s(&c.deployment_id)),
            ("at_ms".to_owned(), n(c.at_ms)),
        ]);
        // The first quarantine of a version is the one kept.
        self.put_if_absent(item).await.map(|_| ())
    }

    async fn freeze(&self, function: &str, alias: &str, f: &Freeze) -> Result<bool> {
        let item: Item = HashMap::from([
            ("pk".to_owned(), s(ledger::partition(function, alias))),
            ("sk".to_owned(), s(ledger::FREEZE_SORT)),
            ("until_ms".to_owned(), n(f.until_ms)),
            ("by".to_owned(), s(&f.by)),
            ("reason".to_owned(), s(&f.reason)),
            ("at_ms".to_owned(), n(f.at_ms)),
            ("request_id".to_owned(), s(&f.request_id)),
        ]);
        let same = HashMap::from([(":id".to_owned(), s(&f.request_id))]);
        self.put_if(
            item,
            "attribute_not_exists(pk) OR request_id <> :id",
            Some(same),
        )
        .await
    }

    async fn unfreeze(
        &self,
        function: &str,
        alias: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<Freeze>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(ledger::partition(function, alias)))
            .key("sk", s(ledger::FREEZE_SORT))
            .condition_expression("attribute_exists(pk) AND until_ms > :now")
            .update_expression("SET until_ms = :now, lifted_by = :by, lifted_ms = :now")
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":by", s(by))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match out {
            Ok(o) => Ok(o.attributes().and_then(to_freeze)),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("dynamodb", "UpdateItem", e)),
        }
    }

    async fn releases(&self, function: &str) -> Result<Vec<crate::dora::Release>> {
        let mut out = Vec::new();
        for alias in self.aliases(function).await? {
            let rows = self
                .partition_rows(&ledger::partition(function, &alias))
                .await?;
            out.extend(crate::rollback::delivery::releases(&rows));
        }
        Ok(out)
    }

    /// One paginated `Scan` (1 MB a page, as DynamoDB pages) of the rows a release's
    /// figures are made of (`dep#`, `rb#`, `stop#` rows of the alias partitions), grouped
    /// by partition, through the same mapping as [`Ledger::releases`].
    async fn account_releases(&self) -> Result<Vec<crate::dora::Release>> {
        let mut partitions: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "begins_with(pk, :fn) AND (begins_with(sk, :dep) OR begins_with(sk, :rb) OR begins_with(sk, :stop))",
                )
                .expression_attribute_values(":fn", s("fn#"))
                .expression_attribute_values(":dep", s(ledger::DEPLOYMENT_PREFIX))
                .expression_attribute_values(":rb", s("rb#"))
                .expression_attribute_values(":stop", s("stop#"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(ddb("Scan"))?;
            for item in page.items() {
                let pk = get_s(item, "pk").unwrap_or_default();
                partitions.entry(pk).or_default().push(item_json(item));
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        // In the order a partition's Query gives them (newest sort key first).
        let key = |r: &serde_json::Value| r["sk"].as_str().unwrap_or("").to_owned();
        Ok(partitions
            .into_values()
            .flat_map(|mut rows| {
                rows.sort_by_key(|r| std::cmp::Reverse(key(r)));
                crate::rollback::delivery::releases(&rows)
            })
            .collect())
    }

    async fn note_request(&self, r: &RequestRow) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(ledger::partition(&r.function, &r.alias)))
            .item("sk", s(r.sort_key()))
            .item("function", s(&r.function))
            .item("alias", s(&r.alias))
            .item("request_id", s(&r.request_id))
            .item("action", s(&r.action))
            .item("requester", s(&r.requester))
            .item("reason", s(&r.reason))
            .item("at_ms", n(r.at_ms))
            .item("outcome", s(&r.outcome))
            .item("acted", AttributeValue::Bool(r.acted))
            .send()
            .await
            .map_err(ddb("PutItem"))?;
        Ok(())
    }
}

/// The alias's rollout: one item holding the state as JSON with its sequence (the write
/// condition), and one row per change.
impl crate::rollout::ports::RolloutStore for DynamoLedger {
    async fn load(
        &self,
        function: &str,
        alias: &str,
    ) -> Result<Option<crate::rollout::decide::RolloutState>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(ledger::partition(function, alias)))
            .key("sk", s(ledger::ROLLOUT_SORT))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb("GetItem"))?;
        let Some(text) = out.item().and_then(|i| get_s(i, "state")) else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::InvalidEvent(format!("the stored rollout cannot be read: {e}")))
    }

    async fn note(
        &self,
        function: &str,
        alias: &str,
        sort: &str,
        row: &serde_json::Value,
    ) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(ledger::partition(function, alias)))
            .item("sk", s(sort))
            .item("event", s(event_text(row)))
            .send()
            .await
            .map_err(ddb("PutItem"))?;
        Ok(())
    }

    async fn save(
        &self,
        state: &crate::rollout::decide::RolloutState,
        expected: Option<u64>,
        event: &serde_json::Value,
    ) -> Result<bool> {
        let pk = ledger::partition(&state.function, &state.alias);
        let item = HashMap::from([
            ("pk".to_owned(), s(&pk)),
            ("sk".to_owned(), s(ledger::ROLLOUT_SORT)),
            ("id".to_owned(), s(&state.id)),
            (
                "state".to_owned(),
                s(serde_json::to_string(state).unwrap_or_default()),
            ),
            ("seq".to_owned(), n(state.seq as i64)),
            (
                "ended".to_owned(),
                AttributeValue::Bool(state.status.is_final()),
            ),
        ]);
        let won = match expected {
            Some(seq) => {
                let values = HashMap::from([(":seq".to_owned(), n(seq as i64))]);
                self.put_if(item, "seq = :seq", Some(values)).await?
            }
            None => {
                let values = HashMap::from([(":t".to_owned(), AttributeValue::Bool(true))]);
                self.put_if(item, "attribute_not_exists(pk) OR ended = :t", Some(values))
                    .await?
            }
        };
        if won {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(pk))
                .item("sk", s(ledger::rollout_event_sort(&state.id, state.seq)))
                .item("event", s(event_text(event)))
                .send()
                .await
                .map_err(ddb("PutItem"))?;
        }
        Ok(won)
    }
}

/// The judge's rounds during a CodeDeploy shift, for the post-traffic hook: one `Query`
/// of the deployment's `shift#` rows (its `end` row judged nothing and is left out).
impl crate::post_traffic::ShiftRecords for DynamoLedger {
    async fn shift_judgements(
        &self,
        function: &str,
        alias: &str,
        deployment_id: &str,
    ) -> Result<Vec<ledger::ShiftJudgement>> {
        let items = self
            .query_prefix(
                &ledger::partition(function, alias),
                &ledger::shift_prefix(deployment_id),
            )
            .await?;
        let end = ledger::shift_end_sort(deployment_id);
        items
            .iter()
            .filter(|i| get_s(i, "sk").is_some_and(|sk| sk != end))
            .map(|i| {
                let text = get_s(i, "event").unwrap_or_default();
                serde_json::from_str(&text).map_err(|e| {
                    Error::InvalidEvent(format!("a shift judgement cannot be read: {e}"))
                })
            })
            .collect()
    }
}

/// The gates' decisions, one row each in the alias's decision partition
/// ([`ledger::decision_partition`], [`ledger::decision_sort`]): who decided, the verdict, the reason, and the whole
/// decision as logged (JSON, at most [`LOG_RECORD_MAX_BYTES`](crate::limits::LOG_RECORD_MAX_BYTES):
/// far under DynamoDB's 400 KB item).
impl crate::ports::DecisionLog for DynamoLedger {
    async fn keep(&self, d: &crate::decision::Decision, at_ms: i64) -> Result<bool> {
        let (Some(function), Some(alias)) = (&d.function_name, &d.alias) else {
            return Ok(false);
        };
        let deployment = d.deployment_id.clone().unwrap_or_default();
        let text = crate::limits::fit_json(
            &serde_json::to_value(d).unwrap_or_default(),
            crate::limits::LOG_RECORD_MAX_BYTES,
            false,
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(ledger::decision_partition(function, alias)))
            .item(
                "sk",
                s(ledger::decision_sort(&deployment, at_ms, &d.component)),
            )
            .item("function", s(function))
            .item("alias", s(alias))
            .item("deployment_id", s(&deployment))
            .item("component", s(&d.component))
            .item("verdict", s(d.verdict.as_str()))
            .item("reason", s(crate::limits::cut(&d.reason, 4096)))
            .item("at_ms", n(at_ms))
            .item("decision", s(text))
            .send()
            .await
            .map_err(ddb("PutItem"))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn claim() -> Claim {
        Claim {
            function: "orders".into(),
            alias: "live".into(),
            sort: "rb#rev-1".into(),
            event_key: "alarm:errors:ALARM@t2".into(),
            alarm: "errors".into(),
            deployment_id: "d-1".into(),
            bad_version: "2".into(),
            good_version: Some("1".into()),
            at_ms: 1,
            since_ms: None,
        }
    }

    #[tokio::test]
    async fn a_claim_whose_action_failed_can_be_taken_again() {
        // The condition lets a retry take over a failed claim, and only a failed one.
        let put = mock!(Client::put_item)
            .match_requests(|r| {
                r.condition_expression() == Some(CLAIM_CONDITION)
                    && r.expression_attribute_values()
                        .and_then(|v| v.get(":failed"))
                        .is_some_and(|v| v.as_s().is_ok_and(|s| s == "failed"))
                    && r.item()
                        .and_then(|i| i.get("outcome"))
                        .is_some_and(|v| v.as_s().is_ok_and(|s| s == "claimed"))
            })
            .then_output(|| PutItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, [&put]);
        let ledger = DynamoLedger::new(client, "ledger");
        assert_eq!(ledger.claim(&claim()).await.unwrap(), ClaimOutcome::Won);
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_claim_held_by_another_event_is_lost_to_it() {
        let put = mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let get = mock!(Client::get_item).then_output(|| {
            GetItemOutput::builder()
                .item("event", s("alarm:errors:ALARM@t1"))
                .item("outcome", s("claimed"))
                .build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put, &get]);
        let ledger = DynamoLedger::new(client, "ledger");
        assert_eq!(
            ledger.claim(&claim()).await.unwrap(),
            ClaimOutcome::Lost {
                by_event: "alarm:errors:ALARM@t1".into()
            }
        );
    }

    fn gate_decision(function: Option<&str>) -> crate::decision::Decision {
        crate::decision::Decision {
            component: "pre-traffic-hook".into(),
            verdict: crate::decision::Verdict::Failed,
            reason: "1 of 1 checks failed on orders:2: config.state".into(),
            deployment_id: Some("d-ABCDEFGHI".into()),
            function_name: function.map(str::to_owned),
            alias: Some("live".into()),
            current_version: Some("1".into()),
            target_version: Some("2".into()),
            policy_source: None,
            checks: vec![crate::decision::CheckResult::fail(
                "config.state",
                serde_json::json!("Active"),
                serde_json::json!("Failed"),
            )],
            duration_ms: 3,
        }
    }

    #[tokio::test]
    async fn a_decision_is_kept_in_the_aliass_decision_partition_with_its_checks() {
        use crate::ports::DecisionLog;
        let put = mock!(Client::put_item)
            .match_requests(|r| {
                let item = r.item().unwrap();
                let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                let kept: serde_json::Value =
                    serde_json::from_str(&text("decision").unwrap_or_default()).unwrap();
                text("pk").as_deref() == Some("gate#orders#live")
                    && text("sk").as_deref()
                        == Some("decision#d-ABCDEFGHI#1700000000000#pre-traffic-hook")
                    && text("verdict").as_deref() == Some("Failed")
                    && kept["checks"][0]["actual"] == "Failed"
                    && r.condition_expression().is_none()
            })
            .then_output(|| PutItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, [&put]);
        let ledger = DynamoLedger::new(client, "ledger");
        let decision = gate_decision(Some("orders"));
        assert!(ledger.keep(&decision, 1_700_000_000_000).await.unwrap());
        assert_eq!(put.num_calls(), 1);
        // Without a function (the deployment could not be read) there is no partition.
        assert!(!ledger.keep(&gate_decision(None), 1).await.unwrap());
        assert_eq!(put.num_calls(), 1);
    }
}
