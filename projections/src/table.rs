//! The three kinds of read-model tables (design.md D11), each holding rows of one declared
//! [`Row`] type in memory for a batch (for a replay: the whole read model), and writing them
//! with statements derived from the declaration:
//!
//! - [`Table`]: **state rows**, loaded by key, changed in place, saved whole (upsert) or deleted.
//!   A row must be owned by one stream: two Kafka workers saving the same row would each write
//!   what they loaded plus their own change.
//! - [`Counters`]: **additive rows** many streams feed: never loaded; a batch adds its deltas
//!   (`c = c + excluded.c`), so concurrent workers cannot lose an update. A replay builds them
//!   from zero and writes the totals.
//! - [`Lines`]: **insert-only facts**, one row each, never updated.
//!
//! On the live tables (schema `public`, forced row-level security) rows are loaded and written
//! one tenant at a time with that tenant set on the transaction; on a replay's shadow tables,
//! all tenants in one statement. Multi-row statements go in key order, so two transactions
//! writing the same rows lock them in the same order.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use vextrus_commands::tenant;
use vextrus_domain::TenantId;

use crate::arrays::Arrays;
use crate::columns::{Column, Declaration, Expect, Fields, Row, RowReader, TENANT, all_columns};
use crate::copy::CopyIn;
use crate::projection::{SHADOW_SCHEMA, Target};

/// A row's key with its tenant.
type Keyed<R> = (Uuid, <R as Row>::Key);
/// Maps keyed by rows' keys: foldhash rather than SipHash, seeded per process. A replay hashes
/// every key of a read model several times: with SipHash, hashing was about a tenth of the
/// apply loop's CPU under `perf` (README, "Replay").
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// One table of a read model, of any kind: what [`read_model!`](crate::read_model) needs to
/// load, save and copy a projection's tables.
pub trait ReadModelTable: Default + Send + Sync {
    /// What the migration must declare.
    fn declaration() -> Declaration;
    /// Loads the rows asked for since the last load (state rows only).
    fn load(
        &mut self,
        conn: &mut PgConnection,
        target: Target,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Writes what changed since the last save; returns the rows written.
    fn save(
        &mut self,
        conn: &mut PgConnection,
        target: Target,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
    /// How many rows the next save or COPY writes (at most).
    fn pending(&self) -> usize;
    /// Writes what changed since the last save into the freshly prepared shadow table with one
    /// binary `COPY … FREEZE` (the caller truncated the table in the same transaction:
    /// [`copy_table`]); returns the rows written.
    fn copy_to_shadow(
        &mut self,
        conn: &mut PgConnection,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
}

/// State rows of one table. Rows are boxed: a replay holds every row of the read model, and
/// growing the map then moves keys and pointers only.
pub struct Table<R: Row> {
    rows: HashMap<Keyed<R>, Box<R>>,
    changed: HashSet<Keyed<R>>,
    deleted: HashSet<Keyed<R>>,
    wanted: BTreeMap<Uuid, Vec<R::Key>>,
}

impl<R: Row> Default for Table<R> {
    fn default() -> Self {
        Self {
            rows: HashMap::default(),
            changed: HashSet::default(),
            deleted: HashSet::default(),
            wanted: BTreeMap::new(),
        }
    }
}

impl<R: Row> std::fmt::Debug for Table<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("table", &R::TABLE)
            .field("rows", &self.rows.len())
            .field("changed", &self.changed.len())
            .field("deleted", &self.deleted.len())
            .finish()
    }
}

impl<R: Row> Table<R> {
    pub fn get(&self, tenant: Uuid, key: &R::Key) -> Option<&R> {
        // The map is keyed by the pair; the clone is of a key (a UUID or a few of them).
        self.rows.get(&(tenant, key.clone())).map(|row| &**row)
    }

    /// Asks for the row at `key` to be loaded by the next [`load`](ReadModelTable::load),
    /// unless it is in memory already.
    pub fn want(&mut self, tenant: Uuid, key: &R::Key) {
        if !self.rows.contains_key(&(tenant, key.clone())) {
            self.wanted.entry(tenant).or_default().push(key.clone());
        }
    }

