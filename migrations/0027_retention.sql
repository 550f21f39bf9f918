-- Finance II: the retention register (projections/src/invoicing.rs). Every change to the
-- retention money held with a party, from its retention stream: held by a bill or a payment that
-- withholds it (or a customer holding it back from a receipt), released by a later payment or
-- receipt, reversed by a cancelled bill. Summing a party's moves up to a day gives what was held
-- with it on that day.

create table fin_retention_moves (
    tenant_id       uuid    not null,
    party_id        uuid    not null,
    -- The sequence of the party's retention event.
    sequence        bigint  not null,
    organization_id uuid    not null,
    -- 'held', 'released' or 'reversed'.
    kind            text    not null,
    -- Positive when held, negative when released or reversed.
    amount          bigint  not null,
    date            date    not null,
    document        text    not null,
    position        bigint  not null,
    primary key (tenant_id, party_id, sequence)
);
create index fin_retention_moves_organization_idx on fin_retention_moves (tenant_id, organization_id, date);

select vextrus_protect_read_model('fin_retention_moves');
