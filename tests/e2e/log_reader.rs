//! The log reader: commit order, the xid8 watermark, filters and wake-ups.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;
use vextrus_commands::{DbRole, LogFilter, LogPosition, RecordedEvent};
use vextrus_domain::TenantId;

use crate::support::*;

/// Inserts one event as the table owner inside `tx`, returning its global position. Raw SQL, so a
/// test can hold a transaction open between insert and commit.
async fn insert_raw(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    stream: &str,
    sequence: i64,
) -> i64 {
    sqlx::query_scalar(
        "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, actor, command_id, correlation_id)
         values ($1, 'probe', $2, $3, 'Probed', '1', '{}', 'test', $4, $4)
         returning global_position",
    )
    .bind(tenant.as_uuid())
    .bind(stream)
    .bind(sequence)
    .bind(Uuid::now_v7())
    .fetch_one(&mut **tx)
    .await
    .unwrap()
}

fn positions(events: &[RecordedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.global_position.get()).collect()
}

#[tokio::test]
async fn a_transaction_that_commits_late_with_a_lower_position_is_not_skipped() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let all = LogFilter::default();

    let mut slow = fx.owner.begin().await.unwrap();
    let slow_position = insert_raw(&mut slow, tenant, "slow", 1).await;
    let mut fast = fx.owner.begin().await.unwrap();
    let fast_position = insert_raw(&mut fast, tenant, "fast", 1).await;
    fast.commit().await.unwrap();
    assert!(slow_position < fast_position);

    // Reading by global_position alone would hand out the fast event now and, having moved past
    // it, never return to the slow one.
    let naive: Vec<i64> =
        sqlx::query_scalar("select global_position from events where global_position > 0")
            .fetch_all(&fx.owner)
            .await
            .unwrap();
    assert_eq!(naive, vec![fast_position]);

    // The watermark holds both back while the older transaction is still running...
    assert!(
        fx.reader
            .read_batch(LogPosition::START, &all, 100)
            .await
            .unwrap()
            .is_empty()
    );
    slow.commit().await.unwrap();
    settle(&fx.owner).await;
    // ...and then delivers both, in commit order.
    let batch = fx
        .reader
        .read_batch(LogPosition::START, &all, 100)
        .await
        .unwrap();
    assert_eq!(positions(&batch), vec![slow_position, fast_position]);
    assert!(
        fx.reader
            .read_batch(batch[1].position(), &all, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_event_behind_the_checkpoint_by_position_but_ahead_by_transaction_is_delivered() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let all = LogFilter::default();

    // `early` takes its transaction id first but inserts last.
    let mut early = fx.owner.begin().await.unwrap();
    sqlx::query("select pg_current_xact_id()")
        .execute(&mut *early)
        .await
        .unwrap();
    let mut late = fx.owner.begin().await.unwrap();
    let late_position = insert_raw(&mut late, tenant, "late", 1).await;
    let early_position = insert_raw(&mut early, tenant, "early", 1).await;
    early.commit().await.unwrap();
    let early_xid: String =
        sqlx::query_scalar("select transaction_id::text from events where global_position = $1")
            .bind(early_position)
            .fetch_one(&fx.owner)
            .await
            .unwrap();
    settle_past(&fx.owner, early_xid.parse().unwrap()).await;

    let first = fx
        .reader
        .read_batch(LogPosition::START, &all, 100)
        .await
        .unwrap();
    assert_eq!(positions(&first), vec![early_position]);
    late.commit().await.unwrap();
    settle(&fx.owner).await;
    let second = fx
        .reader
        .read_batch(first[0].position(), &all, 100)
        .await
        .unwrap();
    assert_eq!(
        positions(&second),
        vec![late_position],
        "a lower position after the checkpoint is still read"
    );
    assert!(late_position < early_position);
}

/// Writers commit in random orders and at random moments while a tail follows the log. Every
/// event must arrive exactly once, in (transaction, position) order, and the run must actually
/// contain late commits of lower positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_under_randomly_timed_writers_never_skips_or_repeats() {
    const ROUNDS: u64 = 8;
    const WRITERS: u64 = 4;
    const EVENTS_PER_WRITER: u64 = 12;
    let fx = fixture().await;
    let seed = random_seed();
    println!("jitter seed {seed}");
    let mut tail = fx
        .reader
        .tail(LogPosition::START, LogFilter::default())
        .batch_size(5)
        .poll_interval(Duration::from_millis(2));
    let mut delivered: Vec<RecordedEvent> = Vec::new();
    let mut late_commits_seen = 0;

    for round in 0..ROUNDS {
        let committed = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (owner, committed) = (fx.owner.clone(), Arc::clone(&committed));
                tokio::spawn(async move {
                    let mut jitter = Jitter::new(seed ^ ((round * 31 + writer + 1) * 0x9e37_79b9));
                    for n in 0..EVENTS_PER_WRITER {
                        write_one(
                            &owner,
                            &mut jitter,
                            &format!("r{round}w{writer}"),
                            n as i64 + 1,
                            &committed,
                        )
                        .await;
                    }
                })
            })
            .collect();

        let expected = delivered.len() + (WRITERS * EVENTS_PER_WRITER) as usize;
        let reading = async {
            while delivered.len() < expected {
                delivered.extend(tail.next_batch().await.unwrap());
            }
        };
        tokio::time::timeout(Duration::from_secs(60), reading)
            .await
            .expect("the tail delivered every event");
        for writer in writers {
            writer.await.unwrap();
        }

        let committed = committed.lock().unwrap().clone();
        late_commits_seen += committed
            .windows(2)
            .filter(|pair| pair[0] > pair[1])
            .count();
    }

    let unique: HashSet<i64> = positions(&delivered).into_iter().collect();
    assert_eq!(unique.len(), delivered.len(), "no event delivered twice");
    assert_eq!(delivered.len() as u64, ROUNDS * WRITERS * EVENTS_PER_WRITER);
    assert!(
        delivered
            .windows(2)
            .all(|pair| pair[0].position() < pair[1].position()),
        "commit order"
    );
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&fx.owner)
        .await
        .unwrap();
    assert_eq!(total as usize, delivered.len());
    assert!(
        late_commits_seen > 0,
        "the timings never produced a late commit of a lower position (seed {seed})"
    );
}

