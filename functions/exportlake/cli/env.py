"""`exportlake env`: a deployed stack's settings as shell exports or an exportlake.toml."""

from __future__ import annotations

import argparse

from exportlake import bootstrap
from exportlake.cli.exitcodes import ExitCode


def cmd_env(args: argparse.Namespace) -> ExitCode:
    """Print the settings of a deployed stack as shell exports (or TOML for exportlake.toml)."""
    from exportlake.cli import stackenv

    env = stackenv.from_stack(bootstrap.client("cloudformation"), args.stack)
    print(stackenv.as_toml(env, args.stack) if args.format == "toml" else stackenv.as_shell(env))
    return ExitCode.OK
