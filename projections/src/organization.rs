//! The organization hierarchy as four relational tables: `org_organizations`, `org_divisions`,
//! `org_projects`, `org_sites` (`migrations/0005_projections.sql`). Each row carries its code,
//! name, parent ids, status, the path of codes from its organization down, the organization
//! stream's version after the last event that changed it, and who created and last changed it.
//!
//! `org_organizations.version` follows every event of the stream: it is the version a client
//! sends back as `If-Match` for any unit of that organization.
//!
//! Events are applied to [`HierarchyRows`] in memory; saving writes every changed row with one
//! multi-row upsert per table (per tenant on the live tables).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;
use vextrus_commands::{RecordedEvent, tenant};
use vextrus_domain::TenantId;
use vextrus_domain::organization::{Organization, OrganizationEvent};

use crate::copy::CopyIn;
use crate::projection::{Projection, ProjectionError, SHADOW_SCHEMA, Target};

/// Builds the organization hierarchy read model from `organization` events.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrganizationHierarchy;

/// A row's key: (tenant, the unit's id).
type Key = (Uuid, Uuid);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Active,
    Archived,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "archived" {
            Self::Archived
        } else {
            Self::Active
        }
    }
}

/// Who changed a row last, and at which stream version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    version: i64,
    created_at: DateTime<Utc>,
    created_by: String,
    updated_at: DateTime<Utc>,
    updated_by: String,
}

impl Stamp {
    fn new(event: &RecordedEvent) -> Self {
        Self {
            version: event.sequence,
            created_at: event.recorded_at,
            created_by: event.actor.clone(),
            updated_at: event.recorded_at,
            updated_by: event.actor.clone(),
        }
    }

    fn touch(&mut self, event: &RecordedEvent) {
        self.version = event.sequence;
        self.updated_at = event.recorded_at;
        self.updated_by.clone_from(&event.actor);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OrganizationRow {
    code: String,
    name: String,
    bin: String,
    tin: String,
    base_currency: String,
    fiscal_year_start: String,
    status: Status,
    path: String,
    stamp: Stamp,
}

/// A division, project or site; the parents a level does not have are nil.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UnitRow {
    organization_id: Uuid,
    division_id: Uuid,
    project_id: Uuid,
    code: String,
    name: String,
    status: Status,
    path: String,
    stamp: Stamp,
}

impl UnitRow {
    /// A new, active unit created by `event` below a parent at `parent_path`; `parents` are the
    /// organization, division and project ids (nil where the level has none).
    fn new(
        (organization_id, division_id, project_id): (Uuid, Uuid, Uuid),
        parent_path: &str,
        code: &str,
        name: &str,
        event: &RecordedEvent,
    ) -> Self {
        Self {
            organization_id,
            division_id,
            project_id,
            code: code.to_owned(),
            name: name.to_owned(),
            status: Status::Active,
            path: format!("{parent_path}/{code}"),
            stamp: Stamp::new(event),
        }
    }
}

/// A level below the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Division,
    Project,
    Site,
}

impl Unit {
    const ALL: [Self; 3] = [Self::Division, Self::Project, Self::Site];

    fn table(self) -> &'static str {
        match self {
            Self::Division => "org_divisions",
            Self::Project => "org_projects",
            Self::Site => "org_sites",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Self::Division => "division_id",
            Self::Project => "project_id",
            Self::Site => "site_id",
        }
    }

    /// The parent id columns the level has, besides `organization_id`.
    fn parents(self) -> &'static [&'static str] {
        match self {
            Self::Division => &[],
            Self::Project => &["division_id"],
            Self::Site => &["project_id", "division_id"],
        }
    }
}

/// Rows of one table, and which of them changed since the last save. Rows are boxed: a replay
/// holds every row of the read model, and growing the map then moves keys and pointers only.
#[derive(Debug)]
struct Table<R> {
    rows: HashMap<Key, Box<R>>,
    changed: HashSet<Key>,
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
            changed: HashSet::new(),
        }
    }
}

