//! Where Redis is ([`RedisTarget`]: one server, or a Redis Cluster) and the connection to it.
//!
//! Both are the redis crate's own: a [`ConnectionManager`] (one multiplexed connection that
//! reconnects by itself) for one server, a [`ClusterConnection`] for a cluster, which routes
//! each command to the node that owns its key's slot, follows `MOVED` and `ASK`, refreshes
//! the slot map and reconnects to nodes. Nothing of that is ours: every script keeps its
//! keys in one slot (the event's hash tag), so a cluster runs each on one node.
//!
//! Both are tuned to fail fast while Redis is down, rather than to hold every caller in
//! retries: a call fails within seconds (a 503 over HTTP, which clients retry with their
//! `Idempotency-Key`), and the first call after Redis is back goes through.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// How long connecting to a node may take.
const CONNECT_TIMEOUT_MS: u64 = 1_000;

/// How long a reply may take.
const RESPONSE_TIMEOUT_MS: u64 = 2_000;

/// Retries of a cluster command (a node down, a slot moving, a failover under way), with
/// waits from [`CLUSTER_RETRY_WAIT_MIN_MS`] doubling up to [`CLUSTER_RETRY_WAIT_MAX_MS`]:
/// about two seconds in all, within which a replica usually takes over a dead primary
/// (`cluster-node-timeout` plus an election).
const CLUSTER_RETRIES: u32 = 5;
const CLUSTER_RETRY_WAIT_MIN_MS: u64 = 50;
const CLUSTER_RETRY_WAIT_MAX_MS: u64 = 800;

/// Nodes of a cluster given at most (`REDIS_CLUSTER_URLS`): a few seed nodes are enough,
/// the client learns the others from them.
pub const CLUSTER_SEEDS_MAX: usize = 64;

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server: `redis://host:port/db`.
    Single(String),
    /// A Redis Cluster, found from some of its nodes: `redis://host:port` each.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// A cluster from a comma-separated list of seed nodes (`REDIS_CLUSTER_URLS`); blanks
    /// around the commas are ignored. `None` for an empty list, or one over
    /// [`CLUSTER_SEEDS_MAX`] nodes.
    pub fn cluster_from_list(list: &str) -> Option<Self> {
        let nodes: Vec<String> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        (!nodes.is_empty() && nodes.len() <= CLUSTER_SEEDS_MAX).then_some(Self::Cluster(nodes))
    }

    /// `cluster` or `single`, for logs and `/readyz`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Single(_) => "single",
            Self::Cluster(_) => "cluster",
        }
    }
}

/// A connection to a [`RedisTarget`]; cheap to clone (clones share it). Commands go through
/// it as through either of the redis crate's connections ([`ConnectionLike`]).
#[derive(Clone)]
pub enum RedisConnection {
    /// One server, through a connection manager that reconnects on the next call.
    Single(ConnectionManager),
    /// A Redis Cluster, through its client, which routes each key by slot and follows
    /// `MOVED`/`ASK`.
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Connects (checking that Redis answers).
    pub async fn connect(target: &RedisTarget) -> RedisResult<Self> {
        match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                Ok(Self::Single(ConnectionManager::new_with_config(client, single_config()).await?))
            }
            RedisTarget::Cluster(nodes) => Ok(Self::Cluster(cluster_builder(nodes).build()?.get_async_connection().await?)),
        }
    }

    /// Whether this is a cluster: some commands differ there (sharded publish, no `SCAN`
    /// across nodes).
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// One server's connection manager: a lost connection is replaced by one attempt (given up
/// after 1 s) on the next call, not by retries with back-off during which every call waits.
pub(crate) fn single_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .set_response_timeout(Duration::from_millis(RESPONSE_TIMEOUT_MS))
}

/// A cluster client's settings (the crate's defaults retry 16 times from 1.3 s on: minutes).
pub(crate) fn cluster_builder(nodes: &[String]) -> ClusterClientBuilder {
    ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .response_timeout(Duration::from_millis(RESPONSE_TIMEOUT_MS))
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(CLUSTER_RETRY_WAIT_MIN_MS)
        .max_retry_wait(CLUSTER_RETRY_WAIT_MAX_MS)
        .retry_wait_formula(CLUSTER_RETRY_WAIT_MIN_MS, 2)
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, cmd: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_list_is_comma_separated_and_bounded() {
        assert_eq!(
            RedisTarget::cluster_from_list(" redis://a:1 ,redis://b:2,,"),
            Some(RedisTarget::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()]))
        );
        assert_eq!(RedisTarget::cluster_from_list(" , "), None);
        let many = vec!["redis://a:1"; CLUSTER_SEEDS_MAX + 1].join(",");
        assert_eq!(RedisTarget::cluster_from_list(&many), None);
    }
}
