"""The answer to a CloudFormation custom resource request: one HTTPS PUT of a JSON body to its pre-signed URL.

CloudFormation waits for that PUT and for nothing else, so a request must always get exactly one: ``Reply`` sends
the first body it is given and ignores later ones, and its watchdog sends a FAILED body of its own shortly before
the Lambda's time runs out, so a hung call never leaves the stack waiting for the resource's service timeout.
The URL is a credential (it is signed): it is never logged.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from exportlake.domain.errors import ValidationError
from exportlake.settings import is_loopback

#: Seconds per PUT attempt, and attempts.
PUT_TIMEOUT_SECONDS = 10.0
PUT_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 1.0

Opener = Callable[..., Any]


def check_response_url(url: object) -> str:
    """The ResponseURL if it is https (or http on loopback, for local tests); else ``ValidationError``."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.hostname:
        raise ValidationError("the request has no ResponseURL")
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise ValidationError(f"the request's ResponseURL is not https (scheme {parts.scheme!r})")
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