    /// Adds or replaces a row.
    pub fn insert(&mut self, tenant: Uuid, key: R::Key, row: R) {
        let keyed = (tenant, key);
        self.deleted.remove(&keyed);
        self.changed.insert(keyed.clone());
        self.rows.insert(keyed, Box::new(row));
    }

    /// Changes an existing row in place; `None` (and nothing changed) when there is none.
    pub fn change<T>(
        &mut self,
        tenant: Uuid,
        key: &R::Key,
        change: impl FnOnce(&mut R) -> T,
    ) -> Option<T> {
        let keyed = (tenant, key.clone());
        let row = self.rows.get_mut(&keyed)?;
        let changed = change(row);
        self.changed.insert(keyed);
        Some(changed)
    }

    /// Removes a row; the next save deletes it.
    pub fn remove(&mut self, tenant: Uuid, key: &R::Key) -> Option<R> {
        let keyed = (tenant, key.clone());
        let row = self.rows.remove(&keyed)?;
        self.changed.remove(&keyed);
        self.deleted.insert(keyed);
        Some(*row)
    }

    /// Rows in memory.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl<R: Row> ReadModelTable for Table<R> {
    fn declaration() -> Declaration {
        Declaration::of::<R>()
    }

    fn pending(&self) -> usize {
        self.changed.len() + self.deleted.len()
    }

    async fn load(&mut self, conn: &mut PgConnection, target: Target) -> Result<(), sqlx::Error> {
        let columns: Vec<Column> = R::KEY.iter().chain(R::COLUMNS).copied().collect();
        let select: Vec<&str> = columns.iter().map(|column| column.name).collect();
        for (tenant, mut keys) in std::mem::take(&mut self.wanted) {
            keys.sort_unstable();
            keys.dedup();
            keys.retain(|key| !self.rows.contains_key(&(tenant, key.clone())));
            if keys.is_empty() {
                continue;
            }
            if target == Target::Live {
                tenant::switch(conn, TenantId::from_uuid(tenant)).await?;
            }
            let mut wanted = Arrays::new(Expect::new(R::TABLE, R::KEY.to_vec()), keys.len());
            for key in &keys {
                R::write_key(key, &mut wanted);
                wanted.end_row()?;
            }
            // One tenant per statement, each wanted key one primary-key lookup in a LATERAL
            // subquery with LIMIT, which the planner cannot turn into a join over the whole
            // table. (`key = any($2)` and `(keys) in (select * from unnest(…))` could: a
            // prepared statement's generic plan, made while the table was small, read the
            // tenant's whole table on every batch; `vextrus bench http` found it.) The wanted
            // keys are bound; none of this text comes from data.
            let table = format!("{}.{}", target.schema(), R::TABLE);
            let names: Vec<&str> = R::KEY.iter().map(|column| column.name).collect();
            let sql = if names.is_empty() {
                // One row per tenant.
                format!(
                    "select {} from {table} where tenant_id = $1",
                    select.join(", ")
                )
            } else {
                let matches: Vec<String> = names
                    .iter()
                    .map(|name| format!(" and r.{name} = w.{name}"))
                    .collect();
                let chosen: Vec<String> = select.iter().map(|name| format!("r.{name}")).collect();
                format!(
                    "select f.* from unnest({}) as w({}) cross join lateral \
                     (select {} from {table} r where r.tenant_id = $1{} limit 1) as f",
                    wanted.parameters(2).join(", "),
                    names.join(", "),
                    chosen.join(", "),
                    matches.concat()
                )
            };
            let found = wanted
                .bind(sqlx::query(&sql).bind(tenant))
                .fetch_all(&mut *conn)
                .await?;
            for row in &found {
                let (key, loaded) = R::read(&mut RowReader::new(row, R::TABLE, &columns))?;
                self.rows.insert((tenant, key), Box::new(loaded));
            }
        }
        Ok(())
    }

