-- Retention, legal holds and GDPR erasure without breaking the chain.
--
-- An event past retention is first archived to Object-Locked S3 (by the retention function, which
-- verifies the upload), then redacted here: the payload is blanked, seq, event_id, checksum and both
-- hashes stay, so the chain still verifies and the archive proves what the event said.

-- ---------------------------------------------------------------------------------------------
-- Policies: days to keep, by default, per compliance tag and per event type. The longest policy
-- that applies to an event wins. Legal floors (a regime's minimum) can only be undercut with an
-- explicit, recorded override.
-- ---------------------------------------------------------------------------------------------
create table audit.retention_floors (
  compliance_tag text collate "C" primary key,
  days           integer not null check (days > 0),
  basis          text not null
);
insert into audit.retention_floors (compliance_tag, days, basis) values
  ('cis', 90, 'CIS Controls v8 8.10: retain audit logs at least 90 days'),
  ('pci_dss', 365, 'PCI DSS v4.0 10.5.1: retain audit log history at least 12 months'),
  ('hipaa', 2190, 'HIPAA 164.316(b)(2)(i): retain documentation 6 years'),
  ('sox', 2555, 'SOX: 7 years, common practice following the auditors'' workpaper rule');

create table audit.retention_policies (
  scope           text not null check (scope in ('default', 'compliance_tag', 'event_type')),
  scope_value     text collate "C" not null default '',
  days            integer not null check (days > 0),
  override_reason text check (length(override_reason) between 10 and 2000),
  updated_by      text not null,
  updated_at      timestamptz not null default now(),
  primary key (scope, scope_value),
  check ((scope = 'default') = (scope_value = ''))
);
insert into audit.retention_policies (scope, scope_value, days, updated_by) values
  ('default', '', 2555, 'migration'),
  ('compliance_tag', 'cis', 90, 'migration'),
  ('compliance_tag', 'pci_dss', 365, 'migration'),
  ('compliance_tag', 'hipaa', 2190, 'migration'),
  ('compliance_tag', 'sox', 2555, 'migration');

-- Every change to a policy, kept for ever (append-only like the events).
create table audit.retention_policy_changes (
  change_id       bigint generated always as identity primary key,
  scope           text not null,
  scope_value     text not null,
  old_days        integer,
  new_days        integer,
  override_reason text,
  changed_by      text not null,
  changed_at      timestamptz not null default now()
);

create function audit.tg_retention_policy_guard() returns trigger
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
  insert into audit.retention_policy_changes (scope, scope_value, old_days, new_days, override_reason, changed_by)
  values (coalesce(new.scope, old.scope), coalesce(new.scope_value, old.scope_value),
          case when tg_op = 'INSERT' then null else old.days end,
          case when tg_op = 'DELETE' then null else new.days end,
          case when tg_op = 'DELETE' then null else new.override_reason end,
          case when tg_op = 'DELETE' then coalesce(pg_catalog.current_setting('audit.actor', true), current_user)
               else new.updated_by end);
  return coalesce(new, old);
end
$$;
create trigger retention_policies_guard
  before insert or update or delete on audit.retention_policies
  for each row execute function audit.tg_retention_policy_guard();

create trigger retention_policy_changes_append_only
  before update or delete on audit.retention_policy_changes
  for each row execute function audit.tg_append_only();

-- Days an event must be kept: the longest of the policies for its tags and its type; the default
-- only when none of those applies (a CIS-only event may go after 90 days, a CIS+SOX one after 7 years).
create function audit.retention_days(p_tags text[], p_event_type text) returns integer
language sql stable
as $$
  select coalesce(
    pg_catalog.max(p.days) filter (where p.scope <> 'default'),
    pg_catalog.max(p.days) filter (where p.scope = 'default'))
    from audit.retention_policies p
   where p.scope = 'default'
      or (p.scope = 'compliance_tag' and p.scope_value = any(p_tags))
      or (p.scope = 'event_type' and p.scope_value = p_event_type)
$$;

-- ---------------------------------------------------------------------------------------------
-- Legal holds: by user, resource path prefix or compliance tag; until a date or released.
-- ---------------------------------------------------------------------------------------------
create table audit.legal_holds (
  hold_id         uuid primary key default gen_random_uuid(),
  user_id         text collate "C",
  resource_prefix text,
  compliance_tag  text check (compliance_tag in ('gdpr', 'hipaa', 'sox', 'pci_dss', 'iso_27001', 'cis')),
  reason          text not null check (length(reason) between 5 and 2000),
  held_until      timestamptz,
  created_by      text not null,
  created_at      timestamptz not null default now(),
  released_at     timestamptz,
  released_by     text,
  check (num_nonnulls(user_id, resource_prefix, compliance_tag) = 1)
);

create function audit.is_held(e audit.audit_events, p_at timestamptz) returns boolean
language sql stable
as $$
  select exists (
    select 1 from audit.legal_holds h
     where h.released_at is null and (h.held_until is null or h.held_until > p_at)
       and (h.user_id = e.user_id
            or (h.resource_prefix is not null and pg_catalog.starts_with(e.resource_path, h.resource_prefix))
            or h.compliance_tag = any(e.compliance_tags)))
$$;

-- ---------------------------------------------------------------------------------------------
-- Runs and their batches: what was archived where, and what has been redacted since.
-- A run cut off by the Lambda timeout is resumed by the next invocation.
-- ---------------------------------------------------------------------------------------------
create table audit.retention_runs (
  run_id       uuid primary key default gen_random_uuid(),
  as_of        timestamptz not null,
  status       text not null default 'running' check (status in ('running', 'completed')),
  started_at   timestamptz not null default now(),
  finished_at  timestamptz,
  archived     integer not null default 0,
  redacted     integer not null default 0,
  held_back    integer not null default 0,
  last_seq     bigint not null default 0,
  triggered_by text not null
);
create unique index retention_runs_one_running on audit.retention_runs (status) where status = 'running';

create table audit.retention_batches (
  run_id         uuid not null references audit.retention_runs,
  batch_no       integer not null,
  seqs           bigint[] not null,
  first_seq      bigint not null,
  last_seq       bigint not null,
  object_key     text not null,
  manifest_key   text not null,
  sha256         text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes     bigint not null,
  archived_at    timestamptz not null default now(),
  redacted_at    timestamptz,
  redacted_count integer not null default 0,
  primary key (run_id, batch_no)
);

alter table audit.retention_floors enable row level security;
alter table audit.retention_policies enable row level security;
alter table audit.retention_policy_changes enable row level security;
alter table audit.legal_holds enable row level security;
alter table audit.retention_runs enable row level security;
alter table audit.retention_batches enable row level security;
create policy retention_read_auditor on audit.retention_policies for select to authenticated
  using ((select auth.jwt() -> 'app_metadata' ->> 'audit_role') in ('auditor', 'admin'));
create policy retention_runs_read_auditor on audit.retention_runs for select to authenticated
  using ((select auth.jwt() -> 'app_metadata' ->> 'audit_role') in ('auditor', 'admin'));
revoke all on audit.retention_floors, audit.retention_policies, audit.retention_policy_changes, audit.legal_holds,
  audit.retention_runs, audit.retention_batches from public, anon, authenticated, service_role;
grant select on audit.retention_policies, audit.retention_runs to authenticated;
grant select on audit.retention_floors, audit.retention_policies, audit.retention_policy_changes, audit.legal_holds,
  audit.retention_runs, audit.retention_batches to service_role;

-- ---------------------------------------------------------------------------------------------
-- SQL API for the retention run.
-- ---------------------------------------------------------------------------------------------

-- Start a run, or resume the one a timeout left running.
create function audit.retention_start(p_triggered_by text, p_as_of timestamptz default null) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_run audit.retention_runs;
begin
  select * into v_run from audit.retention_runs r where r.status = 'running' for update;
  if not found then
    insert into audit.retention_runs (as_of, triggered_by)
    values (coalesce(p_as_of, pg_catalog.now()), p_triggered_by)
    returning * into v_run;
  end if;
  return pg_catalog.jsonb_build_object(
    'run_id', v_run.run_id, 'as_of', audit.format_timestamp(v_run.as_of), 'last_seq', v_run.last_seq,
    'resumed', v_run.started_at < pg_catalog.now(),
    'pending_batches', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
        'batch_no', b.batch_no, 'first_seq', b.first_seq, 'last_seq', b.last_seq) order by b.batch_no)
      from audit.retention_batches b where b.run_id = v_run.run_id and b.redacted_at is null), '[]'::jsonb));
