"""Composition root: settings → boto3 clients → adapters → services, built once per process (warm Lambdas reuse
them, and with them the cached bearer token)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from exportlake.adapters.catalog import GlueCatalog, InvocationCatalog
from exportlake.adapters.gateway import HttpGateway
from exportlake.adapters.lakestore import S3LakeStore
from exportlake.adapters.ledger import DynamoLedger
from exportlake.adapters.notifier import SnsNotifier
from exportlake.adapters.queue import SqsJobQueue
from exportlake.adapters.secrets import SecretCredentials
from exportlake.domain.errors import ConfigError
from exportlake.domain.planning import Planner
from exportlake.domain.ports import Metrics
from exportlake.settings import Settings, is_loopback

if TYPE_CHECKING:
    from exportlake.adapters.privacy import DynamoPrivacy
    from exportlake.domain.copying import CopyService
    from exportlake.domain.erasejobs import EraseJobs
    from exportlake.domain.erasing import EraseService
    from exportlake.domain.models import CopyJob
    from exportlake.domain.retention import RetentionService

#: Told ``(job, rows, bytes, length)`` while a result streams: set by the CLI's progress display, never in Lambda.
_copy_progress: Callable[[CopyJob, int, int, int | None], None] | None = None

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
    return HttpGateway(
        s.gateway_url,
        SecretCredentials(client("secretsmanager"), s.secret_id),
        s.download_hosts,
        max_requests_per_second=s.gateway_max_rps,
    )


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


@functools.cache
def lake_store() -> S3LakeStore:
    """The lake bucket."""
    return S3LakeStore(client("s3"), settings().bucket)


def build_planner(metrics: Metrics) -> Planner:
    """The planner service."""
    service = Planner(gateway(), ledger(), job_queue(), notifier(), metrics)
    service.expiring_within = timedelta(hours=settings().expiry_warning_hours)
    service.reconcile_every = timedelta(hours=settings().reconcile_hours)
    return service


def dead_letter_url() -> str:
    """The copy-jobs DLQ: ``EXPORTLAKE_DLQ_URL`` (set by the stack), else ``<queue>-dlq`` as provisioned locally."""
    url = os.environ.get("EXPORTLAKE_DLQ_URL", "").strip()
    return url or settings().queue_url + "-dlq"


@functools.cache
def job_queue() -> SqsJobQueue:
    """The copy-jobs queue (and its DLQ)."""
    return SqsJobQueue(client("sqs"), settings().queue_url, dead_letter_url())


@functools.cache
def privacy_store() -> DynamoPrivacy:
    """Suppression list, erasure holds and requests (items of their own in the ledger table)."""
    from exportlake.adapters.privacy import DynamoPrivacy

    return DynamoPrivacy(client("dynamodb"), settings().ledger_table)


@functools.cache
def privacy_salt() -> bytes:
    """The salt of person keys, from its secret (read once per process)."""
    from exportlake.adapters.privacy import SaltSecret

    return SaltSecret(client("secretsmanager"), settings().privacy_salt_id).read()


@functools.cache
def erase_service() -> EraseService:
    """The eraser (also the copier's index writer and suppression filter)."""
    from exportlake.adapters.lakeversions import VersionedLakeStore
    from exportlake.adapters.partitions import GluePartitions
    from exportlake.convert.rewrite import ParquetRewriter
    from exportlake.domain.erasing import HOLD_SECONDS, EraseService

    s = settings()
    store = VersionedLakeStore(client("s3"), s.bucket)
    return EraseService(
        store,
        GluePartitions(client("glue"), s.glue_database),
        ledger(),
        privacy_store(),
        ParquetRewriter(store),
        notifier(),
        salt=privacy_salt(),
        workers=_erase_workers(os.environ.get("EXPORTLAKE_ERASE_WORKERS", "")),
        # The hold on a result being erased lapses like a copy lease (a holder on another machine; a dead local
        # holder is replaced at once, whatever its length).
        hold_seconds=_lease_seconds(os.environ.get("EXPORTLAKE_LEASE_SECONDS", ""), HOLD_SECONDS),
    )


@functools.cache
def retention_service() -> RetentionService:
    """Removes results older than ``lakeRetentionDays``, whole."""
    from exportlake.adapters.partitions import GluePartitions
    from exportlake.domain.retention import RetentionService

    partitions = GluePartitions(client("glue"), settings().glue_database)
    return RetentionService(erase_service(), partitions, privacy_store(), notifier())


@functools.cache
def erase_jobs() -> EraseJobs:
    """The deployed eraser's jobs (``EXPORTLAKE_ERASE_QUEUE_URL``: the erase-jobs queue the stack creates)."""
    from exportlake.adapters.erasequeue import SqsEraseQueue, lake_exports
    from exportlake.domain.erasejobs import EraseJobs

    url = os.environ.get("EXPORTLAKE_ERASE_QUEUE_URL", "").strip()
    if not url:
        raise ConfigError("EXPORTLAKE_ERASE_QUEUE_URL is not set (the stack sets it on the eraser function)")
    queue = SqsEraseQueue(client("sqs"), url)
    return EraseJobs(
        erase_service(),
        ledger(),
        privacy_store(),
        queue.send,
        lambda: lake_exports(lake_store()),
        retention_service(),
        notifier(),
    )


def _erase_workers(value: str) -> int:
    """Results an erasure works on at once: ``EXPORTLAKE_ERASE_WORKERS`` (optional, 1-32, default 4)."""
    if not value.strip():
        return 4
    if not value.strip().isdigit() or not 1 <= int(value) <= 32:
        raise ConfigError(f"EXPORTLAKE_ERASE_WORKERS={value!r} is not a whole number from 1 to 32")
    return int(value)


def build_copy_service(metrics: Metrics, *, per_invocation: bool = False) -> CopyService:
    """The copy service (its stream adapter imported here so the planner never loads pyarrow: a faster start).

    ``per_invocation``: for one copier invocation (an SQS batch), whose table definitions are then read once per
    table (``InvocationCatalog``) instead of once per result.
    """
    from exportlake.convert.stream import StreamConverter
    from exportlake.domain.copying import LEASE_SECONDS, CopyService

    _lean_allocators()
    lease = _lease_seconds(os.environ.get("EXPORTLAKE_LEASE_SECONDS", ""), LEASE_SECONDS)
    store = lake_store()
    converter = StreamConverter(store, raw_archive=raw_archive_enabled(os.environ.get("EXPORTLAKE_RAW_ARCHIVE", "")))
    tables = InvocationCatalog(catalog()) if per_invocation else catalog()
    services = (gateway(), ledger(), tables, store, converter, notifier(), metrics)
    return CopyService(*services, lease_seconds=lease, progress=_copy_progress, privacy=erase_service())


@contextlib.contextmanager
def copy_progress(told: Callable[[CopyJob, int, int, int | None], None] | None) -> Iterator[None]:
    """Copy services built inside tell ``told`` how each result's stream advances (None: nobody is told)."""
    global _copy_progress  # noqa: PLW0603 - the composition root's one optional hook
    before, _copy_progress = _copy_progress, told
    try:
        yield
    finally:
        _copy_progress = before


def raw_archive_enabled(value: str) -> bool:
    """``EXPORTLAKE_RAW_ARCHIVE``: ``on`` (the default: keep a gzip original of each result) or ``off``."""
    v = value.strip().lower()
    if v in ("", "on", "true", "1", "yes"):
        return True
    if v in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"EXPORTLAKE_RAW_ARCHIVE={value!r} is not on or off")


def _lease_seconds(value: str, default: float) -> float:
    """The copy lease length: ``EXPORTLAKE_LEASE_SECONDS`` (optional, 3-900 s), else ``default``."""
    if not value.strip():
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 3 <= seconds <= 900:
        raise ConfigError(f"EXPORTLAKE_LEASE_SECONDS={value!r} is not a number of seconds from 3 to 900")
    return seconds


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
    for cached in (
        settings,
        session,
        client,
        gateway,
        ledger,
        catalog,
        notifier,
        lake_store,
        job_queue,
        privacy_store,
        privacy_salt,
        erase_service,
        erase_jobs,
        retention_service,
    ):
        cached.cache_clear()
