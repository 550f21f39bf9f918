-- Faster general-ledger reports at a million lines (`vextrus bench ledger`):
--
-- 1. Calendar-year totals per account, beside the monthly ones: an opening balance sums whole
--    years before the report's year and months since, instead of every month of every year.
--    Calendar years, not fiscal ones: the projection cannot rely on a fiscal year having been
--    applied before the lines that fall in it (Kafka orders streams, not the log).
-- 2. The account ledger's index carries the amounts, so a running balance up to a page's first
--    line is summed from the index alone.

create table fin_account_years (
    tenant_id       uuid    not null,
    account_id      uuid    not null,
    year            integer not null,
    organization_id uuid    not null,
    debit           bigint  not null,
    credit          bigint  not null,
    lines           bigint  not null,
    primary key (tenant_id, account_id, year)
);
create index fin_account_years_organization_idx on fin_account_years (tenant_id, organization_id, year)
    include (account_id, debit, credit);
select vextrus_protect_read_model('fin_account_years');

-- The monthly totals, read the same way.
drop index fin_account_balances_organization_idx;
create index fin_account_balances_organization_idx on fin_account_balances (tenant_id, organization_id, month)
    include (account_id, debit, credit);

drop index fin_entry_lines_ledger_idx;
create index fin_entry_lines_ledger_idx on fin_entry_lines (tenant_id, account_id, date, position, line_no)
    include (debit, credit);
