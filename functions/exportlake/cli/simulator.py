"""`exportlake simulator`: run the gateway simulator alone."""

from __future__ import annotations

import argparse

from exportlake.cli.exitcodes import ExitCode


def cmd_simulator(args: argparse.Namespace) -> ExitCode:
    """Run the gateway simulator alone."""
    from exportlake.emulator import server as simulator

    return ExitCode(int(simulator.main(args.rest) or 0))
