-- The SQL API: the only way the Lambda functions and the SDK touch the event store.
-- Both transports call these functions: psycopg (`select audit.fn(...)`) and PostgREST
-- (`POST /rest/v1/rpc/fn` with `Content-Profile: audit`). Every function returns jsonb so
-- both transports hand Python the same JSON types (timestamps as RFC 3339 UTC strings,
-- hashes as lowercase hex).

-- ---------------------------------------------------------------------------------------------
-- One event as the API returns it.
-- ---------------------------------------------------------------------------------------------
-- format_timestamp and event_json carry no SET clause and are declared as volatile as their bodies:
-- that keeps them inlinable into the queries that call them per row (reads, chain segments), which
-- measured several times faster than calling them as functions. Every name in them is qualified.
create function audit.format_timestamp(p_ts timestamptz) returns text
language sql stable parallel safe
as $$
  -- RFC 3339 UTC with exactly six fractional digits: the canonical form sealed in checksums.
  select pg_catalog.to_char(p_ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

create function audit.event_json(e audit.audit_events) returns jsonb
language sql stable parallel safe
as $$
  select pg_catalog.jsonb_build_object(
    'seq', e.seq,
    'event_id', e.event_id,
    'timestamp', audit.format_timestamp(e."timestamp"),
    'event_type', e.event_type,
    'user_id', e.user_id,
    'user_email', e.user_email,
    'session_id', e.session_id,
    'ip_address', pg_catalog.host(e.ip_address),
    'user_agent', e.user_agent,
    'resource_path', e.resource_path,
    'resource_id', e.resource_id,
    'action', e.action,
    'status', e.status,
    'details', e.details,
    'security_level', e.security_level,
    'compliance_tags', pg_catalog.to_jsonb(e.compliance_tags),
    'parent_event_id', e.parent_event_id,
    'metadata', e.metadata,
    'checksum', pg_catalog.encode(e.checksum, 'hex'),
    'prev_hash', pg_catalog.encode(e.prev_hash, 'hex'),
    'chain_hash', pg_catalog.encode(e.chain_hash, 'hex'),
    'received_at', audit.format_timestamp(e.received_at),
    'redacted_at', audit.format_timestamp(e.redacted_at),
    'redaction_reason', e.redaction_reason
  )
$$;

-- ---------------------------------------------------------------------------------------------
-- Ingest: a batch of validated events with their checksums -> per-event outcome.
-- ---------------------------------------------------------------------------------------------
create type audit.event_input as (
  event_id         text,
  "timestamp"      timestamptz,
  event_type       text,
  user_id          text,
  user_email       text,
  session_id       text,
  ip_address       inet,
  user_agent       text,
  resource_path    text,
  resource_id      text,
  action           text,
  status           text,
  details          jsonb,
  security_level   text,
  compliance_tags  text[],
  parent_event_id  text,
  metadata         jsonb,
  checksum         text
);

create function audit.ingest_events(p_events json) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_result jsonb;
begin
  -- json, not jsonb: the batch is read once, row by row, and parsing a megabyte into jsonb
  -- first cost about 10 us per event (measured in bench/ingest.py).
  if pg_catalog.json_typeof(p_events) is distinct from 'array' then
    raise exception 'p_events must be a JSON array of events' using errcode = 'invalid_parameter_value';
  end if;
  if pg_catalog.json_array_length(p_events) > 1000 then
    raise exception 'at most 1000 events per call, got %', pg_catalog.json_array_length(p_events)
      using errcode = 'program_limit_exceeded';
  end if;

  -- Serialise writers before looking for duplicates: with the chain head locked no other
  -- transaction can insert, so "not already stored" below is exact and the insert never
  -- needs ON CONFLICT (which would skip rows after the chain trigger gave them a seq).
  perform 1 from audit.chain_head for update;

  with input as (
    -- per element rather than json_populate_recordset: measured faster on 1000-event batches
    select (e.ord - 1)::int as idx, r.*
      from pg_catalog.json_array_elements(p_events) with ordinality as e(value, ord)
     cross join lateral pg_catalog.json_populate_record(null::audit.event_input, e.value) as r
  ),
  stored as (
    -- one index probe per event: what is already in the table
    select a.event_id, a.seq, a.checksum, a.chain_hash
      from audit.audit_events a
     where a.event_id in (select i.event_id from input i)
  ),
  first_seen as (
    select distinct on (i.event_id) i.* from input i order by i.event_id, i.idx
  ),
  inserted as (
    insert into audit.audit_events (
      event_id, "timestamp", event_type, user_id, user_email, session_id, ip_address, user_agent,
      resource_path, resource_id, action, status, details, security_level, compliance_tags,
      parent_event_id, metadata, checksum)
    select f.event_id, f."timestamp", f.event_type, f.user_id, f.user_email, f.session_id, f.ip_address,
           f.user_agent, f.resource_path, f.resource_id, f.action, f.status,
           coalesce(f.details, '{}'::jsonb), f.security_level, coalesce(f.compliance_tags, '{}'::text[]),
           f.parent_event_id, coalesce(f.metadata, '{}'::jsonb), pg_catalog.decode(f.checksum, 'hex')
      from first_seen f
     where not exists (select 1 from stored s where s.event_id = f.event_id)
     order by f.idx
    returning event_id, seq, checksum, chain_hash
  ),
  outcome as (
    select i.idx,
           i.event_id,
           (ins.event_id is not null and fs.idx = i.idx) as created,
           coalesce(ins.seq, s.seq) as seq,
           coalesce(ins.checksum, s.checksum) as checksum,
           coalesce(ins.chain_hash, s.chain_hash) as chain_hash,
           pg_catalog.decode(i.checksum, 'hex') as submitted_checksum
      from input i
      join first_seen fs on fs.event_id = i.event_id
      left join inserted ins on ins.event_id = i.event_id
      left join stored s on s.event_id = i.event_id
  )
  select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'index', o.idx,
           'event_id', o.event_id,
           'status', case when o.created then 'created' else 'duplicate' end,
           'seq', o.seq,
           'checksum', pg_catalog.encode(o.checksum, 'hex'),
           'chain_hash', pg_catalog.encode(o.chain_hash, 'hex'),
           'content_matches', o.checksum = o.submitted_checksum
         ) order by o.idx)
    into v_result
    from outcome o;
  return coalesce(v_result, '[]'::jsonb);
