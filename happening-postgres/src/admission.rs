//! Admission derived from the store's own tables, for deployments with PostgreSQL alone.
//!
//! It keeps no state: the free count is read from `event_seats`, the waitlist is the
//! `waiting` bookings by `queue_seq`. So nothing can drift and nothing needs rebuilding, and
//! there is no counter row for every booking to fight over. Its answers are hints that the
//! store's own atomic steps confirm: a booking told "free" that loses the race for the seats
//! gets `Short` from the store and queues; a promotion of a booking that someone else
//! promoted or cancelled first gets `NotWaiting`. Its `pop_fitting` only reads (the head
//! leaves when the store promotes it), so it says `pop_removes` is false and the engine runs
//! one promotion pass per event at a time. `set_free`, `give`, `push`, `remove` and
//! `restore` have nothing to change, and the version stays 0 (a rebuild has nothing to
//! overwrite, so it cannot lose a step of another engine).
//!
//! A whole booking skips its probe (`unchecked_take`): the store's step checks the seats
//! and, for a newcomer that queues behind the waitlist, the queue (migrations/0016), and
//! only a booking it finds short is probed, for the cap. Bookings of an event a probe found
//! short lately probe first (`shorts.rs`), so a sold-out sale's requests are turned away by
//! a probe without a failed store step each. Probes (free seats, the queue, the cap; a
//! partial booking's, a hold's) are one read per request, so concurrent ones share a call
//! (`gather.rs`, migrations/0013): the round trip and the transaction of a call, most of
//! what a probe costs, are paid once per batch. So do the pushes (whether seats are free,
//! migrations/0017); a waiting booking's place in line is the store's answer, and the
//! queue's length is the count its queue row keeps.

use std::sync::Arc;

use async_trait::async_trait;
use happening_core::domain::WaitlistPolicy;
use happening_core::error::BackendError;
use happening_core::ids::{BookingId, EventId};
use happening_core::ports::*;
use sqlx::{PgPool, Row};

use crate::error::adm;
use crate::gather::{Bound, Gather};
use crate::shorts::Shorts;

/// Seats one request can ask for at most, to bound the free-seat probes.
const PROBE_MAX: u32 = 1_000;

/// Probe calls in flight at once (each holds a pooled connection while it runs).
const PROBE_WORKERS: usize = 4;

/// Probes per call at most.
const PROBES_MAX: usize = 64;

/// One round trip for the probes `$1`..`$5` (arrays, probe i of event `$1[i]`): is it
/// known, does anyone wait (asked only if `$4[i]`), how many seats are free, counting at
/// most `$2[i]` from the floor (`alloc::FREE_FROM`), and, if fewer than `$3[i]` are or
/// someone waits, whether `$5[i]` or more wait (null: no cap). The function of
/// migrations/0013, whose plan is generic and cached (sent as a statement, it was
/// re-planned on most calls, which cost twice its execution), all read in one snapshot.
///
/// Its `ORDER BY seat_no` pins the plan to the free-seat index from the floor. Without it the
/// planner, once the table was analyzed while an event's seats were all free, expected the
/// first rows of a sequential scan to match and chose one: it read every taken seat from
/// the table's start (167 buffers and 2 ms a probe, against 6 and 0.1 ms; on the hot event
/// over HTTP half the runs had that plan).
const PROBE: &str = "SELECT known, queued, free, queue_full FROM happening_probe($1, $2, $3, $4, $5)";

/// What the probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    free: u32,
    queued: bool,
    /// Short, and the waitlist at its cap.
    full: bool,
}

/// A probe asked: of this event, for this request.
type Ask = (EventId, TakeRequest);

/// The admission's probes, gathered (`gather.rs`): concurrent probes share a call.
type Probes = Gather<Ask, Result<Probe, AdmissionError>>;

/// The pushes (whether their event has a free seat), gathered like the probes.
type Pushes = Gather<EventId, Result<Pushed, AdmissionError>>;

/// Whether any seat of each event `$1` is free: the function of migrations/0017.
const SEATS_FREE: &str = "SELECT event_id, seats_free FROM happening_seats_free($1)";

