//! `happening`: the Happening server.
//!
//! `happening` / `happening serve` runs the HTTP API (in memory unless store URLs are
//! given); `happening token --sub ... --secret ...` mints a development token.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use happening_core::Engine;
use happening_http::auth::{self, AuthConfig, MintRequest, Verifier};
use happening_http::ratelimit::RateLimiter;
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
    /// PostgreSQL URL for the seat store (in memory when absent).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
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
        Some(Command::Serve(s)) => serve(s),
        None => serve(cli.serve),
    }
}

fn init_logs(s: &Serve) {
    let filter = tracing_subscriber::EnvFilter::try_new(&s.log_level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
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
    if s.database_url.as_deref().is_some_and(|v| !v.is_empty()) {
        refused.push("DATABASE_URL (PostgreSQL)");
    }
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
    let result = rt.block_on(async move {
        let st = AppState::new(Engine::in_memory(), verifier, limiter, settings);
        let opts = RunOptions {
            addr: SocketAddr::new(s.host, s.port),
            tick: Duration::from_millis(s.tick_ms.max(10)),
            grace: Duration::from_secs(s.shutdown_grace),
            notifier: Arc::new(LogNotifier),
        };
        tracing::info!(
            stores = "memory",
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
