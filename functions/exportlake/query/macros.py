"""Athena (Trino) functions DuckDB lacks or spells differently, as DuckDB macros for the local engine.

The SQL the stack deploys is Trino SQL; locally the same text runs on DuckDB with these macros defined in ``main``
(always on the search path). Known differences from Athena are noted per entry.
"""

from __future__ import annotations

#: MySQL-style specifiers (Athena's ``date_parse``/``date_format``) → DuckDB strptime/strftime specifiers.
#: Order matters: ``replace`` runs in sequence, so ``%M`` (month name) is rewritten before ``%i`` becomes ``%M``
#: (minutes), and the composite ``%T``/``%r`` come last because their output holds ``%M`` and ``%S``.
_MYSQL_TO_DUCKDB_FORMAT: tuple[tuple[str, str], ...] = (
    ("%M", "%B"),
    ("%W", "%A"),
    ("%i", "%M"),
    ("%s", "%S"),
    ("%c", "%-m"),
    ("%e", "%-d"),
    ("%k", "%-H"),
    ("%l", "%-I"),
    ("%h", "%I"),
    ("%T", "%H:%M:%S"),
    ("%r", "%I:%M:%S %p"),
)


def _format_translation(arg: str) -> str:
    expr = arg
    for mysql, duck in _MYSQL_TO_DUCKDB_FORMAT:
        expr = f"replace({expr}, '{mysql}', '{duck}')"
    return expr


#: Athena (Trino) functions DuckDB lacks, as DuckDB macros: name → "(parameters) AS body". Created in this order
#: (later macros may call earlier ones). Known differences from Athena are noted per entry.
ATHENA_MACROS: dict[str, str] = {
    # Helper: translate a MySQL-style format string ('%%' escapes are not special-cased). The format must be a
    # constant, as DuckDB's strptime requires. The concat(fmt, '') is load-bearing: DuckDB binds a macro body
    # with NULL for its parameters, and strptime refuses a NULL (non-constant) format unless it folds to ''.
    "athena_mysql_format": f"(fmt) AS {_format_translation("concat(fmt, '')")}",
    "date_parse": "(s, fmt) AS strptime(s, athena_mysql_format(fmt))",
    "date_format": "(ts, fmt) AS strftime(ts, athena_mysql_format(fmt))",
    # Athena returns timestamp with time zone; this returns the UTC instant as a plain TIMESTAMP, so results
    # fetch without pytz and compare the same whatever the session time zone.
    "from_iso8601_timestamp": "(s) AS timezone('UTC', CAST(s AS TIMESTAMPTZ))",
    "from_iso8601_date": "(s) AS CAST(s AS DATE)",
    # Athena's regexp_like matches anywhere in the string, as regexp_matches does.
    "regexp_like": "(s, pattern) AS regexp_matches(s, pattern)",
    "approx_distinct": "(x) AS approx_count_distinct(x)",
    "approx_percentile": "(x, p) AS approx_quantile(x, p)",
    # Athena's date_add(unit, n, ts) and date_diff(unit, a, b) (whole units between a and b, as DuckDB's
    # date_sub counts them; DuckDB's own date_diff counts boundaries crossed). These shadow DuckDB's built-ins.
    "date_add": (
        "(unit, n, ts) AS CASE lower(unit) WHEN 'millisecond' THEN ts + to_milliseconds(n) "
        "WHEN 'second' THEN ts + to_seconds(n) WHEN 'minute' THEN ts + to_minutes(n) "
        "WHEN 'hour' THEN ts + to_hours(n) WHEN 'day' THEN ts + to_days(n) WHEN 'week' THEN ts + to_weeks(n) "
        "WHEN 'month' THEN ts + to_months(n) WHEN 'quarter' THEN ts + to_months(3 * n) "
        "WHEN 'year' THEN ts + to_years(n) END"
    ),
    "date_diff": "(unit, a, b) AS date_sub(lower(unit), a, b)",
    "to_unixtime": "(ts) AS epoch(ts)",
    # Athena returns timestamp with time zone (UTC); a plain UTC TIMESTAMP here, as from_iso8601_timestamp.
    "from_unixtime": "(n) AS make_timestamp(CAST(round(n * 1000000) AS BIGINT))",
    # Athena's element_at(map, key) is the value (DuckDB's is a list) and element_at(array, i) is 1-based.
    "element_at": "(c, k) AS c[k]",
    # Trino's sequence(start, stop, step) over dates (what the saved queries use: a campaign's days). Not for
    # numbers or timestamps; generate_series yields timestamps, cast back to dates.
    "sequence": (
        "(a, b, step) AS list_transform(generate_series(CAST(a AS TIMESTAMP), CAST(b AS TIMESTAMP), step), "
        "lambda x: CAST(x AS DATE))"
    ),
    # Athena yields NULL for invalid JSON, a missing path, JSON null, or an object/array value (not a scalar).
    "json_extract_scalar": (
        "(j, path) AS CASE WHEN json_valid(j) AND json_type(j, path) NOT IN ('OBJECT', 'ARRAY', 'NULL') "
        "THEN json_extract_string(j, path) END"
    ),
}
