"""Person keys, the id index format and generation keys (domain.erasure): no I/O."""

from __future__ import annotations

import random

import pytest

from exportlake.domain.erasure import (
    HEADER_BYTES,
    decode_index,
    encode_index,
    generation_id,
    index_hits,
    index_key,
    parse_generation_id,
    person_key,
    raw_key_at,
    request_id,
    result_prefixes,
    short_key,
    validate_person_id,
)
from exportlake.domain.errors import ValidationError
from exportlake.domain.location import ResultLocation
from exportlake.domain.timefmt import parse_time


def test_person_keys_depend_on_salt_column_and_value_and_hide_the_value() -> None:
    a = person_key(b"salt-1", "userid", "abc")
    assert a == person_key(b"salt-1", "userid", "abc")
    assert len(a) == 64 and "abc" not in a
    assert a != person_key(b"salt-2", "userid", "abc")
    assert a != person_key(b"salt-1", "client_id", "abc")
    assert a != person_key(b"salt-1", "userid", "abd")


def test_person_ids_are_printable_text_kept_exactly() -> None:
    assert validate_person_id(" padded ") == " padded "
    for bad in ("", "a\nb", "x" * 257, 12, None):
        with pytest.raises(ValidationError):
            validate_person_id(bad)


def test_the_index_answers_membership_reading_only_the_header_and_one_bucket() -> None:
    rng = random.Random(3)
    keys = {short_key(person_key(b"s", "userid", f"u{i}")) for i in range(5000)}
    body = encode_index(keys)
    assert decode_index(body) == keys
    reads: list[tuple[int, int]] = []

    def read(a: int, b: int) -> bytes:
        reads.append((a, b))
        return body[a:b]

    present = rng.sample(sorted(keys), 3)
    absent = [short_key(person_key(b"s", "userid", f"nobody{i}")) for i in range(3)]
    assert index_hits(read, [*present, *absent]) == set(present)
    assert reads[0] == (0, HEADER_BYTES)
    read_bytes = sum(b - a for a, b in reads)
    assert read_bytes < HEADER_BYTES + 6 * 8 * 60  # header + six buckets of ~20 keys, never the whole index
    assert len(body) > 5 * read_bytes


def test_an_empty_index_and_a_foreign_object() -> None:
    body = encode_index([])
    assert decode_index(body) == set()
    assert index_hits(lambda a, b: body[a:b], [1, 2]) == set()
    with pytest.raises(ValidationError):
        index_hits(lambda a, b: b"not an index".ljust(HEADER_BYTES)[a:b], [1])


def test_generations_are_sibling_keys_that_never_meet_another_result() -> None:
    assert generation_id("abc", 0) == "abc"
    assert generation_id("abc", 2) == "abc.g2"
    assert parse_generation_id("abc.g2") == ("abc", 2)
    assert parse_generation_id("abc") == ("abc", 0)
    for bad in ("abc.g0", "abc.x1", "a/b"):
        with pytest.raises(ValidationError):
            parse_generation_id(bad)
    created = parse_time("2026-01-02T03:04:05Z")
    assert created is not None
    g0 = ResultLocation.of("win_info", "win-info", created, "abc")
    g1 = ResultLocation.of("win_info", "win-info", created, "abc", 1)
    assert g0.prefix.endswith("/result_id=abc/") and g1.prefix.endswith("/result_id=abc.g1/")
    assert not g1.prefix.startswith(g0.prefix)  # Athena reads a location recursively: never nested
    assert g1.values == g0.values
    prefixes = result_prefixes(g0.prefix, "win-info", "abc")
    owned = [g0.part_key(0), g1.part_key(3), raw_key_at("win-info", "abc", 0), raw_key_at("win-info", "abc", 4)]
    owned += [index_key("win-info", "abc", 0), index_key("win-info", "abc", 1), "manifests/win-info/abc.json"]
    for key in owned:
        assert any(key.startswith(p) for p in prefixes), key
    other = ResultLocation.of("win_info", "win-info", created, "abcd")
    foreign = [other.part_key(0), raw_key_at("win-info", "abcd", 0), index_key("win-info", "abcd", 0)]
    foreign += ["manifests/win-info/abcd.json"]
    for key in foreign:
        assert not any(key.startswith(p) for p in prefixes), key


def test_a_request_is_named_by_its_persons() -> None:
    assert request_id(["b", "a"]) == request_id(["a", "b", "a"])
    assert request_id(["a"]) != request_id(["b"])
