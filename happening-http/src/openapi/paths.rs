//! The routes as the OpenAPI document states them: one declaration per route, its method,
//! path, summary, parameters, request body and success answer. The warp filters
//! (`filters.rs`) serve them; the answers every route shares (the errors) are added by
//! rule in `mod.rs`. The functions are declarations only, never called (hence `dead_code`
//! allowed here); `ApiDoc` lists them, and the route list of the metrics, `Allow` and the
//! tests is read from the document (`route_table.rs`).
#![allow(dead_code)]

use super::bodies::*;
use super::params::*;
use crate::models::*;

#[utoipa::path(
    post,
    path = "/bookings",
    summary = "Book seats (confirmed, or waiting with a waiting_number)",
    params(IdempotencyKey),
    request_body = CreateBooking,
    responses((status = 201, description = "OK", body = BookingDto))
)]
pub fn post_bookings() {}

#[utoipa::path(
    get,
    path = "/bookings/{id}",
    summary = "A booking (its owner, or an organizer of the event's organization)",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = BookingDto))
)]
pub fn get_bookings_id() {}

#[utoipa::path(
    get,
    path = "/bookings/{id}/history",
    summary = "A booking's history",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = [HistoryDto]))
)]
pub fn get_bookings_id_history() {}

#[utoipa::path(
    get,
    path = "/bookings/user/{userId}",
    summary = "A user's bookings with event details, newest first (?limit=&offset=)",
    params(("userId" = uuid::Uuid, Path), Page),
    responses((status = 200, description = "OK", body = [BookingDto]))
)]
pub fn get_bookings_user_user_id() {}

#[utoipa::path(
    post,
    path = "/bookings/{id}/cancel",
    summary = "Cancel a booking; freed seats promote the waitlist",
    params(("id" = uuid::Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "OK", body = BookingDto))
)]
pub fn post_bookings_id_cancel() {}

#[utoipa::path(
    post,
    path = "/bookings/{id}/cancel-seats",
    summary = "Cancel some seats of a confirmed booking",
    params(("id" = uuid::Uuid, Path), IdempotencyKey),
    request_body = CancelSeats,
    responses((status = 200, description = "OK", body = BookingDto))
)]
pub fn post_bookings_id_cancelseats() {}

#[utoipa::path(
    post,
    path = "/bookings/{id}/accept",
    summary = "Accept an offer (the booking's owner): confirmed with the offered seats; a repeat answers the same",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = BookingDto))
)]
pub fn post_bookings_id_accept() {}

#[utoipa::path(
    post,
    path = "/bookings/{id}/decline",
    summary = "Decline an offer (its owner or an organizer): the seats go to the next in line; a repeat answers the same",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = BookingDto))
)]
pub fn post_bookings_id_decline() {}

#[utoipa::path(
    post,
    path = "/events",
    summary = "Create an event (organizer or orgAdmin of org_id)",
    request_body = CreateEvent,
    responses((status = 201, description = "OK", body = EventDto))
)]
pub fn post_events() {}

#[utoipa::path(
    get,
    path = "/events",
    summary = "Events of the caller's organizations, latest event_date first (?org_id=&limit=&offset=)",
    params(EventsQuery),
    responses((status = 200, description = "OK", body = [EventDto]))
)]
pub fn get_events() {}

#[utoipa::path(
    get,
    path = "/events/{id}",
    summary = "An event",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = EventDto))
)]
pub fn get_events_id() {}

#[utoipa::path(
    put,
    path = "/events/{id}",
    summary = "Update an event (partial); total_slots may grow, or shrink down to the highest taken seat",
    params(("id" = uuid::Uuid, Path)),
    request_body = UpdateEvent,
    responses((status = 200, description = "OK", body = EventDto))
)]
pub fn put_events_id() {}

#[utoipa::path(
    delete,
    path = "/events/{id}",
    summary = "Delete an event and everything of it",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Done"))
)]
pub fn delete_events_id() {}

