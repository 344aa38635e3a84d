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

The btrees themselves serve nothing: FerretDB 1.24 pushes down filters only as ``@>`` and a sort
only by its record id (``$natural``), so no plan of its reads uses them; yet every write of a
document inserts into each one (a device write went into some 24 btrees beside its GINs: FerretDB
rewrites the whole ``_jsonb``, so no update is a HOT one). A non-unique btree over ``_jsonb`` is so
replaced by a placeholder of the same name that holds no row (``((1)) WHERE false``): FerretDB's
catalog still names an index it can drop (``dropIndexes`` runs ``DROP INDEX`` by that name) and
list, and a write no longer maintains it. A unique btree stays: it enforces the uniqueness
(``_id`` included) that the ACS relies on.
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
  definition text;
  unique_index boolean;
  index_name text;
BEGIN
  IF (SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.oid = index_oid) <> 'btree' THEN
    RETURN;
  END IF;
  definition := pg_get_indexdef(index_oid);
  SELECT indrelid::regclass, indisunique INTO target, unique_index FROM pg_index WHERE indexrelid = index_oid;
  field := (regexp_match(definition, 'USING btree \(\(\(_jsonb -> ''([A-Za-z0-9_]+)''::text\)\)'))[1];
  IF field IS NOT NULL THEN
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> %L))',
                   left((SELECT relname FROM pg_class WHERE oid = target), 40) || '_' || left(md5(field), 8) || '_gin',
                   target, field);
  END IF;
  IF NOT unique_index AND definition LIKE '%USING btree (((_jsonb -> %' THEN
    -- FerretDB's own btree, which none of its plans uses: a placeholder of the same name instead
    index_name := (SELECT relname FROM pg_class WHERE oid = index_oid);
    EXECUTE format('DROP INDEX %s', index_oid::regclass);
    EXECUTE format('CREATE INDEX %I ON %s ((1)) WHERE false', index_name, target);
  END IF;
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
