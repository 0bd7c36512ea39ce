"""Validation of everything from the API that becomes a key, a name or SQL, and the lake's S3 layout."""

from __future__ import annotations

import re
from datetime import datetime

from exportlake.domain.errors import ValidationError
from exportlake.domain.schemas import LATEST_TABLE, MANIFESTS_PREFIX, RAW_PREFIX, TABLES_PREFIX, is_valid_name
from exportlake.domain.timefmt import parse_time

# system_name as the API shows it ("win-info"); it becomes an S3 key segment, a partition value and a URL path
# segment, so only a conservative alphabet passes.
_EXPORT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")
# The documented ids are 25 lowercase alphanumerics; accept any plain alphanumeric id up to 64 characters.
_RESULT_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")


def validate_export_name(value: object) -> str:
    """Return ``value`` if it is a safe export system name, else raise ``ValidationError``."""
    if not isinstance(value, str) or not _EXPORT_NAME.fullmatch(value):
        raise ValidationError(f"export name {value!r} is not valid (lowercase letters, digits, '-', '_')")
    return value


def validate_result_id(value: object) -> str:
    """Return ``value`` if it is a safe result id, else raise ``ValidationError``."""
    if not isinstance(value, str) or not _RESULT_ID.fullmatch(value):
        raise ValidationError(f"result id {value!r} is not valid (letters and digits, at most 64)")
    return value


def validate_table_name(value: object) -> str:
    """The document's top-level key as a table name; raise ``ValidationError`` if unsafe."""
    if not isinstance(value, str) or not is_valid_name(value):
        raise ValidationError(f"export key {value!r} cannot name a table (lowercase letters, digits, '_')")
    if value == LATEST_TABLE:
        raise ValidationError(f"export key {value!r} cannot name a table: it is the lake's latest-result table")
    return value


def validate_column_name(value: object) -> str:
    """A record field as a column name; raise ``ValidationError`` if unsafe."""
    if not isinstance(value, str) or not is_valid_name(value):
        raise ValidationError(f"record field {value!r} cannot name a column (lowercase letters, digits, '_')")
    return value


def parse_timestamp(value: object, what: str = "timestamp") -> datetime:
    """Parse an ISO 8601 timestamp from the API; naive values are taken as UTC."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} {value!r} is not a timestamp string")
    parsed = parse_time(value)
    if parsed is None:
        raise ValidationError(f"{what} {value!r} is not an ISO 8601 timestamp")
    return parsed


def table_location(bucket: str, table: str) -> str:
    """The S3 location of a table (all its partitions live below it)."""
    return f"s3://{bucket}/{TABLES_PREFIX}/{validate_table_name(table)}/"


def partition_values(export_name: str, created_date: str, result_id: str) -> list[str]:
    """The partition values of one result, in ``PARTITION_KEYS`` order."""
    return [validate_export_name(export_name), created_date, validate_result_id(result_id)]


def partition_prefix(table: str, export_name: str, created_date: str, result_id: str) -> str:
    """The S3 key prefix (no bucket) of one result's Parquet parts, Hive style."""
    name, day, rid = partition_values(export_name, created_date, result_id)
    return f"{TABLES_PREFIX}/{validate_table_name(table)}/export_name={name}/created_date={day}/result_id={rid}/"


def part_key(prefix: str, index: int) -> str:
    """The key of the ``index``-th Parquet part below ``prefix``."""
    return f"{prefix}part-{index:05d}.parquet"


def raw_key(export_name: str, result_id: str) -> str:
    """The key of a result's raw original (gzip), outside every table location."""
    return f"{RAW_PREFIX}/{validate_export_name(export_name)}/{validate_result_id(result_id)}.json.gz"


def manifest_key(export_name: str, result_id: str) -> str:
    """The key of a result's manifest, outside every table location."""
    return f"{MANIFESTS_PREFIX}/{validate_export_name(export_name)}/{validate_result_id(result_id)}.json"
