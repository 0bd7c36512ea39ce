"""The Glue Data Catalog: tables from the schema registry (or from a new type's first records), partitions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from exportlake.domain.errors import ExportlakeError
from exportlake.domain.naming import table_location, validate_column_name, validate_table_name

# The table definition is the registry's (the CDK stack declares the same); re-exported for existing callers.
from exportlake.domain.schemas import (
    PARQUET_INPUT,
    PARQUET_OUTPUT,
    PARQUET_SERDE,
    PARTITION_INDEX_KEYS,
    PARTITION_INDEX_NAME,
    PARTITION_KEYS,
    RAW_COLUMN_TYPE,
    RAW_TABLE_PARAMETERS,
    SERDE_PARAMETERS,
    TABLE_TYPE,
    latest_table_input,
)
from exportlake.domain.tablemerge import TableSync, fingerprint, is_current, merge_table, undeclared_columns

__all__ = [
    "PARQUET_INPUT",
    "PARQUET_OUTPUT",
    "PARQUET_SERDE",
    "GlueCatalog",
    "declared_fingerprint",
    "storage_descriptor",
    "table_input",
]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def storage_descriptor(columns: Sequence[str], location: str) -> dict[str, Any]:
    """A Parquet storage descriptor with every column a string."""
    return {
        "Columns": [{"Name": validate_column_name(c), "Type": RAW_COLUMN_TYPE} for c in columns],
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": dict(SERDE_PARAMETERS)},
        "Compressed": True,
    }


def table_input(name: str, columns: Sequence[str], bucket: str, description: str = "") -> dict[str, Any]:
    """The Glue ``TableInput`` of an export table."""
    return {
        "Name": validate_table_name(name),
        "Description": description or f"exportlake: records of export type {name}",
        "TableType": TABLE_TYPE,
        "Parameters": dict(RAW_TABLE_PARAMETERS),
        "PartitionKeys": [{"Name": k, "Type": RAW_COLUMN_TYPE} for k in PARTITION_KEYS],
        "StorageDescriptor": storage_descriptor(columns, table_location(bucket, name)),
    }


def partition_index() -> dict[str, Any]:
    """The partition index every raw table gets (``created_date``: date-filtered queries list no other partition)."""
    return {"IndexName": PARTITION_INDEX_NAME, "Keys": list(PARTITION_INDEX_KEYS)}


def declared_fingerprint(name: str, columns: Sequence[str], description: str = "") -> str:
    """The fingerprint of a table's declared ``TableInput`` (location aside): what the stack's resource carries."""
    return fingerprint(table_input(name, columns, "any-bucket", description))


class GlueCatalog:
    """Tables and partitions of one Glue database."""

    def __init__(self, glue_client: Any, database: str, bucket: str):
        self._glue = glue_client
        self.database = database
        self._bucket = bucket

    def ensure_database(self) -> None:
        """Create the database if it does not exist."""
        try:
            self._glue.create_database(
                DatabaseInput={"Name": self.database, "Description": "exportlake: NeoDay automated exports"}
            )
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise

    def columns(self, table: str) -> list[str] | None:
        """The table's data columns in order, or ``None`` if the table does not exist."""
        found = self._table(table)
        return None if found is None else [c["Name"] for c in found["StorageDescriptor"].get("Columns", [])]

    def tables(self) -> list[str]:
        """Every table name of the database."""
        names: list[str] = []
        for page in self._glue.get_paginator("get_tables").paginate(DatabaseName=self.database):
            names.extend(t["Name"] for t in page.get("TableList", []))
        return names

    def create_table(self, table: str, columns: Sequence[str], description: str = "") -> None:
        """Create an export table; an existing one is left as it is."""
        try:
            self._glue.create_table(
                DatabaseName=self.database,
                TableInput=table_input(table, columns, self._bucket, description),
                PartitionIndexes=[partition_index()],
            )
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise

    def ensure_table(self, table: str, columns: Sequence[str], description: str = "") -> TableSync:
        """Create the table as declared, or merge the declaration into it (``exportlake.domain.tablemerge``).

        The declared columns come first with the declared type, then every column the table holds that is not
        declared (e.g. added by a copier for a new field), in its order; no column is ever dropped, and nothing is
        written when the table already says all of it. Optimistic like ``add_columns``: the update names the
        version it read, so a copier adding a column meanwhile is merged on the next round, never overwritten.
        """
        declared = table_input(table, columns, self._bucket, description)
        for _ in range(5):
            existing = self._table(table)
            if existing is None:
                try:
                    self._glue.create_table(
                        DatabaseName=self.database, TableInput=declared, PartitionIndexes=[partition_index()]
                    )
                except ClientError as exc:
                    if _code(exc) == "AlreadyExistsException":
                        continue  # created meanwhile (a copier's first result): merge into it
                    raise
                return TableSync("created", tuple(columns), index="created with the table")
            merged = merge_table(declared, existing)
            names = tuple(c["Name"] for c in merged["StorageDescriptor"]["Columns"])
            undeclared = undeclared_columns(declared, merged)
            if is_current(merged, existing):
                return TableSync("unchanged", names, undeclared, self.ensure_partition_index(table))
            kwargs: dict[str, Any] = {"DatabaseName": self.database, "TableInput": merged}
            if existing.get("VersionId"):
                kwargs["VersionId"] = existing["VersionId"]
            try:
                self._glue.update_table(**kwargs)
            except ClientError as exc:
                if _code(exc) in ("ConcurrentModificationException", "EntityNotFoundException"):
                    continue  # changed or dropped meanwhile: read it again
                raise
            return TableSync("updated", names, undeclared, self.ensure_partition_index(table))
        raise ExportlakeError(f"table {table} kept changing while its declared definition was merged into it")

    def ensure_partition_index(self, table: str) -> str:
        """Add the ``created_date`` partition index to an existing table unless it has it; say what was done.

        Idempotent: an index of that name already there (or created meanwhile) is left. Glue builds the index over
        the existing partitions in the background (CREATING, then ACTIVE); queries work throughout. A table
        already holding Glue's maximum of indexes keeps them: reported, not failed (the deploy must not stop).
        """
        name = validate_table_name(table)
        kwargs: dict[str, Any] = {"DatabaseName": self.database, "TableName": name}
        while True:
            page = self._glue.get_partition_indexes(**kwargs)
            if any(i.get("IndexName") == PARTITION_INDEX_NAME for i in page.get("PartitionIndexDescriptorList", [])):
                return "present"
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        try:
            self._glue.create_partition_index(
                DatabaseName=self.database, TableName=name, PartitionIndex=partition_index()
            )
        except ClientError as exc:
            code = _code(exc)
            if code == "AlreadyExistsException":
                return "present"
            if code in ("ResourceNumberLimitExceededException", "ConcurrentModificationException"):
                return f"not added ({code}): add it by hand, see docs/analytics.md"
            raise
        return "added"

    def ensure_latest_table(self) -> bool:
        """Create ``latest_results`` (the newest result of each export) unless it exists; True if created."""
        try:
            self._glue.create_table(DatabaseName=self.database, TableInput=latest_table_input(self._bucket))
        except ClientError as exc:
            if _code(exc) == "AlreadyExistsException":
                return False
            raise
        return True

    def drop_table(self, table: str) -> bool:
        """Delete a table (and its partitions' registrations, not their data); False if it did not exist."""
        try:
            self._glue.delete_table(DatabaseName=self.database, Name=validate_table_name(table))
        except ClientError as exc:
            if _code(exc) == "EntityNotFoundException":
                return False
            raise
        return True

    def _table(self, table: str) -> dict[str, Any] | None:
        try:
            resp = self._glue.get_table(DatabaseName=self.database, Name=validate_table_name(table))
        except ClientError as exc:
            if _code(exc) == "EntityNotFoundException":
                return None
            raise
        found: dict[str, Any] = resp["Table"]
        return found

    def add_columns(self, table: str, new_columns: Sequence[str]) -> list[str]:
        """Append columns to a table (Parquet is read by name, so older partitions read them as NULL).

        Optimistic: the update names the version it read, so two copiers adding different columns at once do
        not overwrite each other; the loser reads again and retries.
        """
        for _ in range(5):
            resp = self._glue.get_table(DatabaseName=self.database, Name=validate_table_name(table))
            current = resp["Table"]
            existing = [c["Name"] for c in current["StorageDescriptor"].get("Columns", [])]
            merged = existing + [c for c in new_columns if c not in existing]
            if merged == existing:
                return existing
            update = table_input(table, merged, self._bucket, current.get("Description", ""))
            # Keep what the table already says about itself (e.g. parameters set by the CDK stack).
            update["Parameters"] = {**current.get("Parameters", {}), **update["Parameters"]}
            update["StorageDescriptor"]["Location"] = current["StorageDescriptor"].get(
                "Location", update["StorageDescriptor"]["Location"]
            )
            kwargs: dict[str, Any] = {"DatabaseName": self.database, "TableInput": update}
            if current.get("VersionId"):
                kwargs["VersionId"] = current["VersionId"]
            try:
                self._glue.update_table(**kwargs)
            except ClientError as exc:
                if _code(exc) == "ConcurrentModificationException":
                    continue
                raise
            return merged
        raise ExportlakeError(f"table {table} kept changing while columns {list(new_columns)} were added")

    def partition_exists(self, table: str, values: Sequence[str]) -> bool:
        """True if the partition with ``values`` is registered."""
        try:
            self._glue.get_partition(
                DatabaseName=self.database, TableName=validate_table_name(table), PartitionValues=list(values)
            )
        except ClientError as exc:
            if _code(exc) == "EntityNotFoundException":
                return False
            raise
        return True

    def register_partition(self, table: str, values: Sequence[str], location: str, columns: Sequence[str]) -> bool:
        """Register one partition; True if created, False if it already existed (both are success)."""
        resp = self._glue.batch_create_partition(
            DatabaseName=self.database,
            TableName=validate_table_name(table),
            PartitionInputList=[
                {"Values": list(values), "StorageDescriptor": storage_descriptor(columns, location)},
            ],
        )
        for error in resp.get("Errors", []):
            code = error.get("ErrorDetail", {}).get("ErrorCode", "")
            if code == "AlreadyExistsException":
                return False
            raise ExportlakeError(f"Glue refused partition {values} of {table}: {error.get('ErrorDetail')}")
        return True

    def partition_values(self, table: str) -> list[list[str]]:
        """The values of every partition of a table whose keys are the raw tables' (others are skipped)."""
        out: list[list[str]] = []
        for page in self._glue.get_paginator("get_partitions").paginate(
            DatabaseName=self.database, TableName=validate_table_name(table), ExcludeColumnSchema=True
        ):
            out.extend(list(p["Values"]) for p in page.get("Partitions", []) if len(p.get("Values", [])) == 3)
        return out

    def partitions(self, table: str) -> list[dict[str, Any]]:
        """Every partition of a table (values and location)."""
        out: list[dict[str, Any]] = []
        for page in self._glue.get_paginator("get_partitions").paginate(
            DatabaseName=self.database, TableName=validate_table_name(table)
        ):
            out.extend(page.get("Partitions", []))
        return out


