"""Glue partition indexes for the local emulator: moto 5.2 answers GetPartitionIndexes with an empty list always and
does not implement CreatePartitionIndex. This adds both (and CreateTable's ``PartitionIndexes``), kept on moto's
table objects, so ``exportlake provision`` and the tests run the same index code as the deployed stack.

Local mode only (moto is a dev dependency); ``install()`` is idempotent.
"""

from __future__ import annotations

from typing import Any

_INDEXES = "_exportlake_partition_indexes"


def _descriptor(index: dict[str, Any], table: Any) -> dict[str, Any]:
    types = {k["Name"]: k.get("Type", "string") for k in table.as_dict().get("PartitionKeys", [])}
    return {
        "IndexName": index["IndexName"],
        "Keys": [{"Name": k, "Type": types.get(k, "string")} for k in index["Keys"]],
        "IndexStatus": "ACTIVE",
    }


def install() -> None:
    """Teach moto's Glue responses partition indexes (no-op when already done)."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.glue.exceptions import AlreadyExistsException
    from moto.glue.responses import GlueResponse

    if getattr(GlueResponse, "_exportlake_indexes", False):
        return
    original_create_table = GlueResponse.create_table

    def indexes_of(self: Any, database: str, name: str) -> list[dict[str, Any]]:
        table = self.glue_backend.get_table(database, name)  # raises EntityNotFound as Glue does
        found: list[dict[str, Any]] = table.__dict__.setdefault(_INDEXES, [])
        return found

    def create_table(self: Any) -> Any:
        result = original_create_table(self)
        wanted = self.parameters.get("PartitionIndexes") or []
        if wanted:
            indexes_of(self, self.parameters["DatabaseName"], self.parameters["TableInput"]["Name"]).extend(
                {"IndexName": i["IndexName"], "Keys": list(i["Keys"])} for i in wanted
            )
        return result

    def create_partition_index(self: Any) -> Any:
        params = self.parameters
        indexes = indexes_of(self, params["DatabaseName"], params["TableName"])
        index = params["PartitionIndex"]
        if any(i["IndexName"] == index["IndexName"] for i in indexes):
            raise AlreadyExistsException(f"Index {index['IndexName']} already exists")
        indexes.append({"IndexName": index["IndexName"], "Keys": list(index["Keys"])})
        return EmptyResult()

    def get_partition_indexes(self: Any) -> Any:
        params = self.parameters
        table = self.glue_backend.get_table(params["DatabaseName"], params["TableName"])
        listed = [_descriptor(i, table) for i in table.__dict__.get(_INDEXES, [])]
        return ActionResult({"PartitionIndexDescriptorList": listed})

    GlueResponse.create_table = create_table  # type: ignore[method-assign]
    GlueResponse.create_partition_index = create_partition_index  # type: ignore[attr-defined]
    GlueResponse.get_partition_indexes = get_partition_indexes  # type: ignore[method-assign]
    GlueResponse._exportlake_indexes = True  # type: ignore[attr-defined]
