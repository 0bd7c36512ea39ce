"""`exportlake put-secret`: store the gateway credentials in the configured secret."""

from __future__ import annotations

import argparse
import json
import os
import sys

from exportlake import bootstrap
from exportlake.cli.exitcodes import ExitCode
from exportlake.domain.errors import ConfigError


def cmd_put_secret(args: argparse.Namespace) -> ExitCode:
    """Store the gateway credentials in the configured secret (the client secret from stdin, never an argument)."""
    import getpass

    secret_id = os.environ.get("EXPORTLAKE_SECRET_ID", "").strip()
    if not secret_id:
        raise ConfigError("EXPORTLAKE_SECRET_ID is not set: name the secret to write")
    client_secret = getpass.getpass("client secret: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    if not args.client_id.strip() or not client_secret:
        raise ConfigError("put-secret needs --client-id and the client secret on stdin")
    value = json.dumps({"client_id": args.client_id.strip(), "client_secret": client_secret})
    sm = bootstrap.client("secretsmanager")
    try:
        sm.put_secret_value(SecretId=secret_id, SecretString=value)
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=secret_id, SecretString=value)
    print(f"stored client_id {args.client_id.strip()} and its secret in {secret_id}")
    return ExitCode.OK