impl<R> Table<R> {
    fn get(&self, key: Key) -> Option<&R> {
        self.rows.get(&key).map(|row| &**row)
    }

    /// Adds or replaces a row, marked changed.
    fn put(&mut self, key: Key, row: R) {
        self.rows.insert(key, Box::new(row));
        self.changed.insert(key);
    }

    /// A row loaded as it is stored: not changed.
    fn loaded(&mut self, key: Key, row: R) {
        self.rows.insert(key, Box::new(row));
    }

    /// Changes an existing row in place, marked changed; `None` when there is no such row.
    fn change(&mut self, key: Key, change: impl FnOnce(&mut R)) -> Option<()> {
        let row = self.rows.get_mut(&key)?;
        change(row);
        self.changed.insert(key);
        Some(())
    }

    /// The keys of the changed rows, grouped by tenant in key order, and forgets that they
    /// changed.
    fn take_changed_keys(&mut self) -> BTreeMap<Uuid, Vec<Uuid>> {
        let mut by_tenant: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for (tenant, id) in self.changed.drain() {
            by_tenant.entry(tenant).or_default().push(id);
        }
        for ids in by_tenant.values_mut() {
            ids.sort_unstable();
        }
        by_tenant
    }

    /// The changed rows, grouped by tenant in key order, and forgets that they changed.
    fn take_changed(&mut self) -> BTreeMap<Uuid, Vec<(Uuid, &R)>> {
        let keys = self.take_changed_keys();
        keys.into_iter()
            .map(|(tenant, ids)| {
                let rows = ids
                    .into_iter()
                    .filter_map(|id| self.get((tenant, id)).map(|row| (id, row)))
                    .collect();
                (tenant, rows)
            })
            .collect()
    }
}

/// The hierarchy rows a batch works on (for a replay: all of them).
#[derive(Debug, Default)]
pub struct HierarchyRows {
    organizations: Table<OrganizationRow>,
    divisions: Table<UnitRow>,
    projects: Table<UnitRow>,
    sites: Table<UnitRow>,
}

impl HierarchyRows {
    fn units(&self, unit: Unit) -> &Table<UnitRow> {
        match unit {
            Unit::Division => &self.divisions,
            Unit::Project => &self.projects,
            Unit::Site => &self.sites,
        }
    }

    fn units_mut(&mut self, unit: Unit) -> &mut Table<UnitRow> {
        match unit {
            Unit::Division => &mut self.divisions,
            Unit::Project => &mut self.projects,
            Unit::Site => &mut self.sites,
        }
    }

    /// How many rows it holds.
    pub fn len(&self) -> usize {
        self.organizations.rows.len()
            + self.divisions.rows.len()
            + self.projects.rows.len()
            + self.sites.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The rows an event reads or writes: its organization and the units it names.
fn referenced_units(event: &OrganizationEvent) -> Vec<(Unit, Uuid)> {
    use OrganizationEvent as E;
    match event {
        E::OrganizationCreated { .. }
        | E::OrganizationRenamed { .. }
        | E::OrganizationArchived { .. } => vec![],
        E::DivisionCreated { division_id, .. }
        | E::DivisionRenamed { division_id, .. }
        | E::DivisionArchived { division_id } => vec![(Unit::Division, division_id.as_uuid())],
        E::ProjectCreated {
            project_id,
            division_id,
            ..
        } => vec![
            (Unit::Project, project_id.as_uuid()),
            (Unit::Division, division_id.as_uuid()),
        ],
        E::ProjectRenamed { project_id, .. } | E::ProjectArchived { project_id } => {
            vec![(Unit::Project, project_id.as_uuid())]
        }
        E::SiteCreated {
            site_id,
            project_id,
            ..
        } => vec![
            (Unit::Site, site_id.as_uuid()),
            (Unit::Project, project_id.as_uuid()),
        ],
        E::SiteRenamed { site_id, .. } | E::SiteArchived { site_id } => {
            vec![(Unit::Site, site_id.as_uuid())]
        }
        E::SiteMoved {
            site_id,
            to_project_id,
            ..
        } => vec![
            (Unit::Site, site_id.as_uuid()),
            (Unit::Project, to_project_id.as_uuid()),
        ],
    }
}

fn organization_of(event: &RecordedEvent) -> Result<Uuid, ProjectionError> {
    event.aggregate_id.parse::<Uuid>().map_err(|_| {
        ProjectionError::Inconsistent(format!(
            "organization id {:?} is not a UUID",
            event.aggregate_id
        ))
    })
}

fn missing(what: &str) -> ProjectionError {
    ProjectionError::Inconsistent(format!("{what} is not in the read model"))
}

impl Projection for OrganizationHierarchy {
    const NAME: &'static str = "organization_hierarchy";
    const VERSION: i32 = 1;
    const TABLES: &'static [&'static str] = &[
        "org_organizations",
        "org_divisions",
        "org_projects",
        "org_sites",
    ];
    const AGGREGATE_TYPES: &'static [&'static str] = &[Organization::TYPE];

