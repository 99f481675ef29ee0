//! One file per subcommand: each takes its parsed flags and answers the process's exit
//! status.

pub mod audit;
pub mod healthcheck;
pub mod migrate;
pub mod reconcile;
pub mod serve;
pub mod token;
pub mod worker;

use std::process::ExitCode;

/// A multi-threaded runtime, or exit status 1 and why not on stderr.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the runtime: {e}");
        ExitCode::FAILURE
    })
}
