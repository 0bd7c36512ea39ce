"""Deterministic, realistic sample records for every Automated Exports type (used by the gateway simulator).

Everything is a pure function of ``(key, n, seed)``: the same arguments give byte-identical documents, so tests can
compare what landed in the lake with :func:`generate_records` without the simulator keeping records in memory.

Ids come from shared pools (users, stacks, stack instances, games, prizes, campaigns) that do not depend on the
seed, so documents of different types and different results join: every ``win_info.stackid`` is a stack that
``player_info_game_type`` / ``challenges_game_type`` describe, every ``prizeid`` a prize of
``gamification_prize_prize_type``, and ``userid`` means the same user everywhere.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from exportlake.domain.schemas import EXPORT_TYPES

Record = dict[str, Any]

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
ID_LENGTH = 25

#: A type the registry does not know, served by the simulator with ``include_unknown_type`` (the API says new
#: types can appear at any time; the pipeline must cope without a code change).
EXTRA_TYPES: dict[str, tuple[str, ...]] = {"referral_info": ("userid", "referrer_id", "referred_at")}

# Pool sizes: small enough that a default result (50–200 records) covers every stack and prize, so joins in
# tests always find partners; large enough that user ids look varied.
N_USERS = 2000
N_CAMPAIGNS = 12
N_STACKS = 40
N_INSTANCES = 160
N_GAMES = 16
N_PRIZES = 40

#: Above this many records a document is always compact (whitespace variation is only for parser coverage).
PRETTY_MAX_RECORDS = 10_000

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 540 * 24 * 3600  # participation dates spread over ~18 months

GAME_TYPES = ("gamification", "lottery", "scratch-and-win", "spin-the-wheel", "quiz", "instant-win", "memory")
PRIZE_TYPES = ("no-prize", "voucher", "coupon", "physical", "points", "digital")
_CAMPAIGN_NAMES = (
    "Summer Splash",
    "Winter Wonderland",
    "Back to School",
    "Black Friday Blast",
    "Zomeractie – Café Édition ☕",
    "Oktoberfest Über-Deal",
    "Lente Loterij",
    'The "Big" Giveaway',
    "Kerst 🎄 Countdown",
    "Spring {Bonus} Week",
    "Festival [Live]",
    "Rentrée à l'école",
)
_GAME_NAMES = (
    "Spin & Win",
    "Scratch Card Deluxe",
    "Memory Match",
    "Daily Quiz",
    "Lucky Draw",
    "Pac-Prize",
    "Glücksrad",
    "Chasse aux œufs 🥚",
    'Say "Cheese"',
    "Path\\Finder",
    "Treasure Hunt",
    "Coupon Catcher",
    "Wheel of Fortune",
    "Crack the Code",
    "Penalty Shootout ⚽",
    "Advent Calendar",
)
_PRIZE_NAMES = (
    "No prize",
    "€5 voucher",
    "10% discount",
    "Free coffee ☕",
    "Cinema ticket",
    "Tote bag",
    "100 points",
    "Café crème",
    "Bonus spin",
    'Gift card "Gold"',
    "Headphones",
    "Free shipping",
    "Mystery box }",
    "Sticker pack ]",
    "Backslash \\ mug",
    "Weekend trip ✈️",
)
_COUPON_NAMES = (
    "exact-code-no-exp",
    "SUMMER10",
    "welcome-bonus",
    "free-shipping",
    "BF-2024-50",
    "koffie-gratis",
    "rabatt-für-dich",
    "promo_crème",
)
_EXTERNAL_PREFIXES = ("fb_", "google-oauth2|", "apple.", "auth0|", "")
_WORDS = ("alpha", "beta", "gamma", "delta", "café", "über", "zeta", "theta", "kappa", "lambda")


def _pool_id(kind: str, index: int) -> str:
    """A stable 25-character lowercase alphanumeric id for member ``index`` of pool ``kind``."""
    number = int.from_bytes(hashlib.blake2b(f"{kind}:{index}".encode(), digest_size=20).digest(), "big")
    chars = []
    for _ in range(ID_LENGTH):
        number, rest = divmod(number, 36)
        chars.append(ID_ALPHABET[rest])
    return "".join(chars)


@cache
def _pool(kind: str, size: int) -> tuple[str, ...]:
    return tuple(_pool_id(kind, i) for i in range(size))


def users() -> tuple[str, ...]:
    """The shared user ids (every ``userid`` in every type comes from here)."""
    return _pool("user", N_USERS)


def stacks() -> tuple[str, ...]:
    """The shared stack ids (games/campaign stacks)."""
    return _pool("stack", N_STACKS)


def stack_instances() -> tuple[str, ...]:
    """The shared stack instance ids; instance ``i`` belongs to stack ``i % N_STACKS``."""
    return _pool("stackinstance", N_INSTANCES)


def games() -> tuple[str, ...]:
    """The shared gamification game ids."""
    return _pool("game", N_GAMES)


def prizes() -> tuple[str, ...]:
    """The shared prize ids; prize ``i`` belongs to game ``i % N_GAMES``."""
    return _pool("prize", N_PRIZES)


def campaigns() -> tuple[str, ...]:
    """The shared campaign codes."""
    return _pool("campaign", N_CAMPAIGNS)


def _pick(rng: random.Random, n: int) -> int:
    """A uniform index below ``n`` (one C call; ``randrange`` costs several Python frames per record)."""
    return int(rng.random() * n)


def random_id(rng: random.Random) -> str:
    """A fresh 25-character lowercase alphanumeric id drawn from ``rng``."""
    return "".join(rng.choices(ID_ALPHABET, k=ID_LENGTH))


def _stack_game_type(stack_index: int) -> str:
    return GAME_TYPES[stack_index % len(GAME_TYPES)]


def _prize_type(prize_index: int) -> str:
    # Prize 0 of every game is the consolation "no-prize", as real lotteries have.
    return "no-prize" if prize_index < N_GAMES else PRIZE_TYPES[1 + prize_index % (len(PRIZE_TYPES) - 1)]


def _prize_name(prize_index: int) -> str:
    return "No prize" if prize_index < N_GAMES else _PRIZE_NAMES[1 + prize_index % (len(_PRIZE_NAMES) - 1)]


@cache
def _days() -> tuple[str, ...]:
    return tuple((_EPOCH + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(_SPAN_SECONDS // 86400))


def _date(rng: random.Random, millis: bool = False) -> str:
    # Hand-formatted from a day table: strftime per record was the single biggest cost of a million-record file.
    seconds = int(rng.random() * _SPAN_SECONDS)
    day, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{_days()[day]} {hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{text}.{int(rng.random() * 1000):03d}" if millis else text


def _maybe_millis_date(rng: random.Random) -> str:
    # The API shows both shapes for the same kind of field; a parser must accept either.
    return _date(rng, millis=rng.random() < 0.3)


# ---------------------------------------------------------------------------------------------------------------
# One generator per type: (rng, index of the record) -> record. Field order follows the registry's columns.


def _campaign_info(rng: random.Random, i: int) -> Record:
    c = i % N_CAMPAIGNS
    start = _EPOCH + timedelta(days=30 * c)
    end = start + timedelta(days=14 + 7 * (c % 4))
    return {
        "campaign_name": _CAMPAIGN_NAMES[c],
        "campaign_code": campaigns()[c],
        "campaign_start": start.isoformat(),
        "campaign_end": end.isoformat(),
    }


def _user_base_connections(rng: random.Random, i: int) -> Record:
    u = _pick(rng, N_USERS)
    prefix = _EXTERNAL_PREFIXES[u % len(_EXTERNAL_PREFIXES)]
    return {"userid": users()[u], "client_id": f"{prefix}{_pool_id('external', u)[: 12 + u % 8]}"}


def _player_info_user_id(rng: random.Random, i: int) -> Record:
    value = rng.choice(("0", "10", "250", "1000", "10000", str(rng.randrange(1, 100000)), f"{rng.random() * 100:.2f}"))
    return {
        "userid": users()[_pick(rng, N_USERS)],
        "stackinstanceid": stack_instances()[_pick(rng, N_INSTANCES)],
        "value": value,
        "participation_date": _date(rng),
    }


def _instance_game_type(rng: random.Random, i: int) -> Record:
    # Record i describes instance i (mod the pool) so a document of >= N_INSTANCES records covers every
    # instance and, through it, every stack: joins from win_info always find their stack.
    inst = i % N_INSTANCES
    stack = inst % N_STACKS
    return {
        "stackinstanceid": stack_instances()[inst],
        "stackid": stacks()[stack],
        "game_type": _stack_game_type(stack),
    }


def _win_info(rng: random.Random, i: int) -> Record:
    return {
        "userid": users()[_pick(rng, N_USERS)],
        "stackid": stacks()[_pick(rng, N_STACKS)],
        "haswon": "1" if rng.random() < 0.2 else "0",
        "participation_date": _date(rng, millis=True),
    }


def _all_coupons(rng: random.Random, i: int) -> Record:
    name = rng.choice(_COUPON_NAMES)
    if rng.random() < 0.25:
        name = " " * rng.randint(1, 3) + name  # leading spaces are data: the lake must keep them
    return {"userid": users()[_pick(rng, N_USERS)], "coupon_name": name, "received_date": _maybe_millis_date(rng)}


def _challenges_user_id(rng: random.Random, i: int) -> Record:
    return {
        "userid": users()[_pick(rng, N_USERS)],
        "stackinstanceid": stack_instances()[_pick(rng, N_INSTANCES)],
        "hascompleted": "1" if rng.random() < 0.35 else "0",
        "participation_date": _date(rng),
    }


def _gamification_prize_user_id(rng: random.Random, i: int) -> Record:
    p = _pick(rng, N_PRIZES)
    g = p % N_GAMES
    return {
        "userid": users()[_pick(rng, N_USERS)],
        "game_id": games()[g],
        "game_name": _GAME_NAMES[g],
        "prizeid": prizes()[p],
        "claimed_date": None if rng.random() < 0.3 else _maybe_millis_date(rng),
    }


def _gamification_prize_prize_type(rng: random.Random, i: int) -> Record:
    p = i % N_PRIZES
    return {
        "prizeid": prizes()[p],
        "game_id": games()[p % N_GAMES],
        "prize_name": _prize_name(p),
        "prize_type": _prize_type(p),
    }


def _referral_info(rng: random.Random, i: int) -> Record:
    return {
        "userid": users()[_pick(rng, N_USERS)],
        "referrer_id": users()[_pick(rng, N_USERS)],
        "referred_at": _date(rng),
    }


_GENERATORS: dict[str, Callable[[random.Random, int], Record]] = {
    "campaign_info": _campaign_info,
    "user_base_connections": _user_base_connections,
    "player_info_user_id": _player_info_user_id,
    "player_info_game_type": _instance_game_type,
    "win_info": _win_info,
    "all_coupons": _all_coupons,
    "challenges_user_id": _challenges_user_id,
    "challenges_game_type": _instance_game_type,
    "gamification_prize_user_id": _gamification_prize_user_id,
    "gamification_prize_prize_type": _gamification_prize_prize_type,
    "referral_info": _referral_info,
}


def _generic_value(rng: random.Random, column: str) -> str | None:
    """A plausible value for a column of a type we know nothing about, guessed from its name."""
    if column in ("userid", "user_id") or column.endswith("_userid"):
        return users()[_pick(rng, N_USERS)]
    if column.endswith("id"):
        return random_id(rng)
    if column.endswith(("date", "_at", "time")):
        return _date(rng)
    if column.startswith(("has", "is_")):
        return rng.choice(("0", "1"))
    if column in ("value", "amount", "count", "score"):
        return str(rng.randrange(10000))
    return rng.choice(_WORDS) if rng.random() < 0.95 else None


def known_keys() -> tuple[str, ...]:
    """Every key this module can generate without being told the columns (registry types plus extras)."""
    return tuple(EXPORT_TYPES) + tuple(EXTRA_TYPES)


def columns_of(key: str) -> tuple[str, ...] | None:
    """The columns of a known key, or None."""
    if key in EXPORT_TYPES:
        return EXPORT_TYPES[key].columns
    return EXTRA_TYPES.get(key)


def _rng(key: str, seed: int) -> random.Random:
    # A str seed is hashed with SHA-512 by random.Random: stable across runs and Python versions, unlike hash().
    # n is deliberately not part of it, so a smaller document's records are a prefix of a larger one's.
    return random.Random(f"exportlake-sample:{key}:{seed}")


def iter_records(key: str, n: int, seed: int, columns: Sequence[str] | None = None) -> Iterator[Record]:
    """Yield the ``n`` records of ``(key, seed)`` one at a time (nothing is kept).

    ``columns`` is needed for a key this module does not know; for a known key, columns that differ from the
    registry's reshape its records (known fields kept, others guessed from their names) — a drifting schema.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = _rng(key, seed)
    generator = _GENERATORS.get(key)
    if generator is not None:
        reshape = tuple(columns) if columns and tuple(columns) != columns_of(key) else None
        for i in range(n):
            record = generator(rng, i)
            if reshape is None:
                yield record
            else:
                yield {c: record[c] if c in record else _generic_value(rng, c) for c in reshape}
        return
    if not columns:
        raise KeyError(f"unknown export key {key!r}: pass its columns")
    cols = tuple(columns)
    for _ in range(n):
        yield {c: _generic_value(rng, c) for c in cols}