    type Rows = HierarchyRows;

    async fn load(
        &self,
        conn: &mut PgConnection,
        target: Target,
        rows: &mut HierarchyRows,
        events: &[&RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        // What to fetch, per tenant: organization ids, and unit ids per level.
        let mut wanted: BTreeMap<Uuid, (HashSet<Uuid>, [HashSet<Uuid>; 3])> = BTreeMap::new();
        for event in events {
            // An event that does not decode fails in `apply`; it needs nothing loaded.
            let (Ok(organization), Ok(decoded)) =
                (organization_of(event), event.decode::<OrganizationEvent>())
            else {
                continue;
            };
            let tenant = event.tenant_id.as_uuid();
            let entry = wanted.entry(tenant).or_default();
            if rows.organizations.get((tenant, organization)).is_none() {
                entry.0.insert(organization);
            }
            for (unit, id) in referenced_units(&decoded) {
                if rows.units(unit).get((tenant, id)).is_none() {
                    entry.1[unit as usize].insert(id);
                }
            }
        }
        let schema = target.schema();
        for (tenant, (organizations, units)) in wanted {
            if organizations.is_empty() && units.iter().all(HashSet::is_empty) {
                continue;
            }
            if target == Target::Live {
                tenant::switch(conn, TenantId::from_uuid(tenant)).await?;
            }
            if !organizations.is_empty() {
                let ids: Vec<Uuid> = organizations.into_iter().collect();
                let found = sqlx::query(&format!(
                    "select organization_id, code, name, bin, tin, base_currency, fiscal_year_start, status,
                            path, version, created_at, created_by, updated_at, updated_by
                     from {schema}.org_organizations where tenant_id = $1 and organization_id = any($2)"
                ))
                .bind(tenant)
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
                for row in found {
                    let id: Uuid = row.try_get("organization_id")?;
                    let loaded = OrganizationRow {
                        code: row.try_get("code")?,
                        name: row.try_get("name")?,
                        bin: row.try_get("bin")?,
                        tin: row.try_get("tin")?,
                        base_currency: row.try_get("base_currency")?,
                        fiscal_year_start: row.try_get("fiscal_year_start")?,
                        status: Status::parse(row.try_get("status")?),
                        path: row.try_get("path")?,
                        stamp: stamp_of(&row)?,
                    };
                    rows.organizations.loaded((tenant, id), loaded);
                }
            }
            for unit in Unit::ALL {
                let ids: Vec<Uuid> = units[unit as usize].iter().copied().collect();
                if ids.is_empty() {
                    continue;
                }
                let parents: String = unit
                    .parents()
                    .iter()
                    .map(|column| format!(", {column}"))
                    .collect();
                let found = sqlx::query(&format!(
                    "select {id} as id, organization_id{parents}, code, name, status, path, version,
                            created_at, created_by, updated_at, updated_by
                     from {schema}.{table} where tenant_id = $1 and {id} = any($2)",
                    id = unit.id_column(),
                    table = unit.table(),
                ))
                .bind(tenant)
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
                for row in found {
                    let id: Uuid = row.try_get("id")?;
                    let parent = |column: &str| -> Result<Uuid, sqlx::Error> {
                        if unit.parents().contains(&column) {
                            row.try_get(column)
                        } else {
                            Ok(Uuid::nil())
                        }
                    };
                    let loaded = UnitRow {
                        organization_id: row.try_get("organization_id")?,
                        division_id: parent("division_id")?,
                        project_id: parent("project_id")?,
                        code: row.try_get("code")?,
                        name: row.try_get("name")?,
                        status: Status::parse(row.try_get("status")?),
                        path: row.try_get("path")?,
                        stamp: stamp_of(&row)?,
                    };
                    rows.units_mut(unit).loaded((tenant, id), loaded);
                }
            }
        }
        Ok(())
    }

    fn apply(
        &self,
        rows: &mut HierarchyRows,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let tenant = event.tenant_id.as_uuid();
        let organization = organization_of(event)?;
        use OrganizationEvent as E;
        let decoded = event.decode::<OrganizationEvent>()?;
        if let E::OrganizationCreated {
            organization_id,
            name,
            code,
            bin,
            tin,
            base_currency,
            fiscal_year_start,
        } = decoded
        {
            if organization_id.as_uuid() != organization {
                return Err(ProjectionError::Inconsistent(format!(
                    "organization {} created in the stream of {organization}",
                    organization_id.as_uuid()
                )));
            }
            if rows.organizations.get((tenant, organization)).is_some() {
                return Err(ProjectionError::Inconsistent(format!(
                    "organization {organization} is already in the read model"
                )));
            }
            rows.organizations.put(
                (tenant, organization),
                OrganizationRow {
                    code: code.as_str().to_owned(),
                    name: name.as_str().to_owned(),
                    bin: bin.to_string(),
                    tin: tin.digits().to_owned(),
                    base_currency: base_currency.as_str().to_owned(),
                    fiscal_year_start: fiscal_year_start.to_string(),
                    status: Status::Active,
                    path: code.as_str().to_owned(),
                    stamp: Stamp::new(event),
                },
            );
            return Ok(());
        }
        // Every other event changes a row of an existing organization, then moves the
        // organization's version (the If-Match of all its units). Everything is checked before
        // anything changes.
        let org_key = (tenant, organization);
        let org = rows
            .organizations
            .get(org_key)
            .ok_or_else(|| missing("the organization"))?;
        // Renames and archivals of the organization stamp it as changed; every other event only
        // moves its version.
        let changes_organization = matches!(
            decoded,
            E::OrganizationRenamed { .. } | E::OrganizationArchived { .. }
        );
        match decoded {
            E::OrganizationCreated { .. } => {}
            E::OrganizationRenamed { name, .. } => {
                rows.organizations.change(org_key, |org| {
                    name.as_str().clone_into(&mut org.name);
                });
            }
            E::OrganizationArchived { .. } => {
                rows.organizations
                    .change(org_key, |org| org.status = Status::Archived);
            }
            E::DivisionCreated {
                division_id,
                name,
                code,
            } => {
                let parents = (organization, Uuid::nil(), Uuid::nil());
                let child = UnitRow::new(parents, &org.path, code.as_str(), name.as_str(), event);
                create_unit(rows, Unit::Division, (tenant, division_id.as_uuid()), child)?;
            }
            E::ProjectCreated {
                project_id,
                division_id,
                name,
                code,
            } => {
                let division = rows
                    .divisions
                    .get((tenant, division_id.as_uuid()))
                    .ok_or_else(|| missing("the project's division"))?;
                let parents = (division.organization_id, division_id.as_uuid(), Uuid::nil());
                let child =
                    UnitRow::new(parents, &division.path, code.as_str(), name.as_str(), event);
                create_unit(rows, Unit::Project, (tenant, project_id.as_uuid()), child)?;
            }
            E::SiteCreated {
                site_id,
                project_id,
                name,
                code,
            } => {
                let project = rows
                    .projects
                    .get((tenant, project_id.as_uuid()))
                    .ok_or_else(|| missing("the site's project"))?;
                let parents = (
                    project.organization_id,
                    project.division_id,
                    project_id.as_uuid(),
                );
                let child =
                    UnitRow::new(parents, &project.path, code.as_str(), name.as_str(), event);
                create_unit(rows, Unit::Site, (tenant, site_id.as_uuid()), child)?;
            }
            E::DivisionRenamed { division_id, name } => {
                change_unit(
                    rows,
                    Unit::Division,
                    (tenant, division_id.as_uuid()),
                    event,
                    |row| name.as_str().clone_into(&mut row.name),
                )?;
            }
            E::ProjectRenamed { project_id, name } => {
                change_unit(
                    rows,
                    Unit::Project,
                    (tenant, project_id.as_uuid()),
                    event,
                    |row| name.as_str().clone_into(&mut row.name),
                )?;
            }
            E::SiteRenamed { site_id, name } => {
                change_unit(
                    rows,
                    Unit::Site,
                    (tenant, site_id.as_uuid()),
                    event,
                    |row| name.as_str().clone_into(&mut row.name),
                )?;
            }
            E::DivisionArchived { division_id } => {
                change_unit(
                    rows,
                    Unit::Division,
                    (tenant, division_id.as_uuid()),
                    event,
                    |row| row.status = Status::Archived,
                )?;
            }
            E::ProjectArchived { project_id } => {
                change_unit(
                    rows,
                    Unit::Project,
                    (tenant, project_id.as_uuid()),
                    event,
                    |row| row.status = Status::Archived,
                )?;
            }
            E::SiteArchived { site_id } => {
                change_unit(
                    rows,
                    Unit::Site,
                    (tenant, site_id.as_uuid()),
                    event,
                    |row| row.status = Status::Archived,
                )?;
            }
            E::SiteMoved {
                site_id,
                to_project_id,
                ..
            } => {
                let project = rows
                    .projects
                    .get((tenant, to_project_id.as_uuid()))
                    .cloned()
                    .ok_or_else(|| missing("the moved site's new project"))?;
                change_unit(
                    rows,
                    Unit::Site,
                    (tenant, site_id.as_uuid()),
                    event,
                    |row| {
                        row.project_id = to_project_id.as_uuid();
                        row.division_id = project.division_id;
                        row.path = format!("{}/{}", project.path, row.code);
                    },
                )?;
            }
        }
        rows.organizations.change(org_key, |org| {
            if changes_organization {
                org.stamp.touch(event);
            } else {
                org.stamp.version = event.sequence;
            }
        });
        Ok(())
    }

    async fn save(
        &self,
        conn: &mut PgConnection,
        target: Target,
        rows: &mut HierarchyRows,
    ) -> Result<u64, sqlx::Error> {
        let schema = target.schema();
        let mut written = 0;
        let organizations = rows.organizations.take_changed();
        for (tenant, changed) in group(target, organizations) {
            if let Some(tenant) = tenant {
                tenant::switch(conn, TenantId::from_uuid(tenant)).await?;
            }
            written += changed.len() as u64;
            let mut columns = Columns::with_capacity(changed.len());
            let mut codes = Vec::with_capacity(changed.len());
            let mut bins = Vec::with_capacity(changed.len());
            let mut tins = Vec::with_capacity(changed.len());
            let mut currencies = Vec::with_capacity(changed.len());
            let mut fiscal_years = Vec::with_capacity(changed.len());
            let mut names = Vec::with_capacity(changed.len());
            for (tenant, id, row) in &changed {
                columns.push(*tenant, *id, row.status, &row.path, &row.stamp);
                codes.push(row.code.as_str());
                names.push(row.name.as_str());
                bins.push(row.bin.as_str());
                tins.push(row.tin.as_str());
                currencies.push(row.base_currency.as_str());
                fiscal_years.push(row.fiscal_year_start.as_str());
            }
            sqlx::query(&format!(
                "insert into {schema}.org_organizations (tenant_id, organization_id, status, path, version,
                     created_at, created_by, updated_at, updated_by, code, name, bin, tin, base_currency,
                     fiscal_year_start)
                 select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int8[],
                     $6::timestamptz[], $7::text[], $8::timestamptz[], $9::text[], $10::text[], $11::text[],
                     $12::text[], $13::text[], $14::text[], $15::text[])
                 on conflict (tenant_id, organization_id) do update set
                     status = excluded.status, path = excluded.path, version = excluded.version,
                     created_at = excluded.created_at, created_by = excluded.created_by,
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by,
                     code = excluded.code, name = excluded.name, bin = excluded.bin, tin = excluded.tin,
                     base_currency = excluded.base_currency, fiscal_year_start = excluded.fiscal_year_start"
            ))
            .bind(columns.tenants)
            .bind(columns.ids)
            .bind(columns.statuses)
            .bind(columns.paths)
            .bind(columns.versions)
            .bind(columns.created_at)
            .bind(columns.created_by)
            .bind(columns.updated_at)
            .bind(columns.updated_by)
            .bind(codes)
            .bind(names)
            .bind(bins)
            .bind(tins)
            .bind(currencies)
            .bind(fiscal_years)
            .execute(&mut *conn)
            .await?;
        }
        for unit in Unit::ALL {
            let changed = rows.units_mut(unit).take_changed();
            for (tenant, changed) in group(target, changed) {
                if let Some(tenant) = tenant {
                    tenant::switch(conn, TenantId::from_uuid(tenant)).await?;
                }
                written += changed.len() as u64;
                let mut columns = Columns::with_capacity(changed.len());
                let mut organizations = Vec::with_capacity(changed.len());
                let mut divisions = Vec::with_capacity(changed.len());
                let mut projects = Vec::with_capacity(changed.len());
                let mut codes = Vec::with_capacity(changed.len());
                let mut names = Vec::with_capacity(changed.len());
                for (tenant, id, row) in &changed {
                    columns.push(*tenant, *id, row.status, &row.path, &row.stamp);
                    organizations.push(row.organization_id);
                    divisions.push(row.division_id);
                    projects.push(row.project_id);
                    codes.push(row.code.as_str());
                    names.push(row.name.as_str());
                }
                // $13 and $14 are the project and division ids; a level selects those it has.
                let (parent_columns, parent_values, parent_updates) = match unit {
                    Unit::Division => ("", "", ""),
                    Unit::Project => (
                        ", division_id",
                        ", u.division_id",
                        ", division_id = excluded.division_id",
                    ),
                    Unit::Site => (
                        ", project_id, division_id",
                        ", u.project_id, u.division_id",
                        ", project_id = excluded.project_id, division_id = excluded.division_id",
                    ),
                };
                sqlx::query(&format!(
                    "insert into {schema}.{table} (tenant_id, {id}, status, path, version, created_at,
                         created_by, updated_at, updated_by, organization_id, code, name{parent_columns})
                     select u.tenant_id, u.id, u.status, u.path, u.version, u.created_at, u.created_by,
                            u.updated_at, u.updated_by, u.organization_id, u.code, u.name{parent_values}
                     from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int8[],
                         $6::timestamptz[], $7::text[], $8::timestamptz[], $9::text[], $10::uuid[],
                         $11::text[], $12::text[], $13::uuid[], $14::uuid[])
                         as u (tenant_id, id, status, path, version, created_at, created_by, updated_at,
                               updated_by, organization_id, code, name, project_id, division_id)
                     on conflict (tenant_id, {id}) do update set
                         status = excluded.status, path = excluded.path, version = excluded.version,
                         created_at = excluded.created_at, created_by = excluded.created_by,
                         updated_at = excluded.updated_at, updated_by = excluded.updated_by,
                         organization_id = excluded.organization_id, code = excluded.code,
                         name = excluded.name{parent_updates}",
                    table = unit.table(),
                    id = unit.id_column(),
                ))
                .bind(columns.tenants)
                .bind(columns.ids)
                .bind(columns.statuses)
                .bind(columns.paths)
                .bind(columns.versions)
                .bind(columns.created_at)
                .bind(columns.created_by)
                .bind(columns.updated_at)
                .bind(columns.updated_by)
                .bind(organizations)
                .bind(codes)
                .bind(names)
                .bind(projects)
                .bind(divisions)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(written)
    }

    async fn copy_to_shadow(
        &self,
        pool: &PgPool,
        rows: &mut HierarchyRows,
    ) -> Result<u64, sqlx::Error> {
        let organizations = rows.organizations.take_changed_keys();
        let [divisions, projects, sites] =
            Unit::ALL.map(|unit| rows.units_mut(unit).take_changed_keys());
        // Two connections, so that the server writes the sites (about half the rows) while it
        // writes the other levels.
        let upper = async {
            let mut conn = pool.acquire().await?;
            let mut written =
                Self::copy_organizations(&mut conn, &rows.organizations, &organizations).await?;
            written +=
                Self::copy_units(&mut conn, Unit::Division, &rows.divisions, &divisions).await?;
            written +=
                Self::copy_units(&mut conn, Unit::Project, &rows.projects, &projects).await?;
            Ok::<_, sqlx::Error>(written)
        };
        let lower = async {
            let mut conn = pool.acquire().await?;
            Self::copy_units(&mut conn, Unit::Site, &rows.sites, &sites).await
        };
        let (upper, lower) = tokio::try_join!(upper, lower)?;
        Ok(upper + lower)
    }
}

