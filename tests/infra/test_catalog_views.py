"""The synthesized catalog: typed/latest Glue views and saved queries are byte-for-byte the SQL the tests run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exportlake.adapters.catalog import table_input
from exportlake.domain import views as queries
from exportlake.domain.schemas import EXPORT_TYPES, LATEST_TABLE, ResultSemantics
from exportlake.domain.tablemerge import fingerprint
from exportlake.domain.tableresource import RESOURCE_TYPE
from exportlake.query.lake import LakeQuery
from infra.config import Config, ConfigError

from .conftest import Synthesized, synthesize

DATABASE = "exportlake"


def glue_tables(synth: Synthesized, table_type: str) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["TableInput"]["Name"]: r["Properties"]["TableInput"]
        for r in synth.raw["Resources"].values()
        if r["Type"] == "AWS::Glue::Table" and r["Properties"]["TableInput"]["TableType"] == table_type
    }


def named(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["Name"]: r["Properties"]
        for r in synth.raw["Resources"].values()
        if r["Type"] == "AWS::Athena::NamedQuery"
    }


def test_raw_tables_use_the_one_table_definition_the_runtime_writes(synth: Synthesized) -> None:
    """The template declares columns and description; the handler builds the rest with the runtime's table_input."""
    tables = {
        r["Properties"]["TableName"]: r["Properties"]
        for r in synth.raw["Resources"].values()
        if r["Type"] == RESOURCE_TYPE
    }
    assert set(tables) == set(EXPORT_TYPES)
    for name, export_type in EXPORT_TYPES.items():
        deployed = tables[name]
        assert deployed["Columns"] == list(export_type.columns)
        assert deployed["Description"] == export_type.description
        runtime = table_input(name, export_type.columns, "bucket-placeholder", export_type.description)
        assert deployed["Fingerprint"] == fingerprint(runtime)


def test_every_view_is_deployed_with_the_sql_the_local_engine_runs(synth: Synthesized) -> None:
    deployed = glue_tables(synth, "VIRTUAL_VIEW")
    expected = queries.views(DATABASE)
    assert set(deployed) == {v.name for v in expected}
    assert {f"{t}_typed" for t in EXPORT_TYPES} <= set(deployed)
    snapshots = {k for k, t in EXPORT_TYPES.items() if t.semantics is ResultSemantics.SNAPSHOT}
    assert {n.removesuffix("_latest") for n in deployed if n.endswith("_latest")} == snapshots
    local = queries.view_statements(DATABASE)
    for view in expected:
        glue_view = deployed[view.name]
        sql = queries.sql_of_glue_view_text(glue_view["ViewOriginalText"])
        assert sql == view.select
        # Byte for byte: the deployed SELECT, wrapped as CREATE VIEW, is the statement the tests execute.
        assert f'CREATE OR REPLACE VIEW "{DATABASE}"."{view.name}" AS\n{sql}' == local[view.name]
        assert glue_view["Parameters"] == {"presto_view": "true", "comment": "Presto View"}
        columns = glue_view["StorageDescriptor"]["Columns"]
        assert columns == [{"Name": c.name, "Type": c.glue_type} for c in view.columns]


def test_typed_view_column_types_come_from_the_registry(synth: Synthesized) -> None:
    win = {
        c["Name"]: c["Type"]
        for c in glue_tables(synth, "VIRTUAL_VIEW")["win_info_typed"]["StorageDescriptor"]["Columns"]
    }
    assert win == {
        "userid": "string",
        "stackid": "string",
        "haswon": "boolean",
        "participation_date": "timestamp",
        "export_name": "string",
        "created_date": "string",
        "result_id": "string",
        "bad_values": "int",
    }
    assert glue_tables(synth, "VIRTUAL_VIEW")["player_info_user_id_typed"]["StorageDescriptor"]["Columns"][2] == {
        "Name": "value",
        "Type": "double",
    }


