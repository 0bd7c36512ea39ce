"""The deploy-time resource that owns a raw Glue table's existence and declared columns, never its whole list.

The CDK stack declares one ``Custom::ExportlakeTable`` per export type of the schema registry; CloudFormation sends
it Create, Update and Delete requests, which ``handle`` answers through a ``TableCatalog``:

- Create / Update: create the table if it is missing, else merge the declaration into it
  (``exportlake.domain.tablemerge``: declared columns first, then every column the runtime added; none dropped).
  An existing table is adopted, not replaced. Either way the table ends with its ``created_date`` partition index
  (created with the table, or added to an existing one; idempotent).
- Delete: the resource's removal policy decides. ``retain`` leaves the table; ``destroy`` deletes it; a table that
  is already gone is not an error.

Why one resource per table, not one for all:

- CloudFormation updates a resource only when its properties change, so a registry change touches exactly the
  tables whose declaration changed; the other tables get no request at all, and a redeploy with no change sends
  none (the properties carry the declaration's fingerprint, so any change of it is an Update).
- An Update request carries the new properties and the old ones, and a rollback is an Update with the two swapped.
  Per table, neither needs a diff of table lists: the handler merges what it is given, and since a merge never
  drops a column, applying the old declaration on rollback loses nothing. A single resource for all tables would
  have to create and delete tables inside an Update; a table it deleted there would come back on rollback without
  its partitions or the columns the runtime had added.
- A table that leaves the stack (an export type removed or renamed) is a resource that leaves the template, so
  CloudFormation sends its Delete in the cleanup after a successful update, which is never rolled back: the old
  table is deleted (``destroy``) or deliberately kept with its partitions (``retain``), never left behind
  unowned by a half-done change. The physical id names the table (``<database>/<table>``); were an Update ever to
  name another table, the new id makes CloudFormation delete the old one in that same cleanup.
- A failure names the one table that failed (its reason is the resource's status reason) and the other tables'
  requests are unaffected.

Stdlib only; the Glue calls are the catalog adapter's, the response to CloudFormation the handler's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from exportlake.domain.errors import ValidationError
from exportlake.domain.ports import TableCatalog
from exportlake.domain.schemas import is_valid_name

#: The CloudFormation type of the resource (``Custom::`` + a name of ours).
RESOURCE_TYPE = "Custom::ExportlakeTable"
#: The physical id of a resource whose Create failed: its rollback Delete then leaves every table alone (the failed
#: Create may have met a table it did not make).
FAILED_CREATE = "create-failed:"  # the handler's answer writes it (exportlake.adapters.cfnresponse, stdlib-only)
#: Glue's limit on a table description.
MAX_DESCRIPTION = 2048
#: Longest status reason sent back (the whole response must stay under CloudFormation's 4 KB).
MAX_REASON = 1000

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_PHYSICAL_ID = re.compile(r"^(?P<database>[a-z][a-z0-9_]{0,127})/(?P<table>[a-z][a-z0-9_]{0,127})$")


class RemovalPolicy(StrEnum):
    """What deleting the resource does to its table (the stack's ``retainData``)."""

    RETAIN = "retain"
    DESTROY = "destroy"


def physical_id(database: str, table: str) -> str:
    """The resource's physical id: the table it owns."""
    return f"{database}/{table}"


def parse_physical_id(value: object) -> tuple[str, str] | None:
    """``(database, table)`` of a physical id, or ``None`` if it names no table (e.g. a failed Create's)."""
    match = _PHYSICAL_ID.fullmatch(value) if isinstance(value, str) else None
    return (match["database"], match["table"]) if match else None


def _text(props: Mapping[str, Any], key: str) -> str:
    value = props.get(key)
    if not isinstance(value, str):
        raise ValidationError(f"property {key} must be a string, got {value!r}")
    return value


@dataclass(frozen=True)
class TableDeclaration:
    """One raw table as the stack declares it: the resource's properties."""

    database: str
    table: str
    bucket: str
    columns: tuple[str, ...]
    description: str
    fingerprint: str
    removal: RemovalPolicy

    @property
    def physical_id(self) -> str:
        """The table this declaration owns."""
        return physical_id(self.database, self.table)

    def properties(self) -> dict[str, Any]:
        """The resource's properties in the template (``bucket`` may be a CDK token here)."""
        return {
            "DatabaseName": self.database,
            "TableName": self.table,
            "Bucket": self.bucket,
            "Columns": list(self.columns),
            "Description": self.description,
            "Fingerprint": self.fingerprint,
            "RemovalPolicy": self.removal.value,
        }

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> TableDeclaration:
        """Validate a request's properties; ``ValidationError`` names the first bad one."""
        database, table, bucket = _text(props, "DatabaseName"), _text(props, "TableName"), _text(props, "Bucket")
        for key, name in (("DatabaseName", database), ("TableName", table)):
            if not is_valid_name(name):
                raise ValidationError(f"property {key}={name!r} is not a valid Glue name (lowercase, digits, '_')")
        if not _BUCKET.fullmatch(bucket):
            raise ValidationError(f"property Bucket={bucket!r} is not a bucket name")
        columns = props.get("Columns")
        if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
            raise ValidationError(f"property Columns must be a non-empty list of names, got {columns!r}")
        bad = [c for c in columns if not is_valid_name(c)]
        if bad:
            raise ValidationError(f"property Columns holds invalid column names: {bad}")
        description = _text(props, "Description")
        if len(description) > MAX_DESCRIPTION:
            raise ValidationError(f"property Description is longer than {MAX_DESCRIPTION} characters")
        fingerprint = _text(props, "Fingerprint")
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise ValidationError(f"property Fingerprint={fingerprint!r} is not a SHA-256 hex digest")
        return cls(
            database, table, bucket, tuple(columns), description, fingerprint, removal_policy_of(props, strict=True)
        )


def removal_policy_of(props: Mapping[str, Any], *, strict: bool = False) -> RemovalPolicy:
    """The properties' removal policy; unreadable ones are ``retain`` unless ``strict`` (deleting must not guess)."""
    try:
        return RemovalPolicy(str(props.get("RemovalPolicy")))
    except ValueError:
        if strict:
            raise ValidationError(
                f"property RemovalPolicy={props.get('RemovalPolicy')!r} must be 'retain' or 'destroy'"
            ) from None
        return RemovalPolicy.RETAIN


@dataclass(frozen=True)
class Outcome:
    """A request that succeeded: the physical id to report, the resource's attributes, what was done."""

    physical_id: str
    data: dict[str, str]
    summary: str


#: ``(database, bucket) → TableCatalog`` (the resource's properties name both).
CatalogFor = Callable[[str, str], TableCatalog]
#: ``(database, bucket) → (table → latest-result pointers written)``: the upgrade backfill of ``domain.latest``.
BackfillFor = Callable[[str, str], Callable[[str], int]]


def handle(event: Mapping[str, Any], catalog_for: CatalogFor, backfill_for: BackfillFor | None = None) -> Outcome:
    """Answer one CloudFormation request; raises (to be reported as FAILED) on any problem.

    With ``backfill_for``, a Create or Update also gives every export of the table that has no latest-result pointer
    one (a lake copied before pointers existed); a failure there is reported in the summary, never fails the deploy
    (each export's pointer also comes with its next copied result).
    """
    kind = event.get("RequestType")
    if kind in ("Create", "Update"):
        declared = TableDeclaration.from_properties(event.get("ResourceProperties") or {})
        sync = catalog_for(declared.database, declared.bucket).ensure_table(
            declared.table, declared.columns, declared.description
        )
        summary = f"table {declared.physical_id} {sync.action}: {len(sync.columns)} columns"
        if sync.undeclared:
            summary += f", kept undeclared {', '.join(sync.undeclared)}"
        if sync.index:
            summary += f", partition index {sync.index}"
        backfilled = ""
        if backfill_for is not None:
            try:
                backfilled = str(backfill_for(declared.database, declared.bucket)(declared.table))
                summary += f", {backfilled} latest-result pointers backfilled"
            except Exception as exc:  # reported, not fatal: the next result writes the pointer
                summary += f", latest-result backfill skipped ({type(exc).__name__}: {exc})"
        previous = event.get("PhysicalResourceId")
        if kind == "Update" and previous and previous != declared.physical_id:
            summary += f"; {previous} is now deleted or retained by CloudFormation per its removal policy"
        data = {
            "TableName": declared.table,
            "Action": sync.action,
            "Columns": str(len(sync.columns)),
            "UndeclaredColumns": ",".join(sync.undeclared)[:MAX_REASON],
            "PartitionIndex": sync.index[:MAX_REASON],
            "PointersBackfilled": backfilled,
        }
        return Outcome(declared.physical_id, data, summary)
    if kind == "Delete":
        current = str(event.get("PhysicalResourceId") or "")
        target = parse_physical_id(current)
        if target is None:
            return Outcome(current, {}, f"{current or 'resource'} names no table: nothing to delete")
        removal = removal_policy_of(event.get("ResourceProperties") or {})
        if removal is RemovalPolicy.RETAIN:
            return Outcome(current, {}, f"table {current} retained (removal policy retain)")
        database, table = target
        dropped = catalog_for(database, "").drop_table(table)
        return Outcome(current, {}, f"table {current} {'deleted' if dropped else 'was already gone'}")
    raise ValidationError(f"unknown RequestType {kind!r}")
