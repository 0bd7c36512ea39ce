"""A local stand-in for the NeoDay gateway and its object store (demo, functional/e2e tests, benchmarks).

Two stdlib HTTP servers on loopback: the *gateway* (OAuth token, export list, paged results, fetch of a pre-signed
download URL) and the *download* port playing the object store (S3/Spaces-like pre-signed GETs that expire).
Records are never stored: each result is ``(key, n_records, seed)`` and documents are generated on demand by
:mod:`exportlake.local.sampledata`, streamed in chunks, so a million-record result costs no memory.

Faults are injected per request with :meth:`Faults.inject`; every request on either port is logged in
:attr:`GatewaySimulator.requests`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, quote, unquote, urlsplit

from exportlake.domain.schemas import EXPORT_TYPES
from exportlake.local import sampledata

Port = Literal["gateway", "download"]

API = "/api/1"
TOKEN_PATH = f"{API}/oauth2/access_token"
EXPORTS_PATH = f"{API}/data-exporter/automated"
FETCH_PREFIX = f"{EXPORTS_PATH}/fetch/"
DOWNLOAD_PREFIX = "/automated-exports/"

TOKEN_EXPIRES_IN = 15897600  # what the real gateway answers (about 184 days)

FAULT_KINDS = ("rate_limit", "server_error", "unauthorized", "slow", "truncated", "url_expired", "throttled")
# Faults that only make sense on one port; the others apply wherever their target says.
_FAULT_PORTS: dict[str, tuple[Port, ...]] = {
    "unauthorized": ("gateway",),
    "truncated": ("download",),
    "url_expired": ("download",),
    "throttled": ("download",),
}


def _iso(moment: datetime) -> str:
    """The API's timestamp shape: ``2024-06-20T09:35:57+00:00``."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------------------------
# Request log and faults


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


# ---------------------------------------------------------------------------------------------------------------
# Catalogue


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


# ---------------------------------------------------------------------------------------------------------------
# HTTP handlers


