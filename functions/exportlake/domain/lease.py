"""A copy lease that lives only as long as its holder: short, owned by a token, renewed by a heartbeat.

The pattern of the DynamoDB lock client (and of Powertools idempotency's in-progress expiry): the ledger item
holds ``lease_owner`` and ``lease_until``; the holder renews it every ``seconds / 3`` while it works and checks
it still holds it before each visible step; a killed holder's lease lapses within ``seconds``. On one machine
(the local CLI) a holder that is provably dead — same host, its process gone — is replaced at once: the owner
token carries host, pid and the process's start time, so a reused pid is not mistaken for the holder.

Stdlib only: the ledger is reached through the ``renew`` callable.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from exportlake.domain.errors import LeaseLost

log = logging.getLogger(__name__)


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22; the command name (field 2) may hold spaces, so split after its closing parenthesis.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def _boot_clock() -> float:
    """Seconds on a clock that keeps counting while the machine sleeps (a laptop lid: the lease lapses too)."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return time.monotonic()


def new_owner() -> str:
    """A fresh owner token: ``host:pid:start:random`` (no secret in it; it is logged and stored)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}:{uuid.uuid4().hex[:12]}"


def holder_is_dead(owner: str) -> bool:
    """True only when ``owner`` is provably dead: a process of this host that no longer runs.

    Any other holder (another host, a Lambda, an unparsable token) may be alive: it is left to its lease.
    """
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit() or not parts[2]:
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False  # ourselves (another thread's lease): alive
    started = _start_time(pid)
    return started != parts[2]  # gone (""), or the pid now names another process


class Lease:
    """A held lease, renewed in a daemon thread until ``release``; ``check()`` raises ``LeaseLost`` once lost."""

    def __init__(
        self,
        owner: str,
        seconds: float,
        renew: Callable[[], bool],
        *,
        clock: Callable[[], float] = _boot_clock,
        heartbeat: bool = True,
    ) -> None:
        self.owner = owner
        self.seconds = seconds
        self._renew = renew
        self._clock = clock
        self._valid_until = clock() + seconds
        self._proven_at = clock()
        #: When the lease was taken by the caller's wall clock (set by the caller; see ``CopyService._confirm``).
        self.acquired_wall: datetime | None = None
        self._lost = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if heartbeat:
            self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
            self._thread.start()

    def renew(self) -> None:
        """Renew now; a refusal (someone else holds it) or a lapse marks the lease lost."""
        started = self._clock()
        try:
            ok = self._renew()
        except Exception as exc:  # a network error: keep trying until the lease would lapse
            log.warning("lease renewal failed: %s", exc)
            ok = None
        if ok:
            self._valid_until = started + self.seconds
            self._proven_at = started
        elif ok is False:
            self._lost = "another copier took the lease"
        if not self._lost and self._clock() >= self._valid_until:
            self._lost = "the lease lapsed before it could be renewed"

    def confirm(self) -> None:
        """Prove the lease is still ours with a renewal now, then ``check`` (before each visible step)."""
        self.renew()
        self.check()

    def proven_within(self, seconds: float) -> bool:
        """True if the lease was taken or renewed less than ``seconds`` ago (and is not lost)."""
        return not self.lost and self._clock() - self._proven_at < seconds

    @property
    def lost(self) -> bool:
        """True once the lease is no longer held (refused at a renewal, or lapsed unrenewed)."""
        if not self._lost and self._clock() >= self._valid_until:
            self._lost = "the lease lapsed before it could be renewed"
        return bool(self._lost)

    def check(self) -> None:
        """Raise ``LeaseLost`` unless the lease is still held (call before each visible step)."""
        if self.lost:
            raise LeaseLost(self._lost)

    def release(self) -> None:
        """Stop renewing (the caller gives the lease back in the ledger)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        interval = max(0.05, self.seconds / 3)
        while not self._stop.wait(interval):
            self.renew()
            if self._lost:
                log.warning("copy lease lost: %s", self._lost)
                return
