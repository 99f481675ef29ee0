//! Seat allocation on `event_seats`, inside the caller's transaction.
//!
//! Lowest free seats are taken with `FOR UPDATE SKIP LOCKED`, so concurrent bookings of one
//! event take different seats without waiting for each other ([`Mode::Fast`]). When that
//! comes up short (free seats exist but others hold their row locks), the caller rolls its
//! transaction back and runs it again in [`Mode::Blocking`], which waits for those locks in
//! ascending seat order, so two waiters can never deadlock, and answers exactly.

use happening_core::error::Conflict;
use happening_core::ids::{EventId, SeatNo};
use happening_core::ports::StoreError;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use crate::error::db;
use crate::rows::ints;

/// Where the free seats of event `$1` begin: every seat below is taken (migration 0004,
/// `events.seats_free_from`), so searches start there rather than walk the index entries
/// of every seat taken since the last vacuum.
///
/// A seat freed by the current transaction lowers the floor only at its commit (a deferred
/// trigger), so a search from the floor must not run in a transaction that freed seats
/// before it: it would miss them. None does: a promotion is a transaction of its own after
/// the cancel that freed the seats (test `a_seat_freed_below_the_floor_goes_to_the_waiting_booking`).
pub(crate) const FREE_FROM: &str = "(SELECT seats_free_from FROM events WHERE id = $1)";

/// Who takes the seats.
#[derive(Clone, Copy)]
pub(crate) enum Owner {
    Booking(Uuid),
    Hold(Uuid),
}

impl Owner {
    fn column(self) -> &'static str {
        match self {
            Owner::Booking(_) => "booking_id",
            Owner::Hold(_) => "hold_id",
        }
    }

    fn id(self) -> Uuid {
        match self {
            Owner::Booking(id) | Owner::Hold(id) => id,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// Never wait for a seat another transaction holds; `None` if that comes up short.
    Fast,
    /// Wait, in seat order; always answers.
    Blocking,
}

/// Takes `wanted` if all are free, else (unless `strict`: a conflict naming the taken ones)
/// the `n` lowest free seats; `Short` if fewer than `n` are free. Ascending. `Ok(None)`
/// only in `Mode::Fast`: roll back and retry in `Mode::Blocking`.
pub(crate) async fn allocate(
    conn: &mut PgConnection,
    event: EventId,
    n: u32,
    wanted: &[SeatNo],
    strict: bool,
    owner: Owner,
    mode: Mode,
) -> Result<Option<Vec<SeatNo>>, StoreError> {
    if !wanted.is_empty() {
        // Specific seats: a savepoint, so that a partial take is undone with its locks.
        let mut sp = conn.begin().await.map_err(db)?;
        // One statement per seat, by its whole key (migrations/0005 says why not `= ANY`).
        let (booking, hold) = match owner {
            Owner::Booking(id) => (Some(id), None),
            Owner::Hold(id) => (None, Some(id)),
        };
        let got: Vec<i32> = sqlx::query_scalar("SELECT happening_take_seats($1, $2, $3, $4)")
            .bind(event.0)
            .bind(ints(wanted))
            .bind(booking)
            .bind(hold)
            .fetch_one(&mut *sp)
            .await
            .map_err(db)?;
        if got.len() == wanted.len() {
            sp.commit().await.map_err(db)?;
            let mut seats = wanted.to_vec();
            seats.sort_unstable();
            return Ok(Some(seats));
        }
        sp.rollback().await.map_err(db)?;
        if strict {
            let mut taken: Vec<SeatNo> = wanted.iter().copied().filter(|s| !got.contains(&(*s as i32))).collect();
            taken.sort_unstable();
            return Err(StoreError::Conflict { reason: Conflict::SeatsTaken, seats: taken });
        }
    }
    // The candidates are a MATERIALIZED CTE, evaluated once: as a subquery in FROM the
    // planner may rescan it per row (a nested loop), and each rescan with SKIP LOCKED would
    // hand out more seats.
    let take = |lock: &str| {
        format!(
            "WITH f AS MATERIALIZED (SELECT seat_no FROM event_seats WHERE event_id = $1 \
             AND booking_id IS NULL AND hold_id IS NULL AND seat_no > $4 AND seat_no >= {FREE_FROM} ORDER BY seat_no LIMIT $2 {lock}) \
             UPDATE event_seats s SET {col} = $3 FROM f WHERE s.event_id = $1 AND s.seat_no = f.seat_no RETURNING s.seat_no",
            col = owner.column()
        )
    };
    if mode == Mode::Fast {
        let got: Vec<i32> = sqlx::query_scalar(&take("FOR UPDATE SKIP LOCKED"))
            .bind(event.0)
            .bind(n as i64)
            .bind(owner.id())
            .bind(0)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        if got.len() > n as usize {
            return Err(overdrawn(got.len(), n));
        }
        return Ok((got.len() == n as usize).then(|| sorted(got)));
    }
    // Strictly ascending across the whole transaction: each round only looks above the
    // highest seat taken so far, so two waiters always wait in the same order. A seat freed
    // below meanwhile is left to the waitlist's next promotion pass.
    let mut all: Vec<i32> = Vec::with_capacity(n as usize);
    while all.len() < n as usize {
        let above = all.iter().copied().max().unwrap_or(0);
        let more: Vec<i32> = sqlx::query_scalar(&take("FOR UPDATE"))
            .bind(event.0)
            .bind((n as usize - all.len()) as i64)
            .bind(owner.id())
            .bind(above)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        if more.is_empty() {
            // Nothing more is free: report what was free before this attempt.
            return Err(StoreError::Short { free: free_seats(conn, event).await? + all.len() as u32 });
        }
        all.extend(more);
        if all.len() > n as usize {
            return Err(overdrawn(all.len(), n));
        }
    }
    Ok(Some(sorted(all)))
}

/// More seats than asked came back: a bug in the query, refused rather than booked (the
/// caller's transaction rolls back).
fn overdrawn(got: usize, n: u32) -> StoreError {
    StoreError::Backend(happening_core::error::BackendError::msg(format!("allocation returned {got} seats for {n}")))
}

fn sorted(v: Vec<i32>) -> Vec<SeatNo> {
    let mut s: Vec<SeatNo> = v.into_iter().map(|s| s as SeatNo).collect();
    s.sort_unstable();
    s
}

/// Free seats of an event (neither booked nor held).
pub(crate) async fn free_seats(conn: &mut PgConnection, event: EventId) -> Result<u32, StoreError> {
    let sql = format!(
        "SELECT count(*) AS n FROM event_seats WHERE event_id = $1 AND booking_id IS NULL AND hold_id IS NULL AND seat_no >= {FREE_FROM}"
    );
    let row = sqlx::query(&sql).bind(event.0).fetch_one(conn).await.map_err(db)?;
    Ok(row.try_get::<i64, _>("n").map_err(db)? as u32)
}
