-- Seal version 2 (docs/integrity.md, section 1.2): the personal payload of an event is sealed under a
-- salted commitment, so that a redaction can erase it for real while every kept field stays provable.
--
--   private object P   = {user_email, session_id, ip_address, user_agent, details, metadata}
--   payload_commitment = SHA-256(seal_salt || JCS(P))            seal_salt: 16 random bytes per event
--   checksum           = SHA-256(JCS({"seal": 2, <the 11 kept fields>, "payload_commitment": hex}))
--
-- A redaction blanks P and deletes seal_salt; payload_commitment stays, so the kept fields still hash to
-- the checksum that was chained and signed, and nothing unsalted over an erased value survives. Each
-- redaction also appends a chained *redaction record* (below): a redacted row is valid only with one.
-- Rows sealed before this migration keep seal_version 1 and verify as before.

alter table audit.audit_events
  add column seal_version smallint not null default 1 check (seal_version in (1, 2)),
  add column seal_salt bytea check (octet_length(seal_salt) = 16),
  add column payload_commitment bytea check (octet_length(payload_commitment) = 32);
-- The shape each version has on honest paths (the verifier checks the same from the outside).
alter table audit.audit_events add constraint audit_events_seal_shape check (
  case seal_version
    when 1 then seal_salt is null and payload_commitment is null
    else payload_commitment is not null and (seal_salt is null) = (redacted_at is not null)
  end);
comment on column audit.audit_events.seal_salt is
  'Seal v2: 16 random bytes salting payload_commitment; deleted by redaction, which makes the commitment unguessable.';
comment on column audit.audit_events.payload_commitment is
  'Seal v2: SHA-256(seal_salt || JCS of the private fields); sealed in the checksum, kept after redaction.';

-- ---------------------------------------------------------------------------------------------
-- Redaction may blank the private fields and the salt, and set its own record; nothing else.
-- ---------------------------------------------------------------------------------------------
create or replace function audit.tg_append_only() returns trigger
language plpgsql
as $$
begin
  if tg_op = 'UPDATE'
     and pg_catalog.current_setting('audit.redaction_txid', true) = pg_catalog.pg_current_xact_id()::text then
    if (new.seq, new.event_id, new."timestamp", new.event_type, new.user_id, new.resource_path, new.resource_id,
        new.action, new.status, new.security_level, new.compliance_tags, new.parent_event_id, new.checksum,
        new.prev_hash, new.chain_hash, new.received_at, new.seal_version, new.payload_commitment)
       is distinct from
       (old.seq, old.event_id, old."timestamp", old.event_type, old.user_id, old.resource_path, old.resource_id,
        old.action, old.status, old.security_level, old.compliance_tags, old.parent_event_id, old.checksum,
        old.prev_hash, old.chain_hash, old.received_at, old.seal_version, old.payload_commitment)
       or old.redacted_at is not null
       or new.redacted_at is null
       or num_nonnulls(new.user_email, new.session_id, new.ip_address, new.user_agent, new.seal_salt) > 0
       or new.details <> '{}'::jsonb or new.metadata <> '{}'::jsonb then
      raise exception 'audit_events redaction may only blank the payload of an unredacted event'
        using errcode = 'insufficient_privilege';
    end if;
    return new;
  end if;
  raise exception 'audit.audit_events is append-only: % is not allowed', tg_op
    using errcode = 'insufficient_privilege',
          hint = 'Events are never changed or removed; past-retention and erased data is redacted with audit.redact_events().';
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Reads carry the seal (a reader can then recompute the checksum itself, as section 1.2 says), and the
-- address as stored: inet's own text, which shows a mask when one was stored (host() hid it).
-- ---------------------------------------------------------------------------------------------
create or replace function audit.event_json(e audit.audit_events) returns jsonb
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
    'ip_address', e.ip_address,
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
    'seal_version', e.seal_version,
    'seal_salt', pg_catalog.encode(e.seal_salt, 'hex'),
    'payload_commitment', pg_catalog.encode(e.payload_commitment, 'hex'),
    'checksum', pg_catalog.encode(e.checksum, 'hex'),
    'prev_hash', pg_catalog.encode(e.prev_hash, 'hex'),
    'chain_hash', pg_catalog.encode(e.chain_hash, 'hex'),
    'received_at', audit.format_timestamp(e.received_at),
    'redacted_at', audit.format_timestamp(e.redacted_at),
    'redaction_reason', e.redaction_reason
  )