/// The [`SlotCounter`] and [`Waitlist`] read from the store's own tables (free seats from
/// `event_seats`, the queue from the waiting bookings), so nothing drifts or needs
/// rebuilding: for a deployment with PostgreSQL alone, beside [`PgStore`](crate::PgStore)
/// on the same database. Cheap to clone: clones share the pool and the batched probes.
#[derive(Clone, Debug)]
pub struct PgAdmission {
    pool: PgPool,
    /// `None` when made outside a tokio runtime: each probe (and push) is then a call of
    /// its own.
    probes: Option<Arc<Probes>>,
    pushes: Option<Arc<Pushes>>,
    /// Events whose bookings probe first (`unchecked_take`).
    shorts: Arc<Shorts>,
}

impl PgAdmission {
    /// The admission on `pool`; inside a tokio runtime it also starts the tasks that run the
    /// probes and the pushes in batches (they end with the last clone).
    pub fn new(pool: PgPool) -> Self {
        let probes = gathered(&pool, "probe", |pool, asks: Vec<Ask>| async move { probe_all(&pool, &asks).await });
        let pushes = gathered(&pool, "push", |pool, events: Vec<EventId>| async move {
            Ok(seats_free(&pool, &events).await?.into_iter().map(Ok).collect())
        });
        Self { pool, probes, pushes, shorts: Arc::default() }
    }

    /// Free seats of `event` counting at most `req.want`, whether anyone waits (if
    /// `req.behind_queue`), and whether the request is short with the queue at
    /// `req.waitlist_max`; `Missing` for an unknown event.
    async fn probe(&self, event: EventId, req: TakeRequest) -> Result<Probe, AdmissionError> {
        match &self.probes {
            Some(p) => {
                p.submit((event, req)).await.unwrap_or_else(|| Err(AdmissionError::Backend(BackendError::msg("the probe workers stopped"))))
            }
            None => probe_all(&self.pool, &[(event, req)]).await.map_err(adm)?.pop().expect("one answer per probe"),
        }
    }

    /// Free seats of `event`, counting at most `limit`; `Missing` for an unknown event.
    async fn free_up_to(&self, event: EventId, limit: u32) -> Result<u32, AdmissionError> {
        let req = TakeRequest { want: limit, min: 0, behind_queue: false, waitlist_max: None };
        Ok(self.probe(event, req).await?.free)
    }

    async fn entries(&self, event: EventId, extra: &str, limit: i64) -> Result<Vec<WaitEntry>, AdmissionError> {
        let rows = sqlx::query(&format!(
            "SELECT id, seats, queue_seq FROM bookings WHERE event_id = $1 AND status = 'waiting' {extra} ORDER BY queue_seq LIMIT $2"
        ))
        .bind(event.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(adm)?;
        rows.iter()
            .map(|r| {
                Ok(WaitEntry {
                    booking: BookingId(r.try_get("id").map_err(adm)?),
                    seats: r.try_get::<i32, _>("seats").map_err(adm)? as u32,
                    seq: r.try_get::<i64, _>("queue_seq").map_err(adm)? as u64,
                })
            })
            .collect()
    }
}

#[async_trait]
impl SlotCounter for PgAdmission {
    async fn set_free(&self, _event: EventId, _free: u32) -> Result<(), AdmissionError> {
        Ok(())
    }

    async fn take(&self, event: EventId, req: TakeRequest) -> Result<Take, AdmissionError> {
        let p = self.probe(event, req).await?;
        let n = req.want.min(p.free);
        let take = if !p.queued && n >= req.min {
            Take::Taken(n)
        } else if p.full {
            Take::WaitlistFull
        } else {
            Take::Short { free: p.free, queued: p.queued }
        };
        self.shorts.saw(event, !matches!(take, Take::Taken(_)));
        Ok(take)
    }

    /// A whole booking skips its probe, unless a probe found its event short lately
    /// (`shorts.rs`): `take` changes nothing here, and the store's step checks the seats
    /// and the queue again anyway. Over 1,000 events over HTTP the probes were a call per
    /// four bookings and a stage each booking waited in, which kept the batches behind it
    /// small (ARCHITECTURE.md, "Bookings without probes").
    fn unchecked_take(&self, event: EventId, req: &TakeRequest) -> bool {
        req.min == req.want && !self.shorts.recent(event)
    }

    async fn give(&self, _event: EventId, _n: u32) -> Result<(), AdmissionError> {
        Ok(())
    }

    async fn free(&self, event: EventId) -> Result<u32, AdmissionError> {
        self.free_up_to(event, u32::MAX).await
    }

