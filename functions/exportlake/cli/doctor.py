"""``exportlake doctor``: check every link of the chain in order and name the fix of the first broken one.

settings → AWS credentials and region → CDK bootstrap → the deployed stack → Lake Formation mode → secret → its KMS
key → token → list exports → newest results → one download URL → its host against the allowlist → bucket, ledger,
queue, topic, database → time left before the oldest uncopied result expires → the stack's alarms. The deployment
links follow docs/deploy.md's first-deploy checklist (``exportlake.cli.deploychecks``). Each check returns one line;
the run stops at the first failure (later links depend on it).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from exportlake import bootstrap
from exportlake.adapters.secrets import PLACEHOLDER_CLIENT_ID
from exportlake.cli import deploychecks
from exportlake.cli.deploychecks import Broken
from exportlake.cli.errors import explain, secret_hint, where
from exportlake.cli.exitcodes import ExitCode, checks_exit
from exportlake.domain.errors import ConfigError
from exportlake.domain.models import ResultRef, ResultState
from exportlake.domain.timefmt import parse_time, utc_now
from exportlake.domain.wording import describe


@dataclass
class Check:
    """The outcome of one link."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class _State:
    """What earlier checks found, for the later ones."""

    settings: Any = None
    gateway: Any = None
    exports: list[Any] = field(default_factory=list)
    newest: list[ResultRef] = field(default_factory=list)
    url: str = ""
    #: The deployed stack (``--stack``/``EXPORTLAKE_STACK``) and its outputs, when named.
    stack: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL", "").strip()


def check_settings(state: _State, clients: Callable[[str], Any]) -> str:
    """The environment contract."""
    from exportlake.settings import Settings

    try:
        state.settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        raise Broken(str(exc), 'set them (`eval "$(exportlake env --stack NAME)"` reads a deployed stack)') from None
    days = state.settings.lake_retention_days
    kept = f"results kept {days} days (lakeRetentionDays)" if days else "results kept forever (lakeRetentionDays 0)"
    return f"gateway {state.settings.gateway_url}, bucket {state.settings.bucket}, {kept}"


