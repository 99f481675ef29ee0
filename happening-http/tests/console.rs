//! The web console's server side: its files under `/app` (the index for client routes, the
//! Content-Security-Policy, ETags and 304s, JSON 404s for unknown files), `/app/config.json`,
//! the signed-in link the zero-setup start prints, sign-in through an OpenID Connect
//! provider (discovery, JWKS, key rotation), and the attendee list it shows organizers
//! (`GET /events/:id/bookings`, `.csv`). Route tests run on `warp::test` without a socket.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use happening_core::Engine;
use happening_http::auth::{mint, AuthConfig, MintRequest, Verifier};
use happening_http::oidc::Oidc;
use happening_http::{routes, AppState, Settings};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

const SECRET: &str = "console-test-secret";

fn api_with(cfg: AuthConfig) -> BoxedFilter<(Response,)> {
    let verifier = Verifier::new(&cfg).unwrap();
    routes(AppState::new(Engine::in_memory(), verifier, None, Settings::default()))
}

fn api() -> BoxedFilter<(Response,)> {
    api_with(AuthConfig { secret: Some(SECRET.into()), ..Default::default() })
}

async fn get(api: &BoxedFilter<(Response,)>, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut r = warp::test::request().method("GET").path(path);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.reply(api).await.into_response()
}

fn header<'a>(res: &'a Response, name: &str) -> &'a str {
    res.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

async fn body(res: Response) -> bytes::Bytes {
    hyper::body::to_bytes(res.into_body()).await.unwrap()
}

use warp::Reply as _;

#[tokio::test]
async fn client_routes_answer_the_index_without_a_token() {
    let api = api();
    let index = body(get(&api, "/app", &[]).await).await;
    assert!(std::str::from_utf8(&index).unwrap().contains("<script type=\"module\" src=\"/app/js/main.js\">"));
    for path in
        ["/app", "/app/", "/app/events/0b6e4c1e-0000-0000-0000-000000000000", "/app/invites/abc_DEF-1", "/app/bookings", "/app/callback"]
    {
        let res = get(&api, path, &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&res, "content-type"), "text/html; charset=utf-8", "{path}");
        let csp = header(&res, "content-security-policy").to_string();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(header(&res, "referrer-policy"), "no-referrer");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        assert_eq!(body(res).await, index, "{path}");
    }
    // Not the console: a path that only begins the same.
    assert_eq!(get(&api, "/application", &[]).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn files_carry_their_type_and_an_etag_answered_with_304() {
    let api = api();
    let mut etags = Vec::new();
    for (path, kind) in [
        ("/app/js/main.js", "text/javascript"),
        ("/app/app.css", "text/css"),
        ("/app/icon.svg", "image/svg+xml"),
        ("/app/index.html", "text/html"),
    ] {
        let res = get(&api, path, &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(header(&res, "content-type").starts_with(kind), "{path}");
        assert_eq!(header(&res, "cache-control"), "no-cache", "{path}");
        let etag = header(&res, "etag").to_string();
        assert!(etag.len() == 34 && etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        let again = get(&api, path, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(header(&again, "etag"), etag);
        assert!(body(again).await.is_empty());
        let other = get(&api, path, &[("if-none-match", "\"0000\"")]).await;
        assert_eq!(other.status(), StatusCode::OK, "another tag gets the file");
        etags.push(etag);
    }
    etags.sort();
    etags.dedup();
    assert_eq!(etags.len(), 4, "the tag is the content's: every file its own");
    let head = warp::test::request().method("HEAD").path("/app/js/main.js").reply(&api).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.body().is_empty());
    assert!(header(&head.into_response(), "content-length").parse::<usize>().unwrap() > 0);
}

#[tokio::test]
async fn unknown_files_are_json_404s_and_only_get_is_served() {
    let api = api();
    for path in ["/app/js/nope.js", "/app/favicon.ico", "/app/pages/x.css"] {
        let res = get(&api, path, &[]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&res, "content-type"), "application/json");
        let v: Value = serde_json::from_slice(&body(res).await).unwrap();
        assert!(v["error"].as_str().unwrap().contains("no such file"), "{v}");
    }
    let res = warp::test::request().method("POST").path("/app").reply(&api).await.into_response();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&res, "allow"), "GET, HEAD");
}

#[tokio::test]
async fn config_says_no_provider_without_one() {
    let res = get(&api(), "/app/config.json", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "cache-control"), "no-store");
    assert_eq!(serde_json::from_slice::<Value>(&body(res).await).unwrap(), json!({ "oidc": null }));
}

