//! Shared fixtures: a fresh database with the store and the log reader on their own roles.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Barrier;
use uuid::Uuid;
use vextrus::testkit::TestDatabase;
use vextrus_commands::{
    ActorId, CommandMetadata, CommandOutcome, DbRole, EventStore, ExecuteError, LogReader, Version,
};
use vextrus_domain::TenantId;
use vextrus_domain::ids::OrganizationId;
use vextrus_domain::organization::{
    NewOrganization, Organization, OrganizationCommand, OrganizationError,
};
use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};

pub struct Fixture {
    pub db: TestDatabase,
    /// The store on a `vextrus_writer` pool.
    pub store: EventStore,
    /// A reader on a log reader's pool (`vextrus_projector`, its plan settings), woken by the
    /// store's appends.
    pub reader: LogReader,
    /// The table owner, for raw SQL that application roles may not run.
    pub owner: PgPool,
}

pub async fn fixture() -> Fixture {
    let db = TestDatabase::new().await.expect("a fresh test database");
    let store = EventStore::new(db.role_pool(DbRole::Writer, 20).await.unwrap());
    let reader =
        LogReader::new(db.log_reader_pool(4).await.unwrap()).with_wakeup(store.append_signal());
    let owner = db.owner_pool().await.unwrap();
    Fixture {
        db,
        store,
        reader,
        owner,
    }
}

pub type Outcome = Result<CommandOutcome, ExecuteError<OrganizationError>>;

impl Fixture {
    /// Executes one command on the organization stream `id` of `tenant`.
    pub async fn execute(
        &self,
        tenant: TenantId,
        id: &str,
        command: OrganizationCommand,
        metadata: &CommandMetadata,
        expected: Option<Version>,
    ) -> Outcome {
        self.store
            .execute::<Organization>(tenant, id, command, &(), metadata, expected)
            .await
    }

    /// Creates an organization with `code` in `tenant`; returns its id and its stream id.
    pub async fn create_organization(
        &self,
        tenant: TenantId,
        code: &str,
    ) -> (OrganizationId, String) {
        let org = OrganizationId::new();
        let id = org.to_string();
        self.execute(
            tenant,
            &id,
            create_organization(org, code),
            &metadata(),
            None,
        )
        .await
        .unwrap();
        (org, id)
    }
}

/// Runs `count` tasks that start at the same moment (behind a barrier); their results in order.
pub async fn race<T, F, Fut>(count: usize, task: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let start = Arc::new(Barrier::new(count));
    let handles: Vec<_> = (0..count)
        .map(|n| {
            let (start, task) = (Arc::clone(&start), task(n));
            tokio::spawn(async move {
                start.wait().await;
                task.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(count);
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

pub fn metadata() -> CommandMetadata {
    CommandMetadata::new(ActorId::parse("user-7").unwrap()).with_request_id("req-1")
}

pub fn create_organization(organization_id: OrganizationId, code: &str) -> OrganizationCommand {
    OrganizationCommand::CreateOrganization(NewOrganization {
        organization_id,
        name: Name::parse("Meghna Builders Ltd").unwrap(),
        code: Code::parse(code).unwrap(),
        bin: Bin::parse("002871821-0101").unwrap(),
        tin: Tin::parse("123456789012").unwrap(),
        base_currency: CurrencyCode::bdt(),
        fiscal_year_start: FiscalYearStart::default(),
    })
}

pub fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

pub fn code(s: &str) -> Code {
    Code::parse(s).unwrap()
}

/// Number of rows in `events`, counted by the owner (all tenants).
pub async fn event_count(owner: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from events")
        .fetch_one(owner)
        .await
        .unwrap()
}

/// A deterministic pseudo-random sequence (xorshift), so a failing timing can be replayed from
/// its printed seed.
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

pub fn random_seed() -> u64 {
    Uuid::now_v7().as_u128() as u64
}

/// The organization hierarchy's read-model tables.
pub const READ_MODELS: [&str; 4] = [
    "org_organizations",
    "org_divisions",
    "org_projects",
    "org_sites",
];

/// Every row of a read-model table as JSON text, ordered, seen by the owner (all tenants).
pub async fn dump(owner: &PgPool, table: &str) -> String {
    sqlx::query_scalar(&format!(
        "select coalesce(json_agg(t order by t.tenant_id, t.path)::text, '[]') from {table} t"
    ))
    .fetch_one(owner)
    .await
    .unwrap()
}

/// [`dump`] of every read-model table.
pub async fn dump_read_models(owner: &PgPool) -> Vec<String> {
    let mut tables = Vec::new();
    for table in READ_MODELS {
        tables.push(dump(owner, table).await);
    }
    tables
}

/// Waits until every transaction that had started by now has finished. The watermark counts
/// every running transaction of the cluster, other tests' included, so exact reads wait for it.
pub async fn settle(owner: &PgPool) {
    let horizon: String =
        sqlx::query_scalar("select pg_snapshot_xmax(pg_current_snapshot())::text")
            .fetch_one(owner)
            .await
            .unwrap();
    settle_past(owner, horizon.parse::<u64>().unwrap() - 1).await;
}

/// Waits until the watermark has passed transaction `xid`.
pub async fn settle_past(owner: &PgPool, xid: u64) {
    let passed = async {
        loop {
            let xmin: String =
                sqlx::query_scalar("select pg_snapshot_xmin(pg_current_snapshot())::text")
                    .fetch_one(owner)
                    .await
                    .unwrap();
            if xmin.parse::<u64>().unwrap() > xid {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), passed)
        .await
        .expect("other transactions finished");
}
