//! Schemas of single fields that the derive cannot say from the Rust type alone, for
//! `#[schema(schema_with = ...)]`: the engine's text rules as patterns, the string enums of
//! the domain's types (defined in `happening-core`, which knows no OpenAPI), and the seat
//! lists a request may name.

use happening_core::domain::{BookingStatus, DeliveryStatus, EventStatus, HistoryAction, InviteStatus, Role, WaitlistPolicy};
use happening_core::error::Conflict;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema};

fn nullable(t: Type) -> SchemaType {
    SchemaType::from_iter([t, Type::Null])
}

fn string_enum(values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied()))
}

// The engine's text rules (happening-core `validate::text`): trimmed of Unicode white space,
// then at most `max` UTF-8 bytes with no control character but tab and newline. The
// patterns bound the trimmed text to `max` characters (so a text of multi-byte characters
// may still be refused below it): `maxLength` would count the white space around it too.
const WS: &str = r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
const CTRL: &str = r"\u0000-\u0008\u000b-\u001f\u007f-\u009f";

/// The trimmed text: 1 to `max` characters, first and last not white space.
fn content(max: usize) -> String {
    format!("[^{CTRL}{WS}]([^{CTRL}]{{0,{}}}[^{CTRL}{WS}])?", max - 2)
}

fn described(pattern: String, max: usize, null: bool) -> ObjectBuilder {
    let t = if null { nullable(Type::String) } else { SchemaType::Type(Type::String) };
    ObjectBuilder::new()
        .schema_type(t)
        .pattern(Some(pattern))
        .description(Some(format!("trimmed: at most {max} bytes, no control characters but tab and newline")))
}

/// A required text: not blank.
fn text(max: usize, null: bool) -> ObjectBuilder {
    described(format!("^[{WS}]*{}[{WS}]*$", content(max)), max, null)
}

/// An optional text: blank means none.
fn optional_text(max: usize) -> ObjectBuilder {
    described(format!("^[{WS}]*({}[{WS}]*)?$", content(max)), max, true)
}

/// An email: a text with an `@` (blank allowed where `optional`).
fn email(optional: bool) -> ObjectBuilder {
    let blank = if optional { "?" } else { "" };
    described(format!("^[{WS}]*((?=[^{CTRL}]*@){}[{WS}]*){blank}$", content(320)), 320, optional)
}

/// A name: 1 to 200 characters.
pub fn name() -> impl Into<RefOr<Schema>> {
    text(200, false)
}

/// A new name, or null (unchanged).
pub fn name_or_null() -> impl Into<RefOr<Schema>> {
    text(200, true)
}

/// A person's name: blank or null is none.
pub fn person_name() -> impl Into<RefOr<Schema>> {
    optional_text(200)
}

/// An event's description: blank or null is none.
pub fn description() -> impl Into<RefOr<Schema>> {
    optional_text(5000)
}

/// An event's category: blank or null is none.
pub fn category() -> impl Into<RefOr<Schema>> {
    optional_text(50)
}

/// The invited address.
pub fn invite_email() -> impl Into<RefOr<Schema>> {
    email(false)
}

/// `POST /users`' `email`: only the token's own is taken (the identity provider vouches for it).
pub fn upsert_email() -> impl Into<RefOr<Schema>> {
    email(true).description(Some(
        "must be the token's `email` claim (case aside), else 403 (400 if it is no address); the stored email is always the claim",
    ))
}

/// Seat numbers a request may name: 1 to 50 distinct seats (each also within the event's
/// capacity, which no schema can say: a seat past it is a 400 naming `seat_numbers`).
fn seat_request_of(t: SchemaType) -> ArrayBuilder {
    let seat = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(u32::MAX));
    ArrayBuilder::new().schema_type(t).items(seat).min_items(Some(1)).max_items(Some(50)).unique_items(true)
}

pub fn seat_request() -> impl Into<RefOr<Schema>> {
    seat_request_of(SchemaType::Type(Type::Array))
}

pub fn seat_request_or_null() -> impl Into<RefOr<Schema>> {
    seat_request_of(nullable(Type::Array))
}

/// Seat numbers in an answer.
pub fn seats() -> impl Into<RefOr<Schema>> {
    ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
}

/// An event's `offer_ttl_seconds` in a request: null (promotions confirm at once) or 1 s to 30 days.
pub fn offer_ttl() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(nullable(Type::Integer))
        .minimum(Some(1))
        .maximum(Some(30 * 24 * 3600))
        .description(Some("seats freed for the waitlist are offered this long before they pass on; null: promotions confirm at once"))
}

/// A date-time that may be absent but not null (`PUT /events/{id}`' `event_date`).
pub fn date_time() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

// The engine's names of each enum (`NAMES`), so that the document lists what the server
// writes and reads.
pub fn role() -> impl Into<RefOr<Schema>> {
    string_enum(Role::NAMES)
}

pub fn policy() -> impl Into<RefOr<Schema>> {
    string_enum(WaitlistPolicy::NAMES)
}

pub fn policy_or_null() -> impl Into<RefOr<Schema>> {
    string_enum(WaitlistPolicy::NAMES).schema_type(nullable(Type::String))
}

pub fn event_status() -> impl Into<RefOr<Schema>> {
    string_enum(EventStatus::NAMES)
}

pub fn booking_status() -> ObjectBuilder {
    string_enum(BookingStatus::NAMES)
}

pub fn booking_status_schema() -> impl Into<RefOr<Schema>> {
    booking_status()
}

pub fn invite_status() -> impl Into<RefOr<Schema>> {
    string_enum(InviteStatus::NAMES)
}

pub fn history_action() -> impl Into<RefOr<Schema>> {
    string_enum(HistoryAction::NAMES)
}

pub fn delivery_status() -> impl Into<RefOr<Schema>> {
    string_enum(DeliveryStatus::NAMES)
}

/// An error's `reason`: which conflict it is.
pub fn conflict_reason() -> impl Into<RefOr<Schema>> {
    string_enum(Conflict::CODES)
}

pub fn health_status() -> impl Into<RefOr<Schema>> {
    string_enum(&["ok"])
}

pub fn ready_status() -> impl Into<RefOr<Schema>> {
    string_enum(&["ready", "degraded"])
}

pub fn not_ready_status() -> impl Into<RefOr<Schema>> {
    string_enum(&["unavailable", "shutting down"])
}

/// An error's text: never empty.
pub fn error_text() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new().schema_type(Type::String).min_length(Some(1))
}
