//! The Kafka path against a real Kafka-protocol broker: librdkafka's mock cluster, in process.
//! Group scenarios use `session.timeout.ms=2000`, `heartbeat.interval.ms=200` and the mock's 1 s
//! initial rebalance delay; the mock refuses offset commits while a group re-forms, so
//! redeliveries happen and the assertions tolerate them.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use vextrus_commands::{DbRole, LogReader};
use vextrus_fanout::{
    EmbeddedKafka, EventEnvelope, KafkaConfig, KafkaWorker, Relay, RelayStatus, WorkerStatus,
};
use vextrus_projections::finance::GeneralLedger;
use vextrus_projections::organization::OrganizationHierarchy;
use vextrus_projections::{Projection, ProjectionRunner, ProjectionState};

use vextrus::server::Fanout;

use crate::http::*;
use crate::support::dump_read_models;

const PARTITIONS: i32 = 4;

/// A broker with a topic per aggregate type, and the configuration pointing at it.
pub fn broker() -> (EmbeddedKafka, KafkaConfig) {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let mut config = KafkaConfig::new(kafka.bootstrap_servers());
    config.topic_prefix = format!("t{}.", uuid::Uuid::now_v7().simple());
    for aggregate_type in vextrus_commands::AGGREGATE_TYPES {
        kafka
            .create_topic(&config.topic(aggregate_type), PARTITIONS)
            .unwrap();
    }
    (kafka, config)
}

/// Up to `count` messages of the organization topic, from the beginning of every partition, in
/// the order a plain consumer receives them (each partition's order kept); waits at most 30 s.
async fn read_topic(config: &KafkaConfig, count: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", "topic-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let topic = config.topic("organization");
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions
            .add_partition_offset(&topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&partitions).unwrap();
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while messages.len() < count && std::time::Instant::now() < deadline {
        // Never block the test's runtime thread: a relay may run on it.
        let Some(message) = consumer.poll(Duration::ZERO) else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        messages.push(message.unwrap().detach());
    }
    messages
}

/// A task and the means to stop it.
struct Task<S> {
    status: watch::Receiver<S>,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
}

impl<S> Task<S> {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn start_relay(app: &TestApp, config: &KafkaConfig) -> Task<RelayStatus> {
    let pool = app.db.role_pool(DbRole::Projector, 2).await.unwrap();
    let relay = Relay::new("main", pool.clone(), LogReader::new(pool), config.clone())
        .poll_interval(Duration::from_millis(20));
    let status = relay.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        relay.run(async { drop(stopped.await) }).await.unwrap();
    });
    Task {
        status,
        stop,
        handle,
    }
}

async fn start_worker(app: &TestApp, config: &KafkaConfig) -> Task<WorkerStatus> {
    start_worker_of(app, config, OrganizationHierarchy).await
}

async fn start_worker_of<P: Projection + Clone>(
    app: &TestApp,
    config: &KafkaConfig,
    projection: P,
) -> Task<WorkerStatus> {
    start_worker_healing_after(app, config, projection, KafkaConfig::DEFAULT_HEAL_AFTER).await
}

async fn start_worker_healing_after<P: Projection + Clone>(
    app: &TestApp,
    config: &KafkaConfig,
    projection: P,
    heal_after: Duration,
) -> Task<WorkerStatus> {
    let pool = app.db.role_pool(DbRole::Projector, 2).await.unwrap();
    let worker = KafkaWorker::new(
        projection,
        pool.clone(),
        LogReader::new(pool),
        config.clone(),
    )
    .heal_after(heal_after)
    .consumer_setting("session.timeout.ms", "2000")
    .consumer_setting("heartbeat.interval.ms", "200")
    .consumer_setting("topic.metadata.refresh.interval.ms", "500");
    let status = worker.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        worker.run(async { drop(stopped.await) }).await.unwrap();
    });
    Task {
        status,
        stop,
        handle,
    }
}

