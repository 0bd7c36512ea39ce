"""Where one result lives in the lake: its table, partition values and key prefix, computed once. Stdlib only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from exportlake.domain.naming import (
    manifest_key,
    part_key,
    partition_prefix,
    partition_values,
    raw_key,
    validate_table_name,
)
from exportlake.domain.timefmt import day_of


@dataclass(frozen=True)
class ResultLocation:
    """One result's place: ``lake/<table>/export_name=…/created_date=…/result_id=…/`` (validated on creation)."""

    table: str
    export_name: str
    created_date: str
    result_id: str
    prefix: str

    @classmethod
    def of(
        cls, table: str, export_name: str, created_at: datetime, result_id: str, generation: int = 0
    ) -> ResultLocation:
        """The location of result ``result_id`` of ``export_name`` created at ``created_at``, in ``table``.

        ``generation`` > 0: the result as rewritten by an erasure, at the sibling prefix ``…/result_id=R.g<n>/``
        (never below the first one: Athena reads a partition's location recursively).
        """
        day = day_of(created_at)
        prefix = partition_prefix(table, export_name, day, result_id)
        if generation:
            prefix = f"{prefix[:-1]}.g{int(generation)}/"
        return cls(
            table=validate_table_name(table),
            export_name=export_name,
            created_date=day,
            result_id=result_id,
            prefix=prefix,
        )

    @property
    def values(self) -> list[str]:
        """The partition values, in ``PARTITION_KEYS`` order."""
        return partition_values(self.export_name, self.created_date, self.result_id)

    def uri(self, bucket: str) -> str:
        """``s3://bucket/prefix``: the partition's location."""
        return f"s3://{bucket}/{self.prefix}"

    def part_key(self, index: int) -> str:
        """The key of the ``index``-th Parquet part."""
        return part_key(self.prefix, index)

    @property
    def raw_key(self) -> str:
        """The key of the raw original (outside every table location)."""
        return raw_key(self.export_name, self.result_id)

    @property
    def manifest_key(self) -> str:
        """The key of the manifest (outside every table location)."""
        return manifest_key(self.export_name, self.result_id)
