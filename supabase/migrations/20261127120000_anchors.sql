-- Signed digests (anchors) of the chain and the Merkle tree state behind them.
--
-- Once an hour the anchor function writes a digest (tree_size, RFC 6962 Merkle root, chain_hash at
-- that size, linked to the previous digest by its S3 key and signature) to Object-Locked S3, signed
-- with a KMS key, and records it here. docs/integrity.md ("Digests") is the normative format.
--
-- What the database owns:
--   * audit.digests is append-only and gap-free: digest N+1 can only follow digest N, names N's key
--     and signature, never shrinks the tree, and carries the chain_hash the chain really has at its
--     tree_size;
--   * audit.merkle_nodes keeps the hash of every completed perfect subtree of 2^8 = 256 leaves and
--     more (the "tiles" of transparency logs). With them an anchor run costs O(new events) instead of
--     O(history), and an inclusion or consistency proof for any tree size is assembled from O(log n)
--     stored nodes plus at most two tiles of leaf checksums. Nodes are a pure function of the chain, so
--     rewriting one is refused (it would mean the chain changed under a digest).
-- The root itself is checked outside the database: a verifier must not trust it.

-- ---------------------------------------------------------------------------------------------
-- Digests.
-- ---------------------------------------------------------------------------------------------
create table audit.digests (
  digest_seq         bigint primary key check (digest_seq > 0),
  chain_id           text not null,
  tree_size          bigint not null check (tree_size >= 0),
  previous_tree_size bigint not null check (previous_tree_size between 0 and tree_size),
  root_hash          bytea not null check (octet_length(root_hash) = 32),
  chain_hash         bytea not null check (octet_length(chain_hash) = 32),
  period_start       timestamptz not null,
  period_end         timestamptz not null,
  oldest_event_time  timestamptz,
  newest_event_time  timestamptz,
  created_at         timestamptz not null,
  s3_key             text not null unique check (length(s3_key) between 1 and 1024),
  signature          text not null check (signature ~ '^[A-Za-z0-9+/]+={0,2}$'),
  signing_key_id     text not null,
  signing_algorithm  text not null,
  -- The digest object exactly as signed: its RFC 8785 canonical bytes are the S3 object body.
  -- (Every value in it is a string, an integer or null, so jsonb keeps it losslessly.)
  body               jsonb not null check (jsonb_typeof(body) = 'object'),
  recorded_at        timestamptz not null default now()
);
comment on table audit.digests is
  'Signed digests of the chain (one per anchor run), gap-free by digest_seq. Insert through audit.record_digest().';

-- Public keys that signed digests, as the anchor found them in KMS (also written beside the digests in S3).
create table audit.signing_keys (
  signing_key_id    text primary key,
  signing_algorithm text not null,
  public_key_pem    text not null check (public_key_pem like '-----BEGIN PUBLIC KEY-----%'),
  s3_key            text not null,
  first_used_at     timestamptz not null default now()
);

-- Hashes of completed perfect subtrees: node (level, node_index) covers leaves
-- [node_index * 2^level, (node_index + 1) * 2^level), i.e. seqs node_index * 2^level + 1 onwards.
create table audit.merkle_nodes (
  level      smallint not null check (level between 8 and 62),
  node_index bigint not null check (node_index >= 0),
  hash       bytea not null check (octet_length(hash) = 32),
  primary key (level, node_index)
);
comment on table audit.merkle_nodes is
  'RFC 6962 hashes of every completed perfect subtree of >= 256 leaves, written by the anchor (tiles).';

create trigger digests_append_only
  before update or delete on audit.digests
  for each row execute function audit.tg_append_only();
create trigger digests_no_truncate
  before truncate on audit.digests
  for each statement execute function audit.tg_append_only();
create trigger signing_keys_append_only
  before update or delete on audit.signing_keys
  for each row execute function audit.tg_append_only();
create trigger signing_keys_no_truncate
  before truncate on audit.signing_keys
  for each statement execute function audit.tg_append_only();
create trigger merkle_nodes_append_only
  before update or delete on audit.merkle_nodes
  for each row execute function audit.tg_append_only();
create trigger merkle_nodes_no_truncate
  before truncate on audit.merkle_nodes
  for each statement execute function audit.tg_append_only();

