"""Working against a deployed stack: its settings from CloudFormation, an ``exportlake.toml``, the planner payload.

The deployed planner's own environment holds the whole settings contract, so ``env --stack NAME`` reads the
``PlannerFunction`` output and that function's environment: nothing to type, and exactly what the pipeline uses.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from exportlake.domain.errors import ConfigError
from exportlake.settings import ENV_VARS

#: The file ``exportlake`` reads defaults from (current directory), unless ``EXPORTLAKE_CONFIG`` names another.
CONFIG_FILE = "exportlake.toml"


def outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """The stack's outputs by key; ``ConfigError`` if there is no such stack."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except Exception as exc:
        if "does not exist" in str(exc):
            raise ConfigError(
                f"stack {stack} does not exist in this account/region (check --stack, AWS_REGION)"
            ) from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def planner_function(cloudformation: Any, stack: str) -> str:
    """The deployed planner's function name (stack output ``PlannerFunction``)."""
    name = outputs(cloudformation, stack).get("PlannerFunction")
    if not name:
        raise ConfigError(f"stack {stack} has no PlannerFunction output (is it an exportlake stack?)")
    return name


def from_stack(cloudformation: Any, stack: str, lambda_client: Any = None) -> dict[str, str]:
    """The settings contract of a deployed stack, read from its planner's environment."""
    import boto3

    function = planner_function(cloudformation, stack)
    client = lambda_client or boto3.client("lambda")
    variables = client.get_function_configuration(FunctionName=function).get("Environment", {}).get("Variables", {})
    env = {k: variables[k] for k in ENV_VARS if k in variables}
    missing = [k for k in ENV_VARS if k not in env and k != "EXPORTLAKE_DOWNLOAD_HOSTS"]
    if missing:
        raise ConfigError(f"the planner {function} lacks {', '.join(missing)}: redeploy the stack")
    return env


def as_shell(env: dict[str, str]) -> str:
    """``export NAME=value`` lines, for ``eval "$(exportlake env --stack NAME)"``."""
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())


def as_toml(env: dict[str, str], stack: str) -> str:
    """An ``exportlake.toml`` holding the settings (no secret: the secret stays in Secrets Manager)."""
    lines = [f"# exportlake settings of stack {stack} (exportlake env --stack {stack} --format toml)", "[env]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in env.items()]
    return "\n".join(lines)


def load_config_file(environ: MutableMapping[str, str], path: str | None = None) -> Path | None:
    """Set the ``[env]`` values of ``exportlake.toml`` that the environment does not set; the file read, if any."""
    name = path or environ.get("EXPORTLAKE_CONFIG") or CONFIG_FILE
    file = Path(name)
    if not file.is_file():
        if path or environ.get("EXPORTLAKE_CONFIG"):
            raise ConfigError(f"config file {name} does not exist (EXPORTLAKE_CONFIG)")
        return None
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {name} is not valid TOML: {exc}") from None
    table = data.get("env", {})
    if not isinstance(table, dict):
        raise ConfigError(f"config file {name}: [env] must be a table of variables")
    allowed = set(ENV_VARS) | {
        "EXPORTLAKE_CACHE_DIR",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
    }
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"config file {name}: unknown keys {', '.join(unknown)}")
    for key, value in table.items():
        environ.setdefault(key, str(value))
    return file


def planner_payload(*, retry_failed: bool = False) -> dict[str, Any]:
    """The planner's event: ``{}`` is a scheduled run; ``{"retry_failed": true}`` re-queues failed results too."""
    return {"retry_failed": True} if retry_failed else {}


def invoke(lambda_client: Any, function: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Invoke ``function`` synchronously with ``payload``; its JSON answer (``errorMessage`` when it failed)."""
    response = lambda_client.invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
    )
    body = response["Payload"].read()
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        answer = {"errorMessage": body.decode("utf-8", "replace")[:500]}
    return answer if isinstance(answer, dict) else {"answer": answer}