/// The zero-setup start prints a console link with the real address that signs in, and
/// still ends with the listening line.
#[tokio::test]
async fn the_zero_setup_start_prints_a_signed_in_console_link() {
    let s = common::Server::start(&[], &[]).await;
    let last = s.banner.last().unwrap();
    assert!(last.starts_with("happening listening on http://127.0.0.1:"), "{last}");
    let link = s.banner.iter().find_map(|l| l.split_once(": http").map(|(_, rest)| format!("http{rest}"))).filter(|l| l.contains("/app#"));
    let link = link.unwrap_or_else(|| panic!("no console link in {:?}", s.banner));
    assert!(link.starts_with(&format!("{}/app#access_token=", s.base)), "{link} vs {}", s.base);
    let token = link.split_once("#access_token=").unwrap().1;
    let me = s.http.get(format!("{}/users/me", s.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(me.status().as_u16(), 200);
    let page = s.http.get(&link).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200, "the fragment never reaches the server; the page loads");
}

// ---- OpenID Connect ----

const KID: &str = "test-key-1";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A provider on the loopback: its discovery document (naming `issuer`) and its JWKS (the
/// fixture's key), counting the JWKS reads.
async fn provider(issuer_override: Option<&str>) -> (String, Arc<AtomicUsize>) {
    let (base, reads, _) = rotating_provider(issuer_override, fixture("jwks.json")).await;
    (base, reads)
}

/// As [`provider`], serving `jwks` until the returned handle is given another set.
async fn rotating_provider(issuer_override: Option<&str>, jwks: String) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<String>>) {
    let served = Arc::new(std::sync::Mutex::new(jwks));
    let reads = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = issuer_override.map_or_else(|| base.clone(), str::to_string);
    let doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/auth"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "end_session_endpoint": format!("{base}/session/end"),
    });
    let counter = reads.clone();
    let set = served.clone();
    let discovery = warp::path!(".well-known" / "openid-configuration").map(move || warp::reply::json(&doc));
    let jwks = warp::path!("jwks").map(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        warp::reply::with_header(set.lock().unwrap().clone(), "content-type", "application/json")
    });
    tokio::spawn(warp::serve(discovery.or(jwks)).run_incoming(accepted(listener)));
    (base, reads, served)
}

fn accepted(listener: tokio::net::TcpListener) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |l| async move {
        let accepted = l.accept().await.map(|(s, _)| s);
        Some((accepted, l))
    })
}

fn rs256(kid: Option<&str>, iss: &str, sub: &str) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = kid.map(str::to_string);
    let now = happening_http::auth::now_secs();
    let claims = json!({ "sub": sub, "exp": now + 600, "iat": now, "iss": iss, "email": format!("{sub}@example.com") });
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_pem(fixture("rs256-test-key.pem").as_bytes()).unwrap()).unwrap()
}