/// One event in its own transaction: sometimes taking the transaction id early, pausing at random
/// before the insert and before the commit.
async fn write_one(
    owner: &PgPool,
    jitter: &mut Jitter,
    stream: &str,
    sequence: i64,
    committed: &Mutex<Vec<i64>>,
) {
    let mut tx = owner.begin().await.unwrap();
    if jitter.below(2) == 0 {
        sqlx::query("select pg_current_xact_id()")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_micros(jitter.below(1500))).await;
    let position = insert_raw(&mut tx, TenantId::from_uuid(Uuid::nil()), stream, sequence).await;
    tokio::time::sleep(Duration::from_micros(jitter.below(3000))).await;
    tx.commit().await.unwrap();
    committed.lock().unwrap().push(position);
}

#[tokio::test]
async fn filters_select_one_tenant_or_aggregate_type() {
    let fx = fixture().await;
    let (tenant_a, tenant_b) = (TenantId::new(), TenantId::new());
    for tenant in [tenant_a, tenant_b] {
        fx.create_organization(tenant, "MBL").await;
    }
    let mut tx = fx.owner.begin().await.unwrap();
    insert_raw(&mut tx, tenant_a, "p", 1).await;
    tx.commit().await.unwrap();
    settle(&fx.owner).await;

    let only_a = fx
        .reader
        .read_batch(
            LogPosition::START,
            &LogFilter::default().tenant(tenant_a),
            100,
        )
        .await
        .unwrap();
    assert_eq!(only_a.len(), 2);
    assert!(only_a.iter().all(|e| e.tenant_id == tenant_a));

    let organizations = LogFilter::default().aggregate_types(["organization"]);
    let only_orgs = fx
        .reader
        .read_batch(LogPosition::START, &organizations, 100)
        .await
        .unwrap();
    assert_eq!(only_orgs.len(), 2);
    assert!(only_orgs.iter().all(|e| e.aggregate_type == "organization"));

    let both = LogFilter::default()
        .tenant(tenant_b)
        .aggregate_types(["probe"]);
    assert!(
        fx.reader
            .read_batch(LogPosition::START, &both, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        fx.reader
            .read_batch(LogPosition::START, &LogFilter::default(), 2)
            .await
            .unwrap()
            .len(),
        2,
        "limit"
    );
}

#[tokio::test]
async fn a_waiting_tail_wakes_on_an_in_process_append_without_waiting_for_its_poll() {
    let fx = fixture().await;
    // A poll interval far longer than the test's patience: only the append signal can wake it.
    let mut tail = fx
        .reader
        .tail(LogPosition::START, LogFilter::default())
        .poll_interval(Duration::from_secs(3600));
    let waiting = tokio::spawn(async move { tail.next_batch().await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    fx.create_organization(TenantId::new(), "MBL").await;
    let batch = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("woken by the append")
        .unwrap()
        .unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].event_type, "OrganizationCreated");
}

/// Waits until the event at `position` is below the watermark, so a read would hand it out.
async fn until_readable(fx: &Fixture, position: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let events = fx
            .reader
            .read_batch(LogPosition::START, &LogFilter::default(), 1_000)
            .await
            .unwrap();
        if positions(&events).contains(&position) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "event {position} never became readable"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Inserts and commits `count` events of another aggregate type than the probes.
async fn insert_noise(owner: &PgPool, tenant: TenantId, count: i64) -> i64 {
    sqlx::query_scalar(
        "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, actor, command_id, correlation_id)
         select $1, 'noise', 'n-' || n, 1, 'Noise', '1', '{}', 'test', gen_random_uuid(), gen_random_uuid()
         from generate_series(1, $2) as n
         returning global_position",
    )
    .bind(tenant.as_uuid())
    .bind(count)
    .fetch_all(owner)
    .await
    .unwrap()
    .into_iter()
    .max()
    .unwrap()
}

/// A tail filtered to some aggregate types moves past the others once idle, so that it does not
/// scan them again on every poll; and it never moves past a transaction still running.
#[tokio::test]
async fn an_idle_filtered_tail_moves_past_other_events_but_not_past_running_transactions() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let mut first = fx.owner.begin().await.unwrap();
    let first_probe = insert_raw(&mut first, tenant, "p1", 1).await;
    first.commit().await.unwrap();
    let probes = LogFilter::default()
        .tenant(tenant)
        .aggregate_types(["probe"]);
    let mut tail = fx
        .reader
        .tail(LogPosition::START, probes)
        .batch_size(10)
        .poll_interval(Duration::from_millis(5));
    assert_eq!(
        positions(&tail.next_batch().await.unwrap()),
        vec![first_probe]
    );

    // A probe whose transaction stays open while other events commit after it.
    let mut slow = fx.owner.begin().await.unwrap();
    let slow_probe = insert_raw(&mut slow, tenant, "p2", 1).await;
    let noise = insert_noise(&fx.owner, tenant, 50).await;
    idle(&mut tail).await;
    let noise_position: (u64, i64) = sqlx::query_as(
        "select transaction_id::text::bigint, global_position from events where global_position = $1",
    )
    .bind(noise)
    .fetch_one(&fx.owner)
    .await
    .map(|(tx, position): (i64, i64)| (tx as u64, position))
    .unwrap();
    assert!(
        tail.position().transaction_id < noise_position.0,
        "the tail moved past a running transaction: {:?}",
        tail.position()
    );
    slow.commit().await.unwrap();
    assert_eq!(
        positions(&tail.next_batch().await.unwrap()),
        vec![slow_probe]
    );

    // Idle again: once no transaction of the cluster older than the noise runs (other tests share
    // the server), the tail is past the noise.
    let past_noise = LogPosition {
        transaction_id: noise_position.0,
        global_position: noise_position.1,
    };
    for _ in 0..50 {
        idle(&mut tail).await;
        if tail.position() > past_noise {
            break;
        }
    }
    assert!(
        tail.position() > past_noise,
        "the idle tail is still before the other events: {:?}",
        tail.position()
    );
    let mut last = fx.owner.begin().await.unwrap();
    let last_probe = insert_raw(&mut last, tenant, "p3", 1).await;
    last.commit().await.unwrap();
    assert_eq!(
        positions(&tail.next_batch().await.unwrap()),
        vec![last_probe]
    );
}

/// Lets `tail` wait for 200 ms, in which it must find nothing.
async fn idle(tail: &mut vextrus_commands::LogTail) {
    let nothing = tokio::time::timeout(Duration::from_millis(200), tail.next_batch()).await;
    assert!(nothing.is_err(), "no probe is readable yet");
}

/// With `report_skips`, a filtered tail that moved past events it does not want says so with an
/// empty batch (its consumer may record the position), and still returns what it wants.
#[tokio::test]
async fn a_tail_reporting_skips_returns_an_empty_batch_once_past_other_events() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let probes = LogFilter::default()
        .tenant(tenant)
        .aggregate_types(["probe"]);
    let mut tail = fx
        .reader
        .tail(LogPosition::START, probes)
        .batch_size(10)
        .poll_interval(Duration::from_millis(5))
        .report_skips(Duration::ZERO);
    let noise = insert_noise(&fx.owner, TenantId::new(), 3).await;
    until_readable(&fx, noise).await;
    let (transaction_id, global_position): (i64, i64) = sqlx::query_as(
        "select transaction_id::text::bigint, global_position from events where global_position = $1",
    )
    .bind(noise)
    .fetch_one(&fx.owner)
    .await
    .unwrap();
    let noise = LogPosition {
        transaction_id: transaction_id as u64,
        global_position,
    };
    // Once no older transaction of the cluster runs (other tests share the server), the tail is
    // past the noise and reports it.
    let reported = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let batch = tail.next_batch().await.unwrap();
            assert!(batch.is_empty(), "only probes are wanted: {batch:?}");
            if tail.position() >= noise {
                break;
            }
        }
    })
    .await;
    assert!(reported.is_ok(), "no empty batch past the noise");
    let mut probe = fx.owner.begin().await.unwrap();
    let probe_position = insert_raw(&mut probe, tenant, "p1", 1).await;
    probe.commit().await.unwrap();
    let wanted = loop {
        let batch = tail.next_batch().await.unwrap();
        if !batch.is_empty() {
            break batch;
        }
    };
    assert_eq!(positions(&wanted), vec![probe_position]);
}

