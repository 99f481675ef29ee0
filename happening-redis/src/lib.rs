//! # happening-redis
//!
//! Redis for Happening: [`RedisAdmission`] puts the engine's [`SlotCounter`] and
//! [`Waitlist`] on Redis, so that the contention of a flash sale (tens of thousands of
//! requests for a few hundred seats) lands on Redis, while the [`SeatStore`] (PostgreSQL)
//! stays the source of truth.
//!
//! [`ready_engine`] hands back an engine ready for requests: connected, checked, and with
//! Redis rebuilt from the seat store (Redis may have lost or missed writes while this
//! server was away):
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use happening_postgres::PgStore;
//! use happening_redis::{RedisTarget, DEFAULT_PREFIX};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = happening_postgres::connect("postgres://127.0.0.1/happening", happening_postgres::PoolConfig::new(16)).await?;
//! let target = RedisTarget::Single("redis://127.0.0.1:6379/".into());
//! let ready = happening_redis::ready_engine(Arc::new(PgStore::new(pool)), &target, DEFAULT_PREFIX).await?;
//! println!("{} events repaired on start", ready.reconciled.len());
//! let engine = ready.engine;
//! # let _ = engine;
//! # Ok(())
//! # }
//! ```
//!
//! ## One atomic script per operation
//! Every operation that reads and writes is one Lua script run with `EVALSHA` (`take`,
//! `give`, `push`, `remove`, `pop_fitting`, `set_free`, `forget`, `restore`): Redis runs a
//! script to its end before anything else, so no caller ever sees half of a step. In particular `take` reads the
//! counter, compares and decrements it in one step, and checks the waitlist in the same
//! step (no queue-jumping under `fifo` and `partial`). The original platform's `DECRBY` then `INCRBY`
//! revert let the counter go negative for an instant, and a request arriving in that
//! instant was turned away from seats that were free; here the counter never goes below
//! zero. `pop_fitting` chooses the entry the policy promotes, removes it and takes its
//! seats in one step, so no newcomer can take those seats in between. The scripts are
//! loaded again by themselves when Redis has forgotten them (a restart): `NOSCRIPT` makes
//! the client load and retry.
//!
//! Keys: see [`EventKeys`]. Every key of one event carries the event id as its hash tag,
//! so all of them live in one Redis Cluster slot and the same scripts run on a cluster.
//!
//! ## What can drift, and how it heals
//! PostgreSQL is the source of truth; what is here can always be rebuilt from it. The
//! engine takes seats here *before* the store books them, and gives them back *after* the
//! store freed them, so the counter errs low. It says more seats are free than the store
//! has only after a rebuild overlapped a booking already in flight (its seats taken here
//! before the rebuild began, written to the store after the rebuild read it); then the
//! store's own capacity check refuses the booking (it queues, and the promotion that finds
//! the store short rebuilds again): never an oversell. A rebuild never erases a step made
//! while it read the store: it writes with `restore`, which compares the event's version
//! key (moved by every step) with the one read before the store, and the engine reads again
//! when they differ.
//! - A crash (or a lost connection) between the Redis step and the store's write leaves
//!   seats taken here but booked nowhere, or a cancellation whose seats were never given
//!   back: the counter is too low, and requests wait while seats are free. A waiting
//!   booking can likewise be missing from the queue (stored, then the push failed).
//!   [`Engine::reconcile_event`](happening_core::Engine::reconcile_event) repairs all of
//!   it: it rebuilds the counter (capacity - booked - held) and the queue (the waiting
//!   bookings in `queue_seq` order) from the store, reports the drift ([`Reconciled`]), and
//!   promotes whoever the repaired state lets in. Run it after a crash, on start, and
//!   from time to time.
//! - Redis restarted empty, flushed, or evicted an event: each operation on that event
//!   answers [`AdmissionError::Missing`] (never a made-up zero), and the engine rebuilds the
//!   event from the store and retries; a `give` on a missing counter is dropped (the
//!   rebuild counts those seats). A counter that holds anything but a count of seats
//!   (written by someone else) counts as missing too.
//! - Redis down: every operation fails at once with a backend error (the engine's
//!   `Error::Backend`, a 503 over HTTP), and bookings write nothing to the store. The
//!   `ConnectionManager` reconnects by itself on the first call after Redis is back.
//!
//! The scripts' cost is O(log n) in the queue's length, except `pop_fitting` under
//! `first_fit`, which scans the queue for the first entry that fits (as the in-memory
//! admission does), and `restore`, which writes the whole queue.
//!
//! [`Reconciled`]: happening_core::Reconciled
//! [`SlotCounter`]: happening_core::ports::SlotCounter
//! [`Waitlist`]: happening_core::ports::Waitlist
//! [`SeatStore`]: happening_core::ports::SeatStore

