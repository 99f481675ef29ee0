//! `happening healthcheck`: a running server's health, probed (`crate::healthcheck`).

use std::process::ExitCode;
use std::time::Duration;

use super::runtime;
use crate::cli::Healthcheck;

/// Exit 0 when the server answers 200, 1 otherwise (the cause on stderr).
pub fn run(h: Healthcheck) -> ExitCode {
    let url = h.url.unwrap_or_else(|| format!("http://127.0.0.1:{}/healthz", h.port));
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(crate::healthcheck::probe(&url, Duration::from_millis(h.timeout_ms)));
    // A lookup of the URL's host past the timeout must not hold the exit.
    rt.shutdown_background();
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}
