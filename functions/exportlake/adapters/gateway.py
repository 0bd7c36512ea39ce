"""The NeoDay gateway over HTTP: OAuth client credentials, retries, paging, and a guarded download."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from exportlake.adapters.download import DownloadGuard
from exportlake.domain.errors import (
    AuthError,
    DownloadExpired,
    DownloadRefused,
    GatewayError,
    TransientError,
    ValidationError,
)
from exportlake.domain.limits import GATEWAY_MAX_REQUESTS_PER_SECOND, GATEWAY_MAX_WAIT_SECONDS
from exportlake.domain.models import Export, ResultRef
from exportlake.domain.naming import validate_export_name, validate_result_id
from exportlake.domain.ports import OnInvalid, ResultsPage

log = logging.getLogger(__name__)
# urllib3 logs each retry with the request URL; for a download that is the pre-signed URL and its signature.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

TOKEN_PATH = "/api/1/oauth2/access_token"  # noqa: S105 - a path, not a password
EXPORTS_PATH = "/api/1/data-exporter/automated"
PER_PAGE = 100
MAX_PAGES = 10_000
CHUNK_SIZE = 1 << 20
TIMEOUT = (10.0, 60.0)  # (connect, read) seconds
TOKEN_MARGIN = 300.0  # renew this many seconds before the token's stated expiry


class Budget:
    """How long the gateway client may still wait: a cap per wait and an optional deadline (seconds left).

    ``deadline`` returns the seconds left of the caller's own budget (the Lambda context's remaining time, minus a
    margin); ``None`` means no deadline. Shared by a client's sessions, so it can be set after they exist.
    """

    def __init__(
        self,
        max_wait: float = GATEWAY_MAX_WAIT_SECONDS,
        deadline: Callable[[], float] | None = None,
        who: str = "the gateway",
    ):
        self.max_wait = float(max_wait)
        self.deadline = deadline
        #: Who asks for the waits, as messages name it ("the gateway", "the download host").
        self.who = who

    def left(self) -> float:
        """Seconds left before the deadline (infinite without one)."""
        return float("inf") if self.deadline is None else float(self.deadline())

    def check(self, what: str) -> None:
        """Raise ``TransientError`` when no time is left to start ``what``."""
        if self.left() <= 0:
            raise TransientError(f"{what}: no time left before the deadline; try again later")

    def allow(self, wait: float, why: str) -> float:
        """``wait`` if it fits the cap and the time left, else raise ``TransientError`` (never sleep past it)."""
        left = self.left()
        if wait > self.max_wait:
            raise TransientError(
                f"{self.who} asked to wait {wait:.0f} s ({why}), more than the {self.max_wait:.0f} s allowed; "
                "try again later"
            )
        if wait >= left:
            raise TransientError(
                f"{self.who} asked to wait {wait:.1f} s ({why}), which would pass the deadline ({left:.1f} s left); "
                "try again later"
            )
        return wait


class BoundedRetry(Retry):
    """urllib3's ``Retry`` whose every wait (``Retry-After`` or backoff) is checked against a ``Budget``."""

    def __init__(
        self, *args: Any, budget: Budget | None = None, sleep: Callable[[float], None] = time.sleep, **kw: Any
    ):
        super().__init__(*args, **kw)
        self.budget = budget or Budget()
        self._sleep = sleep

    def new(self, **kw: Any) -> BoundedRetry:
        """The next state of the retry (urllib3 copies it per attempt): keep the budget and the sleep."""
        kw.setdefault("budget", self.budget)
        kw.setdefault("sleep", self._sleep)
        return super().new(**kw)  # type: ignore[return-value]

    def sleep(self, response: Any = None) -> None:
        """Sleep before the next attempt, within the budget; raise ``TransientError`` rather than sleep past it."""
        wait = None
        why = "Retry-After"
        if self.respect_retry_after_header and response is not None:
            raw = response.headers.get("Retry-After")
            if raw is not None:
                try:
                    wait = float(self.parse_retry_after(raw))
                except Exception:  # an unparsable header: back off as if there were none
                    wait = None
        if wait is None:
            wait, why = self.get_backoff_time(), "backoff"
        if wait > 0:
            self._sleep(self.budget.allow(wait, why))


