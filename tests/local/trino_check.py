"""A Trino-dialect check of the SQL we ship, with a real SQL parser (sqlglot, dialect ``trino``).

Athena engine v3 is Trino; the same text runs on DuckDB locally, so DuckDB accepting a statement proves nothing
about Athena. Each statement must:

- parse as Trino SQL;
- call only functions Trino has (an allowlist of the Trino functions the project uses, each in Trino's function
  reference https://trino.io/docs/current/functions/list.html); DuckDB-only names (``strptime``, ``list_transform``,
  ``regexp_matches``, ``epoch``, ``generate_series`` …) fail, as do DuckDB-only syntax: ``::`` casts, ``[…]`` list
  literals, ``GROUP BY ALL``, ``SELECT * EXCLUDE``;
- give every join an equality key between its two sides (``=`` or ``IS NOT DISTINCT FROM`` at the top level of
  ``ON``, or ``USING``): a join without one is a nested-loop join whose right side Trino builds whole in memory. A
  ``CROSS JOIN UNNEST(…)`` expands a row of its left side and is allowed;
- name only relations that exist: ``"<database>"."<name>"`` with a name the catalog has, or a CTE of the statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

#: Trino functions the shipped SQL may call (lower case). Add one only after checking Trino's reference has it.
TRINO_FUNCTIONS = frozenset(
    {
        "approx_distinct",
        "avg",
        "cast",
        "coalesce",
        "count",
        "count_if",
        "date_add",
        "date_diff",
        "date_format",
        "date_parse",
        "date_trunc",
        "element_at",
        "from_iso8601_date",
        "from_iso8601_timestamp",
        "json_extract_scalar",
        "lower",
        "max",
        "min",
        "regexp_like",
        "round",
        "row_number",
        "sequence",
        "sum",
        "to_unixtime",
        "try",
        "unnest",
        "upper",
    }
)
#: Keywords followed by "(" that are syntax, not function calls.
_SYNTAX = frozenset(
    [
        "all",
        "and",
        "as",
        "between",
        "by",
        "case",
        "distinct",
        "else",
        "exists",
        "filter",
        "from",
        "having",
        "in",
        "is",
        "join",
        "like",
        "not",
        "on",
        "or",
        "over",
        "select",
        "then",
        "union",
        "using",
        "values",
        "when",
        "where",
        "with",
    ]
)


class TrinoSqlError(AssertionError):
    """A statement breaks one of the rules (the message says which, and where)."""


def _function_names(sql: str) -> set[str]:
    tokens = sqlglot.Dialect.get_or_raise("trino").tokenize(sql)
    names: set[str] = set()
    for previous, token, following in zip([None, *tokens], tokens, tokens[1:], strict=False):
        if previous is not None and previous.token_type is TokenType.ALIAS:
            continue  # "AS d (day)": an alias with column names
        if following.token_type is TokenType.L_PAREN and token.token_type not in (
            TokenType.STRING,
            TokenType.IDENTIFIER,  # a quoted name: a relation or column, never a function here
            TokenType.R_PAREN,
            TokenType.NUMBER,
        ):
            name = token.text.lower()
            if name.isidentifier() and name not in _SYNTAX:
                names.add(name)
    return names


def _syntax_errors(sql: str) -> list[str]:
    errors = []
    tokens = sqlglot.Dialect.get_or_raise("trino").tokenize(sql)
    for previous, token in zip([None, *tokens], tokens, strict=False):
        if token.token_type is TokenType.DCOLON:
            errors.append(f"'::' cast at line {token.line} (DuckDB/PostgreSQL only; use CAST(x AS type))")
        if token.token_type is TokenType.L_BRACKET and (
            previous is None
            or previous.token_type
            not in (TokenType.ARRAY, TokenType.VAR, TokenType.IDENTIFIER, TokenType.R_BRACKET, TokenType.R_PAREN)
        ):
            errors.append(f"'[' list literal at line {token.line} (DuckDB only; use ARRAY[...])")
    return errors


def _table_names(node: exp.Expression) -> set[str]:
    return {t.alias_or_name for t in node.find_all(exp.Table)}


def _join_errors(tree: exp.Expression) -> list[str]:
    errors = []
    for select in tree.find_all(exp.Select):
        joins = select.args.get("joins") or []
        for join in joins:
            if isinstance(join.this, exp.Unnest):
                continue  # CROSS JOIN UNNEST(...): a lateral expansion of the left row, not a relation join
            if join.args.get("using"):
                continue
            on = join.args.get("on")
            if on is None:
                errors.append(f"join of {join.this.sql(dialect='trino')[:60]} has no ON: a cross join")
                continue
            conjuncts = list(on.flatten()) if isinstance(on, exp.And) else [on]
            keys = [c for c in conjuncts if isinstance(c, (exp.EQ, exp.NullSafeEQ))]
            right = _table_names(join.this) | {join.this.alias_or_name}
            if not any(_spans_both_sides(k, right) for k in keys):
                errors.append(f"join ON {on.sql(dialect='trino')[:80]!r} has no equality key between its sides")
    return errors


def _spans_both_sides(condition: Any, right: set[str]) -> bool:
    sides = []
    for operand in (condition.left, condition.right):
        tables = {c.table for c in operand.find_all(exp.Column)}
        if not tables:
            return False
        sides.append(bool(tables & right))
    return sides[0] != sides[1]


def _relation_errors(tree: exp.Expression, database: str, relations: Iterable[str]) -> list[str]:
    known = set(relations)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    errors = []
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Unnest) or isinstance(table.parent, exp.Unnest):
            continue
        name, db = table.name, table.db
        if not db and name in ctes:
            continue
        if db != database:
            errors.append(f"relation {table.sql(dialect='trino')} is not qualified with database {database!r}")
        elif name not in known:
            errors.append(f"relation {database}.{name} does not exist")
    return errors


def check(sql: str, database: str, relations: Iterable[str]) -> None:
    """Raise ``TrinoSqlError`` listing every rule ``sql`` breaks (see the module docstring)."""
    try:
        tree: Any = sqlglot.parse_one(sql, read="trino")
    except sqlglot.errors.ParseError as exc:
        raise TrinoSqlError(f"not Trino SQL: {exc}") from None
    errors = _syntax_errors(sql)
    unknown = sorted(_function_names(sql) - TRINO_FUNCTIONS)
    if unknown:
        errors.append(f"functions not in the Trino allowlist: {', '.join(unknown)}")
    group = tree.find(exp.Group)
    if group is not None and group.args.get("all"):
        errors.append("GROUP BY ALL (DuckDB only)")
    for star in tree.find_all(exp.Star):
        if star.args.get("except") or star.args.get("replace"):
            errors.append("SELECT * EXCLUDE/REPLACE (DuckDB only)")
    errors += _join_errors(tree)
    errors += _relation_errors(tree, database, relations)
    if errors:
        raise TrinoSqlError("; ".join(errors))
