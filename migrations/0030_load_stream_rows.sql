-- A stream's events (and the recorded outcome of a repeated command) as rows, instead of one
-- jsonb array built on the server and parsed again by the store.
--
-- `vextrus_load_stream` (0004) built a jsonb object per event and aggregated them into an array,
-- which the store received as text and parsed whole. Loading is what a command costs whenever
-- the store has not kept its stream's state (a miss: a stream's first command after a start,
-- one evicted, a conflict's recheck); `bench lag --rate 2000` spent 4.9 s of the database's time
-- in it in a 10 s run before the state was kept (README, "What the load cost"). Rows skip the
-- building and the second parse. Same snapshot (one statement), same privileges (security
-- invoker, row-level security as the writer), same answers.

create function vextrus_load_stream_rows(
    p_tenant uuid, p_command_id uuid, p_aggregate_type text, p_aggregate_id text
) returns table (
    -- One row per event, in sequence order, with the recorded_* columns null ...
    sequence bigint, event_type text, payload jsonb, global_position bigint,
    -- ... after, first and only when `p_command_id` was recorded, one row with sequence null and
    -- the command's recorded outcome.
    recorded_aggregate_type text, recorded_aggregate_id text, recorded_stream_version bigint,
    recorded_last_position bigint, recorded_event_count integer
)
    language plpgsql volatile
    as $$
#variable_conflict use_column
begin
    perform vextrus_set_tenant(p_tenant);
    return query
        select null::bigint, null::text, null::jsonb, null::bigint, c.aggregate_type, c.aggregate_id,
               c.stream_version, c.last_position, c.event_count
        from commands c
        where c.tenant_id = p_tenant and c.command_id = p_command_id
        union all
        select e.sequence, e.event_type, e.payload, e.global_position, null, null, null, null, null
        from events e
        where e.tenant_id = p_tenant and e.aggregate_type = p_aggregate_type
          and e.aggregate_id = p_aggregate_id
        order by 1 nulls first;
end
$$;

revoke all on function vextrus_load_stream_rows(uuid, uuid, text, text) from public;
grant execute on function vextrus_load_stream_rows(uuid, uuid, text, text) to vextrus_writer;

-- The store no longer calls the jsonb version.
drop function vextrus_load_stream(uuid, uuid, text, text);
