-- Detection: rules as data, indexed window queries, alerts deduplicated per (rule, key, window),
-- the webhook wiring, and the bookkeeping that lets the sweep catch every event a webhook missed.

-- ---------------------------------------------------------------------------------------------
-- Rules. Each row is one rule; change thresholds, windows, severities or switch a rule off with
-- an UPDATE (admins), no code change. A rule counts the events that match its selector
-- (event types, optional status, optional details match) for one key (the event's user_id or
-- ip_address) in the window ending at the event; at `threshold` it raises an alert.
-- A window of 0 seconds means every matching event is an alert of its own.
-- ---------------------------------------------------------------------------------------------
create table audit.detection_rules (
  name           text collate "C" primary key check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  description    text not null,
  event_types    text[] not null check (cardinality(event_types) > 0),
  status         text check (status in ('success', 'failure')),
  details_match  jsonb check (details_match is null or (jsonb_typeof(details_match -> 'keys') = 'array'
                                                        and jsonb_typeof(details_match -> 'values') = 'array')),
  group_by       text not null check (group_by in ('user_id', 'ip_address')),
  window_seconds integer not null check (window_seconds between 0 and 86400),
  threshold      integer not null check (threshold between 1 and 100000),
  severity       text not null check (severity in ('low', 'medium', 'high', 'critical')),
  attack_id      text not null,
  enabled        boolean not null default true,
  updated_at     timestamptz not null default now()
);
comment on table audit.detection_rules is
  'Detection rules as data: UPDATE a row to change a threshold, window, severity, or to disable it.';

insert into audit.detection_rules
  (name, description, event_types, status, details_match, group_by, window_seconds, threshold, severity, attack_id)
values
  ('multiple_failed_logins', 'Repeated failed logins for one account (password guessing)',
   '{user_login}', 'failure', null, 'user_id', 900, 5, 'medium', 'T1110.001'),
  ('brute_force', 'Many failed logins from one IP address, across any accounts (brute force or spraying)',
   '{user_login}', 'failure', null, 'ip_address', 900, 20, 'high', 'T1110'),
  ('unusual_file_access', 'One user touching an unusual number of files (automated collection)',
   '{file_access,file_download}', null, null, 'user_id', 600, 100, 'medium', 'T1119'),
  ('data_exfiltration', 'Bulk downloads by one user (data from cloud storage, exfiltration)',
   '{file_download}', 'success', null, 'user_id', 3600, 50, 'high', 'T1530'),
  ('privilege_escalation', 'A permission change that grants an admin-like role',
   '{permission_change}', 'success',
   '{"keys": ["role", "new_role", "granted_role", "permission", "to"],
     "values": ["admin", "administrator", "owner", "superuser", "root", "super_admin", "org_admin"]}',
   'user_id', 0, 1, 'high', 'T1098');

-- Window queries: one index per key kind, ordered by time within the key and covering the
-- selector columns, so counting a window is an index-only range scan bounded by the window, however
-- long the key's history (tests/integration/test_detection.py EXPLAINs it; bench/detect.py times it).
create index audit_events_detect_user_idx on audit.audit_events (user_id, "timestamp")
  include (event_type, status, ip_address);
create index audit_events_detect_ip_idx on audit.audit_events (ip_address, "timestamp")
  include (event_type, status, user_id)
  where ip_address is not null;

-- ---------------------------------------------------------------------------------------------
-- Alerts: one per (rule, key, window). Retried or repeated webhooks update the same row.
-- ---------------------------------------------------------------------------------------------
create table audit.security_alerts (
  alert_id         uuid primary key default gen_random_uuid(),
  rule             text collate "C" not null,
  alert_key        text collate "C" not null,
  window_start     timestamptz not null,
  window_seconds   integer not null,
  severity         text not null check (severity in ('low', 'medium', 'high', 'critical')),
  risk_score       numeric(3, 1) not null check (risk_score between 0 and 10),
  attack_id        text not null,
  event_count      integer not null check (event_count > 0),
  event_ids        text[] not null,
  first_event_at   timestamptz not null,
  last_event_at    timestamptz not null,
  trigger_seq      bigint not null,
  summary          text not null,
  context          jsonb not null default '{}',
  status           text not null default 'open' check (status in ('open', 'acknowledged', 'resolved')),
  status_note      text check (length(status_note) <= 2000),
  status_changed_by text,
  status_changed_at timestamptz,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  published_at     timestamptz,
  unique (rule, alert_key, window_start)
);
create index security_alerts_status_idx on audit.security_alerts (status, created_at desc);
create index security_alerts_unpublished_idx on audit.security_alerts (created_at) where published_at is null;
comment on table audit.security_alerts is
  'Risk-scored alerts, one per (rule, key, window); published_at is the outbox marker for SNS/EventBridge.';