#[utoipa::path(
    post,
    path = "/events/{id}/cancel",
    summary = "Cancel an event: every booking cancelled and notified",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = EventDto))
)]
pub fn post_events_id_cancel() {}

#[utoipa::path(
    get,
    path = "/events/{id}/seats",
    summary = "Seat map",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = SeatMapDto))
)]
pub fn get_events_id_seats() {}

#[utoipa::path(
    get,
    path = "/events/{id}/waitlist",
    summary = "Waiting bookings in order, with waiting_number (?limit=&offset=)",
    params(("id" = uuid::Uuid, Path), Page),
    responses((status = 200, description = "OK", body = [BookingDto]))
)]
pub fn get_events_id_waitlist() {}

#[utoipa::path(
    get,
    path = "/events/{id}/bookings",
    summary = "The event's bookings with each one's user, oldest first (organizers; ?status=&limit=&offset=)",
    params(("id" = uuid::Uuid, Path), AttendeesQuery),
    responses((status = 200, description = "OK", body = [AttendeeDto]))
)]
pub fn get_events_id_bookings() {}

#[utoipa::path(
    get,
    path = "/events/{id}/bookings.csv",
    summary = "The event's bookings as CSV, up to 100,000 rows from offset (organizers; ?status=&limit=&offset=)",
    params(("id" = uuid::Uuid, Path), CsvQuery),
    responses((status = 200, description = "CSV (RFC 4180, a header line first): booking_id, status, seats, seat_numbers (space-separated), user_id, user_email, user_name, created_at, updated_at", content_type = "text/csv", body = String))
)]
pub fn get_events_id_bookingscsv() {}

#[utoipa::path(
    get,
    path = "/events/{id}/stream",
    summary = "Server-sent events: a `seats` snapshot (seat map and waitlist) at start and after every change",
    params(("id" = uuid::Uuid, Path), StreamQuery),
    responses((status = 200, description = "Server-sent events: `seats` (data: a LiveSnapshot) at once and after every change, `deleted` (data: `{event_id}`) when the event goes, `error` (data: an Error) when a store fails, the token expires or the caller is no longer a member (then the stream ends); each item as below", content_type = "text/event-stream", body = inline(LiveStreamItem)))
)]
pub fn get_events_id_stream() {}

#[utoipa::path(
    post,
    path = "/events/{id}/holds",
    summary = "Hold seats for ttl_seconds",
    params(("id" = uuid::Uuid, Path)),
    request_body = CreateHold,
    responses((status = 201, description = "OK", body = HoldDto))
)]
pub fn post_events_id_holds() {}

#[utoipa::path(
    get,
    path = "/events/{id}/holds/{holdId}",
    summary = "A hold",
    params(("id" = uuid::Uuid, Path), ("holdId" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = HoldDto))
)]
pub fn get_events_id_holds_hold_id() {}

#[utoipa::path(
    delete,
    path = "/events/{id}/holds/{holdId}",
    summary = "Release a hold (its owner)",
    params(("id" = uuid::Uuid, Path), ("holdId" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = HoldDto))
)]
pub fn delete_events_id_holds_hold_id() {}

#[utoipa::path(
    post,
    path = "/users",
    summary = "Create or refresh the caller's user from the token (keycloak_id = sub)",
    request_body = ref("#/components/schemas/UpsertUser"),
    responses((status = 200, description = "OK", body = UserDto))
)]
pub fn post_users() {}

#[utoipa::path(
    get,
    path = "/users",
    summary = "The caller's user by `?keycloak_id=` (the original API's lookup; only the caller's own)",
    params(UserLookup),
    responses((status = 200, description = "OK", body = UserDto))
)]
pub fn get_users() {}

#[utoipa::path(
    get,
    path = "/users/me",
    summary = "The caller's user",
    responses((status = 200, description = "OK", body = UserDto))
)]
pub fn get_users_me() {}

#[utoipa::path(
    post,
    path = "/organizations",
    summary = "Create an organization; the caller becomes its orgAdmin",
    request_body = CreateOrg,
    responses((status = 201, description = "OK", body = OrgDto))
)]
pub fn post_organizations() {}