end
$$;

-- The next events past retention after p_after_seq (in seq order), as stored, plus how many
-- past-retention events in that stretch a legal hold keeps.
create function audit.retention_candidates(p_run_id uuid, p_after_seq bigint, p_limit integer default 1000)
returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_as_of timestamptz := (select r.as_of from audit.retention_runs r where r.run_id = p_run_id);
  v_min_days integer := (select pg_catalog.min(p.days) from audit.retention_policies p);
  v_rows jsonb;
  v_held integer;
  v_scanned_to bigint;
begin
  if v_as_of is null then
    raise exception 'no retention run %', p_run_id using errcode = 'invalid_parameter_value';
  end if;
  with due as (
    select e as row, e.seq, audit.is_held(e, v_as_of) as held
      from audit.audit_events e
     where e.seq > p_after_seq
       and e.redacted_at is null
       and e."timestamp" < v_as_of - pg_catalog.make_interval(days => v_min_days)
       and e."timestamp" < v_as_of - pg_catalog.make_interval(days => audit.retention_days(e.compliance_tags, e.event_type))
     order by e.seq
     limit least(greatest(p_limit, 1), 10000)
  )
  select coalesce(pg_catalog.jsonb_agg(audit.event_json(d.row) order by d.seq) filter (where not d.held), '[]'::jsonb),
         pg_catalog.count(*) filter (where d.held),
         pg_catalog.max(d.seq)
    into v_rows, v_held, v_scanned_to
    from due d;
  return pg_catalog.jsonb_build_object('events', v_rows, 'held_back', v_held, 'scanned_to', v_scanned_to);
