"""The copy service at every step boundary, on in-memory fakes (no network, no moto).

A "kill" is simulated the way SIGKILL behaves: at the chosen step the process stops, and nothing it would have
done afterwards (no cleanup, no lease release) reaches the ledger, the store, the catalog or SNS. A new service
(a new process: a new lease owner) then retries, after the dead lease lapsed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest

from exportlake.convert.stream import StreamConverter
from exportlake.domain.copying import CopyService
from exportlake.domain.errors import HeldElsewhere, LeaseLost
from exportlake.domain.lease import Lease
from exportlake.domain.models import CopyJob, ResultState
from tests.fakes import FakeCatalog, FakeGateway, FakeMetrics, FakeNotifier, InMemoryLedger, MemoryStore

CREATED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
RID = "a" * 25
JOB = CopyJob("win-info", RID, CREATED, CREATED + timedelta(days=30))
ROWS = 1234


def document(rows: int = ROWS) -> bytes:
    records = [
        {"userid": f"u{i:024d}", "stackid": f"s{i % 7}", "haswon": str(i % 2), "participation_date": "2026-11-19"}
        for i in range(rows)
    ]
    return json.dumps({"win_info": records}).encode()


class Crash(BaseException):
    """The process died here (not an Exception: nothing catches it)."""


class World:
    """The shared state (ledger, store, catalog, SNS) and a clock, outliving every simulated process."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
        self.ledger = InMemoryLedger(clock=lambda: self.now)
        self.store = MemoryStore()
        self.catalog = FakeCatalog()
        self.notifier = FakeNotifier()
        self.metrics = FakeMetrics()
        self.gateway = FakeGateway({RID: document()})

    def service(self, kill_at: str = "", **kw: Any) -> CopyService:
        """A copy service (a process); with ``kill_at`` (``port.method``) it dies on that call."""
        dead = {"yes": False}
        ports: dict[str, Any] = {
            "gateway": self.gateway,
            "ledger": self.ledger,
            "catalog": self.catalog,
            "store": self.store,
            "notifier": self.notifier,
        }
        wrapped = {name: Mortal(port, name, kill_at, dead) for name, port in ports.items()}
        return CopyService(
            wrapped["gateway"],
            wrapped["ledger"],
            wrapped["catalog"],
            wrapped["store"],
            StreamConverter(wrapped["store"], batch_bytes=16 << 10, row_group_rows=500),
            wrapped["notifier"],
            self.metrics,
            clock=lambda: self.now,
            heartbeat=False,
            **kw,
        )

    def later(self, seconds: float = 120) -> None:
        self.now += timedelta(seconds=seconds)

    # -- what the lake holds
    def prefix(self) -> str:
        return f"lake/win_info/export_name=win-info/created_date=2026-11-20/result_id={RID}/"

    def lake_rows(self) -> int:
        return sum(pq.read_table(io.BytesIO(self.store.objects[k])).num_rows for k in self.store.list_keys("lake/"))

    def assert_exact(self, copied_notices: tuple[int, ...] = (1,)) -> None:
        manifest = json.loads(self.store.objects[f"manifests/win-info/{RID}.json"])
        assert sorted(p["key"] for p in manifest["parts"]) == self.store.list_keys("lake/")  # nothing beside
        assert self.lake_rows() == ROWS == manifest["rows"]
        assert list(self.catalog.partitions) == [("win_info", ("win-info", "2026-11-20", RID))]
        assert (
            self.catalog.partitions[("win_info", ("win-info", "2026-11-20", RID))]
            == f"s3://lake-bucket/{self.prefix()}"
        )
        assert self.store.uploads == {}  # no upload left open
        entry = self.ledger.get("win-info", RID)
        assert entry is not None and entry.state == ResultState.COPIED and entry.notified and entry.rows == ROWS
        assert len(self.notifier.of("result.copied")) in copied_notices
        assert self.notifier.of("result.copied")[0]["rows"] == ROWS