$$;

-- ---------------------------------------------------------------------------------------------
-- Ingest: every new event is sealed with version 2 (salt and commitment from the ingest function).
-- ---------------------------------------------------------------------------------------------
alter type audit.event_input add attribute seal_salt text, add attribute payload_commitment text;

create or replace function audit.ingest_events(p_events json) returns jsonb
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
    select (e.ord - 1)::int as idx, r.*
      from pg_catalog.json_array_elements(p_events) with ordinality as e(value, ord)
     cross join lateral pg_catalog.json_populate_record(null::audit.event_input, e.value) as r
  ),
  stored as (
    select a.* from audit.audit_events a where a.event_id in (select i.event_id from input i)
  ),
  first_seen as (
    select distinct on (i.event_id) i.* from input i order by i.event_id, i.idx
  ),
  inserted as (
    insert into audit.audit_events (
      event_id, "timestamp", event_type, user_id, user_email, session_id, ip_address, user_agent,
      resource_path, resource_id, action, status, details, security_level, compliance_tags,
      parent_event_id, metadata, checksum, seal_version, seal_salt, payload_commitment)
    select f.event_id, f."timestamp", f.event_type, f.user_id, f.user_email, f.session_id, f.ip_address,
           f.user_agent, f.resource_path, f.resource_id, f.action, f.status,
           coalesce(f.details, '{}'::jsonb), f.security_level, coalesce(f.compliance_tags, '{}'::text[]),
           f.parent_event_id, coalesce(f.metadata, '{}'::jsonb), pg_catalog.decode(f.checksum, 'hex'),
           2, pg_catalog.decode(f.seal_salt, 'hex'), pg_catalog.decode(f.payload_commitment, 'hex')
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
           -- A replay's salt is new, so its checksum differs from the stored one even when the content
           -- is the same: duplicates compare the content itself. A redacted original no longer holds it.
           case
             when ins.event_id is not null then pg_catalog.decode(i.checksum, 'hex') = ins.checksum
             else s.redacted_at is null
                  and (s."timestamp", s.event_type, s.user_id, s.user_email, s.session_id, s.ip_address,
                       s.user_agent, s.resource_path, s.resource_id, s.action, s.status, s.details,
                       s.security_level, s.compliance_tags, s.parent_event_id, s.metadata)
                      is not distinct from
                      (i."timestamp", i.event_type, i.user_id, i.user_email, i.session_id, i.ip_address,
                       i.user_agent, i.resource_path, i.resource_id, i.action, i.status,
                       coalesce(i.details, '{}'::jsonb), i.security_level,
                       coalesce(i.compliance_tags, '{}'::text[]), i.parent_event_id,
                       coalesce(i.metadata, '{}'::jsonb))
           end as content_matches
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
           'content_matches', o.content_matches
         ) order by o.idx)
    into v_result
    from outcome o;
  return coalesce(v_result, '[]'::jsonb);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Redaction records: one chained event per redaction, naming the seqs it redacted.
-- ---------------------------------------------------------------------------------------------
-- The trail's records about its own chain (redaction records, the seal-version marker) are evidence about
-- other events and hold no personal data: they are never redacted.
create function audit.is_chain_record(e audit.audit_events) returns boolean
language sql immutable parallel safe
as $$
  select e.event_type = 'system_event' and e.action in ('events_redacted', 'seal_version_changed')
$$;

-- Inclusive ranges [[first, last], ...] of a set of seqs, ascending: how a record lists what it redacted.
create function audit.seq_ranges(p_seqs bigint[]) returns text
language sql immutable parallel safe set search_path = ''
as $$
  select coalesce('[' || pg_catalog.string_agg('[' || r.first || ',' || r.last || ']', ',' order by r.first) || ']', '[]')
    from (select pg_catalog.min(s) as first, pg_catalog.max(s) as last
            from (select s, s - pg_catalog.row_number() over (order by s) as grp
                    from (select distinct s from pg_catalog.unnest(p_seqs) s) d) g
           group by g.grp) r
$$;