alter table audit.digests enable row level security;
alter table audit.signing_keys enable row level security;
alter table audit.merkle_nodes enable row level security;
create policy digests_read_auditor on audit.digests for select to authenticated
  using ((select auth.jwt() -> 'app_metadata' ->> 'audit_role') in ('auditor', 'admin'));
create policy signing_keys_read_auditor on audit.signing_keys for select to authenticated
  using ((select auth.jwt() -> 'app_metadata' ->> 'audit_role') in ('auditor', 'admin'));
revoke all on audit.digests, audit.signing_keys, audit.merkle_nodes from public, anon, authenticated, service_role;
grant select on audit.digests, audit.signing_keys to authenticated;
grant select on audit.digests, audit.signing_keys, audit.merkle_nodes to service_role;

-- ---------------------------------------------------------------------------------------------
-- SQL API.
-- ---------------------------------------------------------------------------------------------

-- One digest row as the API returns it (hashes hex, timestamps RFC 3339 UTC, the signed object as `digest`).
create function audit.digest_json(d audit.digests) returns jsonb
language sql stable
as $$
  select pg_catalog.jsonb_build_object(
    'digest_seq', d.digest_seq,
    'chain_id', d.chain_id,
    'tree_size', d.tree_size,
    'previous_tree_size', d.previous_tree_size,
    'root_hash', pg_catalog.encode(d.root_hash, 'hex'),
    'chain_hash', pg_catalog.encode(d.chain_hash, 'hex'),
    'period_start', audit.format_timestamp(d.period_start),
    'period_end', audit.format_timestamp(d.period_end),
    'oldest_event_time', audit.format_timestamp(d.oldest_event_time),
    'newest_event_time', audit.format_timestamp(d.newest_event_time),
    'created_at', audit.format_timestamp(d.created_at),
    's3_key', d.s3_key,
    'signature', d.signature,
    'signing_key_id', d.signing_key_id,
    'signing_algorithm', d.signing_algorithm,
    'public_key_pem', (select k.public_key_pem from audit.signing_keys k where k.signing_key_id = d.signing_key_id),
    'public_key_s3_key', (select k.s3_key from audit.signing_keys k where k.signing_key_id = d.signing_key_id),
    'recorded_at', audit.format_timestamp(d.recorded_at),
    'digest', d.body
  )
$$;

-- The newest digest, or null when none has been written yet (the reports' integrity section uses it).
create function audit.latest_digest() returns json
language sql stable security definer set search_path = ''
as $$
  select audit.digest_json(d)::json from audit.digests d order by d.digest_seq desc limit 1
$$;

-- One digest by its sequence number, or null.
create function audit.get_digest(p_digest_seq bigint) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select audit.digest_json(d) from audit.digests d where d.digest_seq = p_digest_seq
$$;

-- Digests after p_after_seq in digest order, at most p_limit (1..1000) per page.
create function audit.list_digests(p_after_seq bigint default 0, p_limit integer default 1000) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select coalesce(pg_catalog.jsonb_agg(audit.digest_json(d) order by d.digest_seq), '[]'::jsonb)
    from (select * from audit.digests d
           where d.digest_seq > coalesce(p_after_seq, 0)
           order by d.digest_seq
           limit least(greatest(coalesce(p_limit, 1000), 1), 1000)) d
$$;

-- Where an anchor run starts: the chain head, the last digest and how far the stored tiles reach.
create function audit.anchor_state() returns jsonb
language sql stable security definer set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'head_seq', h.seq,
    'head_chain_hash', pg_catalog.encode(h.chain_hash, 'hex'),
    'last_digest', (select audit.digest_json(d) from audit.digests d order by d.digest_seq desc limit 1),
    -- level-8 nodes are stored contiguously from index 0 (audit.merkle_store_nodes checks it)
    'tiles_complete', coalesce((select n.node_index + 1 from audit.merkle_nodes n
                                 where n.level = 8 order by n.node_index desc limit 1), 0))
    from audit.chain_head h
$$;

-- Checksums of seqs p_from_seq..p_to_seq (at most 100,000), concatenated as one hex string (64 hex
-- digits per event, in seq order): a tenth of the size and parse time of a JSON array of rows.
create function audit.anchor_checksums(p_from_seq bigint, p_to_seq bigint) returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_hex text;
  v_count bigint;
