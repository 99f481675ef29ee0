//! Hostile input, part 1: forged, expired and malformed bearer tokens, and the per-user
//! rate limit. Every refused request answers JSON `{"error": ...}` with its status and
//! changes nothing: the engine's state of the seeded event (event row, bookings, seat map,
//! waitlist) is compared before and after, and no user is created for a forged subject.
//!
//! Route tests (`warp::test::request()`, in-memory engine, no socket).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use chrono::Utc;
use happening_core::clock::ManualClock;
use happening_core::ids::EventId;
use happening_core::Engine;
use happening_http::auth::{mint, now_secs, AuthConfig, MintRequest, Verifier};
use happening_http::ratelimit::RateLimiter;
use happening_http::{routes, AppState, Settings};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

const SECRET: &str = "security-test-secret";
const ISSUER: &str = "https://kc.example/realms/happening";
const AUDIENCE: &str = "happening";
const KID: &str = "test-key-1";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The public half of `fixtures/rs256-test-key.pem` (what the JWKS publishes), as SPKI and
/// PKCS#1 PEM: what an attacker would use as an HMAC secret in an HS/RS confusion.
const PUBLIC_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAzKsgyuCU6GP8ghyxs/JG
O7hHBniUOQ6JpQIsQDpBysxcNjNntPu8oHAni5U3WFLDP1NSj8MrmA1TGiiSQd2b
tt95fMs8fkIisEykxKlgIanu6kMBaGH9q284gMze+TGEVgj6KgI7fGiquIb+lCpO
hW9v1/ME2+89isWTwidmJXzr5R8QByMQKFgG9tWGpXDO6T+uqXnkSm2KUYcH25Im
ry+TjOK9bXBxYFQA2g9KjhYl0w082eguV8AEMVJmZ5UiZrcDrPoPqLrOYZ/moILx
4uiYEkCY2dTtRquv893dKJ13GsQyoQlLd5p/unrMGb/ShpOMtUuWFC+Qe5GEaLyJ
owIDAQAB
-----END PUBLIC KEY-----
";
const PUBLIC_PKCS1_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAzKsgyuCU6GP8ghyxs/JGO7hHBniUOQ6JpQIsQDpBysxcNjNntPu8
oHAni5U3WFLDP1NSj8MrmA1TGiiSQd2btt95fMs8fkIisEykxKlgIanu6kMBaGH9
q284gMze+TGEVgj6KgI7fGiquIb+lCpOhW9v1/ME2+89isWTwidmJXzr5R8QByMQ
KFgG9tWGpXDO6T+uqXnkSm2KUYcH25Imry+TjOK9bXBxYFQA2g9KjhYl0w082egu
V8AEMVJmZ5UiZrcDrPoPqLrOYZ/moILx4uiYEkCY2dTtRquv893dKJ13GsQyoQlL
d5p/unrMGb/ShpOMtUuWFC+Qe5GEaLyJowIDAQAB
-----END RSA PUBLIC KEY-----
";