-- Append one of the trail's records about its chain, sealed with version 2 by hand. The canonical (RFC 8785)
-- text is written out here because the values are fixed in shape: ASCII keys in sorted order, integers, and
-- strings that pg_catalog.to_json escapes exactly as RFC 8785 does (", \, \b \f \n \r \t, other control
-- characters as lowercase \u00xx, everything else as itself). p_details is already canonical text. Python's
-- sealing code verifies every such record like any event.
create function audit.append_chain_record(
  p_id_prefix text, p_action text, p_details text, p_actor text, p_ref text, p_tags text[]
) returns bigint
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_now     timestamptz := pg_catalog.now();
  v_id      text := p_id_prefix || '-' || pg_catalog.gen_random_uuid()::text;
  -- 16 bytes with 128 random bits (a UUID has 122): the record's private part is public, but the spec's
  -- salt is 16 random bytes, and pgcrypto's gen_random_bytes is not a built-in.
  v_salt    bytea := pg_catalog.substr(pg_catalog.sha256(pg_catalog.uuid_send(pg_catalog.gen_random_uuid())
                                                    || pg_catalog.uuid_send(pg_catalog.gen_random_uuid())), 1, 16);
  v_private text;
  v_commitment bytea;
  v_sealed  text;
  v_seq     bigint;
begin
  v_private := '{"details":' || p_details
               || ',"ip_address":null,"metadata":{},"session_id":null,"user_agent":null,"user_email":null}';
  v_commitment := pg_catalog.sha256(v_salt || pg_catalog.convert_to(v_private, 'UTF8'));
  v_sealed := '{"action":' || pg_catalog.to_json(p_action)::text
              || ',"compliance_tags":' || pg_catalog.to_json(p_tags)::text
              || ',"event_id":' || pg_catalog.to_json(v_id)::text
              || ',"event_type":"system_event","parent_event_id":null,"payload_commitment":"'
              || pg_catalog.encode(v_commitment, 'hex')
              || '","resource_id":' || coalesce(pg_catalog.to_json(p_ref)::text, 'null')
              || ',"resource_path":null,"seal":2,"security_level":"medium","status":"success","timestamp":'
              || pg_catalog.to_json(audit.format_timestamp(v_now))::text
              || ',"user_id":' || pg_catalog.to_json(p_actor)::text || '}';
  insert into audit.audit_events (
    event_id, "timestamp", event_type, user_id, resource_id, action, status, details, security_level,
    compliance_tags, checksum, seal_version, seal_salt, payload_commitment)
  values (v_id, v_now, 'system_event', p_actor, p_ref, p_action, 'success', p_details::jsonb, 'medium',
          p_tags, pg_catalog.sha256(pg_catalog.convert_to(v_sealed, 'UTF8')), 2, v_salt, v_commitment)
  returning seq into v_seq;
  return v_seq;
end
$$;

-- The record of a redaction (docs/integrity.md, "Redaction records"). v1_seqs names the redacted rows sealed
-- with version 1: seal_version is not sealed, and a redacted row relabelled version 1 would otherwise be
-- checked for its links only.
create function audit.append_redaction_record(
  p_seqs bigint[], p_v1_seqs bigint[], p_reason text, p_actor text, p_ref text
) returns bigint
language sql volatile security definer set search_path = ''
as $$
  select audit.append_chain_record(
    'redaction', 'events_redacted',
    '{"count":' || pg_catalog.cardinality(p_seqs) || ',"reason":' || pg_catalog.to_json(p_reason)::text
      || ',"seqs":' || audit.seq_ranges(p_seqs) || ',"v1_seqs":' || audit.seq_ranges(p_v1_seqs) || '}',
    p_actor, p_ref, case when p_reason = 'erasure' then array['gdpr'] else '{}'::text[] end)
$$;

create or replace function audit.redact_seqs(p_seqs bigint[], p_reason text, p_actor text, p_ref text) returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_redacted bigint[];
  v_v1 bigint[];
