"""A first copy makes only the calls it needs; a retry after a kill still probes, tidies and lands exactly once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.unit.test_copying import JOB, Crash, World


class Counting:
    """A port proxy counting the calls made through it, by method."""

    def __init__(self, target: Any, counts: Counter[str], name: str) -> None:
        self._target, self._counts, self._name = target, counts, name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._target, attr)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._counts[f"{self._name}.{attr}"] += 1
            return value(*args, **kwargs)

        return call


def counted(world: World) -> Counter[str]:
    counts: Counter[str] = Counter()
    world.store = Counting(world.store, counts, "store")  # type: ignore[assignment]
    world.ledger = Counting(world.ledger, counts, "ledger")  # type: ignore[assignment]
    world.catalog = Counting(world.catalog, counts, "catalog")  # type: ignore[assignment]
    return counts


def test_a_first_copy_skips_the_recovery_probes_and_the_lease_renewals() -> None:
    world = World()
    world.ledger.claim_queued(JOB.ref)  # the planner's claim: the ledger knows this result never started
    counts = counted(world)
    world.service().copy(JOB)
    made = Counter(counts)
    world.assert_exact()
    assert made["store.get"] == 0 and made["store.list_keys"] == 0 and made["store.abort_uploads"] == 0
    ledger = {k: v for k, v in made.items() if k.startswith("ledger.")}
    # take the lease, copied (with the notice's claim), notified: no renewal, no read
    assert ledger == {"ledger.start_copy": 1, "ledger.mark_copied": 1, "ledger.mark_notified": 1}


@pytest.mark.parametrize("kill_at", ["store.put", "catalog.register_partition", "ledger.mark_copied"])
def test_a_first_copy_killed_is_finished_by_a_retry_that_probes(kill_at: str) -> None:
    world = World()
    world.ledger.claim_queued(JOB.ref)
    with pytest.raises(Crash):
        world.service(kill_at=kill_at).copy(JOB)
    world.later(31)  # the dead copier's lease lapsed
    counts = counted(world)
    world.service().copy(JOB)
    assert counts["store.get"] == 1  # the retry looks for the manifest of the attempt before
    world.assert_exact()
