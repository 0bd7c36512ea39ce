"""The CloudWatch metric names the runtime emits (Powertools EMF) and the stack alarms on: one source. Stdlib only."""

#: Namespace (POWERTOOLS_METRICS_NAMESPACE) and the value of the one ``service`` dimension of every metric.
NAMESPACE = "exportlake"
SERVICE = "exportlake"

#: Copier: one per result copied (the freshness alarm counts these), its rows, its bytes, its lag since creation.
RESULTS_COPIED = "ResultsCopied"
ROWS_COPIED = "RowsCopied"
BYTES_COPIED = "BytesCopied"
LAG_SECONDS = "LagSeconds"
#: Copier: results whose copy failed for good (retries exhausted, or an error no retry fixes).
RESULTS_FAILED = "ResultsFailed"
#: Planner: copy jobs queued, and results that expired on the gateway before they could be copied.
RESULTS_ENQUEUED = "ResultsEnqueued"
RESULTS_EXPIRED = "ResultsExpired"
#: Planner: results not copied yet that expire soon on the gateway.
RESULTS_EXPIRING = "ResultsExpiring"
#: Run-level failures (bad credentials, missing secret, gateway down), also notified as ``sync.failed``.
RUNS_FAILED = "RunsFailed"
#: Items of a gateway listing that failed validation and were skipped.
ITEMS_INVALID = "ItemsInvalid"

ALL = (
    RESULTS_COPIED,
    ROWS_COPIED,
    BYTES_COPIED,
    LAG_SECONDS,
    RESULTS_FAILED,
    RESULTS_ENQUEUED,
    RESULTS_EXPIRED,
    RESULTS_EXPIRING,
    RUNS_FAILED,
    ITEMS_INVALID,
)
