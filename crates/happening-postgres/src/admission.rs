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

use async_trait::async_trait;
use happening_core::domain::WaitlistPolicy;
use happening_core::ids::{BookingId, EventId};
use happening_core::ports::*;
use sqlx::{PgPool, Row};

use crate::error::adm;

/// Seats one request can ask for at most, to bound the free-seat probes.
const PROBE_MAX: u32 = 1_000;

/// One round trip for event `$1`: is it known, does anyone wait (asked only if `$4`), how
/// many seats are free, counting at most `$2` from the floor (`alloc::FREE_FROM`), and, if
/// fewer than `$3` are or someone waits, whether `$5` or more wait (`$5` null: no cap). The
/// function of migrations/0012, whose plan is generic and cached (sent as a statement, it
/// was re-planned on most calls, which cost twice its execution), all read in one snapshot.
///
/// Its `ORDER BY seat_no` pins the plan to the free-seat index from the floor. Without it the
/// planner, once the table was analyzed while an event's seats were all free, expected the
/// first rows of a sequential scan to match and chose one: it read every taken seat from
/// the table's start (167 buffers and 2 ms a probe, against 6 and 0.1 ms; on the hot event
/// over HTTP half the runs had that plan, BENCHMARKS.md "Rows written per batch").
const PROBE: &str = "SELECT known, queued, free, queue_full FROM happening_probe($1, $2, $3, $4, $5)";

/// What the probe saw.
struct Probe {
    free: u32,
    queued: bool,
    /// Short, and the waitlist at its cap.
    full: bool,
}

#[derive(Clone, Debug)]
pub struct PgAdmission {
    pool: PgPool,
}

impl PgAdmission {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Free seats of `event` counting at most `req.want`, whether anyone waits (if
    /// `req.behind_queue`), and whether the request is short with the queue at
    /// `req.waitlist_max`; `Missing` for an unknown event.
    async fn probe(&self, event: EventId, req: TakeRequest) -> Result<Probe, AdmissionError> {
        let row = sqlx::query(PROBE)
            .bind(event.0)
            .bind(i64::from(req.want))
            .bind(i64::from(req.min))
            .bind(req.behind_queue)
            .bind(req.waitlist_max.map(i64::from))
            .fetch_one(&self.pool)
            .await
            .map_err(adm)?;
        if !row.try_get::<bool, _>("known").map_err(adm)? {
            return Err(AdmissionError::Missing);
        }
        Ok(Probe {
            free: row.try_get::<i64, _>("free").map_err(adm)? as u32,
            queued: row.try_get("queued").map_err(adm)?,
            full: row.try_get("queue_full").map_err(adm)?,
        })
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
        Ok(if !p.queued && n >= req.min {
            Take::Taken(n)
        } else if p.full {
            Take::WaitlistFull
        } else {
            Take::Short { free: p.free, queued: p.queued }
        })
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
    /// `seats_free` is always `true`: the counter is the store's, read apart.
    async fn push(&self, event: EventId, entry: WaitEntry) -> Result<Pushed, AdmissionError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'waiting' AND queue_seq <= $2")
            .bind(event.0)
            .bind(entry.seq as i64)
            .fetch_one(&self.pool)
            .await
            .map_err(adm)?;
        Ok(Pushed { position: n as u32, seats_free: true })
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

    async fn len(&self, event: EventId) -> Result<u32, AdmissionError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'waiting'")
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
            sqlx::query(sql).bind(event).bind(1i64).bind(1i64).bind(true).bind(None::<i64>)
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
        // The first "Buffers:" line is the whole statement's, the function's reads included.
        let total = lines.iter().find(|l| l.trim_start().starts_with("Buffers: shared")).expect("buffers in the plan");
        let count =
            |what: &str| -> u64 { total.split_whitespace().find_map(|w| w.strip_prefix(what)).map_or(0, |n| n.parse().expect("a count")) };
        let buffers = count("hit=") + count("read=");
        assert!(scanned < 100, "the probe walks an index of the seats from the floor, not the table ({scanned} rows):\n{text}");
        assert!(buffers < 40, "{buffers} buffers for a probe whose first free seat is at the floor:\n{text}");

        let req = TakeRequest { want: 1, min: 1, behind_queue: true, waitlist_max: None };
        let p = PgAdmission::new(pool.clone()).probe(EventId(event), req).await.expect("probe");
        assert_eq!((p.free, p.queued, p.full), (1, false, false));
    }

    /// The functions on every booking's path keep their generic plans: `CREATE OR REPLACE
    /// FUNCTION` drops a `SET` clause it does not repeat, and later migrations redefine
    /// these functions (0010 and 0012 say why the clause matters).
    #[tokio::test]
    async fn the_hot_path_functions_keep_their_generic_plans() {
        let Some(server) = crate::testing::server_url() else { return };
        let pool = PgPool::connect(&crate::testing::fresh_database_url(&server).await).await.expect("connect");
        for function in ["happening_probe", "happening_book_batch"] {
            let config: Vec<Option<Vec<String>>> = sqlx::query_scalar("SELECT proconfig FROM pg_proc WHERE proname = $1")
                .bind(function)
                .fetch_all(&pool)
                .await
                .expect("pg_proc");
            assert_eq!(config, [Some(vec!["plan_cache_mode=force_generic_plan".to_string()])], "{function}");
        }
    }
}