/// Another RSA key, generated for this test only and in no JWKS: its tokens must not verify.
const OTHER_RSA_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCVO5dl2PFPRx3s
x8QpmAMJVl7VgaUZDbv8/F/XnWpDnwYsdvz1uBhot96MAfGF1jhw1Gu1tAcbdEEW
HM5/msyf1v4dEEtke/Mg5UBqz1UEnEDSFT6EocEKJO2xNzjOerOgEVKVZR525QeB
SwYrQCNFJB6Ts4z6hp81MTDh6g8tZrqQdCF90J31XRkli395JoBcjIiQTGX0VAsS
Y1zN4BG674CpTosXA+7NwwEJ8h/Vt/hcWodJeKruNX9lWadhok7czkLWk6h4nBhz
pJlXCtYDXfIFKpO8J3u4zK9/x+EektZpZ5XKzCilAFzdY9SOQ/F+iX739UFCTONx
v+5xtN6nAgMBAAECggEAD2JJRTKMDcQjDZm6Wx9UkM3akOAAiQilbHsH1k5f+gCW
vla11Q7ZVVI/GufIYienQdpkECMy6F2fqAvoLbdjiMa9A3n+i6lLcwSvE1O0S/lf
pUiTXVDfeZA9AJvUu1Ri2AlxHf2CmncZwvZc+HBwMlx62ncT/W+LUgx0IZXjYqag
HXJOwZ9IQhsJayJAsfxOgWvKfQGnpTJrEJpHc2ZlS9QJKoL2uKRNz0SiJSoQRCFH
ipyvjy3hSzqioL+K8a8vXx4zFsoFKtkxUCNfsmO20hc1tr/tbczeRuBl9wUcfu6o
vtLn/Z5EwX5+Aix3i4W10s/d8c+dYl0QXCwnj39ZgQKBgQDIOHUuy/I63d1qjpOB
vzR1xfT8lA/6/rl0ys7yEuUY0lPFZ1BR3U/sQcbVg+phJqed6sBODoGiMBibDnWT
jMt04N4/6szVuBdpczlTw+CWmepBazUNuf7wcDGdKBzMGo9midtyhyC0crWjGHsf
LXuey3ZwSWZu90zMt+QXM6RGNwKBgQC+zrvyZPIr3jt+dcmeE8m0lUrbOcSAhpPB
qloPkuVsUeX2bLsIIcrN0SjUTaOA6YLM4egMOC6kXKgdDLECqFlP+Ba6vJi/eEgz
kvXP4/k+vLznssES5vDDhn7/34JUERSTllpRBK7Zmucp560Tp4SFTcMm3ovSEQIb
h4Sy4QrzEQKBgEnsdm+Zw0yyv95o19Nuyiq1tRdQf3n3dHfHrZK5ITcB6QYYeBJR
uQGM46HPu8i04ewvUWNAfeJpCZyuQQECWdhEcip9QbWi65n2ffMMfi58k34l3Ae+
ZX9WnSreNYuyPsHoIkrt00hsld2q20KOo3bkvk0E/Ln5urRXLPLYEU4PAoGBAKTU
5On+KHKbFZwmVtjXUU1OFw+RNN6u41/PMOP5S3YqvdUGkv/waUkpofLdaxzHHLav
hQ1hT3GvlY8a0qNwGU+LCt+gYvgtCXp8PxurXjrDQxGJi18v39eZDYcvZ2AGLVdd
8IHC4OWc+otp10t+UG30Al1GrVT4WnC7vnflDtdxAoGBAIPilfC2TpIDJI3fwo23
A5/eb3UgDSxkaQjLFL3a53DG4c9uj6ffylvjoovlvJDiD90gkweC+CrVq1hvVgzh
+iQYx9svQm9iBqFrdTCDAjjsCfhChSWbg8hS3jUwkzxE9ggrdi54BSiLaMBpK2P2
QpmflIDDO41fsVuwD+aE0zzm
-----END PRIVATE KEY-----
";

/// The modulus of `OTHER_RSA_KEY` (its public half), base64url.
const OTHER_RSA_N: &str = "lTuXZdjxT0cd7MfEKZgDCVZe1YGlGQ27_Pxf151qQ58GLHb89bgYaLfejAHxhdY4cNRrtbQHG3RBFhzOf5rMn9b-HRBLZHvzIOVAas9VBJxA0hU-hKHBCiTtsTc4znqzoBFSlWUeduUHgUsGK0AjRSQek7OM-oafNTEw4eoPLWa6kHQhfdCd9V0ZJYt_eSaAXIyIkExl9FQLEmNczeARuu-AqU6LFwPuzcMBCfIf1bf4XFqHSXiq7jV_ZVmnYaJO3M5C1pOoeJwYc6SZVwrWA13yBSqTvCd7uMyvf8fhHpLWaWeVyswopQBc3WPUjkPxfol-9_VBQkzjcb_ucbTepw";

struct App {
    engine: Engine,
    api: BoxedFilter<(Response,)>,
}

struct Res {
    status: StatusCode,
    body: Value,
    headers: warp::http::HeaderMap,
}

fn app_with(cfg: AuthConfig, limiter: Option<RateLimiter>) -> App {
    let engine = Engine::in_memory().with_clock(Arc::new(ManualClock::new(Utc::now())));
    app_over(engine, cfg, limiter)
}

/// Another server over the same engine (and so the same users, events and bookings).
fn app_over(engine: Engine, cfg: AuthConfig, limiter: Option<RateLimiter>) -> App {
    let verifier = Verifier::new(&cfg).unwrap();
    let st = AppState::new(engine.clone(), verifier, limiter, Settings::default());
    App { api: routes(st), engine }
}

/// HS256 and RS256 (the fixture JWKS), issuer and audience required.
fn full_config() -> AuthConfig {
    AuthConfig {
        secret: Some(SECRET.into()),
        jwks: Some(serde_json::from_str(&fixture("jwks.json")).unwrap()),
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        ..Default::default()
    }
}

/// RS256 only (the usual Keycloak set-up): no HS256 secret at all.
fn jwks_only_config() -> AuthConfig {
    AuthConfig { jwks: Some(serde_json::from_str(&fixture("jwks.json")).unwrap()), ..Default::default() }
}

