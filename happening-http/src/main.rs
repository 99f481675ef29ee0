//! `happening`: the Happening server.
//!
//! `happening` / `happening serve` runs the HTTP API (on PostgreSQL when `DATABASE_URL` is
//! set, in memory otherwise); `happening migrate` applies the PostgreSQL migrations;
//! `happening token --sub ... --secret ...` mints a development token;
//! `happening reconcile` repairs the admission's counters and waitlists from the store;
//! `happening audit` checks the stores against every invariant (read-only);
//! `happening worker` consumes the RabbitMQ notifications queue;
//! `happening healthcheck` probes a running server (a container's HEALTHCHECK).

mod healthcheck;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use happening_core::ids::EventId;
use happening_core::ports::{Admission, ChangeFeed, Store};
use happening_core::{Engine, Reconciled};
use happening_http::auth::{self, AuthConfig, MintRequest, Verifier};
use happening_http::ratelimit::RateLimiter;
use happening_http::readiness::{PostgresCheck, RabbitCheck, ReadyCheck, RedisCheck};
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
    /// Rebuild the admission's counters and waitlists from PostgreSQL (all live events, or
    /// one) and print each event that had drifted.
    Reconcile(Reconcile),
    /// Check PostgreSQL (and Redis) against every invariant, read-only, and print each
    /// breach: exit 0 when clean, 1 on breaches, 2 when the stores cannot be read.
    Audit(Audit),
    /// Consume the RabbitMQ notifications queue: hand each notification to a sink (a log
    /// line, or a webhook) and record it `delivered` in PostgreSQL.
    Worker(WorkerCmd),
    /// Probe a running server (a container's HEALTHCHECK): GET its /healthz, exit 0 on 200
    /// and 1 otherwise.
    Healthcheck(Healthcheck),
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
    /// How long a request waits for a pooled PostgreSQL connection before it fails with 503.
    #[arg(long, env = "HAPPENING_DB_ACQUIRE_TIMEOUT_MS", default_value_t = happening_postgres::PoolConfig::ACQUIRE_TIMEOUT_MS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    db_acquire_timeout_ms: u64,
    /// Redis URL for counters, waitlists and holds (in memory when absent).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Redis Cluster seed nodes, comma-separated (`redis://host:port,...`): the alternative
    /// to REDIS_URL when one Redis is not enough.
    #[arg(long, env = "REDIS_CLUSTER_URLS", hide_env_values = true, conflicts_with = "redis_url")]
    redis_cluster_urls: Option<String>,
    /// Prefix of the Redis keys (several deployments can share one Redis).
    #[arg(long, env = "HAPPENING_REDIS_PREFIX", default_value = happening_redis::DEFAULT_PREFIX)]
    redis_prefix: String,
    /// RabbitMQ URL for notifications (also read from AMQP_URL; logged when absent).
    #[arg(long, env = "RABBITMQ_URL", hide_env_values = true)]
    rabbitmq_url: Option<String>,
    /// RabbitMQ queue for notifications.
    #[arg(long, env = "NOTIFICATIONS_QUEUE", default_value = "notifications")]
    notifications_queue: String,
    /// How long connecting to RabbitMQ (and declaring the queues) may take, in milliseconds.
    /// At most 25000, so that a delivery (this plus 30 s of publisher confirms) stays within
    /// the relay's 60 s claim on its batch.
    #[arg(long, env = "HAPPENING_RABBITMQ_CONNECT_TIMEOUT_MS", default_value_t = happening_amqp::DEFAULT_CONNECT_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(100..=25_000))]
    rabbitmq_connect_timeout_ms: u64,
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
    /// Required `iss` of tokens (e.g. `https://keycloak.example/realms/happening`).
    #[arg(long, env = "HAPPENING_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Required `aud` of tokens.
    #[arg(long, env = "HAPPENING_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// OpenID Connect issuer (e.g. https://keycloak.example/realms/happening): its RS256
    /// tokens are accepted, and the web console signs in through it.
    #[arg(long, env = "HAPPENING_OIDC_ISSUER", requires = "oidc_client_id")]
    oidc_issuer: Option<String>,
    /// The web console's client id at the OpenID Connect issuer (a public client).
    #[arg(long, env = "HAPPENING_OIDC_CLIENT_ID", requires = "oidc_issuer")]
    oidc_client_id: Option<String>,
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
    /// How long a caller's role on an event, once read, authorizes their next requests on
    /// it, in milliseconds (at most 60000); 0 reads it on every request. A member removed
    /// through another server keeps access on this one for up to this long (docs/http.md,
    /// "Authorization cache").
    #[arg(long, env = "HAPPENING_AUTH_CACHE_MS", default_value_t = happening_http::state::AUTH_CACHE_MS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    auth_cache_ms: u64,
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
struct Reconcile {
    /// PostgreSQL URL (the source of truth).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Redis URL of the admission to repair (PostgreSQL's own admission when absent).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Redis Cluster seed nodes, comma-separated (`redis://host:port,...`): the alternative
    /// to REDIS_URL when one Redis is not enough.
    #[arg(long, env = "REDIS_CLUSTER_URLS", hide_env_values = true, conflicts_with = "redis_url")]
    redis_cluster_urls: Option<String>,
    /// Prefix of the Redis keys.
    #[arg(long, env = "HAPPENING_REDIS_PREFIX", default_value = happening_redis::DEFAULT_PREFIX)]
    redis_prefix: String,
    /// Only this event (default: every live event).
    #[arg(long)]
    event: Option<EventId>,
}

