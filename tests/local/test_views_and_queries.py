"""Every view and saved query, run locally (DuckDB over a moto lake), against answers computed here in Python.

The lake holds generated records of every export type, two results per export (on different days), with bad
values, NULLs, empty strings and all three date shapes mixed in. The expected answers are computed from the
records with plain Python (regular expressions, datetime), never with the SQL under test.
"""

from __future__ import annotations

import io
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from exportlake.adapters.catalog import GlueCatalog
from exportlake.adapters.lakestore import S3LakeStore
from exportlake.domain import latest
from exportlake.domain import views as queries
from exportlake.domain.naming import part_key, partition_prefix, partition_values
from exportlake.domain.schemas import EXPORT_TYPES, ResultSemantics, ValueKind
from exportlake.emulator import sampledata
from exportlake.query.lake import LakeQuery

REGION = "eu-west-1"
BUCKET = "lake-bucket"
DATABASE = "exportlake"
Row = dict[str, Any]

#: (created_date, result_id) of the two results of every export; the second is the newest.
#: Relative to today: NewConnectionsPerDay reads the last 30 days of results only.
_TODAY = datetime.now(UTC).date()
RESULTS = (
    (str(_TODAY - timedelta(days=2)), "r" + "1" * 24),
    (str(_TODAY - timedelta(days=1)), "r" + "2" * 24),
)
#: Values every typed column gets in some rows: bad shapes, impossible dates, empty strings, NULLs.
BAD = {
    ValueKind.FLAG: ["yes", "2", " 1"],
    ValueKind.NUMBER: ["ten", "1e5", "12,5"],
    ValueKind.TIMESTAMP: ["2024-02-30 00:00:00", "20/06/2024", "2024-06-20T09:35:57", "2024-06-20 9:35:57"],
}
ISO = [
    "2024-06-20T09:35:57+00:00",
    "2024-06-20T23:30:00-02:00",
    "2024-06-21T01:00:00.250+05:30",
    "2024-06-19T12:00:00Z",
]


def export_name(key: str) -> str:
    return key.replace("_", "-")


def mutate(records: list[Row], key: str, rng: random.Random) -> list[Row]:
    """Mix bad values, NULLs, empty strings and every date shape into generated records."""
    fields = {f.name: f for f in EXPORT_TYPES[key].fields}
    out = []
    for record in records:
        row = dict(record)
        for name, field in fields.items():
            roll = rng.random()
            if field.kind is ValueKind.TEXT:
                if roll < 0.03:
                    row[name] = None
                elif roll < 0.06:
                    row[name] = ""
                continue
            if roll < 0.05:
                row[name] = rng.choice(BAD[field.kind])
            elif roll < 0.08:
                row[name] = None
            elif roll < 0.10:
                row[name] = ""
            elif field.kind is ValueKind.TIMESTAMP and roll < 0.25:
                row[name] = rng.choice(ISO)
        out.append(row)
    return out


def dataset() -> dict[str, dict[tuple[str, str], list[Row]]]:
    """Per export type, per result: its records (deterministic)."""
    data: dict[str, dict[tuple[str, str], list[Row]]] = {}
    for n, key in enumerate(EXPORT_TYPES):
        rng = random.Random(n)
        data[key] = {}
        for seed, result in enumerate(RESULTS):
            records = sampledata.generate_records(key, 240, seed=seed + 10 * n)
            data[key][result] = mutate(records, key, rng)
    return data


# --- the independent Python interpretation -------------------------------------------------------------------

_PLAIN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{1,6}$")
_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")


def py_value(kind: ValueKind, raw: str | None) -> tuple[Any, bool]:
    """(typed value, is it a bad value) for one raw string."""
    if kind is ValueKind.TEXT:
        return raw, False
    if raw is None or raw == "":
        return None, False
    value: Any = None
    try:
        if kind is ValueKind.FLAG:
            value = {"1": True, "0": False}.get(raw)
        elif kind is ValueKind.NUMBER:
            value = float(raw) if re.fullmatch(r"-?\d{1,15}(\.\d{1,6})?", raw) else None
        elif _PLAIN.match(raw):
            value = datetime.strptime(raw, "%Y-%m-%d %H:%M:%S")
        elif _MILLIS.match(raw):
            value = datetime.strptime(raw, "%Y-%m-%d %H:%M:%S.%f")
        elif _OFFSET.match(raw):
            value = datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        value = None
    if isinstance(value, datetime):  # Athena's precision: milliseconds (the views truncate on both engines)
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value, value is None


