-- Finance II: payments and receipts (projections/src/invoicing.rs). A payment settles documents
-- by appending to their streams, so each document's row keeps what was settled of it.

alter table fin_invoices add column settled bigint not null default 0;
comment on column fin_invoices.settled is
    'What payments and receipts settled of the balance, in paisa; the open amount is balance - settled.';
-- Open documents of a party: what aging and the party's open items read.
create index fin_invoices_open_idx on fin_invoices (tenant_id, organization_id, kind, party_id, due_date)
    where status = 'submitted' and settled < balance;

-- Payments to suppliers and receipts from customers, a row per payment stream; `document` holds
-- the recorded payment (allocations, deductions, the VDS certificate).
create table fin_payments (
    tenant_id       uuid        not null,
    payment_id      uuid        not null,
    organization_id uuid        not null,
    direction       text        not null,
    party_id        uuid        not null,
    number          text        not null,
    date            date        not null,
    account_id      uuid        not null,
    amount          bigint      not null,
    allocated       bigint      not null,
    deducted        bigint      not null,
    advance         bigint      not null,
    vds             bigint      not null,
    tds             bigint      not null,
    retention       bigint      not null,
    bank_charges    bigint      not null,
    vds_certificate text,
    entry_id        uuid        not null,
    document        jsonb       not null,
    version         bigint      not null,
    created_at      timestamptz not null,
    position        bigint      not null,
    primary key (tenant_id, payment_id)
);
-- An organization's receipts or payments by date, and a party's.
create index fin_payments_organization_idx on fin_payments (tenant_id, organization_id, direction, date, position);
create index fin_payments_party_idx on fin_payments (tenant_id, party_id, date, position);

select vextrus_protect_read_model('fin_payments');