#[utoipa::path(
    get,
    path = "/organizations",
    summary = "The caller's organizations with the caller's role",
    responses((status = 200, description = "OK", body = [OrgDto]))
)]
pub fn get_organizations() {}

#[utoipa::path(
    get,
    path = "/organizations/user/{userId}",
    summary = "The caller's organizations (the original API's path; only the caller's own)",
    params(("userId" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = [OrgDto]))
)]
pub fn get_organizations_user_user_id() {}

#[utoipa::path(
    get,
    path = "/organizations/{id}",
    summary = "An organization of the caller",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = OrgDto))
)]
pub fn get_organizations_id() {}

#[utoipa::path(
    get,
    path = "/organizations/{id}/members",
    summary = "Members and roles",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "OK", body = [MemberDto]))
)]
pub fn get_organizations_id_members() {}

#[utoipa::path(
    post,
    path = "/organizations/{id}/members",
    summary = "Add a member (orgAdmin)",
    params(("id" = uuid::Uuid, Path)),
    request_body = AddMember,
    responses((status = 201, description = "OK", body = MemberDto))
)]
pub fn post_organizations_id_members() {}

#[utoipa::path(
    put,
    path = "/organizations/{id}/members/{userId}",
    summary = "Change a member's role (orgAdmin)",
    params(("id" = uuid::Uuid, Path), ("userId" = uuid::Uuid, Path)),
    request_body = SetRole,
    responses((status = 200, description = "OK", body = MemberDto))
)]
pub fn put_organizations_id_members_user_id() {}

#[utoipa::path(
    delete,
    path = "/organizations/{id}/members/{userId}",
    summary = "Remove a member (orgAdmin), or leave",
    params(("id" = uuid::Uuid, Path), ("userId" = uuid::Uuid, Path)),
    responses((status = 204, description = "Done"))
)]
pub fn delete_organizations_id_members_user_id() {}

#[utoipa::path(
    post,
    path = "/org-invites",
    summary = "Invite an email to an organization (orgAdmin); returns the token",
    request_body = CreateInvite,
    responses((status = 201, description = "OK", body = InviteDto))
)]
pub fn post_orginvites() {}

#[utoipa::path(
    get,
    path = "/org-invites/{token}",
    summary = "An invite, by its token",
    params(("token" = String, Path)),
    responses((status = 200, description = "OK", body = InviteDto))
)]
pub fn get_orginvites_token() {}

#[utoipa::path(
    post,
    path = "/org-invites/{token}/accept",
    summary = "Accept an invite (the token's email claim must be the invited one)",
    params(("token" = String, Path)),
    responses((status = 200, description = "OK", body = MemberDto))
)]
pub fn post_orginvites_token_accept() {}

#[utoipa::path(
    get,
    path = "/notifications",
    summary = "The caller's notifications, newest first (?limit=&offset=)",
    params(Page),
    responses((status = 200, description = "OK", body = [NotificationDto]))
)]
pub fn get_notifications() {}

#[utoipa::path(
    post,
    path = "/notifications/{id}/read",
    summary = "Mark a notification read",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Done"))
)]
pub fn post_notifications_id_read() {}

#[utoipa::path(
    get,
    path = "/healthz",
    summary = "Liveness",
    responses((status = 200, description = "The process answers", body = HealthBody)),
    security(())
)]
pub fn get_healthz() {}

#[utoipa::path(
    get,
    path = "/readyz",
    summary = "Readiness: every configured store answers",
    responses((status = 200, description = "Every required store answers (`degraded` names the optional ones that do not)", body = ReadyBody), (status = 503, description = "A required store does not answer, or the server is shutting down", body = NotReadyBody)),
    security(())
)]
pub fn get_readyz() {}

#[utoipa::path(
    get,
    path = "/metrics",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
    security(())
)]
pub fn get_metrics() {}

#[utoipa::path(
    get,
    path = "/openapi.json",
    summary = "This document",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)),
    security(())
)]
pub fn get_openapijson() {}
