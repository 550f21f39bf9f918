//! # vextrus-projections
//!
//! The read side of Vextrus (design.md D4, D5): read models built from the event log.
//!
//! - [`Projection`]: a named, versioned handler whose rows are a [`ReadModel`]: typed tables
//!   declared once ([`Row`], [`read_model!`]) as state rows ([`Table`]), additive [`Counters`] or
//!   insert-only [`Lines`]; loading, upserts, deletes and replay's binary COPY are derived from
//!   the declarations. [`organization`] builds the hierarchy, [`activity`] the audit activity
//!   counters, [`finance`] the general ledger, [`invoicing`] parties, invoices and the VAT
//!   registers; [`registry`] lists every projection for the server, the CLI and the tests.
//! - [`ProjectionRunner`]: feeds one projection from the log reader of `vextrus-commands` in
//!   batches. Each batch's read-model changes and the projection's checkpoint commit together, so
//!   a crash anywhere neither loses nor doubles an effect, and an event at or before the checkpoint
//!   is skipped. A poison event stops its projection, recorded with the event's position; the
//!   other projections run on. The Kafka workers (`vextrus-fanout`) and replay
//!   (`vextrus-replay`) run the same projections.
//!
//! Every read-model table has `tenant_id` leading its keys and forced, fail-closed row-level
//! security (`vextrus_protect_read_model` in the migrations). Rows are loaded and saved with
//! their tenant set, so a projection only ever writes rows of the event's own tenant.

pub mod activity;
mod arrays;
mod columns;
mod copy;
pub mod finance;
pub mod invoicing;
pub mod organization;
mod projection;
pub mod registry;
mod runner;
mod table;

pub use columns::{
    Column, Declaration, Field, FieldGroup, Fields, Row, RowReader, Sql, TENANT, col, columns_len,
    concat_columns, field_column,
};
pub use projection::{
    BATCH_DURATION, BatchFailure, Projection, ProjectionError, SHADOW_SCHEMA, Target, apply_batch,
    is_transient, trace_applied,
};
pub use runner::{
    FedBy, ProjectionRunner, ProjectionState, ProjectionStatus, RunnerError, hold_off_swaps,
    register,
};
pub use table::{
    AfterCopy, AfterCopyFuture, CopyFuture, Counters, Lines, ReadModel, ReadModelTable, Table,
    copy_largest_first, copy_table,
};

#[doc(hidden)]
pub use sqlx as __sqlx;
#[doc(hidden)]
pub use tokio as __tokio;
