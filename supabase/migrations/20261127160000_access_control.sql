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

-- ---------------------------------------------------------------------------------------------
-- The audit of the audit for changes made in SQL. Retention policies, legal holds and writer tokens
-- are changed by administrators in the database (no API route), so no function sees them happen; they are kept
-- in append-only tables, and the detect sweep copies each change into the chain as an event whose
-- event_id is derived from the change (so copying twice stores it once). This lists those not yet
-- in the chain, oldest first.
-- ---------------------------------------------------------------------------------------------
create function audit.unchained_admin_changes(p_limit integer default 500) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c) order by c.changed_at, c.event_id), '[]'::jsonb)
    from (select * from (
            select 'retention-policy-change-' || p.change_id as event_id, 'retention_policy_change' as action,
                   p.changed_by as actor, audit.format_timestamp(p.changed_at) as changed_at,
                   pg_catalog.jsonb_build_object('scope', p.scope, 'scope_value', p.scope_value, 'old_days', p.old_days,
                     'new_days', p.new_days, 'override_reason', p.override_reason, 'change_id', p.change_id) as details
              from audit.retention_policy_changes p
            union all
            select 'legal-hold-' || h.hold_id || '-placed', 'legal_hold_placed', h.created_by,
                   audit.format_timestamp(h.created_at),
                   pg_catalog.jsonb_build_object('hold_id', h.hold_id, 'user_id', h.user_id,
                     'resource_prefix', h.resource_prefix, 'compliance_tag', h.compliance_tag, 'reason', h.reason,
                     'held_until', audit.format_timestamp(h.held_until))
              from audit.legal_holds h
            union all
            select 'legal-hold-' || h.hold_id || '-released', 'legal_hold_released', h.released_by,
                   audit.format_timestamp(h.released_at), pg_catalog.jsonb_build_object('hold_id', h.hold_id)
              from audit.legal_holds h
             where h.released_at is not null
            union all
            select 'writer-token-' || t.token_id || '-issued', 'writer_token_issued', t.created_by,
                   audit.format_timestamp(t.created_at),
                   pg_catalog.jsonb_build_object('token_id', t.token_id, 'writer', t.name,
                     'scopes', pg_catalog.to_jsonb(t.scopes), 'expires_at', audit.format_timestamp(t.expires_at))
              from audit.writer_tokens t
            union all
            select 'writer-token-' || t.token_id || '-revoked', 'writer_token_revoked', t.revoked_by,
                   audit.format_timestamp(t.revoked_at),
                   pg_catalog.jsonb_build_object('token_id', t.token_id, 'writer', t.name)
              from audit.writer_tokens t
             where t.revoked_at is not null) changes
           where not exists (select 1 from audit.audit_events e where e.event_id = changes.event_id)
           order by changes.changed_at, changes.event_id
           limit greatest(p_limit, 1)) c
$$;
revoke all on function audit.unchained_admin_changes(integer) from public;
grant execute on function audit.unchained_admin_changes(integer) to service_role;

-- A legal hold is placed, and later released, never edited or deleted: a hold that vanished or
-- changed scope before the sweep copied it would leave no trace (the reason the events table is
-- append-only applies to the record of what kept them).
create function audit.tg_legal_hold_guard() returns trigger
language plpgsql set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    raise exception 'legal holds are released, never deleted' using errcode = 'insufficient_privilege';
  end if;
  if old.released_at is not null then
    raise exception 'legal hold % is already released', old.hold_id using errcode = 'insufficient_privilege';
  end if;
  if new.released_at is null or coalesce(pg_catalog.btrim(new.released_by), '') = ''
     or (new.hold_id, new.user_id, new.resource_prefix, new.compliance_tag, new.reason, new.held_until, new.created_by,
         new.created_at)
        is distinct from
        (old.hold_id, old.user_id, old.resource_prefix, old.compliance_tag, old.reason, old.held_until, old.created_by,
         old.created_at) then
    raise exception 'a legal hold can only be released (released_at and released_by), not edited'
      using errcode = 'insufficient_privilege';
  end if;
  return new;
end
$$;
create trigger legal_holds_release_only
  before update or delete on audit.legal_holds
  for each row execute function audit.tg_legal_hold_guard();


-- ---------------------------------------------------------------------------------------------
-- Found while chaining policy changes: set_retention_policy upserts, and the BEFORE INSERT trigger
-- logged a change for the insert attempt that ON CONFLICT then turned into an update, so every
-- change to an existing policy was logged twice (a phantom "created" row first). Logging moves to
-- an AFTER trigger, which fires only for what really happened; validation stays BEFORE.
-- ---------------------------------------------------------------------------------------------
create or replace function audit.tg_retention_policy_guard() returns trigger
language plpgsql
as $$
declare
  v_floor integer;
begin
  if tg_op in ('INSERT', 'UPDATE') then
    if new.scope = 'compliance_tag' and new.scope_value not in ('gdpr', 'hipaa', 'sox', 'pci_dss', 'iso_27001', 'cis') then
      raise exception 'unknown compliance tag %', new.scope_value using errcode = 'invalid_parameter_value';
    end if;
    if new.scope = 'event_type' and new.scope_value not in (
        'file_upload', 'file_download', 'file_delete', 'file_modify', 'file_access', 'file_share', 'folder_create',
        'folder_delete', 'user_login', 'user_logout', 'user_activity', 'permission_change', 'system_event',
        'security_event') then
      raise exception 'unknown event type %', new.scope_value using errcode = 'invalid_parameter_value';
    end if;
    select f.days into v_floor from audit.retention_floors f where f.compliance_tag = new.scope_value
       and new.scope = 'compliance_tag';
    if v_floor is not null and new.days < v_floor and new.override_reason is null then
      raise exception 'retention for % (% days) is below its legal floor of % days; give an override_reason to do it anyway',
        new.scope_value, new.days, v_floor using errcode = 'check_violation';
    end if;
  end if;
  return coalesce(new, old);
end
$$;

create function audit.tg_retention_policy_log() returns trigger
language plpgsql
as $$
begin
  insert into audit.retention_policy_changes (scope, scope_value, old_days, new_days, override_reason, changed_by)
  values (coalesce(new.scope, old.scope), coalesce(new.scope_value, old.scope_value),
          case when tg_op = 'INSERT' then null else old.days end,
          case when tg_op = 'DELETE' then null else new.days end,
          case when tg_op = 'DELETE' then null else new.override_reason end,
          case when tg_op = 'DELETE' then coalesce(pg_catalog.current_setting('audit.actor', true), current_user)
               else new.updated_by end);
  return null;
end
$$;

create trigger retention_policies_log
  after insert or update or delete on audit.retention_policies
  for each row execute function audit.tg_retention_policy_log();