end
$$;

-- Record an archived batch (after the upload was verified), advancing the run.
create function audit.retention_record_batch(p_run_id uuid, p_batch jsonb) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_seqs bigint[] := array(select pg_catalog.jsonb_array_elements_text(p_batch -> 'seqs')::bigint);
  v_batch_no integer;
begin
  select coalesce(pg_catalog.max(b.batch_no), 0) + 1 into v_batch_no from audit.retention_batches b where b.run_id = p_run_id;
  insert into audit.retention_batches (run_id, batch_no, seqs, first_seq, last_seq, object_key, manifest_key, sha256, size_bytes)
  values (p_run_id, v_batch_no, v_seqs, (select pg_catalog.min(s) from pg_catalog.unnest(v_seqs) s),
          (select pg_catalog.max(s) from pg_catalog.unnest(v_seqs) s), p_batch ->> 'object_key',
          p_batch ->> 'manifest_key', p_batch ->> 'sha256', (p_batch ->> 'size_bytes')::bigint);
  update audit.retention_runs r
     set archived = r.archived + pg_catalog.cardinality(v_seqs),
         held_back = r.held_back + coalesce((p_batch ->> 'held_back')::integer, 0),
         last_seq = greatest(r.last_seq, coalesce((p_batch ->> 'scanned_to')::bigint, 0))
   where r.run_id = p_run_id;
  return pg_catalog.jsonb_build_object('batch_no', v_batch_no);
end
$$;

