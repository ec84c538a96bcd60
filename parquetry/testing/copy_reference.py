"""A plain, value-at-a-time PostgreSQL COPY BINARY encoder: the test oracle for the decoders.

It follows the wire format as PostgreSQL's ``*send`` functions define it, one ``struct.pack`` per value,
with no shared code with the decoders, so that a property test of "encode with this, decode with the
fast decoder, compare with the Python values" checks the decoder against an independent reading of the
format. It is slow by design: clarity over speed.

Python values per PostgreSQL type:
bool -> bool; int2/int4/int8/oid -> int; float4/float8 -> float; numeric -> decimal.Decimal (NaN and
Infinity allowed); money -> int (minor units); text family/json/xml/enum -> str; jsonb -> str (JSON text);
bytea -> bytes; uuid -> uuid.UUID; date -> datetime.date or the strings 'infinity'/'-infinity';
timestamp -> naive datetime or 'infinity'/'-infinity'; timestamptz -> aware datetime or infinities;
time -> datetime.time; timetz -> (datetime.time, utc_offset_seconds_east); interval -> (months, days,
microseconds); arrays -> nested lists (None for NULL elements).
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from parquetry.pgcopy.types import PgColumn, PgType

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
PG_EPOCH_DATE = dt.date(2000, 1, 1)
PG_EPOCH = dt.datetime(2000, 1, 1)
PG_EPOCH_UTC = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)


def decode_in_pieces(
    data: bytes, columns: list[PgColumn], cuts: Sequence[int], batch_rows: int, **decoder_options: Any
) -> Any:
    """Feed ``data`` to a :class:`CopyDecoder` cut at ``cuts`` (clamped, deduplicated) and return the
    table of every batch: what a stream read in arbitrary pieces decodes to. Checks the batch size."""
    import pyarrow as pa

    from parquetry.pgcopy.decode import CopyDecoder

    decoder = CopyDecoder(columns, source="pieces", batch_rows=batch_rows, **decoder_options)
    batches: list[pa.RecordBatch] = []
    prev = 0
    for cut in [*sorted({min(max(c, 0), len(data)) for c in cuts}), len(data)]:
        batches += decoder.feed(data[prev:cut])
        prev = cut
    batches += decoder.finish()
    assert all(b.num_rows <= batch_rows for b in batches), "a batch exceeds batch_rows"
    return pa.Table.from_batches(batches, schema=decoder.schema)


def header(extension: bytes = b"") -> bytes:
    return SIGNATURE + struct.pack(">ii", 0, len(extension)) + extension


TRAILER = struct.pack(">h", -1)


def encode_row(columns: Sequence[PgColumn], row: Sequence[Any]) -> bytes:
    """One tuple: int16 field count, then per field an int32 length (-1 = NULL) and the value bytes."""
    if len(row) != len(columns):
        raise ValueError(f"row has {len(row)} values for {len(columns)} columns")
    parts = [struct.pack(">h", len(columns))]
    for col, value in zip(columns, row, strict=True):
        parts.append(encode_field(col.type, value))
    return b"".join(parts)


def encode_copy_binary(columns: Sequence[PgColumn], rows: Iterable[Sequence[Any]]) -> bytes:
    """A complete stream: header, every row, trailer."""
    return header() + b"".join(encode_row(columns, r) for r in rows) + TRAILER


def encode_field(t: PgType, value: Any) -> bytes:
    if value is None:
        return struct.pack(">i", -1)
    body = encode_value(t, value)
    return struct.pack(">i", len(body)) + body


def encode_value(t: PgType, v: Any) -> bytes:
    """The send-function bytes of one non-NULL value."""
    if t.kind == "array":
        return _array(t, v)
    if t.kind == "enum":
        return v.encode()
    c = t.codec
    if c == "bool":
        return b"\x01" if v else b"\x00"
    if c == "int2":
        return struct.pack(">h", v)
    if c == "int4":
        return struct.pack(">i", v)
    if c in ("int8", "money"):
        return struct.pack(">q", v)
    if c == "oid":
        return struct.pack(">I", v)
    if c == "float4":
        return struct.pack(">f", v)
    if c == "float8":
        return struct.pack(">d", v)
    if c in ("text", "varchar", "bpchar", "name", "json", "xml"):
        return v.encode()
    if c == "jsonb":
        return b"\x01" + v.encode()
    if c == "bytea":
        return bytes(v)
    if c == "uuid":
        return v.bytes if isinstance(v, uuid.UUID) else bytes(v)
    if c == "date":
        if v == "infinity":
            return struct.pack(">i", INT32_MAX)
        if v == "-infinity":
            return struct.pack(">i", INT32_MIN)
        return struct.pack(">i", (v - PG_EPOCH_DATE).days)
    if c in ("timestamp", "timestamptz"):
        if v == "infinity":
            return struct.pack(">q", INT64_MAX)
        if v == "-infinity":
            return struct.pack(">q", INT64_MIN)
        delta = v - (PG_EPOCH_UTC if c == "timestamptz" else PG_EPOCH)
        return struct.pack(">q", (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if c == "time":
        return struct.pack(">q", _time_us(v))
    if c == "timetz":
        t_value, offset_east = v
        return struct.pack(">qi", _time_us(t_value), -offset_east)
    if c == "interval":
        months, days, micros = v
        return struct.pack(">qii", micros, days, months)
    if c == "numeric":
        return encode_numeric(v)
    raise NotImplementedError(f"reference encoder has no rule for {t.name}")


def _time_us(t: dt.time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def encode_numeric(v: decimal.Decimal, dscale: int | None = None) -> bytes:
    """numeric_send: int16 ndigits, int16 weight, uint16 sign, int16 dscale, base-10000 digits."""
    if v.is_nan():
        return struct.pack(">hhHh", 0, 0, 0xC000, 0)
    if v.is_infinite():
        return struct.pack(">hhHh", 0, 0, 0xF000 if v < 0 else 0xD000, 0)
    sign, digits, exponent = v.as_tuple()
    assert isinstance(exponent, int)
    coefficient = int("".join(map(str, digits)) or "0")
    if dscale is None:
        dscale = max(0, -exponent)
    frac_groups = (max(0, -exponent) + 3) // 4
    n = coefficient * 10 ** (exponent + 4 * frac_groups)
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    groups.reverse()
    weight = len(groups) - 1 - frac_groups
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        return struct.pack(">hhHh", 0, 0, 0, dscale)
    return struct.pack(f">hhHh{len(groups)}h", len(groups), weight, 0x4000 if sign else 0, dscale, *groups)


def _array(t: PgType, v: list) -> bytes:
    assert t.element is not None
    dims: list[int] = []
    probe: Any = v
    for _ in range(t.ndims):
        if not isinstance(probe, list):
            raise ValueError("array nesting shallower than ndims")
        dims.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    if not dims or 0 in dims:
        return struct.pack(">iii", 0, 0, t.element.oid)
    flat: list[Any] = v
    for _ in range(t.ndims - 1):
        flat = [x for sub in flat for x in sub]
    has_null = any(x is None for x in flat)
    out = [struct.pack(">iii", t.ndims, 1 if has_null else 0, t.element.oid)]
    out += [struct.pack(">ii", d, 1) for d in dims]
    out += [encode_field(t.element, x) for x in flat]
    return b"".join(out)
