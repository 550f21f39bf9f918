-- Finance II: foreign-currency bills withhold and foreign-currency documents take notes
-- (projections/src/invoicing.rs), so what a party owes in a document's own currency is no longer
-- its total: the total less what a bill withheld, as notes changed it.

alter table fin_invoices add column foreign_balance bigint;
comment on column fin_invoices.foreign_balance is
    'A foreign-currency document: what the party owes or is owed in its own currency, in '
    'hundredths (the total less what a bill withheld, as notes changed it); null otherwise, and '
    'on rows projected before migration 0031, where it is foreign_total.';

-- A foreign-currency receipt or payment now deducts VDS, TDS and bank charges too: they are
-- withheld and deposited in the base currency, so these columns hold them at the payment's rate
-- (amount, allocated, deducted and advance stay in the payment's currency).
comment on column fin_payments.vds is 'VDS deducted, in paisa of the base currency.';
comment on column fin_payments.tds is 'TDS deducted, in paisa of the base currency.';
comment on column fin_payments.bank_charges is 'Bank charges, in paisa of the base currency.';
