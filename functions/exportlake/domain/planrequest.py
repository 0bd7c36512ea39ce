"""What a planner invocation was asked, and how a whole-run failure is told. Stdlib only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from exportlake.domain import wording
from exportlake.domain.errors import AuthError, ConfigError, GatewayError, TransientError, ValidationError
from exportlake.domain.naming import parse_timestamp, validate_export_name


@dataclass(frozen=True)
class PlanRequest:
    """What one planner invocation was asked: the schedule's ``{}``, or a retry / backfill sent by hand.

    ``{"retry_failed": true, "exports": ["win-info"], "since": "2026-11-01T00:00:00Z"}``: every key optional.
    """

    retry_failed: bool = False
    only_exports: frozenset[str] | None = None
    since: datetime | None = None

    @classmethod
    def from_event(cls, event: object) -> PlanRequest:
        """Validate an invocation payload; raise ``ValidationError`` naming what is wrong."""
        if not isinstance(event, dict):
            return cls()
        exports = event.get("exports")
        if exports is not None and (not isinstance(exports, list) or not exports):
            raise ValidationError("planner payload: 'exports' must be a non-empty list of export names")
        since = event.get("since")
        return cls(
            retry_failed=event.get("retry_failed") is True,
            only_exports=None if exports is None else frozenset(validate_export_name(e) for e in exports),
            since=None if since is None else parse_timestamp(since, "planner payload 'since'"),
        )


def run_failure_cause(exc: BaseException) -> tuple[str, str]:
    """(cause, fix) of a run-level failure, for ``sync.failed`` (the cause is also its dedup key)."""
    if isinstance(exc, AuthError):
        return "credentials", wording.CREDENTIALS_FIX  # the CLI's one-line error says the same
    if isinstance(exc, ConfigError):
        return "configuration", "fix the setting named in the error"
    if isinstance(exc, TransientError | GatewayError):
        return "gateway", "the gateway is unreachable or failing; it is retried on the next run"
    name = type(exc).__name__
    if "ResourceNotFound" in name or "Secret" in str(exc):
        return "secret", "create the secret or fix EXPORTLAKE_SECRET_ID"
    return name, "see the planner's logs"