class Mortal:
    """A port that kills the process at one method, and is dead (raises ``Crash``) for every call after."""

    def __init__(self, target: Any, name: str, kill_at: str, dead: dict[str, bool]) -> None:
        self._target = target
        self._name = name
        self._kill_at = kill_at
        self._dead = dead

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._target, attr)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._dead["yes"]:
                raise Crash("dead")
            if f"{self._name}.{attr}" == self._kill_at:
                self._dead["yes"] = True
                raise Crash(f"killed at {self._kill_at}")
            result = value(*args, **kwargs)
            if attr == "open_object":  # the sinks die with the process too
                return Mortal(result, "sink", self._kill_at, self._dead)
            return result

        return call


def test_a_clean_copy_lands_once_and_announces_once() -> None:
    world = World()
    outcome = world.service().copy(JOB)
    assert outcome is not None and outcome.rows == ROWS
    world.assert_exact()
    assert world.metrics.total("ResultsCopied") == 1 and world.metrics.total("RowsCopied") == ROWS


# Each visible step, and the moments between them: (where the process dies, result.copied notices allowed).
BOUNDARIES = [
    ("sink.close", (1,)),  # while completing a part or the raw original
    ("store.put", (1,)),  # after every part and the raw original: before the manifest
    ("catalog.register_partition", (1,)),  # after the manifest
    ("ledger.mark_copied", (1,)),  # after the partition
    ("notifier.publish", (1,)),  # after the ledger, before the notice
    ("ledger.mark_notified", (1, 2)),  # after the notice went out: a repeat is allowed after a crash
]


@pytest.mark.parametrize(("kill_at", "notices"), BOUNDARIES)
def test_a_kill_at_each_step_is_finished_exactly_by_the_next_attempt(kill_at: str, notices: tuple[int, ...]) -> None:
    world = World()
    with pytest.raises(Crash):
        world.service(kill_at=kill_at).copy(JOB)
    if kill_at != "sink.close":
        assert not world.catalog.partitions or kill_at not in ("store.put", "catalog.register_partition")
    # Right after the kill the dead copier's lease is still live: a new copier leaves it alone...
    if world.ledger.get("win-info", RID).state == ResultState.COPYING:  # type: ignore[union-attr]
        with pytest.raises(HeldElsewhere):
            world.service().copy(JOB)
    # ...and takes over once it lapsed (seconds, not minutes: copy lease 30 s, notice claim 60 s).
    world.later(61)
    world.service().copy(JOB)
    world.assert_exact(notices)


def test_a_kill_before_the_partition_leaves_nothing_visible() -> None:
    world = World()
    with pytest.raises(Crash):
        world.service(kill_at="catalog.register_partition").copy(JOB)
    assert world.catalog.partitions == {}  # parts exist, but no partition names them: Athena sees nothing


def test_a_kill_mid_upload_leaves_an_open_upload_that_the_next_copy_aborts() -> None:
    world = World()
    world.store.leave_open_upload(world.prefix() + "part-00009.parquet")  # what a killed writer leaves
    world.store.leave_open_upload(f"raw/win-info/{RID}.json.gz")
    world.store.objects[world.prefix() + "part-00042.parquet"] = b"half of a killed run"
    world.service().copy(JOB)
    world.assert_exact()


def test_a_duplicate_delivery_copies_and_announces_nothing_more() -> None:
    world = World()
    world.service().copy(JOB)
    before = dict(world.store.objects)
    assert world.service().copy(JOB) is None
    assert world.store.objects == before
    world.assert_exact()


def test_a_lease_held_by_a_live_copier_is_left_alone() -> None:
    world = World()
    other = world.ledger.start_copy(JOB, "otherhost:1:2:abc", 30)
    assert other is not None
    with pytest.raises(HeldElsewhere):
        world.service().copy(JOB)
    assert world.store.objects == {} and world.notifier.messages == []
    assert world.ledger.get("win-info", RID).lease_owner == "otherhost:1:2:abc"  # type: ignore[union-attr]


