-- Group commit: one call appends the commands of many clients (commands/src/batch.rs).
--
-- Measured with pgbench on the 2-core machine (one client, commits not waited for, postings with
-- a read set of two streams): one vextrus_append call (0017) is about 500-590 µs of server work,
-- of which the INSERT of the row is about 160 µs; this function appends 8 postings in about
-- 2.1-2.6 ms and 16 in 3.3-3.6 ms (about 210 µs each), but a lone one in 1.0-1.4 ms (the start-up
-- of its large plan, generic by force: custom plans cost 3.5 ms). So the store sends a lone
-- command through vextrus_append and two or more waiting commands through this function.
--
-- Semantics per command are those of one vextrus_append call: its stream locked exclusively, its
-- read set locked (shared, or exclusive when the command writes that stream too), all locks of
-- the batch in one pass in key order; then, in a statement of its own (after the locks), the read
-- set checked (SQLSTATE VX409 when a stream moved), its stream at the version it decided on, its
-- command id and its claims not taken. A command that fails a check is left out with its error;
-- the others are appended. Commands of one group (a command and its companion stream) are
-- appended together or not at all. Within a batch a command is refused as stale when another
-- group of the batch writes a stream it read, and as a conflict when an earlier command writes
-- its stream: order inside a batch never lets a decision commit on state it did not see. The
-- hash chain is computed as vextrus_append computes it (0017), from the locked stream heads.

create function vextrus_append_batch(
    -- Per command (its index: its position in these arrays, from 1).
    p_tenants uuid[], p_aggregate_types text[], p_aggregate_ids text[], p_versions_before bigint[],
    -- Commands of one group (a command and its companion stream) append together or not at all.
    p_groups integer[],
    p_actors text[], p_actor_roles jsonb[], p_command_ids uuid[], p_idempotency_keys text[],
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
) returns table (command bigint, last_position bigint, error_code text, error_constraint text,
                 error_detail text, error_hint text)
    language plpgsql volatile security definer
    set search_path = public, pg_temp
    set plan_cache_mode = force_generic_plan
    as $$
