"""`exportlake demo`: moto and the simulator on free ports, provision, sync, and show the data."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from exportlake import bootstrap
from exportlake.cli.exitcodes import ExitCode
from exportlake.cli.output import console, table
from exportlake.cli.query import lake_query
from exportlake.cli.status import STATUS_COLUMNS, status_rows
from exportlake.cli.sync import cmd_sync

# The demo's answers: saved queries as deployed (on the typed views), run locally. The first is the win rate.
DEMO_QUERIES = ("WinRatePerGameType", "PrizeDistribution", "ChallengeCompletionPerGameType", "CouponsPerDay")


def row_counts(lake: Any) -> list[tuple[str, int]]:
    """Rows per table and view of the lake (the raw tables and their typed/latest views)."""
    _, tables = lake.query(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'VIEW' AND table_schema <> '_exportlake' ORDER BY table_name"
    )
    return [(t, int(lake.query(f'SELECT count(*) FROM "{schema}"."{t}"')[1][0][0])) for schema, t in tables]


def cmd_demo(args: argparse.Namespace) -> ExitCode:
    """Start moto and the simulator, provision, sync, and show the data."""
    from exportlake.emulator.provision import LOCAL_ACCOUNT, LOCAL_REGION, MotoServer, demo_env, provision
    from exportlake.emulator.server import GatewaySimulator

    out = console()
    with MotoServer() as moto, GatewaySimulator(seed=args.seed) as sim:
        env = demo_env(moto.endpoint, sim.url, LOCAL_REGION, LOCAL_ACCOUNT)
        os.environ.update(env)
        bootstrap.reset()
        out.print(f"moto server on {moto.endpoint}, gateway simulator on {sim.url}")
        bootstrap.client("secretsmanager").create_secret(
            Name=env["EXPORTLAKE_SECRET_ID"],
            SecretString=json.dumps({"client_id": sim.client_id, "client_secret": sim.client_secret}),
        )
        provision(bootstrap.settings(), bootstrap.client)
        code = cmd_sync(args)
        lake = lake_query()
        out.print(table("rows per table", ("table", "rows"), row_counts(lake)))
        from exportlake.domain.views import saved_queries

        database = bootstrap.settings().glue_database
        for query in (q for q in saved_queries(database) if q.name in DEMO_QUERIES):
            columns, rows, more = lake.query_capped(query.sql, 12)
            title = f"{query.name} — {query.description}" + (" (first 12 rows)" if more else "")
            out.print(table(title, columns, rows))
        out.print(table("exportlake status", STATUS_COLUMNS, status_rows()))
        out.print("[dim]a second sync copies nothing new:[/dim]")
        code = code or cmd_sync(args)  # a second sync copies nothing new
    return code
