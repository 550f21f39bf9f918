-- A second definition of the event hash, about a third of the first's cost per event, and the
-- hash version each event was chained with.
--
-- Measured in PL/pgSQL on the 2-core machine (100,000 calls, a 110-byte payload): version 1
-- (0010: a jsonb_build_array of 24 values printed as text, then SHA-256) costs 7.2–8.7 µs per
-- event, most of it turning each value into jsonb and the array back into text. In a command of
-- ten events that was about a tenth of the append's whole cost (issue 19: 10-event commands at
-- 0.76 of a raw INSERT). Version 2 hashes bytes: each value in its binary form behind its length,
-- no JSON. The values every event of a command shares (tenant, stream, actor, request metadata,
-- transaction, time) are encoded once per command and appended to each event's own values, so an
-- event costs 2.4–2.9 µs and a single-event command 5.9 µs, where version 1 cost 7.2–8.7.
--
-- Version 2, for auditors reimplementing it: SHA-256 over the 16 ASCII bytes `vextrus-event-v2`
-- followed by 23 fields, each a 4-byte big-endian length and then that many bytes, or the length
-- -1 (`ff ff ff ff`) and no bytes for an absent value:
--
--   previous hash (32 bytes; absent for a stream's first event), sequence, global_position,
--   event_type, event_version, payload, tenant_id, aggregate_type, aggregate_id, transaction_id,
--   actor, actor_roles, command_id, idempotency_key, correlation_id, causation_id, request_id,
--   client_address, user_agent, project_id, site_id, request_metadata, recorded_at
--
-- with integers (sequence, global_position, transaction_id, and recorded_at as microseconds since
-- the Unix epoch) as 8 bytes big-endian, uuids as their 16 bytes, text as UTF-8, and payload,
-- actor_roles (as a jsonb array), client_address and request_metadata as the UTF-8 of PostgreSQL's
-- text form (`payload::text`, `to_jsonb(actor_roles)::text`, `client_address::text`, e.g.
-- `10.1.2.3/32`). The lengths keep values from moving between fields; changing any value, or the
-- chain's order, changes the hash.
--
-- Events keep the version they were chained with (`hash_version`: 1 for every event before this
-- migration, 2 from now on); `vextrus_event_hash(e, previous)` and `vextrus audit verify` compute
-- the one an event names. Its strength is the first's: SHA-256 over every value, chained. Setting
-- `hash_version` is the database's, like the hash: the writer cannot insert rows at all (0017).

alter table events add column hash_version smallint not null default 1;
alter table events alter column hash_version set default 2;
comment on column events.hash_version is
    'The definition `hash` was computed with: 1 (migration 0010) or 2 (migration 0029).';

-- One value as version 2 encodes it: its length (4 bytes, big-endian) and its bytes, or -1 alone
-- when absent.
create function vextrus_hash_field(value bytea) returns bytea
    language sql immutable parallel safe
    return coalesce(int4send(length(value)) || value, '\xffffffff'::bytea);
create function vextrus_hash_field(value text) returns bytea
    language sql stable parallel safe
    return coalesce(int4send(octet_length(value)) || convert_to(value, 'UTF8'), '\xffffffff'::bytea);
create function vextrus_hash_field(value uuid) returns bytea
    language sql immutable parallel safe
    return coalesce('\x00000010'::bytea || uuid_send(value), '\xffffffff'::bytea);
create function vextrus_hash_field(value bigint) returns bytea
    language sql immutable parallel safe
    return coalesce('\x00000008'::bytea || int8send(value), '\xffffffff'::bytea);
create function vextrus_hash_field(value xid8) returns bytea
    language sql immutable parallel safe
    return coalesce('\x00000008'::bytea || xid8send(value), '\xffffffff'::bytea);

-- The last 17 fields of version 2: those every event of one command shares, encoded.
create function vextrus_command_hash_part(
    tenant_id uuid, aggregate_type text, aggregate_id text, transaction_id xid8, actor text,
    actor_roles text[], command_id uuid, idempotency_key text, correlation_id uuid,
    causation_id uuid, request_id text, client_address inet, user_agent text, project_id uuid,
    site_id uuid, request_metadata jsonb, recorded_at timestamptz
) returns bytea
    language sql stable parallel safe
    return vextrus_hash_field(tenant_id) || vextrus_hash_field(aggregate_type)
        || vextrus_hash_field(aggregate_id) || vextrus_hash_field(transaction_id)
        || vextrus_hash_field(actor) || vextrus_hash_field(to_jsonb(actor_roles)::text)
        || vextrus_hash_field(command_id) || vextrus_hash_field(idempotency_key)
        || vextrus_hash_field(correlation_id) || vextrus_hash_field(causation_id)
        || vextrus_hash_field(request_id) || vextrus_hash_field(client_address::text)
        || vextrus_hash_field(user_agent) || vextrus_hash_field(project_id)
        || vextrus_hash_field(site_id) || vextrus_hash_field(request_metadata::text)
        || vextrus_hash_field((extract(epoch from recorded_at) * 1000000)::bigint);

-- The version-2 hash of an event chained to `previous`, given its command's part. The constant
-- is `vextrus-event-v2` in ASCII.
create function vextrus_event_hash_v2_of(
    previous bytea, sequence bigint, global_position bigint, event_type text, event_version text,
    payload jsonb, command_part bytea
) returns bytea
    language sql stable parallel safe
    return sha256('\x766578747275732d6576656e742d7632'::bytea || vextrus_hash_field(previous)
        || vextrus_hash_field(sequence) || vextrus_hash_field(global_position)
        || vextrus_hash_field(event_type) || vextrus_hash_field(event_version)
        || vextrus_hash_field(payload::text) || command_part);

-- The hash of stored event `e` chained to `previous`, by the version it names: for auditors' SQL,
-- e.g. `select vextrus_event_hash(e, e.previous_hash) = e.hash from events e`. Null for a version
-- this database does not know (verify reports such an event as altered).
create or replace function vextrus_event_hash(e events, previous bytea) returns bytea
    language sql stable parallel safe
    return case e.hash_version
        when 2 then vextrus_event_hash_v2_of(
            previous, e.sequence, e.global_position, e.event_type, e.event_version, e.payload,
            vextrus_command_hash_part(
                e.tenant_id, e.aggregate_type, e.aggregate_id, e.transaction_id, e.actor,
                e.actor_roles, e.command_id, e.idempotency_key, e.correlation_id, e.causation_id,
                e.request_id, e.client_address, e.user_agent, e.project_id, e.site_id,
                e.request_metadata, e.recorded_at))
        when 1 then vextrus_event_hash_of(
            previous, e.tenant_id, e.aggregate_type, e.aggregate_id, e.sequence, e.global_position,
            e.transaction_id, e.event_type, e.event_version, e.payload, e.actor, e.actor_roles,
            e.command_id, e.idempotency_key, e.correlation_id, e.causation_id, e.request_id,
            e.client_address, e.user_agent, e.project_id, e.site_id, e.request_metadata,
            e.recorded_at)
    end;

-- Rows the owner inserts without a hash (operator tooling, benchmarks seeding a log, tests) are
-- chained with version 2 as well.
create or replace function events_chain_hash() returns trigger
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
    new.hash_version := 2;
    new.hash := vextrus_event_hash_v2_of(
        previous, new.sequence, new.global_position, new.event_type, new.event_version, new.payload,
        vextrus_command_hash_part(
            new.tenant_id, new.aggregate_type, new.aggregate_id, new.transaction_id, new.actor,
            new.actor_roles, new.command_id, new.idempotency_key, new.correlation_id,
            new.causation_id, new.request_id, new.client_address, new.user_agent, new.project_id,
            new.site_id, new.request_metadata, new.recorded_at));
    return new;
end
$$;

-- vextrus_append (0028) chaining with version 2: each command's shared part once, then its
-- events. Nothing else changes.
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
    -- Per command: the fields all its events share, encoded once (vextrus_command_hash_part).
    v_parts bytea[] := array_fill(null::bytea, array[v_commands]);
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
    -- its stream's previous event (the locked head, then the command's own previous event). The
    -- fields a command's events share are encoded once per command.
    for n in 1 .. v_commands loop
        if v_codes[n] is null then
            v_parts[n] := vextrus_command_hash_part(
                p_tenants[n], p_aggregate_types[n], p_aggregate_ids[n], v_xact, p_actors[n],
                p_actor_roles[n]::text[], p_command_ids[n], p_idempotency_keys[n], p_correlation_ids[n],
                p_causation_ids[n], p_request_ids[n], p_client_addresses[n], p_user_agents[n],
                p_project_ids[n], p_site_ids[n], p_request_metadata[n], v_now);
        end if;
    end loop;
    for e in 1 .. v_events loop
        n := p_event_commands[e];
        if v_codes[n] is null then
            v_counts[n] := v_counts[n] + 1;
            v_sequences[e] := p_versions_before[n] + v_counts[n];
            v_positions[e] := nextval('events_global_position_seq');
            v_previous[e] := v_chain[n];
            v_chain[n] := vextrus_event_hash_v2_of(
                v_chain[n], v_sequences[e], v_positions[e], p_event_types[e], p_event_versions[e],
                p_payloads[e], v_parts[n]);
            v_hashes[e] := v_chain[n];
            v_last[n] := v_positions[e];
        end if;
    end loop;

    if v_events > 0 then
        insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                            payload, actor, actor_roles, command_id, idempotency_key, correlation_id,
                            causation_id, request_id, client_address, user_agent, project_id, site_id,
                            request_metadata, recorded_at, global_position, transaction_id, hash,
                            previous_hash, hash_version)
        overriding system value
        select p_tenants[x.n], p_aggregate_types[x.n], p_aggregate_ids[x.n], v_sequences[x.e],
               p_event_types[x.e], p_event_versions[x.e], p_payloads[x.e], p_actors[x.n],
               p_actor_roles[x.n]::text[], p_command_ids[x.n], p_idempotency_keys[x.n], p_correlation_ids[x.n],
               p_causation_ids[x.n], p_request_ids[x.n], p_client_addresses[x.n], p_user_agents[x.n],
               p_project_ids[x.n], p_site_ids[x.n], p_request_metadata[x.n], v_now, v_positions[x.e], v_xact,
               v_hashes[x.e], v_previous[x.e], 2
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
