"""Operating limits shared by the runtime and the CDK stack (one source for both)."""

#: Deliveries of one copy job before it moves to the dead-letter queue; the last failing one reports
#: ``result.failed``.
MAX_RECEIVES = 5
#: The copier's Lambda timeout (seconds); the lease and the queue's visibility timeout derive from it.
COPIER_TIMEOUT_SECONDS = 15 * 60
#: A result left "queued" or "copying" this long lost its job (a copier killed on its last delivery, a message
#: dropped): the planner queues it again. Longer than every retry of a job (5 deliveries x 90 min visibility);
#: a duplicate job is harmless anyway (the copy lease and the "copied" state stop it).
STALE_AFTER_SECONDS = 24 * 3600
#: The planner's Lambda timeout (seconds).
PLANNER_TIMEOUT_SECONDS = 5 * 60
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
#: cannot flood the gateway. Download requests go to the object store and are not counted.
GATEWAY_MAX_REQUESTS_PER_SECOND = 20.0
