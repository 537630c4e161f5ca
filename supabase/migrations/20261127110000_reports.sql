-- Compliance reports: the record of every report made, and the SQL that computes what reports say.
--
-- Every aggregate a report needs is computed here, over the period's rows, so the reports function
-- never holds more than one page of rows whatever the number of events (docs/reports.md has the
-- compliance mapping; each predicate below is defined there in words).
--
-- Index use: every query over events is bounded by the period on audit_events_timestamp_idx (or by
-- seq on the primary key once the period's seq range is known); alerts by first_event_at on the
-- small index added below. No index is added to audit_events: each one costs ingest throughput, and
-- the period scans that reports need are what the timestamp index already serves.

-- ---------------------------------------------------------------------------------------------
-- The reports made: one row per report; the objects live in S3 under the keys recorded here.
-- Append-only but for the one state change a report makes: generating -> ready | failed.
-- ---------------------------------------------------------------------------------------------
create table audit.reports (
  report_id      uuid primary key,
  standard       text collate "C" not null
                 check (standard in ('gdpr', 'hipaa', 'sox', 'pci_dss', 'iso_27001', 'cis')),
  period_start   timestamptz not null,
  period_end     timestamptz not null,
  status         text not null default 'generating' check (status in ('generating', 'ready', 'failed')),
  trigger        text not null check (trigger in ('api', 'schedule')),
  generated_by   text not null check (length(generated_by) between 1 and 255),
  scope          jsonb not null default '{}' check (jsonb_typeof(scope) = 'object'),
  bucket         text,
  -- format -> {key, sha256, size_bytes, content_type}
  formats        jsonb not null default '{}' check (jsonb_typeof(formats) = 'object'),
  size_bytes     bigint check (size_bytes >= 0),
  overall_status text check (overall_status in ('pass', 'attention', 'fail')),
  total_events   bigint check (total_events >= 0),
  error          text check (length(error) <= 2000),
  generated_at   timestamptz not null default now(),
  completed_at   timestamptz,
  check (period_end > period_start),
  check ((status = 'generating') = (completed_at is null)),
  check (status <> 'ready' or (overall_status is not null and size_bytes is not null and formats <> '{}'))
);
comment on table audit.reports is
  'Compliance reports: period, who or what generated them, and each format''s S3 key and SHA-256. Append-only but generating -> ready|failed.';

-- Listing: by standard or not, newest first, keyset on (generated_at, report_id).
create index reports_generated_idx on audit.reports (generated_at desc, report_id desc);
create index reports_standard_generated_idx on audit.reports (standard, generated_at desc, report_id desc);

-- Alerts of a period (by when their evidence began). Alerts are few and written once per window,
-- so this index costs ingestion nothing measurable.
create index security_alerts_first_event_idx on audit.security_alerts (first_event_at);

create function audit.tg_reports_state() returns trigger
language plpgsql
as $$
begin
  if tg_op = 'UPDATE' then
    if old.status = 'generating' and new.status in ('ready', 'failed')
       and new.report_id = old.report_id and new.standard = old.standard
       and new.period_start = old.period_start and new.period_end = old.period_end
       and new.trigger = old.trigger and new.generated_by = old.generated_by
       and new.scope = old.scope and new.generated_at = old.generated_at
       and new.bucket is not distinct from old.bucket then
      return new;
    end if;
    raise exception 'audit.reports: a report only moves from generating to ready or failed, once (was %, asked %)',
      old.status, new.status using errcode = 'insufficient_privilege';
  end if;
  raise exception 'audit.reports is append-only: % is not allowed', tg_op using errcode = 'insufficient_privilege';
end
$$;

create trigger reports_state
  before update or delete on audit.reports
  for each row execute function audit.tg_reports_state();

create trigger reports_no_truncate
  before truncate on audit.reports
  for each statement execute function audit.tg_append_only();

alter table audit.reports enable row level security;
create policy reports_read_auditor on audit.reports for select to authenticated
  using ((select auth.jwt() -> 'app_metadata' ->> 'audit_role') in ('auditor', 'admin'));
revoke all on audit.reports from public, anon, authenticated, service_role;
grant select on audit.reports to authenticated, service_role;

create function audit.report_json(r audit.reports) returns jsonb
language sql stable set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'report_id', r.report_id, 'standard', r.standard,
    'period_start', audit.format_timestamp(r.period_start), 'period_end', audit.format_timestamp(r.period_end),
    'status', r.status, 'trigger', r.trigger, 'generated_by', r.generated_by, 'scope', r.scope,
    'bucket', r.bucket, 'formats', r.formats, 'size_bytes', r.size_bytes, 'overall_status', r.overall_status,
    'total_events', r.total_events, 'error', r.error,
    'generated_at', audit.format_timestamp(r.generated_at), 'completed_at', audit.format_timestamp(r.completed_at))
$$;

-- Start a report (before anything is written to S3).
create function audit.report_begin(p_report jsonb) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_row audit.reports;
begin
  insert into audit.reports (report_id, standard, period_start, period_end, trigger, generated_by, scope, bucket,
                             generated_at)
  values ((p_report ->> 'report_id')::uuid, p_report ->> 'standard', (p_report ->> 'period_start')::timestamptz,
          (p_report ->> 'period_end')::timestamptz, p_report ->> 'trigger', p_report ->> 'generated_by',
          coalesce(p_report -> 'scope', '{}'::jsonb), p_report ->> 'bucket',
          coalesce((p_report ->> 'generated_at')::timestamptz, pg_catalog.now()))
  returning * into v_row;
  return audit.report_json(v_row);
end
$$;

-- The objects are in S3 (each verified by its SHA-256): the report is ready.
create function audit.report_complete(p_report_id uuid, p_formats jsonb, p_overall_status text, p_total_events bigint)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_row audit.reports;
begin
  if pg_catalog.jsonb_typeof(p_formats) is distinct from 'object' or p_formats = '{}'::jsonb
     or exists (select 1 from pg_catalog.jsonb_each(p_formats) f
                 where coalesce(f.value ->> 'sha256', '') !~ '^[0-9a-f]{64}$' or f.value ->> 'key' is null
                    or f.key not in ('json', 'csv', 'html')) then
    raise exception 'formats must map json|csv|html to {key, sha256 (hex), size_bytes}' using errcode = 'invalid_parameter_value';
  end if;
  update audit.reports r
     set status = 'ready', formats = p_formats, overall_status = p_overall_status, total_events = p_total_events,
         size_bytes = (select pg_catalog.sum((f.value ->> 'size_bytes')::bigint) from pg_catalog.jsonb_each(p_formats) f),
         completed_at = pg_catalog.now()
   where r.report_id = p_report_id
  returning * into v_row;
  if not found then
    raise exception 'no report %', p_report_id using errcode = 'invalid_parameter_value';
  end if;
  return audit.report_json(v_row);
