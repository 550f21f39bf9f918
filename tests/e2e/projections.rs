//! Projections: the organization hierarchy read model, its row-level security, poison events and
//! crash recovery.

use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use vextrus_commands::{DbRole, LogPosition, LogReader, RecordedEvent, tenant};
use vextrus_domain::TenantId;
use vextrus_domain::ids::{DivisionId, ProjectId, SiteId};
use vextrus_domain::organization::OrganizationCommand;
use vextrus_projections::finance::GeneralLedger;
use vextrus_projections::organization::OrganizationHierarchy;
use vextrus_projections::{
    Column, Fields, Projection, ProjectionError, ProjectionRunner, ProjectionState,
    ProjectionStatus, Row, RowReader, Sql, col,
};

use crate::support::*;

/// A running projection and the means to stop it.
struct Running {
    status: watch::Receiver<ProjectionStatus>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn start<P: Projection>(fx: &Fixture, projection: P, batch_size: u32) -> Running {
    let pool = fx.db.role_pool(DbRole::Projector, 2).await.unwrap();
    let reader = LogReader::new(pool.clone()).with_wakeup(fx.store.append_signal());
    let runner = ProjectionRunner::new(projection, pool, reader)
        .batch_size(batch_size)
        .poll_interval(Duration::from_millis(20));
    let status = runner.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        runner.run(async { drop(stopped.await) }).await.unwrap();
    });
    Running { status, stop, task }
}

impl Running {
    /// Waits until the projection has applied `events` events in all, or has stopped.
    async fn until_applied(&mut self, events: u64) -> ProjectionStatus {
        let reached = self.status.wait_for(|s| {
            s.events_applied >= events || matches!(s.state, ProjectionState::Stopped { .. })
        });
        tokio::time::timeout(Duration::from_secs(30), reached)
            .await
            .expect("projection progress")
            .unwrap()
            .clone()
    }

