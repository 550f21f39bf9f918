//! # vextrus-domain
//!
//! The rules of Vextrus, free of IO: aggregates (cqrs-es [`Aggregate`](cqrs_es::Aggregate)s), the
//! commands they accept, the events they emit, their errors, and the validated value types they
//! are made of. Nothing here knows about PostgreSQL, HTTP or Kafka; the write side
//! (`vextrus-commands`) loads an aggregate's events, calls `handle` and appends what it returns.
//!
//! Layout: one module per aggregate, holding its commands, events, errors and rules together
//! ([`organization`], [`finance`], [`identity`]); shared value types in [`values`]; identifiers in [`ids`]; the contract by
//! which an aggregate asks the store for tenant-wide uniqueness in [`unique`].

pub mod finance;
pub mod identity;
pub mod ids;
pub mod organization;
pub mod unique;
pub mod values;

pub use ids::TenantId;
pub use unique::{UniqueValue, UniqueValues};