#[tokio::test]
async fn an_oidc_issuer_signs_people_in_and_its_keys_are_read_again_at_most_every_10_s() {
    let (issuer, reads) = provider(None).await;
    let oidc = Arc::new(Oidc::discover(&issuer, "happening-console").await.unwrap());
    assert_eq!(reads.load(Ordering::SeqCst), 1, "the keys are read at start");
    let api = api_with(AuthConfig { oidc: Some(oidc), ..Default::default() });

    let me = |tok: String| {
        let api = api.clone();
        async move { get(&api, "/users/me", &[("authorization", &format!("Bearer {tok}"))]).await }
    };
    let ok = me(rs256(Some(KID), &issuer, "kim")).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let user: Value = serde_json::from_slice(&body(ok).await).unwrap();
    assert_eq!((user["keycloak_id"].as_str(), user["email"].as_str()), (Some("kim"), Some("kim@example.com")));
    // The only key also verifies a token without `kid`.
    assert_eq!(me(rs256(None, &issuer, "kim")).await.status(), StatusCode::OK);
    // Another issuer's token, with a key the server knows: refused.
    let other = me(rs256(Some(KID), "https://elsewhere.example", "kim")).await;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    // HS256 is not accepted when only a provider is configured.
    let hs = mint("anything", &MintRequest { sub: "kim".into(), ttl_secs: 60, ..Default::default() });
    assert_eq!(me(hs).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(reads.load(Ordering::SeqCst), 1, "no key was unknown so far");

    // A key id nobody knows (a rotation, or made up): the keys are read again once...
    let unknown = me(rs256(Some("rotated-key"), &issuer, "kim")).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let why: Value = serde_json::from_slice(&body(unknown).await).unwrap();
    assert_eq!(why["error"], "no key for this token");
    // (The first read at start was less than 10 s ago: no read yet.)
    assert_eq!(reads.load(Ordering::SeqCst), 1, "not within 10 s of the last read");

    // ...and the config tells the console where to sign in, and lets it call the token endpoint.
    let res = get(&api, "/app/config.json", &[]).await;
    let cfg: Value = serde_json::from_slice(&body(res).await).unwrap();
    assert_eq!(cfg["oidc"]["issuer"], issuer.as_str());
    assert_eq!(cfg["oidc"]["client_id"], "happening-console");
    assert_eq!(cfg["oidc"]["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(cfg["oidc"]["end_session_endpoint"], format!("{issuer}/session/end"));
    assert!(cfg["oidc"]["scope"].as_str().unwrap().split(' ').any(|s| s == "openid"));
    let page = get(&api, "/app", &[]).await;
    assert!(header(&page, "content-security-policy").contains(&format!("connect-src 'self' {issuer}")));
}

/// The provider rotates its key: a token signed with the new key makes the server read the
/// keys again, and then verifies; past that, an unknown key id reads them at most once per
/// interval.
#[tokio::test]
async fn a_rotated_key_is_read_on_first_sight() {
    let old = fixture("jwks.json").replace(KID, "retired-key");
    let (issuer, reads, served) = rotating_provider(None, old).await;
    let oidc = Arc::new(Oidc::discover(&issuer, "c").await.unwrap().with_refresh_min_ms(0));
    let api = api_with(AuthConfig { oidc: Some(oidc), ..Default::default() });
    let auth = format!("Bearer {}", rs256(Some(KID), &issuer, "kim"));
    // The provider has not published the key yet: read again, still unknown.
    assert_eq!(get(&api, "/users/me", &[("authorization", &auth)]).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(reads.load(Ordering::SeqCst), 2);
    *served.lock().unwrap() = fixture("jwks.json");
    assert_eq!(get(&api, "/users/me", &[("authorization", &auth)]).await.status(), StatusCode::OK);
    assert_eq!(reads.load(Ordering::SeqCst), 3, "one read for the new key");
    assert_eq!(get(&api, "/users/me", &[("authorization", &auth)]).await.status(), StatusCode::OK);
    assert_eq!(reads.load(Ordering::SeqCst), 3, "a known key reads nothing");
}

#[tokio::test]
async fn unknown_key_ids_read_the_keys_again_rate_limited() {
    let (issuer, reads) = provider(None).await;
    let oidc = Oidc::discover(&issuer, "c").await.unwrap();
    let start = std::time::Instant::now();
    // The start's read is recent: a refresh is refused, and says so.
    assert!(!oidc.refresh(start).await);
    assert_eq!(reads.load(Ordering::SeqCst), 1);
    // A request that began before a read that finished since sees that read's keys.
    let before = start - std::time::Duration::from_secs(60);
    assert!(oidc.refresh(before).await, "the keys were read after it asked");
    assert_eq!(reads.load(Ordering::SeqCst), 1, "without reading them again");
}

#[tokio::test]
async fn a_provider_must_name_itself_the_issuer_asked_for() {
    let (issuer, _) = provider(Some("https://impostor.example")).await;
    let err = Oidc::discover(&issuer, "c").await.unwrap_err();
    assert!(err.contains("names the issuer"), "{err}");
    assert!(Oidc::discover("http://127.0.0.1:1", "c").await.unwrap_err().contains("cannot read the OpenID configuration"));
    assert!(Oidc::discover(&issuer, "").await.unwrap_err().contains("client id"));
}

// ---- the attendee list ----

struct Org {
    api: BoxedFilter<(Response,)>,
}

fn tok(sub: &str, name: &str) -> String {
    mint(
        SECRET,
        &MintRequest {
            sub: sub.into(),
            email: Some(format!("{sub}@example.com")),
            name: Some(name.into()),
            ttl_secs: 3600,
            ..Default::default()
        },
    )
}

impl Org {
    async fn call(&self, method: &str, path: &str, tok: &str, b: Option<Value>) -> (StatusCode, Response) {
        let mut r = warp::test::request().method(method).path(path).header("authorization", format!("Bearer {tok}"));
        if let Some(b) = b {
            r = r.body(b.to_string());
        }
        let res = r.reply(&self.api).await.into_response();
        (res.status(), res)
    }

    async fn json(&self, method: &str, path: &str, tok: &str, b: Option<Value>, want: StatusCode) -> Value {
        let (status, res) = self.call(method, path, tok, b).await;
        let v: Value = serde_json::from_slice(&body(res).await).unwrap_or(Value::Null);
        assert_eq!(status, want, "{method} {path}: {v}");
        v
    }
}

#[tokio::test]
async fn organizers_list_an_events_attendees_by_status_in_pages_and_as_csv() {
    let o = Org { api: api() };
    let admin = tok("admin", "Ada Admin");
    let org = o.json("POST", "/organizations", &admin, Some(json!({ "name": "Acme" })), StatusCode::CREATED).await;
    let org = org["id"].as_str().unwrap();
    let ev = o
        .json(
            "POST",
            "/events",
            &admin,
            Some(json!({ "org_id": org, "name": "Gig", "event_date": "2030-05-01T19:00:00Z", "total_slots": 3 })),
            StatusCode::CREATED,
        )
        .await;
    let ev = ev["id"].as_str().unwrap();
    // Three members book: two confirmed (one of them named like a spreadsheet formula), one waits.
    let mut people = Vec::new();
    for (sub, name, seats) in [("kim", "Kim, Lee", 2), ("sam", "=HYPERLINK(\"x\")", 1), ("alex", "Alex", 2)] {
        let t = tok(sub, name);
        let me = o.json("GET", "/users/me", &t, None, StatusCode::OK).await;
        o.json(
            "POST",
            &format!("/organizations/{org}/members"),
            &admin,
            Some(json!({ "user_id": me["id"], "role": "user" })),
            StatusCode::CREATED,
        )
        .await;
        o.json("POST", "/bookings", &t, Some(json!({ "event_id": ev, "seats": seats })), StatusCode::CREATED).await;
        people.push(t);
    }

    let all = o.json("GET", &format!("/events/{ev}/bookings"), &admin, None, StatusCode::OK).await;
    let rows: Vec<(&str, &str, &str)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["user_email"].as_str().unwrap(), r["user_name"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("kim@example.com", "Kim, Lee", "confirmed"),
            ("sam@example.com", "=HYPERLINK(\"x\")", "confirmed"),
            ("alex@example.com", "Alex", "waiting")
        ]
    );
    assert_eq!(all[0]["seat_numbers"], json!([1, 2]));
    let waiting = o.json("GET", &format!("/events/{ev}/bookings?status=waiting"), &admin, None, StatusCode::OK).await;
    assert_eq!(waiting.as_array().unwrap().len(), 1);
    assert_eq!(waiting[0]["user_email"], "alex@example.com");
    let page = o.json("GET", &format!("/events/{ev}/bookings?status=confirmed&limit=1&offset=1"), &admin, None, StatusCode::OK).await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["user_email"], "sam@example.com");
    let bad = o.json("GET", &format!("/events/{ev}/bookings?status=everything"), &admin, None, StatusCode::BAD_REQUEST).await;
    assert_eq!(bad["field"], "status");

    // A plain member may not read it; the CSV follows the same rule.
    o.json("GET", &format!("/events/{ev}/bookings"), &people[0], None, StatusCode::FORBIDDEN).await;
    o.json("GET", &format!("/events/{ev}/bookings.csv"), &people[0], None, StatusCode::FORBIDDEN).await;
    // Another organization's organizer: the event does not exist.
    let stranger = tok("stranger", "S");
    o.json("POST", "/organizations", &stranger, Some(json!({ "name": "Other" })), StatusCode::CREATED).await;
    o.json("GET", &format!("/events/{ev}/bookings"), &stranger, None, StatusCode::NOT_FOUND).await;
    o.json("GET", &format!("/events/{ev}/bookings.csv"), &stranger, None, StatusCode::NOT_FOUND).await;

    let (status, res) = o.call("GET", &format!("/events/{ev}/bookings.csv"), &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "text/csv; charset=utf-8");
    assert!(header(&res, "content-disposition").contains(&format!("attendees-{ev}.csv")));
    let csv = String::from_utf8(body(res).await.to_vec()).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], "booking_id,status,seats,seat_numbers,user_id,user_email,user_name,created_at,updated_at");
    assert_eq!(lines.len(), 5, "a header, three rows and the final CRLF: {csv}");
    assert!(lines[1].contains(",confirmed,2,1 2,") && lines[1].contains(",kim@example.com,\"Kim, Lee\","), "{}", lines[1]);
    assert!(lines[2].contains(",\"'=HYPERLINK(\"\"x\"\")\","), "a formula is defused: {}", lines[2]);
    assert!(lines[3].contains(",waiting,2,,") && lines[3].contains("alex@example.com"), "{}", lines[3]);
    let (_, res) = o.call("GET", &format!("/events/{ev}/bookings.csv?status=waiting"), &admin, None).await;
    let only = String::from_utf8(body(res).await.to_vec()).unwrap();
    assert_eq!(only.matches("\r\n").count(), 2, "{only}");
    let (_, res) = o.call("GET", &format!("/events/{ev}/bookings.csv?limit=2&offset=1"), &admin, None).await;
    let part = String::from_utf8(body(res).await.to_vec()).unwrap();
    assert!(!part.contains("kim@") && part.contains("sam@") && part.contains("alex@"), "{part}");
}
