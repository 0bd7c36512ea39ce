"""Errors of the domain, each with a message fit to show a user (never a secret)."""


class ExportlakeError(Exception):
    """Base of every error exportlake raises on purpose."""


class ConfigError(ExportlakeError):
    """The environment contract is not met."""


class ValidationError(ExportlakeError):
    """Something from the API is not safe to become a key, a name or SQL."""


class GatewayError(ExportlakeError):
    """The gateway answered in a way we cannot use (after retries)."""


class AuthError(GatewayError):
    """The gateway refused our credentials."""


class DownloadRefused(ExportlakeError):
    """The download URL is outside the allowlist (scheme or host); nothing was sent."""


class DownloadExpired(ExportlakeError):
    """The object store refused the pre-signed download URL (expired); fetch a new one."""


class DocumentError(ExportlakeError):
    """The downloaded document is not one JSON object holding one array of flat records."""


class TransientError(ExportlakeError):
    """A failure worth retrying later (the message goes back to the queue)."""


class EnqueueError(ExportlakeError):
    """Some copy jobs could not be enqueued; ``sent`` holds the result ids that were."""

    def __init__(self, message: str, sent: set[str]):
        super().__init__(message)
        self.sent = sent


class LeaseLost(TransientError):
    """This copier no longer holds the result's copy lease (it lapsed or another took it): stop, touch nothing."""


class HeldElsewhere(TransientError):
    """Another live copier holds the result's lease; this attempt did nothing and is retried later."""
