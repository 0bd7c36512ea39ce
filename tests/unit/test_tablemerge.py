"""The declared/existing table merge (stdlib): added columns kept in order, declared type wins, nothing dropped."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exportlake.adapters.catalog import declared_fingerprint, table_input
from exportlake.domain.errors import ValidationError
from exportlake.domain.schemas import EXPORT_TYPES
from exportlake.domain.tablemerge import (
    DefinitionConflict,
    fingerprint,
    is_current,
    merge_columns,
    merge_table,
    undeclared_columns,
)


def cols(*spec: str) -> list[dict[str, Any]]:
    """``"name"`` or ``"name:type"`` → Glue columns."""
    return [{"Name": s.split(":")[0], "Type": s.split(":")[1] if ":" in s else "string"} for s in spec]


def names(columns: list[dict[str, Any]]) -> list[str]:
    return [c["Name"] for c in columns]


def test_declared_first_then_added_columns_in_their_existing_order() -> None:
    merged = merge_columns(cols("a", "b", "c"), cols("b", "x", "a", "y"))
    assert names(merged) == ["a", "b", "c", "x", "y"]


def test_declared_type_wins_and_an_existing_comment_stays() -> None:
    existing = [{"Name": "a", "Type": "int", "Comment": "by hand"}, {"Name": "x", "Type": "bigint"}]
    merged = merge_columns(cols("a:string"), existing)
    assert merged == [{"Name": "a", "Type": "string", "Comment": "by hand"}, {"Name": "x", "Type": "bigint"}]


def test_nothing_is_dropped_even_when_the_declaration_shrinks() -> None:
    existing = cols("a", "b", "c", "added")
    merged = merge_columns(cols("b"), existing)
    assert set(names(merged)) == set(names(existing))
    assert names(merged) == ["b", "a", "c", "added"]


def test_merge_is_idempotent() -> None:
    declared = table_input("win_info", ["userid", "haswon"], "bucket")
    existing = copy.deepcopy(declared)
    existing["StorageDescriptor"]["Columns"] += cols("new_field")
    existing["Parameters"]["set_by_athena"] = "1"
    once = merge_table(declared, existing)
    assert merge_table(declared, once) == once
    assert is_current(once, once)
    assert undeclared_columns(declared, once) == ("new_field",)


def test_a_missing_table_is_the_declaration_itself() -> None:
    declared = table_input("win_info", ["userid"], "bucket")
    assert merge_table(declared, None) == declared
    assert merge_table(declared, None) is not declared


def test_table_parameters_and_owner_are_kept_declared_values_win() -> None:
    declared = table_input("win_info", ["userid"], "bucket")
    existing = {**copy.deepcopy(declared), "Owner": "ops", "VersionId": "7", "CreateTime": "then"}
    existing["Parameters"] = {**existing["Parameters"], "classification": "json", "projection.enabled": "false"}
    merged = merge_table(declared, existing)
    assert merged["Parameters"]["classification"] == "parquet"  # the declared definition
    assert merged["Parameters"]["projection.enabled"] == "false"  # the table's own
    assert merged["Owner"] == "ops"
    assert "VersionId" not in merged and "CreateTime" not in merged  # not part of a TableInput


def test_is_current_ignores_what_glue_adds_and_sees_a_new_declared_column() -> None:
    declared = table_input("win_info", ["userid"], "bucket")
    existing = {
        **copy.deepcopy(declared),
        "DatabaseName": "db",
        "VersionId": "3",
        "IsRegisteredWithLakeFormation": False,
    }
    existing["StorageDescriptor"]["NumberOfBuckets"] = 0
    assert is_current(merge_table(declared, existing), existing)
    wider = table_input("win_info", ["userid", "stackid"], "bucket")
    assert not is_current(merge_table(wider, existing), existing)


def test_other_partition_keys_or_a_view_of_that_name_are_refused() -> None:
    declared = table_input("win_info", ["userid"], "bucket")
    repartitioned = {**copy.deepcopy(declared), "PartitionKeys": cols("day")}
    with pytest.raises(DefinitionConflict, match="partitioned by"):
        merge_table(declared, repartitioned)
    with pytest.raises(DefinitionConflict, match="VIRTUAL_VIEW"):
        merge_table(declared, {**copy.deepcopy(declared), "TableType": "VIRTUAL_VIEW"})


def test_a_column_declared_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="more than once: a"):
        merge_columns(cols("a", "b", "a"), [])


def test_fingerprint_follows_the_definition_not_the_bucket() -> None:
    t = EXPORT_TYPES["win_info"]
    base = declared_fingerprint(t.table_name, t.columns, t.description)
    assert base == fingerprint(table_input(t.table_name, t.columns, "another-bucket", t.description))
    assert base != declared_fingerprint(t.table_name, (*t.columns, "new_field"), t.description)
    assert base != declared_fingerprint(t.table_name, tuple(reversed(t.columns)), t.description)
    assert base != declared_fingerprint(t.table_name, t.columns, "another description")
    assert len(base) == 64
