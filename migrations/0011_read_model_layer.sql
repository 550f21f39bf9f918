-- The read-model layer (design.md D11): one helper that protects every read-model table the same
-- way, and the first counters read model, audit activity.

-- Gives a read-model table its tenant protection: row-level security enabled and FORCED (the
-- owner too), one fail-closed policy (a transaction that set no tenant sees and writes nothing),
-- writes for the projector and reads for the API's reader role only. Every migration that creates
-- a read-model table calls it; tests/e2e/row_security.rs checks every table with a tenant_id.
create function vextrus_protect_read_model(read_model text) returns void
    language plpgsql
    as $$
begin
    execute format('alter table %I enable row level security', read_model);
    execute format('alter table %I force row level security', read_model);
    execute format(
        'create policy %I on %I using (tenant_id = vextrus_current_tenant()) '
        'with check (tenant_id = vextrus_current_tenant())',
        read_model || '_tenant', read_model);
    execute format('revoke all on %I from public', read_model);
    execute format('grant select, insert, update, delete on %I to vextrus_projector', read_model);
    execute format('grant select on %I to vextrus_reader', read_model);
end
$$;
revoke all on function vextrus_protect_read_model(text) from public;

-- Events and commands per actor, Bangladesh calendar day and aggregate type: counters many
-- streams add to (projections/src/activity.rs).
create table audit_activity (
    tenant_id      uuid   not null,
    actor          text   not null,
    day            date   not null,
    aggregate_type text   not null,
    events         bigint not null,
    commands       bigint not null,
    primary key (tenant_id, actor, day, aggregate_type)
);
-- Activity over a window of days for everyone: the API's default view.
create index audit_activity_day_idx on audit_activity (tenant_id, day);

-- The command of each stream's latest event: an event with another command id starts a command.
create table audit_activity_streams (
    tenant_id      uuid not null,
    aggregate_type text not null,
    aggregate_id   text not null,
    command_id     uuid not null,
    primary key (tenant_id, aggregate_type, aggregate_id)
);

select vextrus_protect_read_model('audit_activity');
select vextrus_protect_read_model('audit_activity_streams');
