"""The lake's views and saved queries: one SQL text, deployed to Athena by the stack and run locally on DuckDB.

Every statement is built from the schema registry and a validated database name only (never from API input), in
the SQL both engines accept: Athena (Trino) functions that DuckDB lacks are supplied locally as macros by
``exportlake.query.lake``. Names are always database-qualified and quoted (``"exportlake"."win_info"``), so
the deployed text resolves the same on both engines.

Typing rules (see docs/analytics.md): a value that does not have its kind's shape becomes NULL in the typed view
and is counted in the row's ``bad_values`` column (and per column by the ``BadValues`` saved query); an empty
string in a typed column is "no value" (NULL, not counted); text columns keep empty strings and NULLs apart.
Typed timestamps are truncated to milliseconds on both engines (Athena's precision).

Trino rules every statement keeps (checked by tests/local/test_trino_dialect.py with sqlglot): only functions both
engines have (or DuckDB macros supply), every join has an equality key (a range becomes days, see
``ParticipantsAndWinsPerCampaign``), and the newest result is reached through ``latest_results`` joined on the plain
partition columns, so Trino's dynamic filtering prunes every other partition.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass

from exportlake.domain.schemas import (
    BAD_VALUES_COLUMN,
    EXPORT_TYPES,
    LATEST_TABLE,
    PARTITION_KEYS,
    ExportType,
    Field,
    ResultSemantics,
    ValueKind,
    is_valid_name,
)

#: The three date shapes the API sends, as (regular expression, how to parse it). Both engines evaluate the same
#: expression; the shape is checked first so a value never reaches a parser that would guess.
_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = "[0-9]{2}:[0-9]{2}:[0-9]{2}"
TIMESTAMP_SHAPES: tuple[tuple[str, str, str], ...] = (
    ("YYYY-MM-DD HH:MM:SS", f"^{_DATE} {_TIME}$", "try(date_parse({c}, '%Y-%m-%d %H:%i:%s'))"),
    ("YYYY-MM-DD HH:MM:SS.fff", f"^{_DATE} {_TIME}\\.[0-9]{{1,6}}$", "try(date_parse({c}, '%Y-%m-%d %H:%i:%s.%f'))"),
    (
        "ISO 8601 with offset",
        f"^{_DATE}T{_TIME}(\\.[0-9]{{1,6}})?(Z|[+-][0-9]{{2}}:[0-9]{{2}})$",
        "try(CAST(from_iso8601_timestamp({c}) AT TIME ZONE 'UTC' AS timestamp))",
    ),
)
_NUMBER_SHAPE = "^-?[0-9]{1,15}(\\.[0-9]{1,6})?$"


@dataclass(frozen=True)
class SavedQuery:
    """One saved (named) query: its name, what it answers, and the SQL."""

    name: str
    description: str
    sql: str


def _q(name: str) -> str:
    if not is_valid_name(name):
        raise ValueError(f"unsafe SQL name: {name!r}")
    return f'"{name}"'


def _rel(database: str, name: str) -> str:
    return f"{_q(database)}.{_q(name)}"


def typed_expression(field: Field, source: str = "") -> str:
    """The SQL turning raw column ``field`` (optionally qualified by ``source``) into its typed value."""
    c = f"{source}.{_q(field.name)}" if source else _q(field.name)
    if field.kind is ValueKind.TEXT:
        return c
    if field.kind is ValueKind.FLAG:
        return f"CASE {c} WHEN '1' THEN true WHEN '0' THEN false END"
    if field.kind is ValueKind.NUMBER:
        return f"CASE WHEN regexp_like({c}, '{_NUMBER_SHAPE}') THEN CAST({c} AS double) END"
    branches = " ".join(
        f"WHEN regexp_like({c}, '{shape}') THEN {parse.format(c=c)}" for _, shape, parse in TIMESTAMP_SHAPES
    )
    # Athena's timestamps hold milliseconds, DuckDB's microseconds: truncate, so both give the same instant.
    return f"date_trunc('millisecond', CASE {branches} END)"


def bad_value_condition(field: Field, source: str = "") -> str:
    """True when the raw value is present (not NULL, not empty) but does not parse as its kind."""
    c = f"{source}.{_q(field.name)}" if source else _q(field.name)
    return f"({c} <> '' AND ({typed_expression(field, source)}) IS NULL)"


def _typed_fields(export_type: ExportType) -> list[Field]:
    return [f for f in export_type.fields if f.kind is not ValueKind.TEXT]


def _check(database: str, export_type: ExportType) -> None:
    names = (*export_type.columns, *PARTITION_KEYS, BAD_VALUES_COLUMN)
    if len(set(names)) != len(names):
        raise ValueError(f"{export_type.key}: a field collides with a partition key or {BAD_VALUES_COLUMN!r}")
    if export_type.key == LATEST_TABLE:
        raise ValueError(f"{export_type.key}: the name of the pointer table cannot name an export type")
    for name in (database, export_type.key, export_type.typed_view, export_type.latest_view, *names):
        _q(name)


@dataclass(frozen=True)
class ViewColumn:
    """One column of a view: its name, its Athena (Trino) type and its Glue (Hive) type."""

    name: str
    athena_type: str
    glue_type: str


@dataclass(frozen=True)
class ViewDefinition:
    """One view: its name, the columns it yields, and the SELECT that defines it."""

    database: str
    name: str
    columns: tuple[ViewColumn, ...]
    select: str

    @property
    def statement(self) -> str:
        """The ``CREATE OR REPLACE VIEW`` statement (run locally; the same SELECT is the Glue view's text)."""
        return f"CREATE OR REPLACE VIEW {_rel(self.database, self.name)} AS\n{self.select}"


#: Athena spells the view column types the way its own CREATE VIEW stores them (timestamps have precision 3).
_ATHENA_TYPES = {
    ValueKind.TEXT: "varchar",
    ValueKind.FLAG: "boolean",
    ValueKind.NUMBER: "double",
    ValueKind.TIMESTAMP: "timestamp(3)",
}


def _view_columns(export_type: ExportType) -> tuple[ViewColumn, ...]:
    columns = [ViewColumn(f.name, _ATHENA_TYPES[f.kind], f.kind.glue_type) for f in export_type.fields]
    columns += [ViewColumn(k, "varchar", "string") for k in PARTITION_KEYS]
    columns.append(ViewColumn(BAD_VALUES_COLUMN, "integer", "int"))
    return tuple(columns)


def typed_view(database: str, export_type: ExportType) -> ViewDefinition:
    """``<db>.<type>_typed``: every documented column typed, plus the partition keys and ``bad_values``."""
    _check(database, export_type)
    lines = [f"{typed_expression(f)} AS {_q(f.name)}" for f in export_type.fields]
    lines += [_q(k) for k in PARTITION_KEYS]
    typed = _typed_fields(export_type)
    bad = " + ".join(f"CASE WHEN {bad_value_condition(f)} THEN 1 ELSE 0 END" for f in typed) or "0"
    lines.append(f"{bad} AS {_q(BAD_VALUES_COLUMN)}")
    body = ",\n       ".join(lines)
    select = f"SELECT {body}\nFROM {_rel(database, export_type.table_name)}"
    return ViewDefinition(database, export_type.typed_view, _view_columns(export_type), select)


def latest_view(database: str, export_type: ExportType) -> ViewDefinition:
    """``<db>.<type>_latest``: the typed rows of each export's newest result only.

    Newest is the one ``latest_results`` names: by the gateway's full ``created_at`` (``result_id`` breaks ties of
    identical instants only; ``exportlake.domain.latest``). The join is on the plain partition columns with
    equality and the pointer table is the right (build) side, so Trino's dynamic filtering prunes every other
    partition and the view reads that result's files only. It reads the raw table, not the typed view, so the
    views do not depend on one another.
    """
    _check(database, export_type)
    typed = typed_view(database, export_type)
    on = " AND ".join(f"t.{_q(k)} = l.{_q(k)}" for k in PARTITION_KEYS)
    select = (
        f"SELECT t.*\nFROM ({typed.select}) t\n"
        f"JOIN {_rel(database, LATEST_TABLE)} l\n"
        f"  ON {on}\n"
        f"WHERE l.table_name = '{export_type.table_name}'"
    )
    return ViewDefinition(database, export_type.latest_view, typed.columns, select)


def effective_semantics(overrides: Mapping[str, str] | None = None) -> dict[str, ResultSemantics]:
    """Per export type: the registry's default semantics, replaced where ``overrides`` (type → value) says so."""
    result = {key: t.semantics for key, t in EXPORT_TYPES.items()}
    for key, value in (overrides or {}).items():
        if key not in EXPORT_TYPES:
            raise ValueError(f"result semantics for unknown export type {key!r} (known: {', '.join(EXPORT_TYPES)})")
        result[key] = ResultSemantics(value)
    return result


def views(database: str, semantics: Mapping[str, ResultSemantics] | None = None) -> list[ViewDefinition]:
    """Every view: a typed view per export type, and a latest view per snapshot type."""
    modes = dict(semantics) if semantics is not None else effective_semantics()
    out = [typed_view(database, t) for t in EXPORT_TYPES.values()]
    out += [latest_view(database, t) for t in EXPORT_TYPES.values() if modes[t.key] is ResultSemantics.SNAPSHOT]
    return out


def view_statements(database: str, semantics: Mapping[str, ResultSemantics] | None = None) -> dict[str, str]:
    """Every view as name → ``CREATE OR REPLACE VIEW`` statement (what the local engine runs)."""
    return {v.name: v.statement for v in views(database, semantics)}


def _current(database: str, key: str, modes: Mapping[str, ResultSemantics]) -> str:
    """Where a query reads the current rows of a type: the latest result of a snapshot, every result of a delta."""
    export_type = EXPORT_TYPES[key]
    view = export_type.latest_view if modes[key] is ResultSemantics.SNAPSHOT else export_type.typed_view
    return _rel(database, view)


def saved_queries(database: str, semantics: Mapping[str, ResultSemantics] | None = None) -> list[SavedQuery]:
    """The business questions (and two housekeeping ones) as saved queries over the typed/latest views."""
    modes = dict(semantics) if semantics is not None else effective_semantics()
    _q(database)

    def cur(key: str) -> str:
        return _current(database, key, modes)

    queries = [
        SavedQuery(
            "WinRatePerGameType",
            "Participations, wins and win rate per game type (win_info joined with the game type of each stack)",
            f"""WITH game_types AS (
  SELECT DISTINCT stackid, game_type FROM {cur("player_info_game_type")}
)
SELECT g.game_type,
       count(*) AS participations,
       count_if(w.haswon) AS wins,
       round(CAST(count_if(w.haswon) AS double) / count(*), 4) AS win_rate
FROM {cur("win_info")} w
JOIN game_types g ON g.stackid = w.stackid
WHERE w.haswon IS NOT NULL
GROUP BY g.game_type
ORDER BY win_rate DESC, g.game_type""",
        ),
        SavedQuery(
            "WinRatePerDayAndGameType",
            "Participations, wins and win rate per participation day (UTC) and game type",
            f"""WITH game_types AS (
  SELECT DISTINCT stackid, game_type FROM {cur("player_info_game_type")}
)
SELECT CAST(date_trunc('day', w.participation_date) AS date) AS day,
       g.game_type,
       count(*) AS participations,
       count_if(w.haswon) AS wins,
       round(CAST(count_if(w.haswon) AS double) / count(*), 4) AS win_rate
FROM {cur("win_info")} w
JOIN game_types g ON g.stackid = w.stackid
WHERE w.haswon IS NOT NULL AND w.participation_date IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 2""",
        ),
        SavedQuery(
            "PrizeDistribution",
            "Prizes won per prize type, their share of all prizes won, and how many were claimed (claim rate)",
            f"""WITH catalogue AS (
  SELECT DISTINCT prizeid, game_id, prize_type FROM {cur("gamification_prize_prize_type")}
)
SELECT CASE WHEN c.prizeid IS NULL THEN '(not in catalogue)' ELSE c.prize_type END AS prize_type,
       count(*) AS prizes_won,
       round(CAST(count(*) AS double) / sum(count(*)) OVER (), 4) AS share,
       count(u.claimed_date) AS claimed,
       round(CAST(count(u.claimed_date) AS double) / count(*), 4) AS claim_rate
FROM {cur("gamification_prize_user_id")} u
LEFT JOIN catalogue c ON c.prizeid = u.prizeid AND c.game_id = u.game_id
GROUP BY 1
ORDER BY prizes_won DESC, 1""",
        ),
        SavedQuery(
            "CouponsPerDay",
            "Coupons issued per day (UTC, from received_date) and coupon name (leading spaces kept)",
            f"""SELECT CAST(date_trunc('day', received_date) AS date) AS day,
       coupon_name,
       count(*) AS coupons
FROM {cur("all_coupons")}
WHERE received_date IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 2""",
        ),
        SavedQuery(
            "ChallengeCompletionPerGameType",
            "Challenge participations, completions and completion rate per game type",
            f"""WITH game_types AS (
  SELECT DISTINCT stackinstanceid, game_type FROM {cur("challenges_game_type")}
)
SELECT g.game_type,
       count(*) AS participations,
       count_if(c.hascompleted) AS completed,
       round(CAST(count_if(c.hascompleted) AS double) / count(*), 4) AS completion_rate
FROM {cur("challenges_user_id")} c
JOIN game_types g ON g.stackinstanceid = c.stackinstanceid
WHERE c.hascompleted IS NOT NULL
GROUP BY g.game_type
ORDER BY completion_rate DESC, g.game_type""",
        ),
        SavedQuery(
            "ParticipantsAndWinsPerCampaign",
            "Per campaign: distinct participants, participations and wins whose participation_date falls in the "
            "campaign's [start, end) window (the records carry no campaign key)",
            _campaigns_sql(cur("campaign_info"), cur("win_info")),
        ),
        SavedQuery(
            "NewConnectionsPerDay",
            f"User-base connections (userid, client_id) by the day of the first result they appear in, over the "
            f"results of the last {NEW_CONNECTIONS_DAYS} days (the window's first day is the baseline, not listed)",
            f"""WITH recent AS (
  SELECT userid, client_id, created_date
  FROM {_rel(database, EXPORT_TYPES["user_base_connections"].table_name)}
  WHERE created_date >= {_days_ago(NEW_CONNECTIONS_DAYS)}
),
firsts AS (
  SELECT userid, client_id, min(created_date) AS first_seen
  FROM recent
  GROUP BY userid, client_id
)
SELECT first_seen AS day, count(*) AS new_connections
FROM firsts
WHERE first_seen > (SELECT min(created_date) FROM recent)
GROUP BY first_seen
ORDER BY first_seen""",
        ),
        SavedQuery(
            "BadValues",
            "Per table and column, in each export's newest result: values present in the raw table that the typed "
            "view could not parse (NULL there)",
            _bad_values_sql(database),
        ),
        SavedQuery(
            "LatestResultPerExport",
            "Per table and export: the newest copied result (day, id, full creation time) and how many results and "
            "rows the lake holds",
            _latest_results_sql(database),
        ),
    ]
    return queries


#: How many days of user-base snapshots ``NewConnectionsPerDay`` reads: every snapshot of a year would be tens of GB.
NEW_CONNECTIONS_DAYS = 30


def _days_ago(days: int) -> str:
    """``created_date`` of ``days`` days before today, as the partition's text: a constant Trino folds at planning,
    so the partition filter prunes statically (and Glue's partition index on ``created_date`` answers it)."""
    return f"CAST(CAST(current_date - INTERVAL '{int(days)}' DAY AS date) AS varchar)"


def _newest_only(database: str, table: str, alias: str) -> str:
    """The join that keeps ``alias``'s rows of each export's newest result (prunable: equality on partition keys)."""
    on = " AND ".join(f"{alias}.{_q(k)} = l.{_q(k)}" for k in PARTITION_KEYS)
    return f"JOIN {_rel(database, LATEST_TABLE)} l\n  ON {on}\nWHERE l.table_name = '{table}'"


def _bad_values_sql(database: str) -> str:
    parts = []
    for t in EXPORT_TYPES.values():
        for f in _typed_fields(t):
            parts.append(
                f"SELECT '{t.key}' AS table_name, '{f.name}' AS column_name, '{f.kind.sql_type}' AS type,\n"
                f"       coalesce(count_if({bad_value_condition(f, 'r')}), 0) AS bad_values, count(*) AS row_count\n"
                f"FROM {_rel(database, t.table_name)} r\n{_newest_only(database, t.table_name, 'r')}"
            )
    union = "\nUNION ALL\n".join(parts)
    return f"SELECT * FROM (\n{union}\n) b\nORDER BY bad_values DESC, table_name, column_name"


def _latest_results_sql(database: str) -> str:
    """Per table and export: the lake's results and rows, beside the newest result its pointer names."""
    parts = [
        f"SELECT '{t.key}' AS table_name, export_name, max(created_date) AS latest_created_date,\n"
        f"       count(DISTINCT result_id) AS results, count(*) AS row_count\n"
        f"FROM {_rel(database, t.table_name)}\nGROUP BY export_name"
        for t in EXPORT_TYPES.values()
    ]
    union = "\nUNION ALL\n".join(parts)
    return (
        "SELECT h.table_name, h.export_name, h.latest_created_date, l.result_id AS latest_result_id,\n"
        "       l.created_at AS latest_created_at, h.results, h.row_count\n"
        f"FROM (\n{union}\n) h\n"
        f"LEFT JOIN {_rel(database, LATEST_TABLE)} l\n"
        "  ON l.table_name = h.table_name AND l.export_name = h.export_name\n"
        "ORDER BY h.table_name, h.export_name"
    )


def _campaigns_sql(campaigns: str, wins: str) -> str:
    """Participants and wins per campaign, joining participations to campaigns by day (an equality key).

    The records carry no campaign key: a participation belongs to every campaign whose ``[start, end)`` holds its
    ``participation_date``. A range join has no equality key (Trino would build the whole participation side in
    memory), so each campaign is expanded into its days (windows longer than ten years count their first day
    only) and participations join on their day, the range staying as a filter. Participations are the probe
    side, the campaign days the (small) build side; campaigns without participations still appear (with zeros),
    and a campaign listed twice counts twice, as a plain range join would. A participation is in no result created
    before its day (a day of slack for zone-less times), so ``created_date >= first_result_day`` lets Trino's
    dynamic filter (``>=`` is one it collects) skip the partitions older than the earliest campaign.
    """
    return f"""WITH campaign_days AS (
  SELECT c.campaign_code, c.campaign_name, c.campaign_start, c.campaign_end, d.day,
         CAST(CAST(c.campaign_start - INTERVAL '1' DAY AS date) AS varchar) AS first_result_day
  FROM {campaigns} c
  CROSS JOIN UNNEST(sequence(
    CAST(c.campaign_start AS date),
    CASE WHEN c.campaign_end > c.campaign_start AND c.campaign_end <= c.campaign_start + INTERVAL '3660' DAY
         THEN CAST(c.campaign_end AS date) ELSE CAST(c.campaign_start AS date) END,
    INTERVAL '1' DAY)) AS d (day)
),
hits AS (
  SELECT cd.campaign_code, cd.campaign_name, w.userid, w.haswon
  FROM {wins} w
  JOIN campaign_days cd
    ON CAST(w.participation_date AS date) = cd.day
   AND w.participation_date >= cd.campaign_start AND w.participation_date < cd.campaign_end
   AND w.created_date >= cd.first_result_day
)
SELECT campaign_code,
       campaign_name,
       count(DISTINCT userid) AS participants,
       count(userid) AS participations,
       coalesce(count_if(haswon), 0) AS wins
FROM (
  SELECT campaign_code, campaign_name, userid, haswon FROM hits
  UNION ALL
  SELECT campaign_code, campaign_name, CAST(NULL AS varchar) AS userid, CAST(NULL AS boolean) AS haswon
  FROM {campaigns}
) x
GROUP BY campaign_code, campaign_name
ORDER BY participations DESC, campaign_code"""


def glue_view_text(view: ViewDefinition) -> str:
    """The ``ViewOriginalText`` of a Glue view Athena reads: its SELECT and columns, base64 JSON in a comment.

    This is the format Athena's own ``CREATE VIEW`` writes to the Glue catalog (a "Presto view").
    """
    document = {
        "originalSql": view.select,
        "catalog": "awsdatacatalog",
        "schema": view.database,
        "columns": [{"name": c.name, "type": c.athena_type} for c in view.columns],
    }
    encoded = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
    return f"/* Presto View: {encoded} */"


def sql_of_glue_view_text(text: str) -> str:
    """The SELECT inside a ``ViewOriginalText`` written by :func:`glue_view_text` (for tests and tools)."""
    prefix, suffix = "/* Presto View: ", " */"
    if not (text.startswith(prefix) and text.endswith(suffix)):
        raise ValueError("not a Presto view text")
    document = json.loads(base64.b64decode(text[len(prefix) : -len(suffix)]))
    return str(document["originalSql"])