begin
  if p_from_seq < 1 or p_to_seq < p_from_seq - 1 or p_to_seq - p_from_seq + 1 > 100000 then
    raise exception 'checksum range % .. % must lie within seq >= 1 and span at most 100000 events', p_from_seq, p_to_seq
      using errcode = 'invalid_parameter_value';
  end if;
  select pg_catalog.string_agg(pg_catalog.encode(e.checksum, 'hex'), '' order by e.seq), pg_catalog.count(*)
    into v_hex, v_count
    from audit.audit_events e
   where e.seq between p_from_seq and p_to_seq;
  if v_count <> p_to_seq - p_from_seq + 1 then
    raise exception 'seqs % .. % are not all stored (% found)', p_from_seq, p_to_seq, v_count
      using errcode = 'invalid_parameter_value';
  end if;
  return pg_catalog.jsonb_build_object('from_seq', p_from_seq, 'to_seq', p_to_seq, 'checksums', coalesce(v_hex, ''));
end
$$;

-- The event-time range of seqs after p_after_seq up to p_to_seq, and when the first of them arrived
-- (one index range scan over the new events only).
create function audit.anchor_event_times(p_after_seq bigint, p_to_seq bigint) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'oldest_event_time', audit.format_timestamp(pg_catalog.min(e."timestamp")),
    'newest_event_time', audit.format_timestamp(pg_catalog.max(e."timestamp")),
    'first_received_at', audit.format_timestamp(pg_catalog.min(e.received_at)),
    'count', pg_catalog.count(*))
    from audit.audit_events e
   where e.seq > p_after_seq and e.seq <= p_to_seq
$$;

-- Store completed subtree hashes ([{"level", "index", "hash"}], at most 10,000). Idempotent: a node
-- already stored with the same hash is skipped; a different hash is refused. Level-8 nodes must extend
-- the stored ones contiguously, and every higher node must be the hash of its two stored children.
create function audit.merkle_store_nodes(p_nodes json) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_bad record;
  v_stored integer;
begin
  if pg_catalog.json_typeof(p_nodes) is distinct from 'array' or pg_catalog.json_array_length(p_nodes) > 10000 then
    raise exception 'p_nodes must be a JSON array of at most 10000 nodes' using errcode = 'invalid_parameter_value';
  end if;
  create temporary table if not exists pg_temp.anchor_new_nodes (
    level smallint, node_index bigint, hash bytea, primary key (level, node_index)) on commit drop;
  truncate pg_temp.anchor_new_nodes;
  insert into pg_temp.anchor_new_nodes (level, node_index, hash)
  select (n.value ->> 'level')::smallint, (n.value ->> 'index')::bigint, pg_catalog.decode(n.value ->> 'hash', 'hex')
    from pg_catalog.json_array_elements(p_nodes) as n(value);

  select n.level, n.node_index into v_bad
    from pg_temp.anchor_new_nodes n join audit.merkle_nodes m using (level, node_index)
   where m.hash <> n.hash limit 1;
  if found then
    raise exception 'merkle node (%, %) is already stored with a different hash: the chain changed under it',
      v_bad.level, v_bad.node_index using errcode = 'integrity_constraint_violation';
  end if;
  delete from pg_temp.anchor_new_nodes n
   using audit.merkle_nodes m where m.level = n.level and m.node_index = n.node_index;

  select n.level, n.node_index into v_bad
    from pg_temp.anchor_new_nodes n
   where n.level = 8 and n.node_index > 0
     and not exists (select 1 from audit.merkle_nodes m where m.level = 8 and m.node_index = n.node_index - 1)
     and not exists (select 1 from pg_temp.anchor_new_nodes p where p.level = 8 and p.node_index = n.node_index - 1)
   limit 1;
  if found then
    raise exception 'tile % would leave a gap after the stored tiles', v_bad.node_index
      using errcode = 'invalid_parameter_value';
  end if;

  with candidates as (
    select n.level, n.node_index, n.hash from pg_temp.anchor_new_nodes n where n.level > 8
  ), children as (
    select c.level, c.node_index, c.hash,
           coalesce((select m.hash from audit.merkle_nodes m where m.level = c.level - 1 and m.node_index = 2 * c.node_index),
                    (select p.hash from pg_temp.anchor_new_nodes p where p.level = c.level - 1 and p.node_index = 2 * c.node_index))
             as left_hash,
           coalesce((select m.hash from audit.merkle_nodes m where m.level = c.level - 1 and m.node_index = 2 * c.node_index + 1),
                    (select p.hash from pg_temp.anchor_new_nodes p where p.level = c.level - 1 and p.node_index = 2 * c.node_index + 1))
             as right_hash
      from candidates c
  )
  select ch.level, ch.node_index into v_bad from children ch
   where ch.left_hash is null or ch.right_hash is null
      or ch.hash <> pg_catalog.sha256('\x01'::bytea || ch.left_hash || ch.right_hash)
   limit 1;
  if found then
    raise exception 'merkle node (%, %) is not the hash of its two stored children', v_bad.level, v_bad.node_index
      using errcode = 'invalid_parameter_value';
  end if;

  insert into audit.merkle_nodes (level, node_index, hash)
  select n.level, n.node_index, n.hash from pg_temp.anchor_new_nodes n
  on conflict (level, node_index) do nothing;
  get diagnostics v_stored = row_count;
  return pg_catalog.jsonb_build_object('stored', v_stored);
