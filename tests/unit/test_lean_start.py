"""The cheap levers of a sync's start and exit: one boto3 session, no X-Ray SDK unless tracing, fast exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exportlake import bootstrap, fastexit
from exportlake.handlers import common

REPO = Path(__file__).resolve().parents[2]


def test_tracing_only_inside_lambda_and_unless_disabled() -> None:
    assert not common.tracing_enabled({})
    assert common.tracing_enabled({"AWS_LAMBDA_FUNCTION_NAME": "copier"})
    assert not common.tracing_enabled({"AWS_LAMBDA_FUNCTION_NAME": "copier", "POWERTOOLS_TRACE_DISABLED": "true"})
    assert common.tracing_enabled({"AWS_LAMBDA_FUNCTION_NAME": "copier", "POWERTOOLS_TRACE_DISABLED": "false"})
    assert type(common.make_tracer({})).__name__ == "NoTracer"
    assert type(common.make_tracer({"AWS_LAMBDA_FUNCTION_NAME": "copier"})).__name__ == "Tracer"


def test_no_tracer_decorators_return_the_function_itself() -> None:
    tracer = common.NoTracer()

    def f(x: int) -> int:
        return x + 1

    assert tracer.capture_method(f) is f
    assert tracer.capture_lambda_handler(f) is f
    assert tracer.capture_method(capture_response=False)(f) is f


@pytest.mark.slow  # a subprocess
def test_handlers_do_not_import_the_xray_sdk_when_tracing_is_off() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    code = "import sys, exportlake.handlers.copier, exportlake.handlers.planner; print('aws_xray_sdk' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)  # noqa: S603
    assert out.stdout.strip() == "False"


def test_every_client_comes_from_one_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    bootstrap.reset()
    try:
        s3, sqs = bootstrap.client("s3"), bootstrap.client("sqs")
        assert bootstrap.session() is bootstrap.session()
        assert s3.meta.config.request_checksum_calculation == "when_required"
        assert s3.meta.config.s3["payload_signing_enabled"] is False  # https by default
        assert sqs.meta.config.request_checksum_calculation == "when_required"
    finally:
        bootstrap.reset()


@pytest.mark.parametrize(
    ("endpoint", "trusted"),
    [
        (None, True),
        ("https://s3.example.com", True),
        ("http://127.0.0.1:5000", True),
        ("http://localhost:5000", True),
        ("http://s3.example.com", False),
    ],
)
def test_payload_signing_is_skipped_only_on_a_trusted_channel(endpoint: str | None, trusted: bool) -> None:
    assert bootstrap.trusted_channel(endpoint) is trusted


def test_in_process_main_returns_instead_of_exiting() -> None:
    assert not fastexit.is_console_script([])
    assert fastexit.exit_now(3, ["sync"]) == 3  # argv given: a test calling main(argv), never os._exit


@pytest.mark.slow  # a subprocess
def test_console_script_exits_fast_with_its_code_and_flushed_output(tmp_path: Path) -> None:
    script = tmp_path / "exportlake"  # named like the console script
    script.write_text(
        "import atexit, sys\n"
        "from exportlake.fastexit import exit_now\n"
        "atexit.register(lambda: print('atexit ran', flush=False))\n"
        "sys.stdout.write('unflushed output')\n"
        "exit_now(7)\n"
        "print('not reached')\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, check=False)  # noqa: S603
    assert out.returncode == 7
    assert out.stdout == "unflushed outputatexit ran\n"


@pytest.mark.slow  # a subprocess
def test_slow_exit_opt_out(tmp_path: Path) -> None:
    script = tmp_path / "exportlake"
    script.write_text("from exportlake.fastexit import exit_now\nprint(exit_now(5))\n")
    env = {**os.environ, fastexit.OPT_OUT: "1"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)  # noqa: S603
    assert out.stdout.strip() == "5"


def test_main_as_the_console_script_asks_for_the_fast_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    from exportlake.cli import main as cli

    seen: list[object] = []
    monkeypatch.setattr(cli, "exit_now", lambda code, argv=None: seen.append(argv) or code)
    monkeypatch.setattr(sys, "argv", ["exportlake", "env", "--help-nothing"])
    monkeypatch.setattr(cli, "build_parser", _Parser)
    for name in ("POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_TRACE_DISABLED"):
        monkeypatch.setenv(name, "recorded")  # main sets them: monkeypatch restores the original state
        monkeypatch.delenv(name)
    assert cli.main() == 0
    assert cli.main(["env"]) == 0
    assert seen == [None, ["env"]]  # None: the console script; a list: called in-process, never os._exit


class _Parser:
    def parse_args(self, argv: list[str]) -> object:
        class Args:
            command = "env"

            @staticmethod
            def func(args: object) -> int:
                return 0

        return Args()


@pytest.mark.slow  # a subprocess
def test_the_console_script_imports_without_the_cyclic_collector_and_main_turns_it_back_on(tmp_path: Path) -> None:
    script = tmp_path / "exportlake"  # named like the console script
    script.write_text(
        "import gc\n"
        "import exportlake.cli.main\n"
        "print(gc.isenabled())\n"
        "exportlake.cli.main.resume_gc()\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 1000)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, check=True)  # noqa: S603
    assert out.stdout.split() == ["False", "True", "True"]
    code = "import gc, exportlake.cli.main; print(gc.isenabled())"  # any other program: untouched
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)  # noqa: S603
    assert out.stdout.strip() == "True"