def retry_policy(
    total: int = 5, backoff: float = 0.5, budget: Budget | None = None, sleep: Callable[[float], None] = time.sleep
) -> Retry:
    """urllib3's retry: 429/5xx and timeouts, exponential backoff with jitter, ``Retry-After`` honoured within
    ``budget`` (a cap per wait and the caller's deadline).

    POST is retried too: the token request is idempotent.
    """
    return BoundedRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        backoff_factor=backoff,
        backoff_jitter=backoff,
        backoff_max=30.0,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
        budget=budget,
        sleep=sleep,
    )


class RateLimit:
    """At most ``per_second`` calls of ``wait()`` per second (evenly spaced); thread-safe. ``0`` disables it."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self, budget: Budget | None = None) -> None:
        """Block until the next call is allowed (within ``budget``: never past the deadline)."""
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            at = max(now, self._next)
            self._next = at + self.interval
        if at > now:
            delay = at - now
            self._sleep(budget.allow(delay, "request-rate limit") if budget else delay)


def new_session(retry: Retry | None = None) -> requests.Session:
    """A session with the retry policy mounted, ignoring proxy and netrc settings from the environment."""
    session = requests.Session()
    session.trust_env = False  # no ~/.netrc credentials or proxies sneak in
    adapter = HTTPAdapter(max_retries=retry or retry_policy(), pool_maxsize=4)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclass(frozen=True)
class Credentials:
    """The API client credentials (kept out of repr so they never reach a log)."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, client_secret=***)"