end
$$;

-- What a proof is built from: the stored nodes asked for ([[level, index], ...], at most 1,000) and
-- the checksums of a few seq ranges ([[from_seq, to_seq], ...], at most 4,096 events in all).
create function audit.merkle_material(p_nodes json, p_ranges json) returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_total bigint;
  v_nodes jsonb;
  v_ranges jsonb;
begin
  if pg_catalog.json_typeof(p_nodes) is distinct from 'array' or pg_catalog.json_array_length(p_nodes) > 1000
     or pg_catalog.json_typeof(p_ranges) is distinct from 'array' or pg_catalog.json_array_length(p_ranges) > 64 then
    raise exception 'p_nodes (at most 1000) and p_ranges (at most 64) must be JSON arrays'
      using errcode = 'invalid_parameter_value';
  end if;
  select coalesce(pg_catalog.sum(greatest((r.value ->> 1)::bigint - (r.value ->> 0)::bigint + 1, 0)), 0) into v_total
    from pg_catalog.json_array_elements(p_ranges) as r(value);
  if v_total > 4096 then
    raise exception 'at most 4096 checksums per call, asked for %', v_total using errcode = 'program_limit_exceeded';
  end if;
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(m.level, m.node_index, pg_catalog.encode(m.hash, 'hex'))), '[]'::jsonb)
    into v_nodes
    from pg_catalog.json_array_elements(p_nodes) as k(value)
    join audit.merkle_nodes m on m.level = (k.value ->> 0)::smallint and m.node_index = (k.value ->> 1)::bigint;
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'from_seq', (r.value ->> 0)::bigint, 'to_seq', (r.value ->> 1)::bigint,
           'checksums', (select coalesce(pg_catalog.string_agg(pg_catalog.encode(e.checksum, 'hex'), '' order by e.seq), '')
                           from audit.audit_events e
                          where e.seq between (r.value ->> 0)::bigint and (r.value ->> 1)::bigint)) order by r.ord), '[]'::jsonb)
    into v_ranges
    from pg_catalog.json_array_elements(p_ranges) with ordinality as r(value, ord);
  return pg_catalog.jsonb_build_object('nodes', v_nodes, 'ranges', v_ranges);
end
$$;

