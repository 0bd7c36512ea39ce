"""Local stand-in for Athena: mirror the registered Glue partitions from S3 and query them with DuckDB.

Only what the Glue catalog registers is visible, exactly as in Athena: objects under a prefix whose partition is not
(yet) registered are never mirrored, so a half-written result stays invisible locally too. DuckDB here has no
``httpfs``, so the Parquet objects are mirrored into a local cache directory through boto3 and read from there.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from exportlake.domain import views as queries
from exportlake.domain.errors import ValidationError

logger = logging.getLogger(__name__)

#: Table and column names allowed into SQL. Everything else from Glue is refused before any SQL is built.
_SQL_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: DuckDB expands these in file paths (globs); a mirrored path must never contain them.
_GLOB_OR_CONTROL = re.compile(r"[*?\[\]{}\\\x00-\x1f\x7f]")

#: Internal schema holding one file → partition values table per view; hidden from user queries by its name.
_INTERNAL_SCHEMA = "_exportlake"
#: Column DuckDB adds with each row's source file, joined against the partition table.
_FILE_COLUMN = "__exportlake_file"
_MANIFEST_NAME = ".exportlake-mirror.json"
_DOWNLOAD_CHUNK = 1024 * 1024

#: MySQL-style specifiers (Athena's ``date_parse``/``date_format``) → DuckDB strptime/strftime specifiers.
#: Order matters: ``replace`` runs in sequence, so ``%M`` (month name) is rewritten before ``%i`` becomes ``%M``
#: (minutes), and the composite ``%T``/``%r`` come last because their output holds ``%M`` and ``%S``.
_MYSQL_TO_DUCKDB_FORMAT: tuple[tuple[str, str], ...] = (
    ("%M", "%B"),
    ("%W", "%A"),
    ("%i", "%M"),
    ("%s", "%S"),
    ("%c", "%-m"),
    ("%e", "%-d"),
    ("%k", "%-H"),
    ("%l", "%-I"),
    ("%h", "%I"),
    ("%T", "%H:%M:%S"),
    ("%r", "%I:%M:%S %p"),
)


def _format_translation(arg: str) -> str:
    expr = arg
    for mysql, duck in _MYSQL_TO_DUCKDB_FORMAT:
        expr = f"replace({expr}, '{mysql}', '{duck}')"
    return expr


#: Athena (Trino) functions DuckDB lacks, as DuckDB macros: name → "(parameters) AS body". Created in this order
#: (later macros may call earlier ones). Known differences from Athena are noted per entry.
ATHENA_MACROS: dict[str, str] = {
    # Helper: translate a MySQL-style format string ('%%' escapes are not special-cased). The format must be a
    # constant, as DuckDB's strptime requires. The concat(fmt, '') is load-bearing: DuckDB binds a macro body
    # with NULL for its parameters, and strptime refuses a NULL (non-constant) format unless it folds to ''.
    "athena_mysql_format": f"(fmt) AS {_format_translation("concat(fmt, '')")}",
    "date_parse": "(s, fmt) AS strptime(s, athena_mysql_format(fmt))",
    "date_format": "(ts, fmt) AS strftime(ts, athena_mysql_format(fmt))",
    # Athena returns timestamp with time zone; this returns the UTC instant as a plain TIMESTAMP, so results
    # fetch without pytz and compare the same whatever the session time zone.
    "from_iso8601_timestamp": "(s) AS timezone('UTC', CAST(s AS TIMESTAMPTZ))",
    "from_iso8601_date": "(s) AS CAST(s AS DATE)",
    # Athena's regexp_like matches anywhere in the string, as regexp_matches does.
    "regexp_like": "(s, pattern) AS regexp_matches(s, pattern)",
    "approx_distinct": "(x) AS approx_count_distinct(x)",
    "approx_percentile": "(x, p) AS approx_quantile(x, p)",
    # Athena's date_add(unit, n, ts) and date_diff(unit, a, b) (whole units between a and b, as DuckDB's
    # date_sub counts them; DuckDB's own date_diff counts boundaries crossed). These shadow DuckDB's built-ins.
    "date_add": (
        "(unit, n, ts) AS CASE lower(unit) WHEN 'millisecond' THEN ts + to_milliseconds(n) "
        "WHEN 'second' THEN ts + to_seconds(n) WHEN 'minute' THEN ts + to_minutes(n) "
        "WHEN 'hour' THEN ts + to_hours(n) WHEN 'day' THEN ts + to_days(n) WHEN 'week' THEN ts + to_weeks(n) "
        "WHEN 'month' THEN ts + to_months(n) WHEN 'quarter' THEN ts + to_months(3 * n) "
        "WHEN 'year' THEN ts + to_years(n) END"
    ),
    "date_diff": "(unit, a, b) AS date_sub(lower(unit), a, b)",
    "to_unixtime": "(ts) AS epoch(ts)",
    # Athena returns timestamp with time zone (UTC); a plain UTC TIMESTAMP here, as from_iso8601_timestamp.
    "from_unixtime": "(n) AS make_timestamp(CAST(round(n * 1000000) AS BIGINT))",
    # Athena's element_at(map, key) is the value (DuckDB's is a list) and element_at(array, i) is 1-based.
    "element_at": "(c, k) AS c[k]",
    # Athena yields NULL for invalid JSON, a missing path, JSON null, or an object/array value (not a scalar).
    "json_extract_scalar": (
        "(j, path) AS CASE WHEN json_valid(j) AND json_type(j, path) NOT IN ('OBJECT', 'ARRAY', 'NULL') "
        "THEN json_extract_string(j, path) END"
    ),
}


def _registry_views(database: str) -> dict[str, str]:
    return queries.view_statements(database)


def describe_error(exc: BaseException) -> str:
    """One line for a failed query: DuckDB's message and its hint, without the echoed SQL and caret."""
    lines = [line.strip() for line in str(exc).splitlines()]
    kept: list[str] = []
    for line in lines:
        if line.startswith("LINE "):
            break  # the echoed statement and the caret under it follow
        if line:
            kept.append(line)
    return " ".join(kept) or type(exc).__name__


