-- A year's trial balance at a million lines (`vextrus bench ledger`): totals per account and
-- fiscal year replace the calendar-year ones of 0013. Every journal event records the start of
-- the fiscal year its date lies in (decided with the ledger's calendar), so the projection keys
-- these totals without reading the calendar, whatever order a Kafka worker sees the streams in.
-- A year's trial balance then reads one row per account and year, not eighteen months of rows.

drop table fin_account_years;

create table fin_account_fiscal_years (
    tenant_id       uuid    not null,
    account_id      uuid    not null,
    -- The fiscal year's first day.
    fiscal_year     date    not null,
    organization_id uuid    not null,
    debit           bigint  not null,
    credit          bigint  not null,
    lines           bigint  not null,
    primary key (tenant_id, account_id, fiscal_year)
);
create index fin_account_fiscal_years_organization_idx
    on fin_account_fiscal_years (tenant_id, organization_id, fiscal_year)
    include (account_id, debit, credit);
select vextrus_protect_read_model('fin_account_fiscal_years');