end
$$;

create function audit.report_fail(p_report_id uuid, p_error text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_row audit.reports;
begin
  update audit.reports r
     set status = 'failed', error = pg_catalog.left(coalesce(p_error, 'unknown error'), 2000), completed_at = pg_catalog.now()
   where r.report_id = p_report_id and r.status = 'generating'
  returning * into v_row;
  return case when found then audit.report_json(v_row) end;
end
$$;

create function audit.report_get(p_report_id uuid) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select audit.report_json(r) from audit.reports r where r.report_id = p_report_id
$$;

-- Newest first; p_from/p_to select reports whose period overlaps [p_from, p_to).
create function audit.report_list(
  p_standard text default null, p_from timestamptz default null, p_to timestamptz default null,
  p_before_generated_at timestamptz default null, p_before_id uuid default null, p_limit integer default 50
) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select coalesce(pg_catalog.jsonb_agg(audit.report_json(page) order by page.generated_at desc, page.report_id desc),
                  '[]'::jsonb)
    from (select * from audit.reports r
           where (p_standard is null or r.standard = p_standard)
             and (p_from is null or r.period_end > p_from)
             and (p_to is null or r.period_start < p_to)
             and (p_before_generated_at is null
                  or (r.generated_at, r.report_id) < (p_before_generated_at, p_before_id))
           order by r.generated_at desc, r.report_id desc
           limit least(greatest(p_limit, 1), 200)) page
$$;

-- ---------------------------------------------------------------------------------------------
-- Event classes used by several standards (one definition each; docs/reports.md quotes them).
-- Inlinable SQL functions, so the period scans below evaluate them without a call per row.
-- ---------------------------------------------------------------------------------------------
-- An administrative action: a permission change, or an action named admin...
create function audit.is_admin_action(p_event_type text, p_action text) returns boolean
language sql immutable parallel safe
as $$
  select p_event_type = 'permission_change' or pg_catalog.lower(p_action) like 'admin%'
$$;

-- Access to the audit trail itself: its routes, exports and reports.
create function audit.is_audit_log_access(p_action text, p_resource_path text) returns boolean
language sql immutable parallel safe
as $$
  select p_action in ('gdpr_export', 'report_generated', 'audit_export', 'audit_read', 'audit_log_access')
      or pg_catalog.starts_with(p_resource_path, '/events')
      or pg_catalog.starts_with(p_resource_path, '/reports')
      or pg_catalog.starts_with(p_resource_path, '/integrity')
      or pg_catalog.starts_with(p_resource_path, '/audit')
$$;

-- An access attempt that was refused (the outcome says failure) on a login or an object.
create function audit.is_invalid_access(p_event_type text, p_status text) returns boolean
language sql immutable parallel safe
as $$
  select p_status = 'failure' and p_event_type in (
    'user_login', 'file_access', 'file_download', 'file_upload', 'file_modify', 'file_delete', 'file_share',
    'folder_create', 'folder_delete', 'permission_change')
$$;

-- Only account-level events can change a credential (file events never do): the event type is tested
-- first, so the regular expression runs on a small share of the rows.
create function audit.is_credential_change(p_event_type text, p_action text) returns boolean
language sql immutable parallel safe
as $$
  select p_event_type in ('user_activity', 'security_event', 'system_event')
     and pg_catalog.lower(p_action) ~ '(password|credential|mfa|2fa|api_key|apikey|passkey)'
$$;

create function audit.is_audit_log_lifecycle(p_event_type text, p_action text) returns boolean
language sql immutable parallel safe
as $$
  select p_event_type = 'system_event'
     and pg_catalog.lower(p_action) ~ '^(audit|logging|audit_log)_(start|started|stop|stopped|pause|paused|resume|resumed|init|initialized)$'
$$;

create function audit.is_system_object_change(p_event_type text, p_action text) returns boolean
language sql immutable parallel safe
as $$
  select p_event_type in ('folder_create', 'folder_delete')
      or (p_event_type = 'system_event' and pg_catalog.lower(p_action) ~ '(create|delete|drop)')
$$;

-- ---------------------------------------------------------------------------------------------
-- The period at a glance. One pass over the period computes every per-row fact once and groups the
-- rows by those facts (bucket, type, outcome, tags, and a few booleans): a few thousand groups at
-- most, whatever the number of events. Everything else is summed over the groups. Distinct users
-- take a second, hashed pass. p_bucket: 'hour' or 'day'.
-- ---------------------------------------------------------------------------------------------
create function audit.report_overview(
  p_start timestamptz, p_end timestamptz, p_bucket text default 'day', p_skew_seconds integer default 300
) returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now   timestamptz := pg_catalog.now();
  v_skew  interval := pg_catalog.make_interval(secs => p_skew_seconds);
  v_old   timestamptz := v_now - pg_catalog.make_interval(
                           days => coalesce((select pg_catalog.min(p.days) from audit.retention_policies p), 0));
  v_users bigint;
  v_result jsonb;
begin
  if p_bucket is null or p_bucket not in ('hour', 'day') then
    raise exception 'bucket must be hour or day, got %', p_bucket using errcode = 'invalid_parameter_value';
  end if;
  if p_end <= p_start then
    raise exception 'period end must be after its start' using errcode = 'invalid_parameter_value';
  end if;

  select pg_catalog.count(*) into v_users
    from (select e.user_id from audit.audit_events e
           where e."timestamp" >= p_start and e."timestamp" < p_end group by e.user_id) u;

  with facts as (
    select pg_catalog.date_trunc(p_bucket, e."timestamp" at time zone 'UTC') as bucket,
           e.event_type, e.status, e.compliance_tags,
           audit.is_admin_action(e.event_type, e.action) as admin,
           audit.is_audit_log_access(e.action, e.resource_path) as log_access,
           audit.is_credential_change(e.event_type, e.action) as credential,
           audit.is_audit_log_lifecycle(e.event_type, e.action) as lifecycle,
           audit.is_system_object_change(e.event_type, e.action) as system_object,
           e.redaction_reason,
           e.ip_address is not null as has_origin,
           (e.resource_path is not null or e.resource_id is not null) as has_resource,
           (e.session_id is not null or e.user_agent is not null) as has_session,
           e."timestamp" < e.received_at - v_skew or e."timestamp" > e.received_at + v_skew as skewed,
           e."timestamp" > e.received_at + v_skew as ahead,
           greatest(e.received_at - e."timestamp", e."timestamp" - e.received_at) as skew,
           -- redacted for retention before the policy allowed it (the policy is looked up only for those rows)
           case when e.redaction_reason = 'retention'
                then e.redacted_at < e."timestamp" + pg_catalog.make_interval(
                       days => audit.retention_days(e.compliance_tags, e.event_type))
                else false end as redacted_early,
           -- past retention, unredacted, not on hold (looked up only for rows older than the shortest policy)
           case when e.redacted_at is null and e."timestamp" < v_old
                then e."timestamp" < v_now - pg_catalog.make_interval(
                       days => audit.retention_days(e.compliance_tags, e.event_type))
                     and not audit.is_held(e, v_now)
                else false end as overdue,
           e.seq, e."timestamp" as ts
      from audit.audit_events e
     where e."timestamp" >= p_start and e."timestamp" < p_end
  ),
  g as materialized (
    select f.bucket, f.event_type, f.status, f.compliance_tags, f.admin, f.log_access, f.credential, f.lifecycle,
           f.system_object, f.redaction_reason, f.has_origin, f.has_resource, f.has_session, f.skewed, f.ahead,
           f.redacted_early, f.overdue,
           pg_catalog.count(*) as n, pg_catalog.max(f.skew) as max_skew,
           pg_catalog.min(f.seq) as min_seq, pg_catalog.max(f.seq) as max_seq,
           pg_catalog.min(f.ts) as min_ts, pg_catalog.max(f.ts) as max_ts
      from facts f
     group by f.bucket, f.event_type, f.status, f.compliance_tags, f.admin, f.log_access, f.credential, f.lifecycle,
              f.system_object, f.redaction_reason, f.has_origin, f.has_resource, f.has_session, f.skewed, f.ahead,
              f.redacted_early, f.overdue
  ),
  totals as (
    select pg_catalog.jsonb_build_object(
      'total_events', coalesce(pg_catalog.sum(g.n), 0),
      'distinct_users', v_users,
      'failures', coalesce(pg_catalog.sum(g.n) filter (where g.status = 'failure'), 0),
      'min_seq', pg_catalog.min(g.min_seq),
      'max_seq', pg_catalog.max(g.max_seq),
      'first_timestamp', audit.format_timestamp(pg_catalog.min(g.min_ts)),
      'last_timestamp', audit.format_timestamp(pg_catalog.max(g.max_ts)),
      'redacted', coalesce(pg_catalog.sum(g.n) filter (where g.redaction_reason is not null), 0),
      'redacted_erasure', coalesce(pg_catalog.sum(g.n) filter (where g.redaction_reason = 'erasure'), 0),
      'untagged', coalesce(pg_catalog.sum(g.n) filter (where pg_catalog.cardinality(g.compliance_tags) = 0), 0),
      'tagged', pg_catalog.jsonb_build_object(
        'gdpr', coalesce(pg_catalog.sum(g.n) filter (where 'gdpr' = any(g.compliance_tags)), 0),
        'hipaa', coalesce(pg_catalog.sum(g.n) filter (where 'hipaa' = any(g.compliance_tags)), 0),
        'sox', coalesce(pg_catalog.sum(g.n) filter (where 'sox' = any(g.compliance_tags)), 0),
        'pci_dss', coalesce(pg_catalog.sum(g.n) filter (where 'pci_dss' = any(g.compliance_tags)), 0),
        'iso_27001', coalesce(pg_catalog.sum(g.n) filter (where 'iso_27001' = any(g.compliance_tags)), 0),
        'cis', coalesce(pg_catalog.sum(g.n) filter (where 'cis' = any(g.compliance_tags)), 0)),
      'pci_classes', pg_catalog.jsonb_build_object(
        '10.2.1.1', coalesce(pg_catalog.sum(g.n) filter (where g.event_type in ('file_access', 'file_download')
                                                           and 'pci_dss' = any(g.compliance_tags)), 0),
        '10.2.1.2', coalesce(pg_catalog.sum(g.n) filter (where g.admin), 0),
        '10.2.1.3', coalesce(pg_catalog.sum(g.n) filter (where g.log_access), 0),
        '10.2.1.4', coalesce(pg_catalog.sum(g.n) filter (where audit.is_invalid_access(g.event_type, g.status)), 0),
        '10.2.1.5', coalesce(pg_catalog.sum(g.n) filter (where g.credential), 0),
        '10.2.1.6', coalesce(pg_catalog.sum(g.n) filter (where g.lifecycle), 0),
        '10.2.1.7', coalesce(pg_catalog.sum(g.n) filter (where g.system_object), 0)),
      'admin_actions', coalesce(pg_catalog.sum(g.n) filter (where g.admin), 0),
      'untagged_admin_actions', coalesce(pg_catalog.sum(g.n) filter (where g.admin
                                                              and pg_catalog.cardinality(g.compliance_tags) = 0), 0),
      -- Field completeness is judged on unredacted events: redaction blanks origin fields on purpose.
      'unredacted', coalesce(pg_catalog.sum(g.n) filter (where g.redaction_reason is null), 0),
      'missing_origin', coalesce(pg_catalog.sum(g.n) filter (where g.redaction_reason is null and not g.has_origin), 0),
      'missing_resource', coalesce(pg_catalog.sum(g.n) filter (where g.redaction_reason is null and not g.has_resource), 0),
      'fields_complete', coalesce(pg_catalog.sum(g.n) filter (where g.redaction_reason is null and g.has_origin
                                                                and g.has_resource), 0),
      'missing_session', coalesce(pg_catalog.sum(g.n) filter (where g.redaction_reason is null and not g.has_session), 0),
      'details_complete', coalesce(pg_catalog.sum(g.n) filter (where g.redaction_reason is null and g.has_origin
                                                                 and g.has_resource and g.has_session), 0),
      'clock_skewed', coalesce(pg_catalog.sum(g.n) filter (where g.skewed), 0),
      'clock_ahead', coalesce(pg_catalog.sum(g.n) filter (where g.ahead), 0),
      'max_clock_skew_seconds', coalesce(extract(epoch from pg_catalog.max(g.max_skew)), 0),
      'redacted_early', coalesce(pg_catalog.sum(g.n) filter (where g.redacted_early), 0),
      'overdue_retention', coalesce(pg_catalog.sum(g.n) filter (where g.overdue), 0)) as facts
    from g
  ),
  by_type as (select g.event_type, pg_catalog.sum(g.n)::bigint as events from g group by 1),
  by_bucket as (
    select g.bucket, pg_catalog.sum(g.n)::bigint as events,
           coalesce(pg_catalog.sum(g.n) filter (where g.status = 'failure'), 0)::bigint as failures
      from g group by 1
  ),
  alerts as (
    select pg_catalog.date_trunc(p_bucket, a.first_event_at at time zone 'UTC') as bucket,
           pg_catalog.count(*) as alerts, pg_catalog.max(a.risk_score) as max_risk
      from audit.security_alerts a
     where a.first_event_at >= p_start and a.first_event_at < p_end
     group by 1
  ),
  buckets as (
    select s.bucket
      from pg_catalog.generate_series(pg_catalog.date_trunc(p_bucket, p_start at time zone 'UTC'),
                                      (p_end at time zone 'UTC') - interval '1 microsecond',
                                      case p_bucket when 'hour' then interval '1 hour' else interval '1 day' end) as s(bucket)
  )
  select t.facts || pg_catalog.jsonb_build_object(
           'events_by_type', (select coalesce(pg_catalog.jsonb_object_agg(bt.event_type, bt.events), '{}'::jsonb)
                                from by_type bt),
           'risk_trend', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'bucket_start', pg_catalog.to_char(b.bucket, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'events', coalesce(bb.events, 0), 'failures', coalesce(bb.failures, 0),
                   'alerts', coalesce(al.alerts, 0), 'max_risk_score', al.max_risk) order by b.bucket)
               from buckets b
               left join by_bucket bb on bb.bucket = b.bucket
               left join alerts al on al.bucket = b.bucket), '[]'::jsonb),
           'bucket', p_bucket, 'skew_seconds', p_skew_seconds, 'as_of', audit.format_timestamp(v_now))
    into v_result
    from totals t;
  return v_result;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Access to tagged data per user (HIPAA PHI, SOX financial data, GDPR personal data).
