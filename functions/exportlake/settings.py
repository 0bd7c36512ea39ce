"""The environment contract of exportlake, read and validated once.

Every deployed function and the local CLI read the same variables; a missing or malformed one fails fast with a
message naming it. ``AWS_ENDPOINT_URL`` (read by boto3 itself) is the only switch to an emulated AWS.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from exportlake.domain.errors import ConfigError
from exportlake.domain.limits import GATEWAY_MAX_REQUESTS_PER_SECOND

#: Every variable of the contract, in the order docs/operate.md documents them.
ENV_VARS: tuple[str, ...] = (
    "EXPORTLAKE_GATEWAY_URL",
    "EXPORTLAKE_SECRET_ID",
    "EXPORTLAKE_BUCKET",
    "EXPORTLAKE_GLUE_DATABASE",
    "EXPORTLAKE_LEDGER_TABLE",
    "EXPORTLAKE_TOPIC_ARN",
    "EXPORTLAKE_QUEUE_URL",
    "EXPORTLAKE_DOWNLOAD_HOSTS",
)
#: The download allowlist when ``EXPORTLAKE_DOWNLOAD_HOSTS`` is unset; ``infra/config.py`` (and so ``cdk.json``)
#: takes its default from here, so the two can never disagree.
DEFAULT_DOWNLOAD_HOSTS = "*.digitaloceanspaces.com"
#: Optional variables (with defaults; the stack sets them from cdk.json, a local run may leave them unset).
OPTIONAL_VARS: tuple[str, ...] = (
    "EXPORTLAKE_EXPIRY_WARNING_HOURS",
    "EXPORTLAKE_GATEWAY_MAX_RPS",
    "EXPORTLAKE_PRIVACY_SALT_ID",
    "EXPORTLAKE_LAKE_RETENTION_DAYS",
    "EXPORTLAKE_RECONCILE_HOURS",
)
#: Highest ``EXPORTLAKE_LAKE_RETENTION_DAYS`` (``lakeRetentionDays``); ``0`` keeps results forever.
MAX_LAKE_RETENTION_DAYS = 36500
#: The secret holding the salt of person keys (``domain.erasure``) when ``EXPORTLAKE_PRIVACY_SALT_ID`` is unset.
DEFAULT_PRIVACY_SALT_ID = "exportlake/privacy-salt"
DEFAULT_EXPIRY_WARNING_HOURS = 24
#: A full pass over every export's listing (what finds a result listed late) starts at most this often.
DEFAULT_RECONCILE_HOURS = 24
MAX_RECONCILE_HOURS = 24 * 30
MAX_EXPIRY_WARNING_HOURS = 24 * 30
#: Highest ``EXPORTLAKE_GATEWAY_MAX_RPS`` accepted (``0`` turns the bound off).
MAX_GATEWAY_RPS = 1000.0

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_GLUE_DB = re.compile(r"^[a-z0-9_]{1,255}$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_TOPIC = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_HOST_PATTERN = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_SECRET_ID = re.compile(r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}$")


@dataclass(frozen=True)
class Settings:
    """The validated environment of one process."""

    gateway_url: str
    secret_id: str
    bucket: str
    glue_database: str
    ledger_table: str
    topic_arn: str
    queue_url: str
    download_hosts: tuple[str, ...]
    #: ``result.expiring`` goes out when an uncopied result expires within this many hours.
    expiry_warning_hours: int = DEFAULT_EXPIRY_WARNING_HOURS
    #: Gateway requests per second one process sends at most (token, lists, fetch); ``0``: unbounded.
    gateway_max_rps: float = GATEWAY_MAX_REQUESTS_PER_SECOND
    #: The secret holding the salt of person keys (erasure, suppression); the stack and ``provision`` create it.
    privacy_salt_id: str = DEFAULT_PRIVACY_SALT_ID
    #: Results created more than this many days ago leave the lake whole (``lakeRetentionDays``); 0: never.
    lake_retention_days: int = 0
    #: Hours between two full passes over each export's listing (the reconciliation).
    reconcile_hours: int = DEFAULT_RECONCILE_HOURS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate the contract from ``env``; raise ``ConfigError`` naming every bad variable."""
        problems: list[str] = []

        def need(name: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            elif pattern is not None and not pattern.fullmatch(value):
                problems.append(f"{name}={value!r} is not valid{hint}")
            return value

        gateway_url = need("EXPORTLAKE_GATEWAY_URL").rstrip("/")
        if gateway_url:
            parts = urlsplit(gateway_url)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                problems.append(f"EXPORTLAKE_GATEWAY_URL={gateway_url!r} is not an http(s) URL")
            elif parts.scheme == "http" and not is_loopback(parts.hostname):
                problems.append("EXPORTLAKE_GATEWAY_URL must use https (plain http only for loopback hosts)")
        secret_id = need("EXPORTLAKE_SECRET_ID", _SECRET_ID, " (a secret name or ARN)")
        bucket = need("EXPORTLAKE_BUCKET", _BUCKET, " (an S3 bucket name)")
        glue_database = need("EXPORTLAKE_GLUE_DATABASE", _GLUE_DB, " (lowercase letters, digits, underscores)")
        ledger_table = need("EXPORTLAKE_LEDGER_TABLE", _TABLE, " (a DynamoDB table name)")
        topic_arn = need("EXPORTLAKE_TOPIC_ARN", _TOPIC, " (an SNS topic ARN)")
        queue_url = need("EXPORTLAKE_QUEUE_URL")
        if queue_url:
            parts = urlsplit(queue_url)
            if parts.scheme not in ("https", "http") or not parts.hostname or not queue_name(queue_url):
                problems.append(f"EXPORTLAKE_QUEUE_URL={queue_url!r} is not an SQS queue URL")
        raw_hosts = env.get("EXPORTLAKE_DOWNLOAD_HOSTS", "").strip() or DEFAULT_DOWNLOAD_HOSTS
        hosts = tuple(h.strip().lower() for h in raw_hosts.split(",") if h.strip())
        bad_hosts = [h for h in hosts if not is_host_pattern(h)]
        if bad_hosts or not hosts:
            problems.append(
                f"EXPORTLAKE_DOWNLOAD_HOSTS has invalid entries {bad_hosts!r} (host names or '*.' patterns)"
            )
        raw_hours = env.get("EXPORTLAKE_EXPIRY_WARNING_HOURS", "").strip() or str(DEFAULT_EXPIRY_WARNING_HOURS)
        hours = int(raw_hours) if raw_hours.isdigit() else 0
        if not 1 <= hours <= MAX_EXPIRY_WARNING_HOURS:
            problems.append(
                f"EXPORTLAKE_EXPIRY_WARNING_HOURS={raw_hours!r} is not valid "
                f"(whole hours, 1 to {MAX_EXPIRY_WARNING_HOURS})"
            )
        raw_rps = env.get("EXPORTLAKE_GATEWAY_MAX_RPS", "").strip() or str(GATEWAY_MAX_REQUESTS_PER_SECOND)
        try:
            rps = float(raw_rps)
        except ValueError:
            rps = -1.0
        if not 0 <= rps <= MAX_GATEWAY_RPS:  # NaN fails this too
            problems.append(
                f"EXPORTLAKE_GATEWAY_MAX_RPS={raw_rps!r} is not valid (requests per second, 0 to "
                f"{MAX_GATEWAY_RPS:g}; 0 turns the bound off)"
            )
        raw_reconcile = env.get("EXPORTLAKE_RECONCILE_HOURS", "").strip() or str(DEFAULT_RECONCILE_HOURS)
        reconcile = int(raw_reconcile) if raw_reconcile.isdigit() else 0
        if not 1 <= reconcile <= MAX_RECONCILE_HOURS:
            problems.append(
                f"EXPORTLAKE_RECONCILE_HOURS={raw_reconcile!r} is not valid (whole hours, 1 to {MAX_RECONCILE_HOURS})"
            )
        salt_id = env.get("EXPORTLAKE_PRIVACY_SALT_ID", "").strip() or DEFAULT_PRIVACY_SALT_ID
        if not _SECRET_ID.fullmatch(salt_id):
            problems.append(f"EXPORTLAKE_PRIVACY_SALT_ID={salt_id!r} is not valid (a secret name or ARN)")
        raw_days = env.get("EXPORTLAKE_LAKE_RETENTION_DAYS", "").strip() or "0"
        days = int(raw_days) if raw_days.isdigit() else -1
        if not 0 <= days <= MAX_LAKE_RETENTION_DAYS:
            problems.append(
                f"EXPORTLAKE_LAKE_RETENTION_DAYS={raw_days!r} is not valid "
                f"(whole days, 0 to {MAX_LAKE_RETENTION_DAYS}; 0 keeps results forever)"
            )
        if problems:
            raise ConfigError("invalid exportlake settings: " + "; ".join(problems))
        place = (bucket, glue_database, ledger_table, topic_arn, queue_url)
        return cls(gateway_url, secret_id, *place, hosts, hours, rps, salt_id, days, reconcile)

    def as_env(self) -> dict[str, str]:
        """The contract as environment variables (the inverse of ``from_env``; optional ones when not default)."""
        optional = {}
        if self.expiry_warning_hours != DEFAULT_EXPIRY_WARNING_HOURS:
            optional["EXPORTLAKE_EXPIRY_WARNING_HOURS"] = str(self.expiry_warning_hours)
        if self.gateway_max_rps != GATEWAY_MAX_REQUESTS_PER_SECOND:
            optional["EXPORTLAKE_GATEWAY_MAX_RPS"] = f"{self.gateway_max_rps:g}"
        if self.privacy_salt_id != DEFAULT_PRIVACY_SALT_ID:
            optional["EXPORTLAKE_PRIVACY_SALT_ID"] = self.privacy_salt_id
        if self.lake_retention_days:
            optional["EXPORTLAKE_LAKE_RETENTION_DAYS"] = str(self.lake_retention_days)
        if self.reconcile_hours != DEFAULT_RECONCILE_HOURS:
            optional["EXPORTLAKE_RECONCILE_HOURS"] = str(self.reconcile_hours)
        return optional | dict(
            zip(
                ENV_VARS,
                (
                    self.gateway_url,
                    self.secret_id,
                    self.bucket,
                    self.glue_database,
                    self.ledger_table,
                    self.topic_arn,
                    self.queue_url,
                    ",".join(self.download_hosts),
                ),
                strict=True,
            )
        )


def is_host_pattern(value: str) -> bool:
    """True for a host name or a ``*.domain`` pattern, as ``EXPORTLAKE_DOWNLOAD_HOSTS`` takes them."""
    return bool(_HOST_PATTERN.fullmatch(value))


def queue_name(queue_url: str) -> str:
    """The queue name: the last path segment of an SQS queue URL."""
    return urlsplit(queue_url).path.rstrip("/").rsplit("/", 1)[-1]


def topic_name(topic_arn: str) -> str:
    """The topic name: the last segment of an SNS topic ARN."""
    return topic_arn.rsplit(":", 1)[-1]


def is_loopback(host: str) -> bool:
    """True for loopback host names and addresses (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]").lower()
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address: only "localhost" (never "127.evil.example")
        return host == "localhost"
