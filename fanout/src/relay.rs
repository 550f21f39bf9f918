//! The relay: tails the log in commit order and produces every event to Kafka (design.md D4).
//!
//! - One active relay per database and relay name: it holds a PostgreSQL advisory lock on a
//!   connection of its own for as long as it runs; a second instance waits for the lock as a hot
//!   standby and takes over when the first one's session ends.
//! - Each batch is produced with an idempotent producer (`acks=all`), keyed
//!   `tenant_id/aggregate_id`, and the checkpoint advances only after the brokers acknowledged
//!   every event of the batch. After a crash the relay resumes from the checkpoint and re-sends
//!   what was produced but not checkpointed; consumers skip those duplicates (see
//!   [`crate::worker`]).

use std::future::Future;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tracing::{info, instrument};
use vextrus_commands::{LogFilter, LogPosition, LogReader, RecordedEvent};

use crate::config::KafkaConfig;
use crate::envelope::{EventEnvelope, headers};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("creating the Kafka producer: {0}")]
    Producer(#[source] rdkafka::error::KafkaError),
    #[error("Kafka did not acknowledge the event at log position {position}: {source}")]
    Delivery {
        position: i64,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("serializing the envelope of the event at log position {position}: {source}")]
    Envelope {
        position: i64,
        #[source]
        source: serde_json::Error,
    },
    #[error("the connection holding the relay lock was lost")]
    LockLost,
}

/// What the relay has done, for operators and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayStatus {
    /// True while this instance holds the lock and relays.
    pub active: bool,
    /// The checkpoint: the last event the brokers acknowledged.
    pub position: LogPosition,
    pub events_relayed: u64,
}

/// The relay of a deployment: the name its checkpoint is kept under, which the workers read to
/// know what Kafka should have delivered.
pub const MAIN_RELAY: &str = "main";

/// How long a standby waits between attempts to take the lock.
const STANDBY_RETRY: Duration = Duration::from_millis(500);

pub struct Relay {
    name: String,
    pool: PgPool,
    reader: LogReader,
    kafka: KafkaConfig,
    batch_size: u32,
    poll_interval: Duration,
    status: watch::Sender<RelayStatus>,
}

impl Relay {
    /// `pool` must act as `vextrus_projector` (it reads the whole log and writes the relay's
    /// checkpoint); `reader` reads the log.
    pub fn new(
        name: impl Into<String>,
        pool: PgPool,
        reader: LogReader,
        kafka: KafkaConfig,
    ) -> Self {
        Self {
            name: name.into(),
            pool,
            reader,
            kafka,
            batch_size: 500,
            poll_interval: vextrus_commands::LogTail::DEFAULT_POLL_INTERVAL,
            status: watch::Sender::new(RelayStatus::default()),
        }
    }

    pub fn batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    pub fn status(&self) -> watch::Receiver<RelayStatus> {
        self.status.subscribe()
    }

