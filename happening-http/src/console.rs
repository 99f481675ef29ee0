//! The web console, served by the server itself at `/app`: plain HTML, CSS and ES modules
//! from `happening-http/console/`, embedded in the binary at compile time (no Node, no CDN,
//! works offline). Every path under `/app` that is not one of its files answers the
//! console's `index.html`, whose script routes on the path (`/app/events/<id>`, ...).
//!
//! The files carry a Content-Security-Policy without inline script, and an ETag (a hash of
//! the content) with `Cache-Control: no-cache`: a browser asks again each time and gets a
//! 304 while the file is unchanged. Loading the console needs no token; it signs in, then
//! calls the API with `Authorization: Bearer`. `GET /app/config.json` tells it how people
//! sign in (the OpenID Connect issuer and client, when configured).

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply;

use crate::oidc::PublicConfig;

/// Where the console lives.
pub const BASE: &str = "/app";
/// The start of every path of the console's files and pages.
pub(crate) const PREFIX: &str = "/app/";

/// Embeds the console's files, by their path under `console/`.
macro_rules! files {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $path)) as &[u8])),*]
    };
}

/// Every file of `console/` (a test checks that none is missing).
pub const FILES: &[(&str, &[u8])] = files![
    "app.css",
    "icon.svg",
    "index.html",
    "js/api.js",
    "js/auth.js",
    "js/booking.js",
    "js/dom.js",
    "js/format.js",
    "js/layout.js",
    "js/live.js",
    "js/main.js",
    "js/oidc.js",
    "js/router.js",
    "js/seatmap.js",
    "js/ui.js",
    "js/pages/attendees.js",
    "js/pages/bookings.js",
    "js/pages/callback.js",
    "js/pages/dashboard.js",
    "js/pages/event-form.js",
    "js/pages/event.js",
    "js/pages/invite.js",
    "js/pages/members.js",
    "js/pages/notfound.js",
    "js/pages/notifications.js",
    "js/pages/signin.js",
];

const INDEX: &str = "index.html";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// A file ready to answer.
struct File {
    body: Bytes,
    etag: HeaderValue,
    content_type: &'static str,
}

impl File {
    fn new(path: &str, body: Bytes) -> Self {
        let hash = Sha256::digest(&body);
        let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
        Self { body, etag: HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is visible ASCII"), content_type: content_type(path) }
    }
}

/// The console's files and headers, built once at start.
pub struct Console {
    files: HashMap<&'static str, File>,
    config: File,
    csp: HeaderValue,
}

impl Console {
    /// With `oidc`, the console offers sign-in through that provider, and may call its token
    /// endpoint (the policy's `connect-src`).
    pub fn new(oidc: Option<PublicConfig>) -> Self {
        let files = FILES.iter().map(|(path, body)| (*path, File::new(path, Bytes::from_static(body)))).collect();
        let mut connect = vec!["'self'".to_string()];
        if let Some(origin) = oidc.as_ref().and_then(|o| origin(&o.token_endpoint)) {
            connect.push(origin);
        }
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {}; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            connect.join(" ")
        );
        let config = serde_json::json!({ "oidc": oidc });
        Self {
            files,
            config: File::new("config.json", Bytes::from(serde_json::to_vec(&config).expect("config serializes"))),
            csp: HeaderValue::from_str(&csp).expect("the policy is visible ASCII"),
        }
    }

    /// The answer to `GET` (or `HEAD`) of `/app/<tail>`.
    pub(crate) fn answer(&self, tail: &str, if_none_match: Option<&str>, head: bool) -> Response {
        let (file, cache) = match tail {
            "config.json" => (&self.config, "no-store"),
            "" => (&self.files[INDEX], "no-cache"),
            path => match self.files.get(path) {
                Some(f) => (f, "no-cache"),
                // A file name (a dot in the last segment) the console does not have.
                None if path.rsplit('/').next().is_some_and(|last| last.contains('.')) => return not_found(),
                // A client-side route: the page's script reads the path.
                None => (&self.files[INDEX], "no-cache"),
            },
        };
        let fresh = if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == file.etag || t.trim() == "*"));
        let mut res = if fresh || head { Response::new(warp::hyper::Body::empty()) } else { Response::new(file.body.clone().into()) };
        if fresh {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
        }
        let h = res.headers_mut();
        h.insert(header::ETAG, file.etag.clone());
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        if !fresh {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
            if head {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.body.len()));
            }
        }
        self.secure(res)
    }

    /// The headers every console answer carries.
    fn secure(&self, mut res: Response) -> Response {
        let h = res.headers_mut();
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        // Invite pages carry their token in the path: never in a Referer.
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        res
    }
}

fn not_found() -> Response {
    let body = warp::reply::json(&serde_json::json!({ "error": "no such file in the console" }));
    warp::reply::with_status(body, StatusCode::NOT_FOUND).into_response()
}

/// The scheme and host of a URL (`https://kc.example:8443`), if it has them.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().filter(|h| !h.is_empty())?;
    matches!(scheme, "http" | "https").then(|| format!("{scheme}://{host}"))
}

/// The console's address for a server bound to `addr`, signed in with `token` (which the
/// page moves into the tab's session storage and out of the address bar). A server bound to
/// every address (`0.0.0.0`, `::`) is reached on the loopback one.
pub fn sign_in_link(addr: SocketAddr, token: &str) -> String {
    format!("{}#access_token={token}", url(addr))
}

/// The console's address for a server bound to `addr`.
pub fn url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}{BASE}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_folder_is_embedded() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk = Vec::new();
        walk(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "console::FILES lists every file of happening-http/console/");
    }

    #[test]
    fn links_use_a_reachable_address() {
        let any: SocketAddr = "0.0.0.0:5000".parse().unwrap();
        assert_eq!(sign_in_link(any, "abc.def"), "http://127.0.0.1:5000/app#access_token=abc.def");
        assert_eq!(url("[::]:8080".parse().unwrap()), "http://[::1]:8080/app");
        assert_eq!(url("10.1.2.3:80".parse().unwrap()), "http://10.1.2.3:80/app");
    }

    #[test]
    fn origins_of_urls() {
        assert_eq!(origin("https://kc.example:8443/realms/x/token").as_deref(), Some("https://kc.example:8443"));
        assert_eq!(origin("http://127.0.0.1:9/token?x").as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(origin("javascript:alert(1)"), None);
        assert_eq!(origin("ftp://x/y"), None);
    }
}
