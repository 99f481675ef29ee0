//! The log: to stderr, as text or JSON lines, filtered by level or tracing directives.

use crate::cli::LogFormat;

/// Installs the log for the whole process (once, at start).
pub fn init(log_level: &str, log_format: LogFormat) {
    // PostgreSQL's notices ("relation ... already exists, skipping" on every start) are
    // noise at info, unless asked for by name.
    let directives = if log_level.contains("sqlx") { log_level.to_string() } else { format!("{log_level},sqlx::postgres::notice=warn") };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}