@pytest.mark.slow  # a subprocess
def test_a_lease_of_a_local_process_that_is_gone_is_taken_over_at_once() -> None:
    import socket
    import subprocess
    import sys

    gone = subprocess.run(  # a process that ends at once: its pid names no running holder
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True
    )
    dead_owner = f"{socket.gethostname()}:{int(gone.stdout)}:1:feedbeef0000"  # this host, a pid no longer running
    world = World()
    assert world.ledger.start_copy(JOB, dead_owner, 30) is not None
    world.service().copy(JOB)  # the lease is still live, but its holder provably dead: no wait for the lapse
    world.assert_exact()
    entry = world.ledger.get("win-info", RID)
    assert entry is not None and entry.lease_owner != dead_owner and entry.attempts == 2


def test_a_copier_that_lost_its_lease_stops_before_anything_visible() -> None:
    world = World()
    service = world.service()

    # Another copier takes the lease while this one converts (this one's lapsed: a long pause).
    real_put = world.store.put

    def steal_then_put(key: str, body: bytes, content_type: str) -> None:
        world.later(31)
        world.ledger.start_copy(JOB, "otherhost:1:2:abc", 30)
        real_put(key, body, content_type)

    world.store.put = steal_then_put  # type: ignore[method-assign]
    with pytest.raises(LeaseLost):
        service.copy(JOB)
    assert world.catalog.partitions == {}
    assert world.notifier.of("result.copied") == []
    entry = world.ledger.get("win-info", RID)
    assert entry is not None and entry.state == ResultState.COPYING and entry.lease_owner == "otherhost:1:2:abc"


def test_the_heartbeat_keeps_a_long_copy_leased_and_notices_a_theft() -> None:
    world = World()
    owner = "me:1:2:x"
    assert world.ledger.start_copy(JOB, owner, 3) is not None
    beats: list[bool] = []

    def renew() -> bool:
        ok = world.ledger.renew_lease(JOB, owner, 3)
        beats.append(ok)
        return ok

    ticks = iter(range(1000))
    lease = Lease(owner, 3, renew, clock=lambda: float(next(ticks)), heartbeat=False)
    lease.renew()
    lease.check()
    world.ledger.items[("win-info", RID)] = world.ledger.items[("win-info", RID)].__class__(
        "win-info", RID, ResultState.COPYING, lease_owner="thief:1:2:y", lease_until="2999-01-01T00:00:00+00:00"
    )
    lease.renew()
    with pytest.raises(LeaseLost):
        lease.check()
    assert beats == [True, False]


def test_an_expired_job_never_lands_and_is_reported_once() -> None:
    world = World()
    expired = CopyJob("win-info", RID, CREATED, world.now - timedelta(minutes=1))
    assert world.service().copy(expired) is None
    assert world.service().copy(expired) is None
    assert world.store.objects == {} and world.catalog.partitions == {}
    assert [p["result_id"] for p in world.notifier.of("result.expired")] == [RID]


def test_a_failed_attempt_removes_what_it_wrote_and_gives_the_lease_back() -> None:
    world = World()
    world.catalog.fail_register = True
    with pytest.raises(OSError, match="glue down"):
        world.service().copy(JOB)
    entry = world.ledger.get("win-info", RID)
    assert entry is not None and entry.lease_owner == "" and "glue down" in entry.error
    world.catalog.fail_register = False
    world.service().copy(JOB)  # no wait: the lease was given back
    world.assert_exact()


def test_a_transient_download_failure_is_retried_within_the_attempt() -> None:
    world = World()
    world.gateway.fail_downloads = 2
    world.service().copy(JOB)
    world.assert_exact()
    assert world.gateway.downloads == 3


def test_final_failure_is_reported_once_and_not_while_a_live_lease_holds() -> None:
    world = World()
    world.ledger.start_copy(JOB, "otherhost:1:2:abc", 30)
    service = world.service()
    assert service.fail(JOB, "DocumentError: bad") is False  # its copy may still succeed
    world.later(31)
    assert service.fail(JOB, "DocumentError: bad") is True
    assert service.fail(JOB, "DocumentError: bad") is False
    assert [p["error"] for p in world.notifier.of("result.failed")] == ["DocumentError: bad"]