-- Skip a stretch where every past-retention event was held (nothing to archive).
create function audit.retention_advance(p_run_id uuid, p_scanned_to bigint, p_held_back integer) returns void
language sql volatile security definer set search_path = ''
as $$
  update audit.retention_runs r
     set held_back = r.held_back + p_held_back, last_seq = greatest(r.last_seq, p_scanned_to)
   where r.run_id = p_run_id
$$;

-- Redact up to p_limit archived events of a batch in one short transaction. Events a legal hold
-- has covered since the archive are skipped (they stay archived and intact). Says whether more is left.
create function audit.retention_redact_batch(p_run_id uuid, p_batch_no integer, p_limit integer default 500)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_batch audit.retention_batches;
  v_as_of timestamptz := (select r.as_of from audit.retention_runs r where r.run_id = p_run_id);
  v_todo bigint[];
  v_count integer;
  v_left integer;
begin
  select * into v_batch from audit.retention_batches b where b.run_id = p_run_id and b.batch_no = p_batch_no for update;
  if not found then
    raise exception 'no batch % in run %', p_batch_no, p_run_id using errcode = 'invalid_parameter_value';
  end if;
  -- One more than the step: whether it exists says if anything is left, without a second pass.
  v_todo := array(
    select e.seq from audit.audit_events e
     where e.seq = any(v_batch.seqs) and e.redacted_at is null and not audit.is_held(e, v_as_of)
     order by e.seq limit least(greatest(p_limit, 1), 5000) + 1);
  v_left := greatest(pg_catalog.cardinality(v_todo) - least(greatest(p_limit, 1), 5000), 0);
  v_count := audit.redact_seqs(v_todo[1:least(greatest(p_limit, 1), 5000)], 'retention', 'retention', p_run_id::text);
  update audit.retention_batches b set redacted_count = b.redacted_count + v_count
   where b.run_id = p_run_id and b.batch_no = p_batch_no;
  update audit.retention_runs r set redacted = r.redacted + v_count where r.run_id = p_run_id;
  if v_left = 0 then
    update audit.retention_batches b set redacted_at = pg_catalog.now()
     where b.run_id = p_run_id and b.batch_no = p_batch_no;
  end if;
  return pg_catalog.jsonb_build_object('redacted', v_count, 'more_left', v_left > 0);
end
$$;

create function audit.retention_status(p_run_id uuid) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'run_id', r.run_id, 'status', r.status, 'archived', r.archived, 'redacted', r.redacted,
    'held_back', r.held_back, 'last_seq', r.last_seq, 'as_of', audit.format_timestamp(r.as_of),
    'started_at', audit.format_timestamp(r.started_at), 'finished_at', audit.format_timestamp(r.finished_at))
  from audit.retention_runs r where r.run_id = p_run_id
$$;

