-- Finance II: documents in a foreign currency (projections/src/invoicing.rs). The ledger and the
-- VAT books stay in the base currency; a document also keeps its total in its own currency and
-- what payments settled of it there, so that "nothing outstanding" holds in both.

alter table fin_invoices add column foreign_total bigint;
alter table fin_invoices add column foreign_settled bigint not null default 0;
comment on column fin_invoices.foreign_total is
    'A foreign-currency document: its total in its own currency, in hundredths; null otherwise.';
