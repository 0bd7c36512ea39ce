"""Glue tables and partitions, on moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from exportlake.adapters.catalog import PARQUET_SERDE, GlueCatalog
from exportlake.domain.errors import ValidationError
from exportlake.domain.schemas import EXPORT_TYPES, LATEST_TABLE, PARTITION_KEYS
from exportlake.emulator.provision import provision
from tests.helpers import local_settings


@pytest.fixture
def catalog(aws: None) -> GlueCatalog:
    settings = local_settings()
    provision(settings, boto3.client)
    return GlueCatalog(boto3.client("glue"), settings.glue_database, settings.bucket)


def test_provision_creates_the_ten_tables_from_the_registry(catalog: GlueCatalog) -> None:
    assert sorted(catalog.tables()) == sorted([*EXPORT_TYPES, LATEST_TABLE])
    table = boto3.client("glue").get_table(DatabaseName=catalog.database, Name="win_info")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == list(EXPORT_TYPES["win_info"].columns)
    assert {c["Type"] for c in table["StorageDescriptor"]["Columns"]} == {"string"}
    assert [k["Name"] for k in table["PartitionKeys"]] == list(PARTITION_KEYS)
    assert table["StorageDescriptor"]["Location"] == "s3://exportlake-local/lake/win_info/"
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert table["Parameters"]["partition_filtering.enabled"] == "true"
    indexes = boto3.client("glue").get_partition_indexes(DatabaseName=catalog.database, TableName="win_info")
    assert [(i["IndexName"], [k["Name"] for k in i["Keys"]]) for i in indexes["PartitionIndexDescriptorList"]] == [
        ("by_created_date", ["created_date"])
    ]
    pointers = boto3.client("glue").get_table(DatabaseName=catalog.database, Name=LATEST_TABLE)["Table"]
    assert pointers["PartitionKeys"] == []
    assert pointers["StorageDescriptor"]["Location"] == "s3://exportlake-local/latest/"


def test_provision_is_idempotent(catalog: GlueCatalog) -> None:
    provision(local_settings(), boto3.client)
    assert len(catalog.tables()) == 11  # the ten raw tables and latest_results
    indexes = boto3.client("glue").get_partition_indexes(DatabaseName=catalog.database, TableName="win_info")
    assert len(indexes["PartitionIndexDescriptorList"]) == 1


def test_partition_registration_already_exists_is_success(catalog: GlueCatalog) -> None:
    values = ["win-info", "2024-06-20", "a" * 25]
    loc = "s3://exportlake-local/lake/win_info/export_name=win-info/created_date=2024-06-20/result_id=" + "a" * 25 + "/"
    cols = list(EXPORT_TYPES["win_info"].columns)
    assert catalog.partition_exists("win_info", values) is False
    assert catalog.register_partition("win_info", values, loc, cols) is True
    assert catalog.register_partition("win_info", values, loc, cols) is False
    assert catalog.partition_exists("win_info", values) is True
    [part] = catalog.partitions("win_info")
    assert part["Values"] == values and part["StorageDescriptor"]["Location"] == loc


def test_new_table_and_added_columns(catalog: GlueCatalog) -> None:
    assert catalog.columns("referral_info") is None
    catalog.create_table("referral_info", ["userid", "referrer_id"])
    assert catalog.columns("referral_info") == ["userid", "referrer_id"]
    assert catalog.add_columns("referral_info", ["referred_at", "userid"]) == ["userid", "referrer_id", "referred_at"]
    assert catalog.columns("referral_info") == ["userid", "referrer_id", "referred_at"]


def test_unsafe_names_never_reach_glue(catalog: GlueCatalog) -> None:
    with pytest.raises(ValidationError):
        catalog.create_table("x; drop", ["a"])
    with pytest.raises(ValidationError):
        catalog.create_table("ok_table", ["bad-column"])


class RacingGlue:
    """Glue where another copier adds ``field`` to win_info between our read and our write, once."""

    def __init__(self, catalog: GlueCatalog, field: str) -> None:
        self.glue = boto3.client("glue")
        self.database = catalog.database
        self.field = field
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.glue, name)

    def update_table(self, **kwargs: Any) -> Any:
        if not self.raced:
            self.raced = True
            GlueCatalog(self.glue, self.database, "exportlake-local").add_columns("win_info", [self.field])
            raise ClientError({"Error": {"Code": "ConcurrentModificationException"}}, "UpdateTable")
        return self.glue.update_table(**kwargs)


def test_add_columns_retries_when_the_table_changed_meanwhile(catalog: GlueCatalog) -> None:
    racing = GlueCatalog(RacingGlue(catalog, "other_field"), catalog.database, "exportlake-local")
    merged = racing.add_columns("win_info", ["campaign_code"])
    assert merged[-2:] == ["other_field", "campaign_code"]
    assert catalog.columns("win_info")[-2:] == ["other_field", "campaign_code"]  # type: ignore[index]


def test_provision_again_keeps_the_columns_the_runtime_added(catalog: GlueCatalog) -> None:
    """Local provision merges like the deployed stack: declared columns first, added ones kept, none dropped."""
    catalog.add_columns("win_info", ["promo_code"])
    provision(local_settings(), boto3.client)
    assert catalog.columns("win_info") == [*EXPORT_TYPES["win_info"].columns, "promo_code"]


def test_ensure_table_merges_again_when_a_copier_added_a_column_meanwhile(catalog: GlueCatalog) -> None:
    declared = [*EXPORT_TYPES["win_info"].columns, "campaign_code"]
    racing = GlueCatalog(RacingGlue(catalog, "copier_field"), catalog.database, "exportlake-local")
    sync = racing.ensure_table("win_info", declared, EXPORT_TYPES["win_info"].description)
    assert (sync.action, sync.undeclared) == ("updated", ("copier_field",))
    assert catalog.columns("win_info") == [*declared, "copier_field"]
