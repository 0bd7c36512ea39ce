"""Powertools objects shared by the handlers."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from exportlake import bootstrap

_FALSE = ("", "0", "false", "no", "off")


def tracing_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the Powertools Tracer would trace here: inside Lambda, unless ``POWERTOOLS_TRACE_DISABLED`` says no.

    The same rule as Powertools' own (it disables itself outside Lambda); asked first so that, when it would not
    trace, the X-Ray SDK is never imported (that import and its clients measured ~0.3 s of a CLI sync's CPU).
    """
    if env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() not in _FALSE:
        return False
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) or bool(env.get("AWS_SAM_LOCAL"))


class NoTracer:
    """Stands in for ``Tracer`` when tracing is off: its decorators return the function unchanged."""

    def capture_lambda_handler(self, func: Callable[..., Any] | None = None, **_: Any) -> Any:
        """``@tracer.capture_lambda_handler`` (with or without arguments) without tracing."""
        return func if func is not None else (lambda f: f)

    def capture_method(self, func: Callable[..., Any] | None = None, **_: Any) -> Any:
        """``@tracer.capture_method`` (with or without arguments) without tracing."""
        return func if func is not None else (lambda f: f)

    def put_annotation(self, key: str, value: Any) -> None:
        """Nothing to annotate."""

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        """Nothing to record."""


def make_tracer(env: Mapping[str, str] = os.environ) -> Any:
    """The Powertools ``Tracer`` when tracing is on, else a ``NoTracer`` (the X-Ray SDK stays unimported)."""
    if tracing_enabled(env):
        from aws_lambda_powertools import Tracer  # noqa: PLC0415 - imports aws_xray_sdk: only when tracing

        return Tracer(service="exportlake")
    return NoTracer()


logger = Logger(service="exportlake")
tracer = make_tracer()
metrics = Metrics(namespace="exportlake", service="exportlake")


class PowertoolsMetrics:
    """The domain's ``Metrics`` port on Powertools Metrics (CloudWatch EMF)."""

    def __init__(self, target: Metrics):
        self._target = target

    def add(self, name: str, value: float, unit: str) -> None:
        """Record one figure."""
        self._target.add_metric(name=name, unit=MetricUnit(unit), value=value)


#: Seconds a handler keeps in hand at its deadline: enough to record the failure and hand the message back.
DEADLINE_MARGIN_SECONDS = 20.0


def bound_waits(context: LambdaContext) -> None:
    """Bound every gateway wait of this invocation by the time Lambda has left for it (minus a margin)."""
    bootstrap.gateway().set_deadline(lambda: context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS)