-- Which events were analysed (by a webhook or the sweep), above the sweep's watermark.
create table audit.detection_log (
  seq          bigint primary key,
  analysed_at  timestamptz not null default now(),
  source       text not null check (source in ('webhook', 'sweep'))
);
create table audit.detection_state (
  singleton    boolean primary key default true check (singleton),
  watermark    bigint not null default 0,
  swept_at     timestamptz
);
insert into audit.detection_state default values;

alter table audit.detection_rules enable row level security;
alter table audit.security_alerts enable row level security;
alter table audit.detection_log enable row level security;
alter table audit.detection_state enable row level security;

create policy detection_rules_read_auditor on audit.detection_rules for select to authenticated
  using ((select auth.jwt() -> 'app_metadata' ->> 'audit_role') in ('auditor', 'admin'));
create policy security_alerts_read_auditor on audit.security_alerts for select to authenticated
  using ((select auth.jwt() -> 'app_metadata' ->> 'audit_role') in ('auditor', 'admin'));

revoke all on audit.detection_rules, audit.security_alerts, audit.detection_log, audit.detection_state
  from public, anon, authenticated, service_role;
grant select on audit.detection_rules, audit.security_alerts to authenticated;
grant select on audit.detection_rules, audit.security_alerts, audit.detection_state to service_role;

-- ---------------------------------------------------------------------------------------------
-- Window queries as inlinable SQL functions: the evaluator and the EXPLAIN test run the same SQL.
-- ---------------------------------------------------------------------------------------------
create function audit.window_events_by_user(
  p_user_id text, p_event_types text[], p_status text, p_from timestamptz, p_to timestamptz
) returns setof audit.audit_events
language sql stable
as $$
  select e.* from audit.audit_events e
   where e.user_id = p_user_id
     and e.event_type = any(p_event_types)
     and (p_status is null or e.status = p_status)
     and e."timestamp" > p_from and e."timestamp" <= p_to
$$;

create function audit.window_events_by_ip(
  p_ip inet, p_event_types text[], p_status text, p_from timestamptz, p_to timestamptz
) returns setof audit.audit_events
language sql stable
as $$
  select e.* from audit.audit_events e
   where e.ip_address = p_ip
     and e.event_type = any(p_event_types)
     and (p_status is null or e.status = p_status)
     and e."timestamp" > p_from and e."timestamp" <= p_to
$$;

-- ---------------------------------------------------------------------------------------------
-- Evaluate every enabled rule for the given events. Returns one hit per (rule, key, window)
-- whose count reached the threshold, with the facts the risk score needs. Records the events
-- as analysed. Read-only otherwise: alerts are written by audit.record_alert().
-- ---------------------------------------------------------------------------------------------
create function audit.detect_events(p_seqs jsonb, p_source text default 'webhook') returns jsonb
language plpgsql volatile security definer set search_path = ''
-- Plan each window query for its actual key and rule: a cached generic plan cannot bound the index
-- scan by `event_type = any(...)`/`status` and walked a heavy user's whole history (bench/detect.py).
set plan_cache_mode = force_custom_plan
as $$
declare
  ev       audit.audit_events;
  r        audit.detection_rules;
  v_key    text;
  v_count  integer;
  v_from   timestamptz;
  v_start  timestamptz;
  v_ids    text[];
  v_first  timestamptz;
  v_hits   jsonb := '[]'::jsonb;
  v_ctx    jsonb;
  v_seqs   bigint[] := array(select pg_catalog.jsonb_array_elements_text(p_seqs)::bigint);