def generate_records(key: str, n: int, seed: int, columns: Sequence[str] | None = None) -> list[Record]:
    """All ``n`` records of ``(key, seed)`` as a list: exactly ``json.loads`` of the document's array."""
    return list(iter_records(key, n, seed, columns))


def is_pretty(n: int, seed: int) -> bool:
    """Whether the document of ``(n, seed)`` is indented (some small documents are, to exercise parsers)."""
    return n <= PRETTY_MAX_RECORDS and seed % 3 == 2


# One encoder for all records: json.dumps builds a new JSONEncoder on every call when given any option.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_encode = _ENCODER.encode


def _iter_text_parts(key: str, n: int, seed: int, columns: Sequence[str] | None) -> Iterator[str]:
    """The document as text pieces; joined, they equal json.dumps of the whole document in the chosen style."""
    head_key = json.dumps(key, ensure_ascii=False)
    records = iter_records(key, n, seed, columns)
    if is_pretty(n, seed):
        # Same bytes as json.dumps({key: records}, indent=2, ensure_ascii=False), built record by record.
        if n == 0:
            yield "{\n  " + head_key + ": []\n}"
            return
        yield "{\n  " + head_key + ": [\n"
        for i, record in enumerate(records):
            body = json.dumps(record, ensure_ascii=False, indent=2).replace("\n", "\n    ")
            yield ("    " if i == 0 else ",\n    ") + body
        yield "\n  ]\n}"
        return
    # Compact; a newline between records for odd seeds (many exporters write one record per line).
    separator = ",\n" if seed % 3 == 1 else ","
    yield "{" + head_key + ":[" + ("\n" if separator != "," and n else "")
    for i, record in enumerate(records):
        yield (separator if i else "") + _encode(record)
    yield ("\n" if separator != "," and n else "") + "]}"


