"""Byte constants and patterns shared by the document cutter, the strict decoder and the fast path."""

from __future__ import annotations

import re

import pyarrow as pa

_WS = re.compile(rb"[ \t\n\r]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
# A whole string, a bracket, or a lone quote (a string that does not end inside the buffer).
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]|"', re.S)
_BYTE_POS = re.compile(r"\(byte (\d+)\)")
_PATH = re.compile(r"`\$\[(\d+)\]([^`]*)`")
_BOM = b"\xef\xbb\xbf"
_UNFIT_NAME = re.compile(r'["\\\x00-\x1f]')  # msgspec refuses these in a Struct field's encoded name
_MAX_KEY_BYTES = 1 << 16

_OPEN_BRACE, _CLOSE_BRACE, _OPEN_BRACKET, _CLOSE_BRACKET = 0x7B, 0x7D, 0x5B, 0x5D
_COMMA, _COLON, _QUOTE = 0x2C, 0x3A, 0x22

#: A decoded range's columns: Python lists (the msgspec path) or Arrow string arrays (the template path).
Columns = list[list[str | None]] | list[pa.Array]
