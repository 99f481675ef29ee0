//! The command line: the subcommands and their flags (each also read from an environment
//! variable). A flag that several subcommands take is declared once, in a group they
//! flatten: [`StoreArgs`] (PostgreSQL and Redis), [`DatabaseArgs`] (PostgreSQL alone),
//! [`AmqpArgs`] (RabbitMQ) and [`LogArgs`].

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use happening_core::ids::EventId;
use happening_redis::RedisTarget;

#[derive(Parser)]
#[command(name = "happening", version, about = "Seat booking for events with limited capacity: the HTTP server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Serve,
}

// Parsed once at start: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
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
pub enum LogFormat {
    Text,
    Json,
}

/// PostgreSQL: the seat store, the directory and the outbox, the source of truth.
#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// PostgreSQL URL: the seat store, directory and outbox, the source of truth (the server
    /// keeps them in memory when absent).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// The URL; empty counts as unset.
    pub fn url(&self) -> Option<String> {
        self.database_url.clone().filter(|v| !v.is_empty())
    }
}

/// The stores: PostgreSQL, and Redis for the admission when given.
#[derive(Args, Clone)]
pub struct StoreArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Redis URL for the admission's counters and waitlists, derived from PostgreSQL
    /// (PostgreSQL's own admission when absent, memory's without DATABASE_URL).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Redis Cluster seed nodes, comma-separated (`redis://host:port,...`): the alternative
    /// to REDIS_URL when one Redis is not enough.
    #[arg(long, env = "REDIS_CLUSTER_URLS", hide_env_values = true, conflicts_with = "redis_url")]
    pub redis_cluster_urls: Option<String>,
    /// Prefix of the Redis keys (several deployments can share one Redis).
    #[arg(long, env = "HAPPENING_REDIS_PREFIX", default_value = happening_redis::DEFAULT_PREFIX)]
    pub redis_prefix: String,
}

impl StoreArgs {
    /// Where Redis is, from `--redis-url` or `--redis-cluster-urls` (clap refuses both);
    /// `None` without either (empty counts as unset).
    pub fn redis_target(&self) -> Result<Option<RedisTarget>, String> {
        let url = self.redis_url.clone().filter(|v| !v.is_empty());
        match (url, self.redis_cluster_urls.as_deref().filter(|v| !v.trim().is_empty())) {
            (Some(url), _) => Ok(Some(RedisTarget::Single(url))),
            (None, Some(list)) => RedisTarget::cluster_from_list(list).map(Some).ok_or_else(|| {
                format!(
                    "REDIS_CLUSTER_URLS: give 1 to {} seed nodes, comma-separated (redis://host:port,...)",
                    happening_redis::CLUSTER_SEEDS_MAX
                )
            }),
            (None, None) => Ok(None),
        }
    }
}

/// RabbitMQ, where notifications go.
#[derive(Args, Clone)]
pub struct AmqpArgs {
    /// RabbitMQ URL for notifications (also read from AMQP_URL; the server logs them when
    /// absent).
    #[arg(long, env = "RABBITMQ_URL", hide_env_values = true)]
    pub rabbitmq_url: Option<String>,
    /// RabbitMQ queue for notifications.
    #[arg(long, env = "NOTIFICATIONS_QUEUE", default_value = "notifications")]
    pub notifications_queue: String,
    /// How long connecting to RabbitMQ (and declaring the queues, or starting to consume)
    /// may take, in milliseconds; a worker then tries again. At most 25000, so that a
    /// delivery (this plus 30 s of publisher confirms) stays within the relay's 60 s claim
    /// on its batch.
    #[arg(long, env = "HAPPENING_RABBITMQ_CONNECT_TIMEOUT_MS", default_value_t = happening_amqp::DEFAULT_CONNECT_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(100..=25_000))]
    pub rabbitmq_connect_timeout_ms: u64,
}

impl AmqpArgs {
    /// RABBITMQ_URL (the flag or that variable), else AMQP_URL.
    pub fn url(&self) -> Option<String> {
        rabbit_url(self.rabbitmq_url.clone(), std::env::var("AMQP_URL").ok())
    }
}

/// RABBITMQ_URL (`rabbitmq`: the flag or that variable), else AMQP_URL (`amqp`); empty
/// counts as unset.
fn rabbit_url(rabbitmq: Option<String>, amqp: Option<String>) -> Option<String> {
    rabbitmq.filter(|v| !v.is_empty()).or_else(|| amqp.filter(|v| !v.is_empty()))
}

/// The log: what is written, and how.
#[derive(Args, Clone)]
pub struct LogArgs {
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, env = "HAPPENING_LOG", default_value = "info")]
    pub log_level: String,
    /// Log format.
    #[arg(long, env = "HAPPENING_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Args, Clone)]
