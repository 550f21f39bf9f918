-- Finance II: the register of Mushak-6.6 certificates (projections/src/invoicing.rs). A bill
-- that withheld VAT at source records the certificate the organization issued for it; a receipt
-- or payment that deducted VAT records its certificate with it or later.

alter table fin_invoices add column vds_certificate text;
alter table fin_invoices add column vds_certificate_date date;
comment on column fin_invoices.vds_certificate is
    'A purchase bill: the Mushak-6.6 certificate issued for the VAT it withheld at source.';

alter table fin_payments add column vds_certificate_date date;
comment on column fin_payments.vds_certificate_date is
    'The date of vds_certificate: the payment''s own when recorded with it; null on rows '
    'projected before migration 0032, where it is the payment''s date.';