def check_aws(state: _State, clients: Callable[[str], Any]) -> str:
    """Region, credentials, and which AWS: the local emulator or the real one."""
    import boto3

    session = boto3.session.Session()
    if not session.region_name:
        raise Broken("no AWS region", "export AWS_DEFAULT_REGION=<region> (e.g. eu-west-1)")
    if session.get_credentials() is None:
        raise Broken("no AWS credentials", "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    endpoint = _endpoint()
    if endpoint:
        return f"region {session.region_name}, local endpoint {endpoint}"
    try:
        account = clients("sts").get_caller_identity()["Account"]
    except Exception as exc:
        raise Broken(f"the credentials do not work: {explain(exc).message}", "refresh them (aws sso login …)") from None
    return f"region {session.region_name}, real AWS account {account}"


def read_secret(secret_id: str, clients: Callable[[str], Any]) -> dict[str, Any]:
    """The secret as a JSON object; ``Broken`` naming what is wrong (never the value)."""
    try:
        raw = clients("secretsmanager").get_secret_value(SecretId=secret_id).get("SecretString") or ""
    except Exception as exc:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code == "ResourceNotFoundException":
            raise Broken(f"secret {secret_id} does not exist {where()}", secret_hint(secret_id)) from None
        raise Broken(f"cannot read secret {secret_id}: {explain(exc).message}", "check the permissions") from None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise Broken(f"secret {secret_id} is not a JSON object", secret_fix(secret_id))
    for key in ("client_id", "client_secret"):
        if not isinstance(value.get(key), str) or not value.get(key):
            raise Broken(f"secret {secret_id} has no string field {key}", secret_fix(secret_id))
    if value["client_id"] == PLACEHOLDER_CLIENT_ID:
        raise Broken(
            f"secret {secret_id} still holds the placeholder client_id {PLACEHOLDER_CLIENT_ID}", secret_fix(secret_id)
        )
    return value


def secret_fix(secret_id: str) -> str:
    """The command that puts real credentials in the secret."""
    return (
        f"aws secretsmanager put-secret-value --secret-id {secret_id} "
        '--secret-string \'{"client_id":"…","client_secret":"…"}\''
    )


def check_secret(state: _State, clients: Callable[[str], Any]) -> str:
    """The secret exists and holds ``{"client_id", "client_secret"}``, not the placeholder."""
    read_secret(state.settings.secret_id, clients)
    return f"{state.settings.secret_id} holds client_id and client_secret"


def check_token(state: _State, clients: Callable[[str], Any]) -> str:
    """The gateway issues a token for the secret's credentials."""
    from exportlake.adapters.gateway import HttpGateway
    from exportlake.adapters.secrets import SecretCredentials

    s = state.settings
    state.gateway = HttpGateway(
        s.gateway_url,
        SecretCredentials(clients("secretsmanager"), s.secret_id),
        s.download_hosts,
        max_requests_per_second=s.gateway_max_rps,
    )
    try:
        state.gateway.tokens.get()
    except Exception as exc:
        raise Broken(
            f"no token from {s.gateway_url}: {explain(exc).message}",
            "check EXPORTLAKE_GATEWAY_URL and the client credentials in the secret",
        ) from None
    return f"token issued by {s.gateway_url}"


def check_exports(state: _State, clients: Callable[[str], Any]) -> str:
    """``GET /automated`` answers (needs the automated-exports-view permission)."""
    try:
        state.exports = state.gateway.list_exports()
    except Exception as exc:
        raise Broken(
            f"listing exports failed: {explain(exc).message}", "give the client the automated-exports-view role"
        ) from None
    if not state.exports:
        raise Broken("the gateway lists no automated exports", "configure automated exports on the gateway")
    return f"{len(state.exports)} exports"


def check_newest(state: _State, clients: Callable[[str], Any]) -> str:
    """Each export's newest result (``last_run``)."""
    now = utc_now()
    state.newest = [e.last_run for e in state.exports if e.last_run is not None]
    never = [e.system_name for e in state.exports if e.last_run is None]
    live = [r for r in state.newest if not r.is_expired(now)]
    if not live:
        raise Broken("no export has a result that has not expired", "wait for the next export run on the gateway")
    tail = f"; never ran: {', '.join(never)}" if never else ""
    return f"{len(state.newest)} of {len(state.exports)} exports have a newest result{tail}"


def check_download_url(state: _State, clients: Callable[[str], Any]) -> str:
    """``GET /fetch/<id>`` of one newest result gives a download URL."""
    ref = max(r for r in state.newest if not r.is_expired(utc_now()))
    try:
        state.url = state.gateway.download_url(ref.result_id)
    except Exception as exc:
        raise Broken(f"fetch {ref.result_id} failed: {explain(exc).message}", "check the gateway") from None
    return f"download URL for {ref.export_name} {ref.result_id}"


def check_allowlist(state: _State, clients: Callable[[str], Any]) -> str:
    """The download URL's scheme and host pass ``EXPORTLAKE_DOWNLOAD_HOSTS``."""
    from urllib.parse import urlsplit

    from exportlake.adapters.download import DownloadGuard
    from exportlake.domain.errors import DownloadRefused

    host = (urlsplit(state.url).hostname or "").lower()
    try:
        DownloadGuard(state.settings.download_hosts).check(state.url)
    except DownloadRefused as exc:
        raise Broken(
            f"{exc} ({','.join(state.settings.download_hosts)})",
            f"add it: EXPORTLAKE_DOWNLOAD_HOSTS={host} (or a *.domain pattern), then `exportlake sync --retry-failed`",
        ) from None
    return f"host {host} is allowed"


def check_resources(state: _State, clients: Callable[[str], Any]) -> str:
    """Bucket, ledger, queue, topic, Glue database and the privacy salt's secret answer."""
    s = state.settings
    probes: list[tuple[str, Callable[[], Any]]] = [
        (f"bucket {s.bucket}", lambda: clients("s3").head_bucket(Bucket=s.bucket)),
        (f"ledger {s.ledger_table}", lambda: clients("dynamodb").describe_table(TableName=s.ledger_table)),
        (
            "queue",
            lambda: clients("sqs").get_queue_attributes(QueueUrl=s.queue_url, AttributeNames=["QueueArn"]),
        ),
        ("topic", lambda: clients("sns").get_topic_attributes(TopicArn=s.topic_arn)),
        (f"database {s.glue_database}", lambda: clients("glue").get_database(Name=s.glue_database)),
        # Every copy writes the result's id index with it (erasure): without the salt no copy can finish.
        (
            f"privacy salt secret {s.privacy_salt_id}",
            lambda: clients("secretsmanager").describe_secret(SecretId=s.privacy_salt_id),
        ),
    ]
    for what, probe in probes:
        try:
            probe()
        except Exception as exc:
            fix = "run `exportlake provision`" if _endpoint() else "deploy the stack; check the names it output"
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) or describe(exc)
            raise Broken(f"{what} is not reachable {where()} ({code})", fix) from None
    return "bucket, ledger, queue, topic, database and privacy salt reachable"


def uncopied(gateway: Any, ledger: Any, exports: list[Any], now: datetime) -> list[ResultRef]:
    """Results listed on the gateway, not expired, that the ledger does not hold as copied."""
    out: list[ResultRef] = []
    for export in exports:
        if export.last_run is None:
            continue
        listed = {r.result_id: r for r in gateway.list_results(export.system_name)}
        listed.setdefault(export.last_run.result_id, export.last_run)
        known = ledger.entries(export.system_name)
        for ref in listed.values():
            entry = known.get(ref.result_id)
            if ref.is_expired(now) or (entry is not None and entry.state == ResultState.COPIED):
                continue
            out.append(ref)
    return out


