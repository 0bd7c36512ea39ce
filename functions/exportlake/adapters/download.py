"""The download allowlist: which URLs the copier may fetch a result from (checked before anything is sent)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from urllib.parse import urlsplit

from exportlake.domain.errors import DownloadRefused
from exportlake.settings import is_loopback


class DownloadGuard:
    """The allowlist for download URLs: https (http only on loopback) and a host matching a pattern."""

    def __init__(self, host_patterns: Sequence[str]):
        self._patterns = tuple(p.lower() for p in host_patterns)

    def check(self, url: str) -> str:
        """Return ``url`` if allowed, else raise ``DownloadRefused`` (before anything is sent)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not host:
            raise DownloadRefused("download URL has no host")
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(host)):
            raise DownloadRefused(f"download URL scheme {parts.scheme!r} refused for host {host!r}")
        if parts.username or parts.password:
            raise DownloadRefused("download URL carries credentials")
        if not any(self._match(host, p) for p in self._patterns):
            raise DownloadRefused(f"download host {host!r} is not in EXPORTLAKE_DOWNLOAD_HOSTS")
        return url

    @staticmethod
    def _match(host: str, pattern: str) -> bool:
        if pattern.startswith("*."):
            # "*.example.com" covers any sub-domain; fnmatch's "*" would also match dots, which is what we want
            # for multi-level pre-signed hosts (bucket.region.digitaloceanspaces.com).
            return host.endswith(pattern[1:]) and fnmatch.fnmatchcase(host, pattern)
        return host == pattern