begin
  if p_reason is null or p_reason not in ('retention', 'erasure') then
    raise exception 'redaction reason must be retention or erasure, got %', p_reason
      using errcode = 'invalid_parameter_value';
  end if;
  if coalesce(pg_catalog.btrim(p_actor), '') = '' then
    raise exception 'redaction needs the actor who requested it' using errcode = 'invalid_parameter_value';
  end if;
  perform pg_catalog.set_config('audit.redaction_txid', pg_catalog.pg_current_xact_id()::text, true);
  with redacted as (
    update audit.audit_events e
       set user_email = null, session_id = null, ip_address = null, user_agent = null,
           details = '{}'::jsonb, metadata = '{}'::jsonb, seal_salt = null,
           redacted_at = pg_catalog.now(), redaction_reason = p_reason, redacted_by = p_actor, redaction_ref = p_ref
     where e.seq = any(p_seqs) and e.redacted_at is null and not audit.is_chain_record(e)
    returning e.seq, e.seal_version
  )
  select coalesce(pg_catalog.array_agg(r.seq), '{}'),
         coalesce(pg_catalog.array_agg(r.seq) filter (where r.seal_version = 1), '{}')
    into v_redacted, v_v1
    from redacted r;
  -- close the door again: later statements of this transaction are append-only as usual
  perform pg_catalog.set_config('audit.redaction_txid', '', true);
  if pg_catalog.cardinality(v_redacted) > 0 then
    perform audit.append_redaction_record(v_redacted, v_v1, p_reason, p_actor, p_ref);
  end if;
  return pg_catalog.cardinality(v_redacted);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Archive keys: retention archives to an Object-Locked bucket, where nothing can be deleted before its
-- lock ends. So the private part of each archived event is encrypted (AES-256-GCM) with a key of its
-- user's, kept here; an erasure deletes the key, and what was archived of the subject is unreadable
-- (crypto-shredding). The kept fields and the payload commitment stay in clear: they prove the archive.
-- ---------------------------------------------------------------------------------------------
create table audit.subject_keys (
  user_id     text collate "C" primary key,
  data_key    bytea not null check (octet_length(data_key) = 32),
  created_at  timestamptz not null default now()
);
alter table audit.subject_keys enable row level security;
revoke all on audit.subject_keys from public, anon, authenticated, service_role;
comment on table audit.subject_keys is
  'Per-user keys of the archive''s private parts; deleted by audit.erase_subject (crypto-shredding).';

-- The keys of these users, creating the missing ones from the candidates the caller drew (os.urandom).
create function audit.archive_keys(p_candidates jsonb) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
begin
  insert into audit.subject_keys (user_id, data_key)
  select c.key, pg_catalog.decode(c.value, 'hex') from pg_catalog.jsonb_each_text(p_candidates) c
  on conflict (user_id) do nothing;
  return (select coalesce(pg_catalog.jsonb_object_agg(k.user_id, pg_catalog.encode(k.data_key, 'hex')), '{}'::jsonb)
            from audit.subject_keys k
           where k.user_id in (select pg_catalog.jsonb_object_keys(p_candidates)));
end
$$;

-- Retention and erasure never select redaction records (they would stay unredacted and stall a batch).
create or replace function audit.retention_candidates(p_run_id uuid, p_after_seq bigint, p_limit integer default 1000)
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
       and not audit.is_chain_record(e)
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

