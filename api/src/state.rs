//! What every handler shares: the event store, the read pool, the token keys, the projections'
//! progress and the settings.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use vextrus_commands::EventStore;
use vextrus_projections::ProjectionStatus;

use crate::auth::JwtKeys;

/// Tunables of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// How long a query with `min_position` waits for its read model at most.
    pub read_wait: Duration,
    /// The newest migration this build knows; `/health/ready` checks the database has it.
    pub latest_migration: i64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            read_wait: Duration::from_secs(5),
            latest_migration: 0,
        }
    }
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    store: EventStore,
    read_pool: PgPool,
    keys: JwtKeys,
    projections: Vec<watch::Receiver<ProjectionStatus>>,
    settings: ApiSettings,
}

impl AppState {
    /// `store` appends as `vextrus_writer`; `read_pool` must act as `vextrus_reader`, so every
    /// query is confined to its tenant by row-level security. `projections` are the in-process
    /// runners' progress (empty when projections run elsewhere).
    pub fn new(
        store: EventStore,
        read_pool: PgPool,
        keys: JwtKeys,
        projections: Vec<watch::Receiver<ProjectionStatus>>,
        settings: ApiSettings,
    ) -> Self {
        Self(Arc::new(Shared {
            store,
            read_pool,
            keys,
            projections,
            settings,
        }))
    }

    pub fn store(&self) -> &EventStore {
        &self.0.store
    }

    pub fn read_pool(&self) -> &PgPool {
        &self.0.read_pool
    }

    pub fn keys(&self) -> &JwtKeys {
        &self.0.keys
    }

    pub fn projections(&self) -> &[watch::Receiver<ProjectionStatus>] {
        &self.0.projections
    }

    pub fn settings(&self) -> &ApiSettings {
        &self.0.settings
    }
}