fn claims(sub: &str) -> Value {
    let now = now_secs();
    json!({ "sub": sub, "exp": now + 3600, "iat": now, "email": format!("{sub}@example.com"), "iss": ISSUER, "aud": AUDIENCE })
}

fn hs256(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn rs256_with(pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap()
}

fn rs256(claims: &Value) -> String {
    rs256_with(&fixture("rs256-test-key.pem"), Some(KID), claims)
}

fn good(sub: &str) -> String {
    hs256(SECRET.as_bytes(), &claims(sub))
}

/// A token assembled by hand: any header, any claims, any signature.
fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()), B64.encode(signature))
}

/// `header.payload.signature` with the payload of `other` and the signature of `signed`.
fn splice(signed: &str, other: &str) -> String {
    let s: Vec<&str> = signed.split('.').collect();
    let o: Vec<&str> = other.split('.').collect();
    format!("{}.{}.{}", s[0], o[1], s[2])
}

impl App {
    async fn raw(&self, method: &str, path: &str, headers: &[(&str, &[u8])], body: Option<Value>) -> Res {
        let mut r = warp::test::request().method(method).path(path);
        for (k, v) in headers {
            r = r.header(*k, warp::http::HeaderValue::from_bytes(v).unwrap());
        }
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let res = r.reply(&self.api).await;
        let body = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
        Res { status: res.status(), headers: res.headers().clone(), body }
    }

    async fn call(&self, method: &str, path: &str, tok: &str, body: Option<Value>) -> Res {
        self.raw(method, path, &[("authorization", format!("Bearer {tok}").as_bytes())], body).await
    }

    async fn ok(&self, method: &str, path: &str, tok: &str, body: Option<Value>, want: StatusCode) -> Value {
        let r = self.call(method, path, tok, body).await;
        assert_eq!(r.status, want, "{method} {path}: {}", r.body);
        r.body
    }

    /// An organization of `admin` with `alice` a member, an event of 5 seats, alice holding
    /// 2 of them; returns the event's id.
    async fn seed(&self, admin: &str, alice: &str) -> String {
        let alice_id = self.ok("POST", "/users", alice, None, StatusCode::OK).await["id"].as_str().unwrap().to_string();
        let org = self.ok("POST", "/organizations", admin, Some(json!({ "name": "Org" })), StatusCode::CREATED).await;
        let org = org["id"].as_str().unwrap();
        self.ok(
            "POST",
            &format!("/organizations/{org}/members"),
            admin,
            Some(json!({ "user_id": alice_id, "role": "user" })),
            StatusCode::CREATED,
        )
        .await;
        let ev = self
            .ok(
                "POST",
                "/events",
                admin,
                Some(json!({ "org_id": org, "name": "Show", "event_date": "2030-06-01T19:00:00Z", "total_slots": 5 })),
                StatusCode::CREATED,
            )
            .await;
        let ev = ev["id"].as_str().unwrap().to_string();
        let b = self.ok("POST", "/bookings", alice, Some(json!({ "event_id": ev, "seats": 2 })), StatusCode::CREATED).await;
        assert_eq!(b["seat_numbers"], json!([1, 2]));
        ev
    }

    /// Everything the engine knows of the event, read from the store (not through HTTP, so
    /// that reading it costs no rate-limit tokens).
    async fn state(&self, ev: &str) -> String {
        let id: EventId = ev.parse().unwrap();
        let store = self.engine.store();
        format!(
            "{:?}\n{:?}\n{:?}\n{:?}",
            store.event_view(id).await.unwrap(),
            store.event_bookings(id).await.unwrap(),
            store.seat_map(id).await.unwrap(),
            self.engine.waitlist(id, 0, 0).await.unwrap(),
        )
    }

    async fn user_exists(&self, sub: &str) -> bool {
        self.engine.store().user_by_subject(sub).await.is_ok()
    }
}

fn assert_json_error(r: &Res, want: StatusCode, what: &str) {
    assert_eq!(r.status, want, "{what}: {}", r.body);
    let msg = r.body.get("error").and_then(Value::as_str).unwrap_or_default();
    assert!(!msg.is_empty(), "{what}: no JSON error in {}", r.body);
    assert!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/json")),
        "{what}: {:?}",
        r.headers
    );
}

