-- The hash chain computed by the append call, once per event, instead of by a PL/pgSQL row
-- trigger; and the append call as the only way the application writes the log.
--
-- Measured with pgbench on the 2-core machine (one client, commits not waited for): inserting a
-- journal event into `events` cost 197 µs without the trigger and 295 µs with it; the hash itself
-- (vextrus_event_hash_of over the row) is about 30 µs of that. The rest was the trigger's own
-- overhead: a function call per row that unpacks NEW field by field. The definition of the hash
-- (0010) does not change, so `vextrus audit verify` checks old and new events alike.
--
-- vextrus_append now runs as the owner of the log (SECURITY DEFINER), which may set the columns
-- the database owns (global_position from its sequence, transaction_id, recorded_at, hash,
-- previous_hash); the writer role loses INSERT on `events`, `unique_values` and `commands`
-- altogether, so no application role can write a row, a hash or a position of its own. The call
-- checks what the trigger checked: the command's events follow the stream's head with no gap
-- (under the stream's exclusive lock, so the head cannot move meanwhile). The trigger stays for
-- rows inserted without a hash by the owner (operator tooling, benchmarks seeding a log, tests);
-- its WHEN condition costs the call's rows nothing.

create or replace function vextrus_append(
    p_tenant uuid, p_aggregate_type text, p_aggregate_id text, p_stream_version bigint,
    p_sequences bigint[], p_event_types text[], p_event_versions text[], p_payloads jsonb[],
    p_actor text, p_actor_roles text[], p_command_id uuid, p_idempotency_key text,
    p_correlation_id uuid, p_causation_id uuid, p_request_id text, p_client_address inet,
    p_user_agent text, p_project_id uuid, p_site_id uuid, p_request_metadata jsonb,
    p_claim_scopes text[], p_claim_values text[], p_record_command boolean,
    p_read_types text[], p_read_ids text[], p_read_versions bigint[], p_read_exclusive boolean[]
) returns bigint
    language plpgsql volatile security definer
    set search_path = public, pg_temp
    as $$
declare
    v_last bigint;
    stale record;
    v_head bigint;
    v_previous bytea;
    v_xact xid8 := pg_current_xact_id();
    v_now timestamptz := now();
    v_count integer := cardinality(p_sequences);
    v_positions bigint[] := array_fill(null::bigint, array[cardinality(p_sequences)]);
    v_hashes bytea[] := array_fill(null::bytea, array[cardinality(p_sequences)]);
    v_previous_hashes bytea[] := array_fill(null::bytea, array[cardinality(p_sequences)]);
begin
    perform count(case when l.exclusive then pg_advisory_xact_lock(l.key)
                       else pg_advisory_xact_lock_shared(l.key) end)
    from (select vextrus_stream_lock_key(p_tenant, s.t, s.i) as key, bool_or(s.x) as exclusive
          from (select p_aggregate_type as t, p_aggregate_id as i, true as x
                union all
                select * from unnest(p_read_types, p_read_ids, p_read_exclusive)) as s
          group by 1
          order by 1) as l;
    if cardinality(p_read_types) > 0 then
        select r.t as aggregate_type, r.i as aggregate_id, r.v as expected, h.current
        into stale
        from unnest(p_read_types, p_read_ids, p_read_versions) as r(t, i, v)
        cross join lateral (
            select coalesce(max(e.sequence), 0) as current from events e
            where e.tenant_id = p_tenant and e.aggregate_type = r.t and e.aggregate_id = r.i) as h
        where h.current <> r.v
        limit 1;
        if found then
            raise exception using
                errcode = 'VX409',
                message = format('stale read: %s %s is at version %s, the decision saw %s',
                                 stale.aggregate_type, stale.aggregate_id, stale.current, stale.expected),
                detail = stale.aggregate_type,
                hint = stale.aggregate_id;
        end if;
    end if;

    if v_count > 0 then
        -- The stream's head, under its exclusive lock. A command decided on an older version
        -- conflicts, exactly as the primary key would refuse its first event; one that skips
        -- versions is a bug the log refuses.
        select e.sequence, e.hash into v_head, v_previous from events e
        where e.tenant_id = p_tenant and e.aggregate_type = p_aggregate_type
          and e.aggregate_id = p_aggregate_id
        order by e.sequence desc
        limit 1;
        v_head := coalesce(v_head, 0);
        if p_sequences[1] <= v_head then
            raise exception using
                errcode = 'unique_violation',
                constraint = 'events_pkey',
                message = format('stream %s %s is at version %s: event %s exists', p_aggregate_type,
                                 p_aggregate_id, v_head, p_sequences[1]);
        end if;
        for i in 1 .. v_count loop
            if p_sequences[i] <> v_head + i then
                raise exception 'event % of stream %/% follows no event %: streams have no gaps',
                    p_sequences[i], p_aggregate_type, p_aggregate_id, p_sequences[i] - 1
                    using errcode = 'check_violation';
            end if;
            v_positions[i] := nextval('events_global_position_seq');
            v_previous_hashes[i] := v_previous;
            v_previous := vextrus_event_hash_of(
                v_previous, p_tenant, p_aggregate_type, p_aggregate_id, p_sequences[i], v_positions[i],
                v_xact, p_event_types[i], p_event_versions[i], p_payloads[i], p_actor, p_actor_roles,
                p_command_id, p_idempotency_key, p_correlation_id, p_causation_id, p_request_id,
                p_client_address, p_user_agent, p_project_id, p_site_id, p_request_metadata, v_now);
            v_hashes[i] := v_previous;
        end loop;
    end if;

    with appended as (
        insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                            payload, actor, actor_roles, command_id, idempotency_key, correlation_id,
                            causation_id, request_id, client_address, user_agent, project_id, site_id,
                            request_metadata, recorded_at, global_position, transaction_id, hash,
                            previous_hash)
        overriding system value
        select p_tenant, p_aggregate_type, p_aggregate_id, e.sequence, e.event_type, e.event_version,
               e.payload, p_actor, p_actor_roles, p_command_id, p_idempotency_key, p_correlation_id,
               p_causation_id, p_request_id, p_client_address, p_user_agent, p_project_id, p_site_id,
               p_request_metadata, v_now, e.position, v_xact, e.hash, e.previous_hash
        from unnest(p_sequences, p_event_types, p_event_versions, p_payloads, v_positions, v_hashes,
                    v_previous_hashes)
             with ordinality as e(sequence, event_type, event_version, payload, position, hash,
                                  previous_hash, ord)
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
    select max(global_position) into v_last from appended;
    return v_last;
end
$$;

-- Column by column, as 0002 and 0010 granted it (a table-wide REVOKE leaves column grants).
revoke insert (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
               actor, command_id, correlation_id, causation_id, request_id, request_metadata,
               actor_roles, idempotency_key, client_address, user_agent, project_id, site_id)
    on events from vextrus_writer;
revoke insert on events from vextrus_writer;
revoke insert on unique_values, commands from vextrus_writer;

drop trigger events_chain_hash on events;
create trigger events_chain_hash
    before insert on events
    for each row when (new.hash is null) execute function events_chain_hash();
alter table events enable always trigger events_chain_hash;
