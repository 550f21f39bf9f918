-- Finance II: open items (projections/src/invoicing.rs). Every change to what a sales invoice or
-- bill leaves open, dated: its balance when submitted, each note, each settlement, its
-- cancellation. Summing a document's moves up to a day gives what was open on that day, which is
-- what aging "as of any date" and a party's open items read.

create table fin_open_item_moves (
    tenant_id       uuid    not null,
    invoice_id      uuid    not null,
    -- The sequence of the document's event that moved it.
    sequence        bigint  not null,
    organization_id uuid    not null,
    -- 'receivable' (sales invoices) or 'payable' (bills).
    side            text    not null,
    party_id        uuid    not null,
    number          text    not null,
    document_date   date    not null,
    due_date        date    not null,
    date            date    not null,
    amount          bigint  not null,
    primary key (tenant_id, invoice_id, sequence)
);
create index fin_open_item_moves_aging_idx on fin_open_item_moves (tenant_id, organization_id, side, date);

select vextrus_protect_read_model('fin_open_item_moves');
