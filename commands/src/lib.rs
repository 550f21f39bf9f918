//! # vextrus-commands
//!
//! The write side of Vextrus and the one way to read the log back.
//!
//! - [`EventStore`] executes a command for any aggregate (design.md D2) in two round trips that
//!   we control: one snapshot that checks the command id and loads the stream; then, after the
//!   aggregate's `handle`, one committed call that sets the tenant and appends every new event
//!   with one multi-row INSERT (plus unique claims and, for idempotent commands, the outcome).
//!   The load and the append are separate transactions on purpose (round trips are the cost of
//!   the write path); the primary keys make that safe. Version conflicts, repeated commands and
//!   taken unique values come back as typed [`ExecuteError`]s or a repeated [`CommandOutcome`].
//! - [`LogReader`] tails the log in commit order below the `pg_snapshot_xmin` watermark (D3);
//!   projections, the Kafka relay and replay all read through it.
//! - [`tenant::begin`] is the only place that sets the tenant of a transaction (D5).
//!
//! Database roles: the store's pool should run as `vextrus_writer` and the reader's as
//! `vextrus_projector` (see `migrations/0001_roles.sql`); [`pool_options_for_role`] does that.

pub mod aggregates;
mod batch;
mod budgets;
mod cache;
pub mod codec;
mod documents;
mod error;
mod finance;
pub mod group;
pub mod log;
mod metadata;
mod store;
pub mod tenant;
pub mod trace;

pub use aggregates::{AGGREGATE_TYPES, AGGREGATES, AggregateKind, StateFold, aggregate};
pub use cache::StreamCache;
pub use codec::CodecError;
pub use error::{CacheError, ExecuteError};
pub use finance::PostingState;
pub use log::{LogFilter, LogPosition, LogReader, LogTail, RecordedEvent};
pub use metadata::{ActorId, CommandId, CommandMetadata, GlobalPosition, InvalidActor, Version};
pub use store::{CommandOutcome, Companion, EventStore, STREAM_CACHE, StreamRead};

use sqlx::postgres::PgPoolOptions;

/// The application roles of `migrations/0001_roles.sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbRole {
    /// Appends events and records commands.
    Writer,
    /// Reads the whole log for fan-out; writes read models.
    Projector,
    /// Reads read models and its own tenant's events.
    Reader,
}

impl DbRole {
    /// The PostgreSQL role name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Writer => "vextrus_writer",
            Self::Projector => "vextrus_projector",
            Self::Reader => "vextrus_reader",
        }
    }
}

/// Pool options whose connections switch to `role` as soon as they are opened, so everything the
/// pool runs has that role's privileges and row-level security, and nothing more.
pub fn pool_options_for_role(role: DbRole) -> PgPoolOptions {
    pool_options_with(role, "")
}

/// Pool options for a [`LogReader`]'s connections: `vextrus_projector`, with
/// [`log::READ_PLAN_SETTINGS`] so that every page read is planned once per connection as the walk
/// of `events_tail_idx`.
pub fn log_reader_pool_options() -> PgPoolOptions {
    pool_options_with(DbRole::Projector, log::READ_PLAN_SETTINGS)
}

/// `role`, then `settings` (`set …;` statements), in the one round trip of a new connection.
fn pool_options_with(role: DbRole, settings: &'static str) -> PgPoolOptions {
    PgPoolOptions::new().after_connect(move |conn, _meta| {
        Box::pin(async move {
            let statements = format!("set role {}; {settings}", role.name());
            sqlx::Executor::execute(conn, statements.as_str()).await?;
            Ok(())
        })
    })
}
