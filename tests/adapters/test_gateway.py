"""The gateway client against the simulator on loopback: token, retries, paging, and the guarded download."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import requests

from exportlake.adapters.download import DownloadGuard
from exportlake.adapters.gateway import Credentials, HttpGateway, TokenCache, new_session, retry_policy
from exportlake.domain.errors import AuthError, DownloadExpired, DownloadRefused, TransientError, ValidationError
from exportlake.emulator.server import GatewaySimulator


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(seed=3, records=(5, 15), max_per_page=2, results_per_export=5) as s:
        yield s


def client(sim: GatewaySimulator, secret: str | None = None, hosts: tuple[str, ...] = ("127.0.0.1",)) -> HttpGateway:
    creds = Credentials(sim.client_id, secret or sim.client_secret)
    # Fast retries for tests: same policy, smaller backoff.
    return HttpGateway(sim.url, lambda: creds, hosts, session=new_session(retry_policy(total=4, backoff=0.01)))


def test_token_is_reused_and_renewed_once_on_401(sim: GatewaySimulator) -> None:
    gw = client(sim)
    gw.list_exports()
    gw.list_exports()
    assert sim.tokens_issued == 1
    sim.revoke_tokens()
    assert len(gw.list_exports()) > 0
    assert sim.tokens_issued == 2


def test_bad_credentials_are_an_auth_error_without_the_secret(sim: GatewaySimulator) -> None:
    gw = client(sim, secret="wrong-secret-value")
    with pytest.raises(AuthError) as err:
        gw.list_exports()
    assert "wrong-secret-value" not in str(err.value)
    assert "wrong-secret-value" not in repr(Credentials("id", "wrong-secret-value"))


def test_pages_until_total_with_a_server_capped_page(sim: GatewaySimulator) -> None:
    gw = client(sim)
    listed = gw.list_results("win-info")
    assert sorted(r.result_id for r in listed) == sorted(r["id"] for r in sim.results("win-info"))
    assert len(listed) == 5
    pages = [r for r in sim.requests if r.path.endswith("/win-info/results")]
    assert len(pages) == 3  # 2 + 2 + 1 with the server's cap of 2 per page


def test_retries_429_with_retry_after_5xx_and_slow(sim: GatewaySimulator) -> None:
    gw = client(sim)
    gw.list_exports()  # the token first, so the faults hit the listing
    sim.clear_requests()
    sim.faults.inject("rate_limit", times=2, retry_after=0, target="gateway")
    sim.faults.inject("server_error", times=1, status=502, target="gateway")
    assert len(gw.list_exports()) == len(sim.exports())
    statuses = [r.status for r in sim.requests if r.path.endswith("/automated")]
    assert statuses == [429, 429, 502, 200]


def test_gives_up_after_retries_with_a_transient_error(sim: GatewaySimulator) -> None:
    gw = client(sim)
    gw.list_exports()
    sim.faults.inject("server_error", times=None, status=503, target="gateway")
    with pytest.raises(TransientError):
        gw.list_exports()
    sim.faults.clear()


def test_download_streams_the_document_without_authorization(sim: GatewaySimulator) -> None:
    gw = client(sim)
    rid = sim.results("win-info")[0]["id"]
    url = gw.download_url(rid)
    with gw.open_download(url) as chunks:
        body = b"".join(chunks)
    assert body == sim.document_bytes(rid)
    assert getattr(chunks, "length", None) == len(body)  # the declared size, for a progress display's ETA
    [download] = [r for r in sim.requests if r.port == "download"]
    assert download.header("Authorization") is None
    sim.content_length_max_records = 0  # served chunked: no size is known
    with gw.open_download(gw.download_url(rid)) as chunks:
        assert b"".join(chunks) == body and getattr(chunks, "length", 0) is None


def test_expired_url_is_reported_as_expired(sim: GatewaySimulator) -> None:
    gw = client(sim)
    rid = sim.results("win-info")[0]["id"]
    url = gw.download_url(rid)
    sim.faults.inject("url_expired", target="download")
    with pytest.raises(DownloadExpired), gw.open_download(url):
        pass


def test_truncated_body_is_transient(sim: GatewaySimulator) -> None:
    gw = client(sim)
    rid = sim.results("win-info")[0]["id"]
    sim.faults.inject("truncated", target="download", fraction=0.5)
    with pytest.raises(TransientError), gw.open_download(gw.download_url(rid)) as chunks:
        b"".join(chunks)


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example.com/x.json",  # plain http off loopback
        "https://evil.example.com/x.json",  # host not allowed
        "ftp://bucket.ams3.digitaloceanspaces.com/x",  # scheme
        "https://user:pw@bucket.ams3.digitaloceanspaces.com/x",  # credentials in the URL
        "https://digitaloceanspaces.com.evil.com/x",  # suffix trick
    ],
)
def test_guard_refuses_before_sending(url: str) -> None:
    with pytest.raises(DownloadRefused):
        DownloadGuard(["*.digitaloceanspaces.com"]).check(url)


def test_guard_allows_patterns_and_exact_hosts() -> None:
    guard = DownloadGuard(["*.digitaloceanspaces.com", "cdn.example.com", "127.0.0.1"])
    assert guard.check("https://assets-x.ams3.digitaloceanspaces.com/a.json?sig=1")
    assert guard.check("https://cdn.example.com:8443/a.json")
    assert guard.check("http://127.0.0.1:9999/a.json")
    with pytest.raises(DownloadRefused):
        guard.check("https://digitaloceanspaces.com/a.json")


def test_refused_download_sends_nothing(sim: GatewaySimulator) -> None:
    gw = client(sim, hosts=("*.digitaloceanspaces.com",))
    rid = sim.results("win-info")[0]["id"]
    url = gw.download_url(rid)
    with pytest.raises(DownloadRefused), gw.open_download(url):
        pass
    assert [r for r in sim.requests if r.port == "download"] == []


def test_redirect_off_the_allowlist_is_not_followed(sim: GatewaySimulator) -> None:
    class Redirecting(requests.Session):
        def get(self, url: str, **kw: object) -> requests.Response:  # type: ignore[override]
            resp = requests.Response()
            resp.status_code = 302
            resp.headers["Location"] = "https://attacker.example.net/steal"
            resp.url = url
            resp.raw = io.BytesIO(b"")
            return resp

    gw = HttpGateway(sim.url, lambda: Credentials("a", "b"), ("127.0.0.1",), download_session=Redirecting())
    with (
        pytest.raises(DownloadRefused, match=r"attacker\.example\.net"),
        gw.open_download(sim.download_base + "/x.json"),
    ):
        pass


def test_hostile_names_from_the_api_are_refused(sim: GatewaySimulator) -> None:
    sim.add_export("../etc-passwd", "win_info", n_results=1)
    gw = client(sim)
    with pytest.raises(ValidationError):
        gw.list_exports()


def test_token_cache_renews_before_expiry() -> None:
    now = [0.0]
    tokens = iter(["t1", "t2"])
    cache = TokenCache(lambda: (next(tokens), 1000.0), clock=lambda: now[0])
    assert cache.get() == "t1"
    now[0] = 650.0
    assert cache.get() == "t1"
    now[0] = 701.0  # within the 300 s margin of expiry
    assert cache.get() == "t2" and cache.fetches == 2


def test_plain_http_to_a_name_starting_with_127_is_refused() -> None:
    with pytest.raises(DownloadRefused):
        DownloadGuard(["*.digitaloceanspaces.com"]).check("http://127.x.nyc3.digitaloceanspaces.com/a.json")


# -- bounded waits and the request-rate bound ------------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when slept on; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def bounded_client(sim: GatewaySimulator, fake: FakeTime, **kw: object) -> HttpGateway:
    creds = Credentials(sim.client_id, sim.client_secret)
    return HttpGateway(sim.url, lambda: creds, ("127.0.0.1",), clock=fake.clock, sleep=fake.sleep, **kw)  # type: ignore[arg-type]


def test_a_retry_after_of_an_hour_is_not_slept_but_transient(sim: GatewaySimulator) -> None:
    fake = FakeTime()
    gw = bounded_client(sim, fake, max_requests_per_second=0)
    gw.list_exports()
    sim.faults.inject("rate_limit", times=1, retry_after=3600, target="gateway")
    with pytest.raises(TransientError, match=r"wait 3600 s \(Retry-After\), more than the 30 s allowed"):
        gw.list_exports()
    assert fake.sleeps == []


def test_a_short_retry_after_is_honoured_within_the_budget(sim: GatewaySimulator) -> None:
    fake = FakeTime()
    gw = bounded_client(sim, fake, max_requests_per_second=0)
    gw.list_exports()
    sim.faults.inject("rate_limit", times=1, retry_after=2, target="gateway")
    assert gw.list_exports()
    assert fake.sleeps == [2.0]


def test_no_wait_passes_the_deadline(sim: GatewaySimulator) -> None:
    fake = FakeTime()
    gw = bounded_client(sim, fake, max_requests_per_second=0, deadline=lambda: 1.5)
    gw.list_exports()
    sim.faults.inject("rate_limit", times=1, retry_after=2, target="gateway")
    with pytest.raises(TransientError, match=r"would pass the deadline \(1.5 s left\)"):
        gw.list_exports()
    assert fake.sleeps == []


def test_no_request_starts_after_the_deadline(sim: GatewaySimulator) -> None:
    fake = FakeTime()
    gw = bounded_client(sim, fake)
    gw.list_exports()
    sim.clear_requests()
    gw.set_deadline(lambda: 0.0)
    with pytest.raises(TransientError, match="no time left"):
        gw.list_results("win-info")
    with pytest.raises(TransientError, match="no time left"):
        gw.download_url(sim.results("win-info")[0]["id"])
    assert sim.requests == []
    gw.set_deadline(None)
    assert gw.list_results("win-info")


def test_gateway_calls_are_spaced_by_the_rate_bound(sim: GatewaySimulator) -> None:
    fake = FakeTime()
    gw = bounded_client(sim, fake, max_requests_per_second=4)
    for _ in range(5):
        gw.list_exports()  # the first call also fetches the token: 6 requests
    gateway_calls = [r for r in sim.requests if not r.path.startswith("/files")]
    assert len(gateway_calls) == 6
    assert fake.sleeps == pytest.approx([0.25] * 5)  # 6 requests at 4/s: 1.25 s, never faster
    assert fake.now - 1000.0 == pytest.approx(1.25)


def test_a_body_cut_short_without_content_length_is_transient() -> None:
    """A close-delimited body (no Content-Length, not chunked) that stops early: the document shows it."""
    import http.server
    import threading

    from exportlake.convert.records import RecordStream

    body = b'{"win_info": [{"userid": "a", "stackid": "b"}, {"userid": "c", "sta'

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()  # no Content-Length: the body ends when the connection closes
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        gw = HttpGateway("http://127.0.0.1:1", lambda: Credentials("i", "s"), ("127.0.0.1",))
        url = f"http://127.0.0.1:{server.server_address[1]}/doc.json"
        with pytest.raises(TransientError, match="ends early"), gw.open_download(url) as chunks:
            for _ in RecordStream(chunks).batches():
                pass
    finally:
        server.shutdown()
        server.server_close()


def test_a_throttled_download_host_is_waited_for_within_the_time_left(sim: GatewaySimulator) -> None:
    """A 429 from the object store with a long Retry-After is honoured when the time left allows it (it used to
    fail at once as "the gateway asked to wait", burning the job's deliveries in seconds)."""
    fake = FakeTime()
    gw = bounded_client(sim, fake, max_requests_per_second=0, deadline=lambda: 600.0)
    rid = sim.results("win-info")[0]["id"]
    url = gw.download_url(rid)
    sim.faults.inject("rate_limit", times=1, retry_after=120, target="download")
    with gw.open_download(url) as chunks:
        assert b"".join(chunks) == sim.document_bytes(rid)
    assert fake.sleeps == [120.0]


def test_a_download_wait_past_the_deadline_names_the_download_host(sim: GatewaySimulator) -> None:
    fake = FakeTime()
    gw = bounded_client(sim, fake, max_requests_per_second=0, deadline=lambda: 90.0)
    url = gw.download_url(sim.results("win-info")[0]["id"])
    sim.faults.inject("rate_limit", times=1, retry_after=120, target="download")
    with pytest.raises(TransientError) as caught, gw.open_download(url):
        pass
    message = str(caught.value)
    assert "download from 127.0.0.1: the download host asked to wait 120.0 s (Retry-After)" in message
    assert "gateway" not in message and fake.sleeps == []
