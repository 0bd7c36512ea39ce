"""`exportlake erase`: remove a person from every result, every copy, every version; keep them out of later ones."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from exportlake import bootstrap
from exportlake.cli.doctor import preflight
from exportlake.cli.exitcodes import ExitCode
from exportlake.domain.erasure import MAX_IDS, EraseReport, validate_person_id
from exportlake.domain.errors import ConfigError
from exportlake.domain.models import ResultState

#: Rounds a result still being copied is waited for (each after a pause) before the erase reports it pending.
PENDING_ROUNDS = 6
PENDING_PAUSE_SECONDS = 5.0


def add_parser(add: Any) -> None:
    """Register ``erase`` on the command line (``add`` is ``cli.main``'s sub-command factory)."""
    erase = add("erase", "erase a person from the lake (every copy and version) and keep them out of later results")
    erase.add_argument("--user-id", action="append", default=[], metavar="ID", help="a userid (repeatable)")
    erase.add_argument("--client-id", action="append", default=[], metavar="EXT", help="a client_id (repeatable)")
    erase.add_argument("--dry-run", action="store_true", help="list the results and rows it would change only")
    erase.add_argument("--list", action="store_true", help="show the suppression list and the erasure requests")
    erase.add_argument(
        "--lift",
        action="store_true",
        help="lift the suppression of the persons named (--user-id/--client-id, or --key from --list)",
    )
    erase.add_argument("--key", action="append", default=[], metavar="KEY", help="a suppression entry (--list)")
    erase.add_argument(
        "--retire",
        action="store_true",
        help="remove every result older than lakeRetentionDays (EXPORTLAKE_LAKE_RETENTION_DAYS, or --days)",
    )
    erase.add_argument("--days", type=int, metavar="N", help="with --retire: the retention period in days")
    erase.add_argument(
        "--stack", metavar="NAME", help="send the request to this deployed stack's eraser (parallel, on AWS)"
    )
    erase.set_defaults(func=cmd_erase)


def _ids(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    users = [validate_person_id(v, "--user-id") for v in args.user_id]
    clients = [validate_person_id(v, "--client-id") for v in args.client_id]
    if len(users) + len(clients) > MAX_IDS:
        raise ConfigError(f"erase: at most {MAX_IDS} ids per request (split the request)")
    return users, clients


def cmd_erase(args: argparse.Namespace) -> ExitCode:
    """Erase, list or lift; 0 when done, 3 when a result was still being copied (run it again)."""
    as_json = bool(getattr(args, "json", False))
    if args.list:
        preflight(("settings", "aws", "resources"))
        return _list(as_json)
    if args.retire:
        preflight(("settings", "aws", "resources"))
        return _retire(args.days, as_json)
    if args.lift:
        preflight(("settings", "aws", "resources"))
        return _lift(args.key, *_ids(args), as_json=as_json)
    users, clients = _ids(args)
    if not users and not clients:
        raise ConfigError("erase: name the person with --user-id ID or --client-id EXT (or use --list)")
    if args.stack:
        return _deployed(args.stack, users, clients, dry_run=args.dry_run, as_json=as_json)
    preflight(("settings", "aws", "resources"))
    service = bootstrap.erase_service()
    candidates = [
        (e.export_name, e.result_id) for e in bootstrap.ledger().all_entries() if e.state != ResultState.FAILED
    ]
    keys = service.keys_of(users, clients)
    report = service.erase(keys, candidates, dry_run=args.dry_run)
    for _ in range(PENDING_ROUNDS):  # results still being copied: their copier filters them, or we do after it
        if not report.pending:
            break
        time.sleep(PENDING_PAUSE_SECONDS)
        report = service.erase(keys, candidates, dry_run=args.dry_run)
    _show(report, as_json)
    return ExitCode.HELD if report.pending else ExitCode.OK


def _show(report: EraseReport, as_json: bool) -> None:
    record = report.as_dict()
    if as_json:
        print(json.dumps(record, indent=1))
        return
    verb = "would remove" if report.dry_run else "removed"
    rows = record["rows_removed"]
    total = sum(rows.values()) if isinstance(rows, dict) else 0
    print(f"request {report.request_id}: {verb} {total} rows from {len(report.touched)} results")
    for r in report.touched:
        print(f"  {r.export_name} {r.result_id} ({r.table}): {r.rows_removed} rows")
    if not report.dry_run:
        print(
            f"deleted {record['objects_deleted']} objects, {record['versions_deleted']} object versions; "
            f"{report.suppressed_added} new suppression entries"
        )
    if report.pending:
        names = ", ".join(f"{e}/{r}" for e, r in report.pending)
        print(f"still being copied: {names}; run the same erase again when the sync has finished")


def _list(as_json: bool) -> ExitCode:
    privacy = bootstrap.privacy_store()
    entries = sorted(privacy.suppressed().values(), key=lambda s: (s.at, s.key))
    requests = privacy.requests()
    if as_json:
        print(
            json.dumps(
                {
                    "suppressed": [
                        {"key": s.key[:16], "column": s.column, "request_id": s.request_id, "at": s.at} for s in entries
                    ],
                    "rows_suppressed": privacy.suppressed_rows(),
                    "requests": requests,
                },
                indent=1,
            )
        )
        return ExitCode.OK
    print(f"{len(entries)} suppressed ids (salted hashes), {privacy.suppressed_rows()} records kept out since:")
    for s in entries:
        print(f"  {s.key[:16]}  {s.column:<9}  {s.request_id}  {s.at}")
    for r in requests:
        rows = r.get("rows_removed") or {}
        print(
            f"request {r['request_id']} at {r['first_at']}: {sum(rows.values()) if isinstance(rows, dict) else 0} rows"
        )
    return ExitCode.OK


def _lift(prefixes: list[str], users: list[str], clients: list[str], *, as_json: bool) -> ExitCode:
    privacy = bootstrap.privacy_store()
    listed = privacy.suppressed()
    keys: set[str] = set()
    for p in prefixes:
        found = [k for k in listed if k.startswith(p.lower())]
        if len(found) != 1:
            raise ConfigError(f"erase --lift --key {p}: matches {len(found)} entries (copy a key from erase --list)")
        keys.add(found[0])
    named = bootstrap.erase_service().keys_of(users, clients)
    keys |= {k for ks in named.values() for k in ks if k in listed}
    if not keys:
        raise ConfigError("erase --lift: no suppression entry matches (see exportlake erase --list)")
    lifted = [k for k in sorted(keys) if privacy.lift(k)]
    if as_json:
        print(json.dumps({"lifted": [k[:16] for k in lifted]}))
    else:
        print(f"lifted {len(lifted)} suppression entries; later results keep those records (erased data stays erased)")
    return ExitCode.OK


def _deployed(stack: str, users: list[str], clients: list[str], *, dry_run: bool, as_json: bool) -> ExitCode:
    """Invoke the stack's eraser with the request (validated there too); it works the jobs in parallel."""
    from exportlake.cli import stackenv

    function = stackenv.outputs(bootstrap.client("cloudformation"), stack).get("EraserFunction")
    if not function:
        raise ConfigError(f"stack {stack} has no EraserFunction output: deploy the current version (make deploy)")
    payload = json.dumps({"user_ids": users, "client_ids": clients, "dry_run": dry_run})
    resp = bootstrap.client("lambda").invoke(FunctionName=function, Payload=payload.encode())
    answer = json.loads(resp["Payload"].read() or b"{}")
    if resp.get("FunctionError"):
        raise ConfigError(f"the eraser refused the request: {answer.get('errorMessage', 'see its logs')}")
    if as_json:
        print(json.dumps(answer, indent=1))
    elif dry_run:
        rows = answer.get("rows_removed") or {}
        print(f"request {answer.get('request_id')}: would remove {sum(rows.values())} rows")
    else:
        print(
            f"request {answer.get('request_id')} accepted: {answer.get('exports')} exports are being searched; "
            "exportlake erase --list shows it when done (person.erased is announced)"
        )
    return ExitCode.OK


def _retire(days: int | None, as_json: bool) -> ExitCode:
    """Remove the results older than the retention period, whole (partition, objects, versions)."""
    from exportlake.domain.timefmt import utc_now

    period = bootstrap.settings().lake_retention_days if days is None else days
    if period < 0:
        raise ConfigError("erase --retire --days N: N is a number of days (0 keeps results forever)")
    report = bootstrap.retention_service().run(period, utc_now())
    if as_json:
        print(json.dumps(report.as_dict(), indent=1))
    elif period == 0:
        print("lakeRetentionDays is 0: results are kept forever (set it, or pass --days N)")
    else:
        record = report.as_dict()
        print(
            f"removed {len(report.results)} results created before {report.before} "
            f"({record['versions_deleted']} object versions)"
        )
    return ExitCode.HELD if report.pending else ExitCode.OK
