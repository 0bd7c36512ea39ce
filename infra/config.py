"""The app's configuration: ``cdk.json`` context (or ``-c key=value``) read into one validated dataclass.

Every problem is collected and reported at once, naming the context key, so a bad value stops ``cdk synth`` with a
clear message instead of a failed deployment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exportlake.domain.limits import GATEWAY_MAX_REQUESTS_PER_SECOND
from exportlake.domain.schemas import EXPORT_TYPES, ResultSemantics
from exportlake.settings import (
    DEFAULT_DOWNLOAD_HOSTS,
    DEFAULT_EXPIRY_WARNING_HOURS,
    DEFAULT_RECONCILE_HOURS,
    MAX_EXPIRY_WARNING_HOURS,
    MAX_GATEWAY_RPS,
    MAX_LAKE_RETENTION_DAYS,
    MAX_RECONCILE_HOURS,
    is_host_pattern,
)

if TYPE_CHECKING:
    import aws_cdk as cdk

#: Every context key with its default (the same values as ``cdk.json``) and its meaning (for the docs table).
DEFAULTS: dict[str, Any] = {
    "gatewayUrl": "https://gateway.example.neoday.com",  # EXAMPLE_GATEWAY_URL: refused by a real synth
    "schedule": "rate(1 hour)",
    "timeZone": "UTC",
    "notificationEmails": [],
    "downloadHosts": DEFAULT_DOWNLOAD_HOSTS,  # defined once, in the runtime's settings
    "copyConcurrency": 4,
    "rawRetentionDays": 90,
    "athenaResultsRetentionDays": 7,
    "existingSecretName": None,
    "retainData": True,
    "freshnessHours": 24,
    "copierMemoryMb": 1769,
    "bytesScannedCutoffMb": 10240,
    # One deploy only, when upgrading a stack whose raw tables were AWS::Glue::Table resources (docs/analytics.md).
    "upgradeFromGlueTables": False,
    # Runtime settings (EXPORTLAKE_GATEWAY_MAX_RPS, EXPORTLAKE_RAW_ARCHIVE, EXPORTLAKE_EXPIRY_WARNING_HOURS), with
    # the runtime's defaults: a gzip original of each result under raw/ (audit, replay) is kept unless turned off.
    "gatewayMaxRequestsPerSecond": GATEWAY_MAX_REQUESTS_PER_SECOND,
    "rawArchive": True,
    "expiryWarningHours": DEFAULT_EXPIRY_WARNING_HOURS,
    # EXPORTLAKE_RECONCILE_HOURS: a full pass over each export's listing (finds results listed late) this often.
    "reconcileHours": DEFAULT_RECONCILE_HOURS,
    # Export type → "snapshot" | "delta"; types not named keep the registry's default (see docs/analytics.md).
    "resultSemantics": {},
    # Days a result stays in the lake (partition, Parquet, raw, index, manifest, every version); 0 keeps them forever.
    "lakeRetentionDays": 0,
    # Accounts whose Data Catalog is governed by Lake Formation (docs/deploy.md#2-lake-formation): grant the functions
    # exactly the Lake Formation permissions they use, and the readers SELECT/DESCRIBE on the lake's tables and views.
    "lakeFormation": False,
    "lakeFormationReaders": [],
    # The customer-managed KMS key of an existing secret (existingSecretName): kms:Decrypt through Secrets Manager.
    "existingSecretKmsKeyArn": None,
}

#: The placeholder gateway of ``cdk.json``: a stack deployed with it can never copy anything.
EXAMPLE_GATEWAY_URL = "https://gateway.example.neoday.com"
#: Context key that lets a synth use the example gateway (CI's offline template checks, tests).
ALLOW_EXAMPLE_KEY = "allowExampleGateway"
#: Context key naming the stack (staging and prod side by side).
STACK_NAME_KEY = "stackName"
#: Every context key the app reads: the one list the unknown-key refusal checks against (settings added to
#: ``DEFAULTS`` are known at once).
KNOWN_KEYS: tuple[str, ...] = (*DEFAULTS, STACK_NAME_KEY, ALLOW_EXAMPLE_KEY)
#: Context keys the CDK CLI itself writes into cdk.json / cdk.context.json (``cdk acknowledge``, ``cdk cli-telemetry``).
CDK_WRITTEN_KEYS = frozenset({"acknowledged-issue-numbers", "cli-telemetry"})
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")

_RATE = re.compile(r"^rate\((?P<n>[1-9]\d*) (?P<unit>minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((?P<fields>[^()]+)\)$")
_AT = re.compile(r"^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$")
_EMAIL = re.compile(r"^[^@\s,]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
#: An IAM role or user (Lake Formation principals), with an optional path.
_IAM_PRINCIPAL = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:(role|user)/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}$")
#: A KMS key (not an alias): a key id is a UUID, or mrk-<32 hex> for a multi-Region key.
_KMS_KEY = re.compile(
    r"^arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)


class ConfigError(ValueError):
    """The context holds invalid values; the message names every bad key."""


@dataclass(frozen=True)
class Config:
    """The validated settings of one deployment."""

    gateway_url: str
    schedule: str
    time_zone: str
    notification_emails: tuple[str, ...]
    download_hosts: tuple[str, ...]
    copy_concurrency: int
    raw_retention_days: int
    athena_results_retention_days: int
    existing_secret_name: str | None
    retain_data: bool
    freshness_hours: int
    copier_memory_mb: int
    bytes_scanned_cutoff_mb: int
    #: Export type → "snapshot"/"delta" overrides of the registry defaults (validated against the registry).
    result_semantics: tuple[tuple[str, str], ...] = ()
    gateway_max_rps: float = GATEWAY_MAX_REQUESTS_PER_SECOND
    expiry_warning_hours: int = DEFAULT_EXPIRY_WARNING_HOURS
    #: Keep the raw tables as the AWS::Glue::Table resources an earlier version declared, marked Retain, for one
    #: deploy: the next deploy (without it) then hands them to the merging custom resources instead of deleting them.
    upgrade_from_glue_tables: bool = False
    raw_archive: bool = True
    #: Results older than this many days are removed whole, daily (EXPORTLAKE_LAKE_RETENTION_DAYS); 0: never.
    lake_retention_days: int = 0
    #: Grant the functions' roles (and ``lake_formation_readers``) Lake Formation permissions on the lake's database.
    lake_formation: bool = False
    #: IAM role/user ARNs granted SELECT and DESCRIBE on the lake's tables and views (``lake_formation`` only).
    lake_formation_readers: tuple[str, ...] = ()
    #: The customer-managed KMS key of the existing secret; the functions reading it may decrypt with it.
    existing_secret_kms_key_arn: str | None = None
    reconcile_hours: int = DEFAULT_RECONCILE_HOURS

    @property
    def removal_policy(self) -> cdk.RemovalPolicy:
        """What deleting the stack does to data (bucket, ledger, secret, logs): kept unless ``retainData`` is false."""
        import aws_cdk as cdk  # here, not at the top: validating a config needs no jsii process

        return cdk.RemovalPolicy.RETAIN if self.retain_data else cdk.RemovalPolicy.DESTROY

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> Config:
        """Read every key through ``get`` (e.g. ``node.try_get_context``), defaulting missing ones; validate all."""
        return _Reader(get).read()

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Config:
        """Build from a plain mapping (tests, scripts); keys missing from ``values`` take their default."""
        return cls.from_context(values.get)


class _Reader:
    def __init__(self, get: Callable[[str], Any]) -> None:
        self._get = get
        self.problems: list[str] = []

    def raw(self, key: str) -> Any:
        value = self._get(key)
        return DEFAULTS[key] if value is None else value

    def bad(self, key: str, value: object, why: str) -> None:
        self.problems.append(f"{key}={value!r}: {why}")

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.raw(key)
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            number = int(value)
        except (TypeError, ValueError):
            self.bad(key, value, "must be a whole number")
            return low
        if not low <= number <= high:
            self.bad(key, value, f"must be between {low} and {high}")
        return number

    def number(self, key: str, low: float, high: float) -> float:
        value = self.raw(key)
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            self.bad(key, value, "must be a number")
            return low
        if not low <= number <= high:  # NaN fails this too
            self.bad(key, value, f"must be between {low:g} and {high:g}")
        return number

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.bad(key, value, "must be true or false")
        return True

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    self.bad(key, value, "is not a valid JSON list")
                    return ()
            else:
                value = text.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.bad(key, value, "must be a list of strings (or one comma-separated string)")
            return ()
        return tuple(v.strip() for v in value if v.strip())

    def gateway_url(self) -> str:
        value = self.raw("gatewayUrl")
        if not isinstance(value, str):
            self.bad("gatewayUrl", value, "must be a string")
            return ""
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            self.bad("gatewayUrl", value, "must be an https:// URL of the NeoDay gateway (e.g. https://gw.example.com)")
        elif parts.query or parts.fragment or parts.username or parts.password:
            self.bad("gatewayUrl", value, "must not carry credentials, a query or a fragment")
        elif not all(_HOST_LABEL.match(label) for label in parts.hostname.split(".")):
            self.bad("gatewayUrl", value, "has an invalid host name")
        return url

    def schedule(self) -> str:
        value = self.raw("schedule")
        text = value.strip() if isinstance(value, str) else ""
        rate = _RATE.match(text)
        cron = _CRON.match(text)
        if rate:
            n, unit = int(rate["n"]), rate["unit"]
            if (n == 1) != (not unit.endswith("s")):
                self.bad(
                    "schedule",
                    value,
                    f"say rate(1 {unit.rstrip('s')}) for one unit and rate(N {unit.rstrip('s')}s) otherwise",
                )
        elif cron:
            if len(cron["fields"].split()) != 6:
                self.bad(
                    "schedule",
                    value,
                    "a cron() expression has six fields: minutes hours day-of-month month day-of-week year",
                )
        elif not _AT.match(text):
            self.bad(
                "schedule", value, "must be an EventBridge Scheduler expression: rate(N unit), cron(...) or at(...)"
            )
        return text

    def time_zone(self) -> str:
        value = self.raw("timeZone")
        if not isinstance(value, str) or not value.strip():
            self.bad("timeZone", value, "must be an IANA time zone name such as UTC or Europe/Amsterdam")
            return "UTC"
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            self.bad("timeZone", value, "is not a known IANA time zone (e.g. UTC, Europe/Amsterdam)")
        return value.strip()

    def emails(self) -> tuple[str, ...]:
        emails = self.string_list("notificationEmails")
        for email in emails:
            if not _EMAIL.match(email):
                self.bad("notificationEmails", email, "is not an email address")
        return emails

    def download_hosts(self) -> tuple[str, ...]:
        hosts = tuple(h.lower() for h in self.string_list("downloadHosts"))
        if not hosts:
            self.bad("downloadHosts", self.raw("downloadHosts"), "must name at least one host or '*.' pattern")
        for host in hosts:
            if not is_host_pattern(host):
                self.bad("downloadHosts", host, "must be a host name or a '*.domain' pattern")
        return hosts

    def secret_name(self) -> str | None:
        value = self._get("existingSecretName")
        if value is None or (isinstance(value, str) and value.strip() in ("", "null")):
            return None
        if not isinstance(value, str) or not _SECRET_NAME.match(value.strip()) or value.strip().startswith("arn:"):
            self.bad("existingSecretName", value, "must be the name of a Secrets Manager secret (not an ARN)")
            return None
        return value.strip()

    def lake_formation_readers(self, enabled: bool) -> tuple[str, ...]:
        readers = self.string_list("lakeFormationReaders")
        for reader in readers:
            if not _IAM_PRINCIPAL.match(reader):
                self.bad(
                    "lakeFormationReaders",
                    reader,
                    "is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)",
                )
        if readers and not enabled:
            self.bad(
                "lakeFormationReaders", list(readers), "needs lakeFormation=true (readers are Lake Formation grants)"
            )
        return tuple(dict.fromkeys(readers))

    def secret_key(self, secret_name: str | None) -> str | None:
        value = self._get("existingSecretKmsKeyArn")
        if value is None or (isinstance(value, str) and value.strip() in ("", "null")):
            return None
        text = value.strip() if isinstance(value, str) else ""
        if ":alias/" in text:
            self.bad(
                "existingSecretKmsKeyArn",
                value,
                "is an alias: give the key's ARN (aws kms describe-key --key-id <alias> --query KeyMetadata.Arn)",
            )
            return None
        if not _KMS_KEY.match(text):
            self.bad(
                "existingSecretKmsKeyArn", value, "must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
            )
            return None
        if secret_name is None:
            self.bad(
                "existingSecretKmsKeyArn",
                value,
                "applies only with existingSecretName (the stack's own secret needs no key)",
            )
            return None
        return text

    def result_semantics(self) -> tuple[tuple[str, str], ...]:
        value = self.raw("resultSemantics")
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError:
                self.bad("resultSemantics", value, "is not a JSON object")
                return ()
        if not isinstance(value, dict):
            self.bad("resultSemantics", value, 'must map export types to "snapshot" or "delta"')
            return ()
        allowed = [m.value for m in ResultSemantics]
        out: list[tuple[str, str]] = []
        for key, mode in sorted(value.items()):
            if key not in EXPORT_TYPES:
                self.bad("resultSemantics", key, f"is not a documented export type ({', '.join(EXPORT_TYPES)})")
            elif mode not in allowed:
                self.bad("resultSemantics", {key: mode}, f"must be one of {allowed}")
            else:
                out.append((key, mode))
        return tuple(out)

    def read(self) -> Config:
        secret_name = self.secret_name()
        lake_formation = self.boolean("lakeFormation")
        config = Config(
            gateway_url=self.gateway_url(),
            schedule=self.schedule(),
            time_zone=self.time_zone(),
            notification_emails=self.emails(),
            download_hosts=self.download_hosts(),
            # The SQS event source accepts a maximum concurrency of 2 to 1000.
            copy_concurrency=self.integer("copyConcurrency", 2, 1000),
            # 0 keeps raw originals forever.
            raw_retention_days=self.integer("rawRetentionDays", 0, 36500),
            athena_results_retention_days=self.integer("athenaResultsRetentionDays", 1, 36500),
            existing_secret_name=secret_name,
            retain_data=self.boolean("retainData"),
            # One alarm period: CloudWatch alarm periods go up to one day.
            freshness_hours=self.integer("freshnessHours", 1, 24),
            copier_memory_mb=self.integer("copierMemoryMb", 512, 10240),
            # Athena's smallest per-query cutoff is 10 MB.
            bytes_scanned_cutoff_mb=self.integer("bytesScannedCutoffMb", 10, 1024 * 1024 * 1024),
            result_semantics=self.result_semantics(),
            gateway_max_rps=self.number("gatewayMaxRequestsPerSecond", 0, MAX_GATEWAY_RPS),
            # The same bounds as the runtime's EXPORTLAKE_EXPIRY_WARNING_HOURS.
            expiry_warning_hours=self.integer("expiryWarningHours", 1, MAX_EXPIRY_WARNING_HOURS),
            upgrade_from_glue_tables=self.boolean("upgradeFromGlueTables"),
            raw_archive=self.boolean("rawArchive"),
            lake_retention_days=self.integer("lakeRetentionDays", 0, MAX_LAKE_RETENTION_DAYS),
            lake_formation=lake_formation,
            lake_formation_readers=self.lake_formation_readers(lake_formation),
            existing_secret_kms_key_arn=self.secret_key(secret_name),
            # The same bounds as the runtime's EXPORTLAKE_RECONCILE_HOURS.
            reconcile_hours=self.integer("reconcileHours", 1, MAX_RECONCILE_HOURS),
        )
        if self.problems:
            raise ConfigError(
                "invalid exportlake configuration (cdk.json context or -c key=value):\n  - "
                + "\n  - ".join(self.problems)
            )
        return config


def example_gateway_refusal(config: Config, get: Callable[[str], Any]) -> str | None:
    """The one-line refusal when ``gatewayUrl`` is still the example, unless the context allows it (CI checks)."""
    allowed = str(get(ALLOW_EXAMPLE_KEY) or "").strip().lower() == "true"
    if config.gateway_url != EXAMPLE_GATEWAY_URL or allowed:
        return None
    return (
        f"gatewayUrl is still the example {EXAMPLE_GATEWAY_URL}: every planner run would fail; set your gateway "
        "in cdk.json or pass -c gatewayUrl=https://<your-gateway> (offline checks: -c allowExampleGateway=true)"
    )


def unknown_keys(context: Mapping[str, Any]) -> list[str]:
    """One line per context key that is no exportlake setting, naming the closest known one (a mistyped
    ``-c gatewayURL=…`` must not deploy without it). CDK's own keys pass: ``aws:*``, feature flags (``@scope/…``),
    lookup results (``provider:key=value…``), ``$``-markers and the keys the CDK CLI writes."""
    known = {key.lower(): key for key in KNOWN_KEYS}
    lines = []
    for key in sorted(context):
        if key in KNOWN_KEYS or key in CDK_WRITTEN_KEYS or key.startswith(("@", "$")) or ":" in key:
            continue
        close = get_close_matches(key.lower(), list(known), n=1, cutoff=0.6)
        settings = "docs/deploy.md#configuration-cdkjson-context"
        hint = f"did you mean {known[close[0]]}?" if close else f"not an exportlake setting (see {settings})"
        lines.append(f"unknown setting {key} (cdk.json context or -c {key}=…): {hint}")
    return lines


def stack_name(get: Callable[[str], Any], default: str) -> str:
    """The stack name from the ``stackName`` context (staging and prod side by side); ``ConfigError`` if invalid."""
    value = get(STACK_NAME_KEY)
    name = default if value is None or str(value).strip() == "" else str(value).strip()
    if not _STACK_NAME.match(name):
        raise ConfigError(f"stackName={value!r}: letters, digits and hyphens, starting with a letter (max 128)")
    return name