    async fn forget(&self, _event: EventId) -> Result<(), AdmissionError> {
        Ok(())
    }
}

#[async_trait]
impl Waitlist for PgAdmission {
    /// The booking is in the queue already (the store wrote it): this reads whether any
    /// seat is free, in a snapshot taken after it was written. So a seat freed after that
    /// snapshot is freed by a step whose promotion pass sees the booking.
    async fn push(&self, event: EventId, _entry: WaitEntry) -> Result<Pushed, AdmissionError> {
        match &self.pushes {
            Some(p) => p.submit(event).await.unwrap_or_else(|| Err(AdmissionError::Backend(BackendError::msg("the push workers stopped")))),
            None => Ok(seats_free(&self.pool, &[event]).await.map_err(adm)?.pop().expect("one answer per push")),
        }
    }

    async fn remove(&self, _event: EventId, booking: BookingId) -> Result<bool, AdmissionError> {
        let waiting: Option<bool> = sqlx::query_scalar("SELECT status = 'waiting' FROM bookings WHERE id = $1")
            .bind(booking.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(adm)?;
        Ok(waiting.unwrap_or(false))
    }

    async fn position(&self, event: EventId, booking: BookingId) -> Result<Option<u32>, AdmissionError> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM bookings w WHERE w.event_id = $1 AND w.status = 'waiting' AND w.queue_seq <= b.queue_seq) \
             FROM bookings b WHERE b.id = $2 AND b.event_id = $1 AND b.status = 'waiting'",
        )
        .bind(event.0)
        .bind(booking.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(adm)?;
        Ok(n.map(|n| n as u32))
    }

    /// The count the event's queue row keeps (migrations/0017).
    async fn len(&self, event: EventId) -> Result<u32, AdmissionError> {
        let n: i32 = sqlx::query_scalar("SELECT coalesce((SELECT waiting FROM event_queues WHERE event_id = $1), 0)")
            .bind(event.0)
            .fetch_one(&self.pool)
            .await
            .map_err(adm)?;
        Ok(n as u32)
    }

    async fn list(&self, event: EventId, limit: u32) -> Result<Vec<WaitEntry>, AdmissionError> {
        self.entries(event, "", limit as i64).await
    }

    async fn pop_fitting(&self, event: EventId, policy: WaitlistPolicy) -> Result<Option<Promotion>, AdmissionError> {
        let pick = match policy {
            WaitlistPolicy::FirstFit => {
                let free = self.free_up_to(event, PROBE_MAX).await?;
                self.entries(event, &format!("AND seats <= {free}"), 1).await?.pop().map(|e| (e, e.seats))
            }
            WaitlistPolicy::Fifo | WaitlistPolicy::Partial => {
                let Some(head) = self.entries(event, "", 1).await?.pop() else {
                    return Ok(None);
                };
                let free = self.free_up_to(event, head.seats).await?;
                match policy {
                    WaitlistPolicy::Fifo if free >= head.seats => Some((head, head.seats)),
                    WaitlistPolicy::Partial if free >= 1 => Some((head, free)),
                    _ => None,
                }
            }
        };
        Ok(pick.map(|(entry, seats)| Promotion { entry, seats }))
    }

    /// The pop only reads: the booking leaves the queue when the store promotes it.
    fn pop_removes(&self) -> bool {
        false
    }

    async fn version(&self, _event: EventId) -> Result<u64, AdmissionError> {
        Ok(0)
    }

    async fn restore(&self, _event: EventId, _version: u64, _free: u32, _entries: Vec<WaitEntry>) -> Result<bool, AdmissionError> {
        Ok(true)
    }
}