begin
  if p_source not in ('webhook', 'sweep') then
    raise exception 'source must be webhook or sweep, got %', p_source using errcode = 'invalid_parameter_value';
  end if;
  for ev in select * from audit.audit_events e where e.seq = any(v_seqs) order by e.seq loop
    for r in select * from audit.detection_rules d
              where d.enabled and ev.event_type = any(d.event_types)
                and (d.status is null or d.status = ev.status)
              order by d.name loop
      if r.details_match is not null and not exists (
           select 1 from pg_catalog.jsonb_array_elements_text(r.details_match -> 'keys') k(key)
            where pg_catalog.lower(ev.details ->> k.key) in (
                  select pg_catalog.lower(v) from pg_catalog.jsonb_array_elements_text(r.details_match -> 'values') x(v))) then
        continue;
      end if;
      if r.group_by = 'ip_address' and ev.ip_address is null then
        continue;
      end if;
      v_key := case r.group_by when 'user_id' then ev.user_id else pg_catalog.host(ev.ip_address) end;

      if r.window_seconds = 0 then
        v_count := 1;
        v_start := ev."timestamp";
        v_first := ev."timestamp";
        v_ids := array[ev.event_id];
        -- the window's alert, if any (null when none): its context is reused below
        select a.context into v_ctx from audit.security_alerts a
         where a.rule = r.name and a.alert_key = v_key and a.window_start = v_start;
      else
        v_from := ev."timestamp" - pg_catalog.make_interval(secs => r.window_seconds);
        -- Count at most `threshold` rows: the work is bounded whatever the history holds.
        if r.group_by = 'user_id' then
          select pg_catalog.count(*) into v_count from (
            select 1 from audit.window_events_by_user(ev.user_id, r.event_types, r.status, v_from, ev."timestamp")
             limit r.threshold) w;
        else
          select pg_catalog.count(*) into v_count from (
            select 1 from audit.window_events_by_ip(ev.ip_address, r.event_types, r.status, v_from, ev."timestamp")
             limit r.threshold) w;
        end if;
        if v_count < r.threshold then
          continue;
        end if;
        -- Tumbling windows aligned to the epoch name the alert: one per (rule, key, window).
        v_start := pg_catalog.to_timestamp(
          pg_catalog.floor(extract(epoch from ev."timestamp") / r.window_seconds) * r.window_seconds);
        -- the window's alert, if any (null when none): its context is reused below
        select a.context into v_ctx from audit.security_alerts a
         where a.rule = r.name and a.alert_key = v_key and a.window_start = v_start;
        if v_ctx is not null then
          -- The window's alert exists: add this event to its evidence, nothing to re-read.
          v_ids := array[ev.event_id];
          v_first := ev."timestamp";
        elsif r.group_by = 'user_id' then
          select pg_catalog.array_agg(w.event_id order by w."timestamp", w.seq), pg_catalog.min(w."timestamp"),
                 pg_catalog.count(*)
            into v_ids, v_first, v_count
            from (select * from audit.window_events_by_user(ev.user_id, r.event_types, r.status, v_from, ev."timestamp")
                   order by "timestamp" desc limit 200) w;
        else
          select pg_catalog.array_agg(w.event_id order by w."timestamp", w.seq), pg_catalog.min(w."timestamp"),
                 pg_catalog.count(*)
            into v_ids, v_first, v_count
            from (select * from audit.window_events_by_ip(ev.ip_address, r.event_types, r.status, v_from, ev."timestamp")
                   order by "timestamp" desc limit 200) w;
        end if;
      end if;

      -- Context for the risk score (docs/detection.md), computed once per alert: a burst that keeps
      -- the rule firing reuses the stored context (looked up above) instead of re-reading the history.
      if v_ctx is null then
        -- The user's recent history, bounded (the last 2000 events of 30 days): enough to know their
        -- usual IPs and hours, and constant work for the heaviest account.
        with recent as (
          select h.ip_address, h."timestamp" from audit.audit_events h
           where h.user_id = ev.user_id and h."timestamp" <= ev."timestamp"
             and h."timestamp" > ev."timestamp" - interval '30 days'
           order by h."timestamp" desc limit 2000
        )
        select pg_catalog.jsonb_build_object(
          'first_seen_ip', ev.ip_address is not null and not exists (
              select 1 from recent p where p.ip_address = ev.ip_address
                 and p."timestamp" < ev."timestamp" - pg_catalog.make_interval(secs => greatest(r.window_seconds, 60))),
          'user_events_30d', (select pg_catalog.count(*) from recent),
          'user_events_same_hour_30d', (select pg_catalog.count(*) from recent h
               where extract(hour from h."timestamp" at time zone 'UTC') = extract(hour from ev."timestamp" at time zone 'UTC')),
          'prior_alerts_24h', (select pg_catalog.count(*) from audit.security_alerts a
               where a.alert_key = v_key and a.created_at > ev."timestamp" - interval '24 hours'
                 and not (a.rule = r.name and a.window_start = v_start)),
          'distinct_users', case when r.group_by = 'ip_address' then (
               select pg_catalog.count(distinct w.user_id) from audit.window_events_by_ip(
                 ev.ip_address, r.event_types, r.status, v_from, ev."timestamp") w) end)
          into v_ctx;
      end if;

      v_hits := v_hits || pg_catalog.jsonb_build_object(
        'rule', r.name, 'rule_severity', r.severity, 'attack_id', r.attack_id, 'description', r.description,
        'event_types', pg_catalog.to_jsonb(r.event_types), 'rule_status', r.status, 'details_match', r.details_match,
        'group_by', r.group_by, 'alert_key', v_key, 'window_start', audit.format_timestamp(v_start),
        'window_seconds', r.window_seconds, 'threshold', r.threshold, 'event_count', v_count,
        'event_ids', pg_catalog.to_jsonb(v_ids), 'first_event_at', audit.format_timestamp(v_first),
        'last_event_at', audit.format_timestamp(ev."timestamp"), 'trigger_seq', ev.seq,
        'trigger_event_id', ev.event_id, 'security_level', ev.security_level, 'user_id', ev.user_id,
        'ip_address', pg_catalog.host(ev.ip_address), 'details', ev.details, 'context', v_ctx);
    end loop;
  end loop;

  insert into audit.detection_log (seq, source)
  select s, p_source from pg_catalog.unnest(v_seqs) s
   where exists (select 1 from audit.audit_events e where e.seq = s)
  on conflict (seq) do nothing;
  return v_hits;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Upsert one alert; returns it with `created` (first time this (rule, key, window) fired).