-- ---------------------------------------------------------------------------------------------
create function audit.report_tag_access(p_start timestamptz, p_end timestamptz, p_tag text, p_limit integer default 25)
returns jsonb
language sql stable security definer set search_path = ''
as $$
  with per_user as (
    select e.user_id,
           pg_catalog.count(*) as events,
           pg_catalog.count(*) filter (where e.event_type in ('file_access', 'file_download')) as reads,
           pg_catalog.count(*) filter (where e.event_type in ('file_upload', 'file_modify', 'file_delete', 'file_share',
                                                             'folder_create', 'folder_delete')) as changes,
           pg_catalog.count(*) filter (where e.status = 'failure') as failures,
           pg_catalog.count(distinct coalesce(e.resource_id, e.resource_path)) as resources,
           pg_catalog.min(e."timestamp") as first_at, pg_catalog.max(e."timestamp") as last_at
      from audit.audit_events e
     where e."timestamp" >= p_start and e."timestamp" < p_end and p_tag = any(e.compliance_tags)
     group by e.user_id
  )
  select pg_catalog.jsonb_build_object(
    'tag', p_tag,
    'users', pg_catalog.count(*),
    'events', coalesce(pg_catalog.sum(u.events), 0),
    'reads', coalesce(pg_catalog.sum(u.reads), 0),
    'changes', coalesce(pg_catalog.sum(u.changes), 0),
    'failures', coalesce(pg_catalog.sum(u.failures), 0),
    'top_users', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
          'user_id', t.user_id, 'events', t.events, 'reads', t.reads, 'changes', t.changes, 'failures', t.failures,
          'resources', t.resources, 'first_at', audit.format_timestamp(t.first_at),
          'last_at', audit.format_timestamp(t.last_at)) order by t.events desc, t.user_id)
        from (select * from per_user x order by x.events desc, x.user_id
               limit least(greatest(p_limit, 1), 1000)) t), '[]'::jsonb))
  from per_user u