-- An erasure covers the subject's own events and the trail's records of the subject as a caller (access
-- records name the caller as `<role>:<sub>`), scrubs the alerts that quote the subject's addresses, and
-- deletes the subject's archive keys: what retention archived of them can no longer be read (the archive
-- is Object-Locked, so its private part is encrypted per user for exactly this; functions/retention/archive.py).
create or replace function audit.erase_subject(p_user_id text, p_actor text, p_request_id text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_now timestamptz := pg_catalog.now();
  v_names text[];
  v_erasable bigint[];
  v_redacted integer;
  v_held jsonb;
  v_obliged jsonb;
  v_total integer;
begin
  if coalesce(pg_catalog.btrim(p_user_id), '') = '' then
    raise exception 'user_id is required' using errcode = 'invalid_parameter_value';
  end if;
  v_names := array[p_user_id, 'user:' || p_user_id, 'auditor:' || p_user_id, 'admin:' || p_user_id];
  select pg_catalog.count(*) into v_total from audit.audit_events e
   where e.user_id = any(v_names) and not audit.is_chain_record(e);
  if v_total = 0 then
    return null;
  end if;
  with subject as (
    select e.*, audit.is_held(e, v_now) as held,
           (select pg_catalog.max(f.days) from audit.retention_floors f
             where f.compliance_tag = any(e.compliance_tags)
               and e."timestamp" > v_now - pg_catalog.make_interval(days => f.days)) as floor_days
      from audit.audit_events e
     where e.user_id = any(v_names) and e.redacted_at is null and not audit.is_chain_record(e)
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
  -- Alerts raised on the erased events, or keyed by an address they came from, quote the address.
  with erased as (
    select e.event_id, pg_catalog.host(e.ip_address) as address from audit.audit_events e
     where e.seq = any(coalesce(v_erasable, '{}'))
  )
  update audit.security_alerts a
     set alert_key = 'erased:' || a.alert_id::text,
         summary = 'details erased (GDPR Art. 17 request ' || coalesce(p_request_id, 'unnamed') || ')',
         context = '{}'::jsonb,
         updated_at = v_now
   where a.event_ids && array(select r.event_id from erased r)
      or a.alert_key in (select r.address from erased r where r.address is not null);
  v_redacted := audit.redact_seqs(coalesce(v_erasable, '{}'), 'erasure', p_actor, p_request_id);
  -- Whatever is archived of the subject is past its retention: shred it even when a hold keeps other events
  -- in the database (those are not archived yet, and get a new key when they are).
  delete from audit.subject_keys k where k.user_id = any(v_names);
  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id, 'events', v_total, 'redacted', v_redacted,
    'already_redacted', (select pg_catalog.count(*) from audit.audit_events e
                          where e.user_id = any(v_names) and e.redacted_at is not null) - v_redacted,
    'kept', v_held || v_obliged);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Rows sealed before this migration: record their redactions and where version 1 ends, in the chain.
-- Redactions made before had no record: one record per reason names them all, so that the verifier's rule
-- (a redacted row is valid only with a later record) holds for the whole chain; they are attested from the
-- migration on. And since seal_version is not sealed, the chain itself says which rows may be version 1:
-- a seal-version marker with v1_through, the last seq sealed before (docs/integrity.md, 6.3). A database
-- with no events yet gets no marker: every row of it is version 2.
-- ---------------------------------------------------------------------------------------------
do $$
declare
  v_reason text;
  v_seqs bigint[];
  v_last bigint := (select pg_catalog.max(e.seq) from audit.audit_events e);
begin
  if v_last is null then
    return;
  end if;
  for v_reason in select distinct e.redaction_reason from audit.audit_events e
                   where e.redacted_at is not null order by 1 loop
    v_seqs := array(select e.seq from audit.audit_events e
                     where e.redacted_at is not null and e.redaction_reason = v_reason order by e.seq);
    perform audit.append_redaction_record(v_seqs, v_seqs, v_reason, 'migration:seal_v2', null);
  end loop;
  perform audit.append_chain_record('seal-version', 'seal_version_changed',
                                    '{"seal":2,"v1_through":' || v_last || '}', 'migration:seal_v2', null, '{}');
end
$$;

revoke all on function audit.is_chain_record(audit.audit_events), audit.seq_ranges(bigint[]),
  audit.append_chain_record(text, text, text, text, text, text[]),
  audit.append_redaction_record(bigint[], bigint[], text, text, text), audit.archive_keys(jsonb) from public;
grant execute on function audit.archive_keys(jsonb) to service_role;
grant execute on function audit.is_chain_record(audit.audit_events), audit.seq_ranges(bigint[])
  to authenticated, service_role;

-- The chain state also says how far the rows really go: the head is as writable as the rows, and a
-- verifier that stopped at the head would never read rows forged (or left) past it.
create or replace function audit.chain_state(p_before_seq bigint default null) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'chain_id', h.chain_id,
    'head_seq', h.seq,
    'head_chain_hash', pg_catalog.encode(h.chain_hash, 'hex'),
    'updated_at', audit.format_timestamp(h.updated_at),
    'max_seq', (select pg_catalog.max(e.seq) from audit.audit_events e),
    'prev_chain_hash', case
        when p_before_seq is null then null
        when p_before_seq <= 1 then pg_catalog.repeat('00', 32)
        else (select pg_catalog.encode(e.chain_hash, 'hex') from audit.audit_events e where e.seq = p_before_seq - 1)
      end)
  from audit.chain_head h
$$;