def check_sql_name(name: object, what: str) -> str:
    """Return ``name`` if it is a safe SQL identifier (``^[a-z_][a-z0-9_]*$``), else raise ValidationError."""
    if not isinstance(name, str) or not _SQL_NAME.match(name) or name == _FILE_COLUMN:
        raise ValidationError(f"refusing unsafe {what} name from the Glue catalog: {name!r}")
    return name


def _ident(name: str) -> str:
    # Names are validated already; quoting anyway keeps reserved words (e.g. "value", "group") usable.
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class _Partition:
    values: tuple[str, ...]
    bucket: str
    prefix: str


@dataclass
class _Table:
    name: str
    columns: tuple[str, ...]
    partition_keys: tuple[str, ...]
    partitions: list[_Partition] = field(default_factory=list)
    #: (bucket/key, local path, partition values) of every mirrored Parquet part.
    files: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)


def _parse_s3_location(location: object, table: str) -> tuple[str, str]:
    if not isinstance(location, str) or not location.startswith("s3://"):
        raise ValidationError(f"partition of {table!r} has a non-S3 location: {location!r}")
    bucket, _, prefix = location[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket):
        raise ValidationError(f"partition of {table!r} has an invalid bucket: {bucket!r}")
    # A trailing slash keeps result_id=1/ from also listing result_id=10/.
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


