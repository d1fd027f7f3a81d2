//! Several replicas, one pager: leases and alert state on a DynamoDB table (`[ha]`).
//!
//! A layer between `notify` (whose `AlertStore` trait it
//! implements) and `daemon` (which starts it and hands it to the route):
//!
//! ```text
//!   replica A ─┐                         ┌─ lease  r1: owner A, counter 812, token 3
//!   replica B ─┼─ every lease/3: look, ──┤  lease  r2: owner B, counter 77,  token 1
//!   (each runs │  renew, take over       ├─ state  r1: watermark + ledger (JSON)
//!   the source │  (conditional writes)   ├─ outbox#r1: undelivered notifications
//!   and the    │                         └─ dead#r1:   given up (TTL 30 d)
//!   pipeline)  └─ the leader of a rule pages it; every write checks its lease
//! ```
//!
//! - [`lease`]: the Kinesis Client Library's lease pattern, as decisions on plain data.
//! - [`dynamo`]: the table's layout and every request.
//! - [`replica`]: [`replica::Replica`], this replica's view of the table, which:
//!   - `keeper` keeps the leases with (every `lease/3`: look, renew, take over);
//!   - [`store`] implements the route's store on (fenced writes, the claim before each
//!     delivery).
//!   - [`bins`] implements the source's bin exchange on (the leader publishes the bins
//!     it read from Logs Insights, the standbys read them instead of querying).
//! - [`config`]: the `[ha]` table of the config file.
//!
//! Every replica runs the source and the pipeline for every rule, so a standby's
//! baselines are warm and a takeover pages within one bin; only the leader of a rule
//! queries Logs Insights for it, writes its state and pages. The standbys' pipelines
//! are fed the leader's bins from the table, so N replicas scan what one does (the
//! figures are in the README).

pub mod bins;
pub mod config;
pub mod dynamo;
mod keeper;
pub mod lease;
pub mod replica;
pub mod store;

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::HaConfig;
use replica::Replica;

use crate::clock::SharedClock;

/// The running HA machinery: the replica's store and its lease keeper.
pub struct Ha {
    pub replica: Arc<Replica>,
    stop: watch::Sender<bool>,
    keeper: JoinHandle<()>,
}

/// How a replica names itself when `ha.replica_id` is not set: host, process, a random
/// suffix (a restarted process on the same host is a new replica).
pub fn default_replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "authpulse".to_string());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

impl Ha {
    /// Connect (region and endpoint: `[ha]`'s, else the source's, else the SDK's chain,
    /// which reads `AWS_ENDPOINT_URL`), create the table if missing and allowed, take a
    /// first look at the leases, and start the keeper.
    pub async fn start(
        config: &HaConfig,
        source_region: Option<String>,
        source_endpoint: Option<String>,
        rules: Vec<String>,
        clock: SharedClock,
    ) -> Result<Ha, String> {
        let region = config.region.clone().or(source_region);
        let endpoint = config.endpoint_url.clone().or(source_endpoint);
        let sdk = crate::aws::sdk_config(region, endpoint).await;
        let table = dynamo::Table::new(&sdk, &config.table, config.renew_every());
        // A table that cannot be reached now is retried by the keeper (this replica pages
        // nothing meanwhile and says so); a table that must exist and does not is the
        // operator's to fix: a clear error at start.
        let unsure = match table.ensure(config.create_table).await {
            Ok(()) => None,
            Err(error) if error.contains(dynamo::MISSING) => return Err(error),
            Err(error) => {
                tracing::error!(table = %config.table, %error, "cannot reach the DynamoDB table at start; retrying, paging nothing meanwhile");
                Some(config.create_table)
            }
        };
        let me = config.replica_id.clone().unwrap_or_else(default_replica_id);
        let replica = Replica::new(table, me, config.lease, clock);
        replica.set_rules(rules);
        tracing::info!(
            table = %config.table,
            replica = %replica.id(),
            lease_ms = config.lease.as_millis() as u64,
            "high availability: leases and alert state in DynamoDB"
        );
        // A first look before the source starts: the replica that leads a rule from the
        // start queries and publishes its history for the others.
        let mut unsure = unsure;
        replica.look(&mut unsure).await;
        let (stop, stop_rx) = watch::channel(false);
        let keeper = tokio::spawn(replica.clone().keep(config.renew_every(), unsure, stop_rx));
        Ok(Ha {
            replica,
            stop,
            keeper,
        })
    }

    /// Stop renewing and release every lease held: the other replicas take the rules
    /// at their next look. Call after the route has stopped.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.keeper.await;
        self.replica.release_all().await;
    }
}