def iter_document_bytes(
    key: str, n: int, seed: int, chunk_size: int = 1 << 20, columns: Sequence[str] | None = None
) -> Iterator[bytes]:
    """Yield the UTF-8 JSON document ``{"<key>":[...]}`` in chunks of about ``chunk_size`` bytes.

    Memory stays around ``chunk_size`` whatever ``n`` is: records are generated and encoded one at a time.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be > 0")
    buffer: list[bytes] = []
    size = 0
    for part in _iter_text_parts(key, n, seed, columns):
        data = part.encode("utf-8")
        buffer.append(data)
        size += len(data)
        if size >= chunk_size:
            blob = b"".join(buffer)
            # Cut at exactly chunk_size so consumers see regular chunks; the rest starts the next buffer.
            while len(blob) >= chunk_size:
                yield blob[:chunk_size]
                blob = blob[chunk_size:]
            buffer = [blob] if blob else []
            size = len(blob)
    if size:
        yield b"".join(buffer)


def document_bytes(key: str, n: int, seed: int, columns: Sequence[str] | None = None) -> bytes:
    """The whole document in memory (for small documents and tests)."""
    return b"".join(iter_document_bytes(key, n, seed, columns=columns))


def document_length(key: str, n: int, seed: int, columns: Sequence[str] | None = None) -> int:
    """The document's size in bytes, computed by streaming it (constant memory, time linear in ``n``)."""
    return sum(len(chunk) for chunk in iter_document_bytes(key, n, seed, columns=columns))
