-- The append-only, hash-chained event store.
--
-- Invariants the database owns (docs/integrity.md is the normative spec):
--   * seq is gap-free and assigned here, never by a client;
--   * chain_hash(n) = sha256(chain_hash(n-1) || checksum(n)), genesis previous = 32 zero bytes,
--     linked under a lock on the single chain head so concurrent writers still build one chain;
--   * rows are never updated or deleted; the only change allowed is redaction through
--     audit.redact_events(), which blanks the payload and keeps every integrity field.
-- The checksum itself (RFC 8785 canonical JSON -> SHA-256) is computed by the trusted ingest
-- function: canonical JSON number formatting cannot be reproduced in SQL, and verification
-- recomputes every checksum outside the database anyway (a verifier must not trust the DB).

create schema if not exists audit;
comment on schema audit is 'Tamper-evident audit trail: events, chain head and the SQL API the functions call.';
revoke all on schema audit from public;
grant usage on schema audit to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- Chain head: one row, locked by every insert; it also names the chain for signed digests.
-- ---------------------------------------------------------------------------------------------
create table audit.chain_head (
  singleton   boolean primary key default true check (singleton),
  chain_id    uuid not null default gen_random_uuid(),
  seq         bigint not null default 0 check (seq >= 0),
  chain_hash  bytea not null default decode(repeat('00', 32), 'hex') check (octet_length(chain_hash) = 32),
  updated_at  timestamptz not null default now()
);
insert into audit.chain_head default values;
alter table audit.chain_head enable row level security;

