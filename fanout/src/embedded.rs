//! An in-process Kafka-protocol broker: librdkafka's mock cluster. `vextrus serve
//! --embedded-kafka` runs the Kafka path against it so that a new user sees the relay and the
//! workers work with one command, and the tests use it as a real broker (no fake Kafka trait).
//!
//! It holds everything in memory and is gone when dropped. It supports producing (idempotent
//! included), consumer groups, rebalances and offset commits; not transactions.

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer};

/// The mock's delay before the first group join. Its default (3 s) makes every group take
/// seconds to form; 1 s with `session.timeout.ms=2000` keeps a group scenario under 10 s.
pub const INITIAL_REBALANCE_DELAY_MS: i32 = 1000;

pub struct EmbeddedKafka {
    /// The client that owns the mock cluster: dropping it destroys the cluster.
    owner: BaseProducer,
    bootstrap_servers: String,
}

impl EmbeddedKafka {
    /// Starts a cluster of `brokers` brokers.
    pub fn start(brokers: u16) -> Result<Self, KafkaError> {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .create()?;
        set_initial_rebalance_delay(&owner, INITIAL_REBALANCE_DELAY_MS);
        let mut embedded = Self {
            owner,
            bootstrap_servers: String::new(),
        };
        let bootstrap_servers = embedded.cluster()?.bootstrap_servers();
        embedded.bootstrap_servers = bootstrap_servers;
        Ok(embedded)
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The cluster, to create topics or take brokers down and up.
    pub fn cluster(&self) -> Result<MockCluster<'_, DefaultProducerContext>, KafkaError> {
        // The owner was created with `test.mock.num.brokers`, so it always has one.
        self.owner
            .client()
            .mock_cluster()
            .ok_or(KafkaError::ClientCreation("no mock cluster".into()))
    }

    /// Creates `topic` with `partitions` partitions (the mock does not serve CreateTopics).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), KafkaError> {
        self.cluster()?.create_topic(topic, partitions, 1)
    }
}

#[allow(unsafe_code)]
fn set_initial_rebalance_delay(owner: &BaseProducer, delay_ms: i32) {
    use rdkafka::bindings::{
        rd_kafka_handle_mock_cluster, rd_kafka_mock_group_initial_rebalance_delay_ms,
    };
    // SAFETY: `native_ptr` is the live handle of `owner`, which outlives this call;
    // `rd_kafka_handle_mock_cluster` only reads it and returns the cluster the handle owns (null
    // if none), and the setter takes that cluster pointer and an integer. Neither keeps a pointer.
    unsafe {
        let cluster = rd_kafka_handle_mock_cluster(owner.client().native_ptr());
        if !cluster.is_null() {
            rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, delay_ms);
        }
    }
}
