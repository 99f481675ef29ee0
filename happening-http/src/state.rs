//! What every handler shares, and the authenticated request context.

use std::sync::Arc;

use happening_core::error::Entity;
use happening_core::ids::UserId;
use happening_core::{Engine, Error as CoreError};
use tokio::sync::watch;

use crate::auth::{bearer, Identity, Verifier};
use crate::console::Console;
use crate::error::ApiError;
use crate::idempotency::IdempotencyCache;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::readiness::ReadyCheck;

/// Server settings that handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body, bytes.
    pub body_limit: u64,
    /// Hold TTL when a request gives none, seconds.
    pub default_hold_ttl_secs: u64,
    /// Origins allowed to call the API from a browser (CORS); empty: no CORS headers.
    /// `*` allows any origin.
    pub cors_origins: Vec<String>,
    /// Most live streams open at once.
    pub max_streams: usize,
    /// Most live streams one user may have open at once.
    pub max_streams_per_user: usize,
    /// How often an open live stream checks again that its caller may see the event,
    /// milliseconds.
    pub stream_recheck_ms: u64,
    /// How each store is backed, for `/readyz`.
    pub backends: Vec<(&'static str, &'static str)>,
    /// How long an event-and-role read authorizes later requests of the same caller on
    /// the same event, milliseconds; 0: every request reads (`Engine::with_auth_cache`).
    pub auth_cache_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            default_hold_ttl_secs: 300,
            max_streams: 10_000,
            max_streams_per_user: LIVE_STREAMS_PER_USER_MAX,
            stream_recheck_ms: STREAM_RECHECK_MS,
            cors_origins: Vec::new(),
            backends: vec![("seat_store", "memory"), ("admission", "memory"), ("notifier", "log")],
            auth_cache_ms: AUTH_CACHE_MS_DEFAULT,
        }
    }
}

/// Live streams one user may have open at once: a browser keeps one per open tab, and
/// without a cap one user could take every `--max-streams` slot.
pub const LIVE_STREAMS_PER_USER_MAX: usize = 16;

/// How often an open live stream checks again that its caller is still a member of the
/// event's organization, milliseconds: a removed member stops seeing changes within this
/// (plus `--auth-cache-ms`, whose grants the check uses).
pub const STREAM_RECHECK_MS: u64 = 5_000;

/// How long a grant is kept by default, milliseconds (`--auth-cache-ms`; docs/http.md,
/// "Authorization cache"): one second bounds how long a role removed through another
/// server still lets its holder in, and a flash sale reads each event and each user's role
/// once a second instead of once a request.
pub const AUTH_CACHE_MS_DEFAULT: u64 = 1_000;

/// Everything the routes and the background work share: the engine, how callers are
/// verified and limited, the settings, and the server's own caches and counters. Built
/// once per server with [`AppState::new`] or [`AppState::with_checks`].
pub struct AppState {
    /// The booking engine over the configured stores, telling the live streams of every
    /// change and keeping grants for `settings.auth_cache_ms`.
    pub engine: Engine,
    /// Verifies bearer tokens and caches the identities it verified.
    pub verifier: Verifier,
    /// This server's counters and latency histograms, served at `GET /metrics`.
    pub metrics: Metrics,
    /// The live streams (SSE) open on this server, by event.
    pub live: Arc<Live>,
    /// The responses kept for repeats of an `Idempotency-Key` (100,000 at most, oldest
    /// evicted).
    pub idempotency: IdempotencyCache,
    /// The per-user rate limit, applied to every authenticated request; `None`: off.
    pub limiter: Option<RateLimiter>,
    /// The limits and defaults the handlers read.
    pub settings: Settings,
    /// `true` once shutdown began: live streams end, `/readyz` answers 503.
    pub shutdown: watch::Sender<bool>,
    /// External stores `/readyz` checks (besides a read through the engine).
    pub checks: Vec<Arc<dyn ReadyCheck>>,
    /// The web console's files (`/app`).
    pub console: Console,
}

/// The shared state as the routes and the server take it.
pub type State = Arc<AppState>;

impl AppState {
    /// The state of a server over `engine`, with no external store for `/readyz` to check
    /// (the in-memory deployment, and tests).
    pub fn new(engine: Engine, verifier: Verifier, limiter: Option<RateLimiter>, settings: Settings) -> State {
        Self::with_checks(engine, verifier, limiter, settings, Vec::new())
    }

    /// As [`AppState::new`], with the external stores `/readyz` must check.
    pub fn with_checks(
        engine: Engine,
        verifier: Verifier,
        limiter: Option<RateLimiter>,
        settings: Settings,
        checks: Vec<Arc<dyn ReadyCheck>>,
    ) -> State {
        // The engine tells the live streams of every change it makes, and keeps the grants
        // it read for `auth_cache_ms` (`Engine::with_auth_cache`).
        let live = Arc::new(Live::default());
        let engine = engine.with_change_listener(live.clone()).with_auth_cache(settings.auth_cache_ms);
        Arc::new(Self {
            engine,
            metrics: Metrics::default(),
            live,
            idempotency: IdempotencyCache::new(100_000),
            limiter,
            settings,
            shutdown: watch::channel(false).0,
            checks,
            console: Console::new(verifier.oidc().map(|o| o.public_config())),
            verifier,
        })
    }

    /// Whether shutdown began (`/readyz` answers 503 from then on).
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Verifies the bearer token, resolves (or first creates) its user, applies the rate limit.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Identity, ApiError> {
        let token = bearer(header)?;
        let id = match self.verifier.cached(token) {
            Some(id) => id,
            None => {
                let claims = self.verifier.verify_fresh(token).await?;
                let user = match self.engine.user_by_subject(&claims.sub).await {
                    Ok(u) => u,
                    Err(CoreError::NotFound(Entity::User)) => {
                        let email = claims.valid_email();
                        match self.engine.upsert_user(&claims.sub, email, claims.display_name()).await {
                            Ok(u) => u,
                            // A claim the directory refuses (too long, odd characters) must
                            // not lock the person out: create the user without it.
                            Err(CoreError::Invalid { .. }) => self.engine.upsert_user(&claims.sub, None, None).await?,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(e) => return Err(e.into()),
                };
                let id = Identity { user_id: user.id, claims: Arc::new(claims) };
                self.verifier.remember(token, id.clone());
                id
            }
        };
        if let Some(l) = &self.limiter {
            l.check(id.user_id).map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
        }
        Ok(id)
    }
}

/// An authenticated request: the state and who is calling.
#[derive(Clone)]
pub struct Ctx {
    pub st: State,
    pub id: Identity,
}

impl Ctx {
    pub fn user(&self) -> UserId {
        self.id.user_id
    }

    pub fn engine(&self) -> &Engine {
        &self.st.engine
    }
}
