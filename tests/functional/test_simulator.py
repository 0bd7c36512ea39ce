"""The gateway simulator over real HTTP on loopback: token flow, listing, pagination, downloads, expiry, faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from exportlake.domain.schemas import EXPORT_TYPES
from exportlake.emulator import sampledata
from exportlake.emulator.server import GatewaySimulator, system_name_of

EXPORTS = "/api/1/data-exporter/automated"
TOKEN = "/api/1/oauth2/access_token"
FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(seed=7) as simulator:
        yield simulator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def get_token(sim: GatewaySimulator, http: requests.Session) -> str:
    body = {"grant_type": "client_credentials", "client_id": sim.client_id, "client_secret": sim.client_secret}
    response = http.post(sim.url + TOKEN, json=body, timeout=5)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def api(sim: GatewaySimulator, http: requests.Session, path: str, token: str, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return http.get(sim.url + EXPORTS + path, headers=headers, params=params or None, timeout=5)


def download_url(sim: GatewaySimulator, http: requests.Session, token: str, result_id: str) -> str:
    response = api(sim, http, f"/fetch/{result_id}", token)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["id"] == result_id
    return str(response.json()["result"]["download_url"])


def newest(sim: GatewaySimulator, name: str = "win-info") -> str:
    return sim.results(name)[0]["id"]


# --- token -------------------------------------------------------------------------------------------------------


def test_token_flow(sim: GatewaySimulator, http: requests.Session) -> None:
    body = {"grant_type": "client_credentials", "client_id": sim.client_id, "client_secret": sim.client_secret}
    ok = http.post(sim.url + TOKEN, json=body, timeout=5)
    assert ok.status_code == 200
    payload = ok.json()
    assert payload["token_type"] == "Bearer" and payload["expires_in"] == 15897600 and payload["access_token"]
    assert sim.tokens_issued == 1
    assert api(sim, http, "", payload["access_token"]).status_code == 200

    bad = http.post(sim.url + TOKEN, json={**body, "client_secret": "wrong"}, timeout=5)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert http.post(sim.url + TOKEN, json={**body, "client_id": "nobody"}, timeout=5).status_code == 401
    grant = http.post(sim.url + TOKEN, json={**body, "grant_type": "password"}, timeout=5)
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    assert http.post(sim.url + TOKEN, data=b"{not json", timeout=5).status_code == 400
    assert sim.tokens_issued == 1
    # The error bodies never echo the secret.
    assert sim.client_secret not in bad.text


def test_gateway_requires_a_valid_bearer(sim: GatewaySimulator, http: requests.Session) -> None:
    missing = http.get(sim.url + EXPORTS, timeout=5)
    assert missing.status_code == 401 and missing.json()["status"] == 401
    assert "Bearer" in missing.headers["WWW-Authenticate"]
    assert api(sim, http, "", "made-up-token").status_code == 401
    token = get_token(sim, http)
    assert http.get(sim.url + EXPORTS, headers={"Authorization": token}, timeout=5).status_code == 401  # no scheme
    assert api(sim, http, "", token).status_code == 200
    sim.revoke_tokens()
    assert api(sim, http, "", token).status_code == 401
    assert api(sim, http, "", get_token(sim, http)).status_code == 200
    assert sim.tokens_issued == 2


# --- listing and pagination ----------------------------------------------------------------------------------------


def test_list_exports_default_catalogue(sim: GatewaySimulator, http: requests.Session) -> None:
    listing = api(sim, http, "", get_token(sim, http)).json()
    by_name = {e["system_name"]: e for e in listing}
    for key in EXPORT_TYPES:
        export = by_name[system_name_of(key)]
        assert export["last_run"] == sim.results(export["system_name"])[0]
        assert len(sim.results(export["system_name"])) == 3
        assert len(export["id"]) == 25
    never = [e for e in listing if e["last_run"] is None]
    assert [e["system_name"] for e in never] == ["all-coupons-weekly"]
    assert "referral-info" not in by_name
    now = datetime.now(UTC)
    for export in listing:
        if export["last_run"]:
            assert datetime.fromisoformat(export["last_run"]["expires_at"]) > now
            assert export["last_run"]["created_at"].endswith("+00:00")


def test_catalogue_options() -> None:
    with GatewaySimulator(include_never_run=False, include_unknown_type=True, results_per_export=1, records=5) as s:
        names = [e["system_name"] for e in s.exports()]
        assert "all-coupons-weekly" not in names and "referral-info" in names
        rid = s.results("referral-info")[0]["id"]
        assert s.result_info(rid).export.key == "referral_info" and s.result_info(rid).n_records == 5
        assert json.loads(s.document_bytes(rid)) == {"referral_info": s.records(rid)}
        assert set(s.records(rid)[0]) == {"userid", "referrer_id", "referred_at"}


def test_seed_makes_the_catalogue_reproducible() -> None:
    a, b = GatewaySimulator(seed=3), GatewaySimulator(seed=3)
    ids = [[r["id"] for r in a.results(e["system_name"])] for e in a.exports()]
    assert ids == [[r["id"] for r in b.results(e["system_name"])] for e in b.exports()]
    rid = a.results("win-info")[0]["id"]
    assert a.document_bytes(rid) == b.document_bytes(rid)


def test_pagination_caps_page_size_and_returns_every_result_once(sim: GatewaySimulator, http: requests.Session) -> None:
    base = datetime.now(UTC) - timedelta(days=30)
    for i in range(20):
        sim.add_result("win-info", n_records=3, created_at=base + timedelta(hours=i))
    token = get_token(sim, http)
    first = api(sim, http, "/win-info/results", token, page=1, perPage=100).json()
    assert first["total"] == 23 and len(first["results"]) == 10  # capped at the server maximum

    seen: list[dict[str, str]] = []
    page = 1
    while True:
        body = api(sim, http, "/win-info/results", token, page=page, perPage=7).json()
        assert body["total"] == 23
        if not body["results"]:
            break
        assert len(body["results"]) <= 7
        seen.extend(body["results"])
        page += 1
    assert len(seen) == 23 and len({r["id"] for r in seen}) == 23
    assert seen == sim.results("win-info")
    created = [r["created_at"] for r in seen]
    assert created == sorted(created, reverse=True)  # newest first
    assert api(sim, http, "/win-info/results", token, page=99, perPage=10).json() == {"results": [], "total": 23}


def test_pagination_defaults_errors_and_configurable_cap(http: requests.Session) -> None:
    with GatewaySimulator(max_per_page=2) as sim:
        token = get_token(sim, http)
        body = api(sim, http, "/campaign-info/results", token).json()
        assert body["total"] == 3 and len(body["results"]) == 2
        assert api(sim, http, "/no-such-export/results", token).status_code == 404
        assert api(sim, http, "/win-info/results", token, page=0).status_code == 400
        assert api(sim, http, "/win-info/results", token, perPage="x").status_code == 400
        assert api(sim, http, "/all-coupons-weekly/results", token).json() == {"results": [], "total": 0}


def test_new_result_becomes_last_run(sim: GatewaySimulator, http: requests.Session) -> None:
    rid = sim.add_result("all-coupons-weekly", n_records=4)
    listing = {e["system_name"]: e for e in api(sim, http, "", get_token(sim, http)).json()}
    assert listing["all-coupons-weekly"]["last_run"]["id"] == rid
    assert len(sim.records(rid)) == 4


# --- fetch and download --------------------------------------------------------------------------------------------


def test_fetch_and_download_every_export_round_trip(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    for export in api(sim, http, "", token).json():
        if export["last_run"] is None:
            continue
        rid = export["last_run"]["id"]
        url = download_url(sim, http, token, rid)
        parts = urlsplit(url)
        assert url.startswith(sim.download_base + "/automated-exports/")
        assert parts.path == f"/automated-exports/{export['system_name']}/{rid}.json"
        assert set(parse_qs(parts.query)) == {"X-Expires", "X-Signature"}
        response = requests.get(url, timeout=5)  # a fresh client, as against a foreign host
        assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
        assert response.content == sim.document_bytes(rid)
        key = sim.result_info(rid).export.key
        assert response.json() == {key: sim.records(rid)}
    assert all(r.header("Authorization") is None for r in sim.requests if r.port == "download")
    assert all(r.header("Authorization") for r in sim.requests if r.port == "gateway" and r.path != TOKEN)


def test_fetch_unknown_and_expired(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    assert api(sim, http, "/fetch/doesnotexist0000000000000", token).status_code == 404
    rid = newest(sim)
    url = download_url(sim, http, token, rid)
    sim.expire_result(rid)
    assert api(sim, http, f"/fetch/{rid}", token).status_code == 410
    gone = http.get(url, timeout=5)  # the object is gone even though the URL is still signed
    assert gone.status_code == 404 and b"NoSuchKey" in gone.content
    past = datetime.now(UTC) - timedelta(days=1)
    old = sim.add_result("win-info", n_records=1, created_at=past - timedelta(days=1), expires_at=past)
    assert api(sim, http, f"/fetch/{old}", token).status_code == 410
    assert old in {r["id"] for r in sim.results("win-info")}  # expired results stay listed


def test_download_url_expires_and_signature_is_checked(http: requests.Session) -> None:
    with GatewaySimulator(url_ttl=0) as sim:
        token = get_token(sim, http)
        expired = http.get(download_url(sim, http, token, newest(sim)), timeout=5)
        assert expired.status_code == 403
        assert b"<Code>AccessDenied</Code>" in expired.content and b"Request has expired" in expired.content
        sim.url_ttl = 300
        url = download_url(sim, http, token, newest(sim))
        assert http.get(url, timeout=5).status_code == 200
        forged = http.get(url.replace("X-Signature=", "X-Signature=0"), timeout=5)
        assert forged.status_code == 403 and b"SignatureDoesNotMatch" in forged.content
        other = url.replace("/win-info/", "/campaign-info/")  # a signature is bound to its path
        assert http.get(other, timeout=5).status_code == 403
        assert http.get(url.split("?")[0], timeout=5).status_code == 403


def test_download_rejects_an_authorization_header(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    url = download_url(sim, http, token, newest(sim))
    response = http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 400 and b"InvalidArgument" in response.content
    leaked = [r for r in sim.requests if r.port == "download" and r.header("authorization")]
    assert len(leaked) == 1 and leaked[0].status == 400


def test_range_and_chunked_downloads(http: requests.Session) -> None:
    with GatewaySimulator(content_length_max_records=10, records=(300, 300)) as sim:
        token = get_token(sim, http)
        rid = newest(sim, "all-coupons")
        doc = sim.document_bytes(rid)
        url = download_url(sim, http, token, rid)
        whole = http.get(url, timeout=5)
        assert whole.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in whole.headers
        assert whole.content == doc
        part = http.get(url, headers={"Range": "bytes=100-199"}, timeout=5)
        assert part.status_code == 206 and part.content == doc[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(doc)}"
        tail = http.get(url, headers={"Range": "bytes=-10"}, timeout=5)
        assert tail.content == doc[-10:]
        assert http.get(url, headers={"Range": f"bytes={len(doc)}-"}, timeout=5).status_code == 416


def test_hostile_names_are_served_verbatim(sim: GatewaySimulator, http: requests.Session) -> None:
    # The simulator does not validate: it must be able to feed a client names the client has to refuse.
    sim.add_export("../etc/passwd", "win_info")
    rid = sim.add_result("../etc/passwd", n_records=2, result_id="x/../../y")
    token = get_token(sim, http)
    names = [e["system_name"] for e in api(sim, http, "", token).json()]
    assert "../etc/passwd" in names
    fetched = api(sim, http, "/fetch/x%2F..%2F..%2Fy", token).json()["result"]
    assert fetched["id"] == rid
    url = fetched["download_url"]
    assert "/automated-exports/..%2Fetc%2Fpasswd/x%2F..%2F..%2Fy.json?" in url
    assert http.get(url, timeout=5).json() == {"win_info": sim.records(rid)}


# --- faults -------------------------------------------------------------------------------------------------------


def test_rate_limit_fault(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    sim.faults.inject("rate_limit", retry_after=0)
    limited = api(sim, http, "", token)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "0"
    assert api(sim, http, "", token).status_code == 200  # consumed
    sim.faults.inject("rate_limit", times=2)
    assert [api(sim, http, "", token).headers.get("Retry-After") for _ in range(3)] == ["1", "1", None]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_fault(sim: GatewaySimulator, http: requests.Session, status: int) -> None:
    token = get_token(sim, http)
    sim.faults.inject("server_error", status=status, target="gateway")
    assert api(sim, http, "", token).status_code == status
    assert api(sim, http, "", token).status_code == 200


def test_unauthorized_fault(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    sim.faults.inject("unauthorized")
    get_token(sim, http)  # the token endpoint does not consume it: only token-bearing calls do
    assert api(sim, http, "", token).status_code == 401
    assert api(sim, http, "", token).status_code == 200  # the token itself is still fine
    sim.faults.inject("unauthorized", revoke=True)
    assert api(sim, http, "", token).status_code == 401
    assert api(sim, http, "", token).status_code == 401  # now it really is revoked
    assert api(sim, http, "", get_token(sim, http)).status_code == 200


def test_slow_fault(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    sim.faults.inject("slow", seconds=0.3)
    started = time.monotonic()
    assert api(sim, http, "", token).status_code == 200
    assert time.monotonic() - started >= 0.3
    sim.faults.inject("slow", seconds=1.0, path_prefix=EXPORTS)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(sim.url + EXPORTS, headers={"Authorization": f"Bearer {token}"}, timeout=0.2)


def test_throttled_fault_sends_the_whole_body_slowly(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    rid = newest(sim)
    doc = sim.document_bytes(rid)
    sim.faults.inject("throttled", bytes_per_second=len(doc) / 0.3)
    started = time.monotonic()
    assert http.get(download_url(sim, http, token, rid), timeout=5).content == doc
    slow = time.monotonic() - started
    assert slow >= 0.3 * 0.9
    started = time.monotonic()  # once: the next download is at full speed
    assert http.get(download_url(sim, http, token, rid), timeout=5).content == doc
    assert time.monotonic() - started < slow - 0.2


def test_truncated_fault(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    rid = newest(sim)
    doc = sim.document_bytes(rid)
    url = download_url(sim, http, token, rid)
    sim.faults.inject("truncated")
    received = bytearray()
    with requests.get(url, stream=True, timeout=5) as response:
        assert response.status_code == 200 and int(response.headers["Content-Length"]) == len(doc)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in response.iter_content(1024):
                received += chunk
    assert 0 < len(received) < len(doc) and doc.startswith(bytes(received))
    assert requests.get(url, timeout=5).content == doc  # the same URL works again


def test_url_expired_fault(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    url = download_url(sim, http, token, newest(sim))
    sim.faults.inject("url_expired")
    refused = requests.get(url, timeout=5)
    assert refused.status_code == 403 and b"Request has expired" in refused.content
    assert requests.get(url, timeout=5).status_code == 200


def test_fault_targeting(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    url = download_url(sim, http, token, newest(sim))
    sim.faults.inject("server_error", target="download", status=500)
    assert api(sim, http, "", token).status_code == 200  # the gateway is untouched
    failed = requests.get(url, timeout=5)
    assert failed.status_code == 500 and b"<Error>" in failed.content
    sim.faults.inject("rate_limit", path_prefix=EXPORTS + "/fetch/", retry_after=0)
    assert api(sim, http, "", token).status_code == 200
    assert api(sim, http, f"/fetch/{newest(sim)}", token).status_code == 429
    sim.faults.inject("url_expired")  # download-only: the gateway never consumes it
    assert api(sim, http, "", token).status_code == 200
    assert len(sim.faults.pending()) == 1
    sim.faults.clear()
    sim.faults.inject("server_error", times=None)
    assert [api(sim, http, "", token).status_code for _ in range(3)] == [503, 503, 503]
    sim.faults.clear()
    assert api(sim, http, "", token).status_code == 200
    with pytest.raises(ValueError):
        sim.faults.inject("meteor_strike")


# --- request log, concurrency, big results -------------------------------------------------------------------------


def test_requests_log(sim: GatewaySimulator, http: requests.Session) -> None:
    token = get_token(sim, http)
    url = download_url(sim, http, token, newest(sim))
    http.get(url, timeout=5)
    log = sim.requests
    assert [(r.port, r.method, r.status) for r in log] == [
        ("gateway", "POST", 200),
        ("gateway", "GET", 200),
        ("download", "GET", 200),
    ]
    assert log[1].path.startswith(EXPORTS + "/fetch/") and log[1].header("authorization") == f"Bearer {token}"
    assert "X-Signature=" in log[2].query and log[2].header("Authorization") is None
    sim.clear_requests()
    assert sim.requests == []


def test_concurrent_clients(sim: GatewaySimulator) -> None:
    token = get_token(sim, requests.Session())
    ids = [r["last_run"]["id"] for r in sim.exports() if r["last_run"]]
    errors: list[str] = []

    def worker(rid: str) -> None:
        with requests.Session() as session:
            url = download_url(sim, session, token, rid)
            body = session.get(url, timeout=10).content
            if body != sim.document_bytes(rid):
                errors.append(rid)

    threads = [threading.Thread(target=worker, args=(rid,)) for rid in ids * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len([r for r in sim.requests if r.port == "download"]) == len(threads)


def test_huge_result_is_never_materialised(
    sim: GatewaySimulator, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("records materialised")

    monkeypatch.setattr(sampledata, "generate_records", forbidden)
    started = time.monotonic()
    million = sim.add_result("win-info", n_records=1_000_000)
    assert time.monotonic() - started < 0.1 and sim.results("win-info")[0]["id"] == million

    rid = sim.add_result("win-info", n_records=200_000)
    token = get_token(sim, http)
    url = download_url(sim, http, token, rid)
    size, head, tail = 0, b"", b""
    with http.get(url, stream=True, timeout=30) as response:
        assert response.status_code == 200 and response.headers["Transfer-Encoding"] == "chunked"
        for chunk in response.iter_content(1 << 16):
            head = head or chunk[:20]
            tail = (tail + chunk)[-20:]
            size += len(chunk)
    assert size > 20_000_000 and head.startswith(b'{"win_info":') and tail.endswith(b"]}")


def test_streaming_download_memory_is_bounded(sim: GatewaySimulator, http: requests.Session) -> None:
    # tracemalloc slows allocation-heavy code ~5x, so this uses a smaller result than the test above; the bound
    # is still well below the document size, so neither side may hold the document (let alone the records).
    rid = sim.add_result("win-info", n_records=60_000)
    token = get_token(sim, http)
    url = download_url(sim, http, token, rid)
    tracemalloc.start()
    try:
        size = 0
        with http.get(url, stream=True, timeout=30) as response:
            for chunk in response.iter_content(1 << 16):
                size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 8_000_000
    assert peak < 4_000_000, peak


# --- CLI ----------------------------------------------------------------------------------------------------------


def test_main_serves_until_interrupted() -> None:
    env = {**os.environ, "PYTHONPATH": str(FUNCTIONS)}
    args = [sys.executable, "-m", "exportlake.emulator.server", "--port", "0", "--download-port", "0", "--records", "5"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our own module
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        gateway = lines[0].split()[1]
        assert gateway.startswith("http://127.0.0.1:") and "exportlake-local" in lines[2]
        assert "local-secret-not-a-real-one" not in "".join(lines)
        body = {"grant_type": "client_credentials", "client_id": "exportlake-local"}
        response = requests.post(
            gateway + TOKEN, json={**body, "client_secret": "local-secret-not-a-real-one"}, timeout=5
        )
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=5)
