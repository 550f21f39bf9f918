//! # vextrus-audit
//!
//! The event log as the audit trail (design.md D1): the log already records who did what, when,
//! on whose behalf; this crate makes it queryable and provable.
//!
//! - [`trail`]: the auditors' queries (a stream's history, a user's activity, a correlation, a
//!   tenant-wide search), a page at a time, under row-level security.
//! - [`chain`]: the per-stream hash chain, reimplemented outside the database, and
//!   [`verify`]: `vextrus audit verify`, which recomputes every chain and names each event that
//!   was altered, moved or removed.
//! - [`checkpoint`]: signed per-tenant statements of the log up to a position (Ed25519), so a
//!   chain rewritten wholesale is caught too.
//!
//! Verification and checkpoints read every tenant's events and must run as the owner; the trail
//! queries run as `vextrus_reader` inside a tenant's transaction.

pub mod chain;
pub mod checkpoint;
pub mod trail;
pub mod verify;

pub use checkpoint::{
    Checkpoint, CheckpointCheck, CheckpointOutcome, KeyError, SigningKey, Statement,
    create_checkpoints, verify_checkpoints,
};
pub use trail::{
    AuditEvent, InvalidCursor, TimeRange, TrailCursor, TrailQuery, fetch_page, redact_secrets,
};
pub use verify::{ChainReport, Finding, Tampering, verify_chains};