-- A repeat keeps the highest risk score and the widest evidence.
-- ---------------------------------------------------------------------------------------------
create function audit.record_alert(p_alert jsonb) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_row audit.security_alerts;
  v_id uuid;
  v_created boolean;
begin
  insert into audit.security_alerts as a (
    rule, alert_key, window_start, window_seconds, severity, risk_score, attack_id, event_count, event_ids,
    first_event_at, last_event_at, trigger_seq, summary, context)
  values (
    p_alert ->> 'rule', p_alert ->> 'alert_key', (p_alert ->> 'window_start')::timestamptz,
    (p_alert ->> 'window_seconds')::integer, p_alert ->> 'severity', (p_alert ->> 'risk_score')::numeric,
    p_alert ->> 'attack_id', (p_alert ->> 'event_count')::integer,
    array(select pg_catalog.jsonb_array_elements_text(p_alert -> 'event_ids')),
    (p_alert ->> 'first_event_at')::timestamptz, (p_alert ->> 'last_event_at')::timestamptz,
    (p_alert ->> 'trigger_seq')::bigint, p_alert ->> 'summary', coalesce(p_alert -> 'context', '{}'::jsonb))
  on conflict (rule, alert_key, window_start) do update set
    risk_score     = greatest(a.risk_score, excluded.risk_score),
    severity       = case when excluded.risk_score > a.risk_score then excluded.severity else a.severity end,
    event_count    = greatest(a.event_count, excluded.event_count, pg_catalog.cardinality(
                       array(select distinct u from pg_catalog.unnest(a.event_ids || excluded.event_ids) u))),
    -- evidence capped at 1000 ids per alert; event_count keeps counting
    event_ids      = (array(select distinct u from pg_catalog.unnest(a.event_ids || excluded.event_ids) u
                             order by u))[1:1000],
    first_event_at = least(a.first_event_at, excluded.first_event_at),
    last_event_at  = greatest(a.last_event_at, excluded.last_event_at),
    trigger_seq    = greatest(a.trigger_seq, excluded.trigger_seq),
    summary        = case when excluded.event_count > a.event_count then excluded.summary else a.summary end,
    updated_at     = pg_catalog.now()
  returning a.alert_id, (a.xmax = 0) into v_id, v_created;  -- xmax = 0: this statement inserted the row
  select * into v_row from audit.security_alerts s where s.alert_id = v_id;
  return audit.alert_json(v_row) || pg_catalog.jsonb_build_object('created', v_created);
