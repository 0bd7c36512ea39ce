"""The local stand-in for the Lambda service: invokes the real handlers with real event shapes.

The planner gets an EventBridge Scheduler event; the copier gets SQS batches received from the (moto) queue,
and what it reports in ``batchItemFailures`` goes back on the queue, as the SQS event source mapping does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exportlake import bootstrap
from exportlake.domain import wording
from exportlake.domain.errors import ExportlakeError
from exportlake.domain.lease import holder_is_dead
from exportlake.domain.limits import MAX_RECEIVES
from exportlake.domain.models import CopyJob, ResultState
from exportlake.domain.ports import LedgerEntry
from exportlake.domain.timefmt import now_text
from exportlake.settings import queue_name

MAX_ROUNDS = 10_000  # a bound on the drain loop, far above any real queue

log = logging.getLogger(__name__)


@dataclass
class LocalContext:
    """What Powertools reads from a Lambda context object."""

    function_name: str
    memory_limit_in_mb: int = 1769
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def scheduler_event() -> dict[str, Any]:
    """The event EventBridge Scheduler's Lambda target sends (its default input)."""
    return {}


def sqs_event(messages: list[dict[str, Any]], queue_url: str, region: str) -> dict[str, Any]:
    """The event an SQS event source mapping sends for ``messages`` (from ``receive_message``)."""
    arn = f"arn:aws:sqs:{region}:123456789012:{queue_name(queue_url)}"
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    k: {
                        "stringValue": v.get("StringValue"),
                        "binaryValue": None,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": v.get("DataType", "String"),
                    }
                    for k, v in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


#: How long a sync waits for results held by other live copiers before it gives up and says so.
HELD_WAIT_SECONDS = 60.0
#: Rounds of "finish what the ledger says is unfinished" in one sync (each drains the queue).
MAX_FINISH_ROUNDS = 5

_UPLOAD_KEY = re.compile(
    r"^(?:raw/(?P<e1>[a-z0-9][a-z0-9_-]*)/(?P<r1>[A-Za-z0-9]+)\.json\.gz"
    r"|lake/[a-z][a-z0-9_]*/export_name=(?P<e2>[a-z0-9][a-z0-9_-]*)/created_date=[0-9-]+/result_id=(?P<r2>[A-Za-z0-9]+)/.*)$"
)


