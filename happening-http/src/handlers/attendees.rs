//! An event's attendees for its organizers: who holds which seats (and who waits, and who
//! cancelled), a page at a time as JSON or the whole list as CSV.

use std::collections::HashMap;

use bytes::Bytes;
use happening_core::domain::{Booking, BookingStatus, Role, User};
use happening_core::ids::{EventId, UserId};
use happening_core::Engine;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

use super::*;
use crate::models::AttendeeDto;

/// Rows of one CSV export at most: a longer list is exported in parts with `offset`.
pub const CSV_ROWS_MAX: u32 = 100_000;

/// Bookings read per store call while a CSV export streams.
const CSV_PAGE_ROWS: u32 = 500;

/// `status` from a query string: any booking status, or none.
fn status_filter(q: &HashMap<String, String>) -> Result<Option<BookingStatus>, ApiError> {
    let Some(s) = q.get("status") else { return Ok(None) };
    serde_json::from_value(serde_json::Value::String(s.clone())).map(Some).map_err(|_| {
        ApiError::bad("status", "invalid status: must be a booking status (confirmed, waiting, offered, declined, expired, cancelled)")
    })
}

/// A page of bookings with the email and name of each one's user.
async fn attendees(engine: &Engine, bookings: Vec<Booking>) -> Result<Vec<AttendeeDto>, ApiError> {
    let mut ids: Vec<UserId> = bookings.iter().map(|b| b.user_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let users: HashMap<UserId, User> = engine.users(&ids).await?.into_iter().map(|u| (u.id, u)).collect();
    Ok(bookings
        .into_iter()
        .map(|b| {
            let user = users.get(&b.user_id);
            AttendeeDto::new(b.into(), user)
        })
        .collect())
}

/// `GET /events/:id/bookings?status=&limit=&offset=`: organizers and orgAdmins of the
/// event's organization; oldest first.
pub async fn list(id: EventId, ctx: Ctx, q: HashMap<String, String>) -> Result<Response, ApiError> {
    let (limit, offset) = paging(&q)?;
    let status = status_filter(&q)?;
    event_as(&ctx, id, Role::Organizer).await?;
    let page = ctx.engine().event_bookings(id, status, limit, offset).await?;
    ok(&attendees(ctx.engine(), page).await?)
}

/// `GET /events/:id/bookings.csv?status=&limit=&offset=`: the same rows as CSV, from
/// `offset`, up to `limit` rows (absent or 0: [`CSV_ROWS_MAX`], and at most that), streamed
/// a page at a time as they are read.
pub async fn csv(id: EventId, ctx: Ctx, q: HashMap<String, String>) -> Result<Response, ApiError> {
    let status = status_filter(&q)?;
    let (_, offset) = paging(&q)?;
    let rows = match q.get("limit").map(|_| paging(&q)).transpose()? {
        None | Some((0, _)) => CSV_ROWS_MAX,
        Some((n, _)) => n.min(CSV_ROWS_MAX),
    };
    let event = event_as(&ctx, id, Role::Organizer).await?;
    let engine = ctx.st.engine.clone();
    // (rows still to send, next offset, header sent)
    let state = (rows, offset, false);
    let body = futures_util::stream::unfold(state, move |(left, at, started)| {
        let engine = engine.clone();
        async move {
            if !started {
                return Some((Ok(Bytes::from_static(CSV_HEADER.as_bytes())), (left, at, true)));
            }
            if left == 0 {
                return None;
            }
            let page = match engine.event_bookings(id, status, left.min(CSV_PAGE_ROWS), at).await {
                Ok(p) if p.is_empty() => return None,
                Ok(p) => p,
                Err(e) => {
                    // The status line is gone: all a client can be told is that the body
                    // ends early (the connection is closed without the last chunk).
                    tracing::warn!(event = %id, error = %e, "CSV export of attendees failed");
                    return Some((Err(std::io::Error::other("export failed")), (0, at, true)));
                }
            };
            let n = page.len() as u32;
            // A short page is the last: stop after it without another read.
            let next_left = if n < left.min(CSV_PAGE_ROWS) { 0 } else { left - n };
            let out = match attendees(&engine, page).await {
                Ok(rows) => Ok(Bytes::from(rows.iter().map(csv_line).collect::<String>())),
                Err(_) => Err(std::io::Error::other("export failed")),
            };
            Some((out, (next_left, at + n, true)))
        }
    });
    let mut res = Response::new(warp::hyper::Body::wrap_stream(body));
    *res.status_mut() = StatusCode::OK;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    let file = format!("attachment; filename=\"attendees-{}.csv\"", event.id);
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&file).expect("a UUID is visible ASCII"));
    Ok(res)
}

const CSV_HEADER: &str = "booking_id,status,seats,seat_numbers,user_id,user_email,user_name,created_at,updated_at\r\n";

/// One CSV record (RFC 4180, CRLF).
fn csv_line(a: &AttendeeDto) -> String {
    let b = &a.booking;
    let seats: Vec<String> = b.seat_numbers.iter().map(u32::to_string).collect();
    let fields = [
        b.id.to_string(),
        b.status.as_str().to_string(),
        b.seats.to_string(),
        seats.join(" "),
        b.user_id.to_string(),
        a.user_email.clone().unwrap_or_default(),
        a.user_name.clone().unwrap_or_default(),
        b.created_at.to_rfc3339(),
        b.updated_at.to_rfc3339(),
    ];
    let mut line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// A field quoted when it must be, and a text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, tab, CR first) prefixed with `'`: names and emails come from
/// tokens, which anyone with an account at the identity provider chooses.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("Kim"), "Kim");
        assert_eq!(csv_field("Lee, Kim"), "\"Lee, Kim\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
