-- The event store's two database calls. Each is one round trip; together with the aggregate's
-- decision in between they execute a command (commands/src/store.rs).
--
-- Why functions: the write path is bound by round trips, not by disk. Setting the tenant, checking
-- the command id and loading the stream are one call; setting the tenant and appending events,
-- unique claims and the command's outcome are another, committed on its own. Correctness does not
-- depend on the two calls sharing a transaction: the load is one consistent snapshot, and the
-- append is checked by the primary keys (a concurrent append to the stream, a concurrent repeat of
-- the command, a value claimed meanwhile), which the store maps to typed errors by constraint name.
-- Both run as the caller (security invoker), under the caller's privileges and row-level security.

-- The command's recorded outcome, if this command id was executed before, and the stream's events
-- in order, as of one snapshot.
create function vextrus_load_stream(
    p_tenant uuid, p_command_id uuid, p_aggregate_type text, p_aggregate_id text
) returns table (recorded_command jsonb, events jsonb)
    language plpgsql volatile
    as $$
begin
    perform vextrus_set_tenant(p_tenant);
    return query select
        (select jsonb_build_object(
                    'aggregate_type', c.aggregate_type, 'aggregate_id', c.aggregate_id,
                    'stream_version', c.stream_version, 'last_position', c.last_position,
                    'event_count', c.event_count)
         from commands c
         where c.tenant_id = p_tenant and c.command_id = p_command_id),
        coalesce(
            (select jsonb_agg(jsonb_build_object(
                        'sequence', e.sequence, 'event_type', e.event_type, 'payload', e.payload,
                        'global_position', e.global_position) order by e.sequence)
             from events e
             where e.tenant_id = p_tenant and e.aggregate_type = p_aggregate_type
               and e.aggregate_id = p_aggregate_id),
            '[]'::jsonb);
end
$$;

-- Appends a command's events (one multi-row insert) and their unique claims and, for a command
-- sent with an idempotency key (p_record_command), its outcome; returns the position of the last
-- event (null when there were none). Called outside an explicit transaction it commits on return.
-- Commands without a key carry a fresh id that can never repeat: recording them would cost a
-- second row per command for nothing (their events already carry the command id).
create function vextrus_append(
    p_tenant uuid, p_aggregate_type text, p_aggregate_id text, p_stream_version bigint,
    p_sequences bigint[], p_event_types text[], p_event_versions text[], p_payloads jsonb[],
    p_actor text, p_command_id uuid, p_correlation_id uuid, p_causation_id uuid,
    p_request_id text, p_request_metadata jsonb, p_claim_scopes text[], p_claim_values text[],
    p_record_command boolean
) returns bigint
    language plpgsql volatile
    as $$
declare
    appended_last bigint;
begin
    perform vextrus_set_tenant(p_tenant);
    with appended as (
        insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                            payload, actor, command_id, correlation_id, causation_id, request_id, request_metadata)
        select p_tenant, p_aggregate_type, p_aggregate_id, e.sequence, e.event_type, e.event_version,
               e.payload, p_actor, p_command_id, p_correlation_id, p_causation_id, p_request_id, p_request_metadata
        from unnest(p_sequences, p_event_types, p_event_versions, p_payloads)
             as e(sequence, event_type, event_version, payload)
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

revoke all on function vextrus_set_tenant(uuid) from public;
revoke all on function vextrus_load_stream(uuid, uuid, text, text) from public;
revoke all on function vextrus_append(uuid, text, text, bigint, bigint[], text[], text[], jsonb[], text, uuid, uuid,
                                      uuid, text, jsonb, text[], text[], boolean) from public;
grant execute on function vextrus_set_tenant(uuid) to vextrus_writer, vextrus_projector, vextrus_reader;
grant execute on function vextrus_load_stream(uuid, uuid, text, text) to vextrus_writer;
grant execute on function vextrus_append(uuid, text, text, bigint, bigint[], text[], text[], jsonb[], text, uuid, uuid,
                                         uuid, text, jsonb, text[], text[], boolean) to vextrus_writer;
