"""The export types of the Automated Exports API, as data: one registry for the runtime and the CDK app."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Partition keys of every export table, in order. Each result is its own partition, so registering the
#: partition is the single step that makes a whole result visible to Athena (and never half of it).
PARTITION_KEYS: tuple[str, ...] = ("export_name", "created_date", "result_id")

#: S3 layout, relative to the lake bucket. Only ``TABLES_PREFIX`` holds data Athena reads; raw originals and
#: manifests sit beside it so a table location never sees them.
TABLES_PREFIX = "lake"
RAW_PREFIX = "raw"
MANIFESTS_PREFIX = "manifests"
ATHENA_RESULTS_PREFIX = "athena-results"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,127}$")


@dataclass(frozen=True)
class ExportType:
    """One documented export type: the document's top-level key and its record fields, in order."""

    key: str
    columns: tuple[str, ...]
    description: str

    @property
    def table_name(self) -> str:
        """The Glue/Athena table of this type (the document key, already a valid name)."""
        return self.key


EXPORT_TYPES: dict[str, ExportType] = {
    t.key: t
    for t in (
        ExportType(
            "campaign_info",
            ("campaign_name", "campaign_code", "campaign_start", "campaign_end"),
            "Basic campaign details",
        ),
        ExportType("user_base_connections", ("userid", "client_id"), "User base from third-party registration"),
        ExportType(
            "player_info_user_id",
            ("userid", "stackinstanceid", "value", "participation_date"),
            "Player participation",
        ),
        ExportType("player_info_game_type", ("stackinstanceid", "stackid", "game_type"), "Game of each stack instance"),
        ExportType("win_info", ("userid", "stackid", "haswon", "participation_date"), "Wins per user and campaign"),
        ExportType("all_coupons", ("userid", "coupon_name", "received_date"), "Coupons created for users"),
        ExportType(
            "challenges_user_id",
            ("userid", "stackinstanceid", "hascompleted", "participation_date"),
            "User progress in challenges",
        ),
        ExportType("challenges_game_type", ("stackinstanceid", "stackid", "game_type"), "Game of each challenge"),
        ExportType(
            "gamification_prize_user_id",
            ("userid", "game_id", "game_name", "prizeid", "claimed_date"),
            "Prizes won by users",
        ),
        ExportType(
            "gamification_prize_prize_type",
            ("prizeid", "game_id", "prize_name", "prize_type"),
            "Prize catalogue",
        ),
    )
}


def is_valid_name(name: str) -> bool:
    """True if ``name`` is safe as a Glue table or column name (lowercase, letters, digits, underscores)."""
    return bool(_NAME.fullmatch(name))