end
$$;
comment on function audit.ingest_events(json) is
  'Store a batch (<= 1000) of validated events with their checksums. Idempotent by event_id: replays answer "duplicate" with the stored seq, checksum and chain_hash.';

-- ---------------------------------------------------------------------------------------------
-- Reads. SECURITY INVOKER: called with a user's JWT (PostgREST) they see only what RLS allows.
-- ---------------------------------------------------------------------------------------------
create function audit.list_events(
  p_user_id        text default null,
  p_event_type     text default null,
  p_security_level text default null,
  p_compliance_tag text default null,
  p_from           timestamptz default null,
  p_to             timestamptz default null,
  p_after_seq      bigint default null,
  p_limit          integer default 100,
  p_descending     boolean default true
) returns json
language plpgsql stable security invoker set search_path = ''
as $$
declare
  v_direction text := case when p_descending then 'desc' else 'asc' end;
  v_where     text := '';
  v_rows      json;
begin
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    raise exception 'limit must be between 1 and 1000, got %', p_limit using errcode = 'invalid_parameter_value';
  end if;
  -- Dynamic SQL so each call is planned for the filters it actually has (a static
  -- "(p is null or col = p)" plan cannot use the (col, seq) indexes).
  if p_user_id is not null then v_where := v_where || ' and e.user_id = $1'; end if;
  if p_event_type is not null then v_where := v_where || ' and e.event_type = $2'; end if;
  if p_security_level is not null then v_where := v_where || ' and e.security_level = $3'; end if;
  if p_compliance_tag is not null then v_where := v_where || ' and $4 = any(e.compliance_tags)'; end if;
  if p_from is not null then v_where := v_where || ' and e."timestamp" >= $5'; end if;
  if p_to is not null then v_where := v_where || ' and e."timestamp" < $6'; end if;
  if p_after_seq is not null then
    v_where := v_where || case when p_descending then ' and e.seq < $7' else ' and e.seq > $7' end;
  end if;
  execute 'select coalesce(pg_catalog.json_agg(audit.event_json(page) order by page.seq ' || v_direction
       || '), ''[]''::json) from (select e.* from audit.audit_events e where true' || v_where
       || ' order by e.seq ' || v_direction || ' limit $8) page'
    into v_rows
    using p_user_id, p_event_type, p_security_level, p_compliance_tag, p_from, p_to, p_after_seq, p_limit;
  return v_rows;
end
$$;