end
$$;

create function audit.alert_json(a audit.security_alerts) returns jsonb
language sql stable set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'alert_id', a.alert_id, 'rule', a.rule, 'alert_key', a.alert_key,
    'window_start', audit.format_timestamp(a.window_start), 'window_seconds', a.window_seconds,
    'severity', a.severity, 'risk_score', a.risk_score, 'attack_id', a.attack_id,
    'event_count', a.event_count, 'event_ids', pg_catalog.to_jsonb(a.event_ids),
    'first_event_at', audit.format_timestamp(a.first_event_at),
    'last_event_at', audit.format_timestamp(a.last_event_at), 'trigger_seq', a.trigger_seq,
    'summary', a.summary, 'context', a.context, 'status', a.status, 'status_note', a.status_note,
    'status_changed_by', a.status_changed_by, 'status_changed_at', audit.format_timestamp(a.status_changed_at),
    'created_at', audit.format_timestamp(a.created_at), 'updated_at', audit.format_timestamp(a.updated_at),
    'published_at', audit.format_timestamp(a.published_at))
$$;

-- Outbox: alerts not yet published (a crash between storing and publishing is retried).
create function audit.unpublished_alerts(p_limit integer default 100) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select coalesce(pg_catalog.jsonb_agg(audit.alert_json(a) order by a.created_at), '[]'::jsonb)
    from (select * from audit.security_alerts s where s.published_at is null
           order by s.created_at limit least(greatest(p_limit, 1), 1000)) a
$$;

create function audit.mark_alerts_published(p_alert_ids jsonb) returns integer
language sql volatile security definer set search_path = ''
as $$
  with done as (
    update audit.security_alerts s set published_at = pg_catalog.now()
     where s.alert_id in (select pg_catalog.jsonb_array_elements_text(p_alert_ids)::uuid)
       and s.published_at is null returning 1)
  select pg_catalog.count(*)::integer from done
$$;

-- ---------------------------------------------------------------------------------------------
-- Reading and handling alerts.
-- ---------------------------------------------------------------------------------------------
create function audit.list_alerts(
  p_status text default null, p_severity text default null, p_rule text default null,
  p_alert_key text default null, p_limit integer default 100, p_before timestamptz default null
) returns jsonb
language sql stable security invoker set search_path = ''
as $$
  select coalesce(pg_catalog.jsonb_agg(audit.alert_json(a) order by a.created_at desc, a.alert_id), '[]'::jsonb)
    from (select * from audit.security_alerts s
           where (p_status is null or s.status = p_status)
             and (p_severity is null or s.severity = p_severity)
             and (p_rule is null or s.rule = p_rule)
             and (p_alert_key is null or s.alert_key = p_alert_key)
             and (p_before is null or s.created_at < p_before)
           order by s.created_at desc, s.alert_id
           limit least(greatest(p_limit, 1), 1000)) a
$$;

create function audit.update_alert_status(p_alert_id uuid, p_status text, p_actor text, p_note text default null)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_row audit.security_alerts;
begin
  if p_status not in ('open', 'acknowledged', 'resolved') then
    raise exception 'status must be open, acknowledged or resolved, got %', p_status
      using errcode = 'invalid_parameter_value';
  end if;
  if coalesce(pg_catalog.btrim(p_actor), '') = '' then
    raise exception 'an alert change needs the actor who made it' using errcode = 'invalid_parameter_value';
  end if;
  update audit.security_alerts s
     set status = p_status, status_note = coalesce(p_note, s.status_note), status_changed_by = p_actor,
         status_changed_at = pg_catalog.now(), updated_at = pg_catalog.now()
   where s.alert_id = p_alert_id
  returning s.* into v_row;
  if not found then
    return null;
  end if;
  return audit.alert_json(v_row);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Sweep: events above the watermark that no webhook analysed; then move the watermark.
-- ---------------------------------------------------------------------------------------------
create function audit.detection_backlog(p_limit integer default 500) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'watermark', st.watermark,
    'head_seq', (select h.seq from audit.chain_head h),
    'seqs', coalesce((select pg_catalog.jsonb_agg(e.seq order by e.seq) from (
        select e.seq from audit.audit_events e
         where e.seq > st.watermark
           and not exists (select 1 from audit.detection_log l where l.seq = e.seq)
         order by e.seq limit least(greatest(p_limit, 1), 10000)) e), '[]'::jsonb))
  from audit.detection_state st
