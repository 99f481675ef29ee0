//! `happening healthcheck`, the image's HEALTHCHECK: exit 0 when a live server answers 200,
//! 1 when it answers anything else, cannot be reached, or does not answer in time.

mod common;

use common::*;

/// Runs `happening healthcheck` with `args` (and `PORT`, when given): exit code, stdout,
/// stderr.
async fn healthcheck(args: &[&str], port: Option<u16>) -> (i32, String, String) {
    let mut cmd = bin();
    cmd.arg("healthcheck").args(args);
    if let Some(p) = port {
        cmd.env("PORT", p.to_string());
    }
    let out = tokio::time::timeout(DEADLINE, cmd.output()).await.expect("healthcheck did not exit").expect("run happening");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8 output");
    (out.status.code().expect("an exit code"), text(out.stdout), text(out.stderr))
}

#[tokio::test]
async fn a_live_server_is_healthy_at_its_port_or_url() {
    let s = Server::with_secret(&[]).await;
    let port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    // The default URL: 127.0.0.1, the server's PORT, /healthz.
    let (code, out, err) = healthcheck(&[], Some(port)).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), format!("GET http://127.0.0.1:{port}/healthz: 200 OK"));
    let (code, out, err) = healthcheck(&["--url", &s.url("/readyz")], None).await;
    assert_eq!(code, 0, "{out}{err}");
    // Any answer but 200 is unhealthy.
    let (code, out, err) = healthcheck(&["--url", &s.url("/no-such-route")], None).await;
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("404 Not Found"), "{err}");
}

#[tokio::test]
async fn no_server_or_no_answer_in_time_is_unhealthy() {
    // Nothing listening.
    let (code, _, err) = healthcheck(&["--port", &closed_port().await.to_string()], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("unhealthy: GET http://127.0.0.1:"), "{err}");
    // A peer that takes the connection and never answers: the timeout ends the probe.
    let (silent, held) = silent_peer().await;
    let url = format!("http://{silent}/healthz");
    let (code, _, err) = healthcheck(&["--url", &url, "--timeout-ms", "300"], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no answer within 300 ms"), "{err}");
    held.abort();
    // Only plain http.
    let (code, _, err) = healthcheck(&["--url", "https://127.0.0.1:1/healthz"], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("only http://"), "{err}");
}