/// Sends `auth` (the raw Authorization header, or none) on a booking attempt and on a read;
/// both must be 401 with a JSON error and `WWW-Authenticate: Bearer`, and the event, its
/// bookings, seats and waitlist unchanged.
async fn refused(a: &App, ev: &str, auth: Option<&[u8]>, what: &str) -> String {
    let before = a.state(ev).await;
    let headers: Vec<(&str, &[u8])> = auth.map(|v| vec![("authorization", v)]).unwrap_or_default();
    let mut last = String::new();
    for (m, p, body) in [
        ("POST", "/bookings".to_string(), Some(json!({ "event_id": ev, "seats": 3 }))),
        ("PUT", format!("/events/{ev}"), Some(json!({ "total_slots": 50 }))),
        ("GET", format!("/events/{ev}/seats"), None),
        ("GET", "/users/me".to_string(), None),
    ] {
        let r = a.raw(m, &p, &headers, body).await;
        assert_json_error(&r, StatusCode::UNAUTHORIZED, &format!("{what}: {m} {p}"));
        assert_eq!(r.headers.get("www-authenticate").map(|v| v.as_bytes()), Some(&b"Bearer"[..]), "{what}");
        last = r.body["error"].as_str().unwrap().to_string();
    }
    assert_eq!(a.state(ev).await, before, "{what}: a refused token changed the event");
    last
}

async fn refused_token(a: &App, ev: &str, token: &str, what: &str) -> String {
    refused(a, ev, Some(format!("Bearer {token}").as_bytes()), what).await
}

#[tokio::test]
async fn the_real_tokens_work_so_the_refusals_below_mean_something() {
    let a = app_with(full_config(), None);
    let ev = a.seed(&good("admin"), &good("alice")).await;
    // HS256 and RS256 with issuer and audience are accepted, and book.
    let carol = rs256(&claims("carol"));
    assert_eq!(a.ok("GET", "/users/me", &carol, None, StatusCode::OK).await["keycloak_id"], "carol");
    let r = a.call("POST", "/bookings", &good("alice"), Some(json!({ "event_id": ev, "seats": 1 }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["seat_numbers"], json!([3]));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let a = app_with(full_config(), None);
    let ev = a.seed(&good("admin"), &good("alice")).await;
    // alice's own claims, unsigned: "none" in every spelling, with and without a signature.
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        for sig in [&b""[..], b"sig"] {
            let t = forge(&json!({ "alg": alg, "typ": "JWT" }), &claims("alice"), sig);
            refused_token(&a, &ev, &t, &format!("alg {alg:?}")).await;
            let t = format!("{}.", t.rsplit_once('.').unwrap().0);
            refused_token(&a, &ev, &t, &format!("alg {alg:?}, empty signature")).await;
        }
    }
    // A header without alg, and with algorithms the server does not use.
    for header in [
        json!({ "typ": "JWT" }),
        json!({ "alg": "HS512" }),
        json!({ "alg": "RS512" }),
        json!({ "alg": "ES256" }),
        json!({ "alg": "PS256" }),
    ] {
        let t = forge(&header, &claims("ghost"), b"x");
        refused_token(&a, &ev, &t, &format!("header {header}")).await;
    }
    assert!(!a.user_exists("ghost").await);
}

#[tokio::test]
async fn hs256_signed_with_the_rs256_public_key_is_refused() {
    let jwks_text = fixture("jwks.json");
    let jwk: Value = serde_json::from_str(&jwks_text).unwrap();
    let n_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwk["keys"][0]["n"].as_str().unwrap()).unwrap();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("SPKI PEM", PUBLIC_SPKI_PEM.as_bytes().to_vec()),
        ("SPKI PEM without final newline", PUBLIC_SPKI_PEM.trim_end().as_bytes().to_vec()),
        ("PKCS#1 PEM", PUBLIC_PKCS1_PEM.as_bytes().to_vec()),
        ("JWKS document", jwks_text.as_bytes().to_vec()),
        ("JWK", jwk["keys"][0].to_string().into_bytes()),
        ("modulus n (base64url)", jwk["keys"][0]["n"].as_str().unwrap().as_bytes().to_vec()),
        ("modulus n (bytes)", n_bytes),
    ];
    // Both when the server takes RS256 only (HS256 then is no algorithm at all), and when it
    // takes both (HS256 then verifies against the HS secret, never the RSA key).
    for (cfg_name, cfg) in [("JWKS only", jwks_only_config()), ("JWKS and HS256 secret", full_config())] {
        let a = app_with(cfg.clone(), None);
        // Seed through RS256 tokens, which both set-ups accept.
        let ev = a.seed(&rs256(&claims("admin")), &rs256(&claims("alice"))).await;
        for (what, secret) in &secrets {
            for kid in [None, Some(KID)] {
                let mut h = Header::new(Algorithm::HS256);
                h.kid = kid.map(str::to_string);
                let t = jsonwebtoken::encode(&h, &claims("alice"), &EncodingKey::from_secret(secret)).unwrap();
                let msg = refused_token(&a, &ev, &t, &format!("{cfg_name}: HS256 with the public key as {what}, kid {kid:?}")).await;
                if cfg.secret.is_none() {
                    assert!(msg.contains("HS256"), "{msg}");
                } else {
                    assert!(msg.contains("signature"), "{msg}");
                }
            }
        }
    }
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let a = app_with(full_config(), None);
    let ev = a.seed(&good("admin"), &good("alice")).await;
    let now = now_secs();
    // Past the 30 s leeway, signed with either real key; the cached good token of alice
    // does not make an expired one of hers pass.
    for exp in [now - 31, now - 3600, 1, 0, -1, i64::from(i32::MIN)] {
        let c = json!({ "sub": "alice", "exp": exp, "iss": ISSUER, "aud": AUDIENCE });
        for t in [hs256(SECRET.as_bytes(), &c), rs256(&c)] {
            let msg = refused_token(&a, &ev, &t, &format!("exp {exp}")).await;
            // (jsonwebtoken reads an `exp` of 0 or below as no expiry at all: refused too.)
            assert!(msg.contains("expired") || (exp <= 0 && msg.contains("required claim")), "exp {exp}: {msg}");
        }
    }
    // Not valid yet: `nbf` past the leeway ahead (within it, clock skew, it passes).
    for (nbf, ok) in [(now + 3600, false), (now + 31 + 5, false), (now + 10, true), (now - 10, true)] {
        let c = json!({ "sub": format!("nbf-{ok}-{nbf}"), "exp": now + 7200, "nbf": nbf, "iss": ISSUER, "aud": AUDIENCE });
        for t in [hs256(SECRET.as_bytes(), &c), rs256(&c)] {
            if ok {
                assert_eq!(a.call("GET", "/users/me", &t, None).await.status, StatusCode::OK, "nbf {nbf}");
            } else {
                let msg = refused_token(&a, &ev, &t, &format!("nbf {nbf}")).await;
                assert!(msg.contains("not valid yet"), "{msg}");
            }
        }
    }
    // exp missing, or not a number.
    for c in [
        json!({ "sub": "alice", "iss": ISSUER, "aud": AUDIENCE }),
        json!({ "sub": "alice", "exp": "tomorrow", "iss": ISSUER, "aud": AUDIENCE }),
        json!({ "sub": "alice", "exp": null, "iss": ISSUER, "aud": AUDIENCE }),
    ] {
        refused_token(&a, &ev, &hs256(SECRET.as_bytes(), &c), &format!("claims {c}")).await;
    }
    // The helper the server uses agrees.
    let expired = mint(
        SECRET,
        &MintRequest {
            sub: "alice".into(),
            ttl_secs: -300,
            issuer: Some(ISSUER.into()),
            audience: Some(AUDIENCE.into()),
            ..Default::default()
        },
    );
    refused_token(&a, &ev, &expired, "minted expired").await;
}

