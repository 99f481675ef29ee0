//! The JSON of the API: request bodies (strict: unknown fields are errors) and response
//! rows, named as the original API names them (`total_slots`, `available_slots`, `seat_numbers`,
//! `waiting_number`, `event_date`, `org_id`, ...). Only this crate knows JSON.

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use happening_core::domain::*;
use happening_core::ids::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use utoipa::ToSchema;

use crate::error::ApiError;
use crate::openapi::fields;

/// Parses a JSON body; a failure names the field (`seats: invalid type: ...`).
pub fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest { field: None, message: "request body must be a JSON object".into() });
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = strip_position(&inner.to_string());
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::BadRequest { field: None, message: format!("malformed JSON: {msg}") });
            }
            if path.is_empty() || path == "." {
                // A missing or unknown field is reported by serde at the top level; name it.
                let field = field_in_message(&msg);
                Err(ApiError::BadRequest { field, message: msg })
            } else {
                Err(ApiError::BadRequest { field: Some(path.clone()), message: format!("invalid {path}: {msg}") })
            }
        }
    }
}

/// Like [`parse`], but an empty body is the default value.
pub fn parse_or_default<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(body)
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn field_in_message(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = msg[start..].find('`')? + start;
    if msg.starts_with("missing field") || msg.starts_with("unknown field") {
        Some(msg[start..end].to_string())
    } else {
        None
    }
}

/// `event_date` as RFC 3339, or (as an HTML form sends it) a local `YYYY-MM-DDTHH:MM[:SS]`
/// or a bare date, both read as UTC.
fn date<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse_date(&s).ok_or_else(|| serde::de::Error::custom("expected an ISO 8601 date-time, e.g. 2030-05-01T19:00:00Z"))
}

fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    date(d).map(Some)
}

pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

/// Absent stays `None`; `null` becomes `Some(None)` (clear the field).
fn double<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