/// Waits until the read models hold exactly `events` applied events across `workers`.
async fn until_applied(workers: &[&Task<WorkerStatus>], events: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let applied: u64 = workers
            .iter()
            .map(|w| w.status.borrow().events_applied)
            .sum();
        if applied >= events {
            assert_eq!(applied, events, "an event was applied twice");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {applied} of {events} events applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rebuilds the read models with the single-node runner from an empty state: the reference.
async fn single_node_reference(app: &TestApp) -> Vec<String> {
    rebuild_with_runner(app, OrganizationHierarchy).await;
    dump_read_models(&app.owner).await
}

/// Empties `projection`'s tables and checkpoint, then runs its single-node runner until it has
/// applied every event in the log (or stopped).
async fn rebuild_with_runner<P: Projection>(app: &TestApp, projection: P) {
    for table in P::TABLES {
        sqlx::query(&format!("delete from {table}"))
            .execute(&app.owner)
            .await
            .unwrap();
    }
    sqlx::query("delete from projection_checkpoints where projection = $1")
        .bind(P::NAME)
        .execute(&app.owner)
        .await
        .unwrap();
    // The events of the types it reads.
    let events: i64 =
        sqlx::query_scalar("select count(*) from events where aggregate_type = any($1)")
            .bind(P::AGGREGATE_TYPES)
            .fetch_one(&app.owner)
            .await
            .unwrap();
    let events = events as u64;
    let pool = app.db.role_pool(DbRole::Projector, 2).await.unwrap();
    let runner = ProjectionRunner::new(projection, pool.clone(), LogReader::new(pool))
        .poll_interval(Duration::from_millis(20));
    let mut status = runner.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle =
        tokio::spawn(async move { runner.run(async { drop(stopped.await) }).await.unwrap() });
    tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| {
            s.events_applied >= events || matches!(s.state, ProjectionState::Stopped { .. })
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let _ = stop.send(());
    handle.await.unwrap();
}

/// Commands over HTTP for `tenants` tenants: hierarchies, renames, a move and an archive.
pub async fn drive_commands(app: &TestApp, tenants: usize) {
    for n in 0..tenants {
        let admin = app.caller(&["admin"]);
        let h = admin.create_hierarchy(&format!("ORG{n}")).await;
        let org = &h.org;
        let other = admin
            .post(
                &format!("/v1/organizations/{org}/projects"),
                json!({"division_id": h.division, "name": "Two", "code": "P2"}),
            )
            .await
            .expect(201)
            .id();
        admin
            .post(
                &format!("/v1/organizations/{org}/sites/{}/move", h.site),
                json!({"to_project_id": other}),
            )
            .await
            .expect(200);
        admin
            .patch(
                &format!("/v1/organizations/{org}"),
                json!({"name": format!("Renamed {n}")}),
            )
            .await
            .expect(200);
        admin
            .post(
                &format!("/v1/organizations/{org}/projects/{}/archive", h.project),
                json!({}),
            )
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn commands_through_the_relay_and_two_workers_build_what_the_single_node_runner_builds() {
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let relay = start_relay(&app, &config).await;
    let (mut first, mut second) = (
        start_worker(&app, &config).await,
        start_worker(&app, &config).await,
    );
    // Both in the group before any event: otherwise the first could take every event before
    // the group rebalances to the second.
    for worker in [&mut first, &mut second] {
        tokio::time::timeout(
            Duration::from_secs(30),
            worker.status.wait_for(|status| status.partitions > 0),
        )
        .await
        .expect("each worker holds partitions")
        .unwrap();
    }
    drive_commands(&app, 6).await;
    // Streams land on partitions by the hash of their key, so six tenants' streams all fall to
    // one worker's partitions once in 64 runs. Thirty more streams make that 2^-36.
    let admin = app.caller(&["admin"]);
    for n in 0..30 {
        admin.create_organization(&format!("MORE{n}")).await;
    }
    let events = app.event_count().await as u64;
    until_applied(&[&first, &second], events).await;
    let through_kafka = dump_read_models(&app.owner).await;
    let (a, b) = (
        first.status.borrow().clone(),
        second.status.borrow().clone(),
    );
    assert!(
        a.events_applied > 0 && b.events_applied > 0,
        "both workers had partitions: {a:?} {b:?}"
    );
    relay.stop().await;
    first.stop().await;
    second.stop().await;
    assert_eq!(through_kafka, single_node_reference(&app).await);
}

#[tokio::test]
async fn a_relay_restarted_before_its_checkpoint_resends_and_the_read_models_stay_exact() {
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let worker = start_worker(&app, &config).await;
    let mut relay = start_relay(&app, &config).await;
    drive_commands(&app, 3).await;
    let events = app.event_count().await as u64;
    until_applied(&[&worker], events).await;
    let status = relay
        .status
        .wait_for(|s| s.events_relayed >= events)
        .await
        .unwrap()
        .clone();
    assert_eq!(status.events_relayed, events);
    relay.stop().await;

    // As if the relay had died after producing and before checkpointing: it starts over.
    sqlx::query("update relay_checkpoints set transaction_id = '0', global_position = 0")
        .execute(&app.owner)
        .await
        .unwrap();
    relay = start_relay(&app, &config).await;
    drive_commands(&app, 1).await;
    let total = app.event_count().await as u64;
    until_applied(&[&worker], total).await;
    let duplicates = worker.status.borrow().duplicates_skipped;
    assert!(
        duplicates >= events,
        "every re-sent event was skipped: {duplicates} < {events}"
    );
    let through_kafka = dump_read_models(&app.owner).await;
    relay.stop().await;
    worker.stop().await;
    assert_eq!(through_kafka, single_node_reference(&app).await);
}

#[tokio::test]
async fn events_the_brokers_lost_are_applied_from_the_log_and_the_lag_is_the_logs() {
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    drive_commands(&app, 3).await;
    let events = app.event_count().await as u64;
    // As if the relay had handed every event to brokers that then lost them (an embedded broker
    // that died with its process, a topic whose retention ran out before a worker read it).
    sqlx::query(
        "insert into relay_checkpoints (relay, transaction_id, global_position, events_relayed)
         select 'main', transaction_id, global_position, $1 from events
         order by transaction_id desc, global_position desc limit 1",
    )
    .bind(events as i64)
    .execute(&app.owner)
    .await
    .unwrap();
    let worker =
        start_worker_healing_after(&app, &config, OrganizationHierarchy, Duration::ZERO).await;
    until_applied(&[&worker], events).await;
    let mut status = worker.status.clone();
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|status| status.missing_events == 0 && status.covered_position > 0),
    )
    .await
    .expect("the worker's check against the log finds nothing missing")
    .unwrap()
    .clone();
    assert_eq!(status.healed_events, events, "{status:?}");
    let report = vextrus_replay::projection_reports(&app.owner)
        .await
        .unwrap()
        .into_iter()
        .find(|report| report.name == "organization_hierarchy")
        .unwrap();
    assert_eq!((report.fed_by.as_str(), report.lag_events), ("kafka", 0));
    let healed = dump_read_models(&app.owner).await;
    worker.stop().await;
    assert_eq!(healed, single_node_reference(&app).await);
}

#[tokio::test]
async fn a_projection_with_no_events_of_its_types_is_covered_up_to_the_logs_head() {
    // Hierarchy commands only: the ledger's worker has nothing to apply. Its covered position
    // must still follow the log, or every check would read the whole log again and empty
    // brokers would make the relay resend it all.
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let head = || async {
        sqlx::query_scalar::<_, i64>(
            "select global_position from events
             order by transaction_id desc, global_position desc limit 1",
        )
        .fetch_one(&app.owner)
        .await
        .unwrap()
    };
    let saved = || async {
        sqlx::query_scalar::<_, i64>(
            "select global_position from projection_checkpoints where projection = 'general_ledger'",
        )
        .fetch_one(&app.owner)
        .await
        .unwrap()
    };
    drive_commands(&app, 2).await;
    let worker = start_worker_of(&app, &config, GeneralLedger).await;
    for round in 0..2 {
        if round > 0 {
            drive_commands(&app, 1).await;
        }
        let head = head().await;
        let mut status = worker.status.clone();
        let status = tokio::time::timeout(
            Duration::from_secs(30),
            status.wait_for(|status| status.covered_position == head),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the ledger's covered position reaches the log's head {head}: {:?}",
                worker.status.borrow()
            )
        })
        .unwrap()
        .clone();
        assert_eq!(status.missing_events, 0, "{status:?}");
        assert_eq!(
            saved().await,
            head,
            "the covered position is the checkpoint"
        );
    }
    worker.stop().await;
}

#[tokio::test]
async fn empty_brokers_make_the_relay_resend_from_the_lowest_covered_position() {
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    drive_commands(&app, 1).await;
    let positions: Vec<(i64, i64)> = sqlx::query_as(
        "select transaction_id::text::bigint, global_position from events
         order by transaction_id, global_position",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    let (head, middle) = (
        positions[positions.len() - 1],
        positions[positions.len() / 2],
    );
    sqlx::query(
        "insert into relay_checkpoints (relay, transaction_id, global_position)
         values ('main', $1::text::xid8, $2)",
    )
    .bind(head.0.to_string())
    .bind(head.1)
    .execute(&app.owner)
    .await
    .unwrap();
    for (projection, at) in [("organization_hierarchy", middle), ("audit_activity", head)] {
        sqlx::query(
            "insert into projection_checkpoints (projection, version, fed_by, transaction_id, global_position)
             values ($1, 1, 'kafka', $2::text::xid8, $3)",
        )
        .bind(projection)
        .bind(at.0.to_string())
        .bind(at.1)
        .execute(&app.owner)
        .await
        .unwrap();
    }
    let projector = app.db.role_pool(DbRole::Projector, 1).await.unwrap();
    let relay_at = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "select transaction_id::text::bigint, global_position from relay_checkpoints",
        )
        .fetch_one(&app.owner)
        .await
        .unwrap()
    };
    vextrus_fanout::rewind_for_empty_brokers(&projector, "main")
        .await
        .unwrap();
    assert_eq!(
        relay_at().await,
        middle,
        "back to the lowest covered position"
    );
    // Never forward.
    sqlx::query("update projection_checkpoints set global_position = $1 where projection = 'organization_hierarchy'")
        .bind(head.1)
        .execute(&app.owner)
        .await
        .unwrap();
    vextrus_fanout::rewind_for_empty_brokers(&projector, "main")
        .await
        .unwrap();
    assert_eq!(relay_at().await, middle);
}

