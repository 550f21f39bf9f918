//! # vextrus-fanout
//!
//! Scale-out fan-out through Kafka (design.md D4), for when one process is not enough:
//!
//! - [`Relay`] tails the log with the log reader and produces every committed event to Kafka as
//!   an [`EventEnvelope`] (one topic per aggregate type, key `tenant_id/aggregate_id`), and
//!   checkpoints only what the brokers acknowledged. One relay is active per database; others
//!   wait as hot standbys.
//! - [`KafkaWorker`] runs a [`Projection`](vextrus_projections::Projection) as a member of that
//!   projection's consumer group, deduplicating per stream in the read-model transaction and
//!   committing offsets only after it.
//! - [`KafkaConfig`]: brokers, topic naming and librdkafka pass-through settings.
//! - [`poison`]: the partitions stopped on a poison event, and an operator's deliberate skip.
//! - [`EmbeddedKafka`]: librdkafka's in-process mock cluster, for trying the Kafka path with no
//!   broker and for the tests.
//!
//! The single-node path (the projection runner tailing the log directly) needs none of this.

mod config;
mod embedded;
pub mod envelope;
pub mod metrics;
pub mod poison;
mod relay;
mod worker;

pub use config::KafkaConfig;
pub use embedded::EmbeddedKafka;
pub use envelope::EventEnvelope;
pub use poison::{PoisonEvent, poison_events, request_skip};
pub use relay::{
    MAIN_RELAY, Relay, RelayError, RelayStatus, create_topics, rewind_for_empty_brokers,
};
pub use worker::{KafkaWorker, WorkerError, WorkerStatus};