def test_named_queries_are_the_saved_queries_byte_for_byte(synth: Synthesized) -> None:
    deployed = named(synth)
    expected = queries.saved_queries(DATABASE)
    assert set(deployed) == {q.name for q in expected}
    assert {
        "WinRatePerGameType",
        "WinRatePerDayAndGameType",
        "PrizeDistribution",
        "CouponsPerDay",
        "ChallengeCompletionPerGameType",
        "ParticipantsAndWinsPerCampaign",
        "NewConnectionsPerDay",
        "BadValues",
    } <= set(deployed)
    for query in expected:
        assert deployed[query.name]["QueryString"] == query.sql
        assert deployed[query.name]["Description"] == query.description
        assert deployed[query.name]["Database"] == DATABASE


def test_saved_queries_depend_on_the_views(synth: Synthesized) -> None:
    resources = synth.raw["Resources"]
    views = {k for k, r in resources.items() if r["Type"] == "AWS::Glue::Table" and "View" in k}
    for query in (r for r in resources.values() if r["Type"] == "AWS::Athena::NamedQuery"):
        assert views <= set(query["DependsOn"])


def test_result_semantics_override_adds_a_latest_view_and_switches_the_queries(tmp_path: Path) -> None:
    synth = synthesize(tmp_path, resultSemantics={"win_info": "snapshot", "player_info_game_type": "delta"})
    views = glue_tables(synth, "VIRTUAL_VIEW")
    assert "win_info_latest" in views
    assert "player_info_game_type_latest" not in views
    win_rate = named(synth)["WinRatePerGameType"]["QueryString"]
    assert '"exportlake"."win_info_latest"' in win_rate
    assert '"exportlake"."player_info_game_type_typed"' in win_rate
    semantics = queries.effective_semantics({"win_info": "snapshot", "player_info_game_type": "delta"})
    assert win_rate == next(q.sql for q in queries.saved_queries(DATABASE, semantics) if q.name == "WinRatePerGameType")
    assert synth.error is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"no_such_type": "snapshot"}, "is not a documented export type"),
        ({"win_info": "sometimes"}, "must be one of"),
        (["win_info"], "must map export types"),
    ],
)
def test_result_semantics_is_validated(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_mapping({"resultSemantics": value})


def test_result_semantics_accepts_json_from_the_command_line() -> None:
    config = Config.from_mapping({"resultSemantics": '{"win_info": "snapshot"}'})
    assert config.result_semantics == (("win_info", "snapshot"),)


def test_deployed_views_run_on_the_local_engine(synth: Synthesized, tmp_path: Path) -> None:
    """The SELECT stored in each Glue view binds on DuckDB over empty tables of the registry's shape."""
    lake = LakeQuery(None, None, DATABASE, tmp_path, derived_views=lambda _db: {})
    con = lake.connection
    for t in EXPORT_TYPES.values():
        cols = ", ".join(
            f'CAST(NULL AS VARCHAR) AS "{c}"' for c in (*t.columns, "export_name", "created_date", "result_id")
        )
        con.execute(f'CREATE TABLE "{DATABASE}"."{t.key}" AS SELECT {cols} WHERE false')
    # The pointer table, as the stack declares it (its columns from the template).
    pointers = glue_tables(synth, "EXTERNAL_TABLE")[LATEST_TABLE]
    cols = ", ".join(f'CAST(NULL AS VARCHAR) AS "{c["Name"]}"' for c in pointers["StorageDescriptor"]["Columns"])
    con.execute(f'CREATE TABLE "{DATABASE}"."{LATEST_TABLE}" AS SELECT {cols} WHERE false')
    for name, view in glue_tables(synth, "VIRTUAL_VIEW").items():
        sql = queries.sql_of_glue_view_text(view["ViewOriginalText"])
        con.execute(f'CREATE VIEW "{DATABASE}"."{name}" AS {sql}')
        described = con.execute(f'DESCRIBE "{DATABASE}"."{name}"').fetchall()
        assert [d[0] for d in described] == [c["Name"] for c in view["StorageDescriptor"]["Columns"]]
    for query in named(synth).values():
        lake.query(query["QueryString"])
