"""Notifications over SNS, with message attributes subscribers can filter on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class SnsNotifier:
    """Publishes one JSON message per event, with ``event_type`` and ``export`` attributes."""

    def __init__(self, sns_client: Any, topic_arn: str):
        self._sns = sns_client
        self._topic = topic_arn

    def publish(self, event_type: str, export_name: str, subject: str, payload: Mapping[str, Any]) -> None:
        """Send one notification."""
        message = {"event_type": event_type, **payload}
        self._sns.publish(
            TopicArn=self._topic,
            # SNS subjects: ASCII, no line breaks, at most 100 characters.
            Subject=subject.encode("ascii", "replace").decode().replace("\n", " ")[:100],
            Message=json.dumps(message, sort_keys=True, default=str),
            MessageAttributes={
                "event_type": {"DataType": "String", "StringValue": event_type},
                "export": {"DataType": "String", "StringValue": export_name or "-"},
            },
        )
