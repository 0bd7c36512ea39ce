"""Operating limits shared by the runtime and the CDK stack (one source for both)."""

#: Deliveries of one copy job before it moves to the dead-letter queue; the last failing one reports
#: ``result.failed``.
MAX_RECEIVES = 5
#: The copier's Lambda timeout (seconds); the lease and the queue's visibility timeout derive from it.
COPIER_TIMEOUT_SECONDS = 15 * 60
#: The planner's Lambda timeout (seconds).
PLANNER_TIMEOUT_SECONDS = 5 * 60
#: The copy-jobs queue's visibility timeout (seconds): how long a received job stays invisible before SQS hands
#: it out again. Lambda requires at least the function timeout (a running copier's message must not reappear);
#: AWS's "6 x timeout" advice leaves room for the event source to retry throttled invokes, which the mapping's
#: maximum concurrency already prevents. Five minutes above the timeout lets a killed copier's job come back
#: soon after Lambda ended it (not 90 minutes later), once a ledger lease shorter than the margin has lapsed.
VISIBILITY_TIMEOUT_SECONDS = COPIER_TIMEOUT_SECONDS + 5 * 60
#: A "queued" result whose job never went out (the planner died between its claim and SendMessage), or a
#: "copying" one with no lease (between attempts), this long ago is queued again by the planner. A duplicate job
#: is harmless: the copy lease and the "copied" state stop it.
UNSENT_AFTER_SECONDS = 120
#: Any "queued" result this old lost its job (a message dropped or a receive that died before the copy lease):
#: longer than a message can stay hidden plus one copy.
QUEUED_LOST_AFTER_SECONDS = VISIBILITY_TIMEOUT_SECONDS + COPIER_TIMEOUT_SECONDS
#: Bytes one record of a downloaded document may take. The decoder buffers a record whole before it decodes it, so
#: this bounds the copier's memory on a hostile document: a record that needs more is refused for good
#: (``DocumentError``), after reading at most this much beyond one decode range.
MAX_RECORD_BYTES = 16 << 20
#: Nesting levels of one record (the record object itself is level 1; ``{"a": [1]}`` has depth 2). Records are flat
#: in every known export type; a nested value is kept as its JSON text, but a deeper one is refused for good
#: (``DocumentError``) instead of recursing without bound.
MAX_NESTING_DEPTH = 64
#: Longest single wait the gateway client accepts (a ``Retry-After`` or a retry backoff, seconds). A server asking
#: for more (``Retry-After: 3600``) is not waited for: the call fails as transient and the job comes back later.
GATEWAY_MAX_WAIT_SECONDS = 30.0
#: Requests per second one gateway client sends at most (token, lists, fetch): a backfill of thousands of results
#: cannot flood the gateway. Download requests go to the object store and are not counted. The default of the
#: ``EXPORTLAKE_GATEWAY_MAX_RPS`` setting (``gatewayMaxRequestsPerSecond`` in cdk.json).
GATEWAY_MAX_REQUESTS_PER_SECOND = 20.0