-- Record a digest after its object is in S3. Refuses anything that would not continue the chain:
-- a digest_seq other than the next one, a tree that shrinks, links that do not name the previous
-- digest, a tree_size beyond the chain head, or a chain_hash the chain does not have at tree_size.
-- Recording the very same digest again (a retried run) answers 'already_recorded'.
create function audit.record_digest(p_digest jsonb, p_s3_key text, p_signature text, p_public_key_pem text,
                                    p_public_key_s3_key text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_seq       bigint := (p_digest ->> 'digest_seq')::bigint;
  v_tree_size bigint := (p_digest ->> 'tree_size')::bigint;
  v_existing  audit.digests;
  v_last      audit.digests;
  v_head      bigint;
  v_chain     bytea;
begin
  if pg_catalog.jsonb_typeof(p_digest) is distinct from 'object' or v_seq is null or v_tree_size is null then
    raise exception 'p_digest must be a digest object with digest_seq and tree_size' using errcode = 'invalid_parameter_value';
  end if;
  -- One writer at a time; readers (proofs, reports) are not blocked.
  lock table audit.digests in exclusive mode;

  select * into v_existing from audit.digests d where d.digest_seq = v_seq;
  if found then
    if v_existing.body = p_digest and v_existing.signature = p_signature and v_existing.s3_key = p_s3_key then
      return pg_catalog.jsonb_build_object('status', 'already_recorded', 'digest_seq', v_seq);
    end if;
    raise exception 'digest % is already recorded with another body or signature: refusing to fork the digest chain', v_seq
      using errcode = 'unique_violation';
  end if;

  select * into v_last from audit.digests d order by d.digest_seq desc limit 1;
  if v_seq <> coalesce(v_last.digest_seq, 0) + 1 then
    raise exception 'digest_seq % does not follow the last digest (%)', v_seq, coalesce(v_last.digest_seq, 0)
      using errcode = 'invalid_parameter_value';
  end if;
  if v_tree_size < coalesce(v_last.tree_size, 0) then
    raise exception 'tree_size % goes backwards (the last digest covers %)', v_tree_size, v_last.tree_size
      using errcode = 'invalid_parameter_value';
  end if;
  if (p_digest ->> 'previous_tree_size')::bigint is distinct from coalesce(v_last.tree_size, 0)
     or (p_digest ->> 'previous_digest_key') is distinct from v_last.s3_key
     or (p_digest ->> 'previous_digest_signature') is distinct from v_last.signature then
    raise exception 'digest % does not link to digest % (previous_tree_size, previous_digest_key, previous_digest_signature)',
      v_seq, coalesce(v_last.digest_seq, 0) using errcode = 'invalid_parameter_value';
  end if;
  if v_last.chain_id is not null and v_last.chain_id <> p_digest ->> 'chain_id' then
    raise exception 'chain_id % differs from the chain''s %', p_digest ->> 'chain_id', v_last.chain_id
      using errcode = 'invalid_parameter_value';
  end if;
  select h.seq into v_head from audit.chain_head h;
  if v_tree_size > v_head then
    raise exception 'tree_size % is beyond the chain head %', v_tree_size, v_head using errcode = 'invalid_parameter_value';
  end if;
  if v_tree_size = 0 then
    v_chain := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
  else
    select e.chain_hash into v_chain from audit.audit_events e where e.seq = v_tree_size;
  end if;
  if pg_catalog.encode(v_chain, 'hex') is distinct from p_digest ->> 'chain_hash' then
    raise exception 'chain_hash of digest % is not the chain''s hash at seq %', v_seq, v_tree_size
      using errcode = 'invalid_parameter_value';
  end if;

  insert into audit.signing_keys (signing_key_id, signing_algorithm, public_key_pem, s3_key)
  values (p_digest ->> 'signing_key_id', p_digest ->> 'signing_algorithm', p_public_key_pem, p_public_key_s3_key)
  on conflict (signing_key_id) do nothing;

  insert into audit.digests (
    digest_seq, chain_id, tree_size, previous_tree_size, root_hash, chain_hash, period_start, period_end,
    oldest_event_time, newest_event_time, created_at, s3_key, signature, signing_key_id, signing_algorithm, body)
  values (
    v_seq, p_digest ->> 'chain_id', v_tree_size, (p_digest ->> 'previous_tree_size')::bigint,
    pg_catalog.decode(p_digest ->> 'root_hash', 'hex'), v_chain,
    (p_digest ->> 'period_start')::timestamptz, (p_digest ->> 'period_end')::timestamptz,
    (p_digest ->> 'oldest_event_time')::timestamptz, (p_digest ->> 'newest_event_time')::timestamptz,
    (p_digest ->> 'created_at')::timestamptz, p_s3_key, p_signature,
    p_digest ->> 'signing_key_id', p_digest ->> 'signing_algorithm', p_digest);
  return pg_catalog.jsonb_build_object('status', 'recorded', 'digest_seq', v_seq);
end
$$;

revoke all on all functions in schema audit from public;
grant execute on function
  audit.digest_json(audit.digests),
  audit.latest_digest(),
  audit.get_digest(bigint),
  audit.list_digests(bigint, integer),
  audit.anchor_state(),
  audit.anchor_checksums(bigint, bigint),
  audit.anchor_event_times(bigint, bigint),
  audit.merkle_store_nodes(json),
  audit.merkle_material(json, json),
  audit.record_digest(jsonb, text, text, text, text)
  to service_role;