#[derive(Args)]
struct Audit {
    /// PostgreSQL URL (the source of truth); read in read-only transactions, not migrated.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Redis URL of the admission to compare (PostgreSQL's own admission when absent).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Redis Cluster seed nodes, comma-separated (`redis://host:port,...`): the alternative
    /// to REDIS_URL when one Redis is not enough.
    #[arg(long, env = "REDIS_CLUSTER_URLS", hide_env_values = true, conflicts_with = "redis_url")]
    redis_cluster_urls: Option<String>,
    /// Prefix of the Redis keys.
    #[arg(long, env = "HAPPENING_REDIS_PREFIX", default_value = happening_redis::DEFAULT_PREFIX)]
    redis_prefix: String,
    /// Only this event, and the outbox rows about it (default: every live event, the whole
    /// outbox).
    #[arg(long)]
    event: Option<EventId>,
    /// A notification pending (claimed by a relay or not) this long is stuck.
    #[arg(long, default_value_t = 300)]
    stuck_after_secs: u32,
    /// If breaches are found, audit again after this many milliseconds and report only
    /// those found both times (0: report the first audit's). The audit does not read in one
    /// snapshot, so a change committing while it reads can look like a breach.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=60_000))]
    recheck_ms: u32,
}

#[derive(Args)]
struct WorkerCmd {
    /// RabbitMQ URL (also read from AMQP_URL).
    #[arg(long, env = "RABBITMQ_URL", hide_env_values = true)]
    rabbitmq_url: Option<String>,
    /// PostgreSQL URL, where deliveries are recorded.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// RabbitMQ queue for notifications.
    #[arg(long, env = "NOTIFICATIONS_QUEUE", default_value = "notifications")]
    notifications_queue: String,
    /// POST each notification (JSON, with an Idempotency-Key) to this URL; logged when absent.
    #[arg(long, env = "HAPPENING_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Messages RabbitMQ may hand this worker unacknowledged, also how many it handles at once.
    #[arg(long, env = "HAPPENING_WORKER_PREFETCH", default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    prefetch: u16,
    /// Handlings of one message before it is dead-lettered (to `<queue>.dead`) and marked failed.
    #[arg(long, env = "HAPPENING_WORKER_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,
    /// Pause before a failed message is tried again, times the failures so far, in milliseconds.
    #[arg(long, env = "HAPPENING_WORKER_RETRY_DELAY_MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    retry_delay_ms: u64,
    /// How long connecting to RabbitMQ (and starting to consume) may take before the worker
    /// tries again, in milliseconds.
    #[arg(long, env = "HAPPENING_RABBITMQ_CONNECT_TIMEOUT_MS", default_value_t = happening_amqp::DEFAULT_CONNECT_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(100..=25_000))]
    rabbitmq_connect_timeout_ms: u64,
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, env = "HAPPENING_LOG", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, env = "HAPPENING_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Args)]
struct Healthcheck {
    /// URL to GET (plain http) [default: http://127.0.0.1:PORT/healthz]
    #[arg(long)]
    url: Option<String>,
    /// Port of the default URL: the server's own.
    #[arg(long, env = "PORT", default_value_t = 5000)]
    port: u16,
    /// How long the probe may take, in milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    timeout_ms: u64,
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
        Some(Command::Reconcile(r)) => reconcile(r),
        Some(Command::Audit(a)) => audit(a),
        Some(Command::Worker(w)) => worker(w),
        Some(Command::Healthcheck(h)) => health(h),
        Some(Command::Serve(s)) => serve(s),
        None => serve(cli.serve),
    }
}

