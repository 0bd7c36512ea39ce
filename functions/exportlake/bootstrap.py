"""Composition root: settings → boto3 clients → adapters → services, built once per process (warm Lambdas reuse
them, and with them the cached bearer token)."""

from __future__ import annotations

import ctypes
import functools
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from exportlake.adapters.catalog import GlueCatalog
from exportlake.adapters.gateway import HttpGateway
from exportlake.adapters.ledger import DynamoLedger
from exportlake.adapters.notifier import SnsNotifier
from exportlake.adapters.queue import SqsJobQueue
from exportlake.adapters.secrets import SecretCredentials
from exportlake.domain.planning import Planner
from exportlake.domain.ports import Metrics
from exportlake.settings import Settings, is_loopback

if TYPE_CHECKING:
    from exportlake.copier import Copier

_BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    max_pool_connections=8,
    # No CRC32 of every upload part computed by the SDK: TLS already guards the bytes in transit and S3 computes
    # its own checksum of what it stores; operations that require one (DeleteObjects) still get it.
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)
#: S3 only: no SHA-256 of each part's payload for SigV4 (``UNSIGNED-PAYLOAD``), where the channel is trusted.
_S3_UNSIGNED = Config(s3={"payload_signing_enabled": False})


@functools.cache
def settings() -> Settings:
    """The process's settings (validated once)."""
    return Settings.from_env(os.environ)


@functools.cache
def session() -> boto3.session.Session:
    """One boto3 session for every client: credentials, config files and endpoint data are loaded once
    (a session per client measured ~0.7 s of extra CPU over the eight clients a sync creates)."""
    return boto3.session.Session()


def trusted_channel(endpoint: str | None) -> bool:
    """True when payload bytes need no SigV4 hash: AWS's own HTTPS endpoints, any HTTPS endpoint, or loopback."""
    if not endpoint:
        return True  # the SDK's default endpoints are HTTPS
    parts = urlsplit(endpoint)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))


def _client_config(service: str) -> Config:
    if service == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if trusted_channel(endpoint):
            return _BOTO_CONFIG.merge(_S3_UNSIGNED)
    return _BOTO_CONFIG


@functools.cache
def client(service: str) -> Any:
    """One boto3 client per service, all from one session; ``AWS_ENDPOINT_URL`` (read by boto3) may point them at
    an emulator."""
    return session().client(service, config=_client_config(service))  # type: ignore[call-overload]


@functools.cache
def gateway() -> HttpGateway:
    """The gateway client, with its token cache."""
    s = settings()
    return HttpGateway(s.gateway_url, SecretCredentials(client("secretsmanager"), s.secret_id), s.download_hosts)


@functools.cache
def ledger() -> DynamoLedger:
    """The ledger adapter."""
    return DynamoLedger(client("dynamodb"), settings().ledger_table)


@functools.cache
def catalog() -> GlueCatalog:
    """The Glue catalog adapter."""
    s = settings()
    return GlueCatalog(client("glue"), s.glue_database, s.bucket)


@functools.cache
def notifier() -> SnsNotifier:
    """The SNS notifier."""
    return SnsNotifier(client("sns"), settings().topic_arn)


def planner(metrics: Metrics) -> Planner:
    """The planner service."""
    return Planner(gateway(), ledger(), SqsJobQueue(client("sqs"), settings().queue_url), notifier(), metrics)


def copier(metrics: Metrics) -> Copier:
    """The copier service (imported here so the planner never loads pyarrow: a faster cold start)."""
    from exportlake.copier import Copier

    _lean_allocators()
    return Copier(gateway(), ledger(), catalog(), client("s3"), settings().bucket, notifier(), metrics)


@functools.cache
def _lean_allocators() -> None:
    # Arrow's default mimalloc pool keeps freed pages; the system allocator hands them back, which measured
    # 10-20 MB lower peak RSS on a 1M-record copy at the same speed (see docs/performance.md).
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    one_malloc_arena()


_M_ARENA_MAX = -8  # glibc <malloc.h>


def one_malloc_arena() -> bool:
    """Make every thread allocate from one glibc malloc arena (as ``MALLOC_ARENA_MAX=1``); False where unsupported.

    glibc gives each allocating thread an arena of its own, and the copier's upload and gzip threads each kept a
    few freed MB in theirs: one shared arena measured 8-9 MB lower peak RSS at the same speed (docs/performance.md).
    It applies to threads that start allocating afterwards, so it is called before a copy starts any.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError, TypeError):  # no mallopt (not glibc/musl), or no process handle (Windows)
        return False
    return bool(mallopt(_M_ARENA_MAX, 1))  # musl's mallopt accepts nothing and answers 0


def reset() -> None:
    """Forget everything built (tests and the local runner switch environments)."""
    for cached in (settings, session, client, gateway, ledger, catalog, notifier):
        cached.cache_clear()
