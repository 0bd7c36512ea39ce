"""Erasure vocabulary: person keys (salted hashes), the per-result id index, generations, requests. Stdlib only.

After intake no clear id is kept anywhere: a person is a *person key*, ``HMAC-SHA256(salt, column NUL value)``,
with the salt in a secret of its own (``EXPORTLAKE_PRIVACY_SALT_ID``). Each copied result carries an *id index*
(a sidecar object) of the truncated person keys of its ``userid``/``client_id`` values, so finding the results that
hold a person reads a few bytes per result instead of the lake. A rewritten result lives at a new *generation*:
sibling keys (never below the old prefix) that the manifest, then the Glue partition, are switched to.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from exportlake.domain.errors import ValidationError
from exportlake.domain.location import ResultLocation
from exportlake.domain.manifest import Manifest, ManifestPart, RawOriginal
from exportlake.domain.naming import validate_export_name, validate_result_id
from exportlake.domain.schemas import MANIFESTS_PREFIX, RAW_PREFIX

#: The record fields that name a person: ``userid`` in any table, ``client_id`` (the brand's own id).
USERID = "userid"
CLIENT_ID = "client_id"
ID_COLUMNS: tuple[str, ...] = (USERID, CLIENT_ID)
#: Where the id index sidecars live (outside every table location).
INDEX_PREFIX = "index"
#: Bytes of a random salt.
SALT_BYTES = 48
#: The most ids one request may name (a request is one person, or a handful).
MAX_IDS = 100
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")
_GEN = re.compile(r"^(?P<rid>[A-Za-z0-9]{1,64})(?:\.g(?P<g>[1-9][0-9]{0,5}))?$")


def validate_person_id(value: object, what: str = "id") -> str:
    """An id as a person gave it: 1-256 printable characters, kept exactly (no trimming)."""
    if not isinstance(value, str) or not _PRINTABLE.fullmatch(value):
        raise ValidationError(f"{what} must be 1 to 256 printable characters")
    return value


def person_key(salt: bytes, column: str, value: str) -> str:
    """The person key of ``value`` in ``column``: hex HMAC-SHA256 under the deployment's salt."""
    return hmac.digest(salt, f"{column}\0{value}".encode(), "sha256").hex()


def short_key(key: str) -> int:
    """The first 8 bytes of a person key, as the id index stores it."""
    return int(key[:16], 16)


def request_id(keys: Iterable[str]) -> str:
    """The id of an erasure request: the same persons give the same request (a repeat changes nothing)."""
    return "er" + hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()[:20]


# -- the id index -----------------------------------------------------------------------------------------------
MAGIC = b"XLIX1\n"
_HEAD = struct.Struct("<6sI")  # magic, count
_OFFSETS = struct.Struct("<257I")  # start of each first-byte bucket (in keys), and the end
HEADER_BYTES = _HEAD.size + _OFFSETS.size


def encode_index(keys: Iterable[int]) -> bytes:
    """The index object of a result: header, then its distinct 8-byte keys sorted (so bucketed by first byte)."""
    ordered = sorted(set(keys))
    offsets = [0] * 257
    for k in ordered:
        offsets[(k >> 56) + 1] += 1
    for i in range(1, 257):
        offsets[i] += offsets[i - 1]
    body = struct.pack(f">{len(ordered)}Q", *ordered)
    return _HEAD.pack(MAGIC, len(ordered)) + _OFFSETS.pack(*offsets) + body


def index_hits(read: Callable[[int, int], bytes], wanted: Iterable[int]) -> set[int]:
    """Which of ``wanted`` an index holds; ``read(start, end)`` returns bytes ``[start, end)`` of the object.

    Reads the header, then only the bucket of each wanted key's first byte.
    """
    head = read(0, HEADER_BYTES)
    if len(head) < HEADER_BYTES:
        raise ValidationError("id index is truncated")
    magic, _count = _HEAD.unpack_from(head)
    if magic != MAGIC:
        raise ValidationError("not an exportlake id index")
    offsets = _OFFSETS.unpack_from(head, _HEAD.size)
    hits: set[int] = set()
    by_bucket: dict[int, set[int]] = {}
    for k in wanted:
        by_bucket.setdefault(k >> 56, set()).add(k)
    for bucket, keys in sorted(by_bucket.items()):
        start, end = offsets[bucket], offsets[bucket + 1]
        if end <= start:
            continue
        data = read(HEADER_BYTES + 8 * start, HEADER_BYTES + 8 * end)
        held = set(struct.unpack(f">{end - start}Q", data))
        hits |= keys & held
    return hits


