-- Security analytics: the trends behind GET /analytics and the dashboard, computed in SQL.
--
-- One call answers one dashboard refresh: events per bucket by type and outcome, failed logins,
-- after-hours activity, new IP addresses per user, alerts by rule and severity, the risk-score
-- histogram, the riskiest users and addresses, and the state of the chain and of the detection sweep.
--
-- Speed without touching ingest. Aggregating a month of raw events on every refresh costs seconds
-- on 1,000,000 events (bench/analytics.py), and an index or a trigger on the insert path would cost
-- ingest throughput. So three small rollups are kept up to date by the analytics call itself,
-- incrementally by seq (a watermark, like the detection sweep's), never by the writers:
--   * audit.analytics_slots and audit.analytics_hours: events per 5-minute slot and per hour, event
--     type and status (no personal data); a month of the bench is ~13,000 hour rows instead of
--     ~108,000 slot rows or 1,000,000 events;
--   * audit.analytics_user_ips: each (user, IP address) pair with its first and last sighting.
-- A read takes whole hours from the hour rollup (when the buckets are whole hours and the time zone's
-- offset too), whole slots from the slot rollup, and from audit_events the partial slots at the period's
-- edges (by timestamp) and the events above the watermark (the newest, by seq), so answers are exact
-- whatever the rollups' lag. Seqs become visible in order (inserts hold the chain head lock until they
-- commit), so "every event up to the watermark" is well defined.
-- Alerts are read by their first_event_at index (reports migration); no index is added to audit_events.
-- Redaction (retention, GDPR erasure) blanks an event's IP address: a trigger on that UPDATE only
-- forgets the pair, or moves its first sighting past the redacted events, so the pair rollup never
-- keeps an address the trail itself no longer holds.

-- ---------------------------------------------------------------------------------------------
-- Rollups and their watermark.
-- ---------------------------------------------------------------------------------------------
create table audit.analytics_slots (
  slot_start  timestamptz not null,
  event_type  text collate "C" not null,
  status      text collate "C" not null,
  events      bigint not null check (events > 0),
  primary key (slot_start, event_type, status)
);
comment on table audit.analytics_slots is
  'Events per 5-minute slot (aligned to 2000-01-01T00:00Z), type and status, for events up to analytics_state.rolled_up_seq.';

create table audit.analytics_hours (
  hour_start  timestamptz not null,
  event_type  text collate "C" not null,
  status      text collate "C" not null,
  events      bigint not null check (events > 0),
  primary key (hour_start, event_type, status)
);
comment on table audit.analytics_hours is
  'Events per hour (UTC), type and status, for events up to analytics_state.rolled_up_seq.';

create table audit.analytics_user_ips (
  user_id     text collate "C" not null,
  ip_address  inet not null,
  first_seen  timestamptz not null,
  last_seen   timestamptz not null,
  primary key (user_id, ip_address)
);
create index analytics_user_ips_first_seen_idx on audit.analytics_user_ips (first_seen);
comment on table audit.analytics_user_ips is
  'Each (user, IP address) pair of unredacted events up to analytics_state.rolled_up_seq, with its first and last sighting.';

create table audit.analytics_state (
  singleton     boolean primary key default true check (singleton),
  rolled_up_seq bigint not null default 0 check (rolled_up_seq >= 0),
  refreshed_at  timestamptz
);
insert into audit.analytics_state default values;

alter table audit.analytics_slots enable row level security;
alter table audit.analytics_hours enable row level security;
alter table audit.analytics_user_ips enable row level security;
alter table audit.analytics_state enable row level security;
revoke all on audit.analytics_slots, audit.analytics_hours, audit.analytics_user_ips, audit.analytics_state
  from public, anon, authenticated, service_role;

-- The slot every rollup and every bucket is aligned to.
create function audit.analytics_slot(p_ts timestamptz) returns timestamptz
language sql immutable parallel safe
as $$
  select pg_catalog.date_bin('5 minutes'::interval, p_ts, '2000-01-01 00:00:00+00'::timestamptz)
$$;

-- ---------------------------------------------------------------------------------------------
-- Roll the events above the watermark into the rollups: at most p_max_events per call, and only
-- one caller at a time (the others skip; their reads stay exact from the raw tail).
-- ---------------------------------------------------------------------------------------------
create function audit.analytics_refresh(p_max_events integer default 100000) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_from bigint;
  v_to   bigint;
