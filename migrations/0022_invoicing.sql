-- Finance II: parties, invoices and bills, and the VAT registers (projections/src/invoicing.rs).
-- The write side needs nothing new: a document's submit appends to several streams at once
-- (the document, its number series, its journal entry, the ledger's note) through the read sets
-- of 0012.

-- Customers and suppliers, a row per party stream.
create table fin_parties (
    tenant_id          uuid        not null,
    party_id           uuid        not null,
    organization_id    uuid        not null,
    kind               text        not null,
    name               text        not null,
    bin                text,
    tin                text,
    address            text,
    withholding_entity boolean     not null,
    terms_days         integer     not null,
    account_id         uuid,
    archived           boolean     not null,
    version            bigint      not null,
    created_at         timestamptz not null,
    updated_at         timestamptz not null,
    primary key (tenant_id, party_id)
);
-- An organization's customers or suppliers by name: the API's list.
create index fin_parties_organization_idx on fin_parties (tenant_id, organization_id, kind, name, party_id);

-- Sales invoices and purchase bills, a row per document stream; `document` holds the draft as
-- entered or the submitted document as printed (Mushak-6.3).
create table fin_invoices (
    tenant_id       uuid        not null,
    invoice_id      uuid        not null,
    organization_id uuid        not null,
    kind            text        not null,
    status          text        not null,
    party_id        uuid        not null,
    number          text,
    date            date        not null,
    due_date        date        not null,
    value           bigint      not null,
    vat             bigint      not null,
    total           bigint      not null,
    balance         bigint      not null,
    vds             bigint      not null,
    tds             bigint      not null,
    retention       bigint      not null,
    entry_id        uuid,
    issued_at       timestamptz,
    document        jsonb       not null,
    version         bigint      not null,
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    position        bigint      not null,
    primary key (tenant_id, invoice_id)
);
-- An organization's documents of one kind by date: the API's list and a party's documents.
create index fin_invoices_organization_idx on fin_invoices (tenant_id, organization_id, kind, date, position);
create index fin_invoices_party_idx on fin_invoices (tenant_id, party_id, date, position);

-- The sales book (Mushak-6.2) and the purchase book (Mushak-6.1): a line per submitted document
-- line, with what the document printed. The monthly return summary (Mushak-9.1) sums a month.
create table fin_vat_lines (
    tenant_id       uuid    not null,
    invoice_id      uuid    not null,
    line_no         integer not null,
    organization_id uuid    not null,
    book            text    not null,
    date            date    not null,
    month           date    not null,
    number          text    not null,
    party_id        uuid    not null,
    party_name      text    not null,
    party_bin       text,
    description     text    not null,
    quantity        bigint  not null,
    unit_price      bigint  not null,
    vat_code        text    not null,
    vat_kind        text    not null,
    vat_rate        integer not null,
    value           bigint  not null,
    vat             bigint  not null,
    total           bigint  not null,
    vds             bigint  not null,
    position        bigint  not null,
    primary key (tenant_id, invoice_id, line_no)
);
-- One book's month in document order.
create index fin_vat_lines_book_idx on fin_vat_lines (tenant_id, organization_id, book, month, date, position, line_no);

select vextrus_protect_read_model('fin_parties');
select vextrus_protect_read_model('fin_invoices');
select vextrus_protect_read_model('fin_vat_lines');