@dataclass
class SyncReport:
    """What one local sync did, and what the ledger says is left."""

    planned: dict[str, Any] = field(default_factory=dict)
    planner_error: str = ""
    invocations: int = 0
    copied: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    retried: int = 0
    #: Results the ledger still has in flight at the end: (export, result id, state).
    pending: list[tuple[str, str, str]] = field(default_factory=list)
    #: Results that another live copier still held when this sync gave up waiting.
    held: list[tuple[str, str]] = field(default_factory=list)
    #: Results found unfinished in the ledger (left by earlier, killed runs) and finished by this sync.
    recovered: list[tuple[str, str]] = field(default_factory=list)
    #: Multipart uploads left open by killed runs and aborted by this sync.
    aborted_uploads: int = 0
    #: Every entry still unfinished at the end (failed ones of earlier runs included), as the ledger said.
    unfinished: list[LedgerEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the ledger says everything copyable is in the lake."""
        return not self.failed and not self.planner_error and not self.pending and not self.held


def run_planner(retry_failed: bool = False) -> dict[str, Any]:
    """Invoke the planner handler once."""
    from exportlake.handlers import planner

    event = scheduler_event()
    if retry_failed:
        event["retry_failed"] = True
    result: dict[str, Any] = planner.handler(event, LocalContext("exportlake-planner"))
    return result


def run_selected_planner(
    retry_failed: bool, only_exports: frozenset[str] | None, since: datetime | None, dry_run: bool
) -> dict[str, Any]:
    """The planner service itself, for a backfill or a dry run (filters the scheduled handler never gets)."""
    from exportlake.domain.ports import NullMetrics
    from exportlake.domain.timefmt import utc_now

    report = bootstrap.build_planner(NullMetrics()).run(
        utc_now(), retry_failed=retry_failed, only_exports=only_exports, since=since, dry_run=dry_run
    )
    from exportlake.handlers.planner import MAX_INVALID_LISTED, PlanningFailed

    summary: dict[str, Any] = {
        "exports": report.exports,
        "enqueued": 0 if dry_run else len(report.enqueued),
        "expired": 0 if dry_run else len(report.expired),
        "errors": report.errors,
        "invalid": len(report.invalid),
        "invalid_items": [list(i) for i in report.invalid[:MAX_INVALID_LISTED]],
    }
    if dry_run:
        summary["would_copy"] = list(report.enqueued)
    if report.errors:
        raise PlanningFailed(f"planning failed for {len(report.errors)} export(s): {'; '.join(report.errors)}", summary)
    return summary


def drain_queue(
    batch_size: int = 10, on_batch: Callable[[Sequence[tuple[str, str]]], None] | None = None
) -> tuple[int, int, set[tuple[str, str]]]:
    """Feed the copy-jobs queue to the copier handler until it is empty.

    Returns (invocations, retried messages, jobs seen). Failed messages are made visible again at once, so a job
    is retried up to the queue's ``maxReceiveCount`` and then lands in the dead-letter queue.
    """
    from exportlake.handlers import copier

    settings = bootstrap.settings()
    sqs = bootstrap.client("sqs")
    region = sqs.meta.region_name
    invocations = retried = 0
    seen: set[tuple[str, str]] = set()
    for _ in range(MAX_ROUNDS):
        messages = sqs.receive_message(
            QueueUrl=settings.queue_url,
            MaxNumberOfMessages=batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            break
        for m in messages:
            body = json.loads(m["Body"])
            seen.add((str(body.get("export_name")), str(body.get("result_id"))))
        try:
            response = copier.handler(
                sqs_event(messages, settings.queue_url, region), LocalContext("exportlake-copier")
            )
            failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # a failed invocation returns the whole batch to the queue, as Lambda does
            failed_ids = {m["MessageId"] for m in messages}
        invocations += 1
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if on_batch is not None:
            on_batch([(str(b.get("export_name")), str(b.get("result_id"))) for b in map(_body, done)])
        for i in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=settings.queue_url,
                Entries=[{"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]} for j, m in enumerate(done[i : i + 10])],
            )
        for m in messages:
            if m["MessageId"] in failed_ids:
                retried += 1
                receives = int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                if receives >= MAX_RECEIVES:
                    # What the redrive policy does on the next receive; done here so the loop ends at once.
                    _to_dead_letter(sqs, settings.queue_url, m)
                else:
                    sqs.change_message_visibility(
                        QueueUrl=settings.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
    return invocations, retried, seen


def _body(message: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(message["Body"])
    return body if isinstance(body, dict) else {}


def _to_dead_letter(sqs: Any, queue_url: str, message: dict[str, Any]) -> None:
    dlq_url = sqs.get_queue_url(QueueName=f"{queue_name(queue_url)}-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody=message["Body"])
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _unfinished(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    """Entries a sync must still act on: in flight, or copied but never announced."""
    return [
        e
        for e in entries
        if e.state in (ResultState.QUEUED, ResultState.COPYING) or (e.state == ResultState.COPIED and not e.notified)
    ]


def ledger_view(
    only_exports: frozenset[str] | None = None, also: set[tuple[str, str]] | None = None
) -> dict[tuple[str, str], LedgerEntry]:
    """The entries not finished (queued, copying, failed, or not announced) and the ``also`` keys (this run's
    results, in any state), as the table holds them now.

    Found through the ledger's sparse index per export (exports the planner keeps a state for, ``only_exports``
    when given), never by a Scan; the index may lag behind a write, so each entry is read again by key
    (consistent).
    """
    ledger = bootstrap.ledger()
    names = set(only_exports) if only_exports is not None else set(ledger.export_states())
    mine = {k for k in also or set() if only_exports is None or k[0] in only_exports}
    names |= {e for e, _ in mine}
    keys = [(e.export_name, e.result_id) for name in sorted(names) for e in ledger.open_entries(name).values()]
    return ledger.get_many([*keys, *sorted(mine)])


def is_unfinished(entry: LedgerEntry) -> bool:
    """Queued, copying, failed, or not yet announced: what the ledger's index holds."""
    return entry.state in (ResultState.QUEUED, ResultState.COPYING, ResultState.FAILED) or not entry.notified


def open_entries(
    only_exports: frozenset[str] | None = None, also: set[tuple[str, str]] | None = None
) -> list[LedgerEntry]:
    """Every entry not finished, as the table holds it now (see ``ledger_view``)."""
    return [e for e in ledger_view(only_exports, also).values() if is_unfinished(e)]


def _held_by_live(entry: LedgerEntry, now: str) -> bool:
    """True if another copier that may be alive holds the entry's copy or notification lease."""
    if entry.lease_live(now) and not holder_is_dead(entry.lease_owner):
        return True
    return bool(entry.notify_until) and entry.notify_until >= now and not holder_is_dead(entry.notify_owner)


def _jobs(entries: list[LedgerEntry]) -> list[CopyJob]:
    jobs: list[CopyJob] = []
    for e in entries:
        try:
            jobs.append(CopyJob.for_result(e.ref))
        except ExportlakeError as exc:  # a ledger entry we cannot turn back into a job: say so, don't hide it
            log.error("ledger entry %s/%s is not a valid job: %s", e.export_name, e.result_id, exc)
    return jobs


