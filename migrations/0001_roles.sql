-- Database roles of design.md D5, each with the least privilege its job needs.
--
-- Roles belong to the cluster, not to one database, so several Vextrus databases on one server
-- (every test database, say) share them: create each only if it is missing. They cannot log in;
-- the application connects as a login user and switches to the role its pool serves with
-- SET ROLE, so a bug in one component cannot use another's privileges.
--
--   vextrus_writer     the write side: appends events, records commands (INSERT/SELECT only)
--   vextrus_projector  fan-out and projections: reads the whole log, writes read models
--   vextrus_reader     the API's queries: reads read models and its own tenant's events
--
-- The owner of the database (whoever runs these migrations) owns every table.
do $$
declare
    role_name text;
begin
    foreach role_name in array array['vextrus_writer', 'vextrus_projector', 'vextrus_reader'] loop
        if not exists (select 1 from pg_roles where rolname = role_name) then
            begin
                execute format('create role %I nologin nosuperuser nobypassrls', role_name);
            exception when duplicate_object or unique_violation then
                null; -- a concurrent migration of another database created it first
            end;
        end if;
        -- Let the migrating user switch to the role (a superuser can anyway).
        if not pg_has_role(current_user, role_name, 'member') then
            execute format('grant %I to %I', role_name, current_user);
        end if;
    end loop;
end
$$;

-- The tenant of the current transaction, or null when none was set. Every row-level security
-- policy compares against this one function, so "no tenant set" means "no rows" everywhere.
create function vextrus_current_tenant() returns uuid
    language sql stable parallel safe
    as $$ select nullif(current_setting('app.tenant_id', true), '')::uuid $$;

-- The only way the application sets the tenant: transaction-local (set_config(..., true)), so a
-- pooled connection never carries one request's tenant into the next.
create function vextrus_set_tenant(tenant uuid) returns void
    language plpgsql volatile
    as $$
begin
    perform set_config('app.tenant_id', tenant::text, true);
end
$$;
