"""`exportlake provision`: create every resource on the configured endpoint (local unless --real-aws)."""

from __future__ import annotations

import argparse
import os

from exportlake import bootstrap
from exportlake.cli.exitcodes import ExitCode
from exportlake.cli.output import console


def cmd_provision(args: argparse.Namespace) -> ExitCode:
    """Create every resource on the configured endpoint (idempotent)."""
    from exportlake.emulator.provision import provision, refuse_real_aws

    refuse_real_aws(os.environ, real_aws=args.real_aws)
    made = provision(bootstrap.settings(), bootstrap.client)
    console().print(f"provisioned: queue {made.queue_url}, topic {made.topic_arn}")
    return ExitCode.OK
