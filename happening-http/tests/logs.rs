//! Structured logs: with `--log-format json` every line is a JSON object, and every line
//! written while serving a request carries that request's id (the client's `X-Request-Id`,
//! else a new one), which the response returns in `X-Request-Id`.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

#[tokio::test]
async fn json_log_lines_carry_the_request_id() {
    let mut child = bin()
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "debug", "--log-format", "json"])
        .env("HAPPENING_JWT_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start happening");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(DEADLINE, async {
        loop {
            let line = out.next_line().await.unwrap().expect("server exited before listening");
            if let Some(i) = line.find("listening on ") {
                return line[i + "listening on ".len()..].trim().to_string();
            }
        }
    })
    .await
    .expect("server did not start");
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut s = String::new();
        stderr.read_to_string(&mut s).await.unwrap();
        s
    });

    let http = reqwest::Client::new();
    let missing = format!("{base}/events/{}", uuid::Uuid::new_v4());
    let res = http.get(&missing).bearer_auth(token("logger")).header("x-request-id", "test-req-42").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["x-request-id"], "test-req-42", "the client's id is answered");
    let res = http.get(format!("{base}/healthz")).send().await.unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 32, "a new UUID when none is given: {generated}");
    let res = http.get(format!("{base}/healthz")).header("x-request-id", "not ok: spaces and {braces}").send().await.unwrap();
    assert_ne!(res.headers()["x-request-id"], "not ok: spaces and {braces}", "an odd id is replaced");

    assert_eq!(stop(&mut child, "the server").await.code(), Some(0));
    let logs = logs.await.unwrap();
    let lines: Vec<Value> =
        logs.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))).collect();
    let of_request: Vec<&Value> = lines.iter().filter(|l| l.to_string().contains(&missing[base.len()..])).collect();
    assert!(!of_request.is_empty(), "the request is logged at debug: {logs}");
    for l in &of_request {
        assert_eq!(l["span"]["request_id"], "test-req-42", "every line of the request names it: {l}");
    }
    assert!(lines.iter().any(|l| l["span"]["request_id"] == generated.as_str()), "the generated id is logged too: {logs}");
}
