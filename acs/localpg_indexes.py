"""Make FerretDB's pushed-down filters use indexes in the local PostgreSQL cluster.

FerretDB 1.24 turns an equality filter such as ``{_id: X}`` or ``{device_id: X, status: Y}`` into
``WHERE _jsonb -> 'device_id' @> '"X"'``, but builds every MongoDB index as a btree over
``(_jsonb -> 'field')``, which ``@>`` cannot use (FerretDB issue #4646): every query, even by
``_id``, scans its whole table, and the cost of each command grows with the collection. Measured
here with 2,000 devices, 2,600 sessions and 2,500 tasks: the plans were sequential scans, and the
ACS completed about 12 sessions/s; with the companions below it completed about 30/s.

The local cluster (``acs serve`` without a URI, the tests, the benchmarks) is ours, so it gets an
event trigger: whenever FerretDB creates a btree index whose leading key is a top-level field,
a GIN index on the same expression is created next to it (GIN's default ``jsonb_ops`` serves
``@>``). A backfill covers tables created before the trigger existed. A MongoDB server, or a
FerretDB cluster the operator runs, is never touched.
"""

from __future__ import annotations

# The regexp finds the leading key of a btree index FerretDB built, as pg_get_indexdef prints it:
#   ... USING btree (((_jsonb -> 'device_id'::text)), ...)
# A nested key (((_jsonb -> 'params') -> 'file_id')) is not pushed down by FerretDB and is skipped.
COMPANION_SQL = r"""
CREATE OR REPLACE FUNCTION public.acs_gin_companion(index_oid oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  field text;
  target regclass;
BEGIN
  IF (SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.oid = index_oid) <> 'btree' THEN
    RETURN;
  END IF;
  field := (regexp_match(pg_get_indexdef(index_oid),
                         'USING btree \(\(\(_jsonb -> ''([A-Za-z0-9_]+)''::text\)\)'))[1];
  IF field IS NULL THEN
    RETURN;
  END IF;
  SELECT indrelid::regclass INTO target FROM pg_index WHERE indexrelid = index_oid;
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> %L))',
                 left((SELECT relname FROM pg_class WHERE oid = target), 40) || '_' || left(md5(field), 8) || '_gin',
                 target, field);
END $$;

CREATE OR REPLACE FUNCTION public.acs_gin_companions() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  command record;
BEGIN
  FOR command IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE INDEX' LOOP
    PERFORM public.acs_gin_companion(command.objid);
  END LOOP;
END $$;

DROP EVENT TRIGGER IF EXISTS acs_gin_companions;
CREATE EVENT TRIGGER acs_gin_companions ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION public.acs_gin_companions();

DO $$
DECLARE
  existing record;
BEGIN
  FOR existing IN
    SELECT i.indexrelid FROM pg_index i
    JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  LOOP
    PERFORM public.acs_gin_companion(existing.indexrelid);
  END LOOP;
END $$;
"""