#[tokio::test]
async fn issuer_and_audience_are_enforced() {
    let a = app_with(full_config(), None);
    let ev = a.seed(&good("admin"), &good("alice")).await;
    let mut cases = Vec::new();
    for (what, patch) in [
        ("wrong issuer", json!({ "iss": "https://evil.example/realms/happening" })),
        ("issuer with a trailing slash", json!({ "iss": format!("{ISSUER}/") })),
        ("issuer as a list", json!({ "iss": [ISSUER] })),
        ("no issuer", json!({ "iss": null })),
        ("wrong audience", json!({ "aud": "other-client" })),
        ("audience list without ours", json!({ "aud": ["other", "account"] })),
        ("no audience", json!({ "aud": null })),
    ] {
        let mut c = claims("alice");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        cases.push((what, c));
    }
    for (what, c) in cases {
        let m1 = refused_token(&a, &ev, &hs256(SECRET.as_bytes(), &c), &format!("HS256, {what}")).await;
        let m2 = refused_token(&a, &ev, &rs256(&c), &format!("RS256, {what}")).await;
        assert_eq!(m1, m2, "{what}: both algorithms say the same");
    }
    // An audience list that includes ours is fine (Keycloak sends lists).
    let mut c = claims("dave");
    c["aud"] = json!(["account", AUDIENCE]);
    assert_eq!(a.ok("GET", "/users/me", &rs256(&c), None, StatusCode::OK).await["keycloak_id"], "dave");
}

