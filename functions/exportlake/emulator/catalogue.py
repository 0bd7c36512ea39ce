"""The simulator's catalogue: exports and their results; documents are generated on demand from ``(key, n, seed)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

# The API's paths, as the gateway serves them.
API = "/api/1"
TOKEN_PATH = f"{API}/oauth2/access_token"
EXPORTS_PATH = f"{API}/data-exporter/automated"
FETCH_PREFIX = f"{EXPORTS_PATH}/fetch/"
DOWNLOAD_PREFIX = "/automated-exports/"


def _iso(moment: datetime) -> str:
    """The API's timestamp shape: ``2024-06-20T09:35:57+00:00``."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SimResult:
    """One export result: its document is generated from ``(key, n_records, seed)`` whenever it is downloaded."""

    id: str
    export: SimExport
    n_records: int
    seed: int
    created_at: datetime
    expires_at: datetime

    def summary(self) -> dict[str, str]:
        """The result as the API lists it."""
        return {"id": self.id, "expires_at": _iso(self.expires_at), "created_at": _iso(self.created_at)}

    def expired(self, now: datetime | None = None) -> bool:
        """Whether ``expires_at`` has passed."""
        return (now or _now()) >= self.expires_at


@dataclass
class SimExport:
    """One automated export: its system name, the document key it writes, and its results (any order)."""

    id: str
    system_name: str
    key: str
    columns: tuple[str, ...] | None
    results: list[SimResult] = field(default_factory=list)

    def newest_first(self) -> list[SimResult]:
        """Results ordered as the simulator serves them (newest first, ties by id)."""
        return sorted(self.results, key=lambda r: (r.created_at, r.id), reverse=True)


def system_name_of(key: str) -> str:
    """The default system name of a type's export (``win_info`` → ``win-info``)."""
    return key.replace("_", "-")