class TokenCache:
    """One bearer token per process, reused until shortly before it expires; thread-safe."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.fetches = 0

    def get(self) -> str:
        """The cached token, fetching a new one when there is none or it is about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires:
                token, lifetime = self._fetch()
                self.fetches += 1
                self._token = token
                self._expires = self._clock() + max(lifetime - TOKEN_MARGIN, lifetime / 2)
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (after a 401), unless another thread already replaced it."""
        with self._lock:
            if self._token == token:
                self._token = None


def _show(item: object) -> str:
    """An item from the API as short text for a report (it may be anything)."""
    try:
        text = json.dumps(item, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(item)
    return text[:500]


class HttpGateway:
    """The gateway client the planner and copier use."""

    def __init__(
        self,
        base_url: str,
        credentials: Callable[[], Credentials],
        download_hosts: Sequence[str],
        *,
        session: requests.Session | None = None,
        download_session: requests.Session | None = None,
        per_page: int = PER_PAGE,
        deadline: Callable[[], float] | None = None,
        max_wait: float = GATEWAY_MAX_WAIT_SECONDS,
        max_requests_per_second: float = GATEWAY_MAX_REQUESTS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """``deadline`` returns the seconds left to the caller (see ``set_deadline``); ``max_wait`` caps one wait
        (``Retry-After``, backoff); ``max_requests_per_second`` bounds the gateway calls (``0``: unbounded)."""
        self._base = base_url.rstrip("/")
        self._credentials = credentials
        self.budget = Budget(max_wait, deadline)
        self._session = session or new_session(retry_policy(budget=self.budget, sleep=sleep))
        # The object store's waits are bounded by the time left only (a throttled download is worth waiting for:
        # failing it burns one of the job's few deliveries); the deadline is the client's, read at each wait.
        self.download_budget = Budget(float("inf"), self.budget.left, who="the download host")
        # A separate session: it never holds the bearer token, so no redirect or retry can carry it off-host.
        self._download = download_session or new_session(retry_policy(budget=self.download_budget, sleep=sleep))
        self._guard = DownloadGuard(download_hosts)
        self._per_page = per_page
        self.rate = RateLimit(max_requests_per_second, clock, sleep)
        self.tokens = TokenCache(self._fetch_token)

    def set_deadline(self, deadline: Callable[[], float] | None) -> None:
        """Bound every later wait by ``deadline()`` seconds left (e.g. the Lambda context's remaining time)."""
        self.budget.deadline = deadline

    def _before_call(self, what: str) -> None:
        self.budget.check(what)
        self.rate.wait(self.budget)

    # -- token ------------------------------------------------------------------------------------------------
    def _fetch_token(self) -> tuple[str, float]:
        creds = self._credentials()
        self._before_call("token request")
        try:
            resp = self._session.post(
                self._base + TOKEN_PATH,
                json={
                    "grant_type": "client_credentials",
                    "client_id": creds.client_id,
                    "client_secret": creds.client_secret,
                },
                timeout=TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise TransientError(f"token request failed: {type(exc).__name__}") from None
        if resp.status_code in (400, 401, 403):
            raise AuthError(f"the gateway refused the client credentials (HTTP {resp.status_code})")
        body = self._json(resp, "token")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise GatewayError("token response holds no access_token")
        expires_in = body.get("expires_in", 3600)
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else 3600.0
        return token, lifetime

    # -- calls ------------------------------------------------------------------------------------------------
    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET a gateway path with the bearer token; on 401 renew the token once and retry."""
        for attempt in (1, 2):
            token = self.tokens.get()
            self._before_call(f"GET {path}")
            try:
                resp = self._session.get(
                    self._base + path,
                    params=params,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                    timeout=TIMEOUT,
                    allow_redirects=False,  # a redirect would carry the token to wherever it points
                )
            except requests.RequestException as exc:
                raise TransientError(f"GET {path} failed: {type(exc).__name__}") from None
            if resp.status_code == 401 and attempt == 1:
                log.info("gateway answered 401; renewing the token once")
                self.tokens.invalidate(token)
                continue
            if resp.status_code in (401, 403):
                raise AuthError(f"GET {path}: HTTP {resp.status_code} (does the client have automated-exports-view?)")
            return self._json(resp, f"GET {path}")
        raise AssertionError("unreachable")

    @staticmethod
    def _json(resp: requests.Response, what: str) -> Any:
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TransientError(f"{what}: HTTP {resp.status_code} after retries")
        if resp.status_code >= 300:
            raise GatewayError(f"{what}: HTTP {resp.status_code}")
        try:
            return resp.json()
        except ValueError:
            raise GatewayError(f"{what}: response is not JSON") from None

    def list_exports(self, on_invalid: OnInvalid | None = None) -> list[Export]:
        """Every active automated export with its newest result (bad items to ``on_invalid``, if given)."""
        body = self._get(EXPORTS_PATH)
        if not isinstance(body, list):
            raise GatewayError("GET /automated did not return a list")
        exports: list[Export] = []
        for item in body:
            try:
                exports.append(Export.from_api(item))
            except ValidationError as exc:
                if on_invalid is None:
                    raise
                on_invalid("export", _show(item), exc)
        return exports

    def list_results(self, export_name: str, on_invalid: OnInvalid | None = None) -> list[ResultRef]:
        """Every result of one export, paging until ``total`` is reached (the server may cap the page size)."""
        name = validate_export_name(export_name)
        seen: dict[str, ResultRef] = {}
        bad: set[str] = set()
        total: int | None = None
        for page in range(1, MAX_PAGES + 1):
            body = self._results_body(name, page)
            total = body["total"]
            before = len(seen) + len(bad)
            for ref in self._parse_results(name, body["results"], on_invalid, bad):
                seen[ref.result_id] = ref
            # Stop on a page that brings nothing new too: a total that over-counts, or a server that ignores
            # ``page``, must not loop 10,000 times.
            if len(seen) + len(bad) == before or len(seen) + len(bad) >= total:
                break
        if total is not None and len(seen) + len(bad) < total:
            # Results can appear while we page (newest first shifts pages); say so rather than hide it.
            log.warning("results of %s: total %d but %d distinct results listed", name, total, len(seen))
        return sorted(seen.values())

    def results_page(self, export_name: str, page: int, on_invalid: OnInvalid | None = None) -> ResultsPage:
        """One page of an export's results, in the gateway's order (bad items to ``on_invalid``, counted)."""
        name = validate_export_name(export_name)
        body = self._results_body(name, page)
        items = body["results"]
        refs = tuple(self._parse_results(name, items, on_invalid, set()))
        return ResultsPage(refs, len(items), body["total"])

    def _results_body(self, name: str, page: int) -> dict[str, Any]:
        body = self._get(f"{EXPORTS_PATH}/{quote(name, safe='')}/results", {"page": page, "perPage": self._per_page})
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise GatewayError(f"results of {name}: unexpected body")
        raw_total = body.get("total")
        if not isinstance(raw_total, int) or isinstance(raw_total, bool) or raw_total < 0:
            raise GatewayError(f"results of {name}: 'total' is missing or not a count")
        return body

    @staticmethod
    def _parse_results(name: str, items: list[Any], on_invalid: OnInvalid | None, bad: set[str]) -> list[ResultRef]:
        """The valid results of ``items`` in their order; each bad one reported once (``bad`` holds those told)."""
        out: list[ResultRef] = []
        for item in items:
            try:
                out.append(ResultRef.from_api(name, item))
            except ValidationError as exc:
                if on_invalid is None:
                    raise
                shown = _show(item)
                if shown not in bad:  # counted, so a page of bad items still moves paging on
                    bad.add(shown)
                    on_invalid("result", shown, exc)
        return out

    def download_url(self, result_id: str) -> str:
        """The pre-signed download URL of one result (short-lived: fetch it right before use)."""
        rid = validate_result_id(result_id)
        body = self._get(f"{EXPORTS_PATH}/fetch/{rid}")
        result = body.get("result") if isinstance(body, dict) else None
        url = result.get("download_url") if isinstance(result, dict) else None
        if not isinstance(url, str) or not url:
            raise GatewayError(f"fetch {rid}: no download_url in the response")
        return url

    @contextmanager
    def open_download(self, url: str) -> Iterator[Iterator[bytes]]:
        """Stream the document at ``url``: no Authorization header, no redirect off the allowlist."""
        resp = self._open(url)
        try:
            yield _Body(self._chunks(resp), resp.headers)
        finally:
            resp.close()

    def _open(self, url: str) -> requests.Response:
        for _ in range(5):
            self._guard.check(url)
            host = urlsplit(url).hostname or "?"
            self.budget.check(f"download from {host}")
            try:
                resp = self._download.get(url, stream=True, timeout=TIMEOUT, allow_redirects=False)
            except requests.RequestException as exc:
                raise TransientError(f"download from {host} failed: {type(exc).__name__}") from None
            except TransientError as exc:  # a wait the download host asked for did not fit: name the host
                raise TransientError(f"download from {host}: {exc}") from None
            if resp.is_redirect:
                location = resp.headers.get("Location", "")
                resp.close()
                url = urljoin(url, location)
                continue
            if resp.status_code in (401, 403, 410):
                resp.close()
                raise DownloadExpired(f"the object store refused the download URL (HTTP {resp.status_code})")
            if resp.status_code == 429 or resp.status_code >= 500:
                resp.close()
                raise TransientError(f"download from {host}: HTTP {resp.status_code} after retries")
            if resp.status_code != 200:
                resp.close()
                raise GatewayError(f"download: HTTP {resp.status_code}")
            return resp
        raise DownloadRefused("download URL redirects too often")

    @staticmethod
    def _chunks(resp: requests.Response) -> Iterator[bytes]:
        try:
            yield from resp.iter_content(chunk_size=CHUNK_SIZE)
        except requests.RequestException as exc:
            # A body cut short (urllib3 enforces Content-Length) is a network fault, not a bad document.
            raise TransientError(f"download interrupted: {type(exc).__name__}") from None


class _Body:
    """A download's chunks, with ``length``: the size the server declared (None if chunked or content-encoded)."""

    def __init__(self, chunks: Iterator[bytes], headers: Mapping[str, str]) -> None:
        self._chunks = chunks
        declared = headers.get("Content-Length", "")
        self.length = int(declared) if declared.isdigit() and not headers.get("Content-Encoding") else None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)
