-- vextrus_append (0019) with its two existence checks written as index lookups the planner
-- cannot turn into joins.
--
-- Found with `vextrus bench http`: under a stream of organization creations the server's
-- PostgreSQL spent its time in hash joins over sequential scans (perf: MultiExecHash,
-- heapgetpage) inside this function. PL/pgSQL keeps a generic plan per statement, chosen while
-- the tables were small; `exists (select … from unique_values …)` over `generate_series` (which
-- the planner takes for 1,000 rows) became a hash semi-join reading every claimed value of the
-- log on each call, so an append cost more the longer the log. A LATERAL subquery with LIMIT is
-- never flattened into a join: each command's check is one primary-key lookup, whatever the
-- statistics said when the plan was made. Nothing else changes.

create or replace function vextrus_append(
    -- Per command (its index: its position in these arrays, from 1).
    p_tenants uuid[], p_aggregate_types text[], p_aggregate_ids text[], p_versions_before bigint[],
    p_groups integer[],
    p_actors text[], p_actor_roles text[], p_command_ids uuid[], p_idempotency_keys text[],
    p_correlation_ids uuid[], p_causation_ids uuid[], p_request_ids text[], p_client_addresses inet[],
    p_user_agents text[], p_project_ids uuid[], p_site_ids uuid[], p_request_metadata jsonb[],
    p_record_commands boolean[],
    -- Per event, in stream order within each command.
    p_event_commands integer[], p_event_types text[], p_event_versions text[], p_payloads jsonb[],
    -- Per claimed value.
    p_claim_commands integer[], p_claim_scopes text[], p_claim_values text[],
    -- Per stream read.
    p_read_commands integer[], p_read_types text[], p_read_ids text[], p_read_versions bigint[],
    p_read_exclusive boolean[]
) returns table (command integer, last_position bigint, error_code text, error_constraint text,
                 error_detail text, error_hint text)
    language plpgsql volatile security definer
    set search_path = public, pg_temp
    set plan_cache_mode = force_generic_plan
    set jit = off
    as $$
declare
    v_commands constant integer := coalesce(cardinality(p_tenants), 0);
    v_events constant integer := coalesce(cardinality(p_event_commands), 0);
    v_reads constant integer := coalesce(cardinality(p_read_commands), 0);
    v_claims constant integer := coalesce(cardinality(p_claim_commands), 0);
    v_xact constant xid8 := pg_current_xact_id();
    v_now constant timestamptz := now();
    -- Per command: its stream's head, the hash its next event chains to, its outcome.
    v_heads bigint[];
    v_chain bytea[];
    v_codes text[] := array_fill(null::text, array[v_commands]);
    v_constraints text[] := array_fill(null::text, array[v_commands]);
    v_details text[] := array_fill(null::text, array[v_commands]);
    v_hints text[] := array_fill(null::text, array[v_commands]);
    v_counts integer[] := array_fill(0, array[v_commands]);
    v_last bigint[] := array_fill(null::bigint, array[v_commands]);
    -- Per event: where it goes and its place in the chain (null: its command was refused).
    v_sequences bigint[] := array_fill(null::bigint, array[v_events]);
    v_positions bigint[] := array_fill(null::bigint, array[v_events]);
    v_hashes bytea[] := array_fill(null::bytea, array[v_events]);
    v_previous bytea[] := array_fill(null::bytea, array[v_events]);
    -- The advisory locks to take: a key per stream, value or command id, and whether exclusive.
    v_keys bigint[] := '{}';
    v_exclusive boolean[] := '{}';
    n integer;
    v_row record;
