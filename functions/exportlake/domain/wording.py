"""Failures in words a person can act on: no exception class names, no codec internals, the fix that fits.

One place renders a failure for people — the ledger's reason of a failed result, the summary of ``exportlake sync``,
the CLI's one-line errors — so that every message says what happened in words and what to do: a malformed
document no retry can fix says so and where to report it; a gateway that does not answer is named with its URL and
what to check; a refused login carries the same fix as its ``sync.failed`` notice. Stdlib only (duck typing for
requests/botocore errors: the domain imports neither).
"""

from __future__ import annotations

import re

from exportlake.domain.errors import (
    AuthError,
    ConfigError,
    DocumentError,
    DownloadExpired,
    DownloadRefused,
    GatewayError,
    TransientError,
    ValidationError,
)

#: Said of a failure a retry cannot fix (the summary tells these apart by it).
NO_RETRY = "no retry can fix it"
#: Where a malformed document is reported: its maker.
REPORT_TO = "the NeoDay gateway's administrators"
#: The fix of a refused login, as the ``sync.failed`` notice gives it (``planning.run_failure_cause``).
CREDENTIALS_FIX = "check client_id/client_secret in the secret and the automated-exports-view role"
RETRY = "exportlake sync --retry-failed"

#: Network failures (requests / urllib3 / http.client class names) in words.
_NETWORK = {
    "ChunkedEncodingError": "the connection broke before the whole body arrived",
    "ProtocolError": "the connection broke in the middle of the answer",
    "IncompleteRead": "the body ended before its declared length",
    "RemoteDisconnected": "the server closed the connection without answering",
    "ConnectTimeout": "no connection within the time allowed",
    "ReadTimeout": "no answer within the time allowed",
    "Timeout": "no answer within the time allowed",
    "SSLError": "the TLS handshake failed (certificate or protocol)",
    "ProxyError": "the proxy refused the connection",
    "ContentDecodingError": "the body could not be decompressed",
    "TooManyRedirects": "too many redirects",
    "InvalidURL": "the URL is not valid",
    "ConnectionError": "the connection failed (refused, reset, or the host name does not resolve)",
    "NewConnectionError": "the connection failed (refused, or the host name does not resolve)",
    "MaxRetryError": "the connection failed after retries",
    "RequestException": "the request failed",
}
_CLASS = r"[A-Z][A-Za-z0-9]*(?:Error|Exception|Refused|Expired|Lost|Elsewhere|Conflict)"
_LEADING_CLASS = re.compile(rf"^(?:{_CLASS}: )+")
_ANY_CLASS = re.compile(rf"\b(?:[a-z_]+\.)*({'|'.join(sorted(_NETWORK, key=len, reverse=True))})\b")
_INNER_CLASS = re.compile(rf"(?<=: )(?:{_CLASS}): ")
_CODEC = re.compile(
    r"'[\w-]+' codec can't decode bytes? (?:(0x[0-9a-f]{2})(?: in position (\d+))?|in position (\d+)(?:-\d+)?)"
    r"(?:: [a-z ]+)?"
)


def _codec(match: re.Match[str]) -> str:
    byte, position = match.group(1), match.group(2) or match.group(3)
    what = f"byte {byte}" if byte else "bytes"
    return f"{what} that is not UTF-8 text" + (f" (at position {position} of a record)" if position else "")


def words(text: str) -> str:
    """A recorded reason in words: class-name prefixes dropped, network class names and codec messages said."""
    out = _LEADING_CLASS.sub("", text.strip())
    out = _INNER_CLASS.sub("", out)
    out = _ANY_CLASS.sub(lambda m: _NETWORK[m.group(1)], out)
    return _CODEC.sub(_codec, out)


def _network_phrase(exc: BaseException) -> str | None:
    module = type(exc).__module__ or ""
    if not module.startswith(("requests", "urllib3", "http.client", "socket", "ssl")):
        return None
    for cls in type(exc).__mro__:
        if cls.__name__ in _NETWORK:
            return _NETWORK[cls.__name__]
    return "the connection failed"


def describe(exc: BaseException) -> str:
    """What happened, in words (no fix)."""
    network = _network_phrase(exc)
    if network is not None:
        return network
    if isinstance(exc, UnicodeDecodeError):
        return f"the document holds byte 0x{exc.object[exc.start]:02x} that is not UTF-8 text (at offset {exc.start})"
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        operation = getattr(exc, "operation_name", "") or "a call"
        message = str(error.get("Message", "")).strip()
        return f"AWS refused {operation} ({error.get('Code', '')})" + (f": {message}" if message else "")
    text = words(str(exc))
    return text.splitlines()[0] if text else "an unexpected failure"


def is_network(text: str) -> bool:
    """Whether a reason says the other end did not answer (rather than answered badly)."""
    return any(phrase in text for phrase in set(_NETWORK.values())) or "connection" in text


def copy_failure(exc: BaseException, export: str, result_id: str, attempts: int | None = None) -> str:
    """The ledger's reason of a result that failed for good: what happened and the fix that fits."""
    what = describe(exc)
    if isinstance(exc, DocumentError | ValidationError):
        where = f"export {export} result {result_id}"
        return f"the document is malformed: {what}; {NO_RETRY}: report {where} to {REPORT_TO}"
    if isinstance(exc, DownloadRefused):
        return f"{what}: allow the host in EXPORTLAKE_DOWNLOAD_HOSTS (downloadHosts in cdk.json), then {RETRY}"
    if isinstance(exc, AuthError):
        return f"{what}: {CREDENTIALS_FIX}, then {RETRY}"
    tail = f" (after {attempts} attempts)" if attempts else ""
    if isinstance(exc, DownloadExpired):
        return f"{what}{tail}: a retry fetches a fresh download URL: {RETRY}"
    return f"{what}{tail}: when the cause is fixed (exportlake doctor), {RETRY}"


def run_failure(exc: BaseException, gateway_url: str = "") -> str:
    """A whole run's failure (the planner's) in one line with its fix."""
    what = describe(exc)
    gateway = f"the gateway {gateway_url}" if gateway_url else "the gateway"
    if isinstance(exc, AuthError):
        return f"{gateway} refused the login ({what}): {CREDENTIALS_FIX}"
    if _network_phrase(exc) is not None or (isinstance(exc, TransientError) and is_network(what)):
        return (
            f"{gateway} does not answer ({what}): check EXPORTLAKE_GATEWAY_URL (gatewayUrl), that the gateway is "
            "up and that this machine can reach it (DNS, firewall, proxy)"
        )
    if isinstance(exc, TransientError | GatewayError):
        return f"{gateway} is failing ({what}): the next run retries; if it persists, tell {REPORT_TO}"
    if isinstance(exc, ConfigError):
        return what
    return f"{what} (run with -v for the details)"