/// A tail that keeps up reads at most once per pace, so that what a busy log appends meanwhile
/// comes in one batch; a tail that is behind (its last read filled a batch) reads on at once.
#[tokio::test]
async fn a_tail_that_keeps_up_reads_once_per_pace_and_one_behind_reads_on() {
    let fx = fixture().await;
    let pace = Duration::from_secs(2);
    let mut tail = fx
        .reader
        .tail(LogPosition::START, LogFilter::default())
        .batch_size(2)
        .poll_interval(Duration::from_millis(5))
        .pace(pace);

    // Behind: three events in batches of two; the read after a full batch does not wait. The
    // clock starts once all three are readable: the watermark counts every transaction of the
    // cluster, and a concurrent test's may hold it below them for a while (a read then finds
    // nothing, rightly, and the tail waits its pace).
    let third = insert_noise(&fx.owner, TenantId::new(), 3).await;
    until_readable(&fx, third).await;
    let started = std::time::Instant::now();
    assert_eq!(tail.next_batch().await.unwrap().len(), 2);
    let rest = tail.next_batch().await.unwrap();
    assert_eq!(positions(&rest), vec![third]);
    assert!(
        started.elapsed() < pace,
        "a tail behind read on without pacing: {:?}",
        started.elapsed()
    );

    // Caught up (the last read found less than a batch): events appended one by one meanwhile
    // are read together, no sooner than the pace after that read.
    let caught_up = std::time::Instant::now();
    let first = insert_noise(&fx.owner, TenantId::new(), 1).await;
    let second = insert_noise(&fx.owner, TenantId::new(), 1).await;
    until_readable(&fx, second).await;
    let batch = tail.next_batch().await.unwrap();
    assert!(
        caught_up.elapsed() >= pace - Duration::from_millis(100),
        "read {:?} after the caught-up read",
        caught_up.elapsed()
    );
    assert_eq!(positions(&batch), vec![first, second]);
}