// ---------------------------------------------------------------- requests

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertUser {
    /// Must be the token's `sub` when given (the original API's client sends it).
    pub keycloak_id: Option<String>,
    #[schema(schema_with = fields::upsert_email)]
    pub email: Option<String>,
    #[schema(schema_with = fields::person_name)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateOrganization)]
pub struct CreateOrg {
    #[schema(schema_with = fields::name)]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    #[schema(schema_with = fields::role)]
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    #[schema(schema_with = fields::role)]
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    #[serde(alias = "org_id")]
    #[schema(value_type = uuid::Uuid)]
    pub organization_id: OrgId,
    #[schema(schema_with = fields::invite_email)]
    pub email: String,
    #[serde(default = "default_role")]
    #[schema(schema_with = fields::role)]
    pub role: Role,
    #[schema(minimum = 1, maximum = 720, default = 168)]
    pub ttl_hours: Option<u32>,
}

fn default_role() -> Role {
    Role::User
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    #[schema(value_type = uuid::Uuid)]
    pub org_id: OrgId,
    #[schema(schema_with = fields::name)]
    pub name: String,
    #[schema(schema_with = fields::description)]
    pub description: Option<String>,
    #[schema(schema_with = fields::category)]
    pub category: Option<String>,
    #[serde(deserialize_with = "date")]
    pub event_date: DateTime<Utc>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub total_slots: u32,
    #[schema(schema_with = fields::policy_or_null)]
    pub waitlist_policy: Option<WaitlistPolicy>,
    /// Absent or null: no cap; 0: no waitlist.
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub waitlist_max: Option<u32>,
    /// Absent or null: promotions confirm at once; else seats freed for the waitlist are
    /// offered for this long (1 s to 30 days).
    #[schema(schema_with = fields::offer_ttl)]
    pub offer_ttl_seconds: Option<u32>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEvent {
    #[schema(schema_with = fields::name_or_null)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double")]
    #[schema(schema_with = fields::description)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(schema_with = fields::category)]
    pub category: Option<Option<String>>,
    #[serde(default, deserialize_with = "opt_date")]
    #[schema(schema_with = fields::date_time)]
    pub event_date: Option<DateTime<Utc>>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub total_slots: Option<u32>,
    #[schema(schema_with = fields::policy_or_null)]
    pub waitlist_policy: Option<WaitlistPolicy>,
    /// Absent: unchanged; null: no cap.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<u32>, minimum = 0, maximum = 10_000_000)]
    pub waitlist_max: Option<Option<u32>>,
    /// Absent: unchanged; null: promotions confirm at once.
    #[serde(default, deserialize_with = "double")]
    #[schema(schema_with = fields::offer_ttl)]
    pub offer_ttl_seconds: Option<Option<u32>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHold {
    #[schema(minimum = 1, maximum = 50)]
    pub seats: Option<u32>,
    #[schema(schema_with = fields::seat_request_or_null)]
    pub seat_numbers: Option<Vec<SeatNo>>,
    /// default: the server's --hold-ttl (300)
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 3600)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBooking {
    #[schema(value_type = uuid::Uuid)]
    pub event_id: EventId,
    #[schema(minimum = 1, maximum = 50)]
    pub seats: Option<u32>,
    #[schema(schema_with = fields::seat_request_or_null)]
    pub seat_numbers: Option<Vec<SeatNo>>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub hold_id: Option<HoldId>,
    #[serde(default)]
    pub accept_partial: bool,
    #[serde(default)]
    pub strict_seats: bool,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<UserId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelSeats {
    #[schema(schema_with = fields::seat_request)]
    pub seat_numbers: Vec<SeatNo>,
}

// ---------------------------------------------------------------- responses

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserDto {
    #[schema(value_type = uuid::Uuid)]
    pub id: UserId,
    pub keycloak_id: String,
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserDto {
    fn from(u: User) -> Self {
        Self { id: u.id, keycloak_id: u.subject, email: u.email, name: u.name, created_at: u.created_at }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Organization)]
pub struct OrgDto {
    #[schema(value_type = uuid::Uuid)]
    pub id: OrgId,
    pub name: String,
    /// The caller's role in it.
    #[schema(schema_with = fields::role)]
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl OrgDto {
    pub fn new(o: Organization, role: Role) -> Self {
        Self { id: o.id, name: o.name, role, created_at: o.created_at }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Member)]
pub struct MemberDto {
    #[schema(value_type = uuid::Uuid)]
    pub organization_id: OrgId,
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    #[schema(schema_with = fields::role)]
    pub role: Role,
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl MemberDto {
    pub fn new(m: Membership, user: Option<User>) -> Self {
        let (email, name) = user.map(|u| (u.email, u.name)).unwrap_or_default();
        Self { organization_id: m.org_id, user_id: m.user_id, role: m.role, email, name, created_at: m.created_at }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Invite)]
pub struct InviteDto {
    pub token: String,
    #[schema(value_type = uuid::Uuid)]
    pub organization_id: OrgId,
    pub email: String,
    #[schema(schema_with = fields::role)]
    pub role: Role,
    #[schema(schema_with = fields::invite_status)]
    pub status: InviteStatus,
    #[schema(value_type = uuid::Uuid)]
    pub invited_by: UserId,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<Invite> for InviteDto {
    fn from(i: Invite) -> Self {
        Self {
            token: i.token,
            organization_id: i.org_id,
            email: i.email,
            role: i.role,
            status: i.status,
            invited_by: i.invited_by,
            expires_at: i.expires_at,
            created_at: i.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventDto {
    #[schema(value_type = uuid::Uuid)]
    pub id: EventId,
    #[schema(value_type = uuid::Uuid)]
    pub org_id: OrgId,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub category: Option<String>,
    pub event_date: DateTime<Utc>,
    pub total_slots: u32,
    pub available_slots: u32,
    pub booked_slots: u32,
    pub held_slots: u32,
    pub waiting_count: u32,
    #[schema(schema_with = fields::event_status)]
    pub status: EventStatus,
    #[schema(schema_with = fields::policy)]
    pub waitlist_policy: WaitlistPolicy,
    #[schema(required = true)]
    pub waitlist_max: Option<u32>,
    #[schema(required = true)]
    pub offer_ttl_seconds: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EventView> for EventDto {
    fn from(v: EventView) -> Self {
        let available_slots = v.available();
        let e = v.event;
        Self {
            id: e.id,
            org_id: e.org_id,
            name: e.name,
            description: e.description,
            category: e.category,
            event_date: e.event_date,
            total_slots: e.capacity,
            available_slots,
            booked_slots: v.booked,
            held_slots: v.held,
            waiting_count: v.waiting,
            status: e.status,
            waitlist_policy: e.policy,
            waitlist_max: e.waitlist_max,
            offer_ttl_seconds: e.offer_ttl_seconds,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Booking)]
pub struct BookingDto {
    #[schema(value_type = uuid::Uuid)]
    pub id: BookingId,
    #[schema(value_type = uuid::Uuid)]
    pub event_id: EventId,
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    /// Seats held (confirmed, offered) or waited for (waiting).
    pub seats: u32,
    /// What was asked for (more than `seats` after a partial confirmation).
    pub seats_requested: u32,
    #[schema(schema_with = fields::seats)]
    pub seat_numbers: Vec<SeatNo>,
    #[schema(schema_with = fields::booking_status_schema)]
    pub status: BookingStatus,
    /// 1-based place in the waitlist, while waiting.
    #[schema(minimum = 1, required = true)]
    pub waiting_number: Option<u32>,
    #[schema(value_type = Option<uuid::Uuid>, required = true)]
    pub hold_id: Option<HoldId>,
    /// Until when an offer is open (RFC 3339); kept after it ends.
    #[schema(required = true)]
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// With `GET /bookings/user/:userId`: the event's name and date (as the original API's join).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub event_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = DateTime<Utc>)]
    pub event_date: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = EventDto)]
    pub event: Option<EventDto>,
}

impl From<Booking> for BookingDto {
    fn from(b: Booking) -> Self {
        Self {
            id: b.id,
            event_id: b.event_id,
            user_id: b.user_id,
            seats: b.seats(),
            seats_requested: b.seats_requested,
            seat_numbers: b.seat_numbers,
            status: b.status,
            waiting_number: b.waiting_number,
            hold_id: b.hold_id,
            offer_expires_at: b.offer_expires_at,
            created_at: b.created_at,
            updated_at: b.updated_at,
            event_name: None,
            event_date: None,
            event: None,
        }
    }
}

impl BookingDto {
    pub fn with_event(mut self, v: EventView) -> Self {
        self.event_name = Some(v.event.name.clone());
        self.event_date = Some(v.event.event_date);
        self.event = Some(v.into());
        self
    }
}

/// A booking with its user's email and name: a row of an event's attendees.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Attendee)]
pub struct AttendeeDto {
    #[serde(flatten)]
    pub booking: BookingDto,
    #[schema(required = true)]
    pub user_email: Option<String>,
    #[schema(required = true)]
    pub user_name: Option<String>,
}

impl AttendeeDto {
    pub fn new(booking: BookingDto, user: Option<&User>) -> Self {
        Self { booking, user_email: user.and_then(|u| u.email.clone()), user_name: user.and_then(|u| u.name.clone()) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = History)]
pub struct HistoryDto {
    #[schema(value_type = uuid::Uuid)]
    pub booking_id: BookingId,
    #[schema(schema_with = fields::history_action)]
    pub action: HistoryAction,
    #[schema(schema_with = fields::booking_status_schema)]
    pub status: BookingStatus,
    #[schema(schema_with = fields::seats)]
    pub seat_numbers: Vec<SeatNo>,
    pub created_at: DateTime<Utc>,
}

impl From<HistoryEntry> for HistoryDto {
    fn from(h: HistoryEntry) -> Self {
        Self { booking_id: h.booking_id, action: h.action, status: h.status, seat_numbers: h.seat_numbers, created_at: h.at }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SeatMap)]
pub struct SeatMapDto {
    pub total: u32,
    #[schema(schema_with = fields::seats)]
    pub taken: Vec<SeatNo>,
    #[schema(schema_with = fields::seats)]
    pub held: Vec<SeatNo>,
    pub available_slots: u32,
}

impl From<SeatMap> for SeatMapDto {
    fn from(m: SeatMap) -> Self {
        let available_slots = m.total - m.taken.len() as u32 - m.held.len() as u32;
        Self { total: m.total, taken: m.taken, held: m.held, available_slots }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Hold)]
pub struct HoldDto {
    #[schema(value_type = uuid::Uuid)]
    pub id: HoldId,
    #[schema(value_type = uuid::Uuid)]
    pub event_id: EventId,
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    pub seats: u32,
    #[schema(schema_with = fields::seats)]
    pub seat_numbers: Vec<SeatNo>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<Hold> for HoldDto {
    fn from(h: Hold) -> Self {
        Self {
            id: h.id,
            event_id: h.event_id,
            user_id: h.user_id,
            seats: h.seat_numbers.len() as u32,
            seat_numbers: h.seat_numbers,
            expires_at: h.expires_at,
            created_at: h.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Notification)]
pub struct NotificationDto {
    #[schema(value_type = uuid::Uuid)]
    pub id: NotificationId,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: NotificationKind,
    pub message: String,
    #[schema(value_type = Option<uuid::Uuid>, required = true)]
    pub event_id: Option<EventId>,
    #[schema(value_type = Option<uuid::Uuid>, required = true)]
    pub booking_id: Option<BookingId>,
    #[schema(value_type = Option<uuid::Uuid>, required = true)]
    pub organization_id: Option<OrgId>,
    pub seats: u32,
    /// Until when the offer it tells of is open (`waitlist_offer` only).
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(schema_with = fields::delivery_status)]
    pub status: DeliveryStatus,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Notification> for NotificationDto {
    fn from(n: Notification) -> Self {
        Self {
            message: n.message(),
            id: n.id,
            kind: n.kind,
            event_id: n.event_id,
            booking_id: n.booking_id,
            organization_id: n.org_id,
            seats: n.seats,
            expires_at: n.expires_at,
            status: n.status,
            read: n.read,
            created_at: n.created_at,
        }
    }
}

/// What the live stream of an event sends on every change: the seat map and the waitlist.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveSnapshot {
    #[schema(value_type = uuid::Uuid)]
    pub event_id: EventId,
    #[schema(schema_with = fields::event_status)]
    pub status: EventStatus,
    pub total: u32,
    #[schema(schema_with = fields::seats)]
    pub taken: Vec<SeatNo>,
    #[schema(schema_with = fields::seats)]
    pub held: Vec<SeatNo>,
    pub available_slots: u32,
    #[schema(inline)]
    pub waiting: Vec<WaitingDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingDto {
    #[schema(value_type = uuid::Uuid)]
    pub booking_id: BookingId,
    pub seats: u32,
    pub waiting_number: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let e = parse::<CreateBooking>(&Bytes::from_static(br#"{"event_id":"00000000-0000-0000-0000-000000000000","seats":"two"}"#))
            .unwrap_err();
        assert!(matches!(e, ApiError::BadRequest { field: Some(ref f), .. } if f == "seats"), "{e:?}");
        let e = parse::<CreateBooking>(&Bytes::from_static(br#"{"seats":2}"#)).unwrap_err();
        assert!(matches!(e, ApiError::BadRequest { field: Some(ref f), .. } if f == "event_id"), "{e:?}");
        let e =
            parse::<CreateBooking>(&Bytes::from_static(br#"{"event_id":"00000000-0000-0000-0000-000000000000","seat":2}"#)).unwrap_err();
        assert!(matches!(e, ApiError::BadRequest { field: Some(ref f), .. } if f == "seat"), "{e:?}");
        let e = parse::<CreateBooking>(&Bytes::from_static(b"{not json")).unwrap_err();
        assert!(matches!(e, ApiError::BadRequest { field: None, .. }), "{e:?}");
        let e = parse::<CreateBooking>(&Bytes::from_static(br#"{"event_id":"x","seats":1}"#)).unwrap_err();
        assert!(matches!(e, ApiError::BadRequest { field: Some(ref f), .. } if f == "event_id"), "{e:?}");
    }

    #[test]
    fn dates_accept_what_forms_send() {
        assert!(parse_date("2030-05-01T19:00:00Z").is_some());
        assert!(parse_date("2030-05-01T19:00:00+02:00").is_some());
        assert!(parse_date("2030-05-01T19:00").is_some());
        assert!(parse_date("2030-05-01").is_some());
        assert!(parse_date("tomorrow").is_none());
    }

    #[test]
    fn null_clears_absent_keeps() {
        let u: UpdateEvent = parse(&Bytes::from_static(br#"{"description":null}"#)).unwrap();
        assert_eq!(u.description, Some(None));
        assert_eq!(u.category, None);
    }
}
