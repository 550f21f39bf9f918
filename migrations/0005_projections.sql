-- Projections: where each one is in the log, and the read models of the organization hierarchy.

-- One row per projection. The runner updates it in the same transaction as the read-model rows
-- an event changes, so the read model and its position can never disagree: after a crash the
-- projection resumes exactly after the last event whose effect was committed.
create table projection_checkpoints (
    projection      text        primary key,
    version         integer     not null,
    -- The last applied event's place in the commit-ordered log (design.md D3).
    transaction_id  xid8        not null default '0',
    global_position bigint      not null default 0,
    events_applied  bigint      not null default 0,
    -- 'stopped' when an event could not be applied (a poison event); the projection then waits
    -- for an operator, the others go on.
    state           text        not null default 'running' check (state in ('running', 'stopped')),
    stopped_at      bigint,
    stop_reason     text,
    updated_at      timestamptz not null default now()
);

revoke all on projection_checkpoints from public;
grant select, insert, update on projection_checkpoints to vextrus_projector;
grant select on projection_checkpoints to vextrus_reader;

-- The organization hierarchy, one table per level, for the API and for analysts' SQL. `path` is
-- the chain of codes from the organization down (MBL/DHK/PADMA/S1); `version` is the organization
-- stream's version after the last event that changed the row.
create table org_organizations (
    tenant_id         uuid        not null,
    organization_id   uuid        not null,
    code              text        not null,
    name              text        not null,
    bin               text        not null,
    tin               text        not null,
    base_currency     text        not null,
    fiscal_year_start text        not null,
    status            text        not null check (status in ('active', 'archived')),
    path              text        not null,
    version           bigint      not null,
    created_at        timestamptz not null,
    created_by        text        not null,
    updated_at        timestamptz not null,
    updated_by        text        not null,
    primary key (tenant_id, organization_id)
);

create table org_divisions (
    tenant_id       uuid        not null,
    division_id     uuid        not null,
    organization_id uuid        not null,
    code            text        not null,
    name            text        not null,
    status          text        not null check (status in ('active', 'archived')),
    path            text        not null,
    version         bigint      not null,
    created_at      timestamptz not null,
    created_by      text        not null,
    updated_at      timestamptz not null,
    updated_by      text        not null,
    primary key (tenant_id, division_id)
);
create index org_divisions_parent_idx on org_divisions (tenant_id, organization_id);

create table org_projects (
    tenant_id       uuid        not null,
    project_id      uuid        not null,
    division_id     uuid        not null,
    organization_id uuid        not null,
    code            text        not null,
    name            text        not null,
    status          text        not null check (status in ('active', 'archived')),
    path            text        not null,
    version         bigint      not null,
    created_at      timestamptz not null,
    created_by      text        not null,
    updated_at      timestamptz not null,
    updated_by      text        not null,
    primary key (tenant_id, project_id)
);
create index org_projects_parent_idx on org_projects (tenant_id, division_id);
create index org_projects_organization_idx on org_projects (tenant_id, organization_id);

create table org_sites (
    tenant_id       uuid        not null,
    site_id         uuid        not null,
    project_id      uuid        not null,
    division_id     uuid        not null,
    organization_id uuid        not null,
    code            text        not null,
    name            text        not null,
    status          text        not null check (status in ('active', 'archived')),
    path            text        not null,
    version         bigint      not null,
    created_at      timestamptz not null,
    created_by      text        not null,
    updated_at      timestamptz not null,
    updated_by      text        not null,
    primary key (tenant_id, site_id)
);
create index org_sites_parent_idx on org_sites (tenant_id, project_id);
create index org_sites_organization_idx on org_sites (tenant_id, organization_id);

-- Row-level security, enabled and FORCED (the owner too), failing closed: a transaction that set
-- no tenant sees and writes nothing. The projector sets the tenant of each event it applies, so a
-- projection bug cannot write one tenant's event into another's rows either.
do $$
declare
    read_model text;
begin
    foreach read_model in array array['org_organizations', 'org_divisions', 'org_projects', 'org_sites'] loop
        execute format('alter table %I enable row level security', read_model);
        execute format('alter table %I force row level security', read_model);
        execute format(
            'create policy %I on %I using (tenant_id = vextrus_current_tenant()) '
            'with check (tenant_id = vextrus_current_tenant())',
            read_model || '_tenant', read_model);
        execute format('revoke all on %I from public', read_model);
        execute format('grant select, insert, update, delete on %I to vextrus_projector', read_model);
        execute format('grant select on %I to vextrus_reader', read_model);
    end loop;
end
$$;