    async fn save(&mut self, conn: &mut PgConnection, target: Target) -> Result<u64, sqlx::Error> {
        let mut written = 0;
        let mut changed: Vec<Keyed<R>> = self.changed.drain().collect();
        changed.sort_unstable();
        for (tenant, keys) in by_tenant(changed, target, |keyed| keyed.0) {
            let mut rows = Arrays::new(row_expect::<R>(), keys.len());
            for keyed in &keys {
                if let Some(row) = self.rows.get(keyed) {
                    write_row::<R>(&mut rows, keyed, row)?;
                }
            }
            written += upsert::<R>(conn, target, tenant, rows).await?;
        }
        let mut deleted: Vec<Keyed<R>> = self.deleted.drain().collect();
        deleted.sort_unstable();
        for (tenant, keys) in by_tenant(deleted, target, |keyed| keyed.0) {
            let mut rows = Arrays::new(key_expect::<R>(), keys.len());
            for (tenant, key) in &keys {
                rows.uuid(*tenant);
                R::write_key(key, &mut rows);
                rows.end_row()?;
            }
            let sql = format!(
                "delete from {}.{} where ({}) in (select * from {})",
                target.schema(),
                R::TABLE,
                rows.names(),
                rows.unnest(1)
            );
            written += run(conn, tenant, &sql, rows).await?;
        }
        Ok(written)
    }

    async fn copy_to_shadow(&mut self, conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
        self.deleted.clear();
        let mut keys: Vec<Keyed<R>> = self.changed.drain().collect();
        keys.sort_unstable();
        let mut copy = start_copy::<R>(conn).await?;
        for keyed in &keys {
            if let Some(row) = self.rows.get(keyed) {
                write_row::<R>(&mut copy, keyed, row)?;
                copy.end_row().await?;
            }
        }
        copy.finish().await
    }
}

/// Additive rows fed by many streams: a batch's deltas, added to the stored rows on save. Its
/// `add` is the only way in: nothing is loaded, so a counter cannot be read back during a batch.
pub struct Counters<R: Row + Default> {
    pending: HashMap<Keyed<R>, R>,
}

impl<R: Row + Default> Default for Counters<R> {
    fn default() -> Self {
        Self {
            pending: HashMap::default(),
        }
    }
}

impl<R: Row + Default> std::fmt::Debug for Counters<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("table", &R::TABLE)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<R: Row + Default> Counters<R> {
    /// Adds to the row at `key` (a zero row when the batch has none yet): `add` increments its
    /// additive columns and may set the others (which then replace the stored values).
    pub fn add(&mut self, tenant: Uuid, key: R::Key, add: impl FnOnce(&mut R)) {
        add(self.pending.entry((tenant, key)).or_default());
    }

    /// The delta at `key` not yet saved.
    pub fn pending(&self, tenant: Uuid, key: &R::Key) -> Option<&R> {
        self.pending.get(&(tenant, key.clone()))
    }

    /// Rows with deltas not yet saved.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

impl<R: Row + Default> ReadModelTable for Counters<R> {
    fn declaration() -> Declaration {
        Declaration::of::<R>()
    }

    fn pending(&self) -> usize {
        self.pending.len()
    }

    async fn load(&mut self, _: &mut PgConnection, _: Target) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn save(&mut self, conn: &mut PgConnection, target: Target) -> Result<u64, sqlx::Error> {
        let mut written = 0;
        let mut pending: Vec<(Keyed<R>, R)> = self.pending.drain().collect();
        pending.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        for (tenant, rows) in by_tenant(pending, target, |(keyed, _)| keyed.0) {
            let mut arrays = Arrays::new(row_expect::<R>(), rows.len());
            for (keyed, row) in &rows {
                write_row::<R>(&mut arrays, keyed, row)?;
            }
            written += upsert::<R>(conn, target, tenant, arrays).await?;
        }
        Ok(written)
    }

