//! What the document says of the bodies the server writes as JSON values rather than from
//! a model of `models.rs` (errors, health, readiness) and of the live stream's items.
//! These types are descriptions only: nothing builds them (hence `dead_code` allowed here).
#![allow(dead_code)]

use std::collections::BTreeMap;

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::fields;

/// Every failure's body (`error.rs`).
#[derive(ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    #[schema(schema_with = fields::error_text)]
    error: String,
    /// The field at fault (400).
    #[schema(required = false)]
    field: String,
    /// Which conflict (409).
    #[schema(schema_with = fields::conflict_reason, required = false)]
    reason: String,
    /// The seats at fault (409).
    #[schema(schema_with = fields::seats, required = false)]
    seats: Vec<u32>,
    /// Seats left (409, not enough).
    #[schema(required = false)]
    available: u32,
}

/// `GET /healthz`.
#[derive(ToSchema)]
#[schema(as = Health)]
pub struct HealthBody {
    #[schema(schema_with = fields::health_status)]
    status: String,
}

/// `GET /readyz` when every required store answers.
#[derive(ToSchema)]
#[schema(as = Ready)]
pub struct ReadyBody {
    #[schema(schema_with = fields::ready_status)]
    status: String,
    /// The optional stores that do not answer.
    #[schema(required = false)]
    degraded: Vec<String>,
    /// Each store's kind, by role.
    stores: BTreeMap<String, String>,
}

/// `GET /readyz` when a required store does not answer, or on shutdown.
#[derive(ToSchema)]
#[schema(as = NotReady)]
pub struct NotReadyBody {
    error: String,
    #[schema(schema_with = fields::not_ready_status)]
    status: String,
    #[schema(required = false)]
    failing: Vec<String>,
    #[schema(required = false)]
    degraded: Vec<String>,
    stores: BTreeMap<String, String>,
}

/// One server-sent event of `GET /events/{id}/stream`: its name and its JSON data.
pub struct LiveStreamItem;

impl PartialSchema for LiveStreamItem {
    fn schema() -> RefOr<Schema> {
        let item = |name: &str, data: RefOr<Schema>| {
            let data = ObjectBuilder::new().schema_type(Type::String).content_media_type("application/json").content_schema(Some(data));
            ObjectBuilder::new()
                .property("event", ObjectBuilder::new().schema_type(Type::String).enum_values(Some([name])))
                .required("event")
                .property("data", data)
                .required("data")
        };
        let deleted = ObjectBuilder::new()
            .property("event_id", ObjectBuilder::new().schema_type(Type::String).format(Some(uuid())))
            .required("event_id");
        OneOfBuilder::new()
            .item(item("seats", Ref::from_schema_name("LiveSnapshot").into()))
            .item(item("deleted", deleted.into()))
            .item(item("error", Ref::from_schema_name("Error").into()))
            .into()
    }
}

impl ToSchema for LiveStreamItem {}

fn uuid() -> utoipa::openapi::SchemaFormat {
    utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid)
}
