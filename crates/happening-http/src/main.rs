//! `happening`: the Happening server.
//!
//! `happening` / `happening serve` runs the HTTP API (on PostgreSQL when `DATABASE_URL` is
//! set, in memory otherwise); `happening migrate` applies the PostgreSQL migrations;
//! `happening token --sub ... --secret ...` mints a development token.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use happening_core::ports::{Admission, Store};
use happening_core::Engine;
use happening_http::auth::{self, AuthConfig, MintRequest, Verifier};
use happening_http::ratelimit::RateLimiter;
use happening_http::readiness::{PostgresCheck, ReadyCheck};
use happening_http::server::{self, LogNotifier, RunOptions};
use happening_http::{AppState, Settings};

#[derive(Parser)]
#[command(name = "happening", version, about = "Seat booking for events with limited capacity: the HTTP server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Serve,
}

// Parsed once at start: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve(Serve),
    /// Apply the PostgreSQL migrations to DATABASE_URL and exit (the server also does on start).
    Migrate(Migrate),
    /// Mint an HS256 token for development (use the server's HAPPENING_JWT_SECRET).
    Token(Token),
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Clone)]
struct Serve {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 5000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "HAPPENING_HOST", default_value = "0.0.0.0")]
    host: IpAddr,
    /// PostgreSQL URL: the seat store, directory and waitlists (in memory when absent).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    #[arg(long, env = "HAPPENING_DB_POOL_SIZE", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    db_pool_size: u32,
    /// Redis URL for counters, waitlists and holds (in memory when absent).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// RabbitMQ URL for notifications (also read from AMQP_URL; logged when absent).
    #[arg(long, env = "RABBITMQ_URL", hide_env_values = true)]
    rabbitmq_url: Option<String>,
    /// RabbitMQ queue for notifications.
    #[arg(long, env = "NOTIFICATIONS_QUEUE", default_value = "notifications")]
    notifications_queue: String,
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, env = "HAPPENING_LOG", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, env = "HAPPENING_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// HS256 secret for bearer tokens.
    #[arg(long, env = "HAPPENING_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// JWKS file with the RS256 keys of the identity provider (e.g. Keycloak's certs).
    #[arg(long, env = "HAPPENING_JWKS_FILE")]
    jwks_file: Option<PathBuf>,
    /// Required `iss` of tokens (e.g. https://keycloak.example/realms/happening).
    #[arg(long, env = "HAPPENING_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Required `aud` of tokens.
    #[arg(long, env = "HAPPENING_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Subject of the token printed when no auth is configured.
    #[arg(long, env = "HAPPENING_DEV_SUB", default_value = "dev")]
    dev_sub: String,
    /// Largest request body, in bytes (413 beyond).
    #[arg(long, env = "HAPPENING_BODY_LIMIT", default_value_t = 65536)]
    body_limit: u64,
    /// Per-user rate limit in requests per second; 0 turns it off.
    #[arg(long, env = "HAPPENING_RATE_LIMIT", default_value_t = 0.0)]
    rate_limit: f64,
    /// Burst allowed above the rate (default: twice the rate, at least 1).
    #[arg(long, env = "HAPPENING_RATE_LIMIT_BURST")]
    rate_limit_burst: Option<u32>,
    /// Hold TTL when a request gives none, in seconds.
    #[arg(long, env = "HAPPENING_HOLD_TTL", default_value_t = 300)]
    hold_ttl: u64,
    /// How often holds are expired and the outbox relayed, in milliseconds.
    #[arg(long, env = "HAPPENING_TICK_MS", default_value_t = 250)]
    tick_ms: u64,
    /// After SIGTERM/SIGINT, how long in-flight requests may take, in seconds.
    #[arg(long, env = "HAPPENING_SHUTDOWN_GRACE", default_value_t = 30)]
    shutdown_grace: u64,
    /// Most live streams (SSE) open at once; more answer 503.
    #[arg(long, env = "HAPPENING_MAX_STREAMS", default_value_t = 10_000)]
    max_streams: usize,
    /// Origins allowed to call the API from a browser (CORS), comma-separated, or `*`.
    #[arg(long, env = "HAPPENING_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Worker threads (default: one per core).
    #[arg(long, env = "HAPPENING_WORKERS")]
    workers: Option<usize>,
}

