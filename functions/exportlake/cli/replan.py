"""`exportlake replan`: invoke the deployed planner now."""

from __future__ import annotations

import argparse
import json

from exportlake import bootstrap
from exportlake.cli.exitcodes import ExitCode, checks_exit


def cmd_replan(args: argparse.Namespace) -> ExitCode:
    """Invoke the deployed planner (optionally re-queueing failed results) and print its answer."""
    from exportlake.cli import stackenv

    payload = stackenv.planner_payload(retry_failed=args.retry_failed)
    function = args.function or stackenv.planner_function(bootstrap.client("cloudformation"), args.stack)
    answer = stackenv.invoke(bootstrap.client("lambda"), function, payload)
    print(json.dumps(answer, indent=1))
    return checks_exit(not answer.get("errorMessage"))