begin
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('audit.analytics_refresh')) then
    return pg_catalog.jsonb_build_object('refreshed', false, 'reason', 'another refresh is running');
  end if;
  select s.rolled_up_seq into v_from from audit.analytics_state s;
  v_to := least((select h.seq from audit.chain_head h),
                v_from + least(greatest(coalesce(p_max_events, 100000), 1), 1000000));
  if v_to > v_from then
    -- the batch is read once; both count rollups are filled from its slots
    with batch as materialized (
      select audit.analytics_slot(e."timestamp") as slot_start, e.event_type, e.status, pg_catalog.count(*) as events
        from audit.audit_events e
       where e.seq > v_from and e.seq <= v_to
       group by 1, 2, 3
    ),
    slots as (
      insert into audit.analytics_slots as a (slot_start, event_type, status, events)
      select b.slot_start, b.event_type, b.status, b.events from batch b
      on conflict (slot_start, event_type, status) do update set events = a.events + excluded.events
    )
    insert into audit.analytics_hours as a (hour_start, event_type, status, events)
    select pg_catalog.date_trunc('hour', b.slot_start, 'UTC'), b.event_type, b.status, pg_catalog.sum(b.events)
      from batch b
     group by 1, 2, 3
    on conflict (hour_start, event_type, status) do update set events = a.events + excluded.events;

    insert into audit.analytics_user_ips as p (user_id, ip_address, first_seen, last_seen)
    select e.user_id, e.ip_address, pg_catalog.min(e."timestamp"), pg_catalog.max(e."timestamp")
      from audit.audit_events e
     where e.seq > v_from and e.seq <= v_to and e.ip_address is not null
     group by 1, 2
    on conflict (user_id, ip_address) do update
      set first_seen = least(p.first_seen, excluded.first_seen),
          last_seen = greatest(p.last_seen, excluded.last_seen);

    update audit.analytics_state set rolled_up_seq = v_to, refreshed_at = pg_catalog.now();
    -- a large catch-up (the first call on an existing trail) changes the rollups' shape: plan on it
    if v_to - v_from >= 100000 then
      analyze audit.analytics_slots, audit.analytics_hours, audit.analytics_user_ips;
    end if;
  end if;
  return pg_catalog.jsonb_build_object('refreshed', true, 'rolled_up_seq', greatest(v_to, v_from),
                                       'added', greatest(v_to - v_from, 0));
end
$$;

-- Redaction blanked IP addresses: forget a pair whose every rolled-up sighting was redacted, else
-- move its first sighting past the redacted ones (retention redacts the oldest events first). Only
-- redaction can UPDATE audit_events (audit.tg_append_only), so this never runs on the ingest path.
create function audit.tg_analytics_redacted() returns trigger
language plpgsql
as $$
begin
  with redacted as (
    select o.user_id, o.ip_address, pg_catalog.max(o."timestamp") as newest
      from old_rows o join new_rows n on n.seq = o.seq
     where o.ip_address is not null and n.ip_address is null
     group by 1, 2
  )
  delete from audit.analytics_user_ips p using redacted r
   where p.user_id = r.user_id and p.ip_address = r.ip_address and p.last_seen <= r.newest;
  with redacted as (
    select o.user_id, o.ip_address, pg_catalog.max(o."timestamp") as newest
      from old_rows o join new_rows n on n.seq = o.seq
     where o.ip_address is not null and n.ip_address is null
     group by 1, 2
  )
  update audit.analytics_user_ips p set first_seen = greatest(p.first_seen, r.newest)
    from redacted r
   where p.user_id = r.user_id and p.ip_address = r.ip_address;
  return null;
end
$$;

create trigger audit_events_analytics_redacted
  after update on audit.audit_events
  referencing old table as old_rows new table as new_rows
  for each statement execute function audit.tg_analytics_redacted();