impl OrganizationHierarchy {
    async fn copy_organizations(
        conn: &mut PgConnection,
        table: &Table<OrganizationRow>,
        changed: &BTreeMap<Uuid, Vec<Uuid>>,
    ) -> Result<u64, sqlx::Error> {
        let mut copy = CopyIn::start(
            conn,
            &format!("{SHADOW_SCHEMA}.org_organizations"),
            &[
                "tenant_id",
                "organization_id",
                "code",
                "name",
                "bin",
                "tin",
                "base_currency",
                "fiscal_year_start",
                "status",
                "path",
                "version",
                "created_at",
                "created_by",
                "updated_at",
                "updated_by",
            ],
        )
        .await?;
        for (tenant, ids) in changed {
            for id in ids {
                let Some(row) = table.get((*tenant, *id)) else {
                    continue;
                };
                copy.uuid(*tenant)
                    .uuid(*id)
                    .text(&row.code)
                    .text(&row.name)
                    .text(&row.bin)
                    .text(&row.tin)
                    .text(&row.base_currency)
                    .text(&row.fiscal_year_start)
                    .text(row.status.as_str())
                    .text(&row.path);
                copy_stamp(&mut copy, &row.stamp);
                copy.end_row().await?;
            }
        }
        copy.finish().await
    }

