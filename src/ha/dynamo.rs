//! The table: its layout, and every DynamoDB request authpulse makes.
//!
//! One table, a string partition key `pk` and sort key `sk`, on-demand billing, TTL on
//! `expires_at` (epoch seconds):
//!
//! | pk | sk | what | attributes |
//! | --- | --- | --- | --- |
//! | `lease` | rule | the rule's lease | `owner`, `counter` (+1 on every renewal), `token` (+1 on every change of owner: the fencing token), `renewed_ms` |
//! | `state` | rule | the rule's ledger | `body` (JSON: watermark, notified), `token` |
//! | `outbox#<rule>` | `<queue>#<idempotency key>` | one undelivered notification | `seq`, `enqueued_ms`, `alert` (JSON), `token` |
//! | `dead#<rule>` | `<queue>#<idempotency key>` | a notification given up on | `alert`, `error`, `expires_at` (30 days) |
//! | `bins#<rule>#<query key>` | `<bin start ms, 15 digits>#<part>` | one bin's counts as the leader read them (see `super::bins`) | `revision`, `parts`, `unknown`, `body` (JSON), `token`, `expires_at` (bin + baseline window) |
//!
//! Every request is counted in `authpulse_ha_requests_total{op}`; failures in
//! `authpulse_ha_store_errors_total{op}`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement,
    KeyType, Put, ReturnValue, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

use crate::aws::aws_error_text;

pub type Item = HashMap<String, AttributeValue>;

pub const LEASE_PK: &str = "lease";
pub const STATE_PK: &str = "state";
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// In the error of [`Table::ensure`] when the table is missing and may not be created.
pub const MISSING: &str = "does not exist and ha.create_table = false";

pub fn outbox_pk(rule: &str) -> String {
    format!("outbox#{rule}")
}

pub fn dead_pk(rule: &str) -> String {
    format!("dead#{rule}")
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The condition of a write (for a transaction: of its item at this index) failed.
    Condition(usize),
    /// Anything else: network, throttling, service errors (after the SDK's retries).
    Other(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Condition(i) => write!(f, "condition of item {i} failed"),
            DbError::Other(s) => f.write_str(s),
        }
    }
}

/// A lease item as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseItem {
    pub rule: String,
    /// Empty when released.
    pub owner: String,
    pub counter: u64,
    pub token: u64,
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|x| x.parse().ok())
}

fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn lease_item(item: &Item) -> Option<LeaseItem> {
    Some(LeaseItem {
        rule: get_s(item, "sk")?.to_string(),
        owner: get_s(item, "owner").unwrap_or_default().to_string(),
        counter: get_n(item, "counter")? as u64,
        token: get_n(item, "token")? as u64,
    })
}

fn counted(op: &'static str) {
    metrics::counter!("authpulse_ha_requests_total", "op" => op).increment(1);
}

fn failed<E: std::error::Error + 'static>(
    op: &'static str,
    e: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> DbError {
    metrics::counter!("authpulse_ha_store_errors_total", "op" => op).increment(1);
    DbError::Other(format!("DynamoDB {op}: {}", aws_error_text(e)))
}

fn build_error(e: impl std::fmt::Display) -> DbError {
    DbError::Other(format!("cannot build the request: {e}"))
}

/// The condition every fenced write checks: this replica still owns the rule's lease
/// with the fencing token it took it with.
pub fn lease_check(
    table: &str,
    rule: &str,
    me: &str,
    token: u64,
) -> Result<TransactWriteItem, DbError> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key(LEASE_PK, rule)))
        .condition_expression("#o = :me AND #t = :tok")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#t", "token")
        .expression_attribute_values(":me", s(me))
        .expression_attribute_values(":tok", n(token))
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

#[derive(Debug, Clone)]
pub struct Table {
    pub client: Client,
    pub name: String,
}