def py_typed(key: str, data: dict[tuple[str, str], list[Row]]) -> list[Row]:
    rows = []
    for (day, rid), records in data.items():
        for record in records:
            row: Row = {}
            bad = 0
            for f in EXPORT_TYPES[key].fields:
                row[f.name], is_bad = py_value(f.kind, record.get(f.name))
                bad += is_bad
            row.update(export_name=export_name(key), created_date=day, result_id=rid, bad_values=bad)
            rows.append(row)
    return rows


def current(key: str, typed: dict[str, list[Row]]) -> list[Row]:
    """The rows a saved query reads: the newest result for a snapshot type, all results for a delta type."""
    rows = typed[key]
    if EXPORT_TYPES[key].semantics is ResultSemantics.DELTA:
        return rows
    newest = max((r["created_date"], r["result_id"]) for r in rows)
    return [r for r in rows if (r["created_date"], r["result_id"]) == newest]


def rate(part: int, whole: int) -> float:
    return part / whole


# --- the lake ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> dict[str, dict[tuple[str, str], list[Row]]]:
    return dataset()


@pytest.fixture(scope="module")
def lake(data: dict[str, dict[tuple[str, str], list[Row]]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        glue = boto3.client("glue", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        catalog = GlueCatalog(glue, DATABASE, BUCKET)
        catalog.ensure_database()
        for key, results in data.items():
            export_type = EXPORT_TYPES[key]
            catalog.create_table(key, export_type.columns, export_type.description)
            for (day, rid), records in results.items():
                prefix = partition_prefix(key, export_name(key), day, rid)
                columns = {c: pa.array([r.get(c) for r in records], pa.string()) for c in export_type.columns}
                buffer = io.BytesIO()
                pq.write_table(pa.table(columns), buffer)
                s3.put_object(Bucket=BUCKET, Key=part_key(prefix, 0), Body=buffer.getvalue())
                catalog.register_partition(
                    key,
                    partition_values(export_name(key), day, rid),
                    f"s3://{BUCKET}/{prefix}",
                    export_type.columns,
                )
                # What the copier does after registering the partition: move the export's pointer.
                created_at = datetime.fromisoformat(f"{day}T06:00:00+00:00")
                latest.advance(S3LakeStore(s3, BUCKET), latest.Pointer(key, export_name(key), rid, created_at))
        catalog.ensure_latest_table()
        engine = LakeQuery(glue, s3, DATABASE, Path(tmp_path_factory.mktemp("mirror")))
        engine.refresh()
        yield engine


@pytest.fixture(scope="module")
def typed(data: dict[str, dict[tuple[str, str], list[Row]]]) -> dict[str, list[Row]]:
    return {key: py_typed(key, results) for key, results in data.items()}


def rows_of(lake: LakeQuery, sql: str) -> list[Row]:
    columns, rows = lake.query(sql)
    return [dict(zip(columns, r, strict=True)) for r in rows]


def saved(name: str) -> str:
    return next(q.sql for q in queries.saved_queries(DATABASE) if q.name == name)


def canonical(rows: list[Row]) -> list[tuple[Any, ...]]:
    return sorted(tuple((k, repr(v)) for k, v in sorted(r.items())) for r in rows)


# --- views ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(EXPORT_TYPES))
def test_typed_view_matches_python(lake: LakeQuery, typed: dict[str, list[Row]], key: str) -> None:
    got = rows_of(lake, f'SELECT * FROM "{DATABASE}"."{key}_typed"')
    assert canonical(got) == canonical(typed[key])


def test_data_covers_every_shape(
    data: dict[str, dict[tuple[str, str], list[Row]]], typed: dict[str, list[Row]]
) -> None:
    """The generated data really holds what the views must handle (so the comparisons above mean something)."""
    win = [r for rs in data["win_info"].values() for r in rs]
    dates = {r["participation_date"] for r in win if r["participation_date"]}
    assert any(_PLAIN.match(d) for d in dates) and any(_MILLIS.match(d) for d in dates)
    assert any(_OFFSET.match(d) for d in dates)
    assert any(r["haswon"] is None for r in win) and any(r["haswon"] == "" for r in win)
    assert sum(r["bad_values"] for r in typed["win_info"]) > 0
    assert any(r["claimed_date"] is None for rs in data["gamification_prize_user_id"].values() for r in rs)


def test_typed_view_types(lake: LakeQuery) -> None:
    described = dict(lake.query(f'SELECT column_name, column_type FROM (DESCRIBE "{DATABASE}"."win_info_typed")')[1])
    assert described["haswon"] == "BOOLEAN"
    assert described["participation_date"] == "TIMESTAMP"
    assert described["bad_values"] == "INTEGER"
    value = lake.query(f'SELECT typeof(value) FROM "{DATABASE}"."player_info_user_id_typed" LIMIT 1')[1]
    assert value == [("DOUBLE",)]


def test_coupon_names_keep_their_leading_spaces(lake: LakeQuery, data: dict[str, Any]) -> None:
    names = {r["coupon_name"] for rs in data["all_coupons"].values() for r in rs}
    spaced = {n for n in names if n and n.startswith(" ")}
    assert spaced
    got = {r[0] for r in lake.query(f'SELECT DISTINCT coupon_name FROM "{DATABASE}"."all_coupons_typed"')[1]}
    assert got == names


@pytest.mark.parametrize("key", [k for k, t in EXPORT_TYPES.items() if t.semantics is ResultSemantics.SNAPSHOT])
def test_latest_view_holds_only_the_newest_result(lake: LakeQuery, typed: dict[str, list[Row]], key: str) -> None:
    got = rows_of(lake, f'SELECT * FROM "{DATABASE}"."{key}_latest"')
    assert canonical(got) == canonical(current(key, typed))
    assert {r["result_id"] for r in got} == {RESULTS[1][1]}


def test_bad_values_query_counts_per_column(lake: LakeQuery, typed: dict[str, list[Row]], data: dict[str, Any]) -> None:
    got = {(r["table_name"], r["column_name"]): r["bad_values"] for r in rows_of(lake, saved("BadValues"))}
    expected = {}
    for key, export_type in EXPORT_TYPES.items():
        for f in export_type.fields:
            if f.kind is ValueKind.TEXT:
                continue
            records = data[key][RESULTS[1]]  # each export's newest result only: a bounded, prunable scan
            expected[(key, f.name)] = sum(py_value(f.kind, r.get(f.name))[1] for r in records)
    assert got == expected
    newest = [r for rows in typed.values() for r in rows if r["result_id"] == RESULTS[1][1]]
    assert sum(expected.values()) == sum(r["bad_values"] for r in newest) > 0


# --- business questions -------------------------------------------------------------------------------------


def game_of_stack(typed: dict[str, list[Row]]) -> set[tuple[str, str]]:
    return {(r["stackid"], r["game_type"]) for r in current("player_info_game_type", typed)}


def test_win_rate_per_game_type(lake: LakeQuery, typed: dict[str, list[Row]]) -> None:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    pairs = game_of_stack(typed)
    for w in typed["win_info"]:
        if w["haswon"] is None:
            continue
        for stack, game in pairs:
            if stack is not None and stack == w["stackid"]:  # NULL never joins in SQL
                counts[game][0] += 1
                counts[game][1] += w["haswon"]
    got = rows_of(lake, saved("WinRatePerGameType"))
    assert {r["game_type"]: (r["participations"], r["wins"]) for r in got} == {g: tuple(c) for g, c in counts.items()}
    for r in got:
        assert r["win_rate"] == pytest.approx(rate(r["wins"], r["participations"]), abs=5e-5)
    assert [r["win_rate"] for r in got] == sorted((r["win_rate"] for r in got), reverse=True)


def test_win_rate_per_day_and_game_type(lake: LakeQuery, typed: dict[str, list[Row]]) -> None:
    counts: Counter[tuple[Any, str]] = Counter()
    wins: Counter[tuple[Any, str]] = Counter()
    pairs = game_of_stack(typed)
    for w in typed["win_info"]:
        if w["haswon"] is None or w["participation_date"] is None:
            continue
        for stack, game in pairs:
            if stack is not None and stack == w["stackid"]:  # NULL never joins in SQL
                counts[(w["participation_date"].date(), game)] += 1
                wins[(w["participation_date"].date(), game)] += w["haswon"]
    got = rows_of(lake, saved("WinRatePerDayAndGameType"))
    assert {(r["day"], r["game_type"]): (r["participations"], r["wins"]) for r in got} == {
        k: (counts[k], wins[k]) for k in counts
    }


def test_prize_distribution_and_claim_rate(lake: LakeQuery, typed: dict[str, list[Row]]) -> None:
    catalogue: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in current("gamification_prize_prize_type", typed):
        catalogue[(p["prizeid"], p["game_id"])].add(p["prize_type"])
    won: Counter[str] = Counter()
    claimed: Counter[str] = Counter()
    for u in current("gamification_prize_user_id", typed):
        types = catalogue.get((u["prizeid"], u["game_id"])) if None not in (u["prizeid"], u["game_id"]) else None
        for prize_type in types or {"(not in catalogue)"}:
            won[prize_type] += 1
            claimed[prize_type] += u["claimed_date"] is not None
    got = rows_of(lake, saved("PrizeDistribution"))
    assert {r["prize_type"]: (r["prizes_won"], r["claimed"]) for r in got} == {t: (won[t], claimed[t]) for t in won}
    total = sum(won.values())
    for r in got:
        assert r["share"] == pytest.approx(r["prizes_won"] / total, abs=5e-5)
        assert r["claim_rate"] == pytest.approx(r["claimed"] / r["prizes_won"], abs=5e-5)


def test_coupons_per_day_and_name(lake: LakeQuery, typed: dict[str, list[Row]]) -> None:
    expected = Counter(
        (c["received_date"].date(), c["coupon_name"])
        for c in current("all_coupons", typed)
        if c["received_date"] is not None
    )
    got = rows_of(lake, saved("CouponsPerDay"))
    assert {(r["day"], r["coupon_name"]): r["coupons"] for r in got} == dict(expected)


def test_challenge_completion_per_game_type(lake: LakeQuery, typed: dict[str, list[Row]]) -> None:
    pairs = {(r["stackinstanceid"], r["game_type"]) for r in current("challenges_game_type", typed)}
    done: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for c in current("challenges_user_id", typed):
        if c["hascompleted"] is None:
            continue
        for instance, game in pairs:
            if instance is not None and instance == c["stackinstanceid"]:
                total[game] += 1
                done[game] += c["hascompleted"]
    got = rows_of(lake, saved("ChallengeCompletionPerGameType"))
    assert {r["game_type"]: (r["participations"], r["completed"]) for r in got} == {
        g: (total[g], done[g]) for g in total
    }


def test_participants_and_wins_per_campaign(lake: LakeQuery, typed: dict[str, list[Row]]) -> None:
    wins = current("win_info", typed)
    expected = {}
    campaigns = current("campaign_info", typed)
    for c in campaigns:
        inside = [
            w
            for w in wins
            if None not in (w["participation_date"], c["campaign_start"], c["campaign_end"])
            and c["campaign_start"] <= w["participation_date"] < c["campaign_end"]
        ]
        key = (c["campaign_code"], c["campaign_name"])
        prev = expected.get(key, (set(), 0, 0))
        # The same campaign may be listed twice in one snapshot: the SQL's join then counts its rows twice.
        expected[key] = (
            prev[0] | {w["userid"] for w in inside if w["userid"] is not None},
            prev[1] + sum(w["userid"] is not None for w in inside),
            prev[2] + sum(bool(w["haswon"]) for w in inside),
        )
    got = rows_of(lake, saved("ParticipantsAndWinsPerCampaign"))
    assert {
        (r["campaign_code"], r["campaign_name"]): (r["participants"], r["participations"], r["wins"]) for r in got
    } == {k: (len(v[0]), v[1], v[2]) for k, v in expected.items()}
    assert any(r["participations"] > 0 for r in got)


def test_new_connections_per_day(lake: LakeQuery, typed: dict[str, list[Row]]) -> None:
    first: dict[tuple[Any, Any], str] = {}
    for r in typed["user_base_connections"]:
        pair = (r["userid"], r["client_id"])
        first[pair] = min(first.get(pair, r["created_date"]), r["created_date"])
    got = rows_of(lake, saved("NewConnectionsPerDay"))
    # The window's first day is the baseline (every connection already there), not listed.
    expected = {day: n for day, n in Counter(first.values()).items() if day != RESULTS[0][0]}
    assert {r["day"]: r["new_connections"] for r in got} == expected
    assert len(got) == 1 and got[0]["new_connections"] > 0


def test_latest_result_per_export(lake: LakeQuery, data: dict[str, Any]) -> None:
    got = rows_of(lake, saved("LatestResultPerExport"))
    assert {
        r["table_name"]: (r["latest_created_date"], r["latest_result_id"], r["results"], r["row_count"]) for r in got
    } == {
        key: (RESULTS[1][0], RESULTS[1][1], 2, sum(len(rs) for rs in results.values())) for key, results in data.items()
    }
    assert {r["latest_created_at"] for r in got} == {f"{RESULTS[1][0]}T06:00:00+00:00"}
