"""A writable file object that streams into one S3 object by multipart upload, in bounded memory."""

from __future__ import annotations

import contextlib
import io
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["MIN_PART_SIZE", "MultipartSink"]

#: S3's smallest part (every part but the last).
MIN_PART_SIZE = 5 << 20
_MAX_PARTS = 10_000


class MultipartSink(io.BufferedIOBase):
    """Write-only binary file whose bytes become ``s3://bucket/key`` when it is closed, never before.

    Bytes are cut into ``part_size`` parts uploaded by a small thread pool; at most ``max_in_flight`` parts are
    held in memory besides the one being filled: a writer that outruns the uploads waits for one to finish before
    the next part is cut. An object smaller than one part is sent by a single
    ``put_object`` at close. ``close()`` completes the upload and sets ``etag`` and ``size``; ``abort()`` (also
    run when a ``with`` block exits by an exception) discards it. Both are idempotent, and a sink that is
    garbage-collected unclosed is aborted, never completed.
    """

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        key: str,
        *,
        part_size: int = 16 << 20,
        max_in_flight: int = 2,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (the S3 minimum)")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._s3 = s3_client
        self.bucket = bucket
        self.key = key
        self._part_size = part_size
        self._max_in_flight = max_in_flight
        self._extra: dict[str, Any] = {"ContentType": content_type}
        if metadata:
            self._extra["Metadata"] = dict(metadata)
        self._buf = bytearray()
        self._written = 0
        self._upload_id: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: deque[Future[dict[str, Any]]] = deque()
        self._parts: list[dict[str, Any]] = []
        self._aborted = False
        self._completed = False
        self.etag: str | None = None
        self.size: int | None = None

    # -- file protocol ---------------------------------------------------------------------------------------------

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def tell(self) -> int:
        """Bytes written so far (also after close)."""
        return self._written

    def write(self, data: Any) -> int:  # type: ignore[override]
        """Buffer ``data``; upload full parts as they fill. Returns ``len(data)`` (always everything)."""
        if self.closed:
            raise ValueError("write to a closed MultipartSink")
        with memoryview(data) as view:
            n = view.nbytes
            self._buf += view
        self._written += n
        while len(self._buf) >= self._part_size:
            self._wait_for_slot()
            with memoryview(self._buf) as whole:  # one copy of the part, not a slice and then a copy of it
                chunk = bytes(whole[: self._part_size])
            del self._buf[: self._part_size]
            self._submit(chunk)
        return n

    def flush(self) -> None:
        """Nothing to flush: bytes reach S3 by parts, and the object only at ``close()``."""

    def close(self) -> None:
        """Upload what is left and make the object visible; on failure abort the upload and raise."""
        if self.closed:
            return
        try:
            if self._upload_id is None:
                resp = self._s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buf), **self._extra)
            else:
                if self._buf:
                    self._wait_for_slot()
                    self._submit(bytes(self._buf))
                while self._inflight:
                    self._parts.append(self._inflight.popleft().result())
                resp = self._s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
            self._buf = bytearray()
            self.etag = resp.get("ETag")
            self.size = self._written
            self._completed = True
        except BaseException:
            self.abort()
            raise
        finally:
            self._shutdown()
            super().close()

    def abort(self) -> None:
        """Discard everything: no object appears and no multipart upload is left pending. Idempotent."""
        if self._aborted or self._completed:
            return
        self._aborted = True
        try:
            for future in self._inflight:
                future.cancel()
            for future in self._inflight:  # a part still uploading would outlive the abort
                with contextlib.suppress(BaseException):
                    future.result()
            self._inflight.clear()
            if self._upload_id is not None:
                self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
        finally:
            self._buf = bytearray()
            self._shutdown()
            super().close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        # io.IOBase.__del__ would call close() and publish a partial object; abort instead.
        if not self.closed:
            with contextlib.suppress(Exception):
                self.abort()

    # -- parts -----------------------------------------------------------------------------------------------------

    def _submit(self, chunk: bytes) -> None:
        if self._upload_id is None:
            resp = self._s3.create_multipart_upload(Bucket=self.bucket, Key=self.key, **self._extra)
            self._upload_id = resp["UploadId"]
            self._pool = ThreadPoolExecutor(max_workers=self._max_in_flight, thread_name_prefix="s3part")
        # The caller has waited for a slot (``_wait_for_slot``) before cutting ``chunk``.
        number = len(self._parts) + len(self._inflight) + 1
        if number > _MAX_PARTS:
            raise ValueError(f"{self.key}: more than {_MAX_PARTS} parts; use a larger part_size")
        pool = self._pool
        if pool is None:  # aborted meanwhile
            raise ValueError("write to an aborted MultipartSink")
        self._inflight.append(pool.submit(self._upload, number, chunk))

    def _wait_for_slot(self) -> None:
        # Bounded memory: wait for the oldest part to be sent (this also surfaces its error) before copying the next
        # one out of the fill buffer, so at most ``max_in_flight`` parts plus the one being filled are held at once.
        while len(self._inflight) >= self._max_in_flight:
            self._parts.append(self._inflight.popleft().result())

    def _upload(self, number: int, chunk: bytes) -> dict[str, Any]:
        resp = self._s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=chunk
        )
        part = {"PartNumber": number, "ETag": resp["ETag"]}
        for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1", "ChecksumSHA256"):
            if resp.get(name):
                part[name] = resp[name]  # needed by complete when the SDK sent a checksum with the part
        return part

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