    /// Waits for the relay lock, then relays until `shutdown`. A batch that was read is produced
    /// and checkpointed before returning.
    #[instrument(name = "relay", skip_all, fields(relay = %self.name))]
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
        tokio::pin!(shutdown);
        let Some(mut lock) = self.acquire_lock(shutdown.as_mut()).await? else {
            return Ok(());
        };
        let producer: FutureProducer = self
            .kafka
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("message.timeout.ms", "120000")
            .create()
            .map_err(RelayError::Producer)?;
        let (position, relayed) = self.load_checkpoint().await?;
        info!(?position, "relay active");
        // Present from the start, so that a rate over them is 0 rather than nothing.
        metrics::counter!(crate::metrics::PRODUCE_ERRORS).increment(0);
        metrics::counter!(crate::metrics::EVENTS_PRODUCED).increment(0);
        self.status.send_modify(|status| {
            *status = RelayStatus {
                active: true,
                position,
                events_relayed: relayed,
            }
        });
        let mut tail = self
            .reader
            .tail(position, LogFilter::default())
            .batch_size(self.batch_size)
            .poll_interval(self.poll_interval);
        let result = loop {
            let batch = tokio::select! {
                biased;
                () = &mut shutdown => break Ok(()),
                batch = tail.next_batch() => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => break Err(error.into()),
            };
            if batch.is_empty() {
                continue;
            }
            if let Err(error) = self.produce(&producer, &batch).await {
                metrics::counter!(crate::metrics::PRODUCE_ERRORS).increment(1);
                break Err(error);
            }
            metrics::counter!(crate::metrics::EVENTS_PRODUCED).increment(batch.len() as u64);
            // The lock's session must still be ours, or another relay may have taken over.
            if sqlx::query("select 1").execute(&mut lock).await.is_err() {
                break Err(RelayError::LockLost);
            }
            if let Err(error) = self.save_checkpoint(&batch).await {
                break Err(error);
            }
        };
        self.status.send_modify(|status| status.active = false);
        result
    }

    /// The lock connection, once this instance is the active relay; `None` on shutdown first.
    async fn acquire_lock(
        &self,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Option<PgConnection>, RelayError> {
        let mut announced = false;
        loop {
            let mut conn = self.pool.acquire().await?;
            let locked: bool = sqlx::query_scalar(
                "select pg_try_advisory_lock(hashtextextended('vextrus.relay/' || $1, 0))",
            )
            .bind(&self.name)
            .fetch_one(&mut *conn)
            .await?;
            if locked {
                // The lock lives as long as this session: keep it out of the pool for good.
                return Ok(Some(conn.detach()));
            }
            drop(conn);
            if !announced {
                info!("another relay is active: waiting as a standby");
                announced = true;
            }
            tokio::select! {
                () = &mut shutdown => return Ok(None),
                () = tokio::time::sleep(STANDBY_RETRY) => {}
            }
        }
    }

    async fn load_checkpoint(&self) -> Result<(LogPosition, u64), RelayError> {
        let (transaction_id, global_position, relayed): (i64, i64, i64) = sqlx::query_as(
            "insert into relay_checkpoints (relay) values ($1)
             on conflict (relay) do update set relay = excluded.relay
             returning transaction_id::text::bigint, global_position, events_relayed",
        )
        .bind(&self.name)
        .fetch_one(&self.pool)
        .await?;
        let unsigned =
            |value: i64| u64::try_from(value).map_err(|error| sqlx::Error::Decode(Box::new(error)));
        Ok((
            LogPosition {
                transaction_id: unsigned(transaction_id)?,
                global_position,
            },
            unsigned(relayed)?,
        ))
    }

    /// Produces every event of the batch and waits until the brokers acknowledged all of them.
    async fn produce(
        &self,
        producer: &FutureProducer,
        batch: &[RecordedEvent],
    ) -> Result<(), RelayError> {
        let mut deliveries = Vec::with_capacity(batch.len());
        for event in batch {
            let position = event.global_position.get();
            if event.traceparent().is_some() {
                let span = tracing::info_span!("relay_event", global_position = position);
                event.continue_trace(&span);
            }
            let envelope = EventEnvelope::from(event);
            let value = envelope
                .to_json()
                .map_err(|source| RelayError::Envelope { position, source })?;
            let key = envelope.key();
            let topic = self.kafka.topic(&event.aggregate_type);
            let record = FutureRecord::to(&topic)
                .key(&key)
                .payload(&value)
                .headers(message_headers(event));
            // Enqueued at once, awaited below: the whole batch is in flight together, and the
            // idempotent producer keeps each partition's order.
            let delivery = producer
                .send_result(record)
                .map_err(|(source, _record)| RelayError::Delivery { position, source })?;
            deliveries.push((position, delivery));
        }
        for (position, delivery) in deliveries {
            let source = match delivery.await {
                Ok(Ok(_delivered)) => continue,
                Ok(Err((source, _message))) => source,
                // The producer went away with the message in its queue.
                Err(_canceled) => KafkaError::Canceled,
            };
            return Err(RelayError::Delivery { position, source });
        }
        Ok(())
    }

    async fn save_checkpoint(&self, batch: &[RecordedEvent]) -> Result<(), RelayError> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let position = last.position();
        let count = batch.len() as i64;
        sqlx::query(
            "update relay_checkpoints
             set transaction_id = $2::text::xid8, global_position = $3,
                 events_relayed = events_relayed + $4, updated_at = now()
             where relay = $1",
        )
        .bind(&self.name)
        .bind(position.transaction_id.to_string())
        .bind(position.global_position)
        .bind(count)
        .execute(&self.pool)
        .await?;
        self.status.send_modify(|status| {
            status.position = position;
            status.events_relayed += batch.len() as u64;
        });
        Ok(())
    }
}

