//! Setting up a connection with a deadline: lapin has none unless the URL carries
//! `connection_timeout`, so a black-holed broker (packets dropped, or a peer that accepts and
//! never speaks AMQP) would hold the caller until the OS gives up on TCP, minutes later.

use std::future::Future;
use std::time::Duration;

/// How long setting up a connection (TCP, the AMQP handshake, channels, declarations) may
/// take by default.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;

/// Runs `setup` (connecting, opening channels, declaring the topology), giving up after
/// `timeout_ms` with an `io::ErrorKind::TimedOut` error naming `what`. On timeout `setup` is
/// dropped, and with it whatever it had opened (lapin closes a dropped connection).
pub(crate) async fn within<T>(timeout_ms: u64, what: &str, setup: impl Future<Output = lapin::Result<T>>) -> lapin::Result<T> {
    match tokio::time::timeout(Duration::from_millis(timeout_ms), setup).await {
        Ok(r) => r,
        Err(_) => {
            Err(lapin::Error::from(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what}: no answer within {timeout_ms} ms"))))
        }
    }
}
