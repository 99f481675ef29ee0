//! The query and header parameters of the routes, as `IntoParams` types for the declarations
//! of `paths.rs`. Written against utoipa's builders rather than derived, because their limits
//! and texts come from the server's constants (page sizes, the CSV's row cap).

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, Required};
use utoipa::IntoParams;

use super::fields;
use crate::handlers::attendees::CSV_ROWS_MAX;
use crate::handlers::PAGE_SIZE_DEFAULT;

fn query(name: &str, required: bool, schema: ObjectBuilder) -> Parameter {
    let required = if required { Required::True } else { Required::False };
    ParameterBuilder::new().name(name).parameter_in(ParameterIn::Query).required(required).schema(Some(schema)).build()
}

fn count(default: u32, description: String) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(u32::MAX))
        .default(Some(default.into()))
        .description(Some(description))
}

fn limit() -> Parameter {
    let (default, max) = (PAGE_SIZE_DEFAULT, happening_core::limits::Limits::default().page_size_max);
    query("limit", false, count(default, format!("rows per page: {default} when absent, at most {max} (0 or more than {max}: {max})")))
}

fn offset() -> Parameter {
    query("offset", false, count(0, "rows to skip: the next page starts at offset + limit".into()))
}

fn status() -> Parameter {
    query("status", false, fields::booking_status())
}

/// `?limit=&offset=`.
pub struct Page;

impl IntoParams for Page {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![limit(), offset()]
    }
}

/// `GET /events`: `?org_id=&limit=&offset=`.
pub struct EventsQuery;

impl IntoParams for EventsQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let uuid = ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
        vec![query("org_id", false, uuid), limit(), offset()]
    }
}

/// `GET /events/{id}/bookings`: `?status=&limit=&offset=`.
pub struct AttendeesQuery;

impl IntoParams for AttendeesQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![status(), limit(), offset()]
    }
}

/// `GET /events/{id}/bookings.csv`: `?status=&limit=&offset=`, up to [`CSV_ROWS_MAX`] rows.
pub struct CsvQuery;

impl IntoParams for CsvQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let limit = count(CSV_ROWS_MAX, format!("rows at most: {CSV_ROWS_MAX} when absent or 0, and at most {CSV_ROWS_MAX}"));
        vec![status(), query("limit", false, limit), offset()]
    }
}

/// `GET /users`: `?keycloak_id=`.
pub struct UserLookup;

impl IntoParams for UserLookup {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![query("keycloak_id", true, ObjectBuilder::new().schema_type(Type::String))]
    }
}

/// `GET /events/{id}/stream`: `?access_token=`.
pub struct StreamQuery;

impl IntoParams for StreamQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let token = ObjectBuilder::new().schema_type(Type::String).description(Some(
            "the bearer token, for clients that cannot send an Authorization header (a browser's EventSource); the header wins when both are given",
        ));
        vec![query("access_token", false, token)]
    }
}

/// The header of the routes that replay a repeat (`idempotency.rs`).
pub struct IdempotencyKey;

/// Its name, as the route list recognizes the routes that take it.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

impl IntoParams for IdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let key = ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(200)).pattern(Some("^[!-~]+$"));
        vec![ParameterBuilder::new()
            .name(IDEMPOTENCY_KEY)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .schema(Some(key))
            .description(Some(
                "1 to 200 visible ASCII characters. A repeat returns the first response (with `Idempotent-Replayed: true`) and changes nothing; the same key with another request is a 422",
            ))
            .build()]
    }
}