begin
    perform count(case when l.exclusive then pg_advisory_xact_lock(l.key)
                       else pg_advisory_xact_lock_shared(l.key) end)
    from (select s.key, bool_or(s.exclusive) as exclusive
          from (select vextrus_stream_lock_key(c.tenant, c.t, c.i) as key, true as exclusive
                from unnest(p_tenants, p_aggregate_types, p_aggregate_ids) as c(tenant, t, i)
                union all
                select vextrus_stream_lock_key(p_tenants[r.n], r.t, r.i), r.x
                from unnest(p_read_commands, p_read_types, p_read_ids, p_read_exclusive) as r(n, t, i, x)
                union all
                select vextrus_stream_lock_key(p_tenants[v.n], 'claim:' || v.s, v.v), true
                from unnest(p_claim_commands, p_claim_scopes, p_claim_values) as v(n, s, v)
                union all
                select vextrus_stream_lock_key(c.tenant, 'command', c.id::text), true
                from unnest(p_tenants, p_command_ids, p_record_commands) as c(tenant, id, record)
                where c.record) as s
          group by 1
          order by 1) as l;

    return query
    with recursive
    cmd as materialized (
        select c.*, array(select jsonb_array_elements_text(c.roles_json)) as roles
        from unnest(p_tenants, p_aggregate_types, p_aggregate_ids, p_versions_before, p_groups,
                    p_command_ids, p_record_commands, p_actors, p_actor_roles, p_idempotency_keys,
                    p_correlation_ids, p_causation_ids, p_request_ids, p_client_addresses, p_user_agents,
                    p_project_ids, p_site_ids, p_request_metadata)
             with ordinality as c(tenant, atype, aid, vbefore, grp, command_id, record, actor, roles_json,
                                  idempotency_key, correlation_id, causation_id, request_id,
                                  client_address, user_agent, project_id, site_id, request_metadata, n)
    ),
    rd as materialized (
        select r.*, p_tenants[r.n] as tenant
        from unnest(p_read_commands, p_read_types, p_read_ids, p_read_versions)
             with ordinality as r(n, t, i, v, ord)
    ),
    cl as materialized (
        select v.*, p_tenants[v.n] as tenant
        from unnest(p_claim_commands, p_claim_scopes, p_claim_values)
             with ordinality as v(n, s, val, ord)
    ),
    -- The version of every stream the batch reads or writes, read once each (after the locks).
    head as materialized (
        select s.tenant, s.t, s.i,
               (select coalesce(max(e.sequence), 0) from events e
                where e.tenant_id = s.tenant and e.aggregate_type = s.t and e.aggregate_id = s.i) as current
        from (select r.tenant, r.t, r.i from rd r union select c.tenant, c.atype, c.aid from cmd c) as s
    ),
    failure as materialized (
        select distinct on (f.n) f.n, f.code, f.constraint_name, f.detail, f.hint
        from (
            -- A read stream that moved, or that another group of the batch writes.
            select r.n, 1 as check_order, r.ord, 'VX409' as code, null::text as constraint_name,
                   r.t as detail, r.i as hint
            from rd r
            join head h on h.tenant = r.tenant and h.t = r.t and h.i = r.i
            join cmd me on me.n = r.n
            where h.current <> r.v
               or exists (select 1 from cmd w
                          where w.grp <> me.grp and w.tenant = r.tenant and w.atype = r.t and w.aid = r.i)
            union all
            -- The command's stream moved, or an earlier command of the batch writes it.
            select c.n, 2, 0, '23505', 'events_pkey', null, null
            from cmd c
            join head h on h.tenant = c.tenant and h.t = c.atype and h.i = c.aid
            where h.current <> c.vbefore
               or exists (select 1 from cmd w
                          where w.n < c.n and w.tenant = c.tenant and w.atype = c.atype and w.aid = c.aid)
            union all
            -- A repeat of a recorded command.
            select c.n, 3, 0, '23505', 'commands_pkey', null, null
            from cmd c
            where c.record
              and (exists (select 1 from commands k where k.tenant_id = c.tenant and k.command_id = c.command_id)
                   or exists (select 1 from cmd w
                              where w.n < c.n and w.record and w.tenant = c.tenant and w.command_id = c.command_id))
            union all
            -- A value claimed already.
            select v.n, 4, v.ord, '23505', 'unique_values_pkey', null, null
            from cl v
            where exists (select 1 from unique_values u
                          where u.tenant_id = v.tenant and u.scope = v.s and u.value = v.val)
               or exists (select 1 from cl w
                          where w.ord < v.ord and w.tenant = v.tenant and w.s = v.s and w.val = v.val)
        ) as f
        order by f.n, f.check_order, f.ord
    ),
    -- A group fails as a whole, with its first failure.
    outcome as materialized (
        select c.*, g.code, g.constraint_name, g.detail, g.hint
        from cmd c
        left join (select distinct on (m.grp) m.grp, f.code, f.constraint_name, f.detail, f.hint
                   from failure f join cmd m on m.n = f.n
                   order by m.grp, f.n) as g on g.grp = c.grp
    ),
    -- The events of the commands that pass, numbered in their streams and positioned in order.
    numbered as materialized (
        select s.*, nextval('events_global_position_seq') as position
        from (select e.n, e.ord, e.type, e.version, e.payload,
                     o.vbefore + row_number() over (partition by e.n order by e.ord) as sequence,
                     row_number() over (partition by e.n order by e.ord) as k
              from unnest(p_event_commands, p_event_types, p_event_versions, p_payloads)
                   with ordinality as e(n, type, version, payload, ord)
              join outcome o on o.n = e.n and o.code is null
              order by e.ord) as s
    ),
    -- The hash chain: each event's previous is the locked head of its stream, then the command's
    -- previous event.
    chain as (
        select x.n, x.k, x.ord, x.sequence, x.position, x.type, x.version, x.payload, h.previous,
               vextrus_event_hash_of(h.previous, o.tenant, o.atype, o.aid, x.sequence, x.position,
                   pg_current_xact_id(), x.type, x.version, x.payload, o.actor, o.roles, o.command_id,
                   o.idempotency_key, o.correlation_id, o.causation_id, o.request_id, o.client_address,
                   o.user_agent, o.project_id, o.site_id, o.request_metadata, now()) as hash
        from numbered x
        join outcome o on o.n = x.n
        left join lateral (
            select p.hash as previous from events p
            where x.sequence > 1 and p.tenant_id = o.tenant and p.aggregate_type = o.atype
              and p.aggregate_id = o.aid and p.sequence = x.sequence - 1) as h on true
        where x.k = 1
        union all
        select x.n, x.k, x.ord, x.sequence, x.position, x.type, x.version, x.payload, c.hash,
               vextrus_event_hash_of(c.hash, o.tenant, o.atype, o.aid, x.sequence, x.position,
                   pg_current_xact_id(), x.type, x.version, x.payload, o.actor, o.roles, o.command_id,
                   o.idempotency_key, o.correlation_id, o.causation_id, o.request_id, o.client_address,
                   o.user_agent, o.project_id, o.site_id, o.request_metadata, now())
        from chain c
        join numbered x on x.n = c.n and x.k = c.k + 1
        join outcome o on o.n = x.n
    ),
    appended as (
        insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                            payload, actor, actor_roles, command_id, idempotency_key, correlation_id,
                            causation_id, request_id, client_address, user_agent, project_id, site_id,
                            request_metadata, recorded_at, global_position, transaction_id, hash,
                            previous_hash)
        overriding system value
        select o.tenant, o.atype, o.aid, c.sequence, c.type, c.version, c.payload, o.actor, o.roles,
               o.command_id, o.idempotency_key, o.correlation_id, o.causation_id, o.request_id,
               o.client_address, o.user_agent, o.project_id, o.site_id, o.request_metadata, now(),
               c.position, pg_current_xact_id(), c.hash, c.previous
        from chain c
        join outcome o on o.n = c.n
        order by c.ord
        returning 1
    ),
    claimed as (
        insert into unique_values (tenant_id, scope, value, aggregate_type, aggregate_id)
        select o.tenant, v.s, v.val, o.atype, o.aid
        from cl v join outcome o on o.n = v.n and o.code is null
    ),
    last as (
        select x.n, max(x.position) as position, count(*)::integer as count
        from numbered x group by x.n
    ),
    recorded as (
        insert into commands (tenant_id, command_id, aggregate_type, aggregate_id, stream_version,
                              last_position, event_count)
        select o.tenant, o.command_id, o.atype, o.aid, o.vbefore + coalesce(l.count, 0), l.position,
               coalesce(l.count, 0)
        from outcome o left join last l on l.n = o.n
        where o.record and o.code is null
    )
    select o.n, l.position, o.code, o.constraint_name, o.detail, o.hint
    from outcome o left join last l on l.n = o.n
    where (select count(*) from appended) >= 0
    order by o.n;
end
$$;

revoke all on function vextrus_append_batch(uuid[], text[], text[], bigint[], integer[], text[], jsonb[], uuid[],
                                            text[], uuid[], uuid[], text[], inet[], text[], uuid[], uuid[], jsonb[],
                                            boolean[], integer[], text[], text[], jsonb[], integer[], text[], text[],
                                            integer[], text[], text[], bigint[], boolean[]) from public;
grant execute on function vextrus_append_batch(uuid[], text[], text[], bigint[], integer[], text[], jsonb[], uuid[],
                                               text[], uuid[], uuid[], text[], inet[], text[], uuid[], uuid[], jsonb[],
                                               boolean[], integer[], text[], text[], jsonb[], integer[], text[], text[],
                                               integer[], text[], text[], bigint[], boolean[]) to vextrus_writer;
