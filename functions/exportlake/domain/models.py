"""Domain values: exports, results, copy jobs and ledger states. Stdlib only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from exportlake.domain.errors import ValidationError
from exportlake.domain.naming import parse_timestamp, validate_export_name, validate_result_id
from exportlake.domain.timefmt import day_of, to_text


class ResultState(StrEnum):
    """Where a result stands in the ledger."""

    QUEUED = "queued"
    COPYING = "copying"
    COPIED = "copied"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True, order=True)
class ResultRef:
    """One result of one export, as the gateway lists it (validated)."""

    created_at: datetime
    export_name: str
    result_id: str
    expires_at: datetime | None = None

    @classmethod
    def from_api(cls, export_name: str, item: object) -> ResultRef:
        """Build from a ``{"id", "created_at", "expires_at"}`` item; raise ``ValidationError`` if malformed."""
        if not isinstance(item, dict):
            raise ValidationError(f"result of export {export_name!r} is not an object: {type(item).__name__}")
        expires = item.get("expires_at")
        return cls(
            created_at=parse_timestamp(item.get("created_at"), "created_at"),
            export_name=validate_export_name(export_name),
            result_id=validate_result_id(item.get("id")),
            expires_at=None if expires is None else parse_timestamp(expires, "expires_at"),
        )

    def is_expired(self, now: datetime) -> bool:
        """True once the gateway no longer serves this result."""
        return self.expires_at is not None and self.expires_at <= now

    @property
    def created_date(self) -> str:
        """The UTC day the result was created, the middle partition value."""
        return day_of(self.created_at)


@dataclass(frozen=True)
class Export:
    """An automated export and its newest result (``None`` if it never ran)."""

    id: str
    system_name: str
    last_run: ResultRef | None
    #: Why ``last_run`` was dropped, if it failed validation (the export's results are still listed).
    last_run_error: str = ""

    @classmethod
    def from_api(cls, item: object) -> Export:
        """Build from one element of ``GET /automated``; raise ``ValidationError`` if its name is not valid.

        A ``last_run`` that fails validation does not sink the export: it is dropped and named in
        ``last_run_error``, and the planner still lists the export's results.
        """
        if not isinstance(item, dict):
            raise ValidationError(f"export entry is not an object: {type(item).__name__}")
        name = validate_export_name(item.get("system_name"))
        last = item.get("last_run")
        ref: ResultRef | None = None
        error = ""
        if last is not None:
            try:
                ref = ResultRef.from_api(name, last)
            except ValidationError as exc:
                error = str(exc)
        return cls(id=str(item.get("id", "")), system_name=name, last_run=ref, last_run_error=error)


@dataclass(frozen=True)
class CopyJob:
    """The message the planner puts on the queue: copy one result."""

    export_name: str
    result_id: str
    created_at: datetime
    expires_at: datetime | None = None

    @classmethod
    def for_result(cls, ref: ResultRef) -> CopyJob:
        """The job that copies ``ref``."""
        return cls(ref.export_name, ref.result_id, ref.created_at, ref.expires_at)

    @property
    def ref(self) -> ResultRef:
        """The result this job copies."""
        return ResultRef(self.created_at, self.export_name, self.result_id, self.expires_at)

    def to_json(self) -> str:
        """Serialize for an SQS message body."""
        return json.dumps(
            {
                "export_name": self.export_name,
                "result_id": self.result_id,
                "created_at": to_text(self.created_at),
                "expires_at": None if self.expires_at is None else to_text(self.expires_at),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, body: str) -> CopyJob:
        """Parse and validate an SQS message body; raise ``ValidationError`` if it is not a copy job."""
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ValidationError(f"copy job is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValidationError("copy job is not a JSON object")
        ref = ResultRef.from_api(
            data.get("export_name"),  # type: ignore[arg-type]
            {"id": data.get("result_id"), "created_at": data.get("created_at"), "expires_at": data.get("expires_at")},
        )
        return cls.for_result(ref)


@dataclass(frozen=True)
class SchemaDiff:
    """How a result's fields differ from its table's columns."""

    added: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True if the result carries new fields or lacks some of the table's."""
        return bool(self.added or self.missing)


@dataclass
class CopyOutcome:
    """What one copy did, for the ledger, the notification and the metrics."""

    export_name: str
    result_id: str
    table: str
    rows: int
    bytes_in: int
    location: str
    raw_key: str
    manifest_key: str
    parts: list[str] = field(default_factory=list)
    schema_diff: SchemaDiff = field(default_factory=SchemaDiff)
