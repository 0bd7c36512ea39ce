"""``exportlake erase --stack``: the request goes to the stack's eraser function as it is (fakes, no network)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from exportlake.cli import erase, stackenv
from exportlake.cli.main import build_parser
from exportlake.domain.errors import ConfigError, ValidationError


class FakeLambda:
    def __init__(self, answer: dict[str, Any], error: str = "") -> None:
        self.answer, self.error = answer, error
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        out: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.error:
            out["FunctionError"] = self.error
        return out


def _run(monkeypatch: pytest.MonkeyPatch, fake: FakeLambda, *argv: str) -> int:
    monkeypatch.setattr(stackenv, "outputs", lambda cf, stack: {"EraserFunction": f"{stack}-Eraser"})
    monkeypatch.setattr(erase.bootstrap, "client", lambda service: fake if service == "lambda" else object())
    args = build_parser().parse_args(["erase", *argv])
    return int(args.func(args))


def test_the_request_is_handed_to_the_deployed_eraser(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeLambda({"request_id": "er1", "run": "er1.1", "exports": 10, "suppressed_added": 2})
    assert _run(monkeypatch, fake, "--user-id", "u1", "--client-id", "crm-1", "--stack", "Lake") == 0
    (call,) = fake.calls
    assert call["FunctionName"] == "Lake-Eraser"
    assert json.loads(call["Payload"]) == {"user_ids": ["u1"], "client_ids": ["crm-1"], "dry_run": False}
    out = capsys.readouterr().out
    assert "request er1 accepted: 10 exports" in out and "u1" not in out


def test_a_refusal_is_one_line_and_bad_ids_never_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLambda({"errorMessage": "an erasure request names 1 to 100 ids"}, error="Unhandled")
    with pytest.raises(ConfigError, match="the eraser refused the request: an erasure request names"):
        _run(monkeypatch, fake, "--user-id", "u1", "--stack", "Lake")
    with pytest.raises(ValidationError):
        _run(monkeypatch, fake, "--user-id", "a\nb", "--stack", "Lake")
    assert len(fake.calls) == 1
    with pytest.raises(ConfigError, match="name the person"):
        _run(monkeypatch, fake, "--stack", "Lake")
