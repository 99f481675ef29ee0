//! `happening healthcheck`: a running server's health, probed by the binary itself, so that
//! a container image needs no HTTP client of its own for its HEALTHCHECK. One plain HTTP/1.1
//! GET, bounded in time; healthy on 200 only.

use std::time::Duration;

/// GETs `url` (http only) within `timeout`: `Ok` with the status line's text on 200, `Err`
/// saying why not (another status, no connection, no answer in time, a bad URL).
pub async fn probe(url: &str, timeout: Duration) -> Result<String, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!("invalid URL {url:?}: only http://HOST[:PORT]/PATH is supported"));
    }
    let client = hyper::Client::builder().pool_max_idle_per_host(0).build_http::<hyper::Body>();
    let status = match tokio::time::timeout(timeout, client.get(uri)).await {
        Ok(Ok(res)) => res.status(),
        Ok(Err(e)) => return Err(format!("GET {url}: {e}")),
        Err(_) => return Err(format!("GET {url}: no answer within {} ms", timeout.as_millis())),
    };
    if status == hyper::StatusCode::OK {
        Ok(format!("GET {url}: {status}"))
    } else {
        Err(format!("GET {url}: {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::probe;
    use std::time::Duration;

    #[tokio::test]
    async fn urls_other_than_plain_http_are_refused_before_connecting() {
        for url in ["https://127.0.0.1:5000/healthz", "127.0.0.1:5000/healthz", "/healthz", "http://", "not a url"] {
            let err = probe(url, Duration::from_secs(1)).await.expect_err(url);
            assert!(err.starts_with("invalid URL"), "{url}: {err}");
        }
    }
}