$$;

-- ---------------------------------------------------------------------------------------------
-- Failed and refused access: by type, per user, and on tagged data.
-- ---------------------------------------------------------------------------------------------
create function audit.report_failed_access(p_start timestamptz, p_end timestamptz, p_limit integer default 25)
returns jsonb
language sql stable security definer set search_path = ''
as $$
  with failed as (
    select e.user_id, e.event_type, e.ip_address, e.compliance_tags, e."timestamp"
      from audit.audit_events e
     where e."timestamp" >= p_start and e."timestamp" < p_end and audit.is_invalid_access(e.event_type, e.status)
  ),
  per_user as (
    select f.user_id, pg_catalog.count(*) as failures,
           pg_catalog.count(*) filter (where f.event_type = 'user_login') as failed_logins,
           pg_catalog.count(distinct f.ip_address) as addresses,
           pg_catalog.min(f."timestamp") as first_at, pg_catalog.max(f."timestamp") as last_at
      from failed f group by f.user_id
  )
  select pg_catalog.jsonb_build_object(
    'total', (select pg_catalog.count(*) from failed),
    'failed_logins', (select pg_catalog.count(*) from failed f where f.event_type = 'user_login'),
    'on_tagged', (select pg_catalog.jsonb_build_object(
        'hipaa', pg_catalog.count(*) filter (where 'hipaa' = any(f.compliance_tags)),
        'sox', pg_catalog.count(*) filter (where 'sox' = any(f.compliance_tags)),
        'gdpr', pg_catalog.count(*) filter (where 'gdpr' = any(f.compliance_tags)),
        'pci_dss', pg_catalog.count(*) filter (where 'pci_dss' = any(f.compliance_tags))) from failed f),
    'by_type', (select coalesce(pg_catalog.jsonb_object_agg(t.event_type, t.n), '{}'::jsonb)
                  from (select f.event_type, pg_catalog.count(*) as n from failed f group by 1) t),
    'users', (select pg_catalog.count(*) from per_user),
    'top_users', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
          'user_id', u.user_id, 'failures', u.failures, 'failed_logins', u.failed_logins, 'addresses', u.addresses,
          'first_at', audit.format_timestamp(u.first_at), 'last_at', audit.format_timestamp(u.last_at))
          order by u.failures desc, u.user_id)
        from (select * from per_user x order by x.failures desc, x.user_id
               limit least(greatest(p_limit, 1), 1000)) u), '[]'::jsonb))