#![warn(missing_docs)]

mod changes;
mod conn;
mod keys;
mod ready;
mod scripts;

use std::sync::Arc;

use async_trait::async_trait;
use happening_core::domain::WaitlistPolicy;
use happening_core::error::BackendError;
use happening_core::ids::{BookingId, EventId};
use happening_core::ports::*;
use redis::{ErrorKind, RedisError, Script};

pub use changes::RedisChanges;
pub use conn::{RedisConnection, RedisTarget, CLUSTER_SEEDS_MAX};
pub use keys::{EventKeys, DEFAULT_PREFIX};
pub use ready::{connect_checked, ready_engine, ReadyEngine, StartError, CONNECT_TIMEOUT_MS};
pub use redis;

use scripts::SCRIPTS;

/// [`SlotCounter`] + [`Waitlist`] on Redis, one server or a cluster. Cheap to clone: clones
/// share one self-reconnecting connection.
#[derive(Clone)]
pub struct RedisAdmission {
    conn: RedisConnection,
    prefix: Arc<str>,
}

impl std::fmt::Debug for RedisAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdmission").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// A Redis error as an admission error: the one place where driver errors cross the seam.
fn backend(e: RedisError) -> AdmissionError {
    AdmissionError::Backend(BackendError::new(e))
}

/// A reply that breaks the scripts' contract (a key written by someone else).
fn corrupt(what: impl std::fmt::Display) -> AdmissionError {
    AdmissionError::Backend(BackendError::msg(format!("unexpected Redis state: {what}")))
}

/// A count from Redis as a `u32`.
fn count(n: i64) -> Result<u32, AdmissionError> {
    u32::try_from(n).map_err(|_| corrupt(format!("count {n} out of range")))
}

impl RedisAdmission {
    /// Connects to the Redis at `url` (`redis://host:port/db`). Keys start with `prefix`
    /// ([`DEFAULT_PREFIX`] is `happening`; it may not contain braces).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RedisError> {
        Self::connect_to(&RedisTarget::Single(url.to_string()), prefix).await
    }

    /// Connects to `target`, one server or a cluster (see `conn.rs` for the timeouts: a
    /// call fails within seconds while Redis is down, and the first after it is back goes
    /// through).
    pub async fn connect_to(target: &RedisTarget, prefix: &str) -> Result<Self, RedisError> {
        check_prefix(prefix)?;
        Self::new(RedisConnection::connect(target).await?, prefix)
    }

    /// Over a connection of your own.
    pub fn new(conn: RedisConnection, prefix: &str) -> Result<Self, RedisError> {
        check_prefix(prefix)?;
        Ok(Self { conn, prefix: prefix.into() })
    }

    /// The prefix of every key this admission writes: deployments sharing one Redis keep
    /// apart by it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The keys of `event`.
    pub fn keys(&self, event: EventId) -> EventKeys {
        EventKeys::new(&self.prefix, event)
    }

    /// The connection (for readiness checks, tools and tests).
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// Whether Redis answers (`PING`; on a cluster, every primary), for readiness probes.
    pub async fn ping(&self) -> Result<(), AdmissionError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(backend)
    }

    /// Runs `script` on the keys of `event` with `args`.
    async fn run<T: redis::FromRedisValue>(&self, script: &Script, event: EventId, args: &[&dyn ToArg]) -> Result<T, AdmissionError> {
        let keys = self.keys(event);
        let mut call = script.prepare_invoke();
        for key in keys.all() {
            call.key(key);
        }
        for a in args {
            a.push_to(&mut call);
        }
        let mut conn = self.conn.clone();
        call.invoke_async(&mut conn).await.map_err(backend)
    }
}

