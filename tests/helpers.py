"""Small helpers shared by the tests."""

from __future__ import annotations

from exportlake.settings import Settings


def local_settings(gateway_url: str = "http://127.0.0.1:9", endpoint: str = "http://127.0.0.1:5000") -> Settings:
    """The settings contract for a local run (moto's default account and region)."""
    from exportlake.emulator.provision import demo_env

    env = demo_env(endpoint, gateway_url, "us-east-1", "123456789012")
    return Settings.from_env(env)