/// The Kafka workers' dedupe record differs from the log's stream heads: rows (stream, sequence)
/// that one has and the other has not, for tenants matching `tenant` (all when `None`).
async fn stream_positions_off_the_log(app: &TestApp, tenant: Option<uuid::Uuid>) -> i64 {
    sqlx::query_scalar(
        "with heads as (
             select tenant_id, aggregate_type, aggregate_id, max(sequence) as sequence from events
             where aggregate_type = 'organization' group by 1, 2, 3),
         recorded as (
             select tenant_id, aggregate_type, aggregate_id, sequence from projection_stream_positions
             where projection = 'organization_hierarchy')
         select count(*) from (
             (select * from heads except select * from recorded)
             union all
             (select * from recorded except select * from heads)) off
         where $1::uuid is null or tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&app.owner)
    .await
    .unwrap()
}

async fn replay_fed_by_kafka(app: &TestApp, tenant: Option<vextrus_domain::TenantId>) {
    let projector = app.db.role_pool(DbRole::Projector, 2).await.unwrap();
    let summary = vextrus_replay::Replay::new(
        OrganizationHierarchy,
        app.owner.clone(),
        LogReader::new(projector),
        vextrus_replay::ReplayOptions {
            tenant,
            ..vextrus_replay::ReplayOptions::default()
        },
    )
    .run(|_| {})
    .await
    .unwrap();
    assert!(matches!(
        summary.outcome,
        vextrus_replay::Outcome::Swapped { .. }
    ));
}