    async fn copy_units(
        conn: &mut PgConnection,
        unit: Unit,
        table: &Table<UnitRow>,
        changed: &BTreeMap<Uuid, Vec<Uuid>>,
    ) -> Result<u64, sqlx::Error> {
        let mut columns = vec!["tenant_id", unit.id_column(), "organization_id"];
        columns.extend(unit.parents());
        columns.extend([
            "code",
            "name",
            "status",
            "path",
            "version",
            "created_at",
            "created_by",
            "updated_at",
            "updated_by",
        ]);
        let mut copy =
            CopyIn::start(conn, &format!("{SHADOW_SCHEMA}.{}", unit.table()), &columns).await?;
        for (tenant, ids) in changed {
            for id in ids {
                let Some(row) = table.get((*tenant, *id)) else {
                    continue;
                };
                copy.uuid(*tenant).uuid(*id).uuid(row.organization_id);
                match unit {
                    Unit::Division => {}
                    Unit::Project => {
                        copy.uuid(row.division_id);
                    }
                    Unit::Site => {
                        copy.uuid(row.project_id).uuid(row.division_id);
                    }
                }
                copy.text(&row.code)
                    .text(&row.name)
                    .text(row.status.as_str())
                    .text(&row.path);
                copy_stamp(&mut copy, &row.stamp);
                copy.end_row().await?;
            }
        }
        copy.finish().await
    }
}