def test_a_manifest_that_is_not_valid_is_not_trusted() -> None:
    world = World()
    world.store.objects[f"manifests/win-info/{RID}.json"] = b'{"version": 1, "result_id": "other"}'
    world.service().copy(JOB)
    world.assert_exact()


def step_calls(world: World) -> Callable[[], list[tuple[str, str]]]:
    return lambda: list(world.store.log)


def test_visible_steps_run_in_order() -> None:
    world = World()
    order: list[str] = []
    real_put, real_register = world.store.put, world.catalog.register_partition
    real_copied = world.ledger.mark_copied

    world.store.put = lambda *a: (order.append("manifest"), real_put(*a))[1]  # type: ignore[method-assign]
    world.catalog.register_partition = lambda *a: (order.append("partition"), real_register(*a))[1]  # type: ignore[method-assign]
    world.ledger.mark_copied = lambda *a, **k: (order.append("ledger"), real_copied(*a, **k))[1]  # type: ignore[method-assign]
    real_publish = world.notifier.publish
    world.notifier.publish = lambda *a: (order.append(a[0]), real_publish(*a))[1]  # type: ignore[method-assign]
    world.service().copy(JOB)
    assert order == ["manifest", "partition", "ledger", "result.copied"]


def test_the_same_job_delivered_twice_at_once_is_copied_once() -> None:
    import threading

    world = World()
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def deliver() -> None:
        barrier.wait()
        try:
            outcomes.append(world.service().copy(JOB))
        except HeldElsewhere as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(outcomes) == 2
    from exportlake.domain.models import CopyOutcome

    assert sum(isinstance(o, CopyOutcome) for o in outcomes) == 1  # one copied; the other stood back or found it done
    world.assert_exact()


def test_with_the_raw_archive_off_nothing_is_kept_under_raw() -> None:
    world = World()
    service = world.service()
    service._converter = StreamConverter(world.store, raw_archive=False)  # type: ignore[attr-defined]
    service.copy(JOB)
    assert world.store.list_keys("raw/") == []
    manifest = json.loads(world.store.objects[f"manifests/win-info/{RID}.json"])
    assert manifest["raw"]["key"] == "" and manifest["raw"]["gzip_bytes"] == 0 and len(manifest["raw"]["sha256"]) == 64
    assert world.lake_rows() == ROWS


def test_the_raw_archive_switch_reads_on_and_off() -> None:
    from exportlake.bootstrap import raw_archive_enabled
    from exportlake.domain.errors import ConfigError

    assert raw_archive_enabled("") and raw_archive_enabled("on") and not raw_archive_enabled("OFF")
    with pytest.raises(ConfigError):
        raw_archive_enabled("maybe")


def test_progress_is_told_rows_and_bytes_as_the_result_streams() -> None:
    world = World()
    told: list[tuple[str, int, int, int | None]] = []
    world.service(progress=lambda job, rows, done, length: told.append((job.result_id, rows, done, length))).copy(JOB)
    world.assert_exact()
    size = len(document())
    assert told[0] == (RID, 0, 0, None)  # at the start of the download (the fake declares no length)
    assert len(told) > 3 and all(t[0] == RID for t in told)  # per decoded batch: several for ~100 kB
    assert [t[1] for t in told] == sorted(t[1] for t in told) and told[-1][1:3] == (ROWS, size)
    assert [t[2] for t in told] == sorted(t[2] for t in told)


def test_without_progress_the_converter_is_asked_for_none() -> None:
    world = World()
    service = world.service()
    asked: list[Any] = []
    converter = service._converter  # type: ignore[attr-defined]
    real = converter.convert

    def convert(chunks: Any, **kw: Any) -> Any:
        asked.append(kw["progress"])
        return real(chunks, **kw)

    converter.convert = convert
    service.copy(JOB)
    assert asked == [None]