#[tokio::test]
async fn replays_of_a_kafka_fed_projection_replace_the_dedupe_record_and_the_workers_go_on() {
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let relay = start_relay(&app, &config).await;
    let worker = start_worker(&app, &config).await;
    drive_commands(&app, 3).await;
    let events = app.event_count().await as u64;
    until_applied(&[&worker], events).await;
    let fed_by: String = sqlx::query_scalar(
        "select fed_by from projection_checkpoints where projection = 'organization_hierarchy'",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!(fed_by, "kafka");
    let built = dump_read_models(&app.owner).await;
    let tenants: Vec<uuid::Uuid> =
        sqlx::query_scalar("select distinct tenant_id from org_organizations order by 1")
            .fetch_all(&app.owner)
            .await
            .unwrap();

    // One tenant: its rows and its dedupe record are rebuilt, whatever had happened to them.
    sqlx::query("update org_organizations set name = 'CORRUPTED' where tenant_id = $1")
        .bind(tenants[0])
        .execute(&app.owner)
        .await
        .unwrap();
    sqlx::query("delete from projection_stream_positions where tenant_id = $1")
        .bind(tenants[0])
        .execute(&app.owner)
        .await
        .unwrap();
    assert!(stream_positions_off_the_log(&app, Some(tenants[0])).await > 0);
    replay_fed_by_kafka(&app, Some(vextrus_domain::TenantId::from_uuid(tenants[0]))).await;
    assert_eq!(dump_read_models(&app.owner).await, built);
    assert_eq!(stream_positions_off_the_log(&app, None).await, 0);

    // Every tenant: the tables and the whole dedupe record are swapped.
    sqlx::query("update projection_stream_positions set sequence = 1 where tenant_id = $1")
        .bind(tenants[1])
        .execute(&app.owner)
        .await
        .unwrap();
    replay_fed_by_kafka(&app, None).await;
    assert_eq!(dump_read_models(&app.owner).await, built);
    assert_eq!(stream_positions_off_the_log(&app, None).await, 0);

    // The worker goes on into the swapped tables: later events are applied once, none twice.
    drive_commands(&app, 1).await;
    let total = app.event_count().await as u64;
    until_applied(&[&worker], total).await;
    assert_eq!(stream_positions_off_the_log(&app, None).await, 0);
    let through_kafka = dump_read_models(&app.owner).await;
    relay.stop().await;
    worker.stop().await;
    assert_eq!(through_kafka, single_node_reference(&app).await);
}

#[tokio::test]
async fn the_message_envelope_carries_the_documented_fields_key_and_headers() {
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let relay = start_relay(&app, &config).await;
    let admin = app.caller(&["admin"]);
    let h = admin.create_hierarchy("MBL").await;

    let mut envelopes = Vec::new();
    for message in read_topic(&config, 4).await {
        let envelope = EventEnvelope::from_json(message.payload()).unwrap();
        let key = std::str::from_utf8(message.key().unwrap())
            .unwrap()
            .to_owned();
        let headers: Vec<(String, String)> = message
            .headers()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8(h.value.unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        let raw: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        envelopes.push((key, headers, envelope, raw));
    }
    relay.stop().await;
    assert_eq!(envelopes.len(), 4);
    envelopes.sort_by_key(|(_, _, envelope, _)| envelope.sequence);
    for (n, (key, headers, envelope, raw)) in envelopes.iter().enumerate() {
        assert_eq!(key, &format!("{}/{}", admin.tenant, h.org));
        assert_eq!(envelope.sequence, n as i64 + 1);
        assert_eq!(envelope.envelope_version, 1);
        assert_eq!(envelope.tenant_id, admin.tenant);
        assert_eq!(envelope.aggregate_type, "organization");
        assert_eq!(envelope.aggregate_id, h.org);
        assert_eq!(envelope.metadata.actor, "e2e-user");
        let expected_headers = [
            ("vextrus-tenant-id", admin.tenant.to_string()),
            ("vextrus-event-type", envelope.event_type.clone()),
            ("vextrus-sequence", envelope.sequence.to_string()),
            (
                "vextrus-global-position",
                envelope.global_position.to_string(),
            ),
            (
                "vextrus-correlation-id",
                envelope.metadata.correlation_id.to_string(),
            ),
            ("vextrus-envelope-version", "1".to_owned()),
        ];
        for (name, value) in expected_headers {
            assert!(
                headers.contains(&(name.to_owned(), value.clone())),
                "{name}={value} in {headers:?}"
            );
        }
        for field in [
            "tenant_id",
            "aggregate_type",
            "aggregate_id",
            "sequence",
            "global_position",
            "transaction_id",
            "event_type",
            "event_version",
            "payload",
            "metadata",
            "recorded_at",
        ] {
            assert!(raw.get(field).is_some(), "{field} missing from {raw}");
        }
        for field in [
            "actor",
            "command_id",
            "correlation_id",
            "causation_id",
            "request_id",
            "request_metadata",
        ] {
            assert!(
                raw["metadata"].get(field).is_some(),
                "metadata.{field} missing"
            );
        }
    }
    let types: Vec<&str> = envelopes
        .iter()
        .map(|(_, _, e, _)| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "OrganizationCreated",
            "DivisionCreated",
            "ProjectCreated",
            "SiteCreated"
        ]
    );
}

#[tokio::test]
async fn the_all_in_one_kafka_shape_serves_read_your_writes() {
    // As `vextrus serve --embedded-kafka`: API, relay and worker in one process.
    let (_kafka, config) = broker();
    let app = spawn_app_with(|server| server.fanout = Fanout::Kafka(config.clone())).await;
    let admin = app.caller(&["admin"]);
    let h = admin.create_hierarchy("MBL").await;
    // Workers keep no single checkpoint: min_position is answered from the per-stream record.
    let tree = admin.tree_after(&h.org, h.position).await.expect(200);
    assert_eq!(
        tree.body["divisions"][0]["projects"][0]["sites"][0]["path"],
        "MBL/DHK/PADMA/S1"
    );
    // The fan-out's metrics: the relay produced, each worker joined its group.
    let scrape = crate::metrics::scrape(&app).await;
    crate::metrics::check_conventions(&scrape);
    let value = |name, labels: &[(&str, &str)]| crate::metrics::value(&scrape, name, labels);
    assert!(value("vextrus_kafka_events_produced_total", &[]) >= Some(h.position as f64));
    assert!(
        value(
            "vextrus_kafka_rebalances_total",
            &[("projection", "organization_hierarchy")]
        ) >= Some(1.0)
    );
    assert!(value("vextrus_relay_position", &[("relay", "main")]).is_some());
    app.shutdown().await;
}

#[tokio::test]
async fn a_worker_stopped_mid_stream_hands_its_partitions_over_without_loss_or_doubles() {
    let app = spawn_app_with(|server| server.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let relay = start_relay(&app, &config).await;
    let (first, second) = (
        start_worker(&app, &config).await,
        start_worker(&app, &config).await,
    );
    drive_commands(&app, 4).await;
    let before = app.event_count().await as u64;
    until_applied(&[&first, &second], before).await;
    // Stop one worker while commands keep coming; the other takes its partitions.
    let first_applied = first.status.borrow().events_applied;
    first.stop().await;
    drive_commands(&app, 4).await;
    let total = app.event_count().await as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let applied = first_applied + second.status.borrow().events_applied;
        if applied >= total {
            assert_eq!(applied, total, "an event was applied twice");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {applied} of {total} applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let through_kafka = dump_read_models(&app.owner).await;
    relay.stop().await;
    second.stop().await;
    assert_eq!(through_kafka, single_node_reference(&app).await);
}

#[tokio::test]
async fn a_broker_taken_down_and_brought_back_delays_fan_out_but_loses_nothing() {
    let app = spawn_app_with(|server| server.fanout = Fanout::Elsewhere).await;
    let (kafka, config) = broker();
    let relay = start_relay(&app, &config).await;
    let worker = start_worker(&app, &config).await;
    drive_commands(&app, 2).await;
    until_applied(&[&worker], app.event_count().await as u64).await;

    kafka.cluster().unwrap().broker_down(1).unwrap();
    // Commands still succeed: the log is in PostgreSQL; fan-out waits for the broker.
    drive_commands(&app, 2).await;
    let total = app.event_count().await as u64;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        worker.status.borrow().events_applied < total,
        "nothing can arrive while the broker is down"
    );
    kafka.cluster().unwrap().broker_up(1).unwrap();

    until_applied(&[&worker], total).await;
    let through_kafka = dump_read_models(&app.owner).await;
    relay.stop().await;
    worker.stop().await;
    assert_eq!(through_kafka, single_node_reference(&app).await);
}

#[tokio::test]
async fn each_stream_keeps_its_order_across_partitions_under_concurrent_load() {
    let app = spawn_app_with(|server| server.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let relay = start_relay(&app, &config).await;
    // 8 organizations renamed concurrently, 15 times each.
    let mut organizations = Vec::new();
    for n in 0..8 {
        let admin = app.caller(&["admin"]);
        let org = admin.create_organization(&format!("O{n}")).await.id();
        organizations.push((admin.tenant, admin.token.clone(), org));
    }
    let mut tasks = Vec::new();
    for (_, token, org) in organizations.clone() {
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/v1/organizations/{org}")),
        );
        tasks.push(tokio::spawn(async move {
            for round in 0..15 {
                let response = client
                    .patch(&url)
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("Round {round}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = app.event_count().await as u64;
    tokio::time::timeout(
        Duration::from_secs(60),
        relay.status.clone().wait_for(|s| s.events_relayed >= total),
    )
    .await
    .unwrap()
    .unwrap();
    relay.stop().await;

    let mut sequences: std::collections::HashMap<String, Vec<i64>> = Default::default();
    let mut partitions_used = std::collections::HashSet::new();
    let mut received = 0;
    for message in read_topic(&config, total as usize).await {
        let envelope = EventEnvelope::from_json(message.payload()).unwrap();
        partitions_used.insert(message.partition());
        sequences
            .entry(envelope.key())
            .or_default()
            .push(envelope.sequence);
        received += 1;
    }
    assert_eq!(received, total);
    assert!(
        partitions_used.len() > 1,
        "the streams spread over partitions"
    );
    for (key, seen) in sequences {
        let expected: Vec<i64> = (1..=16).collect();
        assert_eq!(seen, expected, "stream {key} out of order");
    }
}

#[tokio::test]
async fn a_second_relay_waits_as_a_standby_and_takes_over() {
    let app = spawn_app_with(|server| server.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let mut active = start_relay(&app, &config).await;
    tokio::time::timeout(
        Duration::from_secs(30),
        active.status.wait_for(|s| s.active),
    )
    .await
    .unwrap()
    .unwrap();
    let mut standby = start_relay(&app, &config).await;
    drive_commands(&app, 1).await;
    let first = app.event_count().await as u64;
    tokio::time::timeout(
        Duration::from_secs(30),
        active.status.wait_for(|s| s.events_relayed >= first),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!standby.status.borrow().active, "only one relay is active");

    active.stop().await;
    drive_commands(&app, 1).await;
    let total = app.event_count().await as u64;
    let took_over = tokio::time::timeout(
        Duration::from_secs(30),
        standby
            .status
            .wait_for(|s| s.active && s.events_relayed >= total),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    // It resumed from the first relay's checkpoint rather than from the start.
    assert_eq!(took_over.events_relayed, total);
    standby.stop().await;
}

#[tokio::test]
async fn a_poison_event_stops_only_its_partition_until_an_operator_skips_it() {
    let app = spawn_app_with(|server| server.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let relay = start_relay(&app, &config).await;
    let worker = start_worker(&app, &config).await;
    let (poison_stream, poison_position) = append_poison_event(&app).await;
    drive_commands(&app, 6).await;
    let total = app.event_count().await as u64;

    // The other partitions go on: some events are applied while the poison's partition waits.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while worker.status.borrow().poison_events.is_empty()
        || worker.status.borrow().events_applied == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            worker.status.borrow()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(worker.status.borrow().poison_events, vec![poison_position]);
    assert_eq!(worker.status.borrow().stopped_on, vec![poison_position]);
    let reason: String = sqlx::query_scalar(
        "select reason from projection_poison_events where projection = 'organization_hierarchy' and global_position = $1",
    )
    .bind(poison_position)
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert!(!reason.is_empty());
    let applied: Option<i64> = sqlx::query_scalar(
        "select sequence from projection_stream_positions where aggregate_id = $1",
    )
    .bind(&poison_stream)
    .fetch_optional(&app.owner)
    .await
    .unwrap();
    assert_eq!(applied, None, "the poison event waits for an operator");

    let projector = app.db.role_pool(DbRole::Projector, 1).await.unwrap();
    let not_stopped_there =
        vextrus_fanout::request_skip(&projector, OrganizationHierarchy::NAME, poison_position + 1)
            .await
            .unwrap();
    assert_eq!(not_stopped_there, None);
    let skipped =
        vextrus_fanout::request_skip(&projector, OrganizationHierarchy::NAME, poison_position)
            .await
            .unwrap()
            .expect("the poison event is recorded");
    assert_eq!(skipped.reason, reason);
    // Everything but the skipped event is applied; the skip is recorded as the stream's position.
    // (When no other stream shares the poison's partition, the rest was applied before the skip,
    // so wait for the skip itself too.)
    until_applied(&[&worker], total - 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let recorded = loop {
        let recorded: Option<i64> = sqlx::query_scalar(
            "select sequence from projection_stream_positions where aggregate_id = $1",
        )
        .bind(&poison_stream)
        .fetch_optional(&app.owner)
        .await
        .unwrap();
        if recorded.is_some() || tokio::time::Instant::now() > deadline {
            break recorded;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(recorded, Some(1));
    assert!(worker.status.borrow().stopped_on.is_empty());
    relay.stop().await;
    worker.stop().await;
}

/// Appends an event no projection can read, as the owner (as a buggy release might have):
/// its stream and log position.
async fn append_poison_event(app: &TestApp) -> (String, i64) {
    let stream = uuid::Uuid::now_v7().to_string();
    let position: i64 = sqlx::query_scalar(
        "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, actor, command_id, correlation_id)
         values ($1, 'organization', $2, 1, 'OrganizationCreated', '1', '{\"garbage\": true}', 'bug',
                 gen_random_uuid(), gen_random_uuid())
         returning global_position",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(&stream)
    .fetch_one(&app.owner)
    .await
    .unwrap();
    (stream, position)
}

/// Polls `/health/ready` until `accept` holds for its body; the last status and body.
async fn until_ready_reports(
    app: &TestApp,
    accept: impl Fn(&serde_json::Value) -> bool,
) -> (u16, serde_json::Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let response = app
            .client
            .get(format!("{}/health/ready", app.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        if accept(&body) {
            return (status, body);
        }
        assert!(tokio::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_all_in_one_shape_reports_a_poison_event_until_skipped_with_the_cli() {
    let (_kafka, config) = broker();
    let app = spawn_app_with(|server| server.fanout = Fanout::Kafka(config.clone())).await;
    let admin = app.caller(&["admin"]);
    let h = admin.create_hierarchy("MBL").await;
    let (status, ready) = until_ready_reports(&app, |body| {
        body["relay"]["position"].as_i64() >= Some(h.position)
            && body["projections"][0]["position"].as_i64() >= Some(h.position)
    })
    .await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["relay"]["state"], "active");
    assert_eq!(ready["projections"][0]["name"], "organization_hierarchy");
    assert_eq!(ready["projections"][0]["state"], "running");

    let (_, position) = append_poison_event(&app).await;
    let (status, ready) =
        until_ready_reports(&app, |body| body["projections"][0]["state"] == "stopped").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ready"], false);
    let detail = ready["projections"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("[{position}]"))
            && detail.contains(&format!("--position {position}")),
        "{detail}"
    );

    // The operator's command: a wrong position is refused and names the right one.
    let skip = |at: i64| {
        crate::cli::vextrus(&std::env::temp_dir())
            .env("DATABASE_URL", &app.db.url)
            .args(["project", "skip", "organization_hierarchy", "--position"])
            .arg(at.to_string())
            .output()
            .unwrap()
    };
    let wrong = skip(position + 1000);
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(
        stderr.contains(&format!("stopped at log positions [{position}]")),
        "{stderr}"
    );
    let skipped = skip(position);
    let stdout = String::from_utf8_lossy(&skipped.stdout);
    assert!(
        skipped.status.success(),
        "{}",
        String::from_utf8_lossy(&skipped.stderr)
    );
    assert!(stdout.contains("skip requested"), "{stdout}");

    let (status, ready) =
        until_ready_reports(&app, |body| body["projections"][0]["state"] == "running").await;
    assert_eq!(status, 200, "{ready}");
    // Events after the skipped one are applied again.
    let later = admin.create_hierarchy("NBL").await;
    let tree = admin
        .tree_after(&later.org, later.position)
        .await
        .expect(200);
    assert_eq!(tree.body["organization"]["code"], "NBL");
    app.shutdown().await;
}

/// The activity counters, in key order.
async fn activity_counts(
    app: &TestApp,
) -> Vec<(uuid::Uuid, String, chrono::NaiveDate, String, i64, i64)> {
    sqlx::query_as(
        "select tenant_id, actor, day, aggregate_type, events, commands from audit_activity
         order by tenant_id, actor, day, aggregate_type",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap()
}

/// The same counts, straight from the log: events, and commands (each command appends to one
/// stream), per tenant, actor, Bangladesh day and aggregate type.
async fn activity_in_the_log(
    app: &TestApp,
) -> Vec<(uuid::Uuid, String, chrono::NaiveDate, String, i64, i64)> {
    sqlx::query_as(
        "select tenant_id, actor, (recorded_at at time zone 'UTC' + interval '6 hours')::date as day,
                aggregate_type, count(*), count(distinct command_id)
         from events group by 1, 2, 3, 4 order by 1, 2, 3, 4",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn activity_counters_fed_by_two_workers_one_stopped_mid_stream_equal_the_log() {
    use vextrus_projections::activity::AuditActivity;
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let relay = start_relay(&app, &config).await;
    let (mut first, mut second) = (
        start_worker_of(&app, &config, AuditActivity).await,
        start_worker_of(&app, &config, AuditActivity).await,
    );
    for worker in [&mut first, &mut second] {
        tokio::time::timeout(
            Duration::from_secs(30),
            worker.status.wait_for(|status| status.partitions > 0),
        )
        .await
        .expect("each worker holds partitions")
        .unwrap();
    }
    // Many streams of one tenant, by two actors, every one feeding the same counter rows.
    let tenant = uuid::Uuid::now_v7();
    let (alice, bob) = (
        caller_as(&app, tenant, "alice", &["admin"]),
        caller_as(&app, tenant, "bob", &["project-manager"]),
    );
    let mut organizations = Vec::new();
    for n in 0..24 {
        let org = alice.create_organization(&format!("A{n}")).await.id();
        bob.post(
            &format!("/v1/organizations/{org}/divisions"),
            json!({"name": "Dhaka", "code": "DHK"}),
        )
        .await
        .expect(201);
        organizations.push(org);
    }
    let applied_before_stop = {
        let events = app.event_count().await as u64;
        until_applied(&[&first, &second], events).await;
        let status = second.status.borrow().clone();
        assert!(
            status.events_applied > 0,
            "the second worker applied events: {status:?}"
        );
        events
    };
    let stopped_applied = second.status.borrow().events_applied;
    second.stop().await;
    // The first worker takes over the stopped one's partitions, mid-stream.
    for org in &organizations {
        alice
            .patch(
                &format!("/v1/organizations/{org}"),
                json!({"name": "Renamed"}),
            )
            .await
            .expect(200);
    }
    let events = app.event_count().await as u64;
    assert!(events > applied_before_stop);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while first.status.borrow().events_applied + stopped_applied < events {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first worker took over the stopped one's streams"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let through_kafka = activity_counts(&app).await;
    relay.stop().await;
    first.stop().await;
    let log = activity_in_the_log(&app).await;
    assert_eq!(
        through_kafka, log,
        "the counters equal a count over the log"
    );
    let actors: std::collections::BTreeSet<&str> = log.iter().map(|row| row.1.as_str()).collect();
    assert_eq!(actors, ["alice", "bob"].into(), "{log:?}");

    // The single-node runner, from nothing, builds the same counters.
    rebuild_with_runner(&app, AuditActivity).await;
    let pool = app.db.role_pool(DbRole::Projector, 2).await.unwrap();
    assert_eq!(
        activity_counts(&app).await,
        log,
        "the single-node runner agrees"
    );

    // And so does a full replay, which COPYs totals built from zero.
    let summary = vextrus_replay::Replay::new(
        AuditActivity,
        app.owner.clone(),
        LogReader::new(pool),
        vextrus_replay::ReplayOptions::default(),
    )
    .run(|_| {})
    .await
    .unwrap();
    assert_eq!(summary.events, events);
    assert_eq!(activity_counts(&app).await, log, "a replay agrees");
}

/// The general ledger's tables, each as one JSON text in a fixed order.
async fn dump_ledger(app: &TestApp) -> Vec<String> {
    use vextrus_projections::finance::GeneralLedger;
    let mut tables = Vec::new();
    for table in <GeneralLedger as Projection>::TABLES {
        tables.push(
            sqlx::query_scalar::<_, String>(&format!(
                "select coalesce(json_agg(t order by t::text)::text, '[]') from {table} t"
            ))
            .fetch_one(&app.owner)
            .await
            .unwrap(),
        );
    }
    tables
}

/// Design.md D11: the general ledger built by two Kafka workers (one stopped mid-stream), by the
/// single-node runner from nothing, and by a full replay is the same, row for row.
#[tokio::test]
async fn the_general_ledger_through_kafka_the_runner_and_a_replay_is_the_same() {
    use vextrus_projections::finance::GeneralLedger;
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    let (_kafka, config) = broker();
    let relay = start_relay(&app, &config).await;
    let (mut first, mut second) = (
        start_worker_of(&app, &config, GeneralLedger).await,
        start_worker_of(&app, &config, GeneralLedger).await,
    );
    for worker in [&mut first, &mut second] {
        tokio::time::timeout(
            Duration::from_secs(30),
            worker.status.wait_for(|status| status.partitions > 0),
        )
        .await
        .expect("each worker holds partitions")
        .unwrap();
    }
    let mut second = Some(second);
    let ledger_events = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from events where aggregate_type in ('ledger', 'journal_entry')",
        )
        .fetch_one(&app.owner)
        .await
        .unwrap() as u64
    };
    let mut stopped_applied = 0;
    for (n, code) in ["KAFA", "KAFB"].into_iter().enumerate() {
        let books = crate::api_finance::Books::open(&app, code).await;
        let mut entries = Vec::new();
        for day in 1..=6 {
            let mut body = books.rent(&format!("2025-08-{day:02}"));
            body["lines"][0]["debit"] = json!(format!("{day}000.00"));
            body["lines"][1]["credit"] = json!(format!("{day}000.00"));
            entries.push(books.post_entry(body).await.expect(201).id());
        }
        books
            .caller
            .post(
                &books.path(&format!("journal-entries/{}/reverse", entries[2])),
                json!({"date": "2025-09-01"}),
            )
            .await
            .expect(201);
        books.close_period("2025-08-01").await.expect(200);
        if n == 0 {
            // The second worker stops mid-stream; the first takes its partitions over.
            if let Some(second) = second.take() {
                until_applied(&[&first, &second], ledger_events().await).await;
                stopped_applied = second.status.borrow().events_applied;
                second.stop().await;
            }
        }
    }
    let events = ledger_events().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while first.status.borrow().events_applied + stopped_applied < events {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first worker took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let through_kafka = dump_ledger(&app).await;
    relay.stop().await;
    first.stop().await;
    assert!(
        through_kafka[4].contains("reversal"),
        "{}",
        through_kafka[4]
    );

    rebuild_with_runner(&app, GeneralLedger).await;
    assert_eq!(
        dump_ledger(&app).await,
        through_kafka,
        "the single-node runner agrees"
    );

    let pool = app.db.role_pool(DbRole::Projector, 2).await.unwrap();
    let summary = vextrus_replay::Replay::new(
        GeneralLedger,
        app.owner.clone(),
        LogReader::new(pool),
        vextrus_replay::ReplayOptions::default(),
    )
    .run(|_| {})
    .await
    .unwrap();
    assert_eq!(summary.events, events);
    assert_eq!(
        dump_ledger(&app).await,
        through_kafka,
        "a full replay agrees"
    );
}