#[tokio::test]
async fn tampered_payloads_are_refused() {
    let a = app_with(full_config(), None);
    let alice = good("alice");
    let ev = a.seed(&good("admin"), &alice).await;
    // alice's genuine tokens are used (and cached) first: the cache must match the exact token.
    assert_eq!(a.ok("GET", "/users/me", &alice, None, StatusCode::OK).await["keycloak_id"], "alice");
    let alice_rs = rs256(&claims("alice"));
    assert_eq!(a.ok("GET", "/users/me", &alice_rs, None, StatusCode::OK).await["keycloak_id"], "alice");
    // Her signature on admin's claims, or on her own claims with a later expiry.
    let mut longer = claims("alice");
    longer["exp"] = json!(now_secs() + 10 * 365 * 86400);
    for (what, signed, other) in [
        ("HS256: alice's signature, admin's payload", &alice, good("admin")),
        ("HS256: alice's signature, a longer expiry", &alice, hs256(b"whatever", &longer)),
        ("RS256: alice's signature, admin's payload", &alice_rs, rs256(&claims("admin"))),
        ("RS256: alice's signature, a longer expiry", &alice_rs, rs256(&longer)),
        ("HS256 payload under an RS256 signature", &alice_rs, good("admin")),
    ] {
        let t = splice(signed, &other);
        assert_ne!(&t, signed);
        let msg = refused_token(&a, &ev, &t, what).await;
        assert!(msg.contains("signature") || msg.contains("invalid"), "{what}: {msg}");
    }
    // A flipped bit in the signature, and the signature cut short or removed.
    let parts: Vec<&str> = alice.split('.').collect();
    let mut sig = B64.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    for (what, t) in [
        ("flipped signature bit", format!("{}.{}.{}", parts[0], parts[1], B64.encode(&sig))),
        ("short signature", format!("{}.{}.{}", parts[0], parts[1], &parts[2][..10])),
        ("no signature", format!("{}.{}.", parts[0], parts[1])),
        ("header and payload only", format!("{}.{}", parts[0], parts[1])),
        ("extra segment", format!("{alice}.{}", parts[2])),
        ("payload not JSON", format!("{}.{}.{}", parts[0], B64.encode("not json"), parts[2])),
    ] {
        refused_token(&a, &ev, &t, what).await;
    }
    // alice still works: nothing above poisoned her cached identity.
    assert_eq!(a.ok("GET", "/users/me", &alice, None, StatusCode::OK).await["keycloak_id"], "alice");
}