-- ---------------------------------------------------------------------------------------------
-- GET /analytics: refresh the rollups (bounded), then read everything from one snapshot.
-- ---------------------------------------------------------------------------------------------
-- The read itself. STABLE on purpose: every statement in it sees the snapshot of the call, so the
-- watermark and the rollups it reads agree with each other whatever a concurrent refresh commits.
create function audit.analytics_report(
  p_from timestamptz,
  p_to timestamptz,
  p_bucket_seconds integer,
  p_workday_start integer default 8,
  p_workday_end integer default 18,
  p_workdays integer[] default '{1,2,3,4,5}',
  p_timezone text default 'UTC',
  p_top integer default 10,
  p_verify_tail integer default 1000
) returns json
language plpgsql stable security definer set search_path = ''
-- Plan every statement for this call's period: a generic plan cannot tell an hour from a year.
set plan_cache_mode = force_custom_plan
-- A million-row aggregate crosses the JIT cost threshold, and compiling costs more than it saves here.
set jit = off
as $$
declare
  v_now       timestamptz := pg_catalog.now();
  v_stride    interval;
  v_origin    constant timestamptz := '2000-01-01 00:00:00+00';
  v_top       integer := least(greatest(coalesce(p_top, 10), 1), 100);
  v_tail      integer := least(greatest(coalesce(p_verify_tail, 1000), 0), 100000);
  v_rolled_up bigint := (select s.rolled_up_seq from audit.analytics_state s);
  v_slot_from timestamptz;
  v_slot_to   timestamptz;
  v_hour_from timestamptz;
  v_hour_to   timestamptz;
  -- the large parts are built as json (text), several times cheaper than nesting jsonb values
  v_buckets   json;
  v_totals    json;
  v_after_hours json;
  v_new_ips   json;
  v_alerts    json;
  v_integrity jsonb;
  v_detection jsonb;