create function audit.retention_finish(p_run_id uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_run audit.retention_runs;
begin
  if exists (select 1 from audit.retention_batches b where b.run_id = p_run_id and b.redacted_at is null) then
    raise exception 'run % still has archived batches to redact', p_run_id using errcode = 'invalid_parameter_value';
  end if;
  update audit.retention_runs r set status = 'completed', finished_at = pg_catalog.now()
   where r.run_id = p_run_id and r.status = 'running'
  returning * into v_run;
  if not found then
    select * into v_run from audit.retention_runs r where r.run_id = p_run_id;
  end if;
  return pg_catalog.jsonb_build_object(
    'run_id', v_run.run_id, 'status', v_run.status, 'archived', v_run.archived, 'redacted', v_run.redacted,
    'held_back', v_run.held_back, 'started_at', audit.format_timestamp(v_run.started_at),
    'finished_at', audit.format_timestamp(v_run.finished_at));
end
$$;

-- ---------------------------------------------------------------------------------------------
-- GDPR: a subject's events (Art. 15) and their erasure (Art. 17) with the exceptions named.
-- ---------------------------------------------------------------------------------------------
create function audit.subject_events(p_user_id text, p_after_seq bigint default 0, p_limit integer default 1000)
returns json
language sql stable security definer set search_path = ''
as $$
  select coalesce(pg_catalog.json_agg(audit.event_json(e) order by e.seq), '[]'::json)
    from (select * from audit.audit_events x where x.user_id = p_user_id and x.seq > p_after_seq
           order by x.seq limit least(greatest(p_limit, 1), 10000)) e
$$;

-- Redact the subject's personal fields everywhere, except events under a legal hold or a
-- retention obligation (a compliance tag whose legal floor has not passed). Returns counts
-- and the exceptions with their grounds, for the Art. 17(3) answer.
create function audit.erase_subject(p_user_id text, p_actor text, p_request_id text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_now timestamptz := pg_catalog.now();
  v_erasable bigint[];
  v_redacted integer;
  v_held jsonb;
  v_obliged jsonb;
  v_total integer;
begin
  if coalesce(pg_catalog.btrim(p_user_id), '') = '' then
    raise exception 'user_id is required' using errcode = 'invalid_parameter_value';
  end if;
  select pg_catalog.count(*) into v_total from audit.audit_events e where e.user_id = p_user_id;
  if v_total = 0 then
    return null;
  end if;
  with subject as (
    select e.*, audit.is_held(e, v_now) as held,
           (select pg_catalog.max(f.days) from audit.retention_floors f
             where f.compliance_tag = any(e.compliance_tags)
               and e."timestamp" > v_now - pg_catalog.make_interval(days => f.days)) as floor_days
      from audit.audit_events e
     where e.user_id = p_user_id and e.redacted_at is null
  )
  select array_agg(s.seq) filter (where not s.held and s.floor_days is null),
         coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('event_id', s.event_id, 'ground', 'legal_hold'))
                    filter (where s.held), '[]'::jsonb),
         coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'event_id', s.event_id, 'ground', 'retention_obligation',
                    'tags', s.compliance_tags, 'keep_until',
                    audit.format_timestamp(s."timestamp" + pg_catalog.make_interval(days => s.floor_days))))
                    filter (where not s.held and s.floor_days is not null), '[]'::jsonb)
    into v_erasable, v_held, v_obliged
    from subject s;
  v_redacted := audit.redact_seqs(coalesce(v_erasable, '{}'), 'erasure', p_actor, p_request_id);
  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id, 'events', v_total, 'redacted', v_redacted,
    'already_redacted', (select pg_catalog.count(*) from audit.audit_events e
                          where e.user_id = p_user_id and e.redacted_at is not null) - v_redacted,
    'kept', v_held || v_obliged);
end
$$;

create function audit.set_retention_policy(
  p_scope text, p_scope_value text, p_days integer, p_actor text, p_override_reason text default null
) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
begin
  insert into audit.retention_policies as p (scope, scope_value, days, override_reason, updated_by)
  values (p_scope, coalesce(p_scope_value, ''), p_days, p_override_reason, p_actor)
  on conflict (scope, scope_value) do update
     set days = excluded.days, override_reason = excluded.override_reason, updated_by = excluded.updated_by,
         updated_at = pg_catalog.now();
  return (select pg_catalog.to_jsonb(p) from audit.retention_policies p
           where p.scope = p_scope and p.scope_value = coalesce(p_scope_value, ''));
end
$$;

revoke all on all functions in schema audit from public;
grant execute on function
  audit.retention_start(text, timestamptz),
  audit.retention_candidates(uuid, bigint, integer),
  audit.retention_record_batch(uuid, jsonb),
  audit.retention_advance(uuid, bigint, integer),
  audit.retention_redact_batch(uuid, integer, integer),
  audit.retention_finish(uuid),
  audit.retention_status(uuid),
  audit.subject_events(text, bigint, integer),
  audit.erase_subject(text, text, text),
  audit.set_retention_policy(text, text, integer, text, text),
  audit.redact_events(jsonb, text, text, text),
  audit.retention_days(text[], text),
  audit.is_held(audit.audit_events, timestamptz)
  to service_role;
