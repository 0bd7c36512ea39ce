"""The answer to a CloudFormation custom resource request: one HTTPS PUT of a JSON body to its pre-signed URL.

CloudFormation waits for that PUT and for nothing else, so a request must always get exactly one: ``Reply`` sends
the first body it is given and ignores later ones, and its watchdog sends a FAILED body of its own shortly before
the Lambda's time runs out, so a hung call never leaves the stack waiting for the resource's service timeout.
The URL is a credential (it is signed): it is never logged.

Standard library only, and no other module of exportlake: the tables function imports this first, so that even when
everything else fails to import, the request still gets its answer (a stack never waits in ROLLBACK_FAILED for it).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

#: Seconds per PUT attempt, and attempts.
PUT_TIMEOUT_SECONDS = 10.0
PUT_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 1.0

Opener = Callable[..., Any]
#: The physical id of a resource whose Create failed: it names no table, so the rollback's Delete touches none.
FAILED_CREATE = "create-failed:"
#: Longest status reason sent (the whole response must stay under CloudFormation's 4 KB).
MAX_REASON = 1000


class ResponseUrlError(ValueError):
    """The request carries no usable ResponseURL: nobody can be answered."""


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address: only "localhost"
        return host == "localhost"


def failure_physical_id(event: Mapping[str, Any]) -> str:
    """The physical id of a FAILED response: the resource's own, or for a failed Create a marker naming nothing."""
    if event.get("RequestType") == "Create" or not event.get("PhysicalResourceId"):
        return f"{FAILED_CREATE}{event.get('LogicalResourceId', '')}:{event.get('RequestId', '')}"
    return str(event["PhysicalResourceId"])


def body(
    event: Mapping[str, Any], *, ok: bool, reason: str, physical: str, data: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The body CloudFormation expects at the request's ResponseURL."""
    return {
        "Status": "SUCCESS" if ok else "FAILED",
        "Reason": reason[:MAX_REASON],
        "PhysicalResourceId": physical,
        "StackId": event.get("StackId", ""),
        "RequestId": event.get("RequestId", ""),
        "LogicalResourceId": event.get("LogicalResourceId", ""),
        "NoEcho": False,
        "Data": dict(data or {}),
    }


def check_response_url(url: object) -> str:
    """The ResponseURL if it is https (or http on loopback, for local tests); else ``ResponseUrlError``."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.hostname:
        raise ResponseUrlError("the request has no ResponseURL")
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname)):
        raise ResponseUrlError(f"the request's ResponseURL is not https (scheme {parts.scheme!r})")
    return str(url)


class Reply:
    """Sends one response to one request; thread-safe (the watchdog and the handler may race)."""

    def __init__(self, url: object, *, opener: Opener = urllib.request.urlopen, log: Callable[[str], None] = print):
        self._url = check_response_url(url)
        self._opener = opener
        self._log = log
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.sent: dict[str, Any] | None = None

    def send(self, body: Mapping[str, Any]) -> bool:
        """PUT ``body`` unless a response already went out; True if this call sent it."""
        with self._lock:
            if self.sent is not None:
                return False
            self.sent = dict(body)
        data = json.dumps(self.sent).encode()
        for attempt in range(1, PUT_ATTEMPTS + 1):
            # Content-Type empty: the URL's signature covers it (what CloudFormation's own helper sends).
            request = urllib.request.Request(  # noqa: S310 - https (or loopback http), checked in __init__
                self._url, data=data, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(data))}
            )
            try:
                with self._opener(request, timeout=PUT_TIMEOUT_SECONDS) as resp:
                    resp.read()
                return True
            except Exception as exc:  # reported (never with the URL), then tried again
                self._log(f"response to CloudFormation failed (attempt {attempt}/{PUT_ATTEMPTS}): {type(exc).__name__}")
            if attempt < PUT_ATTEMPTS:
                time.sleep(RETRY_PAUSE_SECONDS * attempt)
        return False

    def watchdog(self, seconds: float, body: Callable[[], Mapping[str, Any]]) -> None:
        """Send ``body()`` (a FAILED response) after ``seconds`` unless a response went out first."""
        self._timer = threading.Timer(max(seconds, 0.0), lambda: self.send(body()))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        """Stop the watchdog."""
        if self._timer is not None:
            self._timer.cancel()
