-- The log as the audit trail (issue 6): complete request metadata on every event, a per-stream
-- hash chain that makes any later change to a row detectable, signed checkpoints, and the indexes
-- the audit queries walk.

-- 1. Audit metadata, typed so auditors can filter and export it. Older rows keep what they had
--    (their project and site, if any, are in request_metadata).
alter table events
    -- The actor's roles when the command was issued (from the verified token), sorted.
    add column actor_roles     text[] not null default '{}',
    -- The client's Idempotency-Key, verbatim (the command id is derived from it).
    add column idempotency_key text,
    -- The peer address of the HTTP connection and its User-Agent header.
    add column client_address  inet,
    add column user_agent      text,
    -- The request's X-Project-ID / X-Site-ID context, validated against the hierarchy.
    add column project_id      uuid,
    add column site_id         uuid,
    -- SHA-256 over this event's content and metadata and the previous event's hash in the same
    -- stream (see vextrus_event_hash), and that previous hash (null for a stream's first event),
    -- kept so a verifier can tell an altered event (its own hash fails) from one whose predecessor
    -- was replaced or moved (its link fails). Set by the database on insert; no role may supply
    -- them.
    add column hash            bytea,
    add column previous_hash   bytea;

-- The hash of an event chained to `previous` (null for a stream's first event). This is the
-- definition auditors reimplement (README, "Auditing"): SHA-256 of the UTF-8 text of the jsonb
-- array
--
--   ["vextrus-event-v1", hex(previous), tenant_id, aggregate_type, aggregate_id, sequence,
--    global_position, transaction_id, event_type, event_version, payload, actor, actor_roles,
--    command_id, idempotency_key, correlation_id, causation_id, request_id, client_address,
--    user_agent, project_id, site_id, request_metadata, recorded_at]
--
-- in PostgreSQL's jsonb text form (`[a, b]`, strings JSON-escaped, payload, roles and
-- request_metadata as nested JSON), with ids, transaction_id and client_address (inet text form,
-- e.g. `10.1.2.3/32`) as strings, sequence, global_position and recorded_at (microseconds since
-- the Unix epoch) as numbers, and absent values as null. Changing any of them, or the chain's
-- order, changes the hash. One jsonb_build_array is a few microseconds; an expression of a
-- hundred small functions cost far more per event and per transaction.
create function vextrus_event_hash_of(
    previous bytea, tenant_id uuid, aggregate_type text, aggregate_id text, sequence bigint,
    global_position bigint, transaction_id xid8, event_type text, event_version text, payload jsonb,
    actor text, actor_roles text[], command_id uuid, idempotency_key text, correlation_id uuid,
    causation_id uuid, request_id text, client_address inet, user_agent text, project_id uuid,
    site_id uuid, request_metadata jsonb, recorded_at timestamptz
) returns bytea
    language sql stable parallel safe
    return sha256(convert_to(jsonb_build_array(
        'vextrus-event-v1', encode(previous, 'hex'), tenant_id, aggregate_type, aggregate_id, sequence,
        global_position, transaction_id::text, event_type, event_version, payload, actor, actor_roles,
        command_id, idempotency_key, correlation_id, causation_id, request_id, client_address::text,
        user_agent, project_id, site_id, request_metadata,
        (extract(epoch from recorded_at) * 1000000)::bigint)::text, 'UTF8'));

-- The hash of stored event `e` chained to `previous`: for auditors' SQL, e.g.
-- `select vextrus_event_hash(e, e.previous_hash) = e.hash from events e`.
create function vextrus_event_hash(e events, previous bytea) returns bytea
    language sql stable parallel safe
    return vextrus_event_hash_of(
        previous, e.tenant_id, e.aggregate_type, e.aggregate_id, e.sequence, e.global_position,
        e.transaction_id, e.event_type, e.event_version, e.payload, e.actor, e.actor_roles,
        e.command_id, e.idempotency_key, e.correlation_id, e.causation_id, e.request_id,
        e.client_address, e.user_agent, e.project_id, e.site_id, e.request_metadata, e.recorded_at);

-- 2. The chain, computed on insert inside the appending transaction. The previous event of the
--    stream is committed already (the store appends version + 1 after loading version) or was
--    inserted earlier by the same statement, which a row trigger sees. Runs as the inserting
--    role: the writer sees its own tenant's rows, which is all it needs.
create function events_chain_hash() returns trigger
    language plpgsql
    as $$
declare
    previous bytea;
begin
    if new.sequence > 1 then
        select e.hash into previous
        from events e
        where e.tenant_id = new.tenant_id and e.aggregate_type = new.aggregate_type
          and e.aggregate_id = new.aggregate_id and e.sequence = new.sequence - 1;
        if not found then
            raise exception 'event % of stream %/% follows no event %: streams have no gaps',
                new.sequence, new.aggregate_type, new.aggregate_id, new.sequence - 1
                using errcode = 'check_violation';
        end if;
    end if;
    new.previous_hash := previous;
    new.hash := vextrus_event_hash_of(
        previous, new.tenant_id, new.aggregate_type, new.aggregate_id, new.sequence,
        new.global_position, new.transaction_id, new.event_type, new.event_version, new.payload,
        new.actor, new.actor_roles, new.command_id, new.idempotency_key, new.correlation_id,
        new.causation_id, new.request_id, new.client_address, new.user_agent, new.project_id,
        new.site_id, new.request_metadata, new.recorded_at);
    return new;
end
$$;

create trigger events_chain_hash
    before insert on events
    for each row execute function events_chain_hash();
alter table events enable always trigger events_chain_hash;

-- Existing events get their chain once, here, in stream order. This is the one time the log's
-- rows are written after insert; the refusing trigger is off only inside this migration's
-- transaction.
alter table events disable trigger events_no_update_or_delete;
do $$
declare
    e events;
    previous bytea;
begin
    for e in select * from events order by tenant_id, aggregate_type, aggregate_id, sequence loop
        if e.sequence = 1 then
            previous := null;
        end if;
        update events set previous_hash = previous, hash = vextrus_event_hash(e, previous)
        where tenant_id = e.tenant_id and aggregate_type = e.aggregate_type
          and aggregate_id = e.aggregate_id and sequence = e.sequence
        returning hash into previous;
    end loop;
end
$$;
alter table events enable always trigger events_no_update_or_delete;
alter table events alter column hash set not null;

-- The writer supplies the new metadata too; the hash stays the database's.
grant insert (actor_roles, idempotency_key, client_address, user_agent, project_id, site_id)
    on events to vextrus_writer;

-- 3. The audit queries: a user's activity, a correlation, and tenant-wide searches, each in
--    commit order (the log reader's order, so pages never skip a late commit).
--
--    Partial on a predicate that is always true: the audit queries imply it (they bound
--    transaction_id by the watermark), the chain trigger's lookup of the previous event does not,
--    so the planner can only use the primary key there. Without that, a plan made while the table
--    is empty (a new database: no statistics) may pick one of these tenant-first indexes, cache
--    it for the connection's life, and scan the whole tenant for every appended event.
create index events_audit_actor_idx on events (tenant_id, actor, transaction_id, global_position)
    where transaction_id is not null;
create index events_audit_correlation_idx on events (tenant_id, correlation_id, transaction_id, global_position)
    where transaction_id is not null;
create index events_audit_tenant_idx on events (tenant_id, transaction_id, global_position)
    where transaction_id is not null;

-- 4. The append call gains the new metadata.
drop function vextrus_append(uuid, text, text, bigint, bigint[], text[], text[], jsonb[], text, uuid, uuid, uuid,
                             text, jsonb, text[], text[], boolean);

create function vextrus_append(
    p_tenant uuid, p_aggregate_type text, p_aggregate_id text, p_stream_version bigint,
    p_sequences bigint[], p_event_types text[], p_event_versions text[], p_payloads jsonb[],
    p_actor text, p_actor_roles text[], p_command_id uuid, p_idempotency_key text,
    p_correlation_id uuid, p_causation_id uuid, p_request_id text, p_client_address inet,
    p_user_agent text, p_project_id uuid, p_site_id uuid, p_request_metadata jsonb,
    p_claim_scopes text[], p_claim_values text[], p_record_command boolean
) returns bigint
    language plpgsql volatile
    as $$
declare
    appended_last bigint;
begin
    perform vextrus_set_tenant(p_tenant);
    with appended as (
        insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                            payload, actor, actor_roles, command_id, idempotency_key, correlation_id,
                            causation_id, request_id, client_address, user_agent, project_id, site_id,
                            request_metadata)
        select p_tenant, p_aggregate_type, p_aggregate_id, e.sequence, e.event_type, e.event_version,
               e.payload, p_actor, p_actor_roles, p_command_id, p_idempotency_key, p_correlation_id,
               p_causation_id, p_request_id, p_client_address, p_user_agent, p_project_id, p_site_id,
               p_request_metadata
        from unnest(p_sequences, p_event_types, p_event_versions, p_payloads)
             with ordinality as e(sequence, event_type, event_version, payload, ord)
        -- In sequence order, so each row's chain link finds its predecessor.
        order by e.ord
        returning global_position
    ),
    claimed as (
        insert into unique_values (tenant_id, scope, value, aggregate_type, aggregate_id)
        select p_tenant, c.scope, c.value, p_aggregate_type, p_aggregate_id
        from unnest(p_claim_scopes, p_claim_values) as c(scope, value)
    ),
    -- "having": with no group by, the aggregate row exists only when the command is recorded.
    recorded as (
        insert into commands (tenant_id, command_id, aggregate_type, aggregate_id, stream_version, last_position,
                              event_count)
        select p_tenant, p_command_id, p_aggregate_type, p_aggregate_id, p_stream_version, max(global_position), count(*)
        from appended
        having p_record_command
    )
    select max(global_position) into appended_last from appended;
    return appended_last;
end
$$;

revoke all on function vextrus_append(uuid, text, text, bigint, bigint[], text[], text[], jsonb[], text, text[],
                                      uuid, text, uuid, uuid, text, inet, text, uuid, uuid, jsonb, text[], text[],
                                      boolean) from public;
grant execute on function vextrus_append(uuid, text, text, bigint, bigint[], text[], text[], jsonb[], text, text[],
                                         uuid, text, uuid, uuid, text, inet, text, uuid, uuid, jsonb, text[], text[],
                                         boolean) to vextrus_writer;

-- 5. Signed checkpoints (`vextrus audit checkpoint`): per tenant, a digest of every stream's head
--    hash at a log position, signed with Ed25519. `message` is the exact signed text, so anyone
--    holding the public key can check the signature without Vextrus (README, "Auditing").
create table audit_checkpoints (
    checkpoint_id   bigint      generated always as identity primary key,
    tenant_id       uuid        not null,
    -- The log position covered: every event at or before (transaction_id, global_position) in
    -- commit order. Taken below the watermark, so nothing can later commit behind it.
    transaction_id  bigint      not null,
    global_position bigint      not null,
    event_count     bigint      not null,
    stream_count    bigint      not null,
    -- SHA-256 over the sorted lines "<aggregate_type>\t<aggregate_id>\t<sequence>\t<hex hash>\n"
    -- of each stream's last event covered.
    heads_digest    bytea       not null,
    created_at      timestamptz not null default now(),
    -- The raw 32-byte Ed25519 public key, its signature over `message`.
    public_key      bytea       not null,
    message         text        not null,
    signature       bytea       not null
);

create index audit_checkpoints_tenant_idx on audit_checkpoints (tenant_id, checkpoint_id);

comment on table audit_checkpoints is
    'Signed per-tenant digests of the event log''s stream heads. Append-only.';

create function vextrus_refuse_change() returns trigger
    language plpgsql
    as $$
begin
    raise exception '% is append-only: % is refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
end
$$;

create trigger audit_checkpoints_append_only
    before update or delete on audit_checkpoints
    for each row execute function vextrus_refuse_change();
create trigger audit_checkpoints_no_truncate
    before truncate on audit_checkpoints
    for each statement execute function vextrus_refuse_change();
alter table audit_checkpoints enable always trigger audit_checkpoints_append_only;
alter table audit_checkpoints enable always trigger audit_checkpoints_no_truncate;

-- Auditors read their tenant's checkpoints through the API (as vextrus_reader, under RLS).
-- Not FORCEd: the owner records checkpoints for every tenant.
alter table audit_checkpoints enable row level security;
create policy audit_checkpoints_tenant_select on audit_checkpoints
    for select to vextrus_reader
    using (tenant_id = vextrus_current_tenant());
revoke all on audit_checkpoints from public;
grant select on audit_checkpoints to vextrus_reader;