begin
    if v_commands = 0 then
        return;
    end if;
    -- Every lock of the call in one pass, in key order, so two calls never deadlock: the
    -- commands' streams, the streams they read (shared unless written too), their claimed values
    -- and their recorded command ids.
    for n in 1 .. v_commands loop
        v_keys := v_keys || vextrus_stream_lock_key(p_tenants[n], p_aggregate_types[n], p_aggregate_ids[n]);
        v_exclusive := v_exclusive || true;
        if p_record_commands[n] then
            v_keys := v_keys || vextrus_stream_lock_key(p_tenants[n], 'command', p_command_ids[n]::text);
            v_exclusive := v_exclusive || true;
        end if;
    end loop;
    for k in 1 .. v_reads loop
        v_keys := v_keys || vextrus_stream_lock_key(p_tenants[p_read_commands[k]], p_read_types[k], p_read_ids[k]);
        v_exclusive := v_exclusive || p_read_exclusive[k];
    end loop;
    for k in 1 .. v_claims loop
        v_keys := v_keys || vextrus_stream_lock_key(p_tenants[p_claim_commands[k]], 'claim:' || p_claim_scopes[k],
                                                    p_claim_values[k]);
        v_exclusive := v_exclusive || true;
    end loop;
    perform count(case when l.exclusive then pg_advisory_xact_lock(l.key)
                       else pg_advisory_xact_lock_shared(l.key) end)
    from (select v_keys[k] as key, bool_or(v_exclusive[k]) as exclusive
          from generate_series(1, cardinality(v_keys)) as k
          group by 1
          order by 1) as l;

    -- The head of each command's stream, under its exclusive lock.
    select array_agg(coalesce(h.sequence, 0) order by c.n), array_agg(h.hash order by c.n)
    into v_heads, v_chain
    from generate_series(1, v_commands) as c(n)
    left join lateral (
        select e.sequence, e.hash from events e
        where e.tenant_id = p_tenants[c.n] and e.aggregate_type = p_aggregate_types[c.n]
          and e.aggregate_id = p_aggregate_ids[c.n]
        order by e.sequence desc
        limit 1) as h on true;

    -- The checks, in the order a lone append makes them; a command keeps its first failure.
    -- 1. A stream it read moved (each stream looked up once).
    if v_reads > 0 then
        for v_row in
            with rd as (
                select x.k, p_read_commands[x.k] as n, p_tenants[p_read_commands[x.k]] as tenant,
                       p_read_types[x.k] as t, p_read_ids[x.k] as i, p_read_versions[x.k] as v
                from generate_series(1, v_reads) as x(k)),
            head as (
                select s.tenant, s.t, s.i,
                       (select coalesce(max(e.sequence), 0) from events e
                        where e.tenant_id = s.tenant and e.aggregate_type = s.t
                          and e.aggregate_id = s.i) as current
                from (select distinct rd.tenant, rd.t, rd.i from rd) as s)
            select rd.n, rd.t, rd.i
            from rd join head h on h.tenant = rd.tenant and h.t = rd.t and h.i = rd.i
            where h.current <> rd.v
            order by rd.k
        loop
            if v_codes[v_row.n] is null then
                v_codes[v_row.n] := 'VX409';
                v_details[v_row.n] := v_row.t;
                v_hints[v_row.n] := v_row.i;
            end if;
        end loop;
    end if;
    -- 2. Its own stream is not at the version it decided on.
    for n in 1 .. v_commands loop
        if v_codes[n] is null and v_heads[n] <> p_versions_before[n] then
            v_codes[n] := '23505';
            v_constraints[n] := 'events_pkey';
        end if;
    end loop;
    -- 3. Its command id is recorded already.
    if true = any(p_record_commands) then
        for v_row in
            select c.n from generate_series(1, v_commands) as c(n)
            cross join lateral (select 1 from commands k
                                where k.tenant_id = p_tenants[c.n] and k.command_id = p_command_ids[c.n]
                                limit 1) as taken
            where p_record_commands[c.n]
        loop
            if v_codes[v_row.n] is null then
                v_codes[v_row.n] := '23505';
                v_constraints[v_row.n] := 'commands_pkey';
            end if;
        end loop;
    end if;
    -- 4. A value it claims is taken.
    if v_claims > 0 then
        for v_row in
            select p_claim_commands[v.k] as n from generate_series(1, v_claims) as v(k)
            cross join lateral (select 1 from unique_values u
                                where u.tenant_id = p_tenants[p_claim_commands[v.k]]
                                  and u.scope = p_claim_scopes[v.k] and u.value = p_claim_values[v.k]
                                limit 1) as taken
            order by v.k
        loop
            if v_codes[v_row.n] is null then
                v_codes[v_row.n] := '23505';
                v_constraints[v_row.n] := 'unique_values_pkey';
            end if;
        end loop;
    end if;
    -- A group fails as a whole: a command that passed takes the failure of its group's first
    -- failing command (rare, so the quadratic walk runs only when something failed).
    if cardinality(array_remove(v_codes, null)) > 0 then
        for failed in 1 .. v_commands loop
            continue when v_codes[failed] is null;
            for k in 1 .. v_commands loop
                if v_codes[k] is null and p_groups[k] = p_groups[failed] then
                    v_codes[k] := v_codes[failed];
                    v_constraints[k] := v_constraints[failed];
                    v_details[k] := v_details[failed];
                    v_hints[k] := v_hints[failed];
                end if;
            end loop;
        end loop;
    end if;

    -- The events that pass: numbered in their streams, positioned in order, and chained, each to
    -- its stream's previous event (the locked head, then the command's own previous event).
    for e in 1 .. v_events loop
        n := p_event_commands[e];
        if v_codes[n] is null then
            v_counts[n] := v_counts[n] + 1;
            v_sequences[e] := p_versions_before[n] + v_counts[n];
            v_positions[e] := nextval('events_global_position_seq');
            v_previous[e] := v_chain[n];
            v_chain[n] := vextrus_event_hash_of(
                v_chain[n], p_tenants[n], p_aggregate_types[n], p_aggregate_ids[n], v_sequences[e],
                v_positions[e], v_xact, p_event_types[e], p_event_versions[e], p_payloads[e], p_actors[n],
                p_actor_roles[n]::text[], p_command_ids[n], p_idempotency_keys[n], p_correlation_ids[n],
                p_causation_ids[n], p_request_ids[n], p_client_addresses[n], p_user_agents[n],
                p_project_ids[n], p_site_ids[n], p_request_metadata[n], v_now);
            v_hashes[e] := v_chain[n];
            v_last[n] := v_positions[e];
        end if;
    end loop;

    if v_events > 0 then
        insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                            payload, actor, actor_roles, command_id, idempotency_key, correlation_id,
                            causation_id, request_id, client_address, user_agent, project_id, site_id,
                            request_metadata, recorded_at, global_position, transaction_id, hash,
                            previous_hash)
        overriding system value
        select p_tenants[x.n], p_aggregate_types[x.n], p_aggregate_ids[x.n], v_sequences[x.e],
               p_event_types[x.e], p_event_versions[x.e], p_payloads[x.e], p_actors[x.n],
               p_actor_roles[x.n]::text[], p_command_ids[x.n], p_idempotency_keys[x.n], p_correlation_ids[x.n],
               p_causation_ids[x.n], p_request_ids[x.n], p_client_addresses[x.n], p_user_agents[x.n],
               p_project_ids[x.n], p_site_ids[x.n], p_request_metadata[x.n], v_now, v_positions[x.e], v_xact,
               v_hashes[x.e], v_previous[x.e]
        from (select g.e, p_event_commands[g.e] as n from generate_series(1, v_events) as g(e)) as x
        where v_positions[x.e] is not null;
    end if;
    if v_claims > 0 then
        insert into unique_values (tenant_id, scope, value, aggregate_type, aggregate_id)
        select p_tenants[v.n], p_claim_scopes[v.k], p_claim_values[v.k], p_aggregate_types[v.n], p_aggregate_ids[v.n]
        from (select g.k, p_claim_commands[g.k] as n from generate_series(1, v_claims) as g(k)) as v
        where v_codes[v.n] is null;
    end if;
    if true = any(p_record_commands) then
        insert into commands (tenant_id, command_id, aggregate_type, aggregate_id, stream_version,
                              last_position, event_count)
        select p_tenants[c.n], p_command_ids[c.n], p_aggregate_types[c.n], p_aggregate_ids[c.n],
               p_versions_before[c.n] + v_counts[c.n], v_last[c.n], v_counts[c.n]
        from generate_series(1, v_commands) as c(n)
        where p_record_commands[c.n] and v_codes[c.n] is null;
    end if;

    return query
    select c.n, v_last[c.n], v_codes[c.n], v_constraints[c.n], v_details[c.n], v_hints[c.n]
    from generate_series(1, v_commands) as c(n);
end
$$;
