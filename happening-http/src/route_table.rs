//! The route table: every route's method and path template, with what the OpenAPI
//! document says of it. The metrics label requests by it, the filters answer `Allow` from
//! it, `openapi.rs` builds the document from it, and tests send a request to every entry.

pub struct Route {
    pub method: &'static str,
    /// OpenAPI style: `/events/{id}`.
    pub path: &'static str,
    pub auth: bool,
    pub summary: &'static str,
    /// Name of the request body schema in `components.schemas`.
    pub body: Option<&'static str>,
    /// Success status and the response schema (`[X]` for an array of X).
    pub ok: (u16, Option<&'static str>),
    /// Whether the route takes an `Idempotency-Key` header.
    pub idempotent: bool,
}

macro_rules! r {
    ($m:literal $p:literal, $auth:literal, $s:literal, $body:expr, $ok:expr, $idem:literal) => {
        Route { method: $m, path: $p, auth: $auth, summary: $s, body: $body, ok: $ok, idempotent: $idem }
    };
}

pub const ROUTES: &[Route] = &[
    r!("POST" "/bookings", true, "Book seats (confirmed, or waiting with a waiting_number)", Some("CreateBooking"), (201, Some("Booking")), true),
    r!("GET" "/bookings/{id}", true, "A booking (its owner, or an organizer of the event's organization)", None, (200, Some("Booking")), false),
    r!("GET" "/bookings/{id}/history", true, "A booking's history", None, (200, Some("[History]")), false),
    r!("GET" "/bookings/user/{userId}", true, "A user's bookings with event details, newest first (?limit=&offset=)", None, (200, Some("[Booking]")), false),
    r!("POST" "/bookings/{id}/cancel", true, "Cancel a booking; freed seats promote the waitlist", None, (200, Some("Booking")), true),
    r!("POST" "/bookings/{id}/cancel-seats", true, "Cancel some seats of a confirmed booking", Some("CancelSeats"), (200, Some("Booking")), true),
    r!("POST" "/bookings/{id}/accept", true, "Accept an offer (the booking's owner): confirmed with the offered seats; a repeat answers the same", None, (200, Some("Booking")), false),
    r!("POST" "/bookings/{id}/decline", true, "Decline an offer (its owner or an organizer): the seats go to the next in line; a repeat answers the same", None, (200, Some("Booking")), false),
    r!("POST" "/events", true, "Create an event (organizer or orgAdmin of org_id)", Some("CreateEvent"), (201, Some("Event")), false),
    r!("GET" "/events", true, "Events of the caller's organizations, latest event_date first (?org_id=&limit=&offset=)", None, (200, Some("[Event]")), false),
    r!("GET" "/events/{id}", true, "An event", None, (200, Some("Event")), false),
    r!("PUT" "/events/{id}", true, "Update an event (partial); total_slots may grow, or shrink down to the highest taken seat", Some("UpdateEvent"), (200, Some("Event")), false),
    r!("DELETE" "/events/{id}", true, "Delete an event and everything of it", None, (204, None), false),
    r!("POST" "/events/{id}/cancel", true, "Cancel an event: every booking cancelled and notified", None, (200, Some("Event")), false),
    r!("GET" "/events/{id}/seats", true, "Seat map", None, (200, Some("SeatMap")), false),
    r!("GET" "/events/{id}/waitlist", true, "Waiting bookings in order, with waiting_number (?limit=&offset=)", None, (200, Some("[Booking]")), false),
    r!("GET" "/events/{id}/bookings", true, "The event's bookings with each one's user, oldest first (organizers; ?status=&limit=&offset=)", None, (200, Some("[Attendee]")), false),
    r!("GET" "/events/{id}/bookings.csv", true, "The event's bookings as CSV, up to 100,000 rows from offset (organizers; ?status=&limit=&offset=)", None, (200, None), false),
    r!("GET" "/events/{id}/stream", true, "Server-sent events: a `seats` snapshot (seat map and waitlist) at start and after every change", None, (200, Some("LiveSnapshot")), false),
    r!("POST" "/events/{id}/holds", true, "Hold seats for ttl_seconds", Some("CreateHold"), (201, Some("Hold")), false),
    r!("GET" "/events/{id}/holds/{holdId}", true, "A hold", None, (200, Some("Hold")), false),
    r!("DELETE" "/events/{id}/holds/{holdId}", true, "Release a hold (its owner)", None, (200, Some("Hold")), false),
    r!("POST" "/users", true, "Create or refresh the caller's user from the token (keycloak_id = sub)", Some("UpsertUser"), (200, Some("User")), false),
    r!("GET" "/users", true, "The caller's user by `?keycloak_id=` (the original API's lookup; only the caller's own)", None, (200, Some("User")), false),
    r!("GET" "/users/me", true, "The caller's user", None, (200, Some("User")), false),
    r!("POST" "/organizations", true, "Create an organization; the caller becomes its orgAdmin", Some("CreateOrganization"), (201, Some("Organization")), false),
    r!("GET" "/organizations", true, "The caller's organizations with the caller's role", None, (200, Some("[Organization]")), false),
    r!("GET" "/organizations/user/{userId}", true, "The caller's organizations (the original API's path; only the caller's own)", None, (200, Some("[Organization]")), false),
    r!("GET" "/organizations/{id}", true, "An organization of the caller", None, (200, Some("Organization")), false),
    r!("GET" "/organizations/{id}/members", true, "Members and roles", None, (200, Some("[Member]")), false),
    r!("POST" "/organizations/{id}/members", true, "Add a member (orgAdmin)", Some("AddMember"), (201, Some("Member")), false),
    r!("PUT" "/organizations/{id}/members/{userId}", true, "Change a member's role (orgAdmin)", Some("SetRole"), (200, Some("Member")), false),
    r!("DELETE" "/organizations/{id}/members/{userId}", true, "Remove a member (orgAdmin), or leave", None, (204, None), false),
    r!("POST" "/org-invites", true, "Invite an email to an organization (orgAdmin); returns the token", Some("CreateInvite"), (201, Some("Invite")), false),
    r!("GET" "/org-invites/{token}", true, "An invite, by its token", None, (200, Some("Invite")), false),
    r!("POST" "/org-invites/{token}/accept", true, "Accept an invite (the token's email claim must be the invited one)", None, (200, Some("Member")), false),
    r!("GET" "/notifications", true, "The caller's notifications, newest first (?limit=&offset=)", None, (200, Some("[Notification]")), false),
    r!("POST" "/notifications/{id}/read", true, "Mark a notification read", None, (204, None), false),
    r!("GET" "/healthz", false, "Liveness", None, (200, None), false),
    r!("GET" "/readyz", false, "Readiness: every configured store answers", None, (200, None), false),
    r!("GET" "/metrics", false, "Prometheus metrics", None, (200, None), false),
    r!("GET" "/openapi.json", false, "This document", None, (200, None), false),
];

/// Whether a path's `segments` fit route template `template` (`/events/{id}`): as many
/// segments, each `{...}` of the template matching any non-empty one.
pub fn fits(template: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    parts.len() == segments.len() && parts.iter().zip(segments).all(|(t, s)| if t.starts_with('{') { !s.is_empty() } else { t == s })
}