def decode_index(body: bytes) -> set[int]:
    """Every key of an index object."""
    if len(body) < HEADER_BYTES or body[: len(MAGIC)] != MAGIC:
        raise ValidationError("not an exportlake id index")
    _magic, count = _HEAD.unpack_from(body)
    return set(struct.unpack_from(f">{count}Q", body, HEADER_BYTES))


# -- generations ------------------------------------------------------------------------------------------------
def generation_id(result_id: str, generation: int) -> str:
    """The key segment of a result at ``generation``: ``R`` as copied, ``R.g<n>`` once rewritten."""
    validate_result_id(result_id)
    return result_id if generation == 0 else f"{result_id}.g{generation}"


def parse_generation_id(segment: str) -> tuple[str, int]:
    """``R`` or ``R.g<n>`` back to (result id, generation); ``ValidationError`` otherwise."""
    m = _GEN.fullmatch(segment)
    if m is None:
        raise ValidationError(f"{segment!r} is not a result id with an optional generation")
    return m["rid"], int(m["g"] or 0)


def raw_key_at(export_name: str, result_id: str, generation: int) -> str:
    """The raw original's key at ``generation``."""
    return f"{RAW_PREFIX}/{validate_export_name(export_name)}/{generation_id(result_id, generation)}.json.gz"


def index_key(export_name: str, result_id: str, generation: int) -> str:
    """The id index sidecar's key at ``generation``."""
    return f"{INDEX_PREFIX}/{validate_export_name(export_name)}/{generation_id(result_id, generation)}.idx"


def result_prefixes(partition_prefix: str, export_name: str, result_id: str) -> tuple[str, ...]:
    """Every key prefix that can hold an object of the result, whatever its generation.

    ``partition_prefix`` is the generation-0 prefix (``…/result_id=R/``); ``R.`` never starts another result id
    (ids are alphanumeric), so ``…/result_id=R.`` holds exactly the later generations.
    """
    base = partition_prefix.rstrip("/")
    name, rid = validate_export_name(export_name), validate_result_id(result_id)
    return (
        partition_prefix,
        f"{base}.",
        f"{RAW_PREFIX}/{name}/{rid}.",
        f"{INDEX_PREFIX}/{name}/{rid}.",
        f"{MANIFESTS_PREFIX}/{name}/{rid}.json",
    )


# -- records of what was done ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Suppression:
    """One suppressed person key (no clear id): the column it was given as, the request, when."""

    key: str
    column: str
    request_id: str
    at: str


@dataclass
class ResultErasure:
    """What erasing (or suppressing) persons did to one result."""

    export_name: str
    result_id: str
    table: str
    rows_removed: int = 0
    objects_deleted: int = 0
    versions_deleted: int = 0
    generation: int = 0
    #: ``pending``: the result is still being copied (retry later); ``clean``: nothing of the persons in it.
    state: str = "done"


@dataclass
class EraseReport:
    """An erasure request's outcome (for the CLI, the audit record and ``person.erased``)."""

    request_id: str
    persons: int
    dry_run: bool = False
    results: list[ResultErasure] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)
    suppressed_added: int = 0
    at: str = ""
    #: Older object versions deleted by the request's sweeps (all results at once).
    versions_swept: int = 0
    #: The first 16 hex digits of each person key (audit record only; never in a notification).
    person_keys: list[str] = field(default_factory=list)

    @property
    def touched(self) -> list[ResultErasure]:
        """The results that held the persons."""
        return [r for r in self.results if r.rows_removed]

    def rows_by_table(self) -> dict[str, int]:
        """Rows removed per table."""
        out: dict[str, int] = {}
        for r in self.touched:
            out[r.table] = out.get(r.table, 0) + r.rows_removed
        return dict(sorted(out.items()))

    def as_dict(self) -> dict[str, object]:
        """The audit record's body (no clear id, no person key)."""
        return {
            "request_id": self.request_id,
            "persons": self.persons,
            "dry_run": self.dry_run,
            "at": self.at,
            "results": [
                {"export": r.export_name, "result_id": r.result_id, "table": r.table, "rows_removed": r.rows_removed}
                for r in self.touched
            ],
            "rows_removed": self.rows_by_table(),
            "objects_deleted": sum(r.objects_deleted for r in self.results),
            "versions_deleted": sum(r.versions_deleted for r in self.results) + self.versions_swept,
            "pending": [f"{e}/{r}" for e, r in self.pending],
            "suppressed_added": self.suppressed_added,
        }


