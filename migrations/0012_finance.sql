-- Finance I: decisions that read several streams (design.md D12) and the general ledger's read
-- models (projections/src/finance.rs).

-- 1. Read sets. A command that decides on other streams (a posting reads its organization's
--    ledger and hierarchy) appends only if each of them is still at the version the decision
--    saw. Checkers and writers of a stream are ordered by a transaction-scoped advisory lock on
--    the stream: every append holds its stream's lock exclusively until commit, a check holds the
--    streams it read shared until its own append commits. So a check either waits for a
--    concurrent writer's commit and then sees its event (and refuses: the decision is stale), or
--    holds the writer off until the checked append has committed. Never both committed on state
--    the other did not see.

-- The advisory lock key of one stream. Two streams may share a key (a 64-bit hash): that only
-- makes one wait for the other, never lets a check miss a write.
create function vextrus_stream_lock_key(p_tenant uuid, p_aggregate_type text, p_aggregate_id text)
    returns bigint
    language sql immutable parallel safe
    as $$ select hashtextextended(p_tenant::text || '/' || p_aggregate_type || '/' || p_aggregate_id, 0) $$;

-- Locks the streams a decision read (shared; exclusive for those the command also writes), in
-- key order so that two checks never deadlock, then refuses with SQLSTATE VX409 when one of them
-- is no longer at the version the decision saw. Each statement of this function takes a fresh
-- snapshot (read committed), so the versions are read after the locks are held.
create function vextrus_check_reads(
    p_tenant uuid, p_aggregate_types text[], p_aggregate_ids text[], p_versions bigint[],
    p_exclusive boolean[]
) returns void
    language plpgsql volatile
    as $$
declare
    lock record;
    stale record;
begin
    perform vextrus_set_tenant(p_tenant);
    for lock in select vextrus_stream_lock_key(p_tenant, r.t, r.i) as key, bool_or(r.x) as exclusive
                from unnest(p_aggregate_types, p_aggregate_ids, p_exclusive) as r(t, i, x)
                group by 1 order by 1 loop
        if lock.exclusive then
            perform pg_advisory_xact_lock(lock.key);
        else
            perform pg_advisory_xact_lock_shared(lock.key);
        end if;
    end loop;
    select r.t as aggregate_type, r.i as aggregate_id, r.v as expected,
           coalesce((select max(e.sequence) from events e
                     where e.tenant_id = p_tenant and e.aggregate_type = r.t and e.aggregate_id = r.i), 0) as current
    into stale
    from unnest(p_aggregate_types, p_aggregate_ids, p_versions) as r(t, i, v)
    where r.v <> coalesce((select max(e.sequence) from events e
                           where e.tenant_id = p_tenant and e.aggregate_type = r.t and e.aggregate_id = r.i), 0)
    limit 1;
    if found then
        raise exception using
            errcode = 'VX409',
            message = format('stale read: %s %s is at version %s, the decision saw %s',
                             stale.aggregate_type, stale.aggregate_id, stale.current, stale.expected),
            detail = stale.aggregate_type,
            hint = stale.aggregate_id;
    end if;
end
$$;

revoke all on function vextrus_stream_lock_key(uuid, text, text) from public;
revoke all on function vextrus_check_reads(uuid, text[], text[], bigint[], boolean[]) from public;
grant execute on function vextrus_stream_lock_key(uuid, text, text) to vextrus_writer;
grant execute on function vextrus_check_reads(uuid, text[], text[], bigint[], boolean[]) to vextrus_writer;

