//! Tenant-wide uniqueness that a single aggregate cannot guarantee on its own.
//!
//! An aggregate enforces its invariants over its own events only. When a value must be unique
//! across aggregates (an organization's code among all organizations of the tenant), the aggregate
//! names that value here and the event store reserves it in the same transaction as the events
//! that introduce it: two concurrent commands claiming one value cannot both commit. This is a
//! real guarantee (a primary key), not a lookup in an eventually consistent read model.

use cqrs_es::Aggregate;

/// One value that must be unique within its `scope` in a tenant, e.g. `("organization.code", "ACME")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueValue {
    pub scope: &'static str,
    pub value: String,
}

/// Implemented by every aggregate the event store executes. The default claims nothing.
pub trait UniqueValues: Aggregate {
    /// The values `event` claims for good. A claim is never released, so a code stays tied to the
    /// unit that first took it even after that unit is archived.
    fn unique_values(_event: &Self::Event) -> Vec<UniqueValue> {
        Vec::new()
    }
}
