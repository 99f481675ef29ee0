//! `happening`: the Happening server.
//!
//! `happening` / `happening serve` runs the HTTP API (on PostgreSQL when `DATABASE_URL` is
//! set, in memory otherwise); `happening migrate` applies the PostgreSQL migrations;
//! `happening token --sub ... --secret ...` mints a development token;
//! `happening reconcile` repairs the admission's counters and waitlists from the store;
//! `happening audit` checks the stores against every invariant (read-only);
//! `happening worker` consumes the RabbitMQ notifications queue;
//! `happening healthcheck` probes a running server (a container's HEALTHCHECK).
//!
//! `cli.rs` holds the flags, `commands/` one file per subcommand, `wiring.rs` the stores
//! chosen by configuration, `logs.rs` the log.

mod cli;
mod commands;
mod healthcheck;
mod logs;
mod wiring;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(t)) => commands::token::run(t),
        Some(Command::Migrate(m)) => commands::migrate::run(m),
        Some(Command::Reconcile(r)) => commands::reconcile::run(r),
        Some(Command::Audit(a)) => commands::audit::run(a),
        Some(Command::Worker(w)) => commands::worker::run(w),
        Some(Command::Healthcheck(h)) => commands::healthcheck::run(h),
        Some(Command::Serve(s)) => commands::serve::run(s),
        None => commands::serve::run(cli.serve),
    }
}