create function audit.get_event(p_event_id text) returns jsonb
language sql stable security invoker set search_path = ''
as $$
  select audit.event_json(e) from audit.audit_events e where e.event_id = p_event_id
$$;

-- Rows in seq order for chain verification (the verifier recomputes every checksum itself).
-- json, not jsonb: a 5000-row segment is built as text once instead of as one large binary
-- jsonb value that is then printed back to text (measured about half the server time).
create function audit.chain_segment(p_from_seq bigint, p_to_seq bigint default null, p_limit integer default 5000)
returns json
language sql stable security invoker set search_path = ''
as $$
  select coalesce(pg_catalog.json_agg(audit.event_json(page) order by page.seq), '[]'::json)
    from (select e.* from audit.audit_events e
           where e.seq >= p_from_seq and (p_to_seq is null or e.seq <= p_to_seq)
           order by e.seq
           limit least(greatest(p_limit, 1), 10000)) page
$$;

-- The chain head, and the link just before a seq (to verify a range that starts mid-chain).
create function audit.chain_state(p_before_seq bigint default null) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'chain_id', h.chain_id,
    'head_seq', h.seq,
    'head_chain_hash', pg_catalog.encode(h.chain_hash, 'hex'),
    'updated_at', audit.format_timestamp(h.updated_at),
    'prev_chain_hash', case
        when p_before_seq is null then null
        when p_before_seq <= 1 then pg_catalog.repeat('00', 32)
        else (select pg_catalog.encode(e.chain_hash, 'hex') from audit.audit_events e where e.seq = p_before_seq - 1)
      end)
  from audit.chain_head h
$$;

-- ---------------------------------------------------------------------------------------------
-- Redaction: the one change ever made to a stored event (retention, GDPR erasure).
-- Blanks the personal payload, keeps seq, event_id, timestamp, type, checksum and both hashes,
-- and records who, when and why. Verification then checks links but not the blanked checksum.
-- ---------------------------------------------------------------------------------------------
create function audit.redact_seqs(p_seqs bigint[], p_reason text, p_actor text, p_ref text) returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_count integer;
begin
  if p_reason is null or p_reason not in ('retention', 'erasure') then
    raise exception 'redaction reason must be retention or erasure, got %', p_reason
      using errcode = 'invalid_parameter_value';
  end if;
  if coalesce(pg_catalog.btrim(p_actor), '') = '' then
    raise exception 'redaction needs the actor who requested it' using errcode = 'invalid_parameter_value';
  end if;
  perform pg_catalog.set_config('audit.redaction_txid', pg_catalog.pg_current_xact_id()::text, true);
  update audit.audit_events e
     set user_email = null, session_id = null, ip_address = null, user_agent = null,
         details = '{}'::jsonb, metadata = '{}'::jsonb,
         redacted_at = pg_catalog.now(), redaction_reason = p_reason, redacted_by = p_actor, redaction_ref = p_ref
   where e.seq = any(p_seqs) and e.redacted_at is null;
  get diagnostics v_count = row_count;
  -- close the door again: later statements of this transaction are append-only as usual
  perform pg_catalog.set_config('audit.redaction_txid', '', true);
  return v_count;
end
$$;

create function audit.redact_events(p_event_ids jsonb, p_reason text, p_actor text, p_ref text default null)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_seqs bigint[] := array(
    select e.seq from audit.audit_events e
     where e.event_id in (select pg_catalog.jsonb_array_elements_text(p_event_ids)));
begin
  return pg_catalog.jsonb_build_object(
    'requested', pg_catalog.jsonb_array_length(p_event_ids),
    'redacted', audit.redact_seqs(v_seqs, p_reason, p_actor, p_ref));
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Grants: functions are executable by PUBLIC by default; take that back, then grant the API.
-- ---------------------------------------------------------------------------------------------
revoke all on all functions in schema audit from public;
grant execute on function audit.format_timestamp(timestamptz), audit.event_json(audit.audit_events)
  to authenticated, service_role;
grant execute on function
  audit.list_events(text, text, text, text, timestamptz, timestamptz, bigint, integer, boolean),
  audit.get_event(text),
  audit.chain_segment(bigint, bigint, integer)
  to authenticated, service_role;
grant execute on function
  audit.ingest_events(json),
  audit.chain_state(bigint),
  audit.redact_events(jsonb, text, text, text),
  audit.redact_seqs(bigint[], text, text, text)
  to service_role;
