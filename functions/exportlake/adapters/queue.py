"""The copy-jobs queue on SQS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exportlake.domain.errors import EnqueueError, ExportlakeError
from exportlake.domain.models import CopyJob
from exportlake.domain.ports import chunks_of


class SqsJobQueue:
    """Sends copy jobs, ten per request (the SQS batch limit); clears dead letters that a retry supersedes."""

    def __init__(self, sqs_client: Any, queue_url: str, dlq_url: str = ""):
        self._sqs = sqs_client
        self._url = queue_url
        self._dlq = dlq_url

    def discard_dead_letters(self, results: set[tuple[str, str]], max_rounds: int = 100) -> int:
        """Delete the dead-letter messages of ``results`` ((export, result id) pairs queued again or copied).

        The re-queued job supersedes them, and a DLQ left holding them keeps its alarm red after recovery.
        Messages of other results are left (hidden for a moment by the receive, then visible again).
        """
        if not self._dlq or not results:
            return 0
        deleted = 0
        for _ in range(max_rounds):
            got = self._sqs.receive_message(
                QueueUrl=self._dlq, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                break
            for m in got:
                try:
                    job = CopyJob.from_json(m["Body"])
                except ExportlakeError:
                    continue
                if (job.export_name, job.result_id) in results:
                    self._sqs.delete_message(QueueUrl=self._dlq, ReceiptHandle=m["ReceiptHandle"])
                    deleted += 1
        return deleted

    def send(self, jobs: Sequence[CopyJob]) -> None:
        """Enqueue every job; raise if SQS refuses any of them."""
        sent: set[str] = set()
        for batch in chunks_of(jobs, 10):
            try:
                self._send_batch(batch)
            except EnqueueError as exc:
                raise EnqueueError(str(exc), sent | exc.sent) from None
            except Exception as exc:
                raise EnqueueError(f"SQS refused copy jobs: {type(exc).__name__}: {exc}", sent) from exc
            sent.update(job.result_id for job in batch)

    def _send_batch(self, batch: list[CopyJob]) -> None:
        """Send up to ten jobs in one request; raise ``EnqueueError`` naming those that went out."""
        resp = self._sqs.send_message_batch(
            QueueUrl=self._url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": job.to_json(),
                    "MessageAttributes": {"export": {"DataType": "String", "StringValue": job.export_name}},
                }
                for i, job in enumerate(batch)
            ],
        )
        failed = resp.get("Failed") or []
        if failed:
            ok = {batch[int(e["Id"])].result_id for e in resp.get("Successful", [])}
            raise EnqueueError(f"SQS refused {len(failed)} copy jobs: {failed[0]}", ok)