-- ---------------------------------------------------------------------------------------------
-- Events: the seed's columns plus the integrity columns.
-- ---------------------------------------------------------------------------------------------
-- Indexed text columns use the "C" collation: they hold identifiers and enum values, not prose,
-- so byte order is the right order, and it is several times cheaper to compare than a libc
-- locale in every index insert (measured with perf on the ingest path). The event_id check
-- avoids a bounded repetition ({0,254}): PostgreSQL's regex engine expands it into a large
-- automaton, and it cost a quarter of the insert time.
create table audit.audit_events (
  seq              bigint primary key,
  event_id         text collate "C" not null unique
                   check (length(event_id) <= 255 and event_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$'),
  "timestamp"      timestamptz not null,
  event_type       text collate "C" not null check (event_type in (
                     'file_upload', 'file_download', 'file_delete', 'file_modify', 'file_access',
                     'file_share', 'folder_create', 'folder_delete', 'user_login', 'user_logout',
                     'user_activity', 'permission_change', 'system_event', 'security_event')),
  user_id          text collate "C" not null check (length(user_id) between 1 and 255),
  user_email       text check (length(user_email) <= 320),
  session_id       text check (length(session_id) <= 255),
  ip_address       inet check (ip_address is null
                               or masklen(ip_address) = case family(ip_address) when 4 then 32 else 128 end),
  user_agent       text check (length(user_agent) <= 1024),
  resource_path    text check (length(resource_path) <= 4096),
  resource_id      text check (length(resource_id) <= 255),
  action           text not null check (length(action) between 1 and 255),
  status           text not null check (status in ('success', 'failure')),
  details          jsonb not null default '{}' check (jsonb_typeof(details) = 'object'),
  security_level   text collate "C" not null check (security_level in ('low', 'medium', 'high', 'critical')),
  compliance_tags  text[] not null default '{}'
                   check (compliance_tags <@ array['gdpr', 'hipaa', 'sox', 'pci_dss', 'iso_27001', 'cis']),
  parent_event_id  text check (length(parent_event_id) <= 255),
  metadata         jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
  -- server-assigned integrity fields
  checksum         bytea not null check (octet_length(checksum) = 32),
  prev_hash        bytea not null check (octet_length(prev_hash) = 32),
  chain_hash       bytea not null check (octet_length(chain_hash) = 32),
  received_at      timestamptz not null default now(),
  -- redaction record (retention or GDPR erasure); payload blanked, proof kept
  redacted_at      timestamptz,
  redaction_reason text check (redaction_reason in ('retention', 'erasure')),
  redacted_by      text,
  redaction_ref    text,
  check ((redacted_at is null) = (redaction_reason is null))
);
comment on table audit.audit_events is
  'Append-only, hash-chained audit events. Insert through audit.ingest_events(); never updated except by audit.redact_events().';

-- The seed's indexes, each extended by seq so that filtered, cursor-paginated reads
-- (ORDER BY seq with a seq cursor) walk one index range instead of sorting.
create index audit_events_user_id_seq_idx        on audit.audit_events (user_id, seq);
create index audit_events_timestamp_idx          on audit.audit_events ("timestamp");
create index audit_events_event_type_seq_idx     on audit.audit_events (event_type, seq);
create index audit_events_security_level_seq_idx on audit.audit_events (security_level, seq);

-- ---------------------------------------------------------------------------------------------
-- Chain trigger.
-- Per row: take the head (locked FOR UPDATE once per transaction), assign seq and link.
-- Updating the head row for every event would cost a tuple version per event and halve
-- ingest throughput, so the running head is kept in transaction-local settings (they follow
-- savepoints and rollbacks like the data does) and written back once per statement.
-- ---------------------------------------------------------------------------------------------
create function audit.tg_chain_link() returns trigger
language plpgsql
as $$
declare
  v_txid text := pg_catalog.pg_current_xact_id()::text;
  v_seq  bigint;
  v_hash bytea;
begin
  if pg_catalog.current_setting('audit.chain_txid', true) is distinct from v_txid then
    select h.seq, h.chain_hash into v_seq, v_hash from audit.chain_head h for update;
    perform pg_catalog.set_config('audit.chain_txid', v_txid, true);
  else
    v_seq  := pg_catalog.current_setting('audit.chain_seq')::bigint;
    v_hash := pg_catalog.decode(pg_catalog.current_setting('audit.chain_hash'), 'hex');
  end if;

  if new.checksum is null or pg_catalog.octet_length(new.checksum) <> 32 then
    raise exception 'audit_events.checksum must be 32 bytes (SHA-256 of the canonical event)'
      using errcode = 'check_violation';
  end if;

  new.seq         := v_seq + 1;
  new.prev_hash   := v_hash;
  new.chain_hash  := pg_catalog.sha256(v_hash || new.checksum);
  new.received_at := pg_catalog.now();
  -- an event cannot be born redacted
  new.redacted_at := null;
  new.redaction_reason := null;
  new.redacted_by := null;
  new.redaction_ref := null;

  perform pg_catalog.set_config('audit.chain_seq', new.seq::text, true);
  perform pg_catalog.set_config('audit.chain_hash', pg_catalog.encode(new.chain_hash, 'hex'), true);
  return new;
end
$$;

-- Once per statement: check that every seq handed out became a row (an INSERT ... ON CONFLICT
-- DO NOTHING that skips a row after its BEFORE trigger ran would otherwise leave a hole in
-- the chain), then persist the head.
create function audit.tg_chain_head_advance() returns trigger
language plpgsql
as $$
declare
  v_count    bigint;
  v_min      bigint;
  v_max      bigint;
  v_head_seq bigint;
  v_assigned bigint;
begin
  if pg_catalog.current_setting('audit.chain_txid', true) is distinct from pg_catalog.pg_current_xact_id()::text then
    return null;  -- no row of this transaction reached the chain trigger
  end if;
  v_assigned := pg_catalog.current_setting('audit.chain_seq')::bigint;
  select pg_catalog.count(*), pg_catalog.min(seq), pg_catalog.max(seq) into v_count, v_min, v_max
    from new_rows;
  select h.seq into v_head_seq from audit.chain_head h;
  if (v_count = 0 and v_assigned <> v_head_seq)
     or (v_count > 0 and (v_min <> v_head_seq + 1 or v_max <> v_head_seq + v_count or v_max <> v_assigned)) then
    raise exception 'audit_events chain would break: % rows stored but sequence moved from % to %',
      v_count, v_head_seq, v_assigned
      using errcode = 'integrity_constraint_violation',
            hint = 'Insert through audit.ingest_events(); INSERT ... ON CONFLICT DO NOTHING skips rows after their seq was assigned.';
  end if;
  if v_count > 0 then
    update audit.chain_head
       set seq = v_max,
           chain_hash = pg_catalog.decode(pg_catalog.current_setting('audit.chain_hash'), 'hex'),
           updated_at = pg_catalog.now();
  end if;
  return null;
end
$$;

create trigger audit_events_chain_link
  before insert on audit.audit_events
  for each row execute function audit.tg_chain_link();

create trigger audit_events_chain_head_advance
  after insert on audit.audit_events
  referencing new table as new_rows
  for each statement execute function audit.tg_chain_head_advance();

-- ---------------------------------------------------------------------------------------------
-- Append-only. Privileges already deny UPDATE/DELETE/TRUNCATE to the API roles; these triggers
-- also stop the table owner and anyone granted more later. Only audit.redact_events() passes,
-- and only with the one change it is allowed to make.
-- ---------------------------------------------------------------------------------------------
create function audit.tg_append_only() returns trigger
language plpgsql
as $$
begin
  if tg_op = 'UPDATE'
     and pg_catalog.current_setting('audit.redaction_txid', true) = pg_catalog.pg_current_xact_id()::text then
    if new.seq is distinct from old.seq
       or new.event_id is distinct from old.event_id
       or new."timestamp" is distinct from old."timestamp"
       or new.event_type is distinct from old.event_type
       or new.checksum is distinct from old.checksum
       or new.prev_hash is distinct from old.prev_hash
       or new.chain_hash is distinct from old.chain_hash
       or new.received_at is distinct from old.received_at
       or old.redacted_at is not null
       or new.redacted_at is null then
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

create trigger audit_events_append_only
  before update or delete on audit.audit_events
  for each row execute function audit.tg_append_only();

create trigger audit_events_no_truncate
  before truncate on audit.audit_events
  for each statement execute function audit.tg_append_only();

create trigger chain_head_no_truncate
  before truncate on audit.chain_head
  for each statement execute function audit.tg_append_only();

-- ---------------------------------------------------------------------------------------------
-- Row level security. service_role bypasses RLS (Supabase), anon has no grant at all.
-- A user reads only their own events; a JWT whose app_metadata.audit_role is auditor or admin
-- reads all. The JWT's sub is compared as text: it is what auth.uid() returns, without the
-- uuid cast that would fail for applications whose user ids are not UUIDs.
-- ---------------------------------------------------------------------------------------------
alter table audit.audit_events enable row level security;

create policy audit_events_select_own_or_auditor on audit.audit_events
  for select to authenticated
  using (
    user_id = (select auth.jwt() ->> 'sub')
    or (select auth.jwt() -> 'app_metadata' ->> 'audit_role') in ('auditor', 'admin')
  );

revoke all on audit.audit_events, audit.chain_head from public, anon, authenticated, service_role;
grant select on audit.audit_events to authenticated, service_role;
grant select on audit.chain_head to service_role;