    async fn copy_to_shadow(&mut self, conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
        let mut pending: Vec<(Keyed<R>, R)> = self.pending.drain().collect();
        pending.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        let mut copy = start_copy::<R>(conn).await?;
        for (keyed, row) in &pending {
            write_row::<R>(&mut copy, keyed, row)?;
            copy.end_row().await?;
        }
        copy.finish().await
    }
}

/// Insert-only rows: each fact once, never updated.
pub struct Lines<R: Row> {
    pending: Vec<(Keyed<R>, R)>,
}

impl<R: Row> Default for Lines<R> {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
        }
    }
}

impl<R: Row> std::fmt::Debug for Lines<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines")
            .field("table", &R::TABLE)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<R: Row> Lines<R> {
    pub fn push(&mut self, tenant: Uuid, key: R::Key, row: R) {
        self.pending.push(((tenant, key), row));
    }

    /// Lines not yet saved.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The lines not yet saved, in the order they were pushed.
    pub fn pending(&self) -> impl Iterator<Item = &R> {
        self.pending.iter().map(|(_, row)| row)
    }
}

impl<R: Row> ReadModelTable for Lines<R> {
    fn declaration() -> Declaration {
        Declaration::of::<R>()
    }

    fn pending(&self) -> usize {
        self.pending.len()
    }

    async fn load(&mut self, _: &mut PgConnection, _: Target) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn save(&mut self, conn: &mut PgConnection, target: Target) -> Result<u64, sqlx::Error> {
        let mut written = 0;
        let pending = std::mem::take(&mut self.pending);
        for (tenant, rows) in by_tenant(pending, target, |(keyed, _)| keyed.0) {
            let mut arrays = Arrays::new(row_expect::<R>(), rows.len());
            for (keyed, row) in &rows {
                write_row::<R>(&mut arrays, keyed, row)?;
            }
            let sql = format!(
                "insert into {}.{} ({}) select * from {}",
                target.schema(),
                R::TABLE,
                arrays.names(),
                arrays.unnest(1)
            );
            written += run(conn, tenant, &sql, arrays).await?;
        }
        Ok(written)
    }

    async fn copy_to_shadow(&mut self, conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
        let mut copy = start_copy::<R>(conn).await?;
        for (keyed, row) in std::mem::take(&mut self.pending) {
            write_row::<R>(&mut copy, &keyed, &row)?;
            copy.end_row().await?;
        }
        copy.finish().await
    }
}

/// The tenant and key columns.
fn key_expect<R: Row>() -> Expect {
    let mut columns = vec![TENANT];
    columns.extend_from_slice(R::KEY);
    Expect::new(R::TABLE, columns)
}

/// Every column.
fn row_expect<R: Row>() -> Expect {
    Expect::new(R::TABLE, all_columns::<R>())
}

/// Writes a whole row (tenant, key, columns) into arrays; the row ends here.
fn write_row<R: Row>(
    out: &mut (impl Fields + EndRow),
    (tenant, key): &Keyed<R>,
    row: &R,
) -> Result<(), sqlx::Error> {
    out.uuid(*tenant);
    R::write_key(key, out);
    row.write(out);
    out.finish_row()
}

/// Ending a row where that needs no I/O (arrays); a COPY ends its rows itself, asynchronously.
trait EndRow {
    fn finish_row(&mut self) -> Result<(), sqlx::Error>;
}

impl EndRow for Arrays {
    fn finish_row(&mut self) -> Result<(), sqlx::Error> {
        self.end_row()
    }
}

impl EndRow for CopyIn<'_> {
    fn finish_row(&mut self) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

async fn start_copy<R: Row>(conn: &mut PgConnection) -> Result<CopyIn<'_>, sqlx::Error> {
    CopyIn::start(
        conn,
        &format!("{SHADOW_SCHEMA}.{}", R::TABLE),
        row_expect::<R>(),
    )
    .await
}