/// `serve` analyzes the log itself once it has doubled, without waiting for autovacuum's next
/// round: the log reader's plans depend on those statistics.
#[tokio::test]
async fn serve_analyzes_a_growing_log_without_waiting_for_autovacuum() {
    let app = crate::http::spawn_app().await;
    // Counts `analyze` statements only; autovacuum's are `autoanalyze_count`.
    let analyzed = || async {
        sqlx::query_scalar::<_, i64>(
            "select analyze_count from pg_stat_user_tables where relid = 'events'::regclass",
        )
        .fetch_one(&app.owner)
        .await
        .unwrap()
    };
    let before = analyzed().await;
    // More rows than the log held at its last analyze, and at least 1,000.
    insert_noise(&app.owner, TenantId::new(), 1_100).await;
    let after = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let now = analyzed().await;
            if now > before {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the server analyzed the log");
    assert!(after > before);
    app.shutdown().await;
}

/// The plan of a page read after the log's first event, through a connection from `pool` that
/// prices index reads high, as `EXPLAIN (FORMAT JSON)` prints it.
async fn page_plan(pool: &PgPool, filter: &LogFilter) -> String {
    let mut connection = pool.acquire().await.unwrap();
    // Index pages priced as if each were a disk seek and sequential pages nearly free.
    sqlx::raw_sql("set random_page_cost = 1000; set seq_page_cost = 0.01")
        .execute(&mut *connection)
        .await
        .unwrap();
    let statement = vextrus_commands::log::page_statement(filter);
    sqlx::query(&format!("prepare page as {statement}"))
        .execute(&mut *connection)
        .await
        .unwrap();
    let tenant = TenantId::new();
    let arguments = match (&filter.tenant, &filter.aggregate_types) {
        (None, None) => "'1', 1, 1000".to_owned(),
        (Some(_), None) => format!("'1', 1, '{}', 1000", tenant.as_uuid()),
        (None, Some(_)) => "'1', 1, array['organization'], 1000".to_owned(),
        (Some(_), Some(_)) => format!(
            "'1', 1, '{}', array['organization'], 1000",
            tenant.as_uuid()
        ),
    };
    // Six executions: past the five after which PostgreSQL may choose its generic plan.
    for _ in 0..6 {
        sqlx::query(&format!("execute page({arguments})"))
            .execute(&mut *connection)
            .await
            .unwrap();
    }
    let plan: serde_json::Value =
        sqlx::query_scalar(&format!("explain (format json) execute page({arguments})"))
            .fetch_one(&mut *connection)
            .await
            .unwrap();
    sqlx::query("deallocate page")
        .execute(&mut *connection)
        .await
        .unwrap();
    plan.to_string()
}

/// A page read walks an index in commit order whatever the planner estimates. Here an ordinary
/// connection is made to prefer a scan of the whole log and a sort by its cost settings (as stale
/// statistics of a young log made it do); the log reader's connections, with the same costs,
/// still walk the index.
#[tokio::test]
async fn page_reads_walk_an_index_whatever_the_planner_estimates() {
    let fx = fixture().await;
    insert_noise(&fx.owner, TenantId::new(), 5_000).await;
    sqlx::query("analyze events")
        .execute(&fx.owner)
        .await
        .unwrap();
    let ordinary = fx.db.role_pool(DbRole::Projector, 1).await.unwrap();
    let reader = fx.db.log_reader_pool(1).await.unwrap();
    let unfiltered = LogFilter::default();
    let ordinary_plan = page_plan(&ordinary, &unfiltered).await;
    assert!(
        ordinary_plan.contains("Sort") || ordinary_plan.contains("Seq Scan"),
        "an ordinary connection with these costs scans and sorts: {ordinary_plan}"
    );
    for filter in [
        unfiltered,
        LogFilter::default().tenant(TenantId::new()),
        LogFilter::default().aggregate_types(["organization"]),
        LogFilter::default()
            .tenant(TenantId::new())
            .aggregate_types(["organization"]),
    ] {
        let plan = page_plan(&reader, &filter).await;
        assert!(
            plan.contains("Index Scan")
                && !plan.contains("Sort")
                && !plan.contains("Seq Scan")
                && !plan.contains("Bitmap"),
            "{filter:?}: {plan}"
        );
    }
    // And the reader reads them, in commit order.
    let page = fx
        .reader
        .read_batch(LogPosition::default(), &LogFilter::default(), 10_000)
        .await
        .unwrap();
    assert_eq!(page.len(), 5_000);
    assert!(page.windows(2).all(|w| w[0].position() < w[1].position()));
}
