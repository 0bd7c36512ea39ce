"""A local stand-in for the NeoDay gateway and its object store (demo, functional/e2e tests, benchmarks).

Two stdlib HTTP servers on loopback: the *gateway* (OAuth token, export list, paged results, fetch of a pre-signed
download URL) and the *download* port playing the object store (S3/Spaces-like pre-signed GETs that expire).
Records are never stored: each result is ``(key, n_records, seed)`` and documents are generated on demand by
:mod:`exportlake.emulator.sampledata`, streamed in chunks, so a million-record result costs no memory.

Faults are injected per request with :meth:`Faults.inject`; every request on either port is logged in
:attr:`GatewaySimulator.requests`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import random
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, unquote

from exportlake.domain.schemas import EXPORT_TYPES
from exportlake.emulator import sampledata
from exportlake.emulator.catalogue import API, DOWNLOAD_PREFIX, SimExport, SimResult, _now, system_name_of
from exportlake.emulator.faults import Faults, RequestRecord
from exportlake.emulator.http import _DownloadHandler, _GatewayHandler


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
