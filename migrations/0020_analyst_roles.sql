-- Analysts' SQL roles, each bound to one tenant (design.md D5; issue 16).
--
-- Before this, an analyst who connected as a role with vextrus_reader's grants could call
-- vextrus_set_tenant with any tenant's id and read it. An analyst role is a login role created by
-- `vextrus analyst create`. It is a member of vextrus_analyst, which may read the read models and
-- nothing else, and vextrus_analysts binds it to one tenant. For such a session,
-- vextrus_current_tenant() returns the bound tenant, whatever the session sets:
-- vextrus_set_tenant, set_config('app.tenant_id', ...) and SET app.tenant_id change nothing.
-- The binding follows session_user, which SET ROLE does not change. Roles belong to the cluster
-- and bindings to one database, so a member of vextrus_analyst with no binding in this database
-- sees no tenant at all.

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'vextrus_analyst') then
        begin
            create role vextrus_analyst nologin nosuperuser nobypassrls;
        exception when duplicate_object or unique_violation then
            null; -- a concurrent migration of another database created it first
        end;
    end if;
end
$$;

-- Which tenant each analyst role reads. Only the owner reads or writes it.
create table vextrus_analysts (
    role_name text primary key,
    tenant_id uuid not null,
    created_at timestamptz not null default now()
);
revoke all on vextrus_analysts from public;
-- Like every table that names a tenant: row-level security on. No policy, so no application role
-- would see a row even if granted; not forced, since the owner (and the function below) works
-- across tenants.
alter table vextrus_analysts enable row level security;

-- Security definer, so that it can read the bindings; the session's own settings still decide for
-- everyone who is not an analyst. Called once per query (the policies' init plan, migration 0015).
-- The first test needs no table: a session user that is neither a member of vextrus_analyst nor a
-- superuser (pg_has_role counts superusers as members of every role) takes its setting at once.
-- Measured with pgbench (a transaction of one RLS query as vextrus_reader): the two lookups cost
-- about 55 µs per query; sessions on the fast path skip them.
create or replace function vextrus_current_tenant() returns uuid
    language plpgsql stable security definer parallel safe
    set search_path = public, pg_temp
    as $$
declare
    v_bound uuid;
begin
    if not pg_has_role(session_user, 'vextrus_analyst', 'member') then
        return nullif(current_setting('app.tenant_id', true), '')::uuid;
    end if;
    select a.tenant_id into v_bound from vextrus_analysts a where a.role_name = session_user;
    if found then
        return v_bound;
    end if;
    -- A member of vextrus_analyst with no binding in this database sees no tenant; a superuser
    -- (a member of every role by definition) keeps its setting.
    if (select r.rolsuper from pg_roles r where r.rolname = session_user) then
        return nullif(current_setting('app.tenant_id', true), '')::uuid;
    end if;
    return null;
end
$$;
grant execute on function vextrus_current_tenant() to public;

-- The read models: readable by analysts (under their forced tenant policies), now and for every
-- read model created later (replay copies a live table's grants to its rebuild).
create or replace function vextrus_protect_read_model(read_model text) returns void
    language plpgsql
    as $$
begin
    execute format('alter table %I enable row level security', read_model);
    execute format('alter table %I force row level security', read_model);
    execute format(
        'create policy %I on %I using (tenant_id = (select vextrus_current_tenant())) '
        'with check (tenant_id = (select vextrus_current_tenant()))',
        read_model || '_tenant', read_model);
    execute format('revoke all on %I from public', read_model);
    execute format('grant select, insert, update, delete on %I to vextrus_projector', read_model);
    execute format('grant select on %I to vextrus_reader, vextrus_analyst', read_model);
end
$$;

do $$
declare
    read_model text;
begin
    for read_model in
        select p.tablename from pg_policies p
        join pg_class c on c.relname = p.tablename and c.relnamespace = 'public'::regnamespace
        where p.schemaname = 'public' and p.policyname = p.tablename || '_tenant' and c.relforcerowsecurity
          and p.tablename not in ('projection_stream_positions', 'commands', 'unique_values', 'events')
    loop
        execute format('grant select on %I to vextrus_analyst', read_model);
    end loop;
end
$$;

-- An analyst granted the log (`vextrus analyst create --with-events`) reads its tenant's events.
create policy events_analyst_select on events
    for select to vextrus_analyst
    using (tenant_id = (select vextrus_current_tenant()));
