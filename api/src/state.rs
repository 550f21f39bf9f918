//! What every handler shares: the event store, the read pool, the token keys, the projections'
//! progress and the settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;
use vextrus_commands::{EventStore, PostingState};
use vextrus_projections::ProjectionStatus;
use vextrus_replay::Progress;

use crate::auth::JwtKeys;
use crate::identity::access::AccessChecks;
use crate::identity::oidc::OidcProviders;
use crate::keys::SigningKeys;
use crate::rate_limit::{RateLimits, TenantLimiter};

/// The `iss` of access tokens when no public URL is configured.
pub const DEFAULT_ISSUER: &str = "vextrus";
use crate::client_address::IpNetwork;
use crate::health::{ProjectionCheck, RelayCheck};

/// Reports a background component's state to `/health/ready`. The server builds these from the
/// components' own status channels, so the API does not depend on the crates that run them.
pub type Probe<T> = Arc<dyn Fn() -> T + Send + Sync>;

/// The background components running in this process, as `/health/ready` and the `min_position`
/// waits see them. Empty when projections run in other processes.
#[derive(Clone, Default)]
pub struct Background {
    /// In-process projection runners: reported, and they wake `min_position` waits as they
    /// commit.
    pub runners: Vec<watch::Receiver<ProjectionStatus>>,
    /// Other projections in this process (Kafka workers).
    pub projections: Vec<Probe<ProjectionCheck>>,
    /// The relay, when this process runs one.
    pub relay: Option<Probe<RelayCheck>>,
    /// Version rebuilds this process runs before a projection starts, by projection name: the
    /// latest progress while one runs, `None` otherwise.
    pub rebuilds: Vec<(&'static str, watch::Receiver<Option<Progress>>)>,
}

/// Tunables of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// How long a query with `min_position` waits for its read model at most.
    pub read_wait: Duration,
    /// The newest migration this build knows; `/health/ready` checks the database has it.
    pub latest_migration: i64,
    /// Proxies whose `X-Forwarded-For` is believed (see [`crate::client_address`]); none by
    /// default.
    pub trusted_proxies: Vec<IpNetwork>,
    /// Send `Strict-Transport-Security` (the API is reached over https, `VEXTRUS_PUBLIC_URL`).
    pub hsts: bool,
    /// The keys that sign access tokens at sign-in (none: sign-in answers 503).
    pub signing_keys: SigningKeys,
    /// The `iss` of the access tokens this server issues and accepts (`VEXTRUS_PUBLIC_URL`, or
    /// `vextrus`).
    pub issuer: String,
    /// Lifetimes of what sign-in hands out.
    pub lifetimes: Lifetimes,
    /// Request rate limits.
    pub rate_limits: RateLimits,
    /// Tenants' external identity providers (OpenID Connect issuers).
    pub oidc: OidcProviders,
    /// `GET /metrics` on the API port; false when it has a listener of its own
    /// (`VEXTRUS_METRICS_LISTEN`).
    pub metrics_on_api_port: bool,
}

/// How long tokens and one-time secrets stay valid.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Access tokens (15 minutes).
    pub access: Duration,
    /// A refresh token, renewed by each refresh (14 days).
    pub refresh: Duration,
    /// An invitation (7 days).
    pub invitation: Duration,
    /// A password reset (1 hour).
    pub reset: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access: Duration::from_secs(15 * 60),
            refresh: Duration::from_secs(14 * 24 * 3600),
            invitation: Duration::from_secs(7 * 24 * 3600),
            reset: Duration::from_secs(3600),
        }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            body_limit: 2 * 1024 * 1024,
            read_wait: Duration::from_secs(5),
            latest_migration: 0,
            trusted_proxies: Vec::new(),
            hsts: false,
            signing_keys: SigningKeys::default(),
            issuer: DEFAULT_ISSUER.to_owned(),
            lifetimes: Lifetimes::default(),
            rate_limits: RateLimits::default(),
            oidc: OidcProviders::default(),
            metrics_on_api_port: true,
        }
    }
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    store: EventStore,
    /// Organizations' ledgers and hierarchies as postings decide on them (design.md D12).
    postings: PostingState,
    read_pool: PgPool,
    /// Every request's access check, asked together with its neighbours' (started with the
    /// first request).
    access_checks: OnceLock<AccessChecks>,
    ops_pool: PgPool,
    keys: JwtKeys,
    background: Background,
    settings: ApiSettings,
    tenant_limiter: Option<Arc<TenantLimiter>>,
    /// When this process last recorded each API key's use.
    api_key_uses: Mutex<HashMap<Uuid, Instant>>,
}

impl AppState {
    /// `store` appends as `vextrus_writer`; `read_pool` must act as `vextrus_reader`, so every
    /// query is confined to its tenant by row-level security. `ops_pool` reads the whole log for
    /// operators' status (`vextrus_projector`). `background` is what runs beside the API in this
    /// process.
    pub fn new(
        store: EventStore,
        read_pool: PgPool,
        ops_pool: PgPool,
        keys: JwtKeys,
        background: Background,
        settings: ApiSettings,
    ) -> Self {
        Self(Arc::new(Shared {
            store,
            postings: PostingState::default(),
            read_pool,
            access_checks: OnceLock::new(),
            ops_pool,
            keys,
            background,
            tenant_limiter: settings.rate_limits.tenant.and_then(TenantLimiter::new),
            settings,
            api_key_uses: Mutex::default(),
        }))
    }

    pub fn store(&self) -> &EventStore {
        &self.0.store
    }

    pub fn postings(&self) -> &PostingState {
        &self.0.postings
    }

    pub fn read_pool(&self) -> &PgPool {
        &self.0.read_pool
    }

    pub fn access_checks(&self) -> &AccessChecks {
        self.0
            .access_checks
            .get_or_init(|| AccessChecks::start(self.0.read_pool.clone()))
    }

    pub fn ops_pool(&self) -> &PgPool {
        &self.0.ops_pool
    }

    pub fn keys(&self) -> &JwtKeys {
        &self.0.keys
    }

    pub fn background(&self) -> &Background {
        &self.0.background
    }

    pub fn settings(&self) -> &ApiSettings {
        &self.0.settings
    }

    /// Whether `key`'s use at `now` should be recorded: true at most once per `every` per key in
    /// this process.
    pub fn api_key_used(&self, key: Uuid, now: Instant, every: Duration) -> bool {
        let mut uses = self
            .0
            .api_key_uses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if uses
            .get(&key)
            .is_some_and(|last| now.duration_since(*last) < every)
        {
            return false;
        }
        if uses.len() > 100_000 {
            uses.retain(|_, last| now.duration_since(*last) < every);
        }
        uses.insert(key, now);
        true
    }

    /// The per-tenant request limit, when one is set.
    pub fn tenant_limiter(&self) -> Option<&TenantLimiter> {
        self.0.tenant_limiter.as_deref()
    }
}