#[derive(Args)]
struct Migrate {
    /// PostgreSQL URL of the database to migrate.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

#[derive(Args)]
struct Token {
    /// The user's subject (`sub`).
    #[arg(long)]
    sub: String,
    /// The server's HS256 secret.
    #[arg(long, env = "HAPPENING_JWT_SECRET", hide_env_values = true)]
    secret: String,
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    ttl: i64,
    #[arg(long, env = "HAPPENING_JWT_ISSUER")]
    issuer: Option<String>,
    #[arg(long, env = "HAPPENING_JWT_AUDIENCE")]
    audience: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(t)) => {
            let req = MintRequest { sub: t.sub, email: t.email, name: t.name, ttl_secs: t.ttl, issuer: t.issuer, audience: t.audience };
            println!("{}", auth::mint(&t.secret, &req));
            ExitCode::SUCCESS
        }
        Some(Command::Migrate(m)) => migrate(m),
        Some(Command::Serve(s)) => serve(s),
        None => serve(cli.serve),
    }
}

fn init_logs(s: &Serve) {
    // PostgreSQL's notices ("relation ... already exists, skipping" on every start) are
    // noise at info, unless asked for by name.
    let directives = if s.log_level.contains("sqlx") { s.log_level.clone() } else { format!("{},sqlx::postgres::notice=warn", s.log_level) };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match s.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(s: Serve) -> ExitCode {
    init_logs(&s);
    // Adapters for these stores land in their own issues; until then, a URL must not be
    // silently ignored (an operator would believe data is persisted).
    let rabbit = s.rabbitmq_url.clone().or_else(|| std::env::var("AMQP_URL").ok().filter(|v| !v.is_empty()));
    let mut refused = Vec::new();
    if s.redis_url.as_deref().is_some_and(|v| !v.is_empty()) {
        refused.push("REDIS_URL (Redis)");
    }
    if rabbit.is_some_and(|v| !v.is_empty()) {
        refused.push("RABBITMQ_URL/AMQP_URL (RabbitMQ)");
    }
    if !refused.is_empty() {
        eprintln!(
            "error: {} set, but this build of happening has no adapter for it yet; \
             unset it to run with in-memory stores (nothing is persisted)",
            refused.join(", ")
        );
        return ExitCode::from(2);
    }

    let mut cfg = AuthConfig { secret: s.jwt_secret.clone().filter(|v| !v.is_empty()), jwks: None, issuer: s.jwt_issuer.clone(), audience: s.jwt_audience.clone() };
    if let Some(path) = &s.jwks_file {
        match AuthConfig::load_jwks(path) {
            Ok(set) => cfg.jwks = Some(set),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut dev_token = None;
    if !cfg.is_configured() {
        // Never run open: a secret for this run only, and a token to use it.
        let secret = auth::generate_secret();
        let req = MintRequest {
            sub: s.dev_sub.clone(),
            ttl_secs: 86_400,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            ..Default::default()
        };
        dev_token = Some(auth::mint(&secret, &req));
        cfg.secret = Some(secret);
    }
    let verifier = match Verifier::new(&cfg) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let limiter = (s.rate_limit > 0.0).then(|| {
        let burst = s.rate_limit_burst.unwrap_or(((s.rate_limit * 2.0).ceil() as u32).max(1));
        RateLimiter::new(s.rate_limit, burst)
    });
    let settings = Settings { body_limit: s.body_limit, default_hold_ttl_secs: s.hold_ttl, max_streams: s.max_streams, cors_origins: s.cors_origins.clone(), ..Settings::default() };

    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(w) = s.workers {
        rt.worker_threads(w.max(1));
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let database_url = s.database_url.clone().filter(|v| !v.is_empty());
    let result = rt.block_on(async move {
        let mut settings = settings;
        let mut checks: Vec<Arc<dyn ReadyCheck>> = Vec::new();
        let engine = match &database_url {
            None => Engine::in_memory(),
            Some(url) => {
                // One plain connection first: the pool's own error on an unreachable server
                // is only "timed out", this one says why.
                drop(pg_connect(url).await?);
                // Connecting runs the migrations (idempotent; concurrent starts serialize on
                // sqlx's migration lock).
                let pool = happening_postgres::connect(url, s.db_pool_size)
                    .await
                    .map_err(|e| format!("cannot use PostgreSQL (DATABASE_URL): {e}"))?;
                settings.backends = vec![("seat_store", "postgres"), ("admission", "postgres"), ("notifier", "log")];
                checks.push(Arc::new(PostgresCheck::new(pool.clone())));
                let store: Arc<dyn Store> = Arc::new(happening_postgres::PgStore::new(pool.clone()));
                // Derived from the store's tables: nothing to rebuild on start.
                let admission: Arc<dyn Admission> = Arc::new(happening_postgres::PgAdmission::new(pool));
                Engine::new(store, admission)
            }
        };
        let stores = if database_url.is_some() { "postgres" } else { "memory" };
        let st = AppState::with_checks(engine, verifier, limiter, settings, checks);
        let opts = RunOptions {
            addr: SocketAddr::new(s.host, s.port),
            tick: Duration::from_millis(s.tick_ms.max(10)),
            grace: Duration::from_secs(s.shutdown_grace),
            notifier: Arc::new(LogNotifier),
        };
        tracing::info!(
            stores,
            db_pool_size = database_url.as_ref().map(|_| s.db_pool_size),
            notifier = "log",
            body_limit = s.body_limit,
            rate_limit = s.rate_limit,
            auth = if dev_token.is_some() { "generated HS256 secret" } else if cfg.jwks.is_some() { "RS256 (JWKS)" } else { "HS256" },
            "starting happening"
        );
        server::run(st, opts, server::shutdown_signal(), |addr| {
            if let Some(t) = &dev_token {
                println!("No HAPPENING_JWT_SECRET or HAPPENING_JWKS_FILE set: generated a secret for this run only.");
                println!("Token for sub={} (valid 24h):", s.dev_sub);
                println!("TOKEN={t}");
                println!("Try: curl -H \"Authorization: Bearer $TOKEN\" http://{addr}/users/me");
            }
            // Last, so that whoever waits for this line has everything above it.
            println!("happening listening on http://{addr}");
        })
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `happening migrate`: applies the embedded migrations to DATABASE_URL. Exit 0 when the
/// database is up to date (also when there was nothing to do), 2 without a URL, 1 when the
/// server cannot be reached or a migration fails.
fn migrate(m: Migrate) -> ExitCode {
    let Some(url) = m.database_url.filter(|v| !v.is_empty()) else {
        eprintln!("error: happening migrate needs the database: set DATABASE_URL or pass --database-url");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        use sqlx::migrate::Migrate as _;
        use sqlx::Connection as _;
        let mut conn = pg_connect(&url).await?;
        conn.ensure_migrations_table().await.map_err(|e| format!("cannot read the migrations table: {e}"))?;
        let applied_before = conn.list_applied_migrations().await.map_err(|e| format!("cannot read the migrations table: {e}"))?.len();
        happening_postgres::MIGRATOR.run(&mut conn).await.map_err(|e| format!("migration failed: {e}"))?;
        let total = happening_postgres::MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).count();
        let _ = conn.close().await;
        Ok::<_, String>((total.saturating_sub(applied_before), total))
    });
    match result {
        Ok((0, total)) => {
            println!("database is up to date ({total} migration(s)); nothing to apply");
            ExitCode::SUCCESS
        }
        Ok((n, total)) => {
            println!("applied {n} migration(s); database is up to date ({total} migration(s))");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One connection to PostgreSQL, with a clear error (and a deadline) when it cannot be had.
async fn pg_connect(url: &str) -> Result<sqlx::PgConnection, String> {
    use sqlx::Connection as _;
    match tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(url)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("cannot connect to PostgreSQL (DATABASE_URL): {e}")),
        Err(_) => Err("cannot connect to PostgreSQL (DATABASE_URL): no answer within 10 s".to_string()),
    }
}
