-- Access control (issue #8): the database bounds what the API can read for a user, and the Lambda
-- functions log in with a role that can do nothing but become the SQL API's roles.

-- ---------------------------------------------------------------------------------------------
-- GDPR Art. 15 export as the data subject. The API reads a user's own export as that user
-- (role authenticated with their JWT claims), so RLS decides which rows it gets, as it does for
-- list_events and get_event. For the service role (admins answering requests) nothing changes:
-- service_role bypasses RLS.
-- ---------------------------------------------------------------------------------------------
alter function audit.subject_events(text, bigint, integer) security invoker;
grant execute on function audit.subject_events(text, bigint, integer) to authenticated;

-- ---------------------------------------------------------------------------------------------
-- audit_lambda: the login role for the functions' database connection (least privilege).
-- Like Supabase's own `authenticator`, it holds no privilege itself (NOINHERIT) and may only SET
-- ROLE to service_role (the SQL API; the transport does this for every call through
-- AUDIT_DATABASE_ROLE) or to authenticated (reads run as a signed-in user, under RLS). It cannot
-- become postgres, own objects, or read a table directly. Created without a password: the operator
-- gives it one (docs/security.md), and Lambda reads the connection string from Secrets Manager.
-- Roles are cluster-wide, so a concurrent migration of another database may create it first.
-- ---------------------------------------------------------------------------------------------
do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'audit_lambda') then
    begin
      create role audit_lambda nologin noinherit nocreatedb nocreaterole noreplication;
    exception when duplicate_object or unique_violation then
      null;
    end;
  end if;
  begin
    grant service_role, authenticated to audit_lambda;
  exception when unique_violation or duplicate_object then
    null;  -- granted meanwhile by a concurrent migration of another database
  when insufficient_privilege then
    -- Granting a role needs ADMIN OPTION on it from PostgreSQL 16; say what to run instead of failing the push.
    raise warning 'could not grant service_role, authenticated to audit_lambda: run it as a role that may (docs/security.md)';
  end;
end
$$;
