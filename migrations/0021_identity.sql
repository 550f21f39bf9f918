-- Identity and access (issue 16): tenants and users are aggregates of the log like any other
-- (`tenant` streams in the platform's partition, the nil tenant; `user` streams in their tenant's).
-- What this migration adds is what the API asks of the log on every request, and what analysts
-- must not read.

-- Is this request's token still good? Asked once per request, straight from the log, so a
-- suspension, a disable, a password change or a sign-out refuses tokens at once, in every API
-- process, with no cache to go stale:
--   tenant_event: the tenant's latest event among p_tenant_events (suspended or resumed), read from
--                 the platform's partition, which the caller's role cannot read itself;
--   outdated:     the user's stream has an event among p_outdating after p_since (the stream
--                 version the token was issued at): roles, password or standing changed;
--   ended:        ... or an event among p_ending that names the token's session.
-- The event types come from the caller, which owns their names (vextrus_domain::identity). Both
-- lookups are primary-key range scans; a token issued minutes ago has few events after it.
create function vextrus_access_check(
    p_tenant uuid,
    p_user text,
    p_since bigint,
    p_session text,
    p_tenant_events text[],
    p_outdating text[],
    p_ending text[])
    returns table (tenant_event text, outdated boolean, ended boolean)
    language plpgsql stable security definer
    set search_path = pg_catalog, public
as $$
-- PL/pgSQL, not SQL: a SECURITY DEFINER SQL function is never inlined and is planned again on
-- every call (pgbench, one call per transaction as vextrus_reader: 0.60-0.75 ms above an empty
-- transaction as a SQL function, 0.14 ms as this one, whose plans a session keeps).
begin
    tenant_event := (select t.event_type from events t
                      where t.tenant_id = '00000000-0000-0000-0000-000000000000'
                        and t.aggregate_type = 'tenant' and t.aggregate_id = p_tenant::text
                        and t.event_type = any (p_tenant_events)
                      order by t.sequence desc
                      limit 1);
    outdated := false;
    ended := false;
    if p_user is not null then
        select coalesce(bool_or(e.event_type = any (p_outdating)), false),
               coalesce(bool_or(e.event_type = any (p_ending)
                                and e.payload->>'session_id' = p_session), false)
          into outdated, ended
          from events e
         where e.tenant_id = p_tenant and e.aggregate_type = 'user' and e.aggregate_id = p_user
           and e.sequence > p_since
           and (e.event_type = any (p_outdating) or e.event_type = any (p_ending));
    end if;
    return next;
end
$$;

revoke all on function vextrus_access_check(uuid, text, bigint, text, text[], text[], text[]) from public;
grant execute on function vextrus_access_check(uuid, text, bigint, text, text[], text[], text[])
    to vextrus_reader;

-- Users' streams hold their password hashes (Argon2id) and the SHA-256 of one-time secrets. The
-- API's audit routes redact them; analysts granted the log read everything else of their tenant's
-- log, but not users' streams.
alter policy events_analyst_select on events
    using (tenant_id = (select vextrus_current_tenant()) and aggregate_type <> 'user');

-- When each API key was last used, for administrators' lists: operational metadata, not a
-- fact of the log (a row per key, written at most once a minute per key and API process).
create table api_key_last_use (
    tenant_id    uuid        not null,
    key_id       uuid        not null,
    last_used_at timestamptz not null,
    constraint api_key_last_use_pkey primary key (tenant_id, key_id)
);

alter table api_key_last_use enable row level security;
alter table api_key_last_use force row level security;

create policy api_key_last_use_tenant on api_key_last_use
    for all to vextrus_writer, vextrus_reader
    using (tenant_id = (select vextrus_current_tenant()))
    with check (tenant_id = (select vextrus_current_tenant()));

revoke all on api_key_last_use from public;
grant select, insert, update on api_key_last_use to vextrus_writer;
grant select on api_key_last_use to vextrus_reader;
