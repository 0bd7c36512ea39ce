"""The simulator's two HTTP handlers: the gateway API (token, exports, paged results, fetch) and the object store
playing pre-signed downloads (expiry, Range, faults).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from exportlake.emulator.catalogue import EXPORTS_PATH, FETCH_PREFIX, TOKEN_PATH, SimResult
from exportlake.emulator.faults import Fault, Port, RequestRecord

if TYPE_CHECKING:
    from exportlake.emulator.server import GatewaySimulator

TOKEN_EXPIRES_IN = 15897600  # what the real gateway answers (about 184 days)


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