pub struct Serve {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 5000)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "HAPPENING_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Connections in the PostgreSQL pool.
    #[arg(long, env = "HAPPENING_DB_POOL_SIZE", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub db_pool_size: u32,
    /// How long a request waits for a pooled PostgreSQL connection before it fails with 503.
    #[arg(long, env = "HAPPENING_DB_ACQUIRE_TIMEOUT_MS", default_value_t = happening_postgres::PoolConfig::ACQUIRE_TIMEOUT_MS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub db_acquire_timeout_ms: u64,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// HS256 secret for bearer tokens.
    #[arg(long, env = "HAPPENING_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// JWKS file with the RS256 keys of the identity provider (e.g. Keycloak's certs).
    #[arg(long, env = "HAPPENING_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,
    /// Required `iss` of tokens (e.g. `https://keycloak.example/realms/happening`).
    #[arg(long, env = "HAPPENING_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of tokens.
    #[arg(long, env = "HAPPENING_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// OpenID Connect issuer (e.g. https://keycloak.example/realms/happening): its RS256
    /// tokens are accepted, and the web console signs in through it.
    #[arg(long, env = "HAPPENING_OIDC_ISSUER", requires = "oidc_client_id")]
    pub oidc_issuer: Option<String>,
    /// The web console's client id at the OpenID Connect issuer (a public client).
    #[arg(long, env = "HAPPENING_OIDC_CLIENT_ID", requires = "oidc_issuer")]
    pub oidc_client_id: Option<String>,
    /// Subject of the token printed when no auth is configured.
    #[arg(long, env = "HAPPENING_DEV_SUB", default_value = "dev")]
    pub dev_sub: String,
    /// Largest request body, in bytes (413 beyond).
    #[arg(long, env = "HAPPENING_BODY_LIMIT", default_value_t = 65536)]
    pub body_limit: u64,
    /// Per-user rate limit in requests per second; 0 turns it off.
    #[arg(long, env = "HAPPENING_RATE_LIMIT", default_value_t = 0.0)]
    pub rate_limit: f64,
    /// Burst allowed above the rate (default: twice the rate, at least 1).
    #[arg(long, env = "HAPPENING_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
    /// Hold TTL when a request gives none, in seconds.
    #[arg(long, env = "HAPPENING_HOLD_TTL", default_value_t = 300)]
    pub hold_ttl: u64,
    /// How often holds are expired and the outbox relayed, in milliseconds.
    #[arg(long, env = "HAPPENING_TICK_MS", default_value_t = 250)]
    pub tick_ms: u64,
    /// After SIGTERM/SIGINT, how long in-flight requests may take, in seconds.
    #[arg(long, env = "HAPPENING_SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace: u64,
    /// Most live streams (SSE) open at once; more answer 503.
    #[arg(long, env = "HAPPENING_MAX_STREAMS", default_value_t = 10_000)]
    pub max_streams: usize,
    /// Origins allowed to call the API from a browser (CORS), comma-separated, or `*`.
    #[arg(long, env = "HAPPENING_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// How long a caller's role on an event, once read, authorizes their next requests on
    /// it, in milliseconds (at most 60000); 0 reads it on every request. A member removed
    /// through another server keeps access on this one for up to this long (docs/http.md,
    /// "Authorization cache").
    #[arg(long, env = "HAPPENING_AUTH_CACHE_MS", default_value_t = happening_http::AUTH_CACHE_MS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub auth_cache_ms: u64,
    /// Worker threads (default: one per core).
    #[arg(long, env = "HAPPENING_WORKERS")]
    pub workers: Option<usize>,
}

#[derive(Args)]
pub struct Migrate {
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args)]
pub struct Reconcile {
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Only this event (default: every live event).
    #[arg(long)]
    pub event: Option<EventId>,
}

#[derive(Args)]
pub struct Audit {
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Only this event, and the outbox rows about it (default: every live event, the whole
    /// outbox).
    #[arg(long)]
    pub event: Option<EventId>,
    /// A notification pending (claimed by a relay or not) this long is stuck.
    #[arg(long, default_value_t = 300)]
    pub stuck_after_secs: u32,
    /// If breaches are found, audit again after this many milliseconds and report only
    /// those found both times (0: report the first audit's). The audit does not read in one
    /// snapshot, so a change committing while it reads can look like a breach.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=60_000))]
    pub recheck_ms: u32,
}

#[derive(Args)]
pub struct WorkerCmd {
    #[command(flatten)]
    pub amqp: AmqpArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// POST each notification (JSON, with an Idempotency-Key) to this URL; logged when absent.
    #[arg(long, env = "HAPPENING_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Messages RabbitMQ may hand this worker unacknowledged, also how many it handles at once.
    #[arg(long, env = "HAPPENING_WORKER_PREFETCH", default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub prefetch: u16,
    /// Handlings of one message before it is dead-lettered (to `<queue>.dead`) and marked failed.
    #[arg(long, env = "HAPPENING_WORKER_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// Pause before a failed message is tried again, times the failures so far, in milliseconds.
    #[arg(long, env = "HAPPENING_WORKER_RETRY_DELAY_MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub retry_delay_ms: u64,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Args)]
pub struct Healthcheck {
    /// URL to GET (plain http) [default: http://127.0.0.1:PORT/healthz]
    #[arg(long)]
    pub url: Option<String>,
    /// Port of the default URL: the server's own.
    #[arg(long, env = "PORT", default_value_t = 5000)]
    pub port: u16,
    /// How long the probe may take, in milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: u64,
}

#[derive(Args)]
pub struct Token {
    /// The user's subject (`sub`).
    #[arg(long)]
    pub sub: String,
    /// The server's HS256 secret.
    #[arg(long, env = "HAPPENING_JWT_SECRET", hide_env_values = true)]
    pub secret: String,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub ttl: i64,
    #[arg(long, env = "HAPPENING_JWT_ISSUER")]
    pub issuer: Option<String>,
    #[arg(long, env = "HAPPENING_JWT_AUDIENCE")]
    pub audience: Option<String>,
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
