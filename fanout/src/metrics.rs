//! The fan-out's metrics, recorded through the `metrics` facade and rendered by whatever
//! recorder the process installed (`GET /metrics`, see the API's `metrics` module). Named and
//! described here, once.

use metrics::{describe_counter, describe_gauge};

pub const HEALED_EVENTS: &str = "vextrus_kafka_healed_events_total";
pub const REBALANCES: &str = "vextrus_kafka_rebalances_total";
pub const CONSUMER_LAG: &str = "vextrus_kafka_consumer_lag_messages";
pub const PRODUCE_ERRORS: &str = "vextrus_kafka_produce_errors_total";
pub const EVENTS_PRODUCED: &str = "vextrus_kafka_events_produced_total";

/// Describes the fan-out's metrics to the installed recorder.
pub fn describe() {
    describe_counter!(
        HEALED_EVENTS,
        "Events a worker applied from the log because Kafka had not delivered them in time, by projection"
    );
    describe_counter!(
        REBALANCES,
        "Consumer group rebalances a worker went through, by projection"
    );
    describe_gauge!(
        CONSUMER_LAG,
        "Messages of a partition a worker holds that it has not consumed yet (high watermark minus position)"
    );
    describe_counter!(
        PRODUCE_ERRORS,
        "Batches the relay failed to have acknowledged by the brokers"
    );
    describe_counter!(EVENTS_PRODUCED, "Events the relay's brokers acknowledged");
}
