"""Sample data: realistic shapes, determinism, joins across types, and streaming that equals the whole."""

from __future__ import annotations

import json
import re
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportlake.domain.schemas import EXPORT_TYPES
from exportlake.emulator import sampledata
from tests.helpers import property_examples

ID = re.compile(r"^[a-z0-9]{25}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{3})?$")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")
ID_FIELDS = {"userid", "stackinstanceid", "stackid", "campaign_code", "game_id", "prizeid", "referrer_id"}
DATE_FIELDS = {"participation_date", "received_date", "claimed_date", "referred_at"}


@pytest.mark.parametrize("key", sampledata.known_keys())
def test_records_have_the_registry_columns_and_realistic_values(key: str) -> None:
    records = sampledata.generate_records(key, 300, seed=1)
    columns = sampledata.columns_of(key)
    assert len(records) == 300
    for record in records:
        assert tuple(record) == columns
        for name, value in record.items():
            if name == "claimed_date" and value is None:
                continue
            assert isinstance(value, str), (name, value)
            if name in ID_FIELDS:
                assert ID.match(value), (name, value)
            elif name in DATE_FIELDS:
                assert DATE.match(value), (name, value)
            elif name in ("campaign_start", "campaign_end"):
                assert ISO.match(value), (name, value)
            elif name in ("haswon", "hascompleted"):
                assert value in ("0", "1")
            elif name == "value":
                float(value)
            elif name == "game_type":
                assert value in sampledata.GAME_TYPES
            elif name == "prize_type":
                assert value in sampledata.PRIZE_TYPES


def test_registry_types_are_all_covered() -> None:
    assert set(EXPORT_TYPES) <= set(sampledata.known_keys())
    assert "referral_info" not in EXPORT_TYPES  # the extra type is really unknown to the registry


def test_awkward_values_appear() -> None:
    prizes = sampledata.generate_records("gamification_prize_user_id", 300, seed=3)
    assert any(r["claimed_date"] is None for r in prizes)
    assert any(r["claimed_date"] and "." in r["claimed_date"] for r in prizes)
    coupons = sampledata.generate_records("all_coupons", 300, seed=3)
    assert any(r["coupon_name"].startswith(" ") for r in coupons)
    text = json.dumps(
        [sampledata.generate_records(k, 200, seed=3) for k in sampledata.known_keys()], ensure_ascii=False
    )
    for needle in ("é", "ü", "☕", '\\"', "\\\\", "}", "]"):
        assert needle in text, needle
    win = sampledata.generate_records("win_info", 300, seed=3)
    assert {r["haswon"] for r in win} == {"0", "1"}


def test_ids_join_across_types() -> None:
    games = sampledata.generate_records("player_info_game_type", 200, seed=5)
    challenge_games = sampledata.generate_records("challenges_game_type", 200, seed=6)
    wins = sampledata.generate_records("win_info", 200, seed=7)
    assert {r["stackid"] for r in wins} <= {r["stackid"] for r in games}
    assert {r["stackid"] for r in wins} <= {r["stackid"] for r in challenge_games}
    participations = sampledata.generate_records("player_info_user_id", 200, seed=8)
    assert {r["stackinstanceid"] for r in participations} <= {r["stackinstanceid"] for r in games}
    # One instance always maps to the same stack and game type, whichever document says so.
    mapping = {r["stackinstanceid"]: (r["stackid"], r["game_type"]) for r in games}
    assert all(mapping[r["stackinstanceid"]] == (r["stackid"], r["game_type"]) for r in challenge_games)
    won = sampledata.generate_records("gamification_prize_user_id", 200, seed=9)
    catalogue = sampledata.generate_records("gamification_prize_prize_type", 200, seed=10)
    by_prize = {r["prizeid"]: r["game_id"] for r in catalogue}
    assert all(by_prize[r["prizeid"]] == r["game_id"] for r in won)
    connections = sampledata.generate_records("user_base_connections", 500, seed=11)
    assert {r["userid"] for r in connections} & {r["userid"] for r in wins}
    assert {r["userid"] for r in wins} <= set(sampledata.users())


def test_deterministic_and_seed_dependent() -> None:
    assert sampledata.document_bytes("win_info", 50, 4) == sampledata.document_bytes("win_info", 50, 4)
    assert sampledata.generate_records("win_info", 50, 4) != sampledata.generate_records("win_info", 50, 5)
    # n is not part of the stream: a smaller document is a prefix of a larger one.
    assert sampledata.generate_records("win_info", 100, 4)[:30] == sampledata.generate_records("win_info", 30, 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [0, 1, 17])
def test_document_styles_equal_json_dumps(seed: int, n: int) -> None:
    records = sampledata.generate_records("all_coupons", n, seed)
    raw = sampledata.document_bytes("all_coupons", n, seed)
    if sampledata.is_pretty(n, seed):
        expected = json.dumps({"all_coupons": records}, ensure_ascii=False, indent=2)
        assert raw.decode() == expected
    elif seed % 3 == 0:
        assert raw.decode() == json.dumps({"all_coupons": records}, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(raw) == {"all_coupons": records}
    assert raw.decode("utf-8")  # valid UTF-8, non-ASCII kept as is


@settings(max_examples=property_examples(60), deadline=None)
@given(
    key=st.sampled_from(sampledata.known_keys()),
    n=st.integers(min_value=0, max_value=60),
    seed=st.integers(min_value=0, max_value=2**31),
    chunk_size=st.integers(min_value=1, max_value=5000),
)
def test_streamed_bytes_equal_whole_document(key: str, n: int, seed: int, chunk_size: int) -> None:
    chunks = list(sampledata.iter_document_bytes(key, n, seed, chunk_size=chunk_size))
    whole = b"".join(chunks)
    assert whole == sampledata.document_bytes(key, n, seed)
    assert all(len(c) == chunk_size for c in chunks[:-1]) and 0 < len(chunks[-1]) <= chunk_size
    assert json.loads(whole) == {key: sampledata.generate_records(key, n, seed)}
    assert sampledata.document_length(key, n, seed) == len(whole)


def test_unknown_key_needs_columns_and_gets_plausible_values() -> None:
    with pytest.raises(KeyError):
        sampledata.generate_records("loyalty_points", 3, 0)
    cols = ("userid", "points_id", "earned_at", "is_active", "label")
    records = sampledata.generate_records("loyalty_points", 40, 0, columns=cols)
    assert all(tuple(r) == cols for r in records)
    assert all(ID.match(r["points_id"]) and DATE.match(r["earned_at"]) for r in records)
    raw = sampledata.document_bytes("loyalty_points", 40, 0, columns=cols)
    assert json.loads(raw) == {"loyalty_points": records}


@pytest.mark.slow  # streams a large document
def test_streaming_memory_is_bounded_by_the_chunk_not_the_document() -> None:
    n, chunk = 30_000, 1 << 18
    tracemalloc.start()
    try:
        total = 0
        for piece in sampledata.iter_document_bytes("win_info", n, 0, chunk_size=chunk):
            total += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 4_000_000  # the document is far bigger than the peak below
    assert peak < 3 * chunk + 1_000_000


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        sampledata.generate_records("win_info", -1, 0)
    with pytest.raises(ValueError):
        next(sampledata.iter_document_bytes("win_info", 1, 0, chunk_size=0))
