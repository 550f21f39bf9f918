-- What the write side needs besides the log itself. Both tables are written in the same
-- transaction as the events they vouch for.

-- Commands sent with an idempotency key, keyed by the command id derived from it. A repeat of a
-- recorded command returns this outcome and writes nothing.
create table commands (
    tenant_id       uuid        not null,
    command_id      uuid        not null,
    aggregate_type  text        not null,
    aggregate_id    text        not null,
    -- The stream version after the command, and the position of its last event (null when the
    -- command changed nothing).
    stream_version  bigint      not null check (stream_version >= 0),
    last_position   bigint,
    event_count     integer     not null check (event_count >= 0),
    recorded_at     timestamptz not null default now(),
    constraint commands_pkey primary key (tenant_id, command_id)
);

-- Values that must be unique across aggregates of a tenant (an organization's code among the
-- tenant's organizations). Inserted with the events that claim them; the primary key is the
-- guarantee, and the store maps its violation to a clear "already taken" error.
create table unique_values (
    tenant_id      uuid        not null,
    scope          text        not null,
    value          text        not null,
    aggregate_type text        not null,
    aggregate_id   text        not null,
    claimed_at     timestamptz not null default now(),
    constraint unique_values_pkey primary key (tenant_id, scope, value)
);

alter table commands enable row level security;
alter table unique_values enable row level security;

create policy commands_tenant on commands
    for all to vextrus_writer
    using (tenant_id = vextrus_current_tenant())
    with check (tenant_id = vextrus_current_tenant());

create policy unique_values_tenant on unique_values
    for all to vextrus_writer
    using (tenant_id = vextrus_current_tenant())
    with check (tenant_id = vextrus_current_tenant());

revoke all on commands, unique_values from public;
grant select, insert on commands, unique_values to vextrus_writer;
