//! Rows to domain types.

use happening_core::domain::*;
use happening_core::error::BackendError;
use happening_core::ids::*;
use happening_core::ports::StoreError;
use sqlx::postgres::PgRow;
use sqlx::Row;

pub(crate) const EVENT_COLS: &str =
    "e.id, e.org_id, e.name, e.description, e.category, e.event_date, e.total_slots, e.status, e.waitlist_policy, e.waitlist_max, e.offer_ttl_seconds, e.created_at, e.updated_at";
pub(crate) const BOOKING_COLS: &str =
    "id, event_id, user_id, seats, seat_numbers, status, queue_seq, hold_id, offer_expires_at, created_at, updated_at";
pub(crate) const HOLD_COLS: &str = "id, event_id, user_id, seat_numbers, expires_at, created_at";
pub(crate) const NOTIFICATION_COLS: &str = "id, user_id, type, event_id, booking_id, org_id, seats, expires_at, status, read, created_at";

fn bad(what: &str, value: &str) -> StoreError {
    StoreError::Backend(BackendError::msg(format!("unexpected {what} in the database: {value:?}")))
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(row: &'r PgRow, col: &str) -> Result<T, StoreError> {
    row.try_get(col).map_err(crate::error::db)
}

pub(crate) fn seats(v: Vec<i32>) -> Vec<SeatNo> {
    v.into_iter().map(|s| s as SeatNo).collect()
}

pub(crate) fn ints(v: &[SeatNo]) -> Vec<i32> {
    v.iter().map(|&s| s as i32).collect()
}

pub(crate) fn event(row: &PgRow) -> Result<Event, StoreError> {
    let status: String = get(row, "status")?;
    let policy: String = get(row, "waitlist_policy")?;
    Ok(Event {
        id: EventId(get(row, "id")?),
        org_id: OrgId(get(row, "org_id")?),
        name: get(row, "name")?,
        description: get(row, "description")?,
        category: get(row, "category")?,
        event_date: get(row, "event_date")?,
        capacity: get::<i32>(row, "total_slots")? as u32,
        status: status.parse().map_err(|_| bad("event status", &status))?,
        policy: policy.parse().map_err(|_| bad("waitlist policy", &policy))?,
        waitlist_max: get::<Option<i32>>(row, "waitlist_max")?.map(|m| m as u32),
        offer_ttl_seconds: get::<Option<i32>>(row, "offer_ttl_seconds")?.map(|t| t as u32),
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn event_view(row: &PgRow) -> Result<EventView, StoreError> {
    Ok(EventView {
        event: event(row)?,
        booked: get::<i64>(row, "booked")? as u32,
        held: get::<i64>(row, "held")? as u32,
        waiting: get::<i64>(row, "waiting")? as u32,
    })
}

pub(crate) fn status(s: &str) -> Result<BookingStatus, StoreError> {
    s.parse().map_err(|_| bad("booking status", s))
}

pub(crate) fn action(s: &str) -> Result<HistoryAction, StoreError> {
    s.parse().map_err(|_| bad("history action", s))
}

pub(crate) fn booking(row: &PgRow) -> Result<Booking, StoreError> {
    let st: String = get(row, "status")?;
    Ok(Booking {
        id: BookingId(get(row, "id")?),
        event_id: EventId(get(row, "event_id")?),
        user_id: UserId(get(row, "user_id")?),
        seats_requested: get::<i32>(row, "seats")? as u32,
        seat_numbers: seats(get(row, "seat_numbers")?),
        status: status(&st)?,
        queue_seq: get::<Option<i64>>(row, "queue_seq")?.map(|s| s as u64),
        waiting_number: None,
        hold_id: get::<Option<uuid::Uuid>>(row, "hold_id")?.map(HoldId),
        offer_expires_at: get(row, "offer_expires_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn hold(row: &PgRow) -> Result<Hold, StoreError> {
    Ok(Hold {
        id: HoldId(get(row, "id")?),
        event_id: EventId(get(row, "event_id")?),
        user_id: UserId(get(row, "user_id")?),
        seat_numbers: seats(get(row, "seat_numbers")?),
        expires_at: get(row, "expires_at")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn kind(s: &str) -> Result<NotificationKind, StoreError> {
    s.parse().map_err(|_| bad("notification type", s))
}

pub(crate) fn delivery(s: &str) -> Result<DeliveryStatus, StoreError> {
    s.parse().map_err(|_| bad("delivery status", s))
}

pub(crate) fn notification(row: &PgRow) -> Result<Notification, StoreError> {
    let k: String = get(row, "type")?;
    let st: String = get(row, "status")?;
    Ok(Notification {
        id: NotificationId(get(row, "id")?),
        user_id: UserId(get(row, "user_id")?),
        kind: kind(&k)?,
        event_id: get::<Option<uuid::Uuid>>(row, "event_id")?.map(EventId),
        booking_id: get::<Option<uuid::Uuid>>(row, "booking_id")?.map(BookingId),
        org_id: get::<Option<uuid::Uuid>>(row, "org_id")?.map(OrgId),
        seats: get::<i32>(row, "seats")? as u32,
        expires_at: get(row, "expires_at")?,
        status: delivery(&st)?,
        read: get(row, "read")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn role(s: &str) -> Result<Role, StoreError> {
    s.parse().map_err(|_| bad("role", s))
}

pub(crate) fn user(row: &PgRow) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(get(row, "id")?),
        subject: get(row, "keycloak_id")?,
        email: get(row, "email")?,
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn org(row: &PgRow) -> Result<Organization, StoreError> {
    Ok(Organization { id: OrgId(get(row, "id")?), name: get(row, "name")?, created_at: get(row, "created_at")? })
}

pub(crate) fn membership(row: &PgRow) -> Result<Membership, StoreError> {
    let r: String = get(row, "role")?;
    Ok(Membership {
        org_id: OrgId(get(row, "organization_id")?),
        user_id: UserId(get(row, "user_id")?),
        role: role(&r)?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn invite(row: &PgRow) -> Result<Invite, StoreError> {
    let r: String = get(row, "role")?;
    let st: String = get(row, "status")?;
    Ok(Invite {
        token: get(row, "token")?,
        org_id: OrgId(get(row, "organization_id")?),
        email: get(row, "email")?,
        role: role(&r)?,
        invited_by: UserId(get(row, "invited_by")?),
        status: st.parse().map_err(|_| bad("invite status", &st))?,
        expires_at: get(row, "expires_at")?,
        created_at: get(row, "created_at")?,
    })
}
