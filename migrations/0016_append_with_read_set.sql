-- One call appends a command's events and checks the streams its decision read (design.md D12),
-- instead of vextrus_check_reads and then vextrus_append: a posting was two PL/pgSQL calls and a
-- dozen statements (two advisory-lock passes, a version subquery evaluated twice per stream), about
-- 200 µs of the database's time before its event was even inserted (`vextrus bench ledger`).
--
-- The protocol is unchanged (0012): the written stream's lock is held exclusively until commit,
-- each stream the decision read is locked shared (exclusively when the command also writes it, as
-- a companion stream), all in one pass in key order so two appends never deadlock; then, in a
-- statement of its own (a fresh snapshot, after the locks are held), each read stream must still
-- be at the version the decision saw, else SQLSTATE VX409 names the one that moved.

drop function vextrus_append(uuid, text, text, bigint, bigint[], text[], text[], jsonb[], text, text[],
                             uuid, text, uuid, uuid, text, inet, text, uuid, uuid, jsonb, text[], text[],
                             boolean);
drop function vextrus_check_reads(uuid, text[], text[], bigint[], boolean[]);

create function vextrus_append(
    p_tenant uuid, p_aggregate_type text, p_aggregate_id text, p_stream_version bigint,
    p_sequences bigint[], p_event_types text[], p_event_versions text[], p_payloads jsonb[],
    p_actor text, p_actor_roles text[], p_command_id uuid, p_idempotency_key text,
    p_correlation_id uuid, p_causation_id uuid, p_request_id text, p_client_address inet,
    p_user_agent text, p_project_id uuid, p_site_id uuid, p_request_metadata jsonb,
    p_claim_scopes text[], p_claim_values text[], p_record_command boolean,
    -- The read set: streams the decision read, the version it saw of each, and whether the
    -- command writes it too (empty arrays: a decision on the command's own stream alone).
    p_read_types text[], p_read_ids text[], p_read_versions bigint[], p_read_exclusive boolean[]
) returns bigint
    language plpgsql volatile
    as $$
declare
    appended_last bigint;
    stale record;
begin
    perform vextrus_set_tenant(p_tenant);
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
                                      boolean, text[], text[], bigint[], boolean[]) from public;
grant execute on function vextrus_append(uuid, text, text, bigint, bigint[], text[], text[], jsonb[], text, text[],
                                         uuid, text, uuid, uuid, text, inet, text, uuid, uuid, jsonb, text[], text[],
                                         boolean, text[], text[], bigint[], boolean[]) to vextrus_writer;