fn message_headers(event: &RecordedEvent) -> OwnedHeaders {
    let header = |headers: OwnedHeaders, key: &'static str, value: &str| {
        headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        })
    };
    let mut headers = OwnedHeaders::new_with_capacity(7);
    headers = header(headers, headers::TENANT_ID, &event.tenant_id.to_string());
    headers = header(headers, headers::EVENT_TYPE, &event.event_type);
    headers = header(headers, headers::SEQUENCE, &event.sequence.to_string());
    headers = header(
        headers,
        headers::GLOBAL_POSITION,
        &event.global_position.to_string(),
    );
    headers = header(
        headers,
        headers::CORRELATION_ID,
        &event.correlation_id.to_string(),
    );
    headers = header(
        headers,
        headers::ENVELOPE_VERSION,
        &crate::envelope::ENVELOPE_VERSION.to_string(),
    );
    // The W3C trace context, under its standard name, for tracing-aware consumers.
    match event.traceparent() {
        Some(traceparent) => header(headers, vextrus_commands::trace::TRACEPARENT, traceparent),
        None => headers,
    }
}

/// For brokers that start empty (the embedded cluster, which dies with its process): moves the
/// relay's checkpoint back to the lowest covered position of the Kafka-fed projections, so that
/// the relay sends again what no worker had applied when the previous brokers went. The workers'
/// dedupe skips what they had. `pool` acts as `vextrus_projector`.
pub async fn rewind_for_empty_brokers(pool: &PgPool, relay: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update relay_checkpoints r
         set transaction_id = c.transaction_id, global_position = c.global_position, updated_at = now()
         from (select transaction_id, global_position from projection_checkpoints
               where fed_by = 'kafka'
               order by transaction_id, global_position limit 1) c
         where r.relay = $1
           and (c.transaction_id, c.global_position) < (r.transaction_id, r.global_position)",
    )
    .bind(relay)
    .execute(pool)
    .await
    .map(drop)
}

/// Creates the topics of `aggregate_types` with the configured partition count, where the
/// brokers allow it. Existing topics are left as they are; a refusal (no permission, a broker
/// that does not serve CreateTopics) is logged, and producing then relies on the cluster's
/// auto-creation or on topics made by an operator.
pub async fn create_topics(kafka: &KafkaConfig, aggregate_types: &[&str]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    let admin: AdminClient<DefaultClientContext> = match kafka.client_config().create() {
        Ok(admin) => admin,
        Err(error) => {
            tracing::warn!(%error, "cannot create topics: no admin client");
            return;
        }
    };
    let names: Vec<String> = aggregate_types.iter().map(|t| kafka.topic(t)).collect();
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, kafka.partitions, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(15)));
    match admin.create_topics(&topics, &options).await {
        Ok(results) => {
            for result in results {
                match result {
                    Ok(topic) => info!(%topic, partitions = kafka.partitions, "topic created"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((topic, code)) => tracing::warn!(%topic, ?code, "topic not created"),
                }
            }
        }
        Err(error) => tracing::warn!(%error, "topics not created"),
    }
}