/// `insert … select * from unnest(…) on conflict (key) do update …`: replaced columns take the
/// new value, additive ones add it. `tenant`: set it first (live tables).
async fn upsert<R: Row>(
    conn: &mut PgConnection,
    target: Target,
    tenant: Option<Uuid>,
    rows: Arrays,
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let key: Vec<&str> = std::iter::once(TENANT.name)
        .chain(R::KEY.iter().map(|column| column.name))
        .collect();
    let updates: Vec<String> = R::COLUMNS
        .iter()
        .map(|column| {
            if column.additive {
                format!(
                    "{name} = {table}.{name} + excluded.{name}",
                    name = column.name,
                    table = R::TABLE
                )
            } else {
                format!("{name} = excluded.{name}", name = column.name)
            }
        })
        .collect();
    let conflict = if updates.is_empty() {
        "do nothing".to_owned()
    } else {
        format!("do update set {}", updates.join(", "))
    };
    let sql = format!(
        "insert into {schema}.{table} as {table} ({columns}) select * from {unnest}
         on conflict ({key}) {conflict}",
        schema = target.schema(),
        table = R::TABLE,
        columns = rows.names(),
        unnest = rows.unnest(1),
        key = key.join(", "),
    );
    run(conn, tenant, &sql, rows).await
}

/// Runs `sql` with `rows`' arrays bound, after setting `tenant` (live tables); returns the rows
/// it affected.
async fn run(
    conn: &mut PgConnection,
    tenant: Option<Uuid>,
    sql: &str,
    rows: Arrays,
) -> Result<u64, sqlx::Error> {
    if let Some(tenant) = tenant {
        tenant::switch(conn, TenantId::from_uuid(tenant)).await?;
    }
    Ok(rows
        .bind(sqlx::query(sql))
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// `items` grouped for writing: per tenant on the live tables (`Some`: set it first), all at once
/// on shadow tables (`None`); each group keeps the items' order.
fn by_tenant<T>(
    items: Vec<T>,
    target: Target,
    tenant: impl Fn(&T) -> Uuid,
) -> BTreeMap<Option<Uuid>, Vec<T>> {
    let mut groups: BTreeMap<Option<Uuid>, Vec<T>> = BTreeMap::new();
    for item in items {
        let group = (target == Target::Live).then(|| tenant(&item));
        groups.entry(group).or_default().push(item);
    }
    groups
}

/// One table's COPY into its shadow table, as [`copy_largest_first`] schedules it.
#[doc(hidden)]
pub type CopyFuture<'a> = Pin<Box<dyn Future<Output = Result<u64, sqlx::Error>> + Send + 'a>>;

/// What [`AfterCopy::after_copy`] returns.
pub type AfterCopyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'a>>;

/// Work on a shadow table right after its COPY, on the COPY's connection (a replay adds the
/// table's keys and indexes there and analyzes it): while one table is indexed, the next is
/// copied on the other connection.
pub trait AfterCopy: Sync {
    fn after_copy<'a>(
        &'a self,
        table: &'static str,
        conn: &'a mut PgConnection,
    ) -> AfterCopyFuture<'a>;
}

/// One table of a read model into its shadow table, on a connection of its own: the shadow
/// table is truncated and written with `COPY … FREEZE` in one transaction (its rows are written
/// frozen and its pages marked all-visible, so it needs no vacuum before serving queries), then
/// `after` runs on the same connection. Returns the rows written.
#[doc(hidden)]
pub async fn copy_table<T: ReadModelTable>(
    table: &mut T,
    name: &'static str,
    pool: &PgPool,
    after: &dyn AfterCopy,
) -> Result<u64, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // COPY FREEZE needs the table created or truncated in its own transaction; the shadow
    // table is fresh and empty, so this costs a new, empty file.
    sqlx::query(&format!("truncate {SHADOW_SCHEMA}.{name}"))
        .execute(&mut *tx)
        .await?;
    let written = table.copy_to_shadow(&mut tx).await?;
    tx.commit().await?;
    after.after_copy(name, &mut conn).await?;
    Ok(written)
}