begin
  if p_from is null or p_to is null or p_to <= p_from then
    raise exception 'the period end (to) must be after its start (from)' using errcode = 'invalid_parameter_value';
  end if;
  if p_bucket_seconds is null or p_bucket_seconds < 300 or p_bucket_seconds > 7 * 86400
     or p_bucket_seconds % 300 <> 0 then
    raise exception 'bucket must be a whole number of 5 minutes, up to 7 days, got % s', p_bucket_seconds
      using errcode = 'invalid_parameter_value';
  end if;
  if extract(epoch from p_to - p_from) / p_bucket_seconds > 1000 then
    raise exception 'the period holds more than 1000 buckets; choose a larger bucket'
      using errcode = 'invalid_parameter_value';
  end if;
  if p_workday_start is null or p_workday_end is null
     or p_workday_start not between 0 and 24 or p_workday_end not between 0 and 24
     or p_workday_start > p_workday_end then
    raise exception 'working hours must satisfy 0 <= start <= end <= 24, got % to %', p_workday_start, p_workday_end
      using errcode = 'invalid_parameter_value';
  end if;
  if p_workdays is null or not (p_workdays <@ array[1, 2, 3, 4, 5, 6, 7]) then
    raise exception 'workdays must be ISO weekday numbers 1 (Monday) to 7 (Sunday)'
      using errcode = 'invalid_parameter_value';
  end if;
  -- an unknown zone raises invalid_parameter_value here (pg_timezone_names would read every zone file)
  if p_timezone is null then
    raise exception 'time zone must be given' using errcode = 'invalid_parameter_value';
  end if;
  perform v_now at time zone p_timezone;
  v_stride := pg_catalog.make_interval(secs => p_bucket_seconds);

  -- ---------------------------------------------------------------------------------------------
  -- Events: whole 5-minute slots from the rollup, the partial slots at the period's edges and the
  -- events above the watermark from audit_events. Every bucket is a whole number of slots.
  -- ---------------------------------------------------------------------------------------------
  -- [p_from, v_slot_from) and [v_slot_to, p_to): partial slots, from audit_events;
  -- [v_slot_from, v_hour_from) and [v_hour_to, v_slot_to): whole slots; [v_hour_from, v_hour_to): whole hours.
  v_slot_from := audit.analytics_slot(p_from);
  if v_slot_from < p_from then
    v_slot_from := v_slot_from + interval '5 minutes';
  end if;
  v_slot_to := audit.analytics_slot(p_to);
  if v_slot_to <= v_slot_from then
    -- shorter than a whole slot: all of it is an edge
    v_slot_from := p_to;
    v_slot_to := p_to;
  end if;
  v_hour_from := pg_catalog.date_trunc('hour', v_slot_from, 'UTC');
  if v_hour_from < v_slot_from then
    v_hour_from := v_hour_from + interval '1 hour';
  end if;
  v_hour_to := pg_catalog.date_trunc('hour', v_slot_to, 'UTC');
  -- Hour rows serve only whole-hour buckets in a zone whose offset is whole hours at both ends (an
  -- hour row must fall in one bucket and on one side of the working hours); slots serve the rest.
  if v_hour_to <= v_hour_from or p_bucket_seconds % 3600 <> 0
     or extract(epoch from (p_from at time zone p_timezone) - (p_from at time zone 'UTC'))::integer % 3600 <> 0
     or extract(epoch from (p_to at time zone p_timezone) - (p_to at time zone 'UTC'))::integer % 3600 <> 0 then
    v_hour_from := v_slot_to;
    v_hour_to := v_slot_to;
  end if;

  with slot_rows as (
    select h.hour_start as slot_start, h.event_type, h.status, h.events
      from audit.analytics_hours h
     where h.hour_start >= v_hour_from and h.hour_start < v_hour_to
    union all
    select a.slot_start, a.event_type, a.status, a.events
      from audit.analytics_slots a
     where (a.slot_start >= v_slot_from and a.slot_start < v_hour_from)
        or (a.slot_start >= v_hour_to and a.slot_start < v_slot_to)
    union all
    select audit.analytics_slot(e."timestamp"), e.event_type, e.status, pg_catalog.count(*)
      from audit.audit_events e
     where e.seq <= v_rolled_up
       and ((e."timestamp" >= p_from and e."timestamp" < v_slot_from)
            or (e."timestamp" >= v_slot_to and e."timestamp" < p_to))
     group by 1, 2, 3
    union all
    select audit.analytics_slot(e."timestamp"), e.event_type, e.status, pg_catalog.count(*)
      from audit.audit_events e
     where e.seq > v_rolled_up and e."timestamp" >= p_from and e."timestamp" < p_to
     group by 1, 2, 3
  ),
  -- One pass over the slots into (bucket, type, status, after hours); the rest reads that handful.
  slots as (
    select pg_catalog.date_bin(v_stride, r.slot_start, v_origin) as bucket, r.event_type, r.status,
           -- after hours: the slot starts outside [start, end) local time, or on a day off (exact for
           -- every zone whose offset is a whole number of 5 minutes, i.e. all of them today)
           (pg_catalog.date_part('isodow', r.slot_start at time zone p_timezone)::integer <> all (p_workdays)
            or pg_catalog.date_part('hour', r.slot_start at time zone p_timezone)::integer < p_workday_start
            or pg_catalog.date_part('hour', r.slot_start at time zone p_timezone)::integer >= p_workday_end)
             as after_hours,
           pg_catalog.sum(r.events) as events
      from slot_rows r
     group by 1, 2, 3, 4
  ),
  per_bucket as (
    select g.bucket,
           pg_catalog.sum(g.events)::bigint as events,
           coalesce(pg_catalog.sum(g.events) filter (where g.status = 'failure'), 0)::bigint as failures,
           coalesce(pg_catalog.sum(g.events) filter (where g.event_type = 'user_login' and g.status = 'failure'), 0)::bigint
             as failed_logins,
           coalesce(pg_catalog.sum(g.events) filter (where g.after_hours), 0)::bigint as after_hours
      from slots g group by g.bucket
  ),
  per_bucket_type as (
    select t.bucket, pg_catalog.json_object_agg(t.event_type, t.outcomes) as by_type
      from (select g.bucket, g.event_type,
                   pg_catalog.json_build_object(
                     'success', coalesce(pg_catalog.sum(g.events) filter (where g.status = 'success'), 0),
                     'failure', coalesce(pg_catalog.sum(g.events) filter (where g.status = 'failure'), 0)) as outcomes
              from slots g group by g.bucket, g.event_type) t
     group by t.bucket
  ),
  by_type as (
    select g.event_type,
           coalesce(pg_catalog.sum(g.events) filter (where g.status = 'success'), 0) as success,
           coalesce(pg_catalog.sum(g.events) filter (where g.status = 'failure'), 0) as failure,
           coalesce(pg_catalog.sum(g.events) filter (where g.after_hours), 0) as after_hours
      from slots g group by g.event_type
  ),
  series as (
    select s.bucket
      from pg_catalog.generate_series(pg_catalog.date_bin(v_stride, p_from, v_origin),
                                      p_to - interval '1 microsecond', v_stride) as s(bucket)
  )
  select coalesce((
      select pg_catalog.json_agg(pg_catalog.json_build_object(
               'start', audit.format_timestamp(s.bucket),
               'events', coalesce(b.events, 0), 'failures', coalesce(b.failures, 0),
               'failed_logins', coalesce(b.failed_logins, 0), 'after_hours', coalesce(b.after_hours, 0),
               'by_type', coalesce(t.by_type, '{}'::json)) order by s.bucket)
        from series s
        left join per_bucket b on b.bucket = s.bucket
        left join per_bucket_type t on t.bucket = s.bucket), '[]'::json),
    (select pg_catalog.json_build_object(
                 'events', coalesce(pg_catalog.sum(b.events), 0),
                 'failures', coalesce(pg_catalog.sum(b.failures), 0),
                 'failed_logins', coalesce(pg_catalog.sum(b.failed_logins), 0),
                 'after_hours', coalesce(pg_catalog.sum(b.after_hours), 0),
                 'by_type', coalesce((select pg_catalog.json_object_agg(x.event_type, pg_catalog.json_build_object(
                                               'success', x.success, 'failure', x.failure))
                                        from by_type x), '{}'::json))
                 from per_bucket b),
    pg_catalog.json_build_object(
      'workday_start', p_workday_start, 'workday_end', p_workday_end,
      'workdays', pg_catalog.to_jsonb(p_workdays), 'timezone', p_timezone,
      'events', (select coalesce(pg_catalog.sum(x.after_hours), 0) from by_type x),
      'by_type', coalesce((select pg_catalog.json_object_agg(x.event_type, x.after_hours)
                             from by_type x where x.after_hours > 0), '{}'::json))
    into v_buckets, v_totals, v_after_hours;

  -- ---------------------------------------------------------------------------------------------
  -- New IP addresses: (user, address) pairs whose first sighting in the retained trail lies in the
  -- period. The rollup answers by its first_seen index; the events above the watermark are merged in
  -- (a late event may also reveal an earlier sighting).
  -- ---------------------------------------------------------------------------------------------
  with tail_pairs as (
    select e.user_id, e.ip_address, pg_catalog.min(e."timestamp") as first_seen
      from audit.audit_events e
     where e.seq > v_rolled_up and e.ip_address is not null
     group by 1, 2
  ),
  new_pairs as (
    -- rolled-up pairs first seen in the period, unless a newer event reveals an earlier sighting
    select p.user_id, p.ip_address, least(p.first_seen, t.first_seen) as first_seen
      from audit.analytics_user_ips p
      left join tail_pairs t on t.user_id = p.user_id and t.ip_address = p.ip_address
     where p.first_seen >= p_from and p.first_seen < p_to
       and (t.first_seen is null or t.first_seen >= p_from)
    union all
    -- pairs only the newest events know
    select t.user_id, t.ip_address, t.first_seen
      from tail_pairs t
     where t.first_seen >= p_from and t.first_seen < p_to
       and not exists (select 1 from audit.analytics_user_ips k
                        where k.user_id = t.user_id and k.ip_address = t.ip_address)
  ),
  new_by_user as (
    select n.user_id, pg_catalog.count(*) as new_ips, pg_catalog.min(n.first_seen) as first_seen
      from new_pairs n group by n.user_id
  ),
  top_users as (
    select u.*, pg_catalog.row_number() over (order by u.new_ips desc, u.first_seen, u.user_id) as rank
      from new_by_user u order by u.new_ips desc, u.first_seen, u.user_id limit v_top
  )
  select pg_catalog.json_build_object(
    'pairs', (select pg_catalog.count(*) from new_pairs),
    'users', (select pg_catalog.count(*) from new_by_user),
    'top_users', coalesce((
      select pg_catalog.json_agg(pg_catalog.json_build_object(
               'user_id', u.user_id, 'new_ips', u.new_ips,
               -- the first 20 addresses (new_ips counts them all), read by the rollup's primary key
               'addresses', coalesce((
                select pg_catalog.json_agg(pg_catalog.json_build_object(
                         'ip_address', pg_catalog.host(x.ip_address), 'first_seen', audit.format_timestamp(x.first_seen))
                         order by x.first_seen, x.ip_address)
                  from (select y.ip_address, y.first_seen
                          from (select p.ip_address, least(p.first_seen, t.first_seen) as first_seen
                                  from audit.analytics_user_ips p
                                  left join tail_pairs t on t.user_id = p.user_id and t.ip_address = p.ip_address
                                 where p.user_id = u.user_id and p.first_seen >= p_from and p.first_seen < p_to
                                   and (t.first_seen is null or t.first_seen >= p_from)
                                union all
                                select t.ip_address, t.first_seen
                                  from tail_pairs t
                                 where t.user_id = u.user_id and t.first_seen >= p_from and t.first_seen < p_to
                                   and not exists (select 1 from audit.analytics_user_ips k
                                                    where k.user_id = t.user_id and k.ip_address = t.ip_address)) y
                         order by y.first_seen, y.ip_address limit 20) x), '[]'::json))
               order by u.rank)
        from top_users u), '[]'::json))
    into v_new_ips;

  -- ---------------------------------------------------------------------------------------------
  -- Alerts whose first evidence lies in the period (as the reports count them).
  -- ---------------------------------------------------------------------------------------------
  with al as materialized (
    select a.rule, a.severity, a.status, a.risk_score, a.alert_key, a.event_count, a.created_at,
           pg_catalog.date_bin(v_stride, a.first_event_at, v_origin) as bucket,
           coalesce(d.group_by, 'user_id') as key_kind
      from audit.security_alerts a
      left join audit.detection_rules d on d.name = a.rule
     where a.first_event_at >= p_from and a.first_event_at < p_to
  ),
  keys as (
    select x.key_kind, x.alert_key, pg_catalog.count(*) as alerts, pg_catalog.max(x.risk_score) as max_risk,
           pg_catalog.sum(x.risk_score) as total_risk, pg_catalog.sum(x.event_count) as events,
           pg_catalog.count(*) filter (where x.status = 'open') as open,
           pg_catalog.max(x.created_at) as last_alert_at,
           pg_catalog.array_agg(distinct x.rule order by x.rule) as rules
      from al x group by x.key_kind, x.alert_key
  ),
  ranked as (
    select k.*, pg_catalog.row_number() over (
             partition by k.key_kind order by k.max_risk desc, k.total_risk desc, k.alerts desc, k.alert_key) as rank
      from keys k
  ),
  per_bucket as (
    select x.bucket, pg_catalog.count(*) as alerts,
           pg_catalog.count(*) filter (where x.severity = 'low') as low,
           pg_catalog.count(*) filter (where x.severity = 'medium') as medium,
           pg_catalog.count(*) filter (where x.severity = 'high') as high,
           pg_catalog.count(*) filter (where x.severity = 'critical') as critical,
           pg_catalog.max(x.risk_score) as max_risk
      from al x group by x.bucket
  ),
  series as (
    select s.bucket
      from pg_catalog.generate_series(pg_catalog.date_bin(v_stride, p_from, v_origin),
                                      p_to - interval '1 microsecond', v_stride) as s(bucket)
  )
  select pg_catalog.json_build_object(
    'total', (select pg_catalog.count(*) from al),
    'by_severity', (select pg_catalog.json_build_object(
        'low', pg_catalog.count(*) filter (where x.severity = 'low'),
        'medium', pg_catalog.count(*) filter (where x.severity = 'medium'),
        'high', pg_catalog.count(*) filter (where x.severity = 'high'),
        'critical', pg_catalog.count(*) filter (where x.severity = 'critical')) from al x),
    'by_status', (select pg_catalog.json_build_object(
        'open', pg_catalog.count(*) filter (where x.status = 'open'),
        'acknowledged', pg_catalog.count(*) filter (where x.status = 'acknowledged'),
        'resolved', pg_catalog.count(*) filter (where x.status = 'resolved')) from al x),
    'by_rule', coalesce((
      select pg_catalog.json_agg(pg_catalog.json_build_object(
               'rule', r.rule, 'severity', r.severity, 'alerts', r.alerts, 'open', r.open,
               'max_risk_score', r.max_risk) order by r.rule, r.severity_rank desc)
        from (select x.rule, x.severity, pg_catalog.count(*) as alerts,
                     pg_catalog.count(*) filter (where x.status = 'open') as open,
                     pg_catalog.max(x.risk_score) as max_risk,
                     case x.severity when 'critical' then 4 when 'high' then 3 when 'medium' then 2 else 1 end
                       as severity_rank
                from al x group by x.rule, x.severity) r), '[]'::json),
    -- scores 0-10 in eleven unit-wide bins: bin k holds k <= score < k + 1 (10 holds exactly 10)
    'risk_histogram', (
      select pg_catalog.json_agg(pg_catalog.json_build_object('score', k.score, 'alerts', coalesce(h.n, 0))
                                  order by k.score)
        from pg_catalog.generate_series(0, 10) k(score)
        left join (select pg_catalog.floor(x.risk_score)::integer as score, pg_catalog.count(*) as n
                     from al x group by 1) h on h.score = k.score),
    'top_users', coalesce((
      select pg_catalog.json_agg(pg_catalog.json_build_object(
               'user_id', r.alert_key, 'alerts', r.alerts, 'open', r.open, 'max_risk_score', r.max_risk,
               'total_risk_score', r.total_risk, 'events', r.events, 'rules', pg_catalog.to_jsonb(r.rules),
               'last_alert_at', audit.format_timestamp(r.last_alert_at)) order by r.rank)
        from ranked r where r.key_kind = 'user_id' and r.rank <= v_top), '[]'::json),
    'top_ips', coalesce((
      select pg_catalog.json_agg(pg_catalog.json_build_object(
               'ip_address', r.alert_key, 'alerts', r.alerts, 'open', r.open, 'max_risk_score', r.max_risk,
               'total_risk_score', r.total_risk, 'events', r.events, 'rules', pg_catalog.to_jsonb(r.rules),
               'last_alert_at', audit.format_timestamp(r.last_alert_at)) order by r.rank)
        from ranked r where r.key_kind = 'ip_address' and r.rank <= v_top), '[]'::json),
    'buckets', coalesce((
      select pg_catalog.json_agg(pg_catalog.json_build_object(
               'start', audit.format_timestamp(s.bucket), 'alerts', coalesce(b.alerts, 0),
               'low', coalesce(b.low, 0), 'medium', coalesce(b.medium, 0), 'high', coalesce(b.high, 0),
               'critical', coalesce(b.critical, 0), 'max_risk_score', b.max_risk) order by s.bucket)
        from series s left join per_bucket b on b.bucket = s.bucket), '[]'::json),
    -- open alerts of any period: what the dashboard's queue holds
    'open_now', (select pg_catalog.count(*) from audit.security_alerts a where a.status = 'open'))
    into v_alerts;

  -- ---------------------------------------------------------------------------------------------
  -- Integrity: the newest signed digest, whether the chain still holds the chain_hash it signed, and
  -- the links of the newest events recomputed (checksums need RFC 8785: `audit-trail verify` does those).
  -- ---------------------------------------------------------------------------------------------
  with head as (select h.seq, h.chain_hash, h.updated_at from audit.chain_head h),
  digest as (select audit.latest_digest()::jsonb as d),
  links as (
    select case when (select seq from head) > 0 and v_tail > 0
                then audit.report_chain_links(greatest((select seq from head) - v_tail + 1, 1), (select seq from head))
           end as l
  )
  select pg_catalog.jsonb_build_object(
    'head_seq', h.seq,
    'head_chain_hash', pg_catalog.encode(h.chain_hash, 'hex'),
    'head_updated_at', audit.format_timestamp(h.updated_at),
    'last_digest', case when g.d is null then null else pg_catalog.jsonb_build_object(
        'digest_seq', g.d -> 'digest_seq', 'tree_size', g.d -> 'tree_size', 'root_hash', g.d -> 'root_hash',
        'chain_hash', g.d -> 'chain_hash', 'created_at', g.d -> 'created_at', 'period_end', g.d -> 'period_end',
        's3_key', g.d -> 's3_key') end,
    'unanchored_events', h.seq - coalesce((g.d ->> 'tree_size')::bigint, 0),
    'digest_age_seconds', case when g.d is not null
        then pg_catalog.round(extract(epoch from v_now - (g.d ->> 'created_at')::timestamptz)) end,
    -- the event at the digest's tree_size must still carry the chain_hash the digest signed
    'digest_matches_chain', case
        when g.d is null then null
        when (g.d ->> 'tree_size')::bigint = 0 then true
        else coalesce((select e.chain_hash = pg_catalog.decode(g.d ->> 'chain_hash', 'hex')
                         from audit.audit_events e where e.seq = (g.d ->> 'tree_size')::bigint), false) end,
    'links_checked', coalesce((l.l ->> 'checked')::bigint, 0),
    'links_from_seq', (l.l ->> 'from_seq')::bigint,
    'links_valid', l.l is null or (l.l ->> 'first_invalid_seq') is null
                                  and (l.l ->> 'checked')::bigint = (l.l ->> 'expected')::bigint,
    'first_invalid_seq', (l.l ->> 'first_invalid_seq')::bigint,
    'reason', l.l ->> 'reason')
    from head h, digest g, links l
    into v_integrity;
  v_integrity := v_integrity || pg_catalog.jsonb_build_object(
    'status', case
      when not (v_integrity ->> 'links_valid')::boolean
           or (v_integrity ->> 'digest_matches_chain')::boolean is false then 'broken'
      when v_integrity -> 'last_digest' = 'null'::jsonb then 'unanchored'
      else 'ok' end);

  -- ---------------------------------------------------------------------------------------------
  -- Detection sweep: how far the watermark trails the head, and the oldest event no one analysed yet.
  -- Bounded: at most 10,000 seqs above the watermark are looked at.
  -- ---------------------------------------------------------------------------------------------
  with st as (select s.watermark, s.swept_at from audit.detection_state s),
  pending as (
    select e.seq, e.received_at from audit.audit_events e, st
     where e.seq > st.watermark and e.seq <= st.watermark + 10000
       and not exists (select 1 from audit.detection_log l where l.seq = e.seq)
  )
  select pg_catalog.jsonb_build_object(
    'watermark', st.watermark,
    'head_seq', (select h.seq from audit.chain_head h),
    'events_above_watermark', (select h.seq from audit.chain_head h) - st.watermark,
    'swept_at', audit.format_timestamp(st.swept_at),
    'swept_seconds_ago', case when st.swept_at is not null
        then pg_catalog.round(extract(epoch from v_now - st.swept_at)) end,
    'unanalysed', (select pg_catalog.count(*) from pending),
    'unanalysed_capped', (select h.seq from audit.chain_head h) - st.watermark > 10000,
    'oldest_unanalysed_at', (select audit.format_timestamp(pg_catalog.min(p.received_at)) from pending p),
    'lag_seconds', coalesce((select pg_catalog.round(extract(epoch from v_now - pg_catalog.min(p.received_at)))
                               from pending p), 0))
    from st into v_detection;

  return pg_catalog.json_build_object(
    'from', audit.format_timestamp(p_from), 'to', audit.format_timestamp(p_to),
    'bucket_seconds', p_bucket_seconds, 'as_of', audit.format_timestamp(v_now),
    'buckets', v_buckets, 'totals', v_totals, 'after_hours', v_after_hours, 'new_ips', v_new_ips,
    'alerts', v_alerts, 'integrity', v_integrity, 'detection', v_detection);