fn check_prefix(prefix: &str) -> Result<(), RedisError> {
    if keys::valid_prefix(prefix) {
        Ok(())
    } else {
        Err(RedisError::from((ErrorKind::InvalidClientConfig, "the key prefix may not contain '{' or '}'")))
    }
}

/// A script argument (`ScriptInvocation::arg` is generic; this makes a list of them).
trait ToArg: Send + Sync {
    fn push_to(&self, call: &mut redis::ScriptInvocation<'_>);
}

impl<T: redis::ToRedisArgs + Send + Sync> ToArg for T {
    fn push_to(&self, call: &mut redis::ScriptInvocation<'_>) {
        call.arg(self);
    }
}

fn policy_name(policy: WaitlistPolicy) -> &'static str {
    match policy {
        WaitlistPolicy::Fifo => "fifo",
        WaitlistPolicy::FirstFit => "first_fit",
        WaitlistPolicy::Partial => "partial",
    }
}

#[async_trait]
impl SlotCounter for RedisAdmission {
    async fn set_free(&self, event: EventId, free: u32) -> Result<(), AdmissionError> {
        self.run::<i64>(&SCRIPTS.set_free, event, &[&free]).await.map(drop)
    }

    async fn take(&self, event: EventId, req: TakeRequest) -> Result<Take, AdmissionError> {
        debug_assert!(req.min >= 1 && req.min <= req.want);
        let max = req.waitlist_max.map_or(-1, i64::from);
        let (status, n, queued): (i64, i64, i64) =
            self.run(&SCRIPTS.take, event, &[&req.want, &req.min, &u32::from(req.behind_queue), &max]).await?;
        match status {
            1 => Ok(Take::Taken(count(n)?)),
            2 => Ok(Take::WaitlistFull),
            0 => Ok(Take::Short { free: count(n)?, queued: queued == 1 }),
            _ => Err(AdmissionError::Missing),
        }
    }

    async fn give(&self, event: EventId, n: u32) -> Result<(), AdmissionError> {
        match self.run::<i64>(&SCRIPTS.give, event, &[&n]).await? {
            -1 => Err(AdmissionError::Missing),
            _ => Ok(()),
        }
    }

    async fn free(&self, event: EventId) -> Result<u32, AdmissionError> {
        let mut conn = self.conn.clone();
        let free: Option<String> = redis::cmd("GET").arg(self.keys(event).slots).query_async(&mut conn).await.map_err(backend)?;
        // Absent, or not a count of seats (only someone else can have written that): missing,
        // as in the scripts, so that the engine rebuilds it.
        free.and_then(|v| v.parse().ok()).ok_or(AdmissionError::Missing)
    }

    async fn forget(&self, event: EventId) -> Result<(), AdmissionError> {
        self.run::<i64>(&SCRIPTS.forget, event, &[]).await.map(drop)
    }

    /// The replication ids of the primaries (`master_replid`, with each primary's address on
    /// a cluster): a replica taking over a primary, or a server restarting, starts a new one.
    async fn generation(&self) -> Result<Option<String>, AdmissionError> {
        let mut conn = self.conn.clone();
        let info: redis::Value = redis::cmd("INFO").arg("replication").query_async(&mut conn).await.map_err(backend)?;
        let ids = match info {
            // A cluster answers per primary.
            redis::Value::Map(nodes) => {
                let mut ids: Vec<String> = nodes
                    .iter()
                    .map(|(node, info)| Ok(format!("{}={}", text(node)?, replid(&text(info)?)?)))
                    .collect::<Result<_, AdmissionError>>()?;
                ids.sort();
                ids.join(",")
            }
            one => replid(&text(&one)?)?,
        };
        Ok(Some(ids))
    }
}