fn init_logs(s: &Serve) {
    init_logs_with(&s.log_level, s.log_format)
}

fn init_logs_with(log_level: &str, log_format: LogFormat) {
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

fn serve(s: Serve) -> ExitCode {
    init_logs(&s);
    let rabbit = rabbit_url(s.rabbitmq_url.clone(), std::env::var("AMQP_URL").ok());
    let redis = match redis_target(s.redis_url.clone(), s.redis_cluster_urls.clone()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Redis only holds what can be rebuilt from the store: without PostgreSQL there is
    // nothing to rebuild it from (and nothing persisted).
    if redis.is_some() && s.database_url.as_deref().is_none_or(str::is_empty) {
        eprintln!("error: REDIS_URL (or REDIS_CLUSTER_URLS) needs DATABASE_URL: Redis holds counters and waitlists rebuilt from PostgreSQL, the source of truth; set DATABASE_URL too, or unset REDIS_URL");
        return ExitCode::from(2);
    }

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
    let mut cfg = AuthConfig {
        secret: s.jwt_secret.clone().filter(|v| !v.is_empty()),
        jwks: None,
        issuer: s.jwt_issuer.clone(),
        audience: s.jwt_audience.clone(),
        oidc: None,
    };
    if let (Some(issuer), Some(client_id)) = (s.oidc_issuer.as_deref().filter(|v| !v.is_empty()), s.oidc_client_id.as_deref()) {
        match rt.block_on(happening_http::oidc::Oidc::discover(issuer, client_id)) {
            Ok(oidc) => cfg.oidc = Some(Arc::new(oidc)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
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
    let settings = Settings {
        body_limit: s.body_limit,
        default_hold_ttl_secs: s.hold_ttl,
        max_streams: s.max_streams,
        cors_origins: s.cors_origins.clone(),
        auth_cache_ms: s.auth_cache_ms,
        ..Settings::default()
    };

    let database_url = s.database_url.clone().filter(|v| !v.is_empty());
    let result = rt.block_on(async move {
        let mut settings = settings;
        let mut checks: Vec<Arc<dyn ReadyCheck>> = Vec::new();
        let mut backends = vec![("seat_store", "memory"), ("admission", "memory"), ("notifier", "log")];
        let mut feed: Option<Arc<dyn ChangeFeed>> = None;
        let engine = match &database_url {
            None => Engine::in_memory(),
            Some(url) => {
                let pool = happening_postgres::PoolConfig { connections_max: s.db_pool_size, acquire_timeout_ms: s.db_acquire_timeout_ms };
                let pg = pg_engine(url, pool, redis.as_ref(), &s.redis_prefix).await?;
                // The live streams of every replica hear of each other's changes through
                // the shared stores: Redis' publish and subscribe, else PostgreSQL's.
                feed = Some(match &redis {
                    Some(target) => Arc::new(
                        happening_redis::RedisChanges::connect(target, &s.redis_prefix)
                            .await
                            .map_err(|e| format!("cannot subscribe to Redis for live changes: {e}"))?,
                    ),
                    None => Arc::new(
                        happening_postgres::PgChanges::new(url, pg.pool.clone())
                            .map_err(|e| format!("cannot listen to PostgreSQL for live changes: {e}"))?,
                    ),
                });
                backends[0].1 = "postgres";
                checks.push(Arc::new(PostgresCheck::new(pg.pool.clone())));
                match pg.redis {
                    Some(redis) => {
                        backends[1].1 = "redis";
                        checks.push(Arc::new(RedisCheck::new(redis)));
                        // Redis may have lost or missed writes while we were down (or be a
                        // fresh instance): rebuild every live event from the store.
                        let drifted = pg.engine.reconcile_all().await.map_err(|e| format!("cannot reconcile Redis with PostgreSQL on start: {e}"))?;
                        for r in &drifted {
                            tracing::info!(event = %r.event_id, free_before = ?r.free_before, free_after = r.free_after, waitlist_repaired = r.waitlist_repaired, promoted = r.promoted, "reconciled");
                        }
                        tracing::info!(drifted = drifted.len(), "reconciled Redis with PostgreSQL on start");
                    }
                    // Derived from the store's tables: nothing to rebuild on start.
                    None => backends[1].1 = "postgres",
                }
                pg.engine
            }
        };
        let notifier: Arc<dyn happening_core::ports::Notifier> = match &rabbit {
            None => Arc::new(LogNotifier),
            Some(url) => {
                backends[2].1 = "rabbitmq";
                let notifier = happening_amqp::AmqpNotifier::lazy(url, &s.notifications_queue)
                    .with_timeouts_ms(s.rabbitmq_connect_timeout_ms, happening_amqp::DEFAULT_CONFIRM_TIMEOUT_MS);
                let notifier = Arc::new(notifier);
                // Connect in the background: the server starts at once whether RabbitMQ is
                // there or not (bookings do not need it; the outbox keeps the notifications
                // until it is back, and /readyz tries again on each probe).
                tokio::spawn({
                    let notifier = notifier.clone();
                    async move {
                        if let Err(e) = notifier.ensure_connected().await {
                            tracing::warn!(error = %e, "RabbitMQ unavailable on start; notifications wait in the outbox until it is back");
                        }
                    }
                });
                checks.push(Arc::new(RabbitCheck::new(notifier.clone())));
                notifier
            }
        };
        settings.backends = backends;
        let stores = if database_url.is_some() { "postgres" } else { "memory" };
        let notifier_name = if rabbit.is_some() { "rabbitmq" } else { "log" };
        let st = AppState::with_checks(engine, verifier, limiter, settings, checks);
        let opts = RunOptions {
            addr: SocketAddr::new(s.host, s.port),
            tick: Duration::from_millis(s.tick_ms.max(10)),
            grace: Duration::from_secs(s.shutdown_grace),
            notifier,
            feed,
        };
        tracing::info!(
            stores,
            admission = redis.as_ref().map_or(stores, |r| if matches!(r, happening_redis::RedisTarget::Cluster(_)) { "redis-cluster" } else { "redis" }),
            db_pool_size = database_url.as_ref().map(|_| s.db_pool_size),
            notifier = notifier_name,
            body_limit = s.body_limit,
            rate_limit = s.rate_limit,
            auth = if dev_token.is_some() {
                "generated HS256 secret"
            } else if cfg.oidc.is_some() {
                "OpenID Connect"
            } else if cfg.jwks.is_some() {
                "RS256 (JWKS)"
            } else {
                "HS256"
            },
            "starting happening"
        );
        server::run(st, opts, server::shutdown_signal(), |addr| {
            if let Some(t) = &dev_token {
                println!("No HAPPENING_JWT_SECRET or HAPPENING_JWKS_FILE set: generated a secret for this run only.");
                println!("Token for sub={} (valid 24h):", s.dev_sub);
                println!("TOKEN={t}");
                println!("Try: curl -H \"Authorization: Bearer $TOKEN\" http://{addr}/users/me");
                println!("Web console, signed in as {}: {}", s.dev_sub, happening_http::console::sign_in_link(addr, t));
            } else {
                println!("Web console: {}", happening_http::console::url(addr));
            }
            // Last, so that whoever waits for this line has everything above it.
            println!("happening listening on http://{addr}");
        })
        .await
    });
    // Once stopped, exit: dropping the runtime would wait for its blocking threads, and a
    // DNS lookup of a store being torn down with the server (compose `down`) held the exit
    // past the orchestrator's kill.
    rt.shutdown_background();
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

/// `happening healthcheck`: exit 0 when the server answers 200, 1 otherwise (the cause on
/// stderr).
fn health(h: Healthcheck) -> ExitCode {
    let url = h.url.unwrap_or_else(|| format!("http://127.0.0.1:{}/healthz", h.port));
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(healthcheck::probe(&url, Duration::from_millis(h.timeout_ms)));
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

/// RABBITMQ_URL (`rabbitmq`: the flag or that variable), else AMQP_URL (`amqp`); empty
/// counts as unset.
fn rabbit_url(rabbitmq: Option<String>, amqp: Option<String>) -> Option<String> {
    rabbitmq.filter(|v| !v.is_empty()).or_else(|| amqp.filter(|v| !v.is_empty()))
}

/// An engine on PostgreSQL, and what the caller needs besides.
struct PgEngine {
    engine: Engine,
    pool: sqlx::PgPool,
    store: Arc<happening_postgres::PgStore>,
    /// The Redis admission, when one was asked for.
    redis: Option<happening_redis::RedisAdmission>,
}

/// Connects to PostgreSQL (running the migrations) and, with `redis`, to Redis: the
/// engine is `PgStore` + `RedisAdmission`, else `PgStore` + `PgAdmission`.
async fn pg_engine(
    url: &str,
    pool: happening_postgres::PoolConfig,
    redis: Option<&happening_redis::RedisTarget>,
    redis_prefix: &str,
) -> Result<PgEngine, String> {
    // One plain connection first: the pool's own error on an unreachable server is only
    // "timed out", this one says why.
    drop(pg_connect(url).await?);
    // Connecting runs the migrations (idempotent; concurrent starts serialize on sqlx's
    // migration lock).
    let pool = happening_postgres::connect(url, pool).await.map_err(|e| format!("cannot use PostgreSQL (DATABASE_URL): {e}"))?;
    let store = Arc::new(happening_postgres::PgStore::new(pool.clone()));
    let (admission, redis): (Arc<dyn Admission>, _) = match redis {
        None => (Arc::new(happening_postgres::PgAdmission::new(pool.clone())), None),
        Some(r) => {
            let redis = redis_connect(r, redis_prefix).await?;
            redis.ping().await.map_err(|e| format!("cannot use Redis: {e}"))?;
            (Arc::new(redis.clone()), Some(redis))
        }
    };
    let engine = Engine::new(store.clone() as Arc<dyn Store>, admission);
    Ok(PgEngine { engine, pool, store, redis })
}

/// Where Redis is, from `--redis-url` or `--redis-cluster-urls` (clap refuses both); `None`
/// without either.
fn redis_target(url: Option<String>, cluster: Option<String>) -> Result<Option<happening_redis::RedisTarget>, String> {
    use happening_redis::RedisTarget;
    match (url.filter(|v| !v.is_empty()), cluster.filter(|v| !v.trim().is_empty())) {
        (Some(url), _) => Ok(Some(RedisTarget::Single(url))),
        (None, Some(list)) => RedisTarget::cluster_from_list(&list).map(Some).ok_or_else(|| {
            format!(
                "REDIS_CLUSTER_URLS: give 1 to {} seed nodes, comma-separated (redis://host:port,...)",
                happening_redis::CLUSTER_SEEDS_MAX
            )
        }),
        (None, None) => Ok(None),
    }
}

/// The Redis admission at `target`, or why not, within 10 s.
async fn redis_connect(target: &happening_redis::RedisTarget, prefix: &str) -> Result<happening_redis::RedisAdmission, String> {
    let what = match target {
        happening_redis::RedisTarget::Single(_) => "REDIS_URL",
        happening_redis::RedisTarget::Cluster(_) => "REDIS_CLUSTER_URLS",
    };
    match tokio::time::timeout(Duration::from_secs(10), happening_redis::RedisAdmission::connect_to(target, prefix)).await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(format!("cannot connect to Redis ({what}): {e}")),
        Err(_) => Err(format!("cannot connect to Redis ({what}): no answer within 10 s")),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the runtime: {e}");
        ExitCode::FAILURE
    })
}

/// One line for an event that had drifted.
fn describe(r: &Reconciled) -> String {
    let before = r.free_before.map_or_else(|| "missing".to_string(), |n| n.to_string());
    format!(
        "event {}: free seats {} -> {}, waitlist repaired: {}, waiting: {}, promoted: {}",
        r.event_id,
        before,
        r.free_after,
        if r.waitlist_repaired { "yes" } else { "no" },
        r.waiting,
        r.promoted
    )
}

/// `happening reconcile [--event ID]`: exit 0 when every event is consistent (repaired or
/// already so), 2 without DATABASE_URL, 1 when a store fails or the event does not exist.
fn reconcile(r: Reconcile) -> ExitCode {
    let Some(url) = r.database_url.filter(|v| !v.is_empty()) else {
        eprintln!("error: happening reconcile needs the database: set DATABASE_URL or pass --database-url");
        return ExitCode::from(2);
    };
    init_logs_with("warn", LogFormat::Text);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let redis = match redis_target(r.redis_url, r.redis_cluster_urls) {
        Ok(redis) => redis,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async move {
        let pg = pg_engine(&url, happening_postgres::PoolConfig::new(4), redis.as_ref(), &r.redis_prefix).await?;
        let drifted = match r.event {
            Some(id) => {
                let one = pg.engine.reconcile_event(id).await.map_err(|e| format!("cannot reconcile event {id}: {e}"))?;
                if one.drifted() {
                    vec![one]
                } else {
                    Vec::new()
                }
            }
            None => pg.engine.reconcile_all().await.map_err(|e| format!("cannot reconcile: {e}"))?,
        };
        pg.pool.close().await;
        Ok::<_, String>(drifted)
    });
    match result {
        Ok(drifted) => {
            for d in &drifted {
                println!("{}", describe(d));
            }
            if drifted.is_empty() {
                println!("no drift: every counter and waitlist matches the store");
            } else {
                println!("repaired {} event(s)", drifted.len());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `happening worker`: runs until SIGTERM/SIGINT. Exit 2 without RABBITMQ_URL/AMQP_URL or
/// DATABASE_URL, 1 when PostgreSQL cannot be used.
fn worker(w: WorkerCmd) -> ExitCode {
    let rabbit = rabbit_url(w.rabbitmq_url.clone(), std::env::var("AMQP_URL").ok());
    let database_url = w.database_url.clone().filter(|v| !v.is_empty());
    let (Some(rabbit), Some(database_url)) = (rabbit, database_url) else {
        eprintln!("error: happening worker needs RabbitMQ and the database: set RABBITMQ_URL (or AMQP_URL) and DATABASE_URL");
        return ExitCode::from(2);
    };
    init_logs_with(&w.log_level, w.log_format);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async move {
        let pg = pg_engine(&database_url, happening_postgres::PoolConfig::new(8), None, happening_redis::DEFAULT_PREFIX).await?;
        let log = Arc::new(happening_amqp::StoreDeliveryLog::new(pg.store.clone()));
        let config = happening_amqp::WorkerConfig {
            queue: w.notifications_queue.clone(),
            prefetch: w.prefetch,
            max_attempts: w.max_attempts,
            retry_delay: Duration::from_millis(w.retry_delay_ms),
            connect_timeout_ms: w.rabbitmq_connect_timeout_ms,
            ..Default::default()
        };
        let worker = match &w.webhook_url {
            Some(hook) if !hook.is_empty() => {
                happening_amqp::Worker::with_sink(&rabbit, config, log, Arc::new(happening_amqp::WebhookSink::new(hook.clone())))
            }
            _ => happening_amqp::Worker::with_sink(&rabbit, config, log, Arc::new(happening_amqp::LogSink)),
        };
        let shutdown = happening_amqp::CancellationToken::new();
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                server::shutdown_signal().await;
                tracing::info!("shutdown requested: finishing messages in flight");
                shutdown.cancel();
            }
        });
        tracing::info!(queue = %w.notifications_queue, sink = if w.webhook_url.as_deref().is_some_and(|h| !h.is_empty()) { "webhook" } else { "log" }, prefetch = w.prefetch, max_attempts = w.max_attempts, retry_delay_ms = w.retry_delay_ms, "starting happening worker");
        println!("happening worker consuming {}", w.notifications_queue);
        worker.run(shutdown).await;
        let stats = worker.stats();
        tracing::info!(?stats, "worker stopped");
        pg.pool.close().await;
        Ok::<_, String>(())
    });
    // Not waiting for blocking threads (a DNS lookup), as `serve`.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
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

/// The engine `happening audit` reads through: PgStore on read-only sessions (no
/// migrations: an audit writes nothing, the schema included), and RedisAdmission or
/// PgAdmission.
async fn audit_engine(
    url: &str,
    redis: Option<&happening_redis::RedisTarget>,
    redis_prefix: &str,
) -> Result<(Engine, sqlx::PgPool), String> {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    drop(pg_connect(url).await?);
    let options: PgConnectOptions = url.parse().map_err(|e| format!("invalid DATABASE_URL: {e}"))?;
    let options = options.options([("default_transaction_read_only", "on")]);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| format!("cannot use PostgreSQL (DATABASE_URL): {e}"))?;
    let admission: Arc<dyn Admission> = match redis {
        None => Arc::new(happening_postgres::PgAdmission::new(pool.clone())),
        Some(r) => Arc::new(redis_connect(r, redis_prefix).await?),
    };
    let store = Arc::new(happening_postgres::PgStore::new(pool.clone()));
    Ok((Engine::new(store as Arc<dyn Store>, admission), pool))
}

/// `happening audit [--event ID] [--stuck-after-secs N] [--recheck-ms N]`: one line per
/// breach (found twice, `--recheck-ms` apart), then a summary. Exit 0 when clean, 1 on
/// breaches, 2 when the stores cannot be read (or without DATABASE_URL).
fn audit(a: Audit) -> ExitCode {
    let Some(url) = a.database_url.filter(|v| !v.is_empty()) else {
        eprintln!("error: happening audit needs the database: set DATABASE_URL or pass --database-url");
        return ExitCode::from(2);
    };
    init_logs_with("warn", LogFormat::Text);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(_) => return ExitCode::from(2),
    };
    let redis = match redis_target(a.redis_url, a.redis_cluster_urls) {
        Ok(redis) => redis,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = happening_core::engine::AuditOptions {
        stuck_after: chrono::Duration::seconds(i64::from(a.stuck_after_secs)),
        ..Default::default()
    };
    let result = rt.block_on(async move {
        let (engine, pool) = audit_engine(&url, redis.as_ref(), &a.redis_prefix).await?;
        let once = || async {
            match a.event {
                Some(id) => engine.audit_events(&[id], &opts).await.map_err(|e| format!("cannot audit event {id}: {e}")),
                None => engine.audit_all(&opts).await.map_err(|e| format!("cannot audit: {e}")),
            }
        };
        let mut report = once().await;
        if let Ok(first) = &report {
            if !first.is_clean() && a.recheck_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(u64::from(a.recheck_ms))).await;
                report = once().await.map(|again| first.confirmed_by(again));
            }
        }
        pool.close().await;
        report
    });
    match result {
        Ok(report) => {
            for b in &report.breaches {
                println!("breach: {b}");
            }
            for e in &report.admission_missing {
                println!("note: event {e} has no admission counter (rebuilt from the store on first use; not compared)");
            }
            println!(
                "audited {} event(s), {} booking(s), {} pending notification(s): {} breach(es)",
                report.events_checked,
                report.bookings_checked,
                report.pending_scanned,
                report.breaches.len()
            );
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rabbit_url;

    #[test]
    fn rabbitmq_url_wins_over_amqp_url_and_empty_counts_as_unset() {
        let (r, a) = (Some("amqp://r".to_string()), Some("amqp://a".to_string()));
        assert_eq!(rabbit_url(r.clone(), a.clone()), r);
        assert_eq!(rabbit_url(None, a.clone()), a);
        assert_eq!(rabbit_url(Some(String::new()), a.clone()), a);
        assert_eq!(rabbit_url(Some(String::new()), Some(String::new())), None);
        assert_eq!(rabbit_url(None, None), None);
    }
}
