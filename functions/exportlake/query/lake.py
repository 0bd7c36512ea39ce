"""Local stand-in for Athena: mirror the registered Glue partitions from S3 and query them with DuckDB.

Only what the Glue catalog registers is visible, exactly as in Athena: objects under a prefix whose partition is not
(yet) registered are never mirrored, so a half-written result stays invisible locally too. DuckDB here has no
``httpfs``, so the objects are mirrored into a local cache directory through boto3 and read from there.

The mirror is laid out the way Athena sees the table: ``_tables/<table>/<key>=<value>/…/<file>``, the partition
values taken from Glue (never from the S3 path), and each table is read with ``hive_partitioning``. So DuckDB prunes
files like Trino prunes partitions: a constant filter, or a join's dynamic filter, on the plain partition columns
skips every other partition's files. Every query reports what it read (files, bytes), as Athena reports "data
scanned" (see ``Scan``).
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
import pyarrow.parquet as pq

from exportlake.domain import views as queries
from exportlake.domain.errors import ValidationError
from exportlake.query.macros import ATHENA_MACROS

__all__ = ["ATHENA_MACROS", "LakeQuery", "Scan", "check_sql_name", "describe_error"]

logger = logging.getLogger(__name__)

#: Table and column names allowed into SQL. Everything else from Glue is refused before any SQL is built.
_SQL_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: DuckDB expands these in file paths (globs); a mirrored path must never contain them.
_GLOB_OR_CONTROL = re.compile(r"[*?\[\]{}\\\x00-\x1f\x7f]")
#: A partition value becomes a ``key=value`` directory that DuckDB parses back: no separators, no globs.
_PARTITION_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,254}$")
#: A name no Glue column may take (it was the join column of earlier versions; kept refused).
_RESERVED_COLUMN = "__exportlake_file"
_MIRROR_ROOT = "_tables"
_MANIFEST_NAME = ".exportlake-mirror.json"
_DOWNLOAD_CHUNK = 1024 * 1024
_DRAIN_ROWS = 10_000
#: SerDe libraries the local engine reads (the raw tables' Parquet, the pointer table's JSON Lines).
_PARQUET = "parquet"
_JSON = "json"


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
    if not isinstance(name, str) or not _SQL_NAME.match(name) or name == _RESERVED_COLUMN:
        raise ValidationError(f"refusing unsafe {what} name from the Glue catalog: {name!r}")
    return name


def _ident(name: str) -> str:
    # Names are validated already; quoting anyway keeps reserved words (e.g. "value", "group") usable.
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Scan:
    """What one query read from the lake: files opened and bytes read (Athena's "data scanned")."""

    files: int | None
    bytes: int
    engine: str = "duckdb"


def scan_of(profile: Mapping[str, Any]) -> Scan:
    """Files and bytes from a DuckDB JSON profile: every table scan's ``Total Files Read``, the query's I/O."""
    files = 0

    def walk(node: Mapping[str, Any]) -> None:
        nonlocal files
        if node.get("type") == "TABLE_SCAN":
            files += int(node.get("extra_info", {}).get("Total Files Read", 0) or 0)
        for child in node.get("children", []):
            walk(child)

    for operator in profile.get("operator", []):
        walk(operator)
    return Scan(files, int(profile.get("io", {}).get("total_bytes_read", 0) or 0))


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
    kind: str = _PARQUET
    partitions: list[_Partition] = field(default_factory=list)
    #: Mirror path (relative to the cache) of every mirrored object of the table.
    files: list[str] = field(default_factory=list)


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


def _kind_of(raw: Mapping[str, Any]) -> str:
    serde = str(raw.get("StorageDescriptor", {}).get("SerdeInfo", {}).get("SerializationLibrary", ""))
    return _JSON if "json" in serde.lower() else _PARQUET


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
        #: What the last query read (``None`` before the first).
        self.last_scan: Scan | None = None
        # Athena sessions run in UTC; pin it so timestamps render the same on every machine.
        self._con.execute("SET TimeZone = 'UTC'")
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
        """Run ``sql``; return columns, at most ``limit`` rows (all if ``None``) and whether more were left.

        The query always runs to its end (as on Athena), so :attr:`last_scan` tells everything it read.
        """
        self._con.execute("PRAGMA enable_profiling = 'no_output'")
        try:
            cursor = self._con.execute(sql)
            if cursor.description is None:  # a statement without a result (e.g. SET): nothing read
                self.last_scan = Scan(0, 0)
                return [], [], False
            columns = [d[0] for d in cursor.description]
            if limit is None:
                rows, more = cursor.fetchall(), False
            else:
                rows = cursor.fetchmany(limit + 1)
                more = len(rows) > limit
                rows = rows[:limit]
                while cursor.fetchmany(_DRAIN_ROWS):  # rows past the cap are not kept, but are read
                    pass
            self.last_scan = scan_of(json.loads(self._con.get_profiling_information(format="json")))
            return columns, rows, more
        finally:
            self._con.execute("PRAGMA disable_profiling")

    def refresh(self) -> dict[str, int]:
        """Mirror every registered partition, rebuild one view per Glue table; return table → partition count.

        Order matters: new files are mirrored first, views are rebuilt next, and only then are files of
        deregistered partitions deleted, so no view ever points at a file that is gone. An unpartitioned table
        (the pointer table ``latest_results``) counts its location as one partition.
        """
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        manifest = self._load_manifest()
        tables = [self._load_table(t) for t in self._iter_glue_tables()]
        wanted: dict[str, dict[str, Any]] = {}
        for table in tables:
            for partition in table.partitions:
                for obj in self._iter_objects(partition, table.kind):
                    mirror = self._mirror_path(table, partition, obj["Key"])
                    entry = self._mirror(partition.bucket, obj, mirror, manifest.get(mirror), table.kind)
                    wanted[mirror] = entry
                    manifest[mirror] = entry
                    table.files.append(mirror)
        # Save before building views: a failure later must not forget what is already on disk.
        self._save_manifest(manifest)
        for table in tables:
            self._create_view(table, wanted)
        for stale in self._views - {t.name for t in tables}:
            self._con.execute(f"DROP VIEW IF EXISTS {self._schema}.{_ident(stale)}")
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
            for raw in page.get("TableList", []):
                if raw.get("TableType") != "VIRTUAL_VIEW":  # Glue views are rebuilt from the registry's text
                    yield raw

    def _load_table(self, raw: Mapping[str, Any]) -> _Table:
        name = check_sql_name(raw.get("Name"), "table")
        storage = raw.get("StorageDescriptor", {})
        columns = tuple(check_sql_name(c.get("Name"), f"column of {name!r}") for c in storage.get("Columns", []))
        keys = tuple(check_sql_name(k.get("Name"), f"partition key of {name!r}") for k in raw.get("PartitionKeys", []))
        names = columns + keys
        if len(set(names)) != len(names):
            raise ValidationError(f"table {name!r} repeats a column name: {list(names)}")
        table = _Table(name, columns, keys, _kind_of(raw))
        if not keys:
            bucket, prefix = _parse_s3_location(storage.get("Location"), name)
            table.partitions.append(_Partition((), bucket, prefix))
            return table
        paginator = self._glue.get_paginator("get_partitions")
        for page in paginator.paginate(DatabaseName=self._database, TableName=name):
            for part in page.get("Partitions", []):
                values = tuple(part.get("Values", []))
                if len(values) != len(keys) or not all(isinstance(v, str) for v in values):
                    raise ValidationError(f"partition of {name!r} has values {values!r} for keys {list(keys)}")
                bad = [v for v in values if not _PARTITION_VALUE.fullmatch(v)]
                if bad:
                    raise ValidationError(f"partition of {name!r} has values unsafe as a local path: {bad!r}")
                bucket, prefix = _parse_s3_location(part.get("StorageDescriptor", {}).get("Location"), name)
                table.partitions.append(_Partition(values, bucket, prefix))
        return table

    # --- S3 mirror --------------------------------------------------------------------------------------------

    def _iter_objects(self, partition: _Partition, kind: str) -> Iterator[Mapping[str, Any]]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=partition.bucket, Prefix=partition.prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if kind == _PARQUET and not name.endswith(".parquet"):
                    continue
                if name.startswith(("_", ".")):  # Athena skips these too
                    continue
                yield obj

    def _mirror_path(self, table: _Table, partition: _Partition, key: str) -> str:
        """The object's place in the mirror (relative to the cache): under its table and Glue partition values."""
        relative = key[len(partition.prefix) :].split("/")
        if _GLOB_OR_CONTROL.search(key) or any(p in ("", ".", "..") or "=" in p for p in relative):
            raise ValidationError(f"refusing to mirror S3 key {key!r}: unsafe as a local path")
        hive = [f"{k}={v}" for k, v in zip(table.partition_keys, partition.values, strict=True)]
        return "/".join([_MIRROR_ROOT, table.name, *hive, *relative])

    def _local_path(self, mirror: str) -> Path:
        """Where a mirror path lives on disk, refusing anything that could escape the cache directory."""
        parts = mirror.split("/")
        if _GLOB_OR_CONTROL.search(mirror) or any(p in ("", ".", "..") for p in parts):
            raise ValidationError(f"refusing mirror path {mirror!r}: unsafe as a local path")
        path = self._cache_dir.joinpath(*parts)
        if not path.resolve().is_relative_to(self._cache_dir.resolve()):
            raise ValidationError(f"refusing mirror path {mirror!r}: outside the cache directory")
        return path

    def _mirror(
        self, bucket: str, obj: Mapping[str, Any], mirror: str, known: Mapping[str, Any] | None, kind: str
    ) -> dict[str, Any]:
        """Download one object unless the mirror already holds it with the same ETag and size."""
        path = self._local_path(mirror)
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
        columns = [name.lower() for name in pq.read_schema(path).names] if kind == _PARQUET else []
        # Record what was downloaded (the GET's ETag), not what was listed, in case the object changed in between.
        return {"etag": response.get("ETag"), "size": path.stat().st_size, "columns": columns}

    def _prune(self, manifest: dict[str, Any], wanted: Mapping[str, Any]) -> None:
        for mirror in sorted(set(manifest) - set(wanted)):
            try:
                path = self._local_path(mirror)
            except ValidationError:
                path = None
            if path is not None:
                path.unlink(missing_ok=True)
                self._remove_empty_dirs(path.parent)
            del manifest[mirror]
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
        names = table.columns + table.partition_keys
        if not table.files:
            nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {_ident(c)}" for c in names)
            self._con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {nulls or '1 AS _empty'} WHERE false")
            return
        if table.kind == _JSON:
            files = ", ".join(_literal(str(self._local_path(m))) for m in table.files)
            types = ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in table.columns)
            select = ", ".join(_ident(c) for c in table.columns)
            self._con.execute(
                f"CREATE OR REPLACE VIEW {view} AS SELECT {select} "
                f"FROM read_json([{files}], format = 'newline_delimited', columns = {{{types}}})"
            )
            return
        # One read_parquet per set of columns: union_by_name would read every file's footer at each query's bind.
        groups: dict[tuple[str, ...], list[str]] = {}
        for mirror in table.files:
            present = tuple(sorted(set(entries[mirror].get("columns", [])) & set(table.columns)))
            groups.setdefault(present, []).append(mirror)
        selects = []
        for present, mirrors in groups.items():
            cols = [
                f"CAST({_ident(c)} AS VARCHAR) AS {_ident(c)}"
                if c in present
                else f"CAST(NULL AS VARCHAR) AS {_ident(c)}"
                for c in table.columns
            ] + [f"CAST({_ident(k)} AS VARCHAR) AS {_ident(k)}" for k in table.partition_keys]
            files = ", ".join(_literal(str(self._local_path(m))) for m in mirrors)
            # Partition columns come from the mirror's directories, which hold the Glue values (never S3 paths).
            hive = "true, hive_types_autocast = false" if table.partition_keys else "false"
            selects.append(f"SELECT {', '.join(cols)} FROM read_parquet([{files}], hive_partitioning = {hive})")
        self._con.execute(f"CREATE OR REPLACE VIEW {view} AS " + "\nUNION ALL\n".join(selects))
