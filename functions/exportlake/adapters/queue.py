"""The copy-jobs queue on SQS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exportlake.domain.errors import EnqueueError
from exportlake.domain.models import CopyJob
from exportlake.domain.ports import chunks_of


class SqsJobQueue:
    """Sends copy jobs, ten per request (the SQS batch limit)."""

    def __init__(self, sqs_client: Any, queue_url: str):
        self._sqs = sqs_client
        self._url = queue_url

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