/// Calls of `run` on `pool`, gathered: a call that fails fails each of its requests, with
/// why (`what` names the call).
fn gathered<I, T, F, Fut>(pool: &PgPool, what: &'static str, run: F) -> Option<Arc<Gather<I, Result<T, AdmissionError>>>>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Fn(PgPool, Vec<I>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Vec<Result<T, AdmissionError>>, sqlx::Error>> + Send + 'static,
{
    let pool = pool.clone();
    Gather::start(
        PROBE_WORKERS,
        Bound::items(PROBES_MAX),
        move |items: Vec<I>| run(pool.clone(), items),
        move |why| Err(AdmissionError::Backend(BackendError::msg(format!("{what} failed: {why}")))),
    )
    .map(Arc::new)
}

/// Plans the probe and the positions on a new connection and caches their prepared
/// statements there, for an event that does not exist (as `batch::warm_up` does for the
/// batch).
pub(crate) async fn warm_up(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let event = EventId(uuid::Uuid::new_v4());
    let req = TakeRequest { want: 1, min: 1, behind_queue: true, waitlist_max: Some(1) };
    match &probe_all(&mut *conn, &[(event, req)]).await?[..] {
        [Err(AdmissionError::Missing)] => {}
        other => return Err(sqlx::Error::Protocol(format!("a warm-up probe of no event saw one: {other:?}"))),
    }
    match &seats_free(conn, &[event]).await?[..] {
        [Pushed { seats_free: false }] => Ok(()),
        other => Err(sqlx::Error::Protocol(format!("a warm-up push to no event saw a free seat: {other:?}"))),
    }
}

/// Whether each of `events` has a free seat, in one call (one snapshot), in their order;
/// an event asked twice is read once.
async fn seats_free<'c>(exec: impl sqlx::PgExecutor<'c>, events: &[EventId]) -> Result<Vec<Pushed>, sqlx::Error> {
    let mut distinct: Vec<uuid::Uuid> = events.iter().map(|e| e.0).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let rows = sqlx::query(SEATS_FREE).bind(&distinct).fetch_all(exec).await?;
    assert_eq!(rows.len(), distinct.len(), "one row per event");
    let mut free = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        free.insert(row.try_get::<uuid::Uuid, _>("event_id")?, row.try_get::<bool, _>("seats_free")?);
    }
    Ok(events.iter().map(|e| Pushed { seats_free: free[&e.0] }).collect())
}

