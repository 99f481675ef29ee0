//! `happening serve` (and `happening` alone): the HTTP server.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use happening_http::auth::{self, AuthConfig, MintRequest, Verifier};
use happening_http::ratelimit::RateLimiter;
use happening_http::server::{self, RunOptions};
use happening_http::{AppState, Settings};

use crate::cli::Serve;
use crate::{logs, wiring};

/// Runs until SIGTERM/SIGINT, then drains. Exit 2 on a bad configuration, 1 when a store
/// cannot be used on start.
pub fn run(s: Serve) -> ExitCode {
    logs::init(&s.log.log_level, s.log.log_format);
    let rabbit = s.amqp.url();
    let redis = match s.stores.redis_target() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let database_url = s.stores.database.url();
    // Redis only holds what can be rebuilt from the store: without PostgreSQL there is
    // nothing to rebuild it from (and nothing persisted).
    if redis.is_some() && database_url.is_none() {
        eprintln!("error: REDIS_URL (or REDIS_CLUSTER_URLS) needs DATABASE_URL: Redis holds counters and waitlists rebuilt from PostgreSQL, the source of truth; set DATABASE_URL too, or unset REDIS_URL");
        return ExitCode::from(2);
    }

    let mut rt = tokio::runtime::Builder::new_multi_thread();
    // Named, so that `top -H`, perf and the like tell the server's threads from others'.
    rt.enable_all().thread_name("happening");
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

    let result = rt.block_on(async move {
        let mut settings = settings;
        let wired = wiring::serve(&s, database_url.as_deref(), redis.as_ref(), rabbit.as_deref()).await?;
        settings.backends = wired.backends;
        let stores = if database_url.is_some() { "postgres" } else { "memory" };
        let notifier_name = if rabbit.is_some() { "rabbitmq" } else { "log" };
        let st = AppState::with_checks(wired.engine, verifier, limiter, settings, wired.checks);
        let opts = RunOptions {
            addr: SocketAddr::new(s.host, s.port),
            tick: Duration::from_millis(s.tick_ms.max(10)),
            grace: Duration::from_secs(s.shutdown_grace),
            notifier: wired.notifier,
            feed: wired.feed,
        };
        tracing::info!(
            stores,
            admission = redis.as_ref().map_or(stores, |r| if matches!(r, happening_redis::RedisTarget::Cluster(_)) {
                "redis-cluster"
            } else {
                "redis"
            }),
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
