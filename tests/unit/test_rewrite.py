"""The raw original without some persons: every kept record byte for byte (convert.rewrite), no I/O."""

from __future__ import annotations

import json

import pytest

from exportlake.convert.rewrite import filter_document
from exportlake.domain.erasing import index_body
from exportlake.domain.erasure import decode_index, person_key, short_key
from exportlake.domain.errors import DocumentError

# Odd but valid records: spacing, escapes, a number id, nulls, unicode, nested values, a missing id.
RECORDS = [
    b'{"userid": "u1", "coupon_name": "  Ten %", "received_date": "2026-01-01 10:00:00"}',
    b'{"userid":"u2","coupon_name":"caf\\u00e9 \\"x\\"","received_date":null}',
    b'{ "userid" : 12345 , "coupon_name" : "n", "extra": {"userid": "u2"} }',
    b'{"coupon_name": "no user"}',
    b'{"userid": "u2", "coupon_name": "\xe2\x98\x95"}',
    b'{"userid": "u3", "client_id": "crm-1"}',
]


def _document(records: list[bytes]) -> bytes:
    return b'{\n "all_coupons": [\n  ' + b",\n  ".join(records) + b"\n ]\n}"


def test_dropped_persons_go_and_every_other_record_stays_byte_for_byte() -> None:
    out = filter_document(_document(RECORDS), {"userid": {"u2"}})
    kept = [RECORDS[0], RECORDS[2], RECORDS[3], RECORDS[5]]  # the nested "userid" in an extra field is not an id
    for record in kept:
        assert record in out
    for record in (RECORDS[1], RECORDS[4]):
        assert record not in out
    assert json.loads(out) == {"all_coupons": [json.loads(r) for r in kept]}


def test_ids_match_as_the_lake_stores_them_and_by_client_id() -> None:
    out = filter_document(_document(RECORDS), {"userid": {"12345"}, "client_id": {"crm-1"}})  # a number as text
    assert json.loads(out)["all_coupons"] == [json.loads(r) for r in (RECORDS[0], RECORDS[1], RECORDS[3], RECORDS[4])]
    assert filter_document(_document([]), {"userid": {"u1"}}) == b'{"all_coupons": []}'


def test_a_raw_original_that_is_not_an_export_document_is_refused() -> None:
    for bad in (b"[]", b'{"a": [], "b": []}', b'{"a": [1'):
        with pytest.raises(DocumentError):
            filter_document(bad, {"userid": {"u1"}})


def test_the_index_body_holds_the_short_keys_of_every_id_column() -> None:
    salt = b"s" * 32
    body = index_body(salt, {"userid": {"u1", "u2"}, "client_id": {"crm-1"}})
    expected = {
        short_key(person_key(salt, c, v)) for c, v in (("userid", "u1"), ("userid", "u2"), ("client_id", "crm-1"))
    }
    assert decode_index(body) == expected
    assert b"u1" not in body and b"crm-1" not in body  # no clear id in an index
