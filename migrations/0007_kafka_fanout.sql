-- Kafka fan-out (design.md D4): what the relay has had acknowledged by the brokers, and what each
-- projection fed from Kafka has applied, per stream.

-- One row per relay name. The relay updates it only after the brokers acknowledged every event
-- up to that position, so after a crash it re-sends at most the unacknowledged tail.
create table relay_checkpoints (
    relay           text        primary key,
    transaction_id  xid8        not null default '0',
    global_position bigint      not null default 0,
    events_relayed  bigint      not null default 0,
    updated_at      timestamptz not null default now()
);

revoke all on relay_checkpoints from public;
grant select, insert, update on relay_checkpoints to vextrus_projector;
grant select on relay_checkpoints to vextrus_reader;

-- The dedupe record of projections fed from Kafka: the last sequence applied per stream, written
-- in the same transaction as the read-model change. Kafka keeps each stream's order (the key is
-- tenant/aggregate), but delivers duplicates after relay restarts, rebalances and consumer
-- restarts; an event at or below this sequence is skipped, one above the next is preceded by its
-- missing predecessors read from the log.
create table projection_stream_positions (
    tenant_id      uuid   not null,
    projection     text   not null,
    aggregate_type text   not null,
    aggregate_id   text   not null,
    sequence       bigint not null check (sequence > 0),
    primary key (tenant_id, projection, aggregate_type, aggregate_id)
);

alter table projection_stream_positions enable row level security;
alter table projection_stream_positions force row level security;
create policy projection_stream_positions_tenant on projection_stream_positions
    using (tenant_id = vextrus_current_tenant())
    with check (tenant_id = vextrus_current_tenant());
revoke all on projection_stream_positions from public;
grant select, insert, update, delete on projection_stream_positions to vextrus_projector;
grant select on projection_stream_positions to vextrus_reader;

-- Partitions a Kafka-fed projection stopped on a poison event, and the events an operator chose
-- to skip (`vextrus project skip`). Not tenant data: operators see every row.
create table projection_poison_events (
    projection      text        not null,
    global_position bigint      not null,
    topic           text        not null,
    kafka_partition integer     not null,
    kafka_offset    bigint      not null,
    reason          text        not null,
    stopped_at      timestamptz not null default now(),
    -- Set by an operator: the worker then records the event as applied without applying it.
    skip_requested  boolean     not null default false,
    primary key (projection, global_position)
);

revoke all on projection_poison_events from public;
grant select, insert, update on projection_poison_events to vextrus_projector;
grant select on projection_poison_events to vextrus_reader;
