"""A declared Glue table definition merged into the table as it exists, so that no deploy hides a column.

The stack declares each raw table (columns from the schema registry); the runtime adds columns when results bring
new fields. Whoever writes the table next (the deploy-time custom resource, ``exportlake provision``) merges:

- the declared columns first, in declared order, with the declared type (a declared column's type always wins);
- then every existing column that is not declared, in its existing order, exactly as it is;
- nothing is ever dropped: a column leaves a table only by hand.

Everything else (table type, parameters, partition keys, storage descriptor) is the one table definition the
runtime writes; the existing table's own parameters are kept beside the declared ones. Stdlib only: the Glue
calls are the catalog adapter's.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exportlake.domain.errors import ExportlakeError, ValidationError

#: The keys a Glue ``Column`` may carry in a ``TableInput``.
COLUMN_KEYS = ("Name", "Type", "Comment", "Parameters")
#: What an existing table says about itself that the declared definition does not, kept through a merge.
KEPT_FROM_EXISTING = ("Owner", "Retention")


class DefinitionConflict(ExportlakeError):
    """The existing table cannot take the declared definition without losing what it holds (no change was made)."""


@dataclass(frozen=True)
class TableSync:
    """What reconciling one table did: ``created``, ``updated`` or ``unchanged``, and its columns afterwards."""

    action: str
    columns: tuple[str, ...]
    #: Existing columns the declaration does not name (added by the runtime), kept after the declared ones.
    undeclared: tuple[str, ...] = ()
    #: What became of the table's ``created_date`` partition index (``added``, ``present``, …; "" if not asked).
    index: str = ""


def _column(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(raw[k]) for k in COLUMN_KEYS if k in raw}


def _names(columns: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(c["Name"]) for c in columns]


def merge_columns(declared: Sequence[Mapping[str, Any]], existing: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Declared columns in declared order (declared type wins), then the existing undeclared ones in their order.

    An existing column's comment and parameters stay on it when the declaration gives none. Raises
    ``ValidationError`` if the declaration names a column twice.
    """
    names = _names(declared)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValidationError(f"columns declared more than once: {', '.join(twice)}")
    before = {str(c["Name"]): c for c in existing}
    merged: list[dict[str, Any]] = []
    for raw in declared:
        column = _column(raw)
        old = before.get(column["Name"])
        for key in ("Comment", "Parameters"):
            if old is not None and key in old and key not in column:
                column[key] = copy.deepcopy(old[key])
        merged.append(column)
    merged += [_column(c) for c in existing if str(c["Name"]) not in set(names)]
    return merged


def merge_table(declared: Mapping[str, Any], existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``TableInput`` to write: ``declared`` itself for a missing table, else declared merged into existing.

    Raises ``DefinitionConflict`` when the existing table is of another type (e.g. a view of that name) or is
    partitioned by other keys: changing either would cut the table off from its partitions, so no merge may.
    """
    if existing is None:
        return copy.deepcopy(dict(declared))
    name = declared.get("Name", "?")
    kind, old_kind = declared.get("TableType"), existing.get("TableType")
    if old_kind and kind and old_kind != kind:
        raise DefinitionConflict(f"table {name} exists as {old_kind}, not {kind}: left as it is")
    keys, old_keys = _names(declared.get("PartitionKeys", [])), _names(existing.get("PartitionKeys", []))
    if old_keys != keys:
        raise DefinitionConflict(
            f"table {name} is partitioned by {old_keys}, the stack declares {keys}: left as it is "
            "(its partitions would no longer match)"
        )
    merged = copy.deepcopy(dict(declared))
    merged["Parameters"] = {**existing.get("Parameters", {}), **declared.get("Parameters", {})}
    for key in KEPT_FROM_EXISTING:
        if key in existing and key not in merged:
            merged[key] = copy.deepcopy(existing[key])
    sd = merged.setdefault("StorageDescriptor", {})
    sd["Columns"] = merge_columns(
        declared.get("StorageDescriptor", {}).get("Columns", []),
        existing.get("StorageDescriptor", {}).get("Columns", []),
    )
    return merged


def _project(existing: Any, wanted: Any) -> Any:
    """``existing`` cut down to the shape of ``wanted`` (keys ``wanted`` has; lists element by element)."""
    if isinstance(wanted, Mapping) and isinstance(existing, Mapping):
        return {k: _project(existing[k], v) for k, v in wanted.items() if k in existing}
    if isinstance(wanted, list) and isinstance(existing, list) and len(wanted) == len(existing):
        return [_project(e, w) for e, w in zip(existing, wanted, strict=True)]
    return existing


def is_current(merged: Mapping[str, Any], existing: Mapping[str, Any]) -> bool:
    """True if the existing table already says everything ``merged`` says (writing it would change nothing)."""
    return _project(existing, merged) == merged


def undeclared_columns(declared: Mapping[str, Any], merged: Mapping[str, Any]) -> tuple[str, ...]:
    """The merged table's columns the declaration does not name (in table order)."""
    names = set(_names(declared.get("StorageDescriptor", {}).get("Columns", [])))
    return tuple(n for n in _names(merged.get("StorageDescriptor", {}).get("Columns", [])) if n not in names)


def fingerprint(declared: Mapping[str, Any]) -> str:
    """A stable hash of a declared ``TableInput``: equal definitions, equal fingerprints.

    The storage location is left out: it follows the lake bucket, which the deploy-time resource carries as a
    property of its own (at synth time the bucket name is not known yet).
    """
    definition = copy.deepcopy(dict(declared))
    definition.get("StorageDescriptor", {}).pop("Location", None)
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()