fn copy_stamp(copy: &mut CopyIn<'_>, stamp: &Stamp) {
    copy.int(stamp.version)
        .timestamp(stamp.created_at)
        .text(&stamp.created_by)
        .timestamp(stamp.updated_at)
        .text(&stamp.updated_by);
}

/// Changed rows as one group per tenant on the live tables (`Some(tenant)`: set it first), or
/// a single group of all tenants on shadow tables (`None`).
#[allow(clippy::type_complexity)]
fn group<R>(
    target: Target,
    by_tenant: BTreeMap<Uuid, Vec<(Uuid, &R)>>,
) -> Vec<(Option<Uuid>, Vec<(Uuid, Uuid, &R)>)> {
    fn flatten<R>(tenant: Uuid, rows: Vec<(Uuid, &R)>) -> Vec<(Uuid, Uuid, &R)> {
        rows.into_iter()
            .map(|(id, row)| (tenant, id, row))
            .collect()
    }
    match target {
        Target::Live => by_tenant
            .into_iter()
            .map(|(tenant, rows)| (Some(tenant), flatten(tenant, rows)))
            .collect(),
        Target::Shadow => {
            let all: Vec<_> = by_tenant
                .into_iter()
                .flat_map(|(tenant, rows)| flatten(tenant, rows))
                .collect();
            if all.is_empty() {
                Vec::new()
            } else {
                vec![(None, all)]
            }
        }
    }
}

