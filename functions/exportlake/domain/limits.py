"""Operating limits shared by the runtime and the CDK stack (one source for both)."""

#: Deliveries of one copy job before it moves to the dead-letter queue; the last failing one reports
#: ``result.failed``.
MAX_RECEIVES = 5
#: The copier's Lambda timeout (seconds); the lease and the queue's visibility timeout derive from it.
COPIER_TIMEOUT_SECONDS = 15 * 60
#: The planner's Lambda timeout (seconds).
PLANNER_TIMEOUT_SECONDS = 5 * 60
