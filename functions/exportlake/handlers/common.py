"""Powertools objects shared by the handlers."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="exportlake")
tracer = Tracer(service="exportlake")
metrics = Metrics(namespace="exportlake", service="exportlake")


class PowertoolsMetrics:
    """The domain's ``Metrics`` port on Powertools Metrics (CloudWatch EMF)."""

    def __init__(self, target: Metrics):
        self._target = target

    def add(self, name: str, value: float, unit: str) -> None:
        """Record one figure."""
        self._target.add_metric(name=name, unit=MetricUnit(unit), value=value)
