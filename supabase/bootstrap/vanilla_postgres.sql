-- Bootstrap for vanilla PostgreSQL 15/16 (local stack, tests): gives a plain database what a
-- Supabase project already has, so the migrations in ../migrations apply unchanged.
-- Not needed on a Supabase project (its roles and auth functions exist there); it only creates what is
-- missing, so running it there changes nothing. Idempotent: roles are cluster-wide, auth is per database.

-- Roles are cluster-wide: two databases bootstrapped at once (parallel test workers on a fresh
-- server) race between "not exists" and "create", so the loser's duplicate is caught, not fatal.
do $$
declare
  v_role record;
begin
  for v_role in select * from (values
      ('anon', 'nologin noinherit'),
      ('authenticated', 'nologin noinherit'),
      ('service_role', 'nologin noinherit bypassrls'),
      ('authenticator', 'login noinherit')) as r(name, options)
  loop
    if not exists (select 1 from pg_roles where rolname = v_role.name) then
      begin
        execute format('create role %I %s', v_role.name, v_role.options);
      exception when duplicate_object or unique_violation then
        null;  -- created meanwhile by a concurrent bootstrap
      end;
    end if;
  end loop;
end
$$;

do $$
declare
  v_member text;
begin
  -- only what is missing: on a Supabase project the memberships exist (and may not be ours to grant)
  foreach v_member in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_has_role('authenticator', v_member, 'member') then
      begin
        execute format('grant %I to authenticator', v_member);
      exception when duplicate_object or unique_violation then
        null;
      end;
    end if;
  end loop;
end
$$;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

-- Same definitions as supabase/auth's migrations: claims come from the per-transaction settings
-- that PostgREST sets from the verified JWT. Created only where missing, so running this by mistake
-- against a Supabase database never replaces the real ones.
do $bootstrap$
begin
  if to_regprocedure('auth.uid()') is null then
    create function auth.uid() returns uuid
    language sql stable set search_path = ''
    as $$
      select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
      )::uuid
    $$;
  end if;
  if to_regprocedure('auth.role()') is null then
    create function auth.role() returns text
    language sql stable set search_path = ''
    as $$
      select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
      )::text
    $$;
  end if;
  if to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb
    language sql stable set search_path = ''
    as $$
      select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
    $$;
  end if;
end
$bootstrap$;

grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;