impl Table {
    /// A client for `name` whose every call gives up after `timeout` (retries included),
    /// so a hung request cannot outlast a lease.
    pub fn new(sdk: &aws_config::SdkConfig, name: &str, timeout: Duration) -> Table {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(timeout)
                    .build(),
            )
            .build();
        Table {
            client: Client::from_conf(config),
            name: name.to_string(),
        }
    }

    /// Create the table when missing (if `create`), and wait until it is active.
    pub async fn ensure(&self, create: bool) -> Result<(), String> {
        counted("DescribeTable");
        match self
            .client
            .describe_table()
            .table_name(&self.name)
            .send()
            .await
        {
            Ok(_) => return self.wait_active().await,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeTableError::ResourceNotFoundException(_))
                ) => {}
            Err(e) => return Err(failed("DescribeTable", &e).to_string()),
        }
        if !create {
            return Err(format!("DynamoDB table {:?} {MISSING}", self.name));
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| e.to_string())
        };
        let schema = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| e.to_string())
        };
        counted("CreateTable");
        let created = self
            .client
            .create_table()
            .table_name(&self.name)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(schema("pk", KeyType::Hash)?)
            .key_schema(schema("sk", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        if let Err(e) = created {
            // Another replica created it at the same moment: fine.
            let text = failed("CreateTable", &e).to_string();
            if !text.contains("ResourceInUse") {
                return Err(text);
            }
        } else {
            tracing::info!(table = %self.name, "created the DynamoDB table (on-demand billing)");
        }
        self.wait_active().await?;
        counted("UpdateTimeToLive");
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(|e| e.to_string())?;
        if let Err(e) = self
            .client
            .update_time_to_live()
            .table_name(&self.name)
            .time_to_live_specification(ttl)
            .send()
            .await
        {
            // Already enabled (by the other replica) is not a problem; anything else is
            // only a cost: dead letters are not expired.
            tracing::warn!(table = %self.name, error = %failed("UpdateTimeToLive", &e), "cannot enable TTL on the table");
        }
        Ok(())
    }

    async fn wait_active(&self) -> Result<(), String> {
        for _ in 0..120 {
            counted("DescribeTable");
            let out = self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .map_err(|e| failed("DescribeTable", &e).to_string())?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!(
            "DynamoDB table {:?} did not become active in 60 s",
            self.name
        ))
    }

    /// Every item of a partition, strongly consistent.
    pub async fn query(&self, pk: &str) -> Result<Vec<Item>, DbError> {
        self.query_from("Query", pk, None).await
    }

    /// The items of a partition whose sort key is at least `from` (all: `None`),
    /// strongly consistent; counted as `op`.
    pub async fn query_from(
        &self,
        op: &'static str,
        pk: &str,
        from: Option<&str>,
    ) -> Result<Vec<Item>, DbError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        let condition = match from {
            Some(_) => "pk = :p AND sk >= :from",
            None => "pk = :p",
        };
        loop {
            counted(op);
            let mut req = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression(condition)
                .expression_attribute_values(":p", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if let Some(from) = from {
                req = req.expression_attribute_values(":from", s(from));
            }
            let page = req.send().await.map_err(|e| failed(op, &e))?;
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    pub async fn leases(&self) -> Result<Vec<LeaseItem>, DbError> {
        Ok(self
            .query(LEASE_PK)
            .await?
            .iter()
            .filter_map(lease_item)
            .collect())
    }

    pub async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, DbError> {
        counted("GetItem");
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", &e))?;
        Ok(out.item().cloned())
    }

    /// A new lease: `Condition` when the item exists.
    pub async fn acquire(&self, rule: &str, me: &str, now_ms: i64) -> Result<LeaseItem, DbError> {
        counted("PutItem");
        let mut item = key(LEASE_PK, rule);
        item.insert("owner".into(), s(me));
        item.insert("counter".into(), n(1));
        item.insert("token".into(), n(1));
        item.insert("renewed_ms".into(), n(now_ms));
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception())
                {
                    DbError::Condition(0)
                } else {
                    failed("PutItem", &e)
                }
            })?;
        Ok(LeaseItem {
            rule: rule.into(),
            owner: me.into(),
            counter: 1,
            token: 1,
        })
    }

    async fn update_lease(
        &self,
        rule: &str,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<LeaseItem, DbError> {
        counted("UpdateItem");
        let mut req = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key(LEASE_PK, rule)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#c", "counter")
            .return_values(ReturnValue::AllNew);
        if update.contains("#t") || condition.contains("#t") {
            req = req.expression_attribute_names("#t", "token");
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        let out = req.send().await.map_err(|e| {
            if e.as_service_error()
                .is_some_and(|se| se.is_conditional_check_failed_exception())
            {
                DbError::Condition(0)
            } else {
                failed("UpdateItem", &e)
            }
        })?;
        out.attributes()
            .and_then(lease_item)
            .ok_or_else(|| DbError::Other("UpdateItem returned no lease".into()))
    }

    /// Renew a lease held with `token` (KCL: the counter goes up by one).
    pub async fn renew(
        &self,
        rule: &str,
        me: &str,
        token: u64,
        now_ms: i64,
    ) -> Result<LeaseItem, DbError> {
        self.update_lease(
            rule,
            "SET #c = #c + :one, renewed_ms = :now",
            "#o = :me AND #t = :tok",
            vec![
                (":one", n(1)),
                (":now", n(now_ms)),
                (":me", s(me)),
                (":tok", n(token)),
            ],
        )
        .await
    }

    /// Take over a lease seen with `counter` and `owner` (expired or released): the
    /// fencing token goes up by one, so every write of the old owner fails from now on.
    pub async fn take_over(
        &self,
        seen: &LeaseItem,
        me: &str,
        now_ms: i64,
    ) -> Result<LeaseItem, DbError> {
        self.update_lease(
            &seen.rule,
            "SET #o = :me, #c = #c + :one, #t = #t + :one, renewed_ms = :now",
            "#c = :seen AND #o = :was",
            vec![
                (":me", s(me)),
                (":one", n(1)),
                (":now", n(now_ms)),
                (":seen", n(seen.counter)),
                (":was", s(seen.owner.clone())),
            ],
        )
        .await
    }

    /// Give a lease up (a clean stop): a standby takes it at its next look.
    pub async fn release(&self, rule: &str, me: &str, token: u64) -> Result<LeaseItem, DbError> {
        self.update_lease(
            rule,
            "SET #o = :none, #c = #c + :one",
            "#o = :me AND #t = :tok",
            vec![
                (":none", s("")),
                (":one", n(1)),
                (":me", s(me)),
                (":tok", n(token)),
            ],
        )
        .await
    }

    /// Several writes at once, all or none. `Condition(i)`: item `i`'s condition failed.
    pub async fn transact(
        &self,
        op: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), DbError> {
        counted(op);
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error() {
                    if let Some(i) = c
                        .cancellation_reasons()
                        .iter()
                        .position(|r| r.code() == Some("ConditionalCheckFailed"))
                    {
                        return Err(DbError::Condition(i));
                    }
                }
                Err(failed(op, &e))
            }
        }
    }

    pub fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, DbError> {
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub fn delete(&self, pk: &str, sk: &str) -> Result<TransactWriteItem, DbError> {
        let d = Delete::builder()
            .table_name(&self.name)
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(d).build())
    }

    /// An update that requires the item to exist (it was not delivered meanwhile).
    pub fn touch(&self, pk: &str, sk: &str, me: &str) -> Result<TransactWriteItem, DbError> {
        let u = Update::builder()
            .table_name(&self.name)
            .set_key(Some(key(pk, sk)))
            .update_expression("SET claimed_by = :me ADD attempts :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    pub async fn delete_now(&self, pk: &str, sk: &str) -> Result<(), DbError> {
        counted("DeleteItem");
        self.client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(|e| failed("DeleteItem", &e))?;
        Ok(())
    }

    pub fn item(pk: &str, sk: &str) -> Item {
        key(pk, sk)
    }
}