def check_expiry(state: _State, clients: Callable[[str], Any]) -> str:
    """Time left before the oldest uncopied result expires."""
    from exportlake.adapters.ledger import DynamoLedger

    now = utc_now()
    ledger = DynamoLedger(clients("dynamodb"), state.settings.ledger_table)
    pending = [r for r in uncopied(state.gateway, ledger, state.exports, now) if r.expires_at is not None]
    if not pending:
        return "every result on the gateway is copied"
    first = min(pending, key=lambda r: r.expires_at or now)
    left = (first.expires_at or now) - now
    line = f"{len(pending)} uncopied; {first.export_name} {first.result_id} expires in {_hours(left)}"
    # The same window as the planner's result.expiring notice (EXPORTLAKE_EXPIRY_WARNING_HOURS).
    if left < timedelta(hours=state.settings.expiry_warning_hours):
        raise Broken(line, "run `exportlake sync` now (or invoke the planner) before the data is gone")
    return line


def check_reconcile(state: _State, clients: Callable[[str], Any]) -> str:
    """The full pass over each export's listing: how often (``reconcileHours``), when it last completed, and
    which exports have one running; broken when one is long overdue (the planner is not finishing it)."""
    from exportlake.adapters.ledger import DynamoLedger

    every = state.settings.reconcile_hours
    states = DynamoLedger(clients("dynamodb"), state.settings.ledger_table).export_states()
    head = f"full pass every {every} h (reconcileHours)"
    if not states:
        return f"{head}; no export planned yet"
    now = utc_now()
    done = [t for t in (parse_time(s.recon_at) for s in states.values()) if t is not None]
    running = sorted(name for name, s in states.items() if s.recon_page)
    line = head + (f"; oldest complete pass {_hours(now - min(done))} ago" if done else "; none complete yet")
    if running:
        line += f"; running for {len(running)} export(s) ({', '.join(running[:3])}{', …' if len(running) > 3 else ''})"
    # Overdue: due plus a day of runs to finish it (docs/performance.md bounds a pass to well under a day).
    if not done or now - min(done) > timedelta(hours=every + 24):
        raise Broken(line, "run `exportlake sync` (each run finishes a slice); if it stays, read the planner's logs")
    return line


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


CHECKS: tuple[tuple[str, Callable[[_State, Callable[[str], Any]], str]], ...] = (
    ("settings", check_settings),
    ("aws", check_aws),
    ("bootstrap", deploychecks.check_bootstrap),
    ("stack", deploychecks.check_stack),
    ("lake formation", deploychecks.check_lake_formation),
    ("secret", check_secret),
    ("secret key", deploychecks.check_secret_key),
    ("token", check_token),
    ("exports", check_exports),
    ("newest results", check_newest),
    ("download url", check_download_url),
    ("allowlist", check_allowlist),
    ("resources", check_resources),
    ("reconcile", check_reconcile),
    ("expiry", check_expiry),
    ("alarms", deploychecks.check_alarms),
)


def run(clients: Callable[[str], Any], only: tuple[str, ...] = (), stack: str = "") -> Iterator[Check]:
    """Run the checks in order (or only those named), yielding each outcome; stop after the first broken one."""
    state = _State(stack=stack)
    for name, check in CHECKS:
        if only and name not in only:
            continue
        try:
            yield Check(name, True, check(state, clients))
        except Broken as exc:
            yield Check(name, False, exc.detail, exc.fix)
            return
        except Exception as exc:  # an unforeseen failure is still a broken link, in one line
            yield Check(name, False, explain(exc).message, "run `exportlake doctor -v` for the traceback")
            return


def as_json(checks: list[Check]) -> str:
    """The checks as a JSON document: ``{"ok": bool, "checks": [{name, ok, detail, fix}]}``."""
    return json.dumps({"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}, indent=1)


def cmd_doctor(args: argparse.Namespace) -> ExitCode:
    """Check every link in order; exit 1 at the first broken one."""
    checks = []
    for check in run(bootstrap.client, stack=getattr(args, "stack", None) or ""):
        checks.append(check)
        if not getattr(args, "json", False):
            mark = "ok  " if check.ok else "FAIL"
            fix = f" -> fix: {check.fix}" if check.fix and not check.ok else ""
            print(f"{mark} {check.name:<15} {check.detail}{fix}", flush=True)
    if getattr(args, "json", False):
        print(as_json(checks))
    return checks_exit(all(c.ok for c in checks))


def preflight(links: tuple[str, ...] = ("settings", "aws", "secret", "resources")) -> None:
    """The links a command needs before it starts, so a missing one is one line with its fix, not a traceback."""
    for check in run(bootstrap.client, only=links):
        if not check.ok:
            raise ConfigError(f"{check.name}: {check.detail}" + (f"; fix: {check.fix}" if check.fix else ""))
