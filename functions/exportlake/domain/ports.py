"""What the domain needs from the outside world (implemented in ``exportlake.adapters``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from exportlake.domain.models import CopyJob, Export, ResultRef, ResultState


@dataclass(frozen=True)
class LedgerEntry:
    """One result's row in the ledger."""

    export_name: str
    result_id: str
    state: ResultState
    created_at: str = ""
    expires_at: str = ""
    updated_at: str = ""
    rows: int = 0
    bytes: int = 0
    table: str = ""
    location: str = ""
    notified: bool = False
    error: str = ""
    attempts: int = 0


class Gateway(Protocol):
    """The NeoDay gateway, authenticated."""

    def list_exports(self) -> list[Export]: ...

    def list_results(self, export_name: str) -> list[ResultRef]: ...

    def download_url(self, result_id: str) -> str: ...

    def open_download(self, url: str) -> AbstractContextManager[Iterator[bytes]]: ...


class Ledger(Protocol):
    """Per-result state, with conditional transitions so concurrent runs never double a step."""

    def entries(self, export_name: str) -> dict[str, LedgerEntry]: ...

    def get(self, export_name: str, result_id: str) -> LedgerEntry | None: ...

    def claim_queued(self, ref: ResultRef, *, retry_failed: bool = False, stale_before: str = "") -> bool: ...

    def release_queued(self, ref: ResultRef) -> None: ...

    def mark_expired(self, ref: ResultRef, *, stale_before: str = "") -> bool: ...

    def start_copy(self, job: CopyJob, lease_seconds: int) -> LedgerEntry | None: ...

    def mark_copied(self, job: CopyJob, *, rows: int, size: int, table: str, location: str) -> bool: ...

    def claim_notification(
        self, export_name: str, result_id: str, lease_seconds: int, state: ResultState = ResultState.COPIED
    ) -> bool: ...

    def release_notification(self, export_name: str, result_id: str) -> None: ...

    def mark_notified(self, export_name: str, result_id: str) -> None: ...

    def end_attempt(self, job: CopyJob, error: str) -> None: ...

    def mark_failed(self, job: CopyJob, error: str) -> bool: ...

    def claim_expiring_notice(self, export_name: str, result_id: str) -> bool: ...

    def release_expiring_notice(self, export_name: str, result_id: str) -> None: ...


class JobQueue(Protocol):
    """The copy-jobs queue."""

    def send(self, jobs: Sequence[CopyJob]) -> None: ...


class Notifier(Protocol):
    """Notifications to people and systems (SNS)."""

    def publish(self, event_type: str, export_name: str, subject: str, payload: Mapping[str, Any]) -> None: ...


class Metrics(Protocol):
    """Numbers worth a graph (Powertools Metrics in Lambda)."""

    def add(self, name: str, value: float, unit: str) -> None: ...


class NullMetrics:
    """Metrics that go nowhere (tests, CLI status)."""

    def add(self, name: str, value: float, unit: str) -> None:
        """Drop the figure."""


def chunks_of(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Split ``items`` into lists of at most ``size``."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


#: How long a claim to send one notification lasts (a sender that dies lets a retry send it after this).
NOTIFY_LEASE_SECONDS = 300


def notify_once(ledger: Ledger, export_name: str, result_id: str, state: ResultState, send: Callable[[], None]) -> bool:
    """Send a result's notification unless it was sent or is being sent; True if this call sent it.

    Claim (a conditional lease in the ledger), send, then record it as sent; a failed send gives the claim back
    so the next attempt sends it.
    """
    if not ledger.claim_notification(export_name, result_id, NOTIFY_LEASE_SECONDS, state):
        return False
    try:
        send()
    except BaseException:
        ledger.release_notification(export_name, result_id)
        raise
    ledger.mark_notified(export_name, result_id)
    return True
