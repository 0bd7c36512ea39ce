"""The copy-jobs queue on SQS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exportlake.domain.errors import ExportlakeError
from exportlake.domain.models import CopyJob
from exportlake.domain.ports import chunks_of


class SqsJobQueue:
    """Sends copy jobs, ten per request (the SQS batch limit)."""

    def __init__(self, sqs_client: Any, queue_url: str):
        self._sqs = sqs_client
        self._url = queue_url

    def send(self, jobs: Sequence[CopyJob]) -> None:
        """Enqueue every job; raise if SQS refuses any of them."""
        for batch in chunks_of(jobs, 10):
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
            if resp.get("Failed"):
                raise ExportlakeError(f"SQS refused {len(resp['Failed'])} copy jobs: {resp['Failed'][0]}")
