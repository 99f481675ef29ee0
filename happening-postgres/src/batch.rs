//! Group commit for the hot path of a flash sale: concurrent bookings (a confirmed booking of
//! the lowest free seats, or a waiting booking) share one call of `happening_book_batch`
//! (migrations/0003): one round trip and one commit for up to [`BATCH_MAX`] bookings.
//!
//! Why: on a durable server a booking's own work is small (a seat row, three inserts); what
//! costs is per transaction: the round trips, the commit and its WAL flush, the pool. So the
//! store gathers what arrives while its [`WORKERS`] are busy (`gather.rs`: a lone request
//! goes at once, alone; no timer ever delays one).
//!
//! A batch's confirmed bookings of one event share one search for the lowest free seats
//! (migrations/0005), so on a hot event the walk past seats being taken is paid once per
//! batch, not once per booking; and a batch locks, checks, searches and takes the seats of
//! all its events with one statement each (migrations/0015), so a batch spread over many
//! events costs about what one over a hot event does. Its rows (bookings, history, outbox)
//! go in with one INSERT per table (migrations/0006): each INSERT statement parses and
//! plans its table's CHECK constraints, which per booking was a tenth of the machine's CPU
//! in a flash sale.
//!
//! Items fail alone (an event gone or cancelled, a taken key, no seats left to share, a
//! newcomer that queues behind someone waiting: HP006, migrations/0016); a
//! batch whose call fails (connection lost) fails all its items, none of them written.
//! Items that may wait on row locks (requested seats) are not batched: one wait would stall
//! the batch.

use chrono::{DateTime, Utc};
use happening_core::domain::{Booking, BookingStatus, HistoryEntry, NewBooking, Notification};
use happening_core::error::BackendError;
use happening_core::ports::StoreError;
use sqlx::{PgPool, Row};

use crate::error::db;
use crate::gather::{Bound, Gather};

/// Bookings per batch at most. A batch costs PostgreSQL about a millisecond of CPU whatever
/// its size (its statements' executor starts, the triggers, the commit), a booking in it
/// tens of microseconds: in a flash sale, where one event's waiting bookings are written
/// one batch after another (its queue row, migrations/0017), larger batches are most of
/// what a waiting booking saves (BENCHMARKS.md, "The flash sale on each store").
pub(crate) const BATCH_MAX: usize = 128;

/// Bookings with an idempotency key per batch at most: each is a subtransaction, and
/// PostgreSQL tracks 64 per transaction in shared memory before it overflows to disk
/// (slowing every snapshot). A keyed booking beyond goes in the next batch.
pub(crate) const KEYED_MAX: usize = 32;

/// Batches in flight at once (each holds one pooled connection while it runs): enough to
/// overlap one batch's commit with the next one's work, few enough that batches fill up.
/// Two, not four, since bookings skip their probe (0016): over 1,000 events over HTTP
/// 5,625-6,604 bookings/s against 4,945-6,206 in three alternated runs, batches of ~15
/// bookings instead of ~8 (ARCHITECTURE.md, "Bookings without probes").
pub(crate) const WORKERS: usize = 2;

/// One booking to write: confirmed with the lowest free seats (any requested seats are
/// ignored: such bookings are not batched), or waiting.
pub(crate) struct Item {
    /// Confirmed (fast mode) or waiting.
    pub confirm: bool,
    pub new: NewBooking,
    pub lock: i64,
    pub now: DateTime<Utc>,
    pub history: HistoryEntry,
    pub note: Notification,
}

/// How an item went.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Confirmed with these seats.
    Seats(Vec<i32>),
    /// Waiting with this place in the queue order (`queue_seq`) and this number: its
    /// 1-based place in line as it joined (migrations/0017).
    Waiting { seq: i64, number: i32 },
    /// Rolled back alone: its SQLSTATE (`HP001`..`HP006`, see migrations/0002) and message.
    Failed { code: String, message: String },
}

/// The store's batcher: [`WORKERS`] tasks writing what queued, [`BATCH_MAX`] at a time.
pub(crate) type Batcher = Gather<Item, Result<Outcome, StoreError>>;

/// Starts the batcher on the current tokio runtime; `None` outside one (the store then
/// writes each booking as a batch of one).
pub(crate) fn start(pool: PgPool) -> Option<Batcher> {
    Gather::start(
        WORKERS,
        Bound { items_max: BATCH_MAX, heavy: |it: &Item| it.new.idempotency.is_some(), heavy_max: KEYED_MAX },
        move |items: Vec<Item>| {
            let pool = pool.clone();
            async move { Ok::<_, StoreError>(run(&pool, &items).await?.into_iter().map(Ok).collect()) }
        },
        |why| Err(StoreError::Backend(BackendError::msg(format!("booking batch failed: {why}")))),
    )
}