/// Runs `asks` in one call (one snapshot): the answers in their order, `Missing` for an
/// unknown event. Equal asks share one probe: in one snapshot their answers are the same.
async fn probe_all<'c>(exec: impl sqlx::PgExecutor<'c>, asks: &[Ask]) -> Result<Vec<Result<Probe, AdmissionError>>, sqlx::Error> {
    let mut distinct: Vec<Ask> = Vec::with_capacity(asks.len());
    let slots: Vec<usize> = asks
        .iter()
        .map(|ask| {
            distinct.iter().position(|d| d == ask).unwrap_or_else(|| {
                distinct.push(*ask);
                distinct.len() - 1
            })
        })
        .collect();
    let rows = sqlx::query(PROBE)
        .bind(distinct.iter().map(|(e, _)| e.0).collect::<Vec<_>>())
        .bind(distinct.iter().map(|(_, r)| i64::from(r.want)).collect::<Vec<_>>())
        .bind(distinct.iter().map(|(_, r)| i64::from(r.min)).collect::<Vec<_>>())
        .bind(distinct.iter().map(|(_, r)| r.behind_queue).collect::<Vec<_>>())
        .bind(distinct.iter().map(|(_, r)| r.waitlist_max.map(i64::from)).collect::<Vec<_>>())
        .fetch_all(exec)
        .await?;
    assert_eq!(rows.len(), distinct.len(), "one row per probe");
    let seen = rows
        .iter()
        .map(|row| {
            Ok(row.try_get::<bool, _>("known")?.then_some(Probe {
                free: u32::try_from(row.try_get::<i64, _>("free")?).unwrap_or(u32::MAX),
                queued: row.try_get("queued")?,
                full: row.try_get("queue_full")?,
            }))
        })
        .collect::<Result<Vec<Option<Probe>>, sqlx::Error>>()?;
    Ok(slots.into_iter().map(|i| seen[i].ok_or(AdmissionError::Missing)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe walks the seats in order from the floor whatever the statistics say: here
    /// they were taken while all 20,000 seats were free, then 15,000 were taken (as a sale
    /// does between two ANALYZEs). Without `ORDER BY seat_no` the planner chose a
    /// sequential scan that read every taken seat first.
    #[tokio::test]
    async fn the_probe_reads_from_the_floor_whatever_the_statistics() {
        let Some(server) = crate::testing::server_url() else { return };
        let pool = PgPool::connect(&crate::testing::fresh_database_url(&server).await).await.expect("connect");
        let (org, event) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        for sql in [
            format!("INSERT INTO organizations (id, name, created_at) VALUES ('{org}', 'o', now())"),
            format!(
                "INSERT INTO events (id, org_id, name, event_date, total_slots, status, waitlist_policy, created_at, updated_at) \
                 VALUES ('{event}', '{org}', 'e', now(), 20000, 'upcoming', 'fifo', now(), now())"
            ),
            format!("INSERT INTO event_seats (event_id, seat_no) SELECT '{event}', generate_series(1, 20000)"),
            "ANALYZE event_seats".to_string(),
            format!("UPDATE event_seats SET booking_id = gen_random_uuid() WHERE event_id = '{event}' AND seat_no <= 15000"),
            format!("UPDATE events SET seats_free_from = 15001 WHERE id = '{event}'"),
        ] {
            sqlx::query(&sql).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        // On one connection: the first call plans the function's statement (reading the
        // catalogs), the second runs the cached plan, in a transaction whose counters show
        // how the seats were read.
        let mut conn = pool.acquire().await.expect("a connection");
        fn probe(sql: &str, event: uuid::Uuid) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
            sqlx::query(sql).bind(vec![event]).bind(vec![1i64]).bind(vec![1i64]).bind(vec![true]).bind(vec![None::<i64>])
        }
        probe(PROBE, event).fetch_one(&mut *conn).await.expect("probe");
        // Rows sequential scans of the seats handed up (before any filter; every taken seat,
        // if the probe ran one), counted by this backend since its last report: read before
        // and after, in one transaction (nothing is reported in between).
        let scanned = "SELECT pg_stat_get_xact_tuples_returned('event_seats'::regclass)";
        sqlx::query("BEGIN").execute(&mut *conn).await.expect("begin");
        let before: i64 = sqlx::query_scalar(scanned).fetch_one(&mut *conn).await.expect("scans");
        let explain = format!("EXPLAIN (ANALYZE, BUFFERS) {PROBE}");
        let lines: Vec<String> =
            probe(&explain, event).fetch_all(&mut *conn).await.expect("explain the probe").iter().map(|r| r.get(0)).collect();
        let scanned = sqlx::query_scalar::<_, i64>(scanned).fetch_one(&mut *conn).await.expect("scans") - before;
        sqlx::query("COMMIT").execute(&mut *conn).await.expect("commit");
        let text = lines.join("\n");
        let buffers = crate::testing::plan_buffers(&lines);
        assert!(scanned < 100, "the probe walks an index of the seats from the floor, not the table ({scanned} rows):\n{text}");
        assert!(buffers < 40, "{buffers} buffers for a probe whose first free seat is at the floor:\n{text}");

        let req = TakeRequest { want: 1, min: 1, behind_queue: true, waitlist_max: None };
        let p = PgAdmission::new(pool.clone()).probe(EventId(event), req).await.expect("probe");
        assert_eq!((p.free, p.queued, p.full), (1, false, false));
    }

    /// Probes of one call answer each for its own event and request, in order: an unknown
    /// event is `Missing` for its probe alone, equal probes get equal answers, and a cap is
    /// checked only where the request is short.
    #[tokio::test]
    async fn a_batch_of_probes_answers_each_probe_in_order() {
        let Some(server) = crate::testing::server_url() else { return };
        let pool = PgPool::connect(&crate::testing::fresh_database_url(&server).await).await.expect("connect");
        let (org, open, sold) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let event = |id: uuid::Uuid, seats: u32| {
            format!(
                "INSERT INTO events (id, org_id, name, event_date, total_slots, status, waitlist_policy, created_at, updated_at) \
                 VALUES ('{id}', '{org}', 'e', now(), {seats}, 'upcoming', 'fifo', now(), now())"
            )
        };
        let waiting = |seq: u32| {
            format!(
                "INSERT INTO bookings (id, event_id, user_id, seats, status, queue_seq, created_at, updated_at) \
                 VALUES (gen_random_uuid(), '{sold}', gen_random_uuid(), 1, 'waiting', {seq}, now(), now())"
            )
        };
        for sql in [
            format!("INSERT INTO organizations (id, name, created_at) VALUES ('{org}', 'o', now())"),
            // `open`: seats 2 and 3 of 3 free; `sold`: its one seat taken, two waiting.
            event(open, 3),
            format!("INSERT INTO event_seats (event_id, seat_no) SELECT '{open}', generate_series(1, 3)"),
            format!("UPDATE event_seats SET booking_id = gen_random_uuid() WHERE event_id = '{open}' AND seat_no = 1"),
            event(sold, 1),
            format!("INSERT INTO event_seats (event_id, seat_no, booking_id) VALUES ('{sold}', 1, gen_random_uuid())"),
            waiting(1),
            waiting(2),
        ] {
            sqlx::query(&sql).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let ask = |event: uuid::Uuid, want: u32, min: u32, cap: Option<u32>| {
            (EventId(event), TakeRequest { want, min, behind_queue: true, waitlist_max: cap })
        };
        let seen = |free: u32, queued: bool, full: bool| -> Result<Probe, String> { Ok(Probe { free, queued, full }) };
        let answers = probe_all(
            &pool,
            &[
                ask(open, 5, 1, None),
                ask(uuid::Uuid::new_v4(), 1, 1, None),
                ask(open, 1, 1, Some(1)),
                ask(sold, 1, 1, Some(2)),
                ask(open, 5, 1, None),
                ask(sold, 1, 1, Some(3)),
                ask(open, 3, 3, Some(0)),
            ],
        )
        .await
        .expect("one call");
        let answers: Vec<Result<Probe, String>> = answers.into_iter().map(|a| a.map_err(|e| e.to_string())).collect();
        assert_eq!(
            answers,
            [
                seen(2, false, false),
                Err(AdmissionError::Missing.to_string()),
                seen(1, false, false),
                seen(0, true, true),
                seen(2, false, false),
                seen(0, true, false),
                seen(2, false, true),
            ]
        );
    }

    /// One call answers each push in order, whether its event has a free seat (an event
    /// asked twice, once), from the free-seat index above the event's floor.
    #[tokio::test]
    async fn a_batch_of_pushes_answers_whether_each_event_has_a_free_seat() {
        let Some(server) = crate::testing::server_url() else { return };
        let pool = PgPool::connect(&crate::testing::fresh_database_url(&server).await).await.expect("connect");
        let (org, sold, open, above) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let event = |id: uuid::Uuid, seats: u32| {
            format!(
                "INSERT INTO events (id, org_id, name, event_date, total_slots, status, waitlist_policy, created_at, updated_at) \
                 VALUES ('{id}', '{org}', 'e', now(), {seats}, 'upcoming', 'fifo', now(), now())"
            )
        };
        for sql in [
            format!("INSERT INTO organizations (id, name, created_at) VALUES ('{org}', 'o', now())"),
            // `sold`: its one seat taken. `open`: its seat free. `above`: seat 1 taken, below
            // its floor (2), seat 2 free.
            event(sold, 1),
            format!("INSERT INTO event_seats (event_id, seat_no, booking_id) VALUES ('{sold}', 1, gen_random_uuid())"),
            event(open, 1),
            format!("INSERT INTO event_seats (event_id, seat_no) VALUES ('{open}', 1)"),
            event(above, 2),
            format!(
                "INSERT INTO event_seats (event_id, seat_no, booking_id) VALUES ('{above}', 1, gen_random_uuid()), ('{above}', 2, NULL)"
            ),
            format!("UPDATE events SET seats_free_from = 2 WHERE id = '{above}'"),
        ] {
            sqlx::query(&sql).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let (sold, open, above) = (EventId(sold), EventId(open), EventId(above));
        let answers = seats_free(&pool, &[sold, open, sold, above, EventId::new()]).await.expect("one call");
        let free: Vec<bool> = answers.iter().map(|p| p.seats_free).collect();
        assert_eq!(free, [false, true, false, true, false]);
    }

    /// The functions on every booking's path keep their generic plans (and the batch its
    /// index scans, 0016): `CREATE OR REPLACE FUNCTION` drops a `SET` clause it does not
    /// repeat, and later migrations redefine these functions (0010 and 0012 say why the
    /// clause matters).
    #[tokio::test]
    async fn the_hot_path_functions_keep_their_generic_plans() {
        let Some(server) = crate::testing::server_url() else { return };
        let pool = PgPool::connect(&crate::testing::fresh_database_url(&server).await).await.expect("connect");
        let generic = "plan_cache_mode=force_generic_plan";
        for (function, set) in [
            ("happening_probe", vec![generic]),
            ("happening_seats_free", vec![generic]),
            ("happening_book_batch", vec![generic, "enable_seqscan=off"]),
        ] {
            // The newest form (0016 keeps 0015's batch function for a rolling upgrade).
            let config: Vec<Option<Vec<String>>> =
                sqlx::query_scalar("SELECT proconfig FROM pg_proc WHERE proname = $1 ORDER BY pronargs DESC LIMIT 1")
                    .bind(function)
                    .fetch_all(&pool)
                    .await
                    .expect("pg_proc");
            assert_eq!(config, [Some(set.iter().map(|s| s.to_string()).collect())], "{function}");
        }
    }
}
