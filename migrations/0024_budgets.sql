-- Finance II: budgets per project, site and expense account (projections/src/invoicing.rs). The
-- write side keeps budget lines on one stream per organization and what was spent on one stream
-- per budget; these read models serve budget vs actual.

-- Budget lines, rows of the organization's budgets stream.
create table fin_budgets (
    tenant_id       uuid        not null,
    budget_id       uuid        not null,
    organization_id uuid        not null,
    project_id      uuid        not null,
    site_id         uuid,
    account_id      uuid        not null,
    fiscal_year     date        not null,
    amount          bigint      not null,
    action          text        not null,
    updated_at      timestamptz not null,
    primary key (tenant_id, budget_id)
);
create index fin_budgets_organization_idx on fin_budgets (tenant_id, organization_id, fiscal_year, project_id);

-- What was spent against each budget and how often a Warn budget was exceeded: counters its usage
-- stream adds to.
create table fin_budget_usage (
    tenant_id  uuid   not null,
    budget_id  uuid   not null,
    spent      bigint not null,
    exceeded   bigint not null,
    postings   bigint not null,
    primary key (tenant_id, budget_id)
);

select vextrus_protect_read_model('fin_budgets');
select vextrus_protect_read_model('fin_budget_usage');
