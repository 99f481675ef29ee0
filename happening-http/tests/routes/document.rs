//! The OpenAPI document: every route it lists exists, answers as it says, and states auth, idempotency and strict bodies.

use super::*;

#[tokio::test]
async fn every_documented_route_exists_and_requires_auth_where_it_says() {
    let a = app();
    let id = uuid::Uuid::new_v4().to_string();
    for r in routes() {
        let path = r
            .path
            .replace("{token}", "sometoken")
            .split('/')
            .map(|s| if s.starts_with('{') { id.as_str() } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let res = a.call(r.method, &path, None, None).await;
        if r.auth {
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{} {path}", r.method);
            assert!(is_error(&res));
            assert_eq!(res.headers.get("www-authenticate").unwrap(), "Bearer");
        } else {
            assert_eq!(res.status, StatusCode::OK, "{} {path}", r.method);
        }
    }
    // The document lists exactly these routes.
    let doc = a.call("GET", "/openapi.json", None, None).await.body;
    let n: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(n, routes().len());
    assert!(doc["paths"]["/bookings"]["post"]["parameters"][0]["name"] == "Idempotency-Key");
    assert!(doc["paths"]["/events"]["get"]["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "org_id"));
}

/// What clients and schemathesis rely on in the derived document: which routes need a token
/// and take an `Idempotency-Key`, request bodies that refuse unknown fields, the text
/// patterns, limits and nullability of the request fields, and the shared error answers.
#[tokio::test]
async fn the_document_states_auth_idempotency_and_strict_bodies() {
    let a = app();
    let doc = a.call("GET", "/openapi.json", None, None).await.body;
    let anonymous = ["GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json"];
    let idempotent = ["POST /bookings", "POST /bookings/{id}/cancel", "POST /bookings/{id}/cancel-seats"];
    let mut bodies = 0;
    for r in routes() {
        let key = format!("{} {}", r.method, r.path);
        let op = &doc["paths"][&r.path][r.method.to_ascii_lowercase()];
        assert_eq!(r.auth, !anonymous.contains(&key.as_str()), "{key}");
        assert_eq!(r.idempotent, idempotent.contains(&key.as_str()), "{key}");
        assert!(!r.summary.is_empty(), "{key}");
        assert!(op["operationId"].as_str().is_some_and(|id| !id.is_empty()), "{key}");
        let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert!(statuses.iter().any(|s| s.starts_with('2')), "{key}: {statuses:?}");
        if r.auth {
            for s in ["401", "403", "404", "429", "503"] {
                assert_eq!(op["responses"][s]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error", "{key} {s}");
            }
        }
        if r.idempotent {
            assert!(op["responses"]["422"].is_object(), "{key}");
        }
        if let Some(body) = &r.body {
            bodies += 1;
            let schema = &doc["components"]["schemas"][body];
            assert_eq!(schema["additionalProperties"], false, "{key}: {body} refuses unknown fields");
            // `POST /users` takes an empty body as `{}`.
            assert_eq!(op["requestBody"]["required"].as_bool().unwrap_or(false), r.path != "/users", "{key}");
            assert!(op["responses"]["400"].is_object() && op["responses"]["413"].is_object(), "{key}");
        }
    }
    assert_eq!(bodies, 10, "routes with a JSON body");
    let schemas = &doc["components"]["schemas"];
    // The engine's text rules: a pattern on every text a request may send.
    for (schema, field) in [
        ("CreateEvent", "name"),
        ("CreateEvent", "description"),
        ("CreateEvent", "category"),
        ("UpdateEvent", "name"),
        ("CreateOrganization", "name"),
        ("CreateInvite", "email"),
        ("UpsertUser", "email"),
        ("UpsertUser", "name"),
    ] {
        let pattern = schemas[schema]["properties"][field]["pattern"].as_str().unwrap_or_default();
        // Anchored, white space around allowed, control characters refused.
        assert!(
            pattern.starts_with("^[\\t\\n") && pattern.ends_with('$') && pattern.contains("[^\\u0000-\\u0008"),
            "{schema}.{field}: {pattern:?}"
        );
    }
    assert_eq!(schemas["CreateEvent"]["properties"]["total_slots"]["maximum"], 1_000_000);
    assert_eq!(schemas["CreateBooking"]["properties"]["seat_numbers"]["maxItems"], 50);
    assert_eq!(schemas["CreateBooking"]["properties"]["seat_numbers"]["uniqueItems"], true);
    assert_eq!(schemas["CreateHold"]["properties"]["ttl_seconds"]["maximum"], 3600);
    let required = |s: &str| -> Vec<String> {
        let mut v: Vec<String> =
            schemas[s]["required"].as_array().map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect()).unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(required("CreateEvent"), ["event_date", "name", "org_id", "total_slots"]);
    assert_eq!(required("CreateBooking"), ["event_id"]);
    assert!(required("UpdateEvent").is_empty() && required("UpsertUser").is_empty());
    // Response rows: every property always there, null where it may be.
    assert!(required("Booking").contains(&"waiting_number".to_string()), "{}", schemas["Booking"]);
    assert!(!required("Booking").contains(&"event".to_string()), "only with GET /bookings/user/{{userId}}");
    assert_eq!(schemas["Booking"]["properties"]["hold_id"], json!({ "type": "string", "format": "uuid", "nullable": true }));
    assert_eq!(schemas["Event"]["properties"]["status"]["enum"], json!(["upcoming", "cancelled"]));
    // The live stream and the CSV.
    assert!(doc["paths"]["/events/{id}/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"]["oneOf"].is_array());
    assert!(doc["paths"]["/events/{id}/bookings.csv"]["get"]["responses"]["200"]["content"]["text/csv"].is_object());
}
