//! Where Kafka is and how to talk to it.
//!
//! `KAFKA_BROKERS` and `KAFKA_TOPIC_PREFIX` are ours; every other `KAFKA_<KEY>` environment
//! variable passes through to librdkafka as `<key>` in lower case with `_` read as `.`
//! (`KAFKA_SECURITY_PROTOCOL=SASL_SSL` → `security.protocol=SASL_SSL`), so TLS and SASL clusters
//! work without code changes.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// Variables that configure Vextrus itself rather than librdkafka.
const OWN_VARIABLES: [&str; 3] = [
    "KAFKA_BROKERS",
    "KAFKA_TOPIC_PREFIX",
    "KAFKA_TOPIC_PARTITIONS",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topics are `<prefix><aggregate type>`, one per aggregate type.
    pub topic_prefix: String,
    /// Partitions of topics created on start.
    pub partitions: i32,
    /// librdkafka properties passed through (`security.protocol`, `sasl.mechanism`, ...).
    pub properties: BTreeMap<String, String>,
    /// How long after the relay's brokers acknowledged an event a worker waits for Kafka to
    /// deliver it before applying it from the log (see the worker's check against the log).
    pub heal_after: std::time::Duration,
}

impl KafkaConfig {
    pub const DEFAULT_TOPIC_PREFIX: &'static str = "vextrus.";
    pub const DEFAULT_PARTITIONS: i32 = 6;
    pub const DEFAULT_HEAL_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: Self::DEFAULT_TOPIC_PREFIX.to_owned(),
            partitions: Self::DEFAULT_PARTITIONS,
            properties: BTreeMap::new(),
            heal_after: Self::DEFAULT_HEAL_AFTER,
        }
    }

    /// Adds every pass-through `KAFKA_<KEY>` variable of `variables` (e.g. `std::env::vars()`).
    pub fn with_environment(
        mut self,
        variables: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        for (name, value) in variables {
            let Some(key) = name.strip_prefix("KAFKA_") else {
                continue;
            };
            if OWN_VARIABLES.contains(&name.as_str()) || key.is_empty() {
                continue;
            }
            self.properties
                .insert(key.to_ascii_lowercase().replace('_', "."), value);
        }
        self
    }

    /// The topic of an aggregate type's events.
    pub fn topic(&self, aggregate_type: &str) -> String {
        format!("{}{aggregate_type}", self.topic_prefix)
    }

    /// A client configuration with the brokers and the pass-through properties; callers add
    /// their role's settings on top.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_variables_pass_through_to_librdkafka_except_our_own() {
        let config = KafkaConfig::new("b:9092").with_environment([
            ("KAFKA_SECURITY_PROTOCOL".to_owned(), "SASL_SSL".to_owned()),
            (
                "KAFKA_SASL_MECHANISM".to_owned(),
                "SCRAM-SHA-512".to_owned(),
            ),
            ("KAFKA_BROKERS".to_owned(), "ignored".to_owned()),
            ("KAFKA_TOPIC_PREFIX".to_owned(), "ignored".to_owned()),
            ("PATH".to_owned(), "/bin".to_owned()),
        ]);
        let expected: BTreeMap<String, String> = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(config.properties, expected);
        assert_eq!(config.topic("organization"), "vextrus.organization");
    }
}