def keys_by_column(salt: bytes, ids: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Column → person keys of the given clear ids (validated)."""
    return {col: {person_key(salt, col, validate_person_id(v, col)) for v in values} for col, values in ids.items()}


# -- ports of the eraser (implemented in exportlake.adapters and exportlake.convert.rewrite) -------------------
#: Drop rule: ``drop(column, value)`` is True for a value of a person to remove.
Drop = Callable[[str, str], bool]


class VersionedStore(Protocol):
    """The lake bucket with its object versions."""

    bucket: str

    def get(self, key: str) -> bytes | None: ...

    def get_range(self, key: str, start: int, end: int) -> bytes: ...

    def put(self, key: str, body: bytes, content_type: str) -> None: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def delete(self, keys: Sequence[str]) -> None: ...

    def sweep(self, prefixes: Sequence[str]) -> int:
        """Delete every noncurrent version and delete marker under ``prefixes`` (never a current object); how many."""
        ...

    def abort_uploads(self, prefix: str) -> int: ...


class PartitionCatalog(Protocol):
    """Where a result's Glue partition points, and moving it."""

    def partition_location(self, table: str, values: Sequence[str]) -> str | None: ...

    def move_partition(self, table: str, values: Sequence[str], location: str) -> None: ...


class PrivacyStore(Protocol):
    """Suppression list, holds and request records (no clear id in any of them)."""

    def suppressed(self) -> dict[str, Suppression]: ...

    def suppress(self, entries: Iterable[Suppression]) -> int: ...

    def lift(self, key: str) -> bool: ...

    def take_hold(self, name: str, owner: str, seconds: float, *, take_over: str = "") -> bool: ...

    def renew_hold(self, name: str, owner: str, seconds: float) -> bool: ...

    def hold_owner(self, name: str) -> str: ...

    def release_hold(self, name: str, owner: str) -> None: ...

    def record_result(self, request: str, result: ResultErasure) -> None: ...

    def record_sweep(self, request: str, versions: int) -> None: ...

    def swept(self, request: str) -> int: ...

    def request_results(self, request: str) -> list[ResultErasure]: ...

    def save_request(self, request: str, record: Mapping[str, object]) -> None: ...

    def requests(self) -> list[dict[str, object]]: ...

    def claim_notice(self, request: str) -> bool: ...

    def mark_noticed(self, request: str) -> None: ...

    def count_suppressed(self, export_name: str, rows: int) -> None: ...


@dataclass(frozen=True)
class Rewritten:
    """What the rewriter wrote for the next generation."""

    parts: tuple[ManifestPart, ...]
    rows: int
    rows_removed: int
    raw: RawOriginal
    #: Column → the distinct clear values left (for the new id index; in memory only).
    remaining: dict[str, set[str]]


class Rewriter(Protocol):
    """Reads and rewrites a result's Parquet parts and raw original (``exportlake.convert.rewrite``)."""

    def person_ids(self, manifest: Manifest) -> dict[str, set[str]]: ...

    def linked(self, manifest: Manifest, column: str, match: Callable[[str], bool], out: str) -> set[str]: ...

    def count(self, manifest: Manifest, drop: Drop) -> int: ...

    def rewrite(
        self, manifest: Manifest, place: ResultLocation, raw_key: str, drop: Drop, check: Callable[[], None]
    ) -> Rewritten: ...