/// The columns every level has, as arrays for `unnest`.
struct Columns<'a> {
    tenants: Vec<Uuid>,
    ids: Vec<Uuid>,
    statuses: Vec<&'static str>,
    paths: Vec<&'a str>,
    versions: Vec<i64>,
    created_at: Vec<DateTime<Utc>>,
    created_by: Vec<&'a str>,
    updated_at: Vec<DateTime<Utc>>,
    updated_by: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            tenants: Vec::with_capacity(capacity),
            ids: Vec::with_capacity(capacity),
            statuses: Vec::with_capacity(capacity),
            paths: Vec::with_capacity(capacity),
            versions: Vec::with_capacity(capacity),
            created_at: Vec::with_capacity(capacity),
            created_by: Vec::with_capacity(capacity),
            updated_at: Vec::with_capacity(capacity),
            updated_by: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, tenant: Uuid, id: Uuid, status: Status, path: &'a str, stamp: &'a Stamp) {
        self.tenants.push(tenant);
        self.ids.push(id);
        self.statuses.push(status.as_str());
        self.paths.push(path);
        self.versions.push(stamp.version);
        self.created_at.push(stamp.created_at);
        self.created_by.push(&stamp.created_by);
        self.updated_at.push(stamp.updated_at);
        self.updated_by.push(&stamp.updated_by);
    }
}

fn stamp_of(row: &PgRow) -> Result<Stamp, sqlx::Error> {
    Ok(Stamp {
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
    })
}

/// Adds a new division, project or site; refuses one that exists.
fn create_unit(
    rows: &mut HierarchyRows,
    unit: Unit,
    key: Key,
    row: UnitRow,
) -> Result<(), ProjectionError> {
    let table = rows.units_mut(unit);
    if table.get(key).is_some() {
        return Err(ProjectionError::Inconsistent(format!(
            "{unit:?} {} is already in the read model",
            key.1
        )));
    }
    table.put(key, row);
    Ok(())
}

/// Changes an existing division, project or site and stamps it with `event`.
fn change_unit(
    rows: &mut HierarchyRows,
    unit: Unit,
    key: Key,
    event: &RecordedEvent,
    change: impl FnOnce(&mut UnitRow),
) -> Result<(), ProjectionError> {
    rows.units_mut(unit)
        .change(key, |row| {
            change(row);
            row.stamp.touch(event);
        })
        .ok_or_else(|| missing(&format!("{unit:?} {}", key.1)))
}
