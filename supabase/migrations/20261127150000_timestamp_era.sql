-- audit.format_timestamp printed no era: 'YYYY' renders 2026 BC exactly like 2026 AD, so a superuser
-- could move an event's timestamp to the same date BC and the JSON the SQL API serves (and the
-- checksum recomputed from it) would not change. Events are never stored before year 1 (the API
-- refuses them), so any such value is now printed with its era and fails verification as modified.
-- Still one SQL expression, so event_json and the chain segments stay inlinable.
create or replace function audit.format_timestamp(p_ts timestamptz) returns text
language sql stable parallel safe
as $$
  select pg_catalog.to_char(p_ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
         || case when p_ts < '0001-01-01 00:00:00+00'::timestamptz then ' BC' else '' end
$$;