class _Handler(BaseHTTPRequestHandler):
    """Common plumbing: body draining, logging into the simulator, JSON/XML answers, fault handling."""

    protocol_version = "HTTP/1.1"  # keep-alive and chunked transfer, like the real services
    server_version = "exportlake-sim"
    port_name: Port = "gateway"
    sim: GatewaySimulator
    _record: RequestRecord | None = None

    def version_string(self) -> str:
        """The Server header (no Python version: nothing a client should depend on)."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (the simulator keeps its own request log)."""

    # --- plumbing -------------------------------------------------------------------------------------------

    def _begin(self) -> tuple[str, dict[str, list[str]], bytes, RequestRecord]:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        # Always drain the body so a keep-alive connection stays in sync even when we answer with an error.
        body = self.rfile.read(length) if length > 0 else b""
        record = RequestRecord(self.port_name, self.command, parts.path, parts.query, dict(self.headers.items()))
        self.sim._log(record)
        self._record = record
        return parts.path, parse_qs(parts.query), body, record

    def send_response(self, code: int, message: str | None = None) -> None:
        """Send the status line and note the status in the request log."""
        record = self._record
        if record is not None:
            record.status = code
        super().send_response(code, message)

    def _send_bytes(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", extra)

    def _apply_common_fault(self, fault: Fault, error: Any) -> bool:
        """Answer a rate_limit/server_error fault (True) or sleep for slow (False: carry on)."""
        if fault.kind == "slow":
            time.sleep(float(fault.params.get("seconds", 1.0)))
            return False
        if fault.kind == "rate_limit":
            retry_after = str(fault.params.get("retry_after", 1))
            error(429, "TooManyRequests", "Rate limit exceeded", {"Retry-After": retry_after})
            return True
        if fault.kind == "server_error":
            status = int(fault.params.get("status", 503))
            error(status, "InternalError" if status == 500 else "ServiceUnavailable", "Injected server error", None)
            return True
        return False

    def _dispatch(self) -> None:
        try:
            self.handle_request()
        except (BrokenPipeError, ConnectionResetError):
            # The client went away (e.g. gave up on a slow answer): nothing to answer.
            self.close_connection = True

    def handle_request(self) -> None:  # pragma: no cover - overridden
        """Answer one request."""
        raise NotImplementedError

    def handle_one_request(self) -> None:
        """Forget the previous request's log record first, so a malformed request never rewrites its status."""
        self._record = None
        super().handle_one_request()

    # One entry point for every method; handlers route and answer 405 themselves.
    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch  # noqa: N815 - stdlib naming


class _GatewayHandler(_Handler):
    port_name: Port = "gateway"

    def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
        self._send_json(status, {"status": status, "error": code, "message": message}, extra)

    def _unauthorized(self, message: str) -> None:
        self._error(401, "Unauthorized", message, {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def _answered_by_fault(self, path: str) -> bool:
        fault = self.sim.faults.take("gateway", path)
        if fault is None:
            return False
        if fault.kind == "unauthorized":
            if fault.params.get("revoke"):
                self.sim.revoke_tokens()
            self._unauthorized("The access token is invalid or has been revoked")
            return True
        return self._apply_common_fault(fault, self._error)

    def handle_request(self) -> None:
        """Route a gateway request."""
        path, query, body, _ = self._begin()
        sim = self.sim
        if self._answered_by_fault(path):
            return
        if path == TOKEN_PATH:
            if self.command != "POST":
                self._error(405, "MethodNotAllowed", "Use POST", {"Allow": "POST"})
                return
            self._token(body)
            return
        if not path.startswith(EXPORTS_PATH):
            self._error(404, "NotFound", "No route")
            return
        if self.command != "GET":
            self._error(405, "MethodNotAllowed", "Use GET", {"Allow": "GET"})
            return
        if not sim._token_valid(self.headers.get("Authorization")):
            self._unauthorized("A valid bearer token is required")
            return
        rest = path[len(EXPORTS_PATH) :]
        if rest in ("", "/"):
            self._send_json(200, sim._list_exports())
        elif path.startswith(FETCH_PREFIX):
            self._fetch(unquote(path[len(FETCH_PREFIX) :]))
        elif rest.startswith("/") and rest.endswith("/results") and rest.count("/") == 2:
            self._results(unquote(rest[1 : -len("/results")]), query)
        else:
            self._error(404, "NotFound", "No route")

    def _token(self, body: bytes) -> None:
        sim = self.sim
        params: dict[str, Any]
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            if content_type == "application/x-www-form-urlencoded":
                params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            else:
                loaded = json.loads(body or b"{}")
                params = loaded if isinstance(loaded, dict) else {}
        except (ValueError, UnicodeDecodeError):
            self._send_json(400, {"error": "invalid_request", "error_description": "Body is not valid JSON"})
            return
        if params.get("grant_type") != "client_credentials":
            self._send_json(400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant"})
            return
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        ok = isinstance(client_id, str) and isinstance(client_secret, str)
        # Compare in constant time anyway: the simulator is also a reference for how the real thing should behave.
        if not (
            ok
            and hmac.compare_digest(str(client_id).encode(), sim.client_id.encode())
            and hmac.compare_digest(str(client_secret).encode(), sim.client_secret.encode())
        ):
            self._send_json(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
            return
        token = sim._issue_token()
        self._send_json(200, {"token_type": "Bearer", "expires_in": TOKEN_EXPIRES_IN, "access_token": token})

    def _results(self, name: str, query: dict[str, list[str]]) -> None:
        try:
            page = int(query.get("page", ["1"])[0])
            per_page = int(query.get("perPage", ["10"])[0])
        except ValueError:
            self._error(400, "BadRequest", "page and perPage must be integers")
            return
        if page < 1 or per_page < 1:
            self._error(400, "BadRequest", "page and perPage must be >= 1")
            return
        listing = self.sim._results_page(name, page, per_page)
        if listing is None:
            self._error(404, "NotFound", f"Automated export {name!r} not found")
            return
        self._send_json(200, listing)

    def _fetch(self, result_id: str) -> None:
        sim = self.sim
        result = sim._find_result(result_id)
        if result is None:
            self._error(404, "NotFound", "Result not found")
            return
        if result.expired():
            self._error(410, "Gone", "Result has expired")
            return
        self._send_json(200, {"result": {"id": result.id, "download_url": sim._sign_url(result)}})


def _s3_error(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{secrets.token_hex(8)}</RequestId></Error>"
    ).encode()


class _DownloadHandler(_Handler):
    port_name: Port = "download"

    def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
        self._send_bytes(status, _s3_error(code, message), "application/xml", extra)

    def handle_request(self) -> None:
        """Serve a pre-signed GET of a result document, like S3/Spaces would."""
        path, query, _, _ = self._begin()
        sim = self.sim
        fault = sim.faults.take("download", path)
        if fault is not None and fault.kind == "url_expired":
            self._error(403, "AccessDenied", "Request has expired")
            return
        if fault is not None and self._apply_common_fault(fault, self._error):
            return
        if self.command not in ("GET", "HEAD"):
            self._error(405, "MethodNotAllowed", "The specified method is not allowed", {"Allow": "GET, HEAD"})
            return
        # S3 refuses a request that carries two auth mechanisms: a pre-signed URL plus an Authorization header.
        # Doing the same makes a leaked bearer token fail loudly in tests instead of passing silently.
        if sim.reject_authorization_on_download and self.headers.get("Authorization"):
            self._error(400, "InvalidArgument", "Only one auth mechanism allowed")
            return
        expires_raw = query.get("X-Expires", [""])[0]
        signature = query.get("X-Signature", [""])[0]
        refusal = sim._check_signature(path, expires_raw, signature)
        if refusal is not None:
            self._error(403, *refusal)
            return
        result = sim._result_at(path)
        if result is None or result.expired():
            self._error(404, "NoSuchKey", "The specified key does not exist.")
            return
        self._stream(
            result,
            truncated=fault.params.get("fraction", 0.5) if fault and fault.kind == "truncated" else None,
            rate=float(fault.params.get("bytes_per_second", 1e6)) if fault and fault.kind == "throttled" else None,
        )

    def _write(self, data: bytes, rate: float | None) -> None:
        """Send ``data``; at ``rate`` bytes/s when given (in pieces of a twentieth of a second)."""
        if rate is None:
            self.wfile.write(data)
            return
        step = max(1, int(rate / 20))
        for i in range(0, len(data), step):
            piece = data[i : i + step]
            self.wfile.write(piece)
            time.sleep(len(piece) / rate)

    def _stream(self, result: SimResult, truncated: float | None, rate: float | None = None) -> None:
        sim = self.sim
        headers = {
            "Content-Type": "application/json",
            "Last-Modified": self.date_time_string(result.created_at.timestamp()),
            "Accept-Ranges": "bytes",
        }
        range_header = self.headers.get("Range")
        known_length = truncated is not None or bool(range_header) or result.n_records <= sim.content_length_max_records
        total = sim._document_length(result) if known_length else None
        start, end = 0, (total - 1 if total is not None else None)
        status = 200
        if range_header and total is not None:
            parsed = _parse_range(range_header, total)
            if parsed is None:
                self._error(
                    416, "InvalidRange", "The requested range is not satisfiable", {"Content-Range": f"bytes */{total}"}
                )
                return
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        chunks = sim._iter_result_bytes(result)
        if total is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command == "HEAD":
                return
            for chunk in chunks:
                self._write(b"%x\r\n%s\r\n" % (len(chunk), chunk), rate)
            self.wfile.write(b"0\r\n\r\n")
            return
        if end is None:  # unreachable: total is known here; keeps the types honest
            raise RuntimeError("document length unknown")
        length = end - start + 1
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        limit = length if truncated is None else int(length * float(truncated))
        for piece in _slice_stream(chunks, start, start + limit):
            self._write(piece, rate)
        if truncated is not None:
            # Promise the whole body, deliver part, hang up: what a dropped connection looks like to the client.
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


def _parse_range(header: str, total: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range; None when unsatisfiable or malformed."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec or "-" not in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            start, end = max(0, total - int(last)), total - 1
        else:
            start = int(first)
            end = min(int(last), total - 1) if last else total - 1
    except ValueError:
        return None
    if start >= total or start > end:
        return None
    return start, end


def _slice_stream(chunks: Iterator[bytes], start: int, stop: int) -> Iterator[bytes]:
    """Bytes ``[start, stop)`` of a chunk stream, without joining it."""
    offset = 0
    for chunk in chunks:
        chunk_end = offset + len(chunk)
        if chunk_end > start and offset < stop:
            yield chunk[max(0, start - offset) : min(len(chunk), stop - offset)]
        offset = chunk_end
        if offset >= stop:
            return


# ---------------------------------------------------------------------------------------------------------------
# The simulator


class GatewaySimulator:
    """The NeoDay gateway plus its object store on two loopback ports, with a seeded catalogue of exports.

    Use as a context manager (or ``start()``/``stop()``); ``port=0``/``download_port=0`` pick free ports.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        download_port: int = 0,
        seed: int = 0,
        client_id: str = "exportlake-local",
        client_secret: str = "local-secret-not-a-real-one",  # noqa: S107 - a local fake's well-known default
        results_per_export: int = 3,
        records: int | tuple[int, int] = (50, 200),
        max_per_page: int = 10,
        url_ttl: float = 300,
        include_never_run: bool = True,
        include_unknown_type: bool = False,
        reject_authorization_on_download: bool = True,
        content_length_max_records: int = 20_000,
        chunk_size: int = 1 << 16,
    ) -> None:
        self.host = host
        self.client_id = client_id
        self.client_secret = client_secret
        self.max_per_page = max_per_page
        self.url_ttl = url_ttl
        self.reject_authorization_on_download = reject_authorization_on_download
        #: Up to this many records a download carries Content-Length (the document is measured first, by
        #: streaming it once); above it the body is chunked, so both framings get exercised.
        self.content_length_max_records = content_length_max_records
        self.chunk_size = chunk_size
        self.faults = Faults()
        self.tokens_issued = 0
        self._requested_ports = (port, download_port)
        self._records_spec = records
        self._rng = random.Random(f"exportlake-sim:{seed}")
        self._lock = threading.RLock()
        self._tokens: set[str] = set()
        self._requests: list[RequestRecord] = []
        self._exports: dict[str, SimExport] = {}
        self._results: dict[str, SimResult] = {}
        self._lengths: dict[str, int] = {}
        self._signing_key = secrets.token_bytes(32)
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._build_catalogue(results_per_export, include_never_run, include_unknown_type)

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind both ports and serve in background threads."""
        if self._servers:
            return self
        for handler_base, port in zip((_GatewayHandler, _DownloadHandler), self._requested_ports, strict=True):
            handler = type(handler_base.__name__, (handler_base,), {"sim": self})
            server = ThreadingHTTPServer((self.host, port), handler)
            server.daemon_threads = True
            self._servers.append(server)
            # A short poll interval makes stop() take milliseconds instead of half a second per server.
            thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name=f"sim-{handler_base.port_name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and release both ports."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _port(self, index: int) -> int:
        if not self._servers:
            raise RuntimeError("simulator not started")
        return int(self._servers[index].server_address[1])

    @property
    def port(self) -> int:
        """The gateway port (after start)."""
        return self._port(0)

    @property
    def download_port(self) -> int:
        """The object-store port (after start)."""
        return self._port(1)

    @property
    def url(self) -> str:
        """Gateway base URL, e.g. ``http://127.0.0.1:8080`` (the API lives under ``/api/1``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def download_base(self) -> str:
        """Object-store base URL that download URLs start with."""
        return f"http://{self.host}:{self.download_port}"

    # --- catalogue ------------------------------------------------------------------------------------------

    def _record_count(self) -> int:
        spec = self._records_spec
        return self._rng.randint(*spec) if isinstance(spec, tuple) else int(spec)

    def _build_catalogue(self, per_export: int, never_run: bool, unknown: bool) -> None:
        now = _now()
        keys: list[tuple[str, str, tuple[str, ...] | None]] = [(system_name_of(k), k, None) for k in EXPORT_TYPES]
        if unknown:
            keys.append(("referral-info", "referral_info", sampledata.EXTRA_TYPES["referral_info"]))
        for name, key, columns in keys:
            self.add_export(name, key, columns=columns)
            for day in range(per_export, 0, -1):
                # Oldest first, one a day at a varied hour, so the newest is last_run and pages have an order.
                created = now - timedelta(days=day - 1, hours=self._rng.uniform(1, 20))
                self.add_result(name, created_at=created)
        if never_run:
            self.add_export("all-coupons-weekly", "all_coupons")

    def add_export(
        self,
        system_name: str,
        key: str,
        n_results: int = 0,
        n_records: int | None = None,
        *,
        columns: Sequence[str] | None = None,
        export_id: str | None = None,
    ) -> str:
        """Add an export writing documents under ``key`` (any key; unknown keys need ``columns``); return its id.

        ``system_name`` is deliberately not validated, so tests can serve hostile names to the client.
        ``n_results`` results of ``n_records`` records each are added at once.
        """
        cols = tuple(columns) if columns else sampledata.columns_of(key)
        if cols is None:
            raise ValueError(f"key {key!r} is not a known type: pass columns")
        with self._lock:
            if system_name in self._exports:
                raise ValueError(f"export {system_name!r} exists")
            export = SimExport(export_id or sampledata.random_id(self._rng), system_name, key, cols)
            self._exports[system_name] = export
        now = _now()
        for i in range(n_results, 0, -1):
            self.add_result(system_name, n_records=n_records, created_at=now - timedelta(hours=i))
        return export.id

    def add_result(
        self,
        system_name: str,
        n_records: int | None = None,
        created_at: datetime | None = None,
        expires_at: datetime | None = None,
        *,
        result_id: str | None = None,
        seed: int | None = None,
    ) -> str:
        """Add a result to an export and return its id; the newest result is the export's ``last_run``.

        Nothing is generated here: a ``n_records=1_000_000`` result costs a few bytes until downloaded.
        """
        with self._lock:
            export = self._exports[system_name]
            created = created_at or _now()
            result = SimResult(
                id=result_id or sampledata.random_id(self._rng),
                export=export,
                n_records=self._record_count() if n_records is None else n_records,
                seed=self._rng.randrange(2**31) if seed is None else seed,
                created_at=created,
                expires_at=expires_at or created + timedelta(days=90),
            )
            if result.id in self._results:
                raise ValueError(f"result {result.id!r} exists")
            export.results.append(result)
            self._results[result.id] = result
            return result.id

    def expire_result(self, result_id: str) -> None:
        """Make a result expired now (fetch answers 410, its download 404)."""
        with self._lock:
            self._results[result_id].expires_at = _now() - timedelta(seconds=1)

    def exports(self) -> list[dict[str, Any]]:
        """The export list exactly as the gateway serves it."""
        return self._list_exports()

    def results(self, system_name: str) -> list[dict[str, str]]:
        """Every result of an export as the API lists them (newest first)."""
        with self._lock:
            return [r.summary() for r in self._exports[system_name].newest_first()]

    def result_info(self, result_id: str) -> SimResult:
        """The simulator's own view of a result (key, n_records, seed, export, …)."""
        with self._lock:
            return self._results[result_id]

    def records(self, result_id: str) -> list[dict[str, Any]]:
        """The exact records of a result's document (materialised: for small results and assertions)."""
        r = self.result_info(result_id)
        return sampledata.generate_records(r.export.key, r.n_records, r.seed, r.export.columns)

    def document_bytes(self, result_id: str) -> bytes:
        """The exact bytes the download serves for a result."""
        return b"".join(self._iter_result_bytes(self.result_info(result_id)))

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (the next gateway call answers 401)."""
        with self._lock:
            self._tokens.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request received so far, on both ports, in arrival order."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._lock:
            self._requests.clear()

    # --- internals used by the handlers ---------------------------------------------------------------------

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _issue_token(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
            self.tokens_issued += 1
        return token

    def _token_valid(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            return token.strip() in self._tokens

    def _list_exports(self) -> list[dict[str, Any]]:
        with self._lock:
            listing: list[dict[str, Any]] = []
            for export in self._exports.values():
                ordered = export.newest_first()
                listing.append(
                    {
                        "id": export.id,
                        "system_name": export.system_name,
                        "last_run": ordered[0].summary() if ordered else None,
                    }
                )
            return listing

    def _results_page(self, name: str, page: int, per_page: int) -> dict[str, Any] | None:
        # The server caps the page size whatever the client asks: clients must follow `total`, not assume.
        size = min(per_page, self.max_per_page)
        with self._lock:
            export = self._exports.get(name)
            if export is None:
                return None
            ordered = export.newest_first()
            chunk = ordered[(page - 1) * size : page * size]
            return {"results": [r.summary() for r in chunk], "total": len(ordered)}

    def _find_result(self, result_id: str) -> SimResult | None:
        with self._lock:
            return self._results.get(result_id)

    def _object_path(self, result: SimResult) -> str:
        return f"{DOWNLOAD_PREFIX}{quote(result.export.system_name, safe='')}/{quote(result.id, safe='')}.json"

    def _signature(self, path: str, expires: str) -> str:
        return hmac.new(self._signing_key, f"GET\n{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def _check_signature(self, path: str, expires: str, signature: str) -> tuple[str, str] | None:
        """None if the pre-signed query is valid now, else the S3 error (code, message) to answer 403 with."""
        if not expires.isdigit() or not hmac.compare_digest(signature, self._signature(path, expires)):
            return (
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided",
            )
        if time.time() >= int(expires):
            return "AccessDenied", "Request has expired"
        return None

    def _sign_url(self, result: SimResult) -> str:
        path = self._object_path(result)
        expires = str(int(time.time() + self.url_ttl))
        return f"{self.download_base}{path}?X-Expires={expires}&X-Signature={self._signature(path, expires)}"

    def _result_at(self, path: str) -> SimResult | None:
        if not path.startswith(DOWNLOAD_PREFIX) or not path.endswith(".json"):
            return None
        name, sep, result_id = path[len(DOWNLOAD_PREFIX) : -len(".json")].partition("/")
        with self._lock:
            result = self._results.get(unquote(result_id)) if sep else None
        if result is None or result.export.system_name != unquote(name):
            return None
        return result

    def _iter_result_bytes(self, result: SimResult) -> Iterator[bytes]:
        export = result.export
        return sampledata.iter_document_bytes(
            export.key, result.n_records, result.seed, chunk_size=self.chunk_size, columns=export.columns
        )

    def _document_length(self, result: SimResult) -> int:
        with self._lock:
            cached = self._lengths.get(result.id)
        if cached is None:
            cached = sum(len(c) for c in self._iter_result_bytes(result))
            with self._lock:
                self._lengths[result.id] = cached
        return cached


# ---------------------------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``exportlake simulator``."""
    parser = argparse.ArgumentParser(prog="exportlake simulator", description="Run the local NeoDay gateway simulator.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=8080, help="gateway port (0 = any free port)")
    parser.add_argument("--download-port", type=int, default=8081, help="object-store port (0 = any free port)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the catalogue and its data")
    parser.add_argument("--client-id", default="exportlake-local")
    parser.add_argument("--client-secret", default="local-secret-not-a-real-one")
    parser.add_argument("--results-per-export", type=int, default=3)
    parser.add_argument("--records", type=int, default=None, help="records per result (default: 50–200, seeded)")
    parser.add_argument("--max-per-page", type=int, default=10, help="server-side cap on perPage")
    parser.add_argument("--url-ttl", type=float, default=300, help="seconds a download URL stays valid")
    parser.add_argument("--unknown-type", action="store_true", help="also serve an export of an unregistered type")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the simulator until Ctrl-C."""
    args = build_parser().parse_args(argv)
    sim = GatewaySimulator(
        host=args.host,
        port=args.port,
        download_port=args.download_port,
        seed=args.seed,
        client_id=args.client_id,
        client_secret=args.client_secret,
        results_per_export=args.results_per_export,
        records=args.records if args.records is not None else (50, 200),
        max_per_page=args.max_per_page,
        url_ttl=args.url_ttl,
        include_unknown_type=args.unknown_type,
    )
    with sim:
        # A local fake, but still: never echo a secret, say where it came from.
        default_secret = args.client_secret == build_parser().get_default("client_secret")
        secret_hint = "the default (see --help)" if default_secret else "the one passed with --client-secret"
        print(f"gateway   {sim.url}  (API under {sim.url}{API})")
        print(f"downloads {sim.download_base}")
        print(f"client id {sim.client_id}; client secret: {secret_hint}")
        print(f"{len(sim.exports())} exports. Ctrl-C to stop.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
