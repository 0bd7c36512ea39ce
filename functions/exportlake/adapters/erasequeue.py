"""The erase-jobs queue on SQS (the deployed eraser's ``find`` and ``erase`` jobs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from exportlake.domain.errors import EnqueueError
from exportlake.domain.ports import chunks_of


class SqsEraseQueue:
    """Sends erase jobs (JSON, person keys only), ten per request."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def send(self, jobs: Sequence[dict[str, Any]]) -> None:
        """Enqueue every job; raise if SQS refuses any of them."""
        for batch in chunks_of(jobs, 10):
            resp = self._sqs.send_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "MessageBody": json.dumps(job, sort_keys=True)} for i, job in enumerate(batch)],
            )
            if resp.get("Failed"):
                raise EnqueueError(f"SQS refused {len(resp['Failed'])} erase jobs, e.g. {resp['Failed'][0]}", set())


def lake_exports(store: Any) -> list[str]:
    """The exports that have results in the lake (their manifests' folders)."""
    return sorted({key.split("/")[1] for key in store.list_keys("manifests/") if key.count("/") >= 2})