$$;

-- Everything up to p_seq has been analysed: move the watermark there and forget the log below it.
create function audit.advance_detection_watermark(p_seq bigint) returns bigint
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_missing bigint;
begin
  select e.seq into v_missing from audit.audit_events e
   where e.seq > (select st.watermark from audit.detection_state st) and e.seq <= p_seq
     and not exists (select 1 from audit.detection_log l where l.seq = e.seq)
   order by e.seq limit 1;
  if v_missing is not null then
    raise exception 'event seq % has not been analysed; the watermark cannot pass it', v_missing
      using errcode = 'invalid_parameter_value';
  end if;
  update audit.detection_state set watermark = greatest(watermark, p_seq), swept_at = pg_catalog.now();
  delete from audit.detection_log l where l.seq <= p_seq;
  return (select st.watermark from audit.detection_state st);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Webhook wiring: one call connects the event table to the detect endpoint.
-- On Supabase, supabase_functions.http_request (pg_net) posts the standard database-webhook payload.
-- Elsewhere (vanilla PostgreSQL, the local stack) the trigger sends the same payload shape with
-- pg_notify on channel 'audit_detection' (record trimmed to seq and event_id: NOTIFY payloads are
-- limited to 8000 bytes, and the detect function reads the event from the database anyway).
-- ---------------------------------------------------------------------------------------------
create function audit.tg_notify_detection() returns trigger
language plpgsql
as $$
begin
  perform pg_catalog.pg_notify('audit_detection', pg_catalog.json_build_object(
    'type', tg_op, 'table', tg_table_name, 'schema', tg_table_schema,
    'record', pg_catalog.json_build_object('seq', new.seq, 'event_id', new.event_id),
    'old_record', null)::text);
  return null;
end
$$;

create function audit.configure_detection_webhook(p_url text, p_secret text, p_timeout_ms integer default 5000)
returns text
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_headers text;
begin
  if p_url is null or p_url !~ '^https?://' then
    raise exception 'webhook url must be http(s)://..., got %', p_url using errcode = 'invalid_parameter_value';
  end if;
  if coalesce(pg_catalog.length(p_secret), 0) < 16 then
    raise exception 'webhook secret must be at least 16 characters' using errcode = 'invalid_parameter_value';
  end if;
  drop trigger if exists audit_events_detection_webhook on audit.audit_events;
  if exists (select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
              where n.nspname = 'supabase_functions' and p.proname = 'http_request') then
    v_headers := pg_catalog.json_build_object('Content-Type', 'application/json',
                                              'X-Audit-Webhook-Secret', p_secret)::text;
    execute pg_catalog.format(
      'create trigger audit_events_detection_webhook after insert on audit.audit_events for each row '
      'execute function supabase_functions.http_request(%L, %L, %L, %L, %L)',
      p_url, 'POST', v_headers, '{}', p_timeout_ms::text);
    return 'supabase_functions.http_request';
  end if;
  create trigger audit_events_detection_webhook after insert on audit.audit_events
    for each row execute function audit.tg_notify_detection();
  return 'pg_notify';
end
$$;

revoke all on all functions in schema audit from public;
grant execute on function
  audit.detect_events(jsonb, text),
  audit.record_alert(jsonb),
  audit.unpublished_alerts(integer),
  audit.mark_alerts_published(jsonb),
  audit.list_alerts(text, text, text, text, integer, timestamptz),
  audit.update_alert_status(uuid, text, text, text),
  audit.detection_backlog(integer),
  audit.advance_detection_watermark(bigint),
  audit.alert_json(audit.security_alerts)
  to service_role;
grant execute on function
  audit.list_alerts(text, text, text, text, integer, timestamptz),
  audit.alert_json(audit.security_alerts),
  audit.window_events_by_user(text, text[], text, timestamptz, timestamptz),
  audit.window_events_by_ip(inet, text[], text, timestamptz, timestamptz)
  to authenticated;
grant execute on function
  audit.window_events_by_user(text, text[], text, timestamptz, timestamptz),
  audit.window_events_by_ip(inet, text[], text, timestamptz, timestamptz)
  to service_role;
