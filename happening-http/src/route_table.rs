//! The route list, read once from the OpenAPI document (`openapi/`), the one place the routes
//! are declared: the metrics label requests by it, the filters answer `Allow` from it, and
//! tests send a request to every entry.

use std::sync::OnceLock;

use crate::openapi;

/// One route of the API: a method on a path template, and what a request to it needs.
pub struct Route {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// OpenAPI style: `/events/{id}`.
    pub path: String,
    /// Whether it needs a bearer token.
    pub auth: bool,
    /// The one-line description of the OpenAPI document.
    pub summary: String,
    /// Name of the request body schema in `components.schemas`.
    pub body: Option<String>,
    /// Whether the route takes an `Idempotency-Key` header.
    pub idempotent: bool,
}

/// Every route of the document, in its order.
pub fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let mut out = Vec::new();
        for (path, item) in &openapi::document().paths.paths {
            for (method, op) in [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("DELETE", &item.delete)] {
                let Some(op) = op else { continue };
                out.push(Route {
                    method,
                    path: path.clone(),
                    auth: openapi::needs_auth(op),
                    summary: op.summary.clone().unwrap_or_default(),
                    body: openapi::body_schema(op),
                    idempotent: openapi::idempotent(op),
                });
            }
        }
        out
    })
}

/// Whether a path's `segments` fit route template `template` (`/events/{id}`): as many
/// segments, each `{...}` of the template matching any non-empty one.
pub fn fits(template: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    parts.len() == segments.len() && parts.iter().zip(segments).all(|(t, s)| if t.starts_with('{') { !s.is_empty() } else { t == s })
}