$$;

-- ---------------------------------------------------------------------------------------------
-- Permission changes and other administrative actions, with whether they grant an admin-like
-- role (the keys and values of the privilege_escalation detection rule) and whether they carry tags.
-- ---------------------------------------------------------------------------------------------
create function audit.report_admin_actions(p_start timestamptz, p_end timestamptz, p_limit integer default 50)
returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_match jsonb := coalesce((select r.details_match from audit.detection_rules r where r.name = 'privilege_escalation'),
    '{"keys": ["role", "new_role", "granted_role", "permission", "to"], "values": ["admin", "administrator", "owner", "superuser", "root"]}'::jsonb);
  v_keys text[] := array(select pg_catalog.jsonb_array_elements_text(v_match -> 'keys'));
  v_values text[] := array(select pg_catalog.lower(v) from pg_catalog.jsonb_array_elements_text(v_match -> 'values') v);
  v_result jsonb;
begin
  with acts as (
    select e.seq, e.event_id, e."timestamp", e.event_type, e.user_id, e.action, e.status, e.resource_path,
           e.resource_id, e.compliance_tags,
           (select pg_catalog.string_agg(e.details ->> k, ',') from pg_catalog.unnest(v_keys) k
             where e.details ? k) as granted,
           exists (select 1 from pg_catalog.unnest(v_keys) k
                    where pg_catalog.lower(e.details ->> k) = any(v_values)) as grants_admin
      from audit.audit_events e
     where e."timestamp" >= p_start and e."timestamp" < p_end and audit.is_admin_action(e.event_type, e.action)
  )
  select pg_catalog.jsonb_build_object(
    'total', pg_catalog.count(*),
    'permission_changes', pg_catalog.count(*) filter (where a.event_type = 'permission_change'),
    'untagged', pg_catalog.count(*) filter (where pg_catalog.cardinality(a.compliance_tags) = 0),
    'sox_tagged', pg_catalog.count(*) filter (where 'sox' = any(a.compliance_tags)),
    'grants_admin', pg_catalog.count(*) filter (where a.grants_admin and a.status = 'success'),
    'failed', pg_catalog.count(*) filter (where a.status = 'failure'),
    'rows', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
          'seq', x.seq, 'event_id', x.event_id, 'timestamp', audit.format_timestamp(x."timestamp"),
          'event_type', x.event_type, 'user_id', x.user_id, 'action', x.action, 'status', x.status,
          'resource', coalesce(x.resource_path, x.resource_id), 'granted', x.granted, 'grants_admin', x.grants_admin,
          'compliance_tags', pg_catalog.to_jsonb(x.compliance_tags)) order by x.seq)
        from (select * from acts y
               -- the ones to look at first: untagged or admin-granting, then the rest
               order by (pg_catalog.cardinality(y.compliance_tags) = 0 or y.grants_admin) desc, y.seq
               limit least(greatest(p_limit, 1), 1000)) x), '[]'::jsonb))
    into v_result
    from acts a;
  return v_result;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Segregation-of-duties conflicts on data tagged p_tag (SOX: financial data). On one resource
-- (resource_id, else resource_path), one user succeeded at both halves of a pair:
--   create_and_approve: created it (event_type file_upload or folder_create, or an action starting
--     create, submit, request, prepare or draft) and approved it (an action starting approve,
--     authorise/authorize, sign_off/signoff or release);
--   modify_and_delete: modified it (event_type file_modify, or an action starting modify, update,
--     edit or change) and deleted it (event_type file_delete or folder_delete, or an action
--     starting delete, remove or void).
-- ---------------------------------------------------------------------------------------------
create function audit.report_sod_conflicts(p_start timestamptz, p_end timestamptz, p_tag text default 'sox',
                                           p_limit integer default 50)
returns jsonb
language sql stable security definer set search_path = ''
as $$
  with acts as (
    select e.user_id, coalesce(e.resource_id, e.resource_path) as resource,
           pg_catalog.bool_or(e.event_type in ('file_upload', 'folder_create')
                              or pg_catalog.lower(e.action) ~ '^(create|submit|request|prepare|draft)') as created,
           pg_catalog.bool_or(pg_catalog.lower(e.action) ~ '^(approve|authori[sz]e|sign_?off|release)') as approved,
           pg_catalog.bool_or(e.event_type = 'file_modify'
                              or pg_catalog.lower(e.action) ~ '^(modify|update|edit|change)') as modified,
           pg_catalog.bool_or(e.event_type in ('file_delete', 'folder_delete')
                              or pg_catalog.lower(e.action) ~ '^(delete|remove|void)') as deleted,
           pg_catalog.array_agg(e.event_id order by e.seq) as event_ids,
           pg_catalog.min(e."timestamp") as first_at, pg_catalog.max(e."timestamp") as last_at
      from audit.audit_events e
     where e."timestamp" >= p_start and e."timestamp" < p_end and p_tag = any(e.compliance_tags)
       and e.status = 'success' and coalesce(e.resource_id, e.resource_path) is not null
     group by 1, 2
  ),
  conflicts as (
    select a.*, case when a.created and a.approved then 'create_and_approve' else 'modify_and_delete' end as kind
      from acts a
     where (a.created and a.approved) or (a.modified and a.deleted)
  )
  select pg_catalog.jsonb_build_object(
    'tag', p_tag,
    'resources_checked', (select pg_catalog.count(distinct a.resource) from acts a),
    'conflicts', (select pg_catalog.count(*) from conflicts),
    'create_and_approve', (select pg_catalog.count(*) from conflicts c where c.created and c.approved),
    'modify_and_delete', (select pg_catalog.count(*) from conflicts c where c.modified and c.deleted),
    'rows', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
          'user_id', c.user_id, 'resource', c.resource, 'kind', c.kind,
          'event_ids', pg_catalog.to_jsonb(c.event_ids[1:10]), 'first_at', audit.format_timestamp(c.first_at),
          'last_at', audit.format_timestamp(c.last_at)) order by c.first_at, c.user_id)
        from (select * from conflicts x order by x.first_at, x.user_id limit least(greatest(p_limit, 1), 1000)) c),
      '[]'::jsonb))
