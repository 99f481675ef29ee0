//! The one place where failures become HTTP responses: every engine error, every input
//! error and every warp rejection ends here as `{ "error": "..." }` with its status.

use std::convert::Infallible;

use happening_core::error::{Conflict, Entity};
use happening_core::Error as CoreError;
use serde_json::json;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Rejection, Reply};

/// Everything a request can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// An engine error; mapped by [`ApiError::status`].
    Core(CoreError),
    /// Malformed input. `field` names the offending field where there is one.
    BadRequest {
        field: Option<String>,
        message: String,
    },
    /// No token, or a token that does not verify.
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    /// The body is over the limit (bytes).
    PayloadTooLarge(u64),
    /// Per-user rate limit; retry after this many seconds.
    RateLimited {
        retry_after_secs: u64,
    },
    /// The idempotency key was used before with another request.
    IdempotencyMismatch,
    /// A per-user limit other than the rate (open live streams); nothing to wait for but
    /// the user's own streams closing, so no `Retry-After`.
    TooManyRequests(String),
    /// A store is unreachable, or the server is shutting down.
    Unavailable(String),
    /// A bug (a handler panicked): logged where it happened, never shown.
    Internal,
}

impl warp::reject::Reject for ApiError {}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError::Core(e)
    }
}

impl ApiError {
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest { field: Some(field.into()), message: message.into() }
    }

    pub fn not_found(what: Entity) -> Self {
        ApiError::Core(CoreError::NotFound(what))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Core(e) => match e {
                CoreError::NotFound(_) => StatusCode::NOT_FOUND,
                CoreError::Conflict { .. } => StatusCode::CONFLICT,
                CoreError::Invalid { .. } => StatusCode::BAD_REQUEST,
                CoreError::Capacity { .. } => StatusCode::CONFLICT,
                CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
                CoreError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
                CoreError::Backend(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } | ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body: always `error`, plus `field`, `seats` or `available` where they apply.
    pub fn body(&self) -> serde_json::Value {
        match self {
            ApiError::Core(e) => match e {
                CoreError::NotFound(what) => json!({ "error": format!("{what} not found") }),
                CoreError::Conflict { reason, seats } => {
                    let mut v = json!({ "error": conflict_message(reason, seats), "reason": reason.code() });
                    if !seats.is_empty() {
                        v["seats"] = json!(seats);
                    }
                    v
                }
                CoreError::Invalid { field, reason } => {
                    let field = http_field(field);
                    json!({ "error": format!("invalid {field}: {reason}"), "field": field })
                }
                CoreError::Capacity { available } => {
                    json!({ "error": format!("not enough free seats: {available} available"), "available": available })
                }
                CoreError::Forbidden(why) => json!({ "error": format!("forbidden: {why}") }),
                CoreError::IdempotencyMismatch => json!({ "error": "Idempotency-Key was already used with a different request" }),
                // Never show a store's message to a client: it is logged instead.
                CoreError::Backend(_) => json!({ "error": "service unavailable, try again" }),
            },
            ApiError::BadRequest { field: Some(f), message } => json!({ "error": message, "field": f }),
            ApiError::BadRequest { field: None, message } => json!({ "error": message }),
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Unavailable(m)
            | ApiError::TooManyRequests(m) => {
                json!({ "error": m })
            }
            ApiError::PayloadTooLarge(limit) => json!({ "error": format!("request body is larger than {limit} bytes") }),
            ApiError::RateLimited { retry_after_secs } => {
                json!({ "error": format!("rate limit exceeded, retry in {retry_after_secs}s") })
            }
            ApiError::IdempotencyMismatch => json!({ "error": "Idempotency-Key was already used with a different request" }),
            ApiError::Internal => json!({ "error": "internal server error" }),
        }
    }

    pub fn into_response(self) -> Response {
        self.response()
    }

    /// The response: status, JSON body, and the headers some statuses call for.
    pub fn response(&self) -> Response {
        if let ApiError::Core(CoreError::Backend(e)) = self {
            tracing::error!(error = %e, "store failure");
        }
        let mut res = warp::reply::with_status(warp::reply::json(&self.body()), self.status()).into_response();
        match self {
            ApiError::Unauthorized(_) => {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs } => {
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::PayloadTooLarge(_) => close(&mut res),
            _ => {}
        }
        res
    }
}

/// The engine names some fields by its own words; say them as the API does.
fn http_field(field: &str) -> &str {
    match field {
        "ttl" => "ttl_seconds",
        "sub" => "keycloak_id",
        f => f,
    }
}

fn conflict_message(reason: &Conflict, seats: &[u32]) -> String {
    if seats.is_empty() {
        reason.to_string()
    } else {
        let list: Vec<String> = seats.iter().map(u32::to_string).collect();
        format!("{reason}: {}", list.join(", "))
    }
}

/// Turns an [`ApiError`] into a rejection (for filters that must reject).
pub fn reject(e: ApiError) -> Rejection {
    warp::reject::custom(e)
}

/// Handlers answer `Result<Response, ApiError>`; this makes the error a response.
pub fn done(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(ApiError::into_response)
}

/// The single `recover`: every rejection becomes `{ "error": "..." }`.
pub async fn recover(rej: Rejection) -> Result<Response, Infallible> {
    if let Some(e) = rej.find::<ApiError>() {
        return Ok(e.response());
    }
    let (status, message) = if rej.is_not_found() {
        (StatusCode::NOT_FOUND, "not found".to_string())
    } else if let Some(e) = rej.find::<warp::reject::MethodNotAllowed>() {
        let _ = e;
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed".to_string())
    } else if let Some(e) = rej.find::<warp::cors::CorsForbidden>() {
        (StatusCode::FORBIDDEN, format!("CORS request forbidden: {e}"))
    } else if rej.find::<warp::reject::PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, "request body is too large".to_string())
    } else if let Some(e) = rej.find::<warp::reject::InvalidHeader>() {
        (StatusCode::BAD_REQUEST, format!("invalid header: {}", e.name()))
    } else if let Some(e) = rej.find::<warp::reject::MissingHeader>() {
        (StatusCode::BAD_REQUEST, format!("missing header: {}", e.name()))
    } else if rej.find::<warp::reject::InvalidQuery>().is_some() {
        (StatusCode::BAD_REQUEST, "invalid query string".to_string())
    } else if rej.find::<warp::reject::UnsupportedMediaType>().is_some() {
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported media type".to_string())
    } else if rej.find::<warp::reject::LengthRequired>().is_some() {
        (StatusCode::LENGTH_REQUIRED, "length required".to_string())
    } else {
        tracing::error!(rejection = ?rej, "unhandled rejection");
        return Ok(ApiError::Internal.response());
    };
    let mut res = warp::reply::with_status(warp::reply::json(&json!({ "error": message })), status).into_response();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        close(&mut res);
    }
    Ok(res)
}

/// The unread rest of a refused body is not drained: tell the client this connection ends,
/// so that it does not send its next request on it.
fn close(res: &mut Response) {
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
}
