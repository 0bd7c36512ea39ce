"""The CDK app entry (``cdk.json``: ``.venv/bin/python -m infra.app``)."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

# The runtime package lives in functions/ (also installed editable in the venv); the schema registry comes from it.
_FUNCTIONS = str(Path(__file__).resolve().parent.parent / "functions")
if _FUNCTIONS not in sys.path:
    sys.path.insert(0, _FUNCTIONS)

from infra.config import Config, ConfigError, example_gateway_refusal, stack_name, unknown_keys  # noqa: E402
from infra.nag import add_nag  # noqa: E402
from infra.stack import ExportLakeStack  # noqa: E402

#: The default stack name; ``-c stackName=ExportLake-staging`` deploys another one beside it.
STACK_NAME = "ExportLake"


def build(app: cdk.App, *, nag: bool = True) -> ExportLakeStack:
    """Read the config from the app's context, add the stack and (by default) the cdk-nag checks; an unknown
    context key (a mistyped setting) is refused before anything is built."""
    unknown = unknown_keys(app.node.get_all_context())
    if unknown:
        raise ConfigError("\n".join(unknown))
    config = Config.from_context(app.node.try_get_context)
    stack = ExportLakeStack(
        app,
        stack_name(app.node.try_get_context, STACK_NAME),
        config=config,
        description="exportlake: NeoDay Automated Exports landed in an S3/Glue/Athena data lake",
    )
    cdk.Tags.of(stack).add("project", "exportlake")
    if nag:
        add_nag(app, stack)
    return stack


def main() -> None:
    app = cdk.App()
    try:
        unknown = unknown_keys(app.node.get_all_context())  # first: a mistyped key explains what follows
        if unknown:
            raise ConfigError("\n".join(unknown))
        refusal = example_gateway_refusal(Config.from_context(app.node.try_get_context), app.node.try_get_context)
        if refusal:
            raise ConfigError(refusal)
        build(app)
    except ConfigError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
    app.synth()


if __name__ == "__main__":
    main()