-- Every append now takes its stream's lock (the only change to the function of 0010).
create or replace function vextrus_append(
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
    -- Writers of a stream hold its lock exclusively until commit; see vextrus_check_reads.
    perform pg_advisory_xact_lock(vextrus_stream_lock_key(p_tenant, p_aggregate_type, p_aggregate_id));
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

-- 2. The general ledger's read models (projections/src/finance.rs). Money is bigint paisa.

-- The chart of accounts, one row per account; deleted accounts are removed.
create table fin_accounts (
    tenant_id       uuid        not null,
    account_id      uuid        not null,
    organization_id uuid        not null,
    code            text        not null,
    name            text        not null,
    parent_id       uuid,
    root_type       text        not null,
    account_type    text        not null,
    is_group        boolean     not null,
    currency        text        not null,
    frozen          boolean     not null,
    disabled        boolean     not null,
    has_postings    boolean     not null,
    updated_at      timestamptz not null,
    primary key (tenant_id, account_id)
);
create index fin_accounts_organization_idx on fin_accounts (tenant_id, organization_id, code);

-- One row per organization with a ledger: its settings, lock date and the ledger stream's
-- version (the ETag a client sends back as If-Match for ledger commands).
create table fin_ledgers (
    tenant_id            uuid    not null,
    organization_id      uuid    not null,
    version              bigint  not null,
    lock_date            date,
    require_site         boolean not null,
    round_off_account_id uuid,
    round_off_allowance  bigint  not null,
    primary key (tenant_id, organization_id)
);

create table fin_fiscal_years (
    tenant_id        uuid    not null,
    organization_id  uuid    not null,
    start_date       date    not null,
    end_date         date    not null,
    short            boolean not null,
    closed           boolean not null,
    closing_entry_id uuid,
    primary key (tenant_id, organization_id, start_date)
);

-- A row per closed period (its first day); reopening removes it.
create table fin_closed_periods (
    tenant_id       uuid        not null,
    organization_id uuid        not null,
    period          date        not null,
    closed_at       timestamptz not null,
    closed_by       text        not null,
    primary key (tenant_id, organization_id, period)
);

-- Journal entries, reversals and year-end closing entries.
create table fin_entries (
    tenant_id       uuid        not null,
    entry_id        uuid        not null,
    organization_id uuid        not null,
    kind            text        not null,
    date            date        not null,
    currency        text        not null,
    narration       text        not null,
    reference       text,
    document_number text,
    total           bigint      not null,
    line_count      integer     not null,
    reverses        uuid,
    reversed_by     uuid,
    posted_at       timestamptz not null,
    posted_by       text        not null,
    position        bigint      not null,
    primary key (tenant_id, entry_id)
);
-- The journal: an organization's entries by date.
create index fin_entries_journal_idx on fin_entries (tenant_id, organization_id, date, position);

-- Every posted line: the account ledger. Running balances are computed when queried (a stored
-- one would depend on the order streams were applied in, which differs between Kafka and replay).
create table fin_entry_lines (
    tenant_id       uuid    not null,
    entry_id        uuid    not null,
    line_no         integer not null,
    organization_id uuid    not null,
    account_id      uuid    not null,
    date            date    not null,
    position        bigint  not null,
    debit           bigint  not null,
    credit          bigint  not null,
    party_kind      text,
    party_id        uuid,
    project_id      uuid,
    site_id         uuid,
    memo            text,
    primary key (tenant_id, entry_id, line_no)
);
-- An account's ledger in order, and a page of it from any point.
create index fin_entry_lines_ledger_idx on fin_entry_lines (tenant_id, account_id, date, position, line_no);

-- Debits, credits and line counts per account and calendar month (counters many entries add
-- to): the trial balance, balance sheet and P&L read these, never the lines.
create table fin_account_balances (
    tenant_id       uuid   not null,
    account_id      uuid   not null,
    month           date   not null,
    organization_id uuid   not null,
    debit           bigint not null,
    credit          bigint not null,
    lines           bigint not null,
    primary key (tenant_id, account_id, month)
);
create index fin_account_balances_organization_idx on fin_account_balances (tenant_id, organization_id, month);

-- The same per project and site (the nil UUID where a line has none): project P&L and the trial
-- balance by project and site.
create table fin_dimension_balances (
    tenant_id       uuid   not null,
    account_id      uuid   not null,
    month           date   not null,
    project_id      uuid   not null,
    site_id         uuid   not null,
    organization_id uuid   not null,
    debit           bigint not null,
    credit          bigint not null,
    lines           bigint not null,
    primary key (tenant_id, account_id, month, project_id, site_id)
);
create index fin_dimension_balances_organization_idx on fin_dimension_balances (tenant_id, organization_id, project_id, month);

select vextrus_protect_read_model('fin_accounts');
select vextrus_protect_read_model('fin_ledgers');
select vextrus_protect_read_model('fin_fiscal_years');
select vextrus_protect_read_model('fin_closed_periods');
select vextrus_protect_read_model('fin_entries');
select vextrus_protect_read_model('fin_entry_lines');
select vextrus_protect_read_model('fin_account_balances');
select vextrus_protect_read_model('fin_dimension_balances');