#[tokio::test]
async fn malformed_missing_and_empty_authorization_is_refused() {
    let a = app_with(full_config(), None);
    let alice = good("alice");
    let ev = a.seed(&good("admin"), &alice).await;
    let long = "a".repeat(16 * 1024);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty header", b"".to_vec()),
        ("Bearer alone", b"Bearer".to_vec()),
        ("Bearer and a space", b"Bearer ".to_vec()),
        ("Bearer and spaces", b"Bearer     ".to_vec()),
        ("Basic credentials", b"Basic YWxpY2U6c2VjcmV0".to_vec()),
        ("token without a scheme", alice.clone().into_bytes()),
        ("another scheme with a good token", format!("Token {alice}").into_bytes()),
        ("good token followed by garbage", format!("Bearer {alice} x").into_bytes()),
        ("tab instead of space", format!("Bearer\t{alice}").into_bytes()),
        ("not a JWT", b"Bearer not-a-jwt".to_vec()),
        ("three empty segments", b"Bearer ..".to_vec()),
        ("header not base64", b"Bearer !!!.???.###".to_vec()),
        ("header not JSON", format!("Bearer {}.{}.sig", B64.encode("alg=HS256"), B64.encode("{}")).into_bytes()),
        ("header truncated JSON", format!("Bearer {}.{}.sig", B64.encode(r#"{"alg":"HS256""#), B64.encode("{}")).into_bytes()),
        ("header is a JSON array", format!("Bearer {}.{}.sig", B64.encode("[]"), B64.encode("{}")).into_bytes()),
        ("alg of the wrong type", format!("Bearer {}.{}.sig", B64.encode(r#"{"alg":256}"#), B64.encode("{}")).into_bytes()),
        ("16 KiB token", format!("Bearer {long}.{long}.{long}").into_bytes()),
        ("non-ASCII bytes", b"Bearer \xff\xfe\x80.abc.def".to_vec()),
        ("non-ASCII bytes after a good token", [format!("Bearer {alice}").into_bytes(), b"\xe9".to_vec()].concat()),
    ];
    for (what, v) in &cases {
        refused(&a, &ev, Some(v), what).await;
    }
    // No header at all.
    refused(&a, &ev, None, "no Authorization header").await;
    // The empty-subject and over-long-subject tokens, well signed.
    for sub in ["".to_string(), "s".repeat(256)] {
        let mut c = claims("x");
        c["sub"] = json!(sub);
        refused_token(&a, &ev, &hs256(SECRET.as_bytes(), &c), &format!("sub of {} bytes", sub.len())).await;
    }
    let mut c = claims("x");
    c.as_object_mut().unwrap().remove("sub");
    refused_token(&a, &ev, &hs256(SECRET.as_bytes(), &c), "no sub").await;
    let mut c = claims("x");
    c["sub"] = json!(42);
    refused_token(&a, &ev, &hs256(SECRET.as_bytes(), &c), "numeric sub").await;
}

#[tokio::test]
async fn tokens_of_other_keys_are_refused() {
    let a = app_with(full_config(), None);
    let ev = a.seed(&good("admin"), &good("alice")).await;
    for (what, t) in [
        ("HS256 with another secret", hs256(b"another-secret", &claims("alice"))),
        ("HS256 with the secret's prefix", hs256(&SECRET.as_bytes()[..SECRET.len() - 1], &claims("alice"))),
        ("HS256 with an empty secret", hs256(b"", &claims("alice"))),
        ("RS256 with another key, our kid", rs256_with(OTHER_RSA_KEY, Some(KID), &claims("alice"))),
        ("RS256 with another key, no kid", rs256_with(OTHER_RSA_KEY, None, &claims("alice"))),
        ("RS256 with an unknown kid", rs256_with(&fixture("rs256-test-key.pem"), Some("other-key"), &claims("ghost"))),
        ("RS256 with another key, unknown kid", rs256_with(OTHER_RSA_KEY, Some("attacker"), &claims("ghost"))),
    ] {
        refused_token(&a, &ev, &t, what).await;
    }
    // Keys the token brings along (embedded `jwk`, `jku`/`x5u` URLs) or points at with a
    // crafted `kid` are never used: only the configured JWKS is.
    let attacker_jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(json!({
        "kty": "RSA", "kid": "attacker", "alg": "RS256", "use": "sig", "e": "AQAB", "n": OTHER_RSA_N,
    }))
    .unwrap();
    let mut embedded = Header::new(Algorithm::RS256);
    embedded.jwk = Some(attacker_jwk);
    let mut urls = Header::new(Algorithm::RS256);
    urls.jku = Some("https://evil.example/jwks.json".into());
    urls.x5u = Some("https://evil.example/cert.pem".into());
    let other = EncodingKey::from_rsa_pem(OTHER_RSA_KEY.as_bytes()).unwrap();
    for (what, h) in [("embedded jwk", embedded), ("jku and x5u", urls)] {
        for kid in [None, Some(KID), Some("attacker")] {
            let mut h = h.clone();
            h.kid = kid.map(str::to_string);
            let t = jsonwebtoken::encode(&h, &claims("ghost"), &other).unwrap();
            refused_token(&a, &ev, &t, &format!("{what}, kid {kid:?}")).await;
        }
    }
    for kid in ["../../../../dev/null", "' OR '1'='1", "test-key-1\u{0}", "", "TEST-KEY-1", "test-key-1 "] {
        let t = rs256_with(OTHER_RSA_KEY, Some(kid), &claims("ghost"));
        refused_token(&a, &ev, &t, &format!("kid {kid:?}")).await;
    }
    assert!(!a.user_exists("ghost").await, "no user for a refused token");
    // With RS256 only, even the right HS256 secret's tokens are refused.
    let rs_only = app_over(a.engine.clone(), jwks_only_config(), None);
    let msg = refused_token(&rs_only, &ev, &good("alice"), "HS256 when only RS256 is configured").await;
    assert!(msg.contains("HS256"), "{msg}");
}

#[tokio::test]
async fn a_spent_burst_answers_429_with_retry_after_and_changes_nothing() {
    let cfg = AuthConfig { secret: Some(SECRET.into()), ..Default::default() };
    // Set up through an unlimited server, then burst through a limited one over the same engine.
    let open = app_with(cfg.clone(), None);
    let (admin, alice, bob) = (mint_plain("admin"), mint_plain("alice"), mint_plain("bob"));
    let ev = open.seed(&admin, &alice).await;
    let bob_id = open.ok("POST", "/users", &bob, None, StatusCode::OK).await["id"].as_str().unwrap().to_string();
    let org = open.ok("GET", &format!("/events/{ev}"), &admin, None, StatusCode::OK).await["org_id"].as_str().unwrap().to_string();
    open.ok(
        "POST",
        &format!("/organizations/{org}/members"),
        &admin,
        Some(json!({ "user_id": bob_id, "role": "user" })),
        StatusCode::CREATED,
    )
    .await;
    let limited = app_over(open.engine.clone(), cfg, Some(RateLimiter::new(0.001, 3)));

    // alice spends her burst of 3: one booking and two reads.
    let r = limited.call("POST", "/bookings", &alice, Some(json!({ "event_id": ev, "seats": 1 }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for _ in 0..2 {
        assert_eq!(limited.call("GET", &format!("/events/{ev}/seats"), &alice, None).await.status, StatusCode::OK);
    }
    let before = limited.state(&ev).await;
    // Then every request of hers is refused, writes included, whatever the route.
    for (m, p, body) in [
        ("POST", "/bookings".to_string(), Some(json!({ "event_id": ev, "seats": 1 }))),
        ("POST", format!("/events/{ev}/holds"), Some(json!({ "seats": 1 }))),
        ("GET", format!("/events/{ev}"), None),
        ("GET", "/users/me".to_string(), None),
        ("POST", "/bookings".to_string(), Some(json!({ "event_id": ev, "seats": 2 }))),
    ] {
        let r = limited.call(m, &p, &alice, body).await;
        assert_json_error(&r, StatusCode::TOO_MANY_REQUESTS, &format!("{m} {p}"));
        let retry: u64 = r.headers.get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
        assert!(retry >= 1, "Retry-After {retry}");
        assert!(r.body["error"].as_str().unwrap().contains("rate limit"), "{}", r.body);
    }
    assert_eq!(limited.state(&ev).await, before, "refused requests changed nothing");
    // An Idempotency-Key does not get a refused booking through either.
    let r = limited
        .raw(
            "POST",
            "/bookings",
            &[("authorization", format!("Bearer {alice}").as_bytes()), ("idempotency-key", b"k-1")],
            Some(json!({ "event_id": ev, "seats": 1 })),
        )
        .await;
    assert_json_error(&r, StatusCode::TOO_MANY_REQUESTS, "with an idempotency key");
    assert_eq!(limited.state(&ev).await, before);

    // bob is still served, and his booking is the only change.
    let r = limited.call("POST", "/bookings", &bob, Some(json!({ "event_id": ev, "seats": 1 }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["seat_numbers"], json!([4]));
    let mine = open.ok("GET", &format!("/events/{ev}/seats"), &admin, None, StatusCode::OK).await;
    assert_eq!(mine["taken"], json!([1, 2, 3, 4]), "alice's 2 + 1 booked before the limit, bob's 1");
    // The limit counts per user, not per token: a fresh token of alice's is refused too.
    let fresh = mint(SECRET, &MintRequest { sub: "alice".into(), ttl_secs: 7200, ..Default::default() });
    assert_json_error(&limited.call("GET", "/users/me", &fresh, None).await, StatusCode::TOO_MANY_REQUESTS, "fresh token");
    // Invalid tokens are refused before the limit (401, not 429), and probes are not limited.
    assert_json_error(&limited.call("GET", "/users/me", "garbage", None).await, StatusCode::UNAUTHORIZED, "garbage token");
    assert_eq!(limited.raw("GET", "/healthz", &[], None).await.status, StatusCode::OK);
}

fn mint_plain(sub: &str) -> String {
    mint(SECRET, &MintRequest { sub: sub.into(), email: Some(format!("{sub}@example.com")), ttl_secs: 3600, ..Default::default() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_gets_exactly_its_allowance() {
    let cfg = AuthConfig { secret: Some(SECRET.into()), ..Default::default() };
    let open = app_with(cfg.clone(), None);
    let (admin, alice) = (mint_plain("admin"), mint_plain("alice"));
    let ev = open.seed(&admin, &alice).await;
    let limited = Arc::new(app_over(open.engine.clone(), cfg, Some(RateLimiter::new(0.001, 4))));
    let before = limited.state(&ev).await;
    // 40 bookings of one seat at once: the burst of 4 goes through, the rest is 429.
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (l, t, ev) = (limited.clone(), alice.clone(), ev.clone());
            tokio::spawn(async move { l.call("POST", "/bookings", &t, Some(json!({ "event_id": ev, "seats": 1 }))).await })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        let r = t.await.unwrap();
        if r.status != StatusCode::CREATED {
            assert_json_error(&r, StatusCode::TOO_MANY_REQUESTS, "concurrent burst");
            assert!(r.headers.get("retry-after").is_some());
        }
        *statuses.entry(r.status.as_u16()).or_default() += 1;
    }
    assert_eq!(statuses, [(201, 4), (429, 36)].into_iter().collect(), "{statuses:?}");
    assert_ne!(limited.state(&ev).await, before);
    // Exactly the 4 admitted bookings changed the event: 2 + 3 seats confirmed (5 seats),
    // the fourth waits.
    let view = open.ok("GET", &format!("/events/{ev}"), &admin, None, StatusCode::OK).await;
    assert_eq!((view["booked_slots"].as_u64(), view["waiting_count"].as_u64()), (Some(5), Some(1)), "{view}");
    happening_core::testkit::invariants::check(&open.engine, ev.parse().unwrap()).await.unwrap();
}
