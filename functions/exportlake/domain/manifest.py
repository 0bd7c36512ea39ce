"""A result's manifest: what one copy wrote, stored beside the lake and validated when read back. Stdlib only.

Written after every part and the raw original exist and before the partition is registered, it is the record a
re-run resumes from (a crash after it only needs the catalog and ledger steps) and what ``verify`` checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exportlake.domain.errors import DocumentError, ValidationError
from exportlake.domain.location import ResultLocation
from exportlake.domain.models import SchemaDiff
from exportlake.domain.naming import (
    parse_timestamp,
    validate_column_name,
    validate_export_name,
    validate_result_id,
)
from exportlake.domain.timefmt import to_text

VERSION = 1


@dataclass(frozen=True)
class ManifestPart:
    """One Parquet part: its key, rows, bytes and columns."""

    key: str
    rows: int
    bytes: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class RawOriginal:
    """The gzip original of the downloaded document."""

    key: str
    json_bytes: int
    sha256: str
    gzip_bytes: int


@dataclass(frozen=True)
class Erasure:
    """What erasure did to a result: rows removed on request and by the suppression list, and, once an erasure
    rewrote a copied result, the figures the ledger recorded for the copy (``verify`` compares those)."""

    rows_removed: int = 0
    suppressed: int = 0
    #: (rows, json_bytes, location) as copied; None while the ledger's figures are the manifest's own.
    copied: tuple[int, int, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """For the manifest's JSON."""
        copied = None
        if self.copied is not None:
            copied = {"rows": self.copied[0], "json_bytes": self.copied[1], "location": self.copied[2]}
        return {"rows_removed": self.rows_removed, "suppressed": self.suppressed, "copied": copied}


@dataclass(frozen=True)
class Manifest:
    """What one copy of one result wrote."""

    export_name: str
    result_id: str
    created_at: datetime
    table: str
    columns: tuple[str, ...]
    rows: int
    location: str
    raw: RawOriginal
    parts: tuple[ManifestPart, ...] = ()
    schema_diff: SchemaDiff = field(default_factory=SchemaDiff)
    copied_at: str = ""
    version: int = VERSION
    #: 0 as copied; each rewrite without erased persons is the next generation (``domain.erasure``).
    generation: int = 0
    #: The result's id index (``domain.erasure``): "" for a result copied before there were indexes.
    index_key: str = ""
    erasure: Erasure = field(default_factory=Erasure)

    @property
    def place(self) -> ResultLocation:
        """The result's location, from the manifest's own table and ``created_at`` (a re-queued job may differ)."""
        return ResultLocation.of(self.table, self.export_name, self.created_at, self.result_id, self.generation)

    def to_json(self) -> bytes:
        """Serialize (stable key order, one line per key)."""
        doc = {
            "version": self.version,
            "export_name": self.export_name,
            "result_id": self.result_id,
            "created_at": to_text(self.created_at),
            "table": self.table,
            "columns": list(self.columns),
            "rows": self.rows,
            "location": self.location,
            "raw": {
                "key": self.raw.key,
                "json_bytes": self.raw.json_bytes,
                "sha256": self.raw.sha256,
                "gzip_bytes": self.raw.gzip_bytes,
            },
            "parts": [{"key": p.key, "rows": p.rows, "bytes": p.bytes, "columns": list(p.columns)} for p in self.parts],
            "schema_diff": {"added": list(self.schema_diff.added), "missing": list(self.schema_diff.missing)},
            "copied_at": self.copied_at,
        }
        if self.index_key:
            doc["index_key"] = self.index_key
        if self.generation or self.erasure != Erasure():
            doc["generation"] = self.generation
            doc["erasure"] = self.erasure.as_dict()
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def from_json(cls, body: bytes, *, export_name: str, result_id: str) -> Manifest:
        """Parse and validate a stored manifest of ``result_id``; raise ``DocumentError`` if it is not one."""
        try:
            doc = json.loads(body)
            if not isinstance(doc, dict):
                raise DocumentError("not a JSON object")
            if doc.get("version") != VERSION:
                raise DocumentError(f"version {doc.get('version')!r} is not {VERSION}")
            if doc.get("result_id") != result_id or doc.get("export_name") != export_name:
                raise DocumentError("it names another result")
            raw = _obj(doc, "raw")
            manifest = cls(
                export_name=validate_export_name(doc["export_name"]),
                result_id=validate_result_id(doc["result_id"]),
                created_at=parse_timestamp(doc.get("created_at"), "manifest created_at"),
                table=str(doc.get("table")),
                columns=tuple(validate_column_name(c) for c in _list(doc, "columns")),
                rows=_int(doc, "rows"),
                location=str(doc.get("location", "")),
                raw=RawOriginal(
                    key=str(raw.get("key", "")),
                    json_bytes=_int(raw, "json_bytes"),
                    sha256=str(raw.get("sha256", "")),
                    gzip_bytes=_int(raw, "gzip_bytes"),
                ),
                parts=tuple(
                    ManifestPart(
                        key=str(p.get("key", "")),
                        rows=_int(p, "rows"),
                        bytes=_int(p, "bytes"),
                        columns=tuple(validate_column_name(c) for c in _list(p, "columns")),
                    )
                    for p in (_as_obj(x) for x in _list(doc, "parts"))
                ),
                schema_diff=SchemaDiff(
                    added=tuple(str(c) for c in _list(_obj(doc, "schema_diff"), "added")),
                    missing=tuple(str(c) for c in _list(_obj(doc, "schema_diff"), "missing")),
                ),
                copied_at=str(doc.get("copied_at", "")),
                generation=_int(doc, "generation") if "generation" in doc else 0,
                index_key=str(doc.get("index_key", "")),
                erasure=_erasure(_obj(doc, "erasure")),
            )
            place = manifest.place  # validates the table name
            if any(not p.key.startswith(place.prefix) for p in manifest.parts):
                raise DocumentError("a part lies outside the result's partition")
            if sum(p.rows for p in manifest.parts) != manifest.rows:
                raise DocumentError("its parts' rows do not add up")
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise DocumentError(f"manifest of {result_id} is not valid: {exc}") from None
        except DocumentError as exc:
            raise DocumentError(f"manifest of {result_id} is not valid: {exc}") from None
        return manifest


def _erasure(doc: dict[str, Any]) -> Erasure:
    copied = doc.get("copied")
    return Erasure(
        rows_removed=_int(doc, "rows_removed") if "rows_removed" in doc else 0,
        suppressed=_int(doc, "suppressed") if "suppressed" in doc else 0,
        copied=None
        if not isinstance(copied, dict)
        else (_int(copied, "rows"), _int(copied, "json_bytes"), str(copied.get("location", ""))),
    )


def _as_obj(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{value!r} is not an object")
    return value


def _obj(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return _as_obj(doc.get(name, {}))


def _list(doc: dict[str, Any], name: str) -> list[Any]:
    value = doc.get(name, [])
    if not isinstance(value, list):
        raise TypeError(f"{name} is not a list")
    return value


def _int(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{name} {value!r} is not a count")
    return value
