"""The commands of the README, CONTRIBUTING.md and docs/, as written: the README's walk-through runs in bash; the rest
are checked for shape.

The README's one fenced ``bash`` block runs here (on free ports instead of 5000/8080/8081, which other processes may
hold); fenced ``sh`` blocks and the commands quoted in the prose of every document need a real AWS account or are the
Make front doors; each is checked against its own tool's grammar: ``exportlake`` lines parse with the CLI's parser
(a synopsis: each option exists), ``make`` targets and variables exist, ``aws`` commands map to an operation and
parameters of botocore's service model and pass botocore's parameter validation, ``cdk`` commands use options (and
choices) of the pinned CDK CLI's own option registry, ``-c`` keys are documented and read by the app, filtered event
types are published. The README stays under 12 KB, and links between the documents lead to files.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from exportlake.cli.main import build_parser
from exportlake.emulator.provision import free_port
from infra.config import ALLOW_EXAMPLE_KEY

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: Every document whose commands are checked (CHANGELOG.md is history: its commands are those of their time).
DOCS = {
    p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
    for p in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: The README's size bound: it says what the project is, how to try and deploy it, and where to read more.
README_MAX_BYTES = 12 * 1024


def blocks(language: str, text: str = README) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == language]


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
    # PYTHONPATH passes through so a worktree sharing another checkout's venv runs its own code.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "TERM", "PYTHONPATH")}
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


#: The AWS CLI v2's global options (``aws help``), valid on every operation.
AWS_GLOBAL_OPTIONS = {
    "--debug", "--endpoint-url", "--no-verify-ssl", "--no-paginate", "--output", "--query", "--profile", "--region",
    "--color", "--no-sign-request", "--ca-bundle", "--cli-read-timeout", "--cli-connect-timeout",
    "--cli-binary-format", "--no-cli-pager", "--cli-auto-prompt", "--no-cli-auto-prompt",
}  # fmt: skip
#: Parameters the AWS CLI renames from the API's (awscli/customizations/argrename.py), and its positional ones.
AWS_RENAMES = {("sns", "subscribe", "--notification-endpoint"): "Endpoint"}
AWS_POSITIONAL = {("lambda", "invoke"): 1}  # the output file
#: CDK commands left unchecked because the pinned CLI is not installed (the test then says so: skipped).
UNCHECKED: list[str] = []
#: Where a command may stand in the prose: inline code spans that start with a command word.
COMMAND_WORDS = ("exportlake ", "make ", "aws ", "npx cdk ", "cdk ", "eval ", "python -m bench.run ", "bash ", "-c ")


def inline_commands(text: str = README) -> list[str]:
    """Commands quoted in the prose (outside fenced blocks), e.g. `npx cdk bootstrap aws://<ACCOUNT-ID>/<REGION>`."""
    prose = FENCE.sub("", text)
    return sorted({span for span in re.findall(r"`([^`\n]+)`", prose) if span.startswith(COMMAND_WORDS)})


def test_the_readme_stays_short_and_runs_the_only_bash_block() -> None:
    """The README stays a front page; a ``bash`` block anywhere else would look run but is not."""
    assert len(README.encode("utf-8")) <= README_MAX_BYTES, "README.md grew past 12 KB: move detail to docs/"
    assert len(blocks("bash")) == 1
    others = [name for name, text in DOCS.items() if name != "README.md" and blocks("bash", text)]
    assert not others, f"{others}: fence AWS-side or example commands as ```sh (checked, not run)"


def test_every_relative_link_leads_to_a_file() -> None:
    """Links between the documents (``[design.md](design.md#architecture)``) survive moves and renames."""
    for name, text in DOCS.items():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", FENCE.sub("", text)):
            if "://" not in target:
                assert (ROOT / name).parent.joinpath(target).exists(), f"{name}: no {target}"


def test_every_source_path_the_documents_name_exists() -> None:
    """``functions/exportlake/cli/exitcodes.py`` in CONTRIBUTING's table (and every such path) is where it says."""
    for name, text in DOCS.items():
        for path in re.findall(r"(?<![\w./-])((?:functions|infra|tests|bench)/[\w./-]*\w)", text):
            assert (ROOT / path).exists(), f"{name} names {path}, which does not exist"


def test_the_aws_side_commands_are_well_formed() -> None:
    """Every fenced ``sh`` command and every command quoted in the prose of every document, checked against its
    tool's own grammar."""
    checked: Counter[str] = Counter()
    documents_checked: set[str] = set()
    for name, text in DOCS.items():
        for block in blocks("sh", text):
            for command in commands(block):
                for part in (p.strip() for p in re.split(r"&&|\|(?!toml)", command)):
                    checked[check_command(part)] += 1
                    documents_checked.add(name)
        for span in inline_commands(text):
            checked[check_command(span.replace("\\|", "|"))] += 1
            documents_checked.add(name)
    # What the documents hold today; a new kind of command needs a check here first.
    assert set(checked) == {"exportlake", "make", "aws", "cdk", "bench", "bash", "context"}, checked
    assert checked["aws"] >= 4 and checked["cdk"] >= 4 and checked["exportlake"] >= 15, checked
    assert {"README.md", "CONTRIBUTING.md", "docs/deploy.md", "docs/operate.md"} <= documents_checked, documents_checked
    if UNCHECKED:
        pytest.skip(f"the pinned CDK CLI is not installed (npm ci; `make test` does it first): {UNCHECKED} unchecked")


def check_command(text: str) -> str:
    """Check one command as written; return which grammar checked it."""
    # A placeholder (`<SecretId output>`) is one word the reader replaces, not a shell redirection.
    text = re.sub(r"<[^<>]+>", lambda m: m.group(0).replace(" ", "_"), text)
    words = shlex.split(text.replace("$(", "").replace(')"', '"'))
    if words[0] == ".venv/bin/python":  # the venv's interpreter, as `python` once the venv is active
        words[0] = "python"
    if words[0] == "eval":
        return check_command(words[1])
    if words[0] == "exportlake":
        _check_exportlake(text, words)
        return "exportlake"
    if words[0] == "make":
        targets = set(re.findall(r"^([a-z-]+):", MAKEFILES, re.M))
        assert words[1] in targets, text
        for assignment in words[2:]:  # make soak ROUNDS=15: a variable the recipe reads
            variable = assignment.split("=", 1)[0]
            # Read by the recipe as make's $(VAR) or the shell's ${VAR} / ${VAR:-default}.
            read = rf"\$\({variable}\)|\$\{{{variable}[:}}]"
            assert re.fullmatch(r"[A-Z_]+=\S+", assignment) and re.search(read, MAKEFILES), text
        if words[1] == "bench" and any(w.startswith("ARGS=") for w in words[2:]):
            from bench.run import parse_args  # `make bench ARGS=…` hands them to bench.run as they are

            value = next(w for w in words[2:] if w.startswith("ARGS=")).split("=", 1)[1]
            parse_args(shlex.split(value))  # exits 2 on a usage error
            return "bench"
        return "make"
    if words[0] == "aws":
        _check_aws(words)
        return "aws"
    if words[0] == "cdk" or words[:2] == ["npx", "cdk"]:
        _check_cdk(words[1:] if words[0] == "cdk" else words[2:], text)
        return "cdk"
    if words[:3] == ["python", "-m", "bench.run"]:
        from bench.run import parse_args

        parse_args(words[3:])  # exits 2 on a usage error
        return "bench"
    if words[0] == "bash":
        assert (ROOT / words[1]).is_file(), text
        return "bash"
    if words[0] == "-c":  # a CDK context value: a documented key that the app reads
        key = words[1].split("=", 1)[0]
        assert key == "key" or key in context_keys(), text
        return "context"
    raise AssertionError(f"no check for {text!r}")


MAKEFILES = (ROOT / "Makefile").read_text() + (ROOT / "infra.mk").read_text()


def _check_exportlake(text: str, words: list[str]) -> None:
    parser = build_parser()
    if not re.search(r"[\[…|]", text):
        try:
            args = parser.parse_args(words[1:])  # a usage error would exit 2 here
        except SystemExit as done:
            assert done.code == 0 and "--help" in words, text  # --help prints and exits 0
            return
        if words[1] == "simulator":  # its own options go through to its own parser
            from exportlake.emulator.server import build_parser as simulator_parser

            simulator_parser().parse_args(args.rest)
        return
    # A synopsis (`exportlake sync [--retry-failed] [--export NAME …]`): the command and each option exist.
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices[words[1]]
    if words[1] == "simulator":
        from exportlake.emulator.server import build_parser as simulator_parser

        command = simulator_parser()
    known = {o for action in command._actions for o in action.option_strings}
    for option in re.findall(r"--[a-z][a-z-]*", text):
        assert option in known, (text, option)


def _check_aws(words: list[str]) -> None:
    """``aws SERVICE OPERATION --param VALUE …`` against botocore's model of the service, as the CLI maps it."""
    import botocore.session
    from botocore import xform_name
    from botocore.validate import validate_parameters

    service, operation, rest = words[1], words[2], words[3:]
    model = botocore.session.get_session().get_service_model(service)  # UnknownServiceError if not a service
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    assert operation in operations, f"aws {service}: no operation {operation!r}"
    shape = model.operation_model(operations[operation]).input_shape
    names = {f"--{xform_name(m, '-')}": m for m in shape.members}
    for (svc, op, option), member in AWS_RENAMES.items():  # the CLI knows the new name only
        if (svc, op) == (service, operation):
            del names[f"--{xform_name(member, '-')}"]
            names[option] = member
    params: dict[str, Any] = {}
    options: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        if not word.startswith("--"):
            positional.append(word)
            i += 1
            continue
        value = rest[i + 1] if i + 1 < len(rest) and not rest[i + 1].startswith("--") else ""
        options[word] = value
        i += 2 if value else 1
        if word in AWS_GLOBAL_OPTIONS:
            continue
        assert word in names, f"aws {service} {operation}: no parameter {word}"
        member = shape.members[names[word]]
        kind = member.type_name
        params[names[word]] = (
            value.encode() if kind == "blob"
            else json.loads(value) if kind in ("map", "structure", "list")
            else int(value) if kind in ("integer", "long")
            else True if kind == "boolean"
            else value
        )  # fmt: skip
    assert len(positional) == AWS_POSITIONAL.get((service, operation), 0), words
    validate_parameters(params, shape)  # botocore's own check: required members, types, unknown keys
    if "--payload" in options:  # CLI v2 reads a blob as base64 unless told the payload is raw
        assert options.get("--cli-binary-format") == "raw-in-base64-out", words
        assert isinstance(json.loads(options["--payload"]), dict)
    if "FilterPolicy" in params.get("Attributes", {}):
        policy = json.loads(params["Attributes"]["FilterPolicy"])
        assert set(policy["event_type"]) <= published_event_types(), policy
    if "SecretString" in params:
        assert set(json.loads(params["SecretString"])) == {"client_id", "client_secret"}


def _check_cdk(args: list[str], text: str) -> None:
    """A CDK CLI command against the option registry of the CLI pinned in package.json (node_modules)."""
    registry_file = ROOT / "node_modules" / "aws-cdk" / "lib" / "cli" / "cli-type-registry.json"
    if not registry_file.is_file():
        UNCHECKED.append(text)
        return
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert json.loads(registry_file.parent.parent.parent.joinpath("package.json").read_text())["version"] == pinned
    registry = json.loads(registry_file.read_text())
    commands = {name: c for name, c in registry["commands"].items()}
    commands.update({alias: c for c in registry["commands"].values() for alias in c.get("aliases", [])})
    assert args[0] in commands, text
    options = {**registry["globalOptions"], **commands[args[0]].get("options", {})}
    by_flag = {f"--{name}": spec for name, spec in options.items()}
    by_flag.update({f"-{spec['alias']}": spec for spec in options.values() if isinstance(spec.get("alias"), str)})
    i = 1
    while i < len(args):
        word = args[i]
        if word.startswith("-"):
            spec = by_flag.get(word)
            assert spec is not None, f"{text}: the pinned CDK CLI has no option {word}"
            if spec.get("type") != "boolean":
                value = args[i + 1]
                assert value in spec.get("choices", [value]), (text, word, value)
                if word in ("-c", "--context"):
                    assert value.split("=", 1)[0] in context_keys() | {"key"}, text
                i += 1
        elif args[0] == "bootstrap":
            assert re.fullmatch(r"aws://[^/]+/[^/]+", word), text  # ENVIRONMENTS: aws://ACCOUNT/REGION
        i += 1


def context_keys() -> set[str]:
    """The ``cdk.json`` context keys docs/deploy.md documents (its configuration table), each read by the app."""
    deploy = DOCS["docs/deploy.md"]
    table = deploy.split("## Configuration (`cdk.json` context)", 1)[1].split("| key |", 1)[1].split("\n\n", 1)[0]
    keys = set(re.findall(r"^\| `([A-Za-z]+)` \|", table, re.M))
    infra = "\n".join(p.read_text() for p in (ROOT / "infra").rglob("*.py"))
    unread = {k for k in keys if f'"{k}"' not in infra}
    assert len(keys) >= 10 and not unread, unread
    return keys


def test_the_make_targets_the_readme_names_call_the_pinned_cdk_with_flags_it_has() -> None:
    """``make synth``/``deploy``/``diff``/``destroy``/``cdk-check`` run ``npx cdk`` with options the pinned CLI has."""
    recipes = re.findall(r"\$\(CDK\) (.+)$", MAKEFILES, re.M)
    assert len(recipes) >= 5, recipes
    assert "CDK := npx --no-install cdk" in MAKEFILES  # the pinned CLI, never a download
    for recipe in recipes:
        # cdk-check's offline switch is the one context key the README need not document.
        _check_cdk(shlex.split(recipe.replace(f"-c {ALLOW_EXAMPLE_KEY}=true", "")), recipe)
    if UNCHECKED:
        pytest.skip("the pinned CDK CLI is not installed (npm ci; `make test` does it first)")


def published_event_types() -> set[str]:
    """Every event type the code publishes (``domain.notices``), each one used by the code that sends it."""
    from exportlake.domain import notices

    types = {v for k, v in vars(notices).items() if k.isupper() and isinstance(v, str) and "." in v}
    source = "\n".join(
        p.read_text() for p in (ROOT / "functions" / "exportlake").rglob("*.py") if "emulator" not in p.parts
    )
    names = {k for k, v in vars(notices).items() if k.isupper() and isinstance(v, str) and v in types}
    assert all(source.count(name) >= 2 for name in names), names  # defined, and sent somewhere
    return types


def test_the_notification_table_names_every_event_type_published() -> None:
    section = README.split("\n## Notifications\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z]+\.[a-z]+)` \|", section, re.M))
    assert listed == published_event_types()