fn text(v: &redis::Value) -> Result<String, AdmissionError> {
    redis::from_redis_value(v).map_err(backend)
}

/// The `master_replid` of an `INFO replication` answer.
fn replid(info: &str) -> Result<String, AdmissionError> {
    info.lines()
        .find_map(|l| l.strip_prefix("master_replid:"))
        .map(|id| id.trim().to_string())
        .ok_or_else(|| corrupt("INFO replication without master_replid"))
}

#[async_trait]
impl Waitlist for RedisAdmission {
    async fn push(&self, event: EventId, entry: WaitEntry) -> Result<Pushed, AdmissionError> {
        let booking = entry.booking.to_string();
        match self.run::<i64>(&SCRIPTS.push, event, &[&booking, &keys::member(&entry)]).await? {
            -1 => Err(AdmissionError::Missing),
            n => Ok(Pushed { seats_free: n == 1 }),
        }
    }

    async fn remove(&self, event: EventId, booking: BookingId) -> Result<bool, AdmissionError> {
        match self.run::<i64>(&SCRIPTS.remove, event, &[&booking.to_string()]).await? {
            -1 => Err(AdmissionError::Missing),
            n => Ok(n == 1),
        }
    }

    async fn position(&self, event: EventId, booking: BookingId) -> Result<Option<u32>, AdmissionError> {
        match self.run::<i64>(&SCRIPTS.position, event, &[&booking.to_string()]).await? {
            -1 => Err(AdmissionError::Missing),
            0 => Ok(None),
            n => count(n).map(Some),
        }
    }

    async fn len(&self, event: EventId) -> Result<u32, AdmissionError> {
        match self.run::<i64>(&SCRIPTS.len, event, &[]).await? {
            -1 => Err(AdmissionError::Missing),
            n => count(n),
        }
    }

    async fn list(&self, event: EventId, limit: u32) -> Result<Vec<WaitEntry>, AdmissionError> {
        if limit == 0 {
            // Still `Missing` for an unknown event.
            return self.len(event).await.map(|_| Vec::new());
        }
        let stop = i64::from(limit) - 1;
        let members: Option<Vec<String>> = self.run(&SCRIPTS.list, event, &[&stop]).await?;
        let members = members.ok_or(AdmissionError::Missing)?;
        members.iter().map(|m| keys::parse_member(m).ok_or_else(|| corrupt(format!("waitlist member {m:?}")))).collect()
    }

    async fn pop_fitting(&self, event: EventId, policy: WaitlistPolicy) -> Result<Option<Promotion>, AdmissionError> {
        let (status, seats, member): (i64, i64, String) = self.run(&SCRIPTS.pop_fitting, event, &[&policy_name(policy)]).await?;
        match status {
            1 => {
                let entry = keys::parse_member(&member).ok_or_else(|| corrupt(format!("waitlist member {member:?}")))?;
                Ok(Some(Promotion { entry, seats: count(seats)? }))
            }
            0 => Ok(None),
            _ => Err(AdmissionError::Missing),
        }
    }

    fn pop_removes(&self) -> bool {
        true
    }

    async fn version(&self, event: EventId) -> Result<u64, AdmissionError> {
        let mut conn = self.conn.clone();
        let v: Option<String> = redis::cmd("GET").arg(self.keys(event).version).query_async(&mut conn).await.map_err(backend)?;
        v.map_or(Ok(0), |v| v.parse().map_err(|_| corrupt(format!("version {v:?}"))))
    }

    async fn restore(&self, event: EventId, version: u64, free: u32, entries: Vec<WaitEntry>) -> Result<bool, AdmissionError> {
        debug_assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq));
        let members: Vec<String> = entries.iter().map(keys::member).collect();
        Ok(self.run::<i64>(&SCRIPTS.restore, event, &[&version.to_string(), &free, &members]).await? == 1)
    }
}
