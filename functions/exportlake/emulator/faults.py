"""The simulator's request log and its switchable faults (429 with Retry-After, 5xx, 401, slow, truncated body,
expired URL, throttled download), injected per request with :meth:`Faults.inject`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from exportlake.emulator.catalogue import TOKEN_PATH

Port = Literal["gateway", "download"]

FAULT_KINDS = ("rate_limit", "server_error", "unauthorized", "slow", "truncated", "url_expired", "throttled")
# Faults that only make sense on one port; the others apply wherever their target says.
_FAULT_PORTS: dict[str, tuple[Port, ...]] = {
    "unauthorized": ("gateway",),
    "truncated": ("download",),
    "url_expired": ("download",),
    "throttled": ("download",),
}


@dataclass
class RequestRecord:
    """One request as the simulator saw it (``status`` is filled in once answered)."""

    port: Port
    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int | None = None

    def header(self, name: str) -> str | None:
        """A request header by case-insensitive name, or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass
class Fault:
    """One injected fault: applies to the next ``times`` matching requests (None = until cleared)."""

    kind: str
    times: int | None
    target: Port | None
    path_prefix: str | None
    params: dict[str, Any] = field(default_factory=dict)
    hits: int = 0

    def matches(self, port: Port, path: str) -> bool:
        """Whether this fault applies to a request on ``port`` for ``path``."""
        if port not in _FAULT_PORTS.get(self.kind, ("gateway", "download")):
            return False
        if self.target is not None and self.target != port:
            return False
        if self.kind == "unauthorized" and path == TOKEN_PATH and self.path_prefix is None:
            # "A valid token refused" concerns token-bearing calls; a 401 from the token endpoint means bad
            # credentials, a different failure, so it must be asked for explicitly with path_prefix.
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


class Faults:
    """Thread-safe queue of injected faults; each matching request consumes one use of the first matching fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(
        self,
        kind: str,
        times: int | None = 1,
        *,
        target: Port | None = None,
        path_prefix: str | None = None,
        **params: Any,
    ) -> Fault:
        """Make the next ``times`` matching requests fail with ``kind`` (see ``FAULT_KINDS``).

        Params: rate_limit ``retry_after`` (seconds, default 1); server_error ``status`` (500/502/503, default
        503); unauthorized ``revoke`` (also revoke every token, default False); slow ``seconds`` (default 1.0,
        then the request is answered normally); truncated ``fraction`` of the body sent (default 0.5); throttled
        ``bytes_per_second`` the body is sent at (default 1e6: a slow link, for progress displays).
        ``target`` limits it to "gateway" or "download"; ``path_prefix`` to paths starting with it.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {FAULT_KINDS}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for until cleared)")
        if target not in (None, "gateway", "download"):
            raise ValueError("target must be 'gateway', 'download' or None")
        fault = Fault(kind, times, target, path_prefix, dict(params))
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, port: Port, path: str) -> Fault | None:
        """Consume and return the first fault matching this request, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(port, path):
                    fault.hits += 1
                    if fault.times is not None and fault.hits >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        """Faults not yet used up."""
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()