class InvocationCatalog:
    """The ``Catalog`` for one copier invocation: each table's columns read once (GetTable), then kept current by
    this invocation's own changes. Another copier's concurrent change is seen as without it: at the next read of a
    later invocation, or when this one adds columns (``add_columns`` reads the table again and merges)."""

    def __init__(self, catalog: GlueCatalog):
        self._catalog = catalog
        self.database = catalog.database
        self._columns: dict[str, list[str] | None] = {}

    def columns(self, table: str) -> list[str] | None:
        """The table's columns, read once per invocation (None: no such table)."""
        if table not in self._columns or self._columns[table] is None:
            self._columns[table] = self._catalog.columns(table)
        found = self._columns[table]
        return None if found is None else list(found)

    def create_table(self, table: str, columns: Sequence[str], description: str = "") -> None:
        """Create the table (the next ``columns`` reads it back: another copier may have made it first)."""
        self._catalog.create_table(table, columns, description)
        self._columns.pop(table, None)

    def add_columns(self, table: str, new_columns: Sequence[str]) -> list[str]:
        """Add columns; the merged list is what this invocation knows from now on."""
        merged = self._catalog.add_columns(table, new_columns)
        self._columns[table] = list(merged)
        return merged

    def partition_exists(self, table: str, values: Sequence[str]) -> bool:
        """As ``GlueCatalog.partition_exists``."""
        return self._catalog.partition_exists(table, values)

    def register_partition(self, table: str, values: Sequence[str], location: str, columns: Sequence[str]) -> bool:
        """As ``GlueCatalog.register_partition``."""
        return self._catalog.register_partition(table, values, location, columns)