$$;

-- ---------------------------------------------------------------------------------------------
-- Alerts of the period (first evidence inside it) and their handling: by severity and status,
-- who reviewed them and how fast, which are overdue for review, and the breach candidates
-- (high and critical) with their detection times.
-- ---------------------------------------------------------------------------------------------
create function audit.report_alerts(p_start timestamptz, p_end timestamptz, p_review_hours integer default 24,
                                    p_limit integer default 50)
returns jsonb
language sql stable security definer set search_path = ''
as $$
  with al as (
    select a.*, a.status <> 'open' as reviewed,
           extract(epoch from a.status_changed_at - a.created_at) as review_seconds,
           extract(epoch from a.created_at - a.first_event_at) as detection_seconds,
           a.status = 'open' and a.created_at < pg_catalog.now() - pg_catalog.make_interval(hours => p_review_hours)
             as overdue
      from audit.security_alerts a
     where a.first_event_at >= p_start and a.first_event_at < p_end
  )
  select pg_catalog.jsonb_build_object(
    'total', (select pg_catalog.count(*) from al),
    'review_hours', p_review_hours,
    'by_severity', (select pg_catalog.jsonb_build_object(
        'low', pg_catalog.count(*) filter (where x.severity = 'low'),
        'medium', pg_catalog.count(*) filter (where x.severity = 'medium'),
        'high', pg_catalog.count(*) filter (where x.severity = 'high'),
        'critical', pg_catalog.count(*) filter (where x.severity = 'critical')) from al x),
    'by_status', (select pg_catalog.jsonb_build_object(
        'open', pg_catalog.count(*) filter (where x.status = 'open'),
        'acknowledged', pg_catalog.count(*) filter (where x.status = 'acknowledged'),
        'resolved', pg_catalog.count(*) filter (where x.status = 'resolved')) from al x),
    'by_rule', (select coalesce(pg_catalog.jsonb_object_agg(r.rule, r.n), '{}'::jsonb)
                  from (select x.rule, pg_catalog.count(*) as n from al x group by 1) r),
    'reviewed', (select pg_catalog.count(*) from al x where x.reviewed),
    'overdue', (select pg_catalog.count(*) from al x where x.overdue),
    'overdue_high', (select pg_catalog.count(*) from al x where x.overdue and x.severity in ('high', 'critical')),
    'median_review_seconds', (select pg_catalog.percentile_cont(0.5) within group (order by x.review_seconds)
                                from al x where x.reviewed),
    'max_review_seconds', (select pg_catalog.max(x.review_seconds) from al x where x.reviewed),
    'max_detection_seconds', (select pg_catalog.max(x.detection_seconds) from al x),
    'reviewers', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('reviewer', r.who, 'alerts', r.n)
                                                       order by r.n desc, r.who)
                             from (select x.status_changed_by as who, pg_catalog.count(*) as n from al x
                                    where x.reviewed group by 1) r), '[]'::jsonb),
    'breach_candidates', (select pg_catalog.count(*) from al x where x.severity in ('high', 'critical')),
    'breach_open_over_72h', (select pg_catalog.count(*) from al x where x.severity in ('high', 'critical')
                              and x.status = 'open' and x.created_at < pg_catalog.now() - interval '72 hours'),
    'breach_open', (select pg_catalog.count(*) from al x where x.severity in ('high', 'critical') and x.status = 'open'),
    'rows', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
          'alert_id', x.alert_id, 'rule', x.rule, 'attack_id', x.attack_id, 'severity', x.severity,
          'risk_score', x.risk_score, 'alert_key', x.alert_key, 'event_count', x.event_count,
          'first_event_at', audit.format_timestamp(x.first_event_at),
          'detected_at', audit.format_timestamp(x.created_at), 'detection_seconds', x.detection_seconds,
          'status', x.status, 'reviewed_by', x.status_changed_by,
          'reviewed_at', case when x.reviewed then audit.format_timestamp(x.status_changed_at) end,
          'review_seconds', case when x.reviewed then x.review_seconds end, 'overdue', x.overdue,
          'summary', x.summary) order by x.severity_rank desc, x.created_at)
        from (select y.*, case y.severity when 'critical' then 4 when 'high' then 3 when 'medium' then 2 else 1 end
                            as severity_rank
                from al y order by severity_rank desc, y.created_at limit least(greatest(p_limit, 1), 1000)) x),
      '[]'::jsonb))
$$;