/// Plans the batch's statements on a new connection, and caches its prepared statement
/// there, with a batch that writes nothing: a booking and a waiting booking of an event
/// that does not exist. Else the first batches on each connection plan them all (a new
/// connection's first call of the batch function took milliseconds, not a fraction of one),
/// which at a flash sale's start, with every connection new, held the first requests up.
pub(crate) async fn warm_up(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let event = happening_core::ids::EventId(uuid::Uuid::new_v4());
    let now = Utc::now();
    let items: Vec<Item> = [true, false]
        .into_iter()
        .map(|confirm| {
            let new = NewBooking {
                id: happening_core::ids::BookingId(uuid::Uuid::new_v4()),
                event_id: event,
                user_id: happening_core::ids::UserId(uuid::Uuid::new_v4()),
                seats_requested: 1,
                seats: 1,
                seat_numbers: Vec::new(),
                strict_seats: false,
                idempotency: None,
                behind_queue: true,
            };
            let status = if confirm { BookingStatus::Confirmed } else { BookingStatus::Waiting };
            let (history, note) = happening_core::effects::created(&Booking::new(&new, status, Vec::new(), now), now);
            Item { confirm, new, lock: 0, now, history, note }
        })
        .collect();
    let outcomes = run(conn, &items).await.map_err(|e| sqlx::Error::Protocol(format!("warming up the booking batch: {e}")))?;
    match &outcomes[..] {
        [Outcome::Failed { code: a, .. }, Outcome::Failed { code: b, .. }] if a == "HP001" && b == "HP001" => Ok(()),
        _ => Err(sqlx::Error::Protocol(format!("a warm-up batch wrote or failed otherwise: {outcomes:?}"))),
    }
}

/// Through `batcher`, or a batch of one without it.
pub(crate) async fn submit(pool: &PgPool, batcher: Option<&Batcher>, item: Item) -> Result<Outcome, StoreError> {
    match batcher {
        Some(b) => b.submit(item).await.unwrap_or_else(|| Err(StoreError::Backend(BackendError::msg("the booking batcher stopped")))),
        None => Ok(run(pool, std::slice::from_ref(&item)).await?.pop().expect("one outcome per item")),
    }
}

/// Writes `items` in one call (a batch of one when the store has no batcher). The outcomes
/// are in the items' order.
pub(crate) async fn run<'c>(exec: impl sqlx::PgExecutor<'c>, items: &[Item]) -> Result<Vec<Outcome>, StoreError> {
    assert!(!items.is_empty() && items.len() <= BATCH_MAX, "a batch of {} items", items.len());
    debug_assert!(items.iter().filter(|it| it.new.idempotency.is_some()).count() <= KEYED_MAX, "too many keyed items");
    fn key(it: &Item) -> Option<&happening_core::domain::IdempotencyKey> {
        it.new.idempotency.as_ref()
    }
    let rows = sqlx::query(
        "SELECT code, message, seats, seq, waiting_number FROM happening_book_batch(\
         $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(items.iter().map(|it| it.confirm).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.new.event_id.0).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.lock).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.new.id.0).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.new.user_id.0).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.new.seats_requested as i32).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.new.seats as i32).collect::<Vec<_>>())
    .bind(items.iter().map(|it| key(it).map(|k| k.user_id.0)).collect::<Vec<_>>())
    .bind(items.iter().map(|it| key(it).map(|k| k.key.clone())).collect::<Vec<_>>())
    .bind(items.iter().map(|it| key(it).map(|k| k.fingerprint as i64)).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.now).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.history.action.as_str()).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.history.status.as_str()).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.note.id.0).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.note.kind.as_str()).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.note.seats as i32).collect::<Vec<_>>())
    .bind(items.iter().map(|it| it.new.behind_queue).collect::<Vec<_>>())
    .fetch_all(exec)
    .await
    .map_err(db)?;
    assert_eq!(rows.len(), items.len(), "one result row per item");
    // In the items' order: the function takes its locks in one order and groups each
    // event's bookings itself (migrations/0015).
    rows.iter()
        .zip(items)
        .map(|(row, it)| {
            let code: Option<String> = row.try_get("code").map_err(db)?;
            Ok(match code {
                Some(code) => {
                    Outcome::Failed { code, message: row.try_get::<Option<String>, _>("message").map_err(db)?.unwrap_or_default() }
                }
                None if it.confirm => Outcome::Seats(row.try_get("seats").map_err(db)?),
                None => Outcome::Waiting { seq: row.try_get("seq").map_err(db)?, number: row.try_get("waiting_number").map_err(db)? },
            })
        })
        .collect()
}