end
$$;

-- The SQL API entry point: bring the rollups up to date (bounded), then read.
create function audit.analytics(
  p_from timestamptz,
  p_to timestamptz,
  p_bucket_seconds integer,
  p_workday_start integer default 8,
  p_workday_end integer default 18,
  p_workdays integer[] default '{1,2,3,4,5}',
  p_timezone text default 'UTC',
  p_top integer default 10,
  p_verify_tail integer default 1000,
  p_refresh_max integer default 500000
) returns json
language plpgsql volatile security definer set search_path = ''
as $$
begin
  if coalesce(p_refresh_max, 0) > 0 then
    perform audit.analytics_refresh(p_refresh_max);
  end if;
  -- a new statement: its snapshot sees the refresh above
  return audit.analytics_report(p_from, p_to, p_bucket_seconds, p_workday_start, p_workday_end, p_workdays,
                                p_timezone, p_top, p_verify_tail);
end
$$;

comment on function audit.analytics(timestamptz, timestamptz, integer, integer, integer, integer[], text, integer, integer, integer) is
  'Security trends for [p_from, p_to) in buckets of p_bucket_seconds (GET /analytics); one call per dashboard refresh.';

revoke all on function
  audit.analytics_slot(timestamptz),
  audit.analytics_refresh(integer),
  audit.tg_analytics_redacted(),
  audit.analytics_report(timestamptz, timestamptz, integer, integer, integer, integer[], text, integer, integer),
  audit.analytics(timestamptz, timestamptz, integer, integer, integer, integer[], text, integer, integer, integer)
  from public, anon, authenticated;
grant execute on function
  audit.analytics_refresh(integer),
  audit.analytics_report(timestamptz, timestamptz, integer, integer, integer, integer[], text, integer, integer),
  audit.analytics(timestamptz, timestamptz, integer, integer, integer, integer[], text, integer, integer, integer)
  to service_role;
