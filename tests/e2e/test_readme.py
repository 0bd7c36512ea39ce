"""The README's commands, as written: the local walk-through runs in bash; the AWS-side ones are checked for shape.

Fenced ``bash`` blocks run here (on free ports instead of 5000/8080/8081, which other processes may hold);
fenced ``sh`` blocks need a real AWS account or are the Make front doors: each ``exportlake`` line must parse, each
``make`` target exist, each JSON argument parse, each filtered event type be one the code publishes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

from exportlake.cli import build_parser
from exportlake.local.aws import free_port

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README) if lang == language]


def commands(block: str) -> list[str]:
    """The block's commands: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        text = line.split("  #", 1)[0].strip()
        if text and not text.startswith("#"):
            out.append(text)
    return out


def test_the_local_walk_through_runs_as_written() -> None:
    (script,) = blocks("bash")
    ports = {"5000": str(free_port()), "8080": str(free_port()), "8081": str(free_port())}
    for old, new in ports.items():
        script = script.replace(old, new)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "TERM")}
    env["EXPORTLAKE_CACHE_DIR"] = str(ROOT / ".pytest_cache" / "readme-lake")
    done = subprocess.run(  # noqa: S603 - bash running the README's own block
        ["bash", "-c", "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script],  # noqa: S607
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "stored client_id exportlake-local" in out
    assert "ok   expiry" in out and "FAIL" not in out  # doctor: every link
    assert "dry run: 3 results would be copied" in out
    assert "planned 11 exports: 30 new results" in out
    assert out.count("rows agree") == 30  # verify: one line per landed result
    assert "win-info" in out.rsplit("export_name", 1)[-1]  # the query's answer


def test_the_aws_side_commands_are_well_formed() -> None:
    published = set(re.findall(r'"((?:result|schema)\.[a-z]+)"', _source()))
    make_targets = set(
        re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text() + (ROOT / "infra.mk").read_text(), re.M)
    )
    parser = build_parser()
    checked = 0
    for block in blocks("sh"):
        for command in commands(block):
            for part in (p.strip() for p in re.split(r"&&|\|", command)):
                words = shlex.split(part.replace("$(", "").replace(')"', '"'))
                if words[:1] == ["eval"]:
                    words = shlex.split(words[1])
                if words[:1] == ["exportlake"]:
                    parser.parse_args(words[1:])  # a usage error would exit 2 here
                elif words[:1] == ["make"]:
                    assert words[1] in make_targets, part
                elif words[:1] == ["aws"]:
                    _check_aws(words, published)
                checked += 1
    assert checked >= 10


def _check_aws(words: list[str], published: set[str]) -> None:
    options = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("--")}
    if words[1:3] == ["lambda", "invoke"]:
        assert options.get("--cli-binary-format") == "raw-in-base64-out"  # AWS CLI v2 takes the payload as is
        assert isinstance(json.loads(options["--payload"]), dict)
    if "--attributes" in options:
        policy = json.loads(json.loads(options["--attributes"])["FilterPolicy"])
        assert set(policy["event_type"]) <= published, policy
    if "--secret-string" in options:
        assert set(json.loads(options["--secret-string"])) == {"client_id", "client_secret"}


def _source() -> str:
    package = ROOT / "functions" / "exportlake"
    return "\n".join(p.read_text() for p in package.rglob("*.py") if "local" not in p.parts)