class LakeQuery:
    """Query the lake locally: a DuckDB view per Glue table over a local mirror of its registered partitions."""

    def __init__(
        self,
        glue_client: Any,
        s3_client: Any,
        database: str,
        cache_dir: Path,
        derived_views: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        """Keep the clients; nothing is read until :meth:`refresh`.

        Tables are views in a schema named after the Glue database (also on the search path), so the deployed,
        database-qualified SQL (``"exportlake"."win_info"``) and plain names both resolve. ``derived_views`` gives,
        for the database name, the ``CREATE VIEW`` statements run after every refresh (by default the typed and
        latest views of the registry: the very text the stack deploys).
        """
        self._glue = glue_client
        self._s3 = s3_client
        self._database = database
        self._schema = _ident(check_sql_name(database, "database"))
        self._derived_views = derived_views if derived_views is not None else _registry_views
        self._derived: set[str] = set()
        self._cache_dir = Path(cache_dir)
        self._views: set[str] = set()
        self._con = duckdb.connect(":memory:")
        # Athena sessions run in UTC; pin it so timestamps render the same on every machine.
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(_INTERNAL_SCHEMA)}")
        self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {self._schema}")
        self._con.execute(f"SET search_path = {_literal(database + ',main')}")
        for name, macro in ATHENA_MACROS.items():
            # In main (always searched), so they are found from views in any schema.
            self._con.execute(f"CREATE OR REPLACE MACRO main.{_ident(name)}{macro}")

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The in-memory DuckDB connection holding the views and the Athena-compat macros."""
        return self._con

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run ``sql``; return the column names and all rows (both empty for statements without a result)."""
        columns, rows, _ = self.query_capped(sql, None)
        return columns, rows

    def query_capped(self, sql: str, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]], bool]:
        """Run ``sql``; return columns, at most ``limit`` rows (all if ``None``) and whether more were left."""
        cursor = self._con.execute(sql)
        if cursor.description is None:
            return [], [], False
        columns = [d[0] for d in cursor.description]
        if limit is None:
            return columns, cursor.fetchall(), False
        rows = cursor.fetchmany(limit + 1)
        return columns, rows[:limit], len(rows) > limit

    def refresh(self) -> dict[str, int]:
        """Mirror every registered partition, rebuild one view per Glue table; return table → partition count.

        Order matters: new files are mirrored first, views are rebuilt next, and only then are files of
        deregistered partitions deleted, so no view ever points at a file that is gone.
        """
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        manifest = self._load_manifest()
        tables = [self._load_table(t) for t in self._iter_glue_tables()]
        wanted: dict[str, dict[str, Any]] = {}
        for table in tables:
            for partition in table.partitions:
                for obj in self._iter_parquet_objects(partition):
                    ref = f"{partition.bucket}/{obj['Key']}"
                    entry = self._mirror(partition.bucket, obj, manifest.get(ref))
                    wanted[ref] = entry
                    manifest[ref] = entry
                    table.files.append((ref, str(self._local_path(partition.bucket, obj["Key"])), partition.values))
        # Save before building views: a failure later must not forget what is already on disk.
        self._save_manifest(manifest)
        for table in tables:
            self._create_view(table, wanted)
        for stale in self._views - {t.name for t in tables}:
            self._con.execute(f"DROP VIEW IF EXISTS {self._schema}.{_ident(stale)}")
            self._con.execute(f"DROP TABLE IF EXISTS {_ident(_INTERNAL_SCHEMA)}.{_ident(stale)}")
        self._views = {t.name for t in tables}
        self._create_derived_views()
        self._prune(manifest, wanted)
        return {t.name: len(t.partitions) for t in tables}

    def _create_derived_views(self) -> None:
        """Run the derived views' statements; a view whose source table is absent (yet) is skipped."""
        for name in self._derived:
            self._con.execute(f"DROP VIEW IF EXISTS {self._schema}.{_ident(name)}")
        self._derived = set()
        for name, statement in self._derived_views(self._database).items():
            try:
                self._con.execute(statement)
            except (duckdb.CatalogException, duckdb.BinderException):
                # Its table (or the view it reads) is not in the catalog: Athena would refuse it too.
                logger.info("view %s skipped: a table it reads is not in the catalog", name)
                continue
            self._derived.add(check_sql_name(name, "view"))

    # --- Glue -------------------------------------------------------------------------------------------------

    def _iter_glue_tables(self) -> Iterator[Mapping[str, Any]]:
        for page in self._glue.get_paginator("get_tables").paginate(DatabaseName=self._database):
            yield from page.get("TableList", [])

    def _load_table(self, raw: Mapping[str, Any]) -> _Table:
        name = check_sql_name(raw.get("Name"), "table")
        columns = tuple(
            check_sql_name(c.get("Name"), f"column of {name!r}")
            for c in raw.get("StorageDescriptor", {}).get("Columns", [])
        )
        keys = tuple(check_sql_name(k.get("Name"), f"partition key of {name!r}") for k in raw.get("PartitionKeys", []))
        names = columns + keys
        if len(set(names)) != len(names):
            raise ValidationError(f"table {name!r} repeats a column name: {list(names)}")
        table = _Table(name, columns, keys)
        paginator = self._glue.get_paginator("get_partitions")
        for page in paginator.paginate(DatabaseName=self._database, TableName=name):
            for part in page.get("Partitions", []):
                values = tuple(part.get("Values", []))
                if len(values) != len(keys) or not all(isinstance(v, str) for v in values):
                    raise ValidationError(f"partition of {name!r} has values {values!r} for keys {list(keys)}")
                bucket, prefix = _parse_s3_location(part.get("StorageDescriptor", {}).get("Location"), name)
                table.partitions.append(_Partition(values, bucket, prefix))
        return table

    # --- S3 mirror --------------------------------------------------------------------------------------------

    def _iter_parquet_objects(self, partition: _Partition) -> Iterator[Mapping[str, Any]]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=partition.bucket, Prefix=partition.prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".parquet"):
                    yield obj

    def _local_path(self, bucket: str, key: str) -> Path:
        """Where ``s3://bucket/key`` is mirrored: ``cache_dir/bucket/key``, refusing anything that could escape."""
        parts = key.split("/")
        if _GLOB_OR_CONTROL.search(key) or any(p in ("", ".", "..") for p in parts):
            raise ValidationError(f"refusing to mirror S3 key {key!r}: unsafe as a local path")
        path = self._cache_dir.joinpath(bucket, *parts)
        if not path.resolve().is_relative_to(self._cache_dir.resolve()):
            raise ValidationError(f"refusing to mirror S3 key {key!r}: outside the cache directory")
        return path

    def _mirror(self, bucket: str, obj: Mapping[str, Any], known: Mapping[str, Any] | None) -> dict[str, Any]:
        """Download one object unless the mirror already holds it with the same ETag and size."""
        path = self._local_path(bucket, obj["Key"])
        if (
            known is not None
            and known.get("etag") == obj.get("ETag")
            and known.get("size") == obj.get("Size")
            and path.is_file()
            and path.stat().st_size == obj.get("Size")
        ):
            return dict(known)
        path.parent.mkdir(parents=True, exist_ok=True)
        response = self._s3.get_object(Bucket=bucket, Key=obj["Key"])
        # Write beside the target and rename: a crash mid-download never leaves a truncated part that looks whole.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in response["Body"].iter_chunks(_DOWNLOAD_CHUNK):
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # Column names come from the footer once per download, so refresh never re-reads unchanged files.
        columns = [name.lower() for name in pq.read_schema(path).names]
        # Record what was downloaded (the GET's ETag), not what was listed, in case the object changed in between.
        return {"etag": response.get("ETag"), "size": path.stat().st_size, "columns": columns}

    def _prune(self, manifest: dict[str, Any], wanted: Mapping[str, Any]) -> None:
        for ref in sorted(set(manifest) - set(wanted)):
            bucket, _, key = ref.partition("/")
            try:
                path = self._local_path(bucket, key)
            except ValidationError:
                path = None
            if path is not None:
                path.unlink(missing_ok=True)
                self._remove_empty_dirs(path.parent)
            del manifest[ref]
        self._save_manifest(manifest)

    def _remove_empty_dirs(self, directory: Path) -> None:
        root = self._cache_dir.resolve()
        current = directory.resolve()
        while current != root and current.is_relative_to(root):
            try:
                current.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                return
            current = current.parent

    def _load_manifest(self) -> dict[str, Any]:
        path = self._cache_dir / _MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            # A corrupt manifest only costs re-downloads; it must not block querying.
            logger.warning("ignoring unreadable mirror manifest %s", path)
            return {}
        return data if isinstance(data, dict) else {}

    def _save_manifest(self, manifest: Mapping[str, Any]) -> None:
        path = self._cache_dir / _MANIFEST_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)

    # --- DuckDB views -----------------------------------------------------------------------------------------

    def _create_view(self, table: _Table, entries: Mapping[str, Mapping[str, Any]]) -> None:
        view = f"{self._schema}.{_ident(table.name)}"
        internal = f"{_ident(_INTERNAL_SCHEMA)}.{_ident(table.name)}"
        if not table.files:
            nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {_ident(c)}" for c in table.columns + table.partition_keys)
            self._con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {nulls or '1 AS _empty'} WHERE false")
            self._con.execute(f"DROP TABLE IF EXISTS {internal}")
            return
        present = self._columns_present(table, entries)
        # Partition values travel as data (an Arrow table), never as SQL text.
        partition_table = pa.table(
            {
                _FILE_COLUMN: [path for _, path, _ in table.files],
                **{key: [values[i] for _, _, values in table.files] for i, key in enumerate(table.partition_keys)},
            }
        )
        self._con.register("_exportlake_partitions", partition_table)
        try:
            self._con.execute(f"CREATE OR REPLACE TABLE {internal} AS SELECT * FROM _exportlake_partitions")
        finally:
            self._con.unregister("_exportlake_partitions")
        select = [
            f"CAST(d.{_ident(c)} AS VARCHAR) AS {_ident(c)}"
            if c in present
            else f"CAST(NULL AS VARCHAR) AS {_ident(c)}"
            for c in table.columns
        ] + [f"CAST(p.{_ident(k)} AS VARCHAR) AS {_ident(k)}" for k in table.partition_keys]
        # A part under two overlapping partition locations is read once and joined to each (as Athena would).
        files = ", ".join(_literal(path) for path in dict.fromkeys(path for _, path, _ in table.files))
        # hive_partitioning=false: partition columns come from the Glue values joined below, never from paths.
        self._con.execute(
            f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(select)} "
            f"FROM read_parquet([{files}], union_by_name = true, hive_partitioning = false, "
            f"filename = {_literal(_FILE_COLUMN)}) AS d "
            f"JOIN {internal} AS p ON d.{_ident(_FILE_COLUMN)} = p.{_ident(_FILE_COLUMN)}"
        )

    @staticmethod
    def _columns_present(table: _Table, entries: Mapping[str, Mapping[str, Any]]) -> set[str]:
        """Glue columns found in at least one part of this table (a column absent from all of them would not bind)."""
        found: set[str] = set()
        for ref, _, _ in table.files:
            found.update(entries[ref].get("columns", []))
        return found & set(table.columns)
