"""Small helpers shared by the tests."""

from __future__ import annotations

import os

from exportlake.settings import Settings

#: ``make unit`` sets this: property tests run a small budget of examples there, their full budget in ``make test``.
UNIT_BUDGET = "EXPORTLAKE_UNIT_BUDGET"


def property_examples(full: int) -> int:
    """Examples per property test: ``full`` in ``make test``, at most 15 under ``make unit``."""
    return min(full, 15) if os.environ.get(UNIT_BUDGET) else full


def local_settings(gateway_url: str = "http://127.0.0.1:9", endpoint: str = "http://127.0.0.1:5000") -> Settings:
    """The settings contract for a local run (moto's default account and region)."""
    from exportlake.emulator.provision import demo_env

    env = demo_env(endpoint, gateway_url, "us-east-1", "123456789012")
    return Settings.from_env(env)