-- ---------------------------------------------------------------------------------------------
-- Retention evidence: the policy for a tag, its legal floor, the shortest policy of all, overrides,
-- the oldest record (how much history the trail can show) and the newest retention runs.
-- ---------------------------------------------------------------------------------------------
create function audit.report_retention(p_tag text default null) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'tag', p_tag,
    'policy_days', audit.retention_days(case when p_tag is null then '{}'::text[] else array[p_tag] end, null),
    'floor_days', (select f.days from audit.retention_floors f where f.compliance_tag = p_tag),
    'floor_basis', (select f.basis from audit.retention_floors f where f.compliance_tag = p_tag),
    'default_days', (select p.days from audit.retention_policies p where p.scope = 'default'),
    'min_policy_days', (select pg_catalog.min(p.days) from audit.retention_policies p),
    'policies', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
          'scope', p.scope, 'scope_value', p.scope_value, 'days', p.days, 'override_reason', p.override_reason,
          'updated_by', p.updated_by, 'updated_at', audit.format_timestamp(p.updated_at))
          order by p.scope, p.scope_value) from audit.retention_policies p), '[]'::jsonb),
    'oldest_event_at', (select audit.format_timestamp(pg_catalog.min(e."timestamp")) from audit.audit_events e),
    'history_days', (select pg_catalog.floor(extract(epoch from pg_catalog.now() - pg_catalog.min(e."timestamp")) / 86400)
                       from audit.audit_events e),
    'last_completed_run', (select pg_catalog.jsonb_build_object(
          'run_id', r.run_id, 'as_of', audit.format_timestamp(r.as_of), 'finished_at', audit.format_timestamp(r.finished_at),
          'archived', r.archived, 'redacted', r.redacted, 'held_back', r.held_back)
        from audit.retention_runs r where r.status = 'completed' order by r.finished_at desc limit 1),
    'active_legal_holds', (select pg_catalog.count(*) from audit.legal_holds h
                            where h.released_at is null and (h.held_until is null or h.held_until > pg_catalog.now())))
$$;

-- ---------------------------------------------------------------------------------------------
-- GDPR data-subject requests of the period: the trail records each one itself (security_event,
-- action gdpr_export or gdpr_erasure, details.subject and details.request_id; functions/retention).
-- For an erasure, what is left of the subject's events from before it, unredacted, must be exactly
-- what it kept (legal hold or retention obligation): more means the erasure did not take.
-- ---------------------------------------------------------------------------------------------
create function audit.report_gdpr_requests(p_start timestamptz, p_end timestamptz, p_limit integer default 100)
returns jsonb
language sql stable security definer set search_path = ''
as $$
  with req as (
    select e.seq, e."timestamp", e.action, e.user_id as actor, e.details
      from audit.audit_events e
     where e."timestamp" >= p_start and e."timestamp" < p_end and e.event_type = 'security_event'
       and e.action in ('gdpr_export', 'gdpr_erasure')
  ),
  shown as (
    select r.*,
           case when r.action = 'gdpr_erasure' then
             (select pg_catalog.count(*) from audit.audit_events s
               where s.user_id = r.details ->> 'subject' and s.seq < r.seq and s.redacted_at is null) end as left_unredacted,
           case when r.action = 'gdpr_erasure' then
             (select pg_catalog.count(*) from audit.audit_events s
               where s.user_id = r.details ->> 'subject' and s.redaction_ref = r.details ->> 'request_id') end as erased
      from req r order by r.seq limit least(greatest(p_limit, 1), 1000)
  )
  select pg_catalog.jsonb_build_object(
    'exports', (select pg_catalog.count(*) from req r where r.action = 'gdpr_export'),
    'erasures', (select pg_catalog.count(*) from req r where r.action = 'gdpr_erasure'),
    'rows', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
          'seq', s.seq, 'at', audit.format_timestamp(s."timestamp"),
          'article', case s.action when 'gdpr_export' then 'Art. 15' else 'Art. 17' end,
          'request_id', s.details ->> 'request_id', 'subject', s.details ->> 'subject', 'actor', s.actor,
          'exported_events', (s.details ->> 'events')::bigint,
          'redacted', (s.details ->> 'redacted')::bigint, 'kept', (s.details ->> 'kept')::bigint,
          'grounds', s.details -> 'grounds', 'erased_now', s.erased, 'left_unredacted', s.left_unredacted,
          'complete', case when s.action = 'gdpr_erasure'
                           then s.left_unredacted <= coalesce((s.details ->> 'kept')::bigint, 0) end)
          order by s.seq) from shown s), '[]'::jsonb))
$$;

-- ---------------------------------------------------------------------------------------------
-- Chain links over a seq range, recomputed in SQL: no gap in seq, prev_hash(n) = chain_hash(n-1)
-- (32 zero bytes before seq 1), chain_hash(n) = SHA-256(prev_hash(n) || checksum(n)). Checksums are
-- not recomputed here (that needs RFC 8785 canonical JSON; the report samples them in Python and
-- `audit-trail verify` recomputes all of them).
-- ---------------------------------------------------------------------------------------------
create function audit.report_chain_links(p_from_seq bigint, p_to_seq bigint) returns jsonb
language sql stable security definer set search_path = ''
as $$
  -- One pass in seq order over the primary key; the event before the range is read for its chain_hash only.
  with linked as (
    select e.seq, e.redacted_at is not null as redacted,
           case
             when e.seq = 1 and e.prev_hash <> pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex') then 'reordered'
             when e.seq > 1 and pg_catalog.lag(e.seq) over w is distinct from e.seq - 1 then 'missing'
             when e.seq > 1 and e.prev_hash <> pg_catalog.lag(e.chain_hash) over w then 'reordered'
             when e.chain_hash <> pg_catalog.sha256(e.prev_hash || e.checksum) then 'chain_hash_mismatch'
           end as reason
      from audit.audit_events e
     where e.seq between greatest(p_from_seq - 1, 1) and p_to_seq
    window w as (order by e.seq)
  )
  select pg_catalog.jsonb_build_object(
    'from_seq', p_from_seq, 'to_seq', p_to_seq,
    'checked', pg_catalog.count(*) filter (where l.seq >= p_from_seq),
    'expected', greatest(p_to_seq - p_from_seq + 1, 0),
    'first_invalid_seq', pg_catalog.min(l.seq) filter (where l.seq >= p_from_seq and l.reason is not null),
    'reason', (pg_catalog.array_agg(l.reason order by l.seq)
                 filter (where l.seq >= p_from_seq and l.reason is not null))[1],
    'redacted', pg_catalog.count(*) filter (where l.seq >= p_from_seq and l.redacted))
  from linked l
$$;

-- ---------------------------------------------------------------------------------------------
-- Notable events: what an auditor should look at first, each with why.
-- ---------------------------------------------------------------------------------------------
create function audit.report_notable_events(p_start timestamptz, p_end timestamptz, p_from_seq bigint, p_to_seq bigint,
                                            p_skew_seconds integer default 300, p_limit integer default 50)
returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_result jsonb;
begin
  -- plpgsql, so the query is planned for the actual range: it walks the period's seq range on the
  -- primary key and stops at p_limit notable events. Alert evidence is a hashed set lookup per row;
  -- the rule is named only for the rows returned.
  with alerted as (
    select pg_catalog.unnest(a.event_ids[1:50]) as event_id
      from audit.security_alerts a
     where a.first_event_at >= p_start and a.first_event_at < p_end
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'event_id', c.event_id, 'seq', c.seq, 'timestamp', audit.format_timestamp(c."timestamp"),
           'event_type', c.event_type, 'user_id', c.user_id, 'ip_address', pg_catalog.host(c.ip_address),
           'resource_path', c.resource_path, 'status', c.status, 'security_level', c.security_level,
           'why', case when c.why = 'alert'
                       then 'evidence of alert ' || (select pg_catalog.min(a.rule) from audit.security_alerts a
                                                      where a.first_event_at >= p_start and a.first_event_at < p_end
                                                        and c.event_id = any(a.event_ids[1:50]))
                       else c.why end)
           order by c.seq), '[]'::jsonb)
    into v_result
    from (
      select k.* from (
        select e.seq, e.event_id, e."timestamp", e.event_type, e.user_id, e.ip_address, e.resource_path, e.status,
               e.security_level,
               case
                 when e.event_id in (select x.event_id from alerted x) then 'alert'
                 when audit.is_admin_action(e.event_type, e.action) and pg_catalog.cardinality(e.compliance_tags) = 0
                   then 'administrative action without compliance tags'
                 when e.status = 'failure' and e.security_level in ('high', 'critical')
                   then 'failed ' || e.security_level || ' event'
                 when e.action in ('gdpr_export', 'gdpr_erasure') then 'data-subject request (' || e.action || ')'
                 when pg_catalog.abs(extract(epoch from e.received_at - e."timestamp")) > p_skew_seconds
                   then 'timestamp ' || pg_catalog.round(extract(epoch from e.received_at - e."timestamp"))::text
                        || ' s from its arrival'
                 when e.event_type = 'permission_change' then 'permission change'
               end as why
          from audit.audit_events e
         where e.seq between p_from_seq and p_to_seq
           and e."timestamp" >= p_start and e."timestamp" < p_end
      ) k
      where k.why is not null
      order by k.seq
      limit least(greatest(p_limit, 1), 1000)) c;
  return v_result;
end
$$;

-- The first and last seq of the period's events (the CSV and the chain check walk this range by seq).
create function audit.report_seq_range(p_start timestamptz, p_end timestamptz) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select pg_catalog.jsonb_build_object('min_seq', pg_catalog.min(e.seq), 'max_seq', pg_catalog.max(e.seq))
    from audit.audit_events e
   where e."timestamp" >= p_start and e."timestamp" < p_end
$$;

-- ---------------------------------------------------------------------------------------------
-- Events in scope as CSV, one page per call (keyset by seq within the period's seq range), so the
-- caller streams them to S3 holding one page at a time. Text cells are quoted; a cell that a
-- spreadsheet would run as a formula (starting = + - @ tab or CR) is prefixed with a quote (OWASP).
-- ---------------------------------------------------------------------------------------------
create function audit.csv_cell(p_value text) returns text
language sql immutable parallel safe
as $$
  select case when p_value is null then ''
              else '"' || pg_catalog.replace(
                     case when pg_catalog.left(p_value, 1) in ('=', '+', '-', '@', E'\t', E'\r') then '''' || p_value else p_value end, '"', '""') || '"'
         end
$$;

create function audit.report_events_csv(
  p_start timestamptz, p_end timestamptz, p_after_seq bigint, p_to_seq bigint, p_limit integer default 10000
) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'rows', pg_catalog.count(*),
    'last_seq', pg_catalog.max(p.seq),
    'csv', coalesce(pg_catalog.string_agg(p.line, '' order by p.seq), ''))
  from (
    select e.seq,
           e.seq::text || ',' || audit.csv_cell(e.event_id) || ',' || audit.format_timestamp(e."timestamp") || ','
           || e.event_type || ',' || audit.csv_cell(e.user_id) || ',' || coalesce(pg_catalog.host(e.ip_address), '')
           || ',' || audit.csv_cell(e.action) || ',' || audit.csv_cell(e.resource_path) || ','
           || audit.csv_cell(e.resource_id) || ',' || e.status || ',' || e.security_level || ','
           || pg_catalog.array_to_string(e.compliance_tags, ' ') || ',' || audit.format_timestamp(e.received_at) || ','
           || coalesce(e.redaction_reason, '') || ',' || pg_catalog.encode(e.checksum, 'hex') || ','
           || pg_catalog.encode(e.chain_hash, 'hex') || E'\r\n' as line
      from audit.audit_events e
     where e.seq > p_after_seq and e.seq <= p_to_seq
       and e."timestamp" >= p_start and e."timestamp" < p_end
     order by e.seq
     limit least(greatest(p_limit, 1), 50000)
  ) p
$$;

-- ---------------------------------------------------------------------------------------------
-- Grants: the reports function (service_role) only.
-- ---------------------------------------------------------------------------------------------
revoke all on all functions in schema audit from public;
grant execute on function
  audit.report_begin(jsonb),
  audit.report_complete(uuid, jsonb, text, bigint),
  audit.report_fail(uuid, text),
  audit.report_get(uuid),
  audit.report_list(text, timestamptz, timestamptz, timestamptz, uuid, integer),
  audit.report_overview(timestamptz, timestamptz, text, integer),
  audit.report_tag_access(timestamptz, timestamptz, text, integer),
  audit.report_failed_access(timestamptz, timestamptz, integer),
  audit.report_admin_actions(timestamptz, timestamptz, integer),
  audit.report_sod_conflicts(timestamptz, timestamptz, text, integer),
  audit.report_alerts(timestamptz, timestamptz, integer, integer),
  audit.report_retention(text),
  audit.report_gdpr_requests(timestamptz, timestamptz, integer),
  audit.report_chain_links(bigint, bigint),
  audit.report_notable_events(timestamptz, timestamptz, bigint, bigint, integer, integer),
  audit.report_seq_range(timestamptz, timestamptz),
  audit.report_events_csv(timestamptz, timestamptz, bigint, bigint, integer)
  to service_role;
