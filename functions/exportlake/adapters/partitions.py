"""One result's Glue partition: where it points, and moving it to a new generation in one call."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from exportlake.domain.naming import validate_table_name
from exportlake.domain.schemas import LATEST_TABLE

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class GluePartitions:
    """``domain.erasing.PartitionCatalog`` on one Glue database."""

    def __init__(self, glue_client: Any, database: str) -> None:
        self._glue = glue_client
        self.database = database

    def _get(self, table: str, values: Sequence[str]) -> dict[str, Any] | None:
        try:
            resp = self._glue.get_partition(
                DatabaseName=self.database, TableName=validate_table_name(table), PartitionValues=list(values)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
                return None
            raise
        found: dict[str, Any] = resp["Partition"]
        return found

    def partition_location(self, table: str, values: Sequence[str]) -> str | None:
        """The partition's S3 location, or None if it is not registered."""
        found = self._get(table, values)
        return None if found is None else str(found.get("StorageDescriptor", {}).get("Location", ""))

    def move_partition(self, table: str, values: Sequence[str], location: str) -> None:
        """Point the partition at ``location``, keeping its columns and formats (UpdatePartition: one atomic call)."""
        found = self._get(table, values)
        if found is None:
            return  # not registered (yet): its copier registers it at the manifest's location
        descriptor = dict(found["StorageDescriptor"])
        descriptor["Location"] = location
        partition: dict[str, Any] = {"Values": list(values), "StorageDescriptor": descriptor}
        if found.get("Parameters"):
            partition["Parameters"] = found["Parameters"]
        self._glue.update_partition(
            DatabaseName=self.database,
            TableName=validate_table_name(table),
            PartitionValueList=list(values),
            PartitionInput=partition,
        )

    def tables(self) -> list[str]:
        """Every export table of the database (views and the latest-result pointer table aside)."""
        names: list[str] = []
        for page in self._glue.get_paginator("get_tables").paginate(DatabaseName=self.database):
            names.extend(
                t["Name"]
                for t in page.get("TableList", [])
                if t.get("TableType") == "EXTERNAL_TABLE" and t["Name"] != LATEST_TABLE
            )
        return names

    def older_than(self, table: str, day: str) -> list[tuple[list[str], str]]:
        """(values, location) of the partitions created before ``day`` (Glue filters them: the cost is theirs)."""
        if not _DAY.fullmatch(day):
            raise ValueError(f"{day!r} is not a YYYY-MM-DD day")
        out: list[tuple[list[str], str]] = []
        for page in self._glue.get_paginator("get_partitions").paginate(
            DatabaseName=self.database,
            TableName=validate_table_name(table),
            Expression=f"created_date < '{day}'",
        ):
            for p in page.get("Partitions", []):
                out.append((list(p["Values"]), str(p.get("StorageDescriptor", {}).get("Location", ""))))
        return out

    def drop_partition(self, table: str, values: Sequence[str]) -> None:
        """Deregister one partition (Athena stops reading it at once); gone already is fine."""
        try:
            self._glue.delete_partition(
                DatabaseName=self.database, TableName=validate_table_name(table), PartitionValues=list(values)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "EntityNotFoundException":
                raise
