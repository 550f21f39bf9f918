-- The event log (design.md D1): the event store, the source of fan-out, and the audit trail.
-- Rows are only ever appended.
create table events (
    tenant_id        uuid        not null,
    aggregate_type   text        not null,
    aggregate_id     text        not null,
    -- Position of the event in its stream, 1-based and gap-free; the stream's version is the
    -- highest sequence.
    sequence         bigint      not null check (sequence > 0),
    event_type       text        not null,
    event_version    text        not null,
    payload          jsonb       not null,
    -- Audit metadata, typed so that auditors can filter on it.
    actor            text        not null,
    command_id       uuid        not null,
    correlation_id   uuid        not null,
    causation_id     uuid,
    request_id       text,
    -- Further request context (client address, user agent, ...): open-ended by design.
    request_metadata jsonb       not null default '{}',
    recorded_at      timestamptz not null default now(),
    -- Order of insertion across the whole log. Not commit order: see transaction_id.
    global_position  bigint      generated always as identity,
    -- The appending transaction. Readers tail in (transaction_id, global_position) order below
    -- the oldest running transaction (design.md D3), which is gap-free where global_position
    -- alone is not.
    transaction_id   xid8        not null default pg_current_xact_id(),
    -- The stream key. A second writer of the same sequence violates it: that is the optimistic
    -- concurrency check, and the store recognises it by this constraint's name.
    constraint events_pkey primary key (tenant_id, aggregate_type, aggregate_id, sequence)
);

comment on table events is
    'Append-only event log: event store, fan-out source and audit trail. Never updated or deleted.';

-- Tailing in commit order (the log reader).
create index events_tail_idx on events (transaction_id, global_position);
-- Finding one event by position (operators skipping a poison event, auditors citing one).
create unique index events_global_position_key on events (global_position);

-- Immutability for everyone, including the owner: privileges alone do not bind the owner.
create function events_refuse_change() returns trigger
    language plpgsql
    as $$
begin
    raise exception 'the event log is append-only: % on events is refused', tg_op
        using errcode = 'insufficient_privilege',
              hint = 'record a correcting event instead';
end
$$;

create trigger events_no_update_or_delete
    before update or delete on events
    for each row execute function events_refuse_change();

create trigger events_no_truncate
    before truncate on events
    for each statement execute function events_refuse_change();

-- ALWAYS: the triggers fire even under session_replication_role = replica, the usual way to
-- silence triggers. (A superuser can still drop them; tamper evidence is the answer to that.)
alter table events enable always trigger events_no_update_or_delete;
alter table events enable always trigger events_no_truncate;

-- Row-level security: application roles see and append only their transaction's tenant. Not
-- FORCEd: the owner runs migrations and operator tooling across tenants.
alter table events enable row level security;

create policy events_tenant_select on events
    for select to vextrus_writer, vextrus_reader
    using (tenant_id = vextrus_current_tenant());

create policy events_tenant_insert on events
    for insert to vextrus_writer
    with check (tenant_id = vextrus_current_tenant());

-- Fan-out (projection runner, relay, replay) reads every tenant's events by design; it writes
-- read models under their own tenant policies.
create policy events_fanout_select on events
    for select to vextrus_projector
    using (true);

revoke all on events from public;
-- The writer supplies the event and its metadata; the database alone sets recorded_at,
-- global_position and transaction_id. A forged transaction_id would hide an event behind every
-- reader's checkpoint, so those columns are not insertable at all (not even with OVERRIDING).
grant select on events to vextrus_writer;
grant insert (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
              actor, command_id, correlation_id, causation_id, request_id, request_metadata)
    on events to vextrus_writer;
grant select on events to vextrus_projector, vextrus_reader;
