//! # vextrus-projections
//!
//! The read side of Vextrus (design.md D4, D5). This crate will own:
//!
//! - the read-model builders, one module per bounded context (the organization hierarchy first),
//!   each a named, versioned projection that applies one event inside a transaction;
//! - checkpoints recorded in the same transaction as the read-model change, so a crash never
//!   loses or doubles an effect and duplicate deliveries are skipped;
//! - the projection runner, fed either by the log reader of `vextrus-commands` (single node) or by
//!   a Kafka consumer group (scale-out), and the Kafka relay that tails the log into Kafka.
//!
//! Every read-model table carries `tenant_id` first in its keys and is protected by PostgreSQL
//! row-level security that fails closed.
//!
//! Nothing is implemented here yet: the foundation issue for projections fills it.