    async fn shut_down(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Builds MBL → DHK → PADMA (sites S1, S2) and RP; renames S1, moves S2 to RP, archives it.
/// Returns the number of events written.
async fn build_hierarchy(fx: &Fixture, tenant: TenantId) -> u64 {
    let (_, id) = fx.create_organization(tenant, "MBL").await;
    let (division, padma, rooppur) = (DivisionId::new(), ProjectId::new(), ProjectId::new());
    let (s1, s2) = (SiteId::new(), SiteId::new());
    let commands = [
        OrganizationCommand::CreateDivision {
            division_id: division,
            name: name("Dhaka"),
            code: code("DHK"),
        },
        OrganizationCommand::CreateProject {
            division_id: division,
            project_id: padma,
            name: name("Padma"),
            code: code("PADMA"),
        },
        OrganizationCommand::CreateProject {
            division_id: division,
            project_id: rooppur,
            name: name("Rooppur"),
            code: code("RP"),
        },
        OrganizationCommand::CreateSite {
            project_id: padma,
            site_id: s1,
            name: name("Mawa"),
            code: code("S1"),
        },
        OrganizationCommand::CreateSite {
            project_id: padma,
            site_id: s2,
            name: name("Janjira"),
            code: code("S2"),
        },
        OrganizationCommand::RenameSite {
            site_id: s1,
            name: name("Mawa Ghat"),
        },
        OrganizationCommand::MoveSite {
            site_id: s2,
            to_project_id: rooppur,
        },
        OrganizationCommand::ArchiveSite { site_id: s2 },
    ];
    for command in commands {
        fx.execute(tenant, &id, command, &metadata(), None)
            .await
            .unwrap();
    }
    9
}

#[tokio::test]
async fn the_hierarchy_read_model_follows_the_commands() {
    let fx = fixture().await;
    let tenant = TenantId::new();
    let events = build_hierarchy(&fx, tenant).await;
    let mut running = start(&fx, OrganizationHierarchy, 500).await;
    let status = running.until_applied(events).await;
    assert_eq!(status.state, ProjectionState::Running);

    let reader = fx.db.role_pool(DbRole::Reader, 1).await.unwrap();
    let mut tx = tenant::begin(&reader, tenant).await.unwrap();
    let sites: Vec<(String, String, String, String, i64, String)> = sqlx::query_as(
        "select code, name, path, status, version, created_by from org_sites order by code",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        sites,
        vec![
            (
                "S1".into(),
                "Mawa Ghat".into(),
                "MBL/DHK/PADMA/S1".into(),
                "active".into(),
                7,
                "user-7".into()
            ),
            (
                "S2".into(),
                "Janjira".into(),
                "MBL/DHK/RP/S2".into(),
                "archived".into(),
                9,
                "user-7".into()
            ),
        ]
    );
    let (org_version, bin): (i64, String) =
        sqlx::query_as("select version, bin from org_organizations")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(
        (org_version, bin.as_str()),
        (9, "002871821-0101"),
        "the organization carries the stream version"
    );
    let projects: Vec<String> = sqlx::query_scalar("select path from org_projects order by path")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(projects, vec!["MBL/DHK/PADMA", "MBL/DHK/RP"]);
    tx.rollback().await.unwrap();
    running.shut_down().await;
}

#[tokio::test]
async fn each_read_model_table_shows_a_reader_only_its_tenant() {
    let fx = fixture().await;
    let (a, b) = (TenantId::new(), TenantId::new());
    let events = build_hierarchy(&fx, a).await + build_hierarchy(&fx, b).await;
    let mut running = start(&fx, OrganizationHierarchy, 500).await;
    running.until_applied(events).await;
    running.shut_down().await;

    let reader = fx.db.role_pool(DbRole::Reader, 1).await.unwrap();
    for table in READ_MODELS {
        let unscoped: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&reader)
            .await
            .unwrap();
        assert_eq!(unscoped, 0, "{table}: no tenant set, no rows");

        let mut tx = tenant::begin(&reader, a).await.unwrap();
        let tenants: Vec<uuid::Uuid> =
            sqlx::query_scalar(&format!("select distinct tenant_id from {table}"))
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        assert_eq!(tenants, vec![a.as_uuid()], "{table}: tenant A sees only A");
        tx.rollback().await.unwrap();
    }

    // The projector is bound the same way: it cannot write a row for another tenant.
    let projector = fx.db.role_pool(DbRole::Projector, 1).await.unwrap();
    let mut tx = tenant::begin(&projector, a).await.unwrap();
    let error =
        sqlx::query("update org_organizations set name = 'x' where tenant_id = $1 returning 1")
            .bind(b.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .unwrap();
    assert!(
        error.is_none(),
        "B's rows are invisible to a projector in A"
    );
}

/// Counts every event per tenant; for checking that one projection's stop does not stop another.
#[derive(Clone)]
struct EventCounter;

#[derive(Default)]
struct EventCount(i64);

impl Row for EventCount {
    type Key = ();
    const TABLE: &'static str = "test_event_counts";
    const KEY: &'static [Column] = &[];
    const COLUMNS: &'static [Column] = &[col("events", Sql::Int8).additive()];
    fn write_key((): &(), _: &mut impl Fields) {}
    fn write(&self, out: &mut impl Fields) {
        out.int8(self.0);
    }
    fn read(row: &mut RowReader<'_>) -> Result<((), Self), sqlx::Error> {
        Ok(((), Self(row.int8()?)))
    }
}

vextrus_projections::read_model! {
    struct EventCounts {
        counts: Counters<EventCount>,
    }
}

impl Projection for EventCounter {
    const NAME: &'static str = "test_event_counter";
    const VERSION: i32 = 1;
    const AGGREGATE_TYPES: &'static [&'static str] = &["organization"];

    type Rows = EventCounts;

    fn apply(&self, rows: &mut Self::Rows, event: &RecordedEvent) -> Result<(), ProjectionError> {
        rows.counts
            .add(event.tenant_id.as_uuid(), (), |count| count.0 += 1);
        Ok(())
    }
}

#[tokio::test]
async fn a_poison_event_stops_its_projection_at_that_event_and_not_the_others() {
    let fx = fixture().await;
    sqlx::raw_sql(
        "create table test_event_counts (tenant_id uuid primary key, events bigint not null);
         grant select, insert, update on test_event_counts to vextrus_projector;",
    )
    .execute(&fx.owner)
    .await
    .unwrap();
    let tenant = TenantId::new();
    let before = build_hierarchy(&fx, tenant).await;
    let poison: i64 = sqlx::query_scalar(
        "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                             actor, command_id, correlation_id)
         values ($1, 'organization', gen_random_uuid()::text, 1, 'OrganizationCreated', '1', '{\"garbage\": true}',
                 'test', gen_random_uuid(), gen_random_uuid())
         returning global_position",
    )
    .bind(tenant.as_uuid())
    .fetch_one(&fx.owner)
    .await
    .unwrap();
    let after = build_hierarchy(&fx, TenantId::new()).await;

    let mut hierarchy = start(&fx, OrganizationHierarchy, 4).await;
    let mut counter = start(&fx, EventCounter, 4).await;
    let stopped = hierarchy.until_applied(u64::MAX).await;
    match &stopped.state {
        ProjectionState::Stopped { at, reason } => {
            assert_eq!(at.get(), poison);
            assert!(reason.contains("OrganizationCreated"), "{reason}");
        }
        other => panic!("expected a stop, got {other:?}"),
    }
    assert_eq!(
        stopped.events_applied, before,
        "everything before the poison event was applied"
    );
    let counted = counter.until_applied(before + 1 + after).await;
    assert_eq!(
        counted.state,
        ProjectionState::Running,
        "the other projection ran on past the poison event"
    );

    let (state, stopped_at): (String, Option<i64>) =
        sqlx::query_as("select state, stopped_at from projection_checkpoints where projection = 'organization_hierarchy'")
            .fetch_one(&fx.owner)
            .await
            .unwrap();
    assert_eq!((state.as_str(), stopped_at), ("stopped", Some(poison)));
    let organizations: i64 = sqlx::query_scalar("select count(*) from org_organizations")
        .fetch_one(&fx.owner)
        .await
        .unwrap();
    assert_eq!(
        organizations, 1,
        "nothing after the poison event was applied"
    );
    hierarchy.shut_down().await;
    counter.shut_down().await;
}

#[tokio::test]
async fn a_runner_moves_its_checkpoint_over_events_of_other_types() {
    // The ledger's runner sees only hierarchy commands: it applies nothing, but its checkpoint
    // must follow the log, or each start and each lag query would read the log again from the
    // ledger's last event.
    let fx = fixture().await;
    let mut ledger = start(&fx, GeneralLedger, 100).await;
    build_hierarchy(&fx, TenantId::new()).await;
    let (transaction_id, global_position): (i64, i64) = sqlx::query_as(
        "select transaction_id::text::bigint, global_position from events
         order by transaction_id desc, global_position desc limit 1",
    )
    .fetch_one(&fx.owner)
    .await
    .unwrap();
    let head = LogPosition {
        transaction_id: transaction_id as u64,
        global_position,
    };
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        ledger.status.wait_for(|status| status.position == head),
    )
    .await
    .expect("the ledger's position reaches the log's head")
    .unwrap()
    .clone();
    assert_eq!(status.events_applied, 0, "{status:?}");
    let saved: (i64, i64) = sqlx::query_as(
        "select transaction_id::text::bigint, global_position from projection_checkpoints
         where projection = 'general_ledger'",
    )
    .fetch_one(&fx.owner)
    .await
    .unwrap();
    assert_eq!(
        saved,
        (transaction_id, global_position),
        "saved as the checkpoint"
    );
    ledger.shut_down().await;
    let restarted = start(&fx, GeneralLedger, 100).await;
    let status = restarted
        .status
        .clone()
        .wait_for(|status| status.state == ProjectionState::Running)
        .await
        .unwrap()
        .clone();
    assert_eq!(status.position, head, "a restart goes on from there");
    restarted.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_stream_resumes_to_the_same_tables_as_an_uninterrupted_run() {
    let fx = fixture().await;
    let mut events = 0;
    for _ in 0..6 {
        events += build_hierarchy(&fx, TenantId::new()).await;
    }
    let mut jitter = Jitter::new(random_seed());
    let mut kills = 0;
    loop {
        let running = start(&fx, OrganizationHierarchy, 3).await;
        tokio::time::sleep(Duration::from_millis(jitter.below(40))).await;
        if running.status.borrow().events_applied >= events {
            running.shut_down().await;
            break;
        }
        // Killed wherever it is, possibly inside a batch's transaction.
        running.task.abort();
        let _ = running.task.await;
        kills += 1;
        if kills > 50 {
            let mut running = start(&fx, OrganizationHierarchy, 3).await;
            running.until_applied(events).await;
            running.shut_down().await;
            break;
        }
    }
    let interrupted: Vec<String> = dump_read_models(&fx.owner).await;

    // Rebuild from scratch without interruption and compare.
    sqlx::raw_sql(
        "truncate org_organizations, org_divisions, org_projects, org_sites;
         delete from projection_checkpoints where projection = 'organization_hierarchy';",
    )
    .execute(&fx.owner)
    .await
    .unwrap();
    let mut running = start(&fx, OrganizationHierarchy, 500).await;
    running.until_applied(events).await;
    running.shut_down().await;
    assert_eq!(
        dump_read_models(&fx.owner).await,
        interrupted,
        "killed {kills} times"
    );
}
