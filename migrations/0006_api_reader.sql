-- The API's readiness probe (`/health/ready`) checks, as `vextrus_reader`, that the database
-- carries the migrations the running build expects. The table is sqlx's own ledger; it holds
-- nothing tenant-specific (versions, descriptions, checksums).
grant select on _sqlx_migrations to vextrus_reader;
