//! # vextrus-projections
//!
//! The read side of Vextrus (design.md D4, D5): read models built from the event log.
//!
//! - [`Projection`]: a named, versioned handler that applies one event to its tables inside a
//!   transaction. One module per bounded context: [`organization`] for the hierarchy.
//! - [`ProjectionRunner`]: feeds one projection from the log reader of `vextrus-commands` in
//!   batches. Each batch's read-model changes and the projection's checkpoint commit together, so
//!   a crash anywhere neither loses nor doubles an effect, and an event at or before the checkpoint
//!   is skipped. A poison event stops its projection, recorded with the event's position; the
//!   other projections run on.
//!
//! Every read-model table has `tenant_id` leading its keys and forced, fail-closed row-level
//! security (`migrations/0005_projections.sql`). The runner sets each event's tenant before
//! applying it, so a projection only ever writes rows of the event's own tenant.
//!
//! Scale-out (Kafka consumers, issue 4) and replay (issue 5) will feed the same projections.

pub mod activity;
mod arrays;
mod columns;
mod copy;
pub mod organization;
mod projection;
pub mod registry;
mod runner;
mod table;

pub use columns::{Column, Declaration, Fields, Row, RowReader, Sql, TENANT, col};
pub use projection::{
    BatchFailure, Projection, ProjectionError, SHADOW_SCHEMA, Target, apply_batch, is_transient,
};
pub use runner::{
    FedBy, ProjectionRunner, ProjectionState, ProjectionStatus, RunnerError, hold_off_swaps,
    register,
};
pub use table::{Counters, Lines, ReadModel, ReadModelTable, Table};

#[doc(hidden)]
pub use sqlx as __sqlx;
#[doc(hidden)]
pub use tokio as __tokio;
