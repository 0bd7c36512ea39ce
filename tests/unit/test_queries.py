"""The one SQL text: built from the registry and validated names only; documented; round-trips through Glue."""

from __future__ import annotations

from pathlib import Path

import pytest

from exportlake.domain import views as queries
from exportlake.domain.schemas import EXPORT_TYPES, PARTITION_KEYS, ResultSemantics, ValueKind

DOCS = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


def test_every_view_and_column_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for view in queries.views("exportlake"):
        assert f"`{view.name}`" in text
    for export_type in EXPORT_TYPES.values():
        section = text.split(f"### `{export_type.key}`", 1)[1].split("\n### ", 1)[0]
        for field in export_type.fields:
            assert f"| `{field.name}` | string | {field.kind.sql_type} | {field.format} |" in section
        assert f"({export_type.semantics.value})" in text.split(f"### `{export_type.key}`", 1)[1].splitlines()[0]
    for query in queries.saved_queries("exportlake"):
        assert f"`{query.name}`" in text


def test_unsafe_database_names_never_reach_sql() -> None:
    for bad in ('exportlake"; DROP TABLE x; --', "Export", "1db", ""):
        with pytest.raises(ValueError, match="unsafe SQL name"):
            queries.views(bad)
        with pytest.raises(ValueError, match="unsafe SQL name"):
            queries.saved_queries(bad)


def test_views_cover_every_type_and_latest_only_for_snapshots() -> None:
    names = [v.name for v in queries.views("db")]
    assert names[: len(EXPORT_TYPES)] == [f"{k}_typed" for k in EXPORT_TYPES]
    snapshots = [k for k, t in EXPORT_TYPES.items() if t.semantics is ResultSemantics.SNAPSHOT]
    assert names[len(EXPORT_TYPES) :] == [f"{k}_latest" for k in snapshots]
    assert {"campaign_info", "player_info_game_type", "gamification_prize_prize_type"} <= set(snapshots)
    assert "win_info" not in snapshots


def test_view_columns_follow_the_registry() -> None:
    view = next(v for v in queries.views("db") if v.name == "win_info_typed")
    assert [(c.name, c.athena_type, c.glue_type) for c in view.columns] == [
        ("userid", "varchar", "string"),
        ("stackid", "varchar", "string"),
        ("haswon", "boolean", "boolean"),
        ("participation_date", "timestamp(3)", "timestamp"),
        *[(k, "varchar", "string") for k in PARTITION_KEYS],
        ("bad_values", "integer", "int"),
    ]
    assert view.statement.startswith('CREATE OR REPLACE VIEW "db"."win_info_typed" AS\nSELECT ')
    assert 'FROM "db"."win_info"' in view.select


def test_glue_view_text_round_trips() -> None:
    for view in queries.views("exportlake"):
        text = queries.glue_view_text(view)
        assert text.startswith("/* Presto View: ") and text.endswith(" */")
        assert queries.sql_of_glue_view_text(text) == view.select
    with pytest.raises(ValueError, match="not a Presto view"):
        queries.sql_of_glue_view_text("SELECT 1")


def test_semantics_overrides() -> None:
    modes = queries.effective_semantics({"win_info": "snapshot", "campaign_info": "delta"})
    assert modes["win_info"] is ResultSemantics.SNAPSHOT
    assert modes["campaign_info"] is ResultSemantics.DELTA
    names = {v.name for v in queries.views("db", modes)}
    assert "win_info_latest" in names and "campaign_info_latest" not in names
    with pytest.raises(ValueError, match="unknown export type"):
        queries.effective_semantics({"nope": "snapshot"})
    with pytest.raises(ValueError):
        queries.effective_semantics({"win_info": "sometimes"})


def test_every_non_text_kind_is_counted_as_bad_values() -> None:
    for export_type in EXPORT_TYPES.values():
        typed = [f for f in export_type.fields if f.kind is not ValueKind.TEXT]
        select = queries.typed_view("db", export_type).select
        assert select.count("THEN 1 ELSE 0 END") == len(typed)