def finish_unfinished(
    report: SyncReport,
    seen: set[tuple[str, str]],
    *,
    wait: float = HELD_WAIT_SECONDS,
    on_batch: Callable[[Sequence[tuple[str, str]]], None] | None = None,
    only_exports: frozenset[str] | None = None,
) -> dict[tuple[str, str], LedgerEntry]:
    """Make the ledger the truth: queue and copy every unfinished result nobody live holds, wait for the rest.

    Results left "queued"/"copying" by killed runs (or whose messages are hidden by a killed receive) are found
    here, not 24 hours later; the same copier code runs on them through the same queue and event shapes.
    Returns the last ``ledger_view`` it read (nothing was done after it: the run's final state).
    """
    queue = bootstrap.job_queue()
    deadline = time.monotonic() + wait
    rounds = 0
    while True:
        now = now_text()
        view = ledger_view(only_exports, seen)
        left = _unfinished([e for e in view.values() if is_unfinished(e)])
        ready = [e for e in left if not _held_by_live(e, now)]
        held = [e for e in left if _held_by_live(e, now)]
        if ready and rounds < MAX_FINISH_ROUNDS:
            rounds += 1
            jobs = _jobs(ready)
            report.recovered.extend(
                (j.export_name, j.result_id) for j in jobs if (j.export_name, j.result_id) not in seen
            )
            queue.send(jobs)
            invocations, retried, more = drain_queue(on_batch=on_batch)
            report.invocations += invocations
            report.retried += retried
            seen |= more
            continue
        if not held:
            return view  # done, or what is left is reported as pending
        if time.monotonic() >= deadline:
            report.held.extend((e.export_name, e.result_id) for e in held)
            return view
        time.sleep(1.0)  # a live holder renews its lease; a dead one's lapses within the lease time


def sweep_uploads() -> int:
    """Abort multipart uploads that killed runs left open, unless a live copier holds their result."""
    store = bootstrap.lake_store()
    ledger = bootstrap.ledger()
    now = now_text()
    aborted = 0
    for key, upload_id in store.open_uploads():
        m = _UPLOAD_KEY.match(key)
        if m is None:
            continue
        entry = ledger.get(m["e1"] or m["e2"], m["r1"] or m["r2"])
        if entry is not None and _held_by_live(entry, now):
            continue
        store.abort_upload(key, upload_id)
        aborted += 1
    return aborted


def sync(
    retry_failed: bool = False,
    *,
    only_exports: frozenset[str] | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    on_planned: Callable[[dict[str, Any]], None] | None = None,
    on_batch: Callable[[Sequence[tuple[str, str]]], None] | None = None,
    wait: float = HELD_WAIT_SECONDS,
) -> SyncReport:
    """Plan, run every copy job, then finish whatever the ledger says is unfinished, as the pipeline would.

    ``report.ok`` (exit 0) means the ledger holds every copyable result as copied and announced.
    ``only_exports``/``since`` limit the plan (a backfill); ``dry_run`` plans without writing or copying.
    ``on_planned`` and ``on_batch`` report progress (the plan's summary; each copier invocation's results).
    ``wait`` bounds how long results held by other live copiers are waited for.
    """
    report = SyncReport()
    try:
        if only_exports is None and since is None and not dry_run:
            report.planned = run_planner(retry_failed)
        else:
            report.planned = run_selected_planner(retry_failed, only_exports, since, dry_run)
    except Exception as exc:  # the planner plans every export it can before it raises; copy those anyway
        report.planner_error = wording.run_failure(exc, os.environ.get("EXPORTLAKE_GATEWAY_URL", "").strip())
        report.planned = dict(getattr(exc, "summary", {}) or {})  # empty when the run failed as a whole
    if dry_run:
        return report
    if on_planned is not None:
        on_planned(report.planned)
    report.invocations, report.retried, seen = drain_queue(on_batch=on_batch)
    # This run's results and whatever is still unfinished: by key and through the index, never a Scan.
    entries = finish_unfinished(report, seen, wait=wait, on_batch=on_batch, only_exports=only_exports)
    report.unfinished = [e for e in entries.values() if is_unfinished(e)]
    report.aborted_uploads = sweep_uploads()
    held = set(report.held)
    for entry in sorted(entries.values(), key=lambda e: (e.export_name, e.result_id)):
        key = (entry.export_name, entry.result_id)
        if entry.state == ResultState.COPIED:
            if key in seen:
                report.copied.append(key)
        elif entry.state == ResultState.FAILED and key in seen:  # earlier runs' failures: cli's ledger_failed
            report.failed.append((*key, entry.error or "failed"))
        elif entry.state in (ResultState.QUEUED, ResultState.COPYING) and key not in held:
            report.pending.append((*key, entry.state.value))
    return report
