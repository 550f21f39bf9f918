-- Replay (design.md D6): rebuilding a projection's read model from the log into shadow tables,
-- then swapping them in.

-- Shadow tables live here under the live tables' names, owned by the database owner, which runs
-- replays. No application role may use the schema: nobody reads a half-built read model.
create schema vextrus_replay;
revoke all on schema vextrus_replay from public;

-- generation: bumped by every full replay's swap. A runner compares it at the start of each batch
--             and, when it changed, reloads its checkpoint (the swap moved it).
-- fed_by:     what keeps the live tables current: the single-node runner tailing the log, or Kafka
--             workers (whose dedupe record is projection_stream_positions). A replay for one
--             tenant catches up to the runner's checkpoint, or to the log's head for Kafka.
alter table projection_checkpoints
    add column generation bigint not null default 0,
    add column fed_by     text   not null default 'log' check (fed_by in ('log', 'kafka'));

-- The fan-out reads and replaces the dedupe record across tenants (a full replay's swap), as it
-- reads the log across tenants; readers stay confined to their tenant.
create policy projection_stream_positions_fanout on projection_stream_positions
    for all to vextrus_projector
    using (true) with check (true);

-- Every replay, for operators: what it rebuilds and how far it got. A replay updates its row about
-- once a second; a 'building' row that stopped moving belongs to an interrupted replay.
create table projection_replays (
    replay_id     uuid        primary key,
    projection    text        not null,
    -- null: every tenant
    tenant_id     uuid,
    dry_run       boolean     not null,
    -- why it runs: 'operator' (vextrus replay) or 'version' (the projection's version changed)
    reason        text        not null check (reason in ('operator', 'version')),
    state         text        not null check (state in ('building', 'finished', 'failed')),
    events_total  bigint      not null default 0,
    events_done   bigint      not null default 0,
    rows_written  bigint      not null default 0,
    started_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    finished_at   timestamptz,
    detail        text
);
create index projection_replays_recent_idx on projection_replays (projection, started_at desc);

revoke all on projection_replays from public;
grant select on projection_replays to vextrus_projector, vextrus_reader;

-- Creates vextrus_replay.<table> shaped like public.<table>: columns, defaults, checks, and the
-- primary key and unique constraints under their own names (replay's upserts need them). The
-- other indexes come after the bulk load (vextrus_replay_index); row-level security, policies and
-- grants in the swap's transaction (vextrus_replay_protect), after the last rows are written.
create function vextrus_replay_prepare(read_models text[]) returns void
    language plpgsql
    as $$
declare
    read_model text;
    constraint_row record;
begin
    foreach read_model in array read_models loop
        execute format('drop table if exists vextrus_replay.%I', read_model);
        execute format(
            'create table vextrus_replay.%I (like public.%I including defaults including generated '
            'including identity including constraints including storage including compression)',
            read_model, read_model);
        for constraint_row in
            select conname, pg_get_constraintdef(oid) as definition
            from pg_constraint
            where conrelid = format('public.%I', read_model)::regclass and contype in ('p', 'u')
        loop
            execute format('alter table vextrus_replay.%I add constraint %I %s',
                read_model, constraint_row.conname, constraint_row.definition);
        end loop;
    end loop;
end
$$;

-- Gives each shadow table the live table's other indexes, under the same names.
create function vextrus_replay_index(read_models text[]) returns void
    language plpgsql
    as $$
declare
    read_model text;
    item record;
begin
    foreach read_model in array read_models loop
        for item in
            select pg_get_indexdef(i.indexrelid) as definition
            from pg_index i
            where i.indrelid = format('public.%I', read_model)::regclass
              and not exists (select from pg_constraint c where c.conindid = i.indexrelid)
        loop
            execute regexp_replace(item.definition, ' ON public\.', ' ON vextrus_replay.');
        end loop;
    end loop;
end
$$;

-- Gives each shadow table its live table's protection: row-level security (enabled and forced
-- alike), the same policies and the same grants.
create function vextrus_replay_protect(read_models text[]) returns void
    language plpgsql
    as $$
declare
    read_model text;
    live regclass;
    item record;
begin
    foreach read_model in array read_models loop
        live := format('public.%I', read_model)::regclass;
        if (select relrowsecurity from pg_class where oid = live) then
            execute format('alter table vextrus_replay.%I enable row level security', read_model);
        end if;
        if (select relforcerowsecurity from pg_class where oid = live) then
            execute format('alter table vextrus_replay.%I force row level security', read_model);
        end if;
        for item in
            select * from pg_policies where schemaname = 'public' and tablename = read_model
        loop
            execute format('create policy %I on vextrus_replay.%I as %s for %s to %s',
                    item.policyname, read_model, item.permissive, item.cmd,
                    (select string_agg(case when r = 'public' then 'public' else quote_ident(r) end, ', ')
                     from unnest(item.roles) as r))
                || coalesce(' using (' || item.qual || ')', '')
                || coalesce(' with check (' || item.with_check || ')', '');
        end loop;
        execute format('revoke all on vextrus_replay.%I from public', read_model);
        for item in
            select case when acl.grantee = 0 then 'public' else quote_ident(acl.grantee::regrole::text) end as grantee,
                   string_agg(acl.privilege_type, ', ') as privileges
            from pg_class c, aclexplode(c.relacl) acl
            where c.oid = live and acl.grantee <> c.relowner
            group by acl.grantee
        loop
            execute format('grant %s on vextrus_replay.%I to %s', item.privileges, read_model, item.grantee);
        end loop;
    end loop;
end
$$;

-- The swap of a full replay: the shadow tables replace the live ones. Run inside the replay's
-- final transaction, so readers see the old tables or the new, never neither.
create function vextrus_replay_swap(read_models text[]) returns void
    language plpgsql
    as $$
declare
    read_model text;
begin
    foreach read_model in array read_models loop
        execute format('drop table public.%I', read_model);
        execute format('alter table vextrus_replay.%I set schema public', read_model);
    end loop;
end
$$;

revoke all on function vextrus_replay_prepare(text[]) from public;
revoke all on function vextrus_replay_index(text[]) from public;
revoke all on function vextrus_replay_protect(text[]) from public;
revoke all on function vextrus_replay_swap(text[]) from public;