/// Runs a read model's COPYs (each with its row count) two at a time, the largest first: the
/// client formats one table while the server writes another, and with the largest started at
/// once the small ones share the other connection (more at once only make two cores take
/// turns). Returns the rows written.
#[doc(hidden)]
pub async fn copy_largest_first(
    mut copies: Vec<(usize, CopyFuture<'_>)>,
) -> Result<u64, sqlx::Error> {
    copies.sort_by(|(a, _), (b, _)| b.cmp(a));
    let mut waiting = copies.into_iter().map(|(_, copy)| copy);
    let mut running: FuturesUnordered<CopyFuture<'_>> = waiting.by_ref().take(2).collect();
    let mut written = 0;
    while let Some(done) = running.next().await {
        written += done?;
        if let Some(next) = waiting.next() {
            running.push(next);
        }
    }
    Ok(written)
}

/// The tables of one projection, declared together with [`read_model!`](crate::read_model):
/// loading, saving and copying the whole set.
pub trait ReadModel: Default + Send + Sync {
    /// The tables, in declared order.
    const TABLES: &'static [&'static str];
    fn declarations() -> Vec<Declaration>;
    fn load(
        &mut self,
        conn: &mut PgConnection,
        target: Target,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn save(
        &mut self,
        conn: &mut PgConnection,
        target: Target,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
    /// Every table's COPY ([`copy_table`]: frozen, then `after` on the same connection), two at
    /// a time and the largest first ([`copy_largest_first`]), each on its own connection of
    /// `pool`.
    fn copy_to_shadow(
        &mut self,
        pool: &PgPool,
        after: &dyn AfterCopy,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
}

/// Declares a projection's set of tables: a struct with one public field per table
/// ([`Table`], [`Counters`] or [`Lines`] of a declared [`Row`]) and its [`ReadModel`]:
///
/// ```ignore
/// read_model! {
///     /// The hierarchy rows a batch works on.
///     pub struct HierarchyRows {
///         organizations: Table<OrganizationRow>,
///         divisions: Table<UnitRow<Division>>,
///     }
/// }
/// ```
#[macro_export]
macro_rules! read_model {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($(#[$field_meta:meta])* $field:ident : $table:ident < $row:ty >),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Default)]
        $vis struct $name {
            $($(#[$field_meta])* pub $field: $crate::$table<$row>,)+
        }

        impl $crate::ReadModel for $name {
            const TABLES: &'static [&'static str] = &[$(<$row as $crate::Row>::TABLE),+];

            fn declarations() -> ::std::vec::Vec<$crate::Declaration> {
                ::std::vec![$(<$crate::$table<$row> as $crate::ReadModelTable>::declaration()),+]
            }

            async fn load(
                &mut self,
                conn: &mut $crate::__sqlx::PgConnection,
                target: $crate::Target,
            ) -> ::std::result::Result<(), $crate::__sqlx::Error> {
                $($crate::ReadModelTable::load(&mut self.$field, &mut *conn, target).await?;)+
                Ok(())
            }

            async fn save(
                &mut self,
                conn: &mut $crate::__sqlx::PgConnection,
                target: $crate::Target,
            ) -> ::std::result::Result<u64, $crate::__sqlx::Error> {
                let mut written = 0;
                $(written += $crate::ReadModelTable::save(&mut self.$field, &mut *conn, target).await?;)+
                Ok(written)
            }

            async fn copy_to_shadow(
                &mut self,
                pool: &$crate::__sqlx::PgPool,
                after: &dyn $crate::AfterCopy,
            ) -> ::std::result::Result<u64, $crate::__sqlx::Error> {
                let Self { $($field),+ } = self;
                $crate::copy_largest_first(::std::vec![$((
                    $crate::ReadModelTable::pending($field),
                    ::std::boxed::Box::pin($crate::copy_table(
                        $field,
                        <$row as $crate::Row>::TABLE,
                        pool,
                        after,
                    )) as $crate::CopyFuture<'_>,
                )),+])
                .await
            }
        }
    };
}
