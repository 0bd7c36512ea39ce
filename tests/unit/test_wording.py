"""Failures in words (exportlake.domain.wording, exportlake.cli.errors): no class names, no internals, the fix."""

from __future__ import annotations

import re

import pytest
import requests

from exportlake.cli.errors import explain
from exportlake.domain import wording
from exportlake.domain.errors import AuthError, DocumentError, DownloadExpired, DownloadRefused, TransientError
from exportlake.domain.planning import run_failure_cause

CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(Error|Exception)\b")
GATEWAY = "https://gw.example.com"


def utf8_failure() -> UnicodeDecodeError:
    try:
        b'{"win_info": [{"userid": "\xff"}]}'.decode()
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead(3 bytes read)"), "broke before"),
        (requests.exceptions.ConnectionError("HTTPConnectionPool(host=...): Max retries"), "connection failed"),
        (requests.exceptions.ReadTimeout("read timed out"), "no answer within"),
        (utf8_failure(), "byte 0xff that is not UTF-8 text (at offset 26)"),
        (TransientError("download interrupted: ChunkedEncodingError"), "download interrupted: the connection broke"),
        (RuntimeError("boom"), "boom"),
    ],
)
def test_describe_says_what_happened_in_words(exc: BaseException, expected: str) -> None:
    text = wording.describe(exc)
    assert expected in text
    assert not CLASS_NAME.search(text) and "codec" not in text


def test_recorded_reasons_of_earlier_versions_read_as_words() -> None:
    old = (
        "DocumentError: invalid record in the 'win_info' array after record 3: 'utf-8' codec can't decode byte "
        "0xff in position 12: invalid start byte"
    )
    assert wording.words(old) == (
        "invalid record in the 'win_info' array after record 3: byte 0xff that is not UTF-8 text "
        "(at position 12 of a record)"
    )
    assert wording.words("TransientError: download interrupted: ChunkedEncodingError (after 5 attempts)") == (
        "download interrupted: the connection broke before the whole body arrived (after 5 attempts)"
    )


def test_each_copy_failure_carries_the_fix_that_fits() -> None:
    malformed = wording.copy_failure(DocumentError("expected '[' at byte 12, found 'x'"), "win-info", "abc")
    assert malformed == (
        "the document is malformed: expected '[' at byte 12, found 'x'; no retry can fix it: report export win-info "
        "result abc to the NeoDay gateway's administrators"
    )
    refused = wording.copy_failure(DownloadRefused("download host evil.example is not allowed"), "win-info", "abc")
    assert "EXPORTLAKE_DOWNLOAD_HOSTS" in refused and refused.endswith("exportlake sync --retry-failed")
    expired = wording.copy_failure(DownloadExpired("the object store refused the URL"), "win-info", "abc", 5)
    assert "(after 5 attempts)" in expired and "fresh download URL" in expired
    cut = wording.copy_failure(TransientError("download interrupted: ChunkedEncodingError"), "w", "a", attempts=5)
    assert cut.endswith("when the cause is fixed (exportlake doctor), exportlake sync --retry-failed")
    for text in (malformed, refused, expired, cut):
        assert not CLASS_NAME.search(text)


def test_a_refused_login_carries_the_same_fix_as_its_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTLAKE_GATEWAY_URL", GATEWAY)
    exc = AuthError("GET /api/1/data-exporter/automated: HTTP 401")
    _, notice_fix = run_failure_cause(exc)
    line = explain(exc).message
    assert notice_fix in line and GATEWAY in line
    assert wording.run_failure(exc, GATEWAY).endswith(notice_fix)


def test_a_gateway_that_does_not_answer_is_named_with_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTLAKE_GATEWAY_URL", GATEWAY)
    for exc in (TransientError("token request failed: ConnectionError"), requests.exceptions.ConnectTimeout("x")):
        line = explain(exc).message
        assert line.startswith(f"the gateway {GATEWAY} does not answer (")
        assert "check EXPORTLAKE_GATEWAY_URL" in line and not CLASS_NAME.search(line)
    failing = explain(TransientError("token: HTTP 503 after retries")).message
    assert failing.startswith(f"the gateway {GATEWAY} is failing (token: HTTP 503 after retries)")
    assert wording.REPORT_TO in failing


def test_a_malformed_document_says_no_retry_fixes_it() -> None:
    line = explain(DocumentError("trailing data after the document at byte 99")).message
    assert wording.NO_RETRY in line and wording.REPORT_TO in line


def test_an_unexpected_failure_names_no_class() -> None:
    line = explain(KeyError("win_info")).message
    assert line == "unexpected failure: 'win_info' (run with -v for the details)"


def test_a_secret_its_reader_may_not_decrypt_names_the_key_setting() -> None:
    from botocore.exceptions import ClientError

    from exportlake.adapters.secrets import unreadable

    kms = "An error occurred (AccessDeniedException) when calling GetSecretValue: Access to KMS is not allowed"
    assert unreadable(Exception(kms)).startswith("Secrets Manager could not decrypt it with its KMS key; the functions")
    assert "existingSecretKmsKeyArn" in unreadable(Exception(kms))
    assert unreadable(Exception("An error occurred (ResourceNotFoundException) ...")) == (
        "AWS refused it (ResourceNotFoundException)"
    )

    class TransformParameterError(Exception):
        pass

    assert unreadable(TransformParameterError("Expecting value: line 1 column 1")) == "its value is not valid JSON"
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "Access to KMS is not allowed"}}, "GetSecretValue"
    )
    line = explain(denied).message
    assert "kms:Decrypt on the secret's key" in line and "existingSecretKmsKeyArn" in line
