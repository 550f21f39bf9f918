-- Replay writes a rebuilt read model with COPY into bare shadow tables and adds their keys
-- afterwards (design.md D6): building a primary key over a loaded table costs a sort, where
-- maintaining it row by row costs a tree descent per row.

-- Creates vextrus_replay.<table> shaped like public.<table>: columns, defaults and checks, but no
-- keys or indexes yet (vextrus_replay_constrain and vextrus_replay_index add them after the bulk
-- write); row-level security, policies and grants come in the swap's transaction
-- (vextrus_replay_protect), after the last rows are written.
create or replace function vextrus_replay_prepare(read_models text[]) returns void
    language plpgsql
    as $$
declare
    read_model text;
begin
    foreach read_model in array read_models loop
        execute format('drop table if exists vextrus_replay.%I', read_model);
        execute format(
            'create table vextrus_replay.%I (like public.%I including defaults including generated '
            'including identity including constraints including storage including compression)',
            read_model, read_model);
    end loop;
end
$$;

-- Gives each shadow table the live table's primary key and unique constraints, under their own
-- names (the upserts of replay's catch-up and swap need them; the swap keeps the names).
create function vextrus_replay_constrain(read_models text[]) returns void
    language plpgsql
    as $$
declare
    read_model text;
    constraint_row record;
begin
    foreach read_model in array read_models loop
        for constraint_row in
            select conname, pg_get_constraintdef(oid) as definition
            from pg_constraint
            where conrelid = format('public.%I', read_model)::regclass and contype in ('p', 'u')
        loop
            execute format('alter table vextrus_replay.%I add constraint %I %s',
                read_model, constraint_row.conname, constraint_row.definition);
        end loop;
    end loop;
end
$$;

revoke all on function vextrus_replay_constrain(text[]) from public;
