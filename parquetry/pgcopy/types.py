"""PostgreSQL column types, resolved far enough to decode COPY BINARY values, and their Arrow mapping.

A ``PgColumn`` is what the extractor knows about one output column: its name, the type as PostgreSQL
reports it (``type_oid``, ``type_name`` from ``format_type``, ``typmod``) and a ``PgType`` that says how
the bytes of one value are laid out: domains are replaced by their base type, arrays know their element
type and declared number of dimensions, ranges their subtype, composites their fields (recursively).

Built-in types (and arrays and ranges of them) resolve from their OID alone, so a ``PgColumn`` can be
written by hand in tests; enums, domains, composites and user ranges come from ``describe.py``.

The mapping to Arrow is exact by construction: every rule either keeps the value bit for bit (or as the
exact text PostgreSQL prints) or refuses it with an error. ``docs/types.md`` states every rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from parquetry.pgcopy.errors import UnsupportedTypeError

__all__ = [
    "BUILTIN_SCALARS",
    "PgColumn",
    "PgField",
    "PgType",
    "arrow_field",
    "arrow_schema",
    "arrow_type",
    "builtin_type",
    "name_with_typmod",
    "numeric_precision_scale",
]

# Built-in scalar types by OID: (codec, format_type name). The codec names the value layout.
BUILTIN_SCALARS: dict[int, tuple[str, str]] = {
    16: ("bool", "boolean"),
    17: ("bytea", "bytea"),
    18: ("char", '"char"'),
    19: ("name", "name"),
    20: ("int8", "bigint"),
    21: ("int2", "smallint"),
    23: ("int4", "integer"),
    25: ("text", "text"),
    26: ("oid", "oid"),
    114: ("json", "json"),
    142: ("xml", "xml"),
    650: ("cidr", "cidr"),
    700: ("float4", "real"),
    701: ("float8", "double precision"),
    774: ("macaddr8", "macaddr8"),
    790: ("money", "money"),
    829: ("macaddr", "macaddr"),
    869: ("inet", "inet"),
    1042: ("bpchar", "character"),
    1043: ("varchar", "character varying"),
    1082: ("date", "date"),
    1083: ("time", "time without time zone"),
    1114: ("timestamp", "timestamp without time zone"),
    1184: ("timestamptz", "timestamp with time zone"),
    1186: ("interval", "interval"),
    1266: ("timetz", "time with time zone"),
    1560: ("bit", "bit"),
    1562: ("varbit", "bit varying"),
    1700: ("numeric", "numeric"),
    2950: ("uuid", "uuid"),
    3802: ("jsonb", "jsonb"),
}

# Built-in range types: range OID -> (subtype OID, name); multiranges -> range OID.
BUILTIN_RANGES: dict[int, tuple[int, str]] = {
    3904: (23, "int4range"),
    3906: (1700, "numrange"),
    3908: (1114, "tsrange"),
    3910: (1184, "tstzrange"),
    3912: (1082, "daterange"),
    3926: (20, "int8range"),
}
BUILTIN_MULTIRANGES: dict[int, tuple[int, str]] = {
    4451: (3904, "int4multirange"),
    4532: (3906, "nummultirange"),
    4533: (3908, "tsmultirange"),
    4534: (3910, "tstzmultirange"),
    4535: (3912, "datemultirange"),
    4536: (3926, "int8multirange"),
}
# Built-in array types: array OID -> element OID.
BUILTIN_ARRAYS: dict[int, int] = {
    1000: 16, 1001: 17, 1002: 18, 1003: 19, 1016: 20, 1005: 21, 1007: 23, 1009: 25, 1028: 26,
    199: 114, 143: 142, 651: 650, 1021: 700, 1022: 701, 775: 774, 791: 790, 1040: 829, 1041: 869,
    1014: 1042, 1015: 1043, 1182: 1082, 1183: 1083, 1115: 1114, 1185: 1184, 1187: 1186, 1270: 1266,
    1561: 1560, 1563: 1562, 1231: 1700, 2951: 2950, 3807: 3802,
    3905: 3904, 3907: 3906, 3909: 3908, 3911: 3910, 3913: 3912, 3927: 3926,
    6150: 4451, 6151: 4532, 6152: 4533, 6153: 4534, 6155: 4535, 6157: 4536,
}  # fmt: skip

STRING_CODECS = frozenset(
    {"text", "varchar", "bpchar", "name", "char", "json", "jsonb", "xml", "enum", "inet", "cidr",
     "macaddr", "macaddr8", "bit", "varbit"}
)  # fmt: skip
KINDS = ("scalar", "enum", "array", "range", "multirange", "composite")
DECIMAL256_MAX_PRECISION = 76


@dataclass(frozen=True)
class PgField:
    """One attribute of a composite type."""

    name: str
    type: PgType


@dataclass(frozen=True)
class PgType:
    """How one value is laid out in COPY BINARY, with domains already replaced by their base type.

    ``codec`` is the layout of a scalar (``'int4'``, ``'numeric'``, ``'text'`` ...; enums use ``'enum'``);
    for the other kinds it equals ``kind``. ``ndims`` is the declared number of array dimensions: the
    Arrow list nesting depth. ``money_scale`` is the server's number of fractional money digits.
    """

    oid: int
    name: str
    kind: str = "scalar"
    codec: str = ""
    typmod: int = -1
    element: PgType | None = None
    fields: tuple[PgField, ...] = ()
    ndims: int = 1
    money_scale: int = 2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown PgType kind {self.kind!r}")
        if not self.codec:
            object.__setattr__(self, "codec", self.kind)
        if self.kind in ("array", "range", "multirange") and self.element is None:
            raise ValueError(f"PgType {self.name!r} of kind {self.kind} needs an element type")


@dataclass(frozen=True)
class PgColumn:
    """One output column. ``pg_type`` resolves from ``type_oid`` for built-in types when not given.

    ``relation`` (``schema.table`` or empty for a query) only serves error messages. ``not_null`` marks a
    table column declared ``NOT NULL``: its Arrow field is non-nullable (``REQUIRED`` in Parquet, which
    then stores no definition levels) and the decoder refuses a NULL in it.
    """

    name: str
    type_oid: int
    type_name: str
    typmod: int = -1
    pg_type: PgType | None = field(default=None, compare=True)
    relation: str = ""
    not_null: bool = False

    def __post_init__(self) -> None:
        if self.pg_type is None:
            object.__setattr__(self, "pg_type", builtin_type(self.type_oid, self.typmod, ndims=1))

    @property
    def type(self) -> PgType:
        """The resolved type; raises ``UnsupportedTypeError`` when the OID is not a built-in one."""
        if self.pg_type is None:
            raise UnsupportedTypeError(
                "not a built-in type; describe the column with parquetry.pgcopy.describe",
                table=self.relation,
                column=self.name,
                type_name=self.type_name,
            )
        return self.pg_type


def builtin_type(oid: int, typmod: int = -1, ndims: int = 1) -> PgType | None:
    """The ``PgType`` of a built-in scalar, array, range or multirange OID, or None when not built in."""
    if oid in BUILTIN_SCALARS:
        codec, name = BUILTIN_SCALARS[oid]
        return PgType(oid=oid, name=name_with_typmod(name, codec, typmod), codec=codec, typmod=typmod)
    if oid in BUILTIN_RANGES:
        sub_oid, name = BUILTIN_RANGES[oid]
        sub = builtin_type(sub_oid)
        return PgType(oid=oid, name=name, kind="range", element=sub)
    if oid in BUILTIN_MULTIRANGES:
        range_oid, name = BUILTIN_MULTIRANGES[oid]
        return PgType(oid=oid, name=name, kind="multirange", element=builtin_type(range_oid))
    if oid in BUILTIN_ARRAYS:
        elem = builtin_type(BUILTIN_ARRAYS[oid], typmod)
        if elem is None:
            return None
        return PgType(oid=oid, name=elem.name + "[]", kind="array", element=elem, ndims=max(1, ndims))
    return None


def numeric_precision_scale(typmod: int) -> tuple[int, int] | None:
    """``(precision, scale)`` of a ``numeric`` typmod, or None for unconstrained numeric.

    PostgreSQL 15 packs the scale as an 11-bit signed number, so negative scales decode too.
    """
    if typmod < 4:
        return None
    packed = typmod - 4
    precision = (packed >> 16) & 0xFFFF
    scale = ((packed & 0x7FF) ^ 1024) - 1024
    return precision, scale


def decimal_precision_scale(t: PgType) -> tuple[int, int] | None:
    """The Arrow decimal (precision, scale) for a numeric type, or None when it maps to exact text.

    Decimal is used when ``1 <= p <= 76`` and ``0 <= s <= p`` (what Arrow and Parquet both accept);
    unconstrained numeric and the PostgreSQL 15 forms ``numeric(p, -s)`` / ``numeric(p, s > p)`` map to text.
    """
    ps = numeric_precision_scale(t.typmod)
    if ps is None:
        return None
    p, s = ps
    if 1 <= p <= DECIMAL256_MAX_PRECISION and 0 <= s <= p:
        return p, s
    return None


def name_with_typmod(name: str, codec: str, typmod: int) -> str:
    """``format_type``'s spelling of a built-in type with its modifier, e.g. ``numeric(12,2)``."""
    if typmod < 0:
        return name
    if codec == "numeric":
        ps = numeric_precision_scale(typmod)
        return f"numeric({ps[0]},{ps[1]})" if ps else name
    if codec in ("varchar", "bpchar") and typmod >= 4:
        return f"{name}({typmod - 4})"
    if codec in ("bit", "varbit"):
        return f"{name}({typmod})"
    if codec in ("timestamp", "timestamptz", "time", "timetz"):
        base, _, zone = name.partition(" ")
        return f"{base}({typmod}) {zone}"
    return name


class _Unsupported(Exception):
    pass


_SCALAR_ARROW: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "oid": pa.uint32(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bytea": pa.binary(),
    "uuid": pa.binary(16),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "time": pa.time64("us"),
    "timetz": pa.struct([pa.field("time", pa.time64("us")), pa.field("offset_s", pa.int32())]),
    "interval": pa.month_day_nano_interval(),
}


def range_struct(sub: pa.DataType) -> pa.DataType:
    """Arrow layout of a range value; unbounded ends are null, an empty range has ``empty = true``."""
    return pa.struct(
        [
            pa.field("lower", sub),
            pa.field("upper", sub),
            pa.field("lower_inc", pa.bool_(), nullable=False),
            pa.field("upper_inc", pa.bool_(), nullable=False),
            pa.field("empty", pa.bool_(), nullable=False),
        ]
    )


def arrow_type(t: PgType) -> pa.DataType:
    """The Arrow type of a resolved PostgreSQL type; raises ``_Unsupported`` (internal) otherwise."""
    if t.kind == "enum":
        return pa.string()
    if t.kind == "scalar":
        if t.codec in STRING_CODECS:
            return pa.string()
        if t.codec == "numeric":
            ps = decimal_precision_scale(t)
            if ps is None:
                return pa.string()
            p, s = ps
            return pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)
        if t.codec == "money":
            return pa.decimal128(19, t.money_scale)
        if t.codec in _SCALAR_ARROW:
            return _SCALAR_ARROW[t.codec]
        raise _Unsupported(f"no exact Arrow mapping for codec {t.codec!r}")
    assert t.element is not None or t.kind == "composite"
    if t.kind == "array":
        assert t.element is not None
        inner = arrow_type(t.element)
        for _ in range(t.ndims):
            inner = pa.list_(inner)
        return inner
    if t.kind == "range":
        assert t.element is not None
        return range_struct(arrow_type(t.element))
    if t.kind == "multirange":
        assert t.element is not None
        return pa.list_(arrow_type(t.element))
    if t.kind == "composite":
        if not t.fields:
            raise _Unsupported("composite type without attributes")
        return pa.struct([arrow_field(f.name, f.type) for f in t.fields])
    raise _Unsupported(f"kind {t.kind!r}")


def arrow_field(name: str, t: PgType, type_name: str | None = None) -> pa.Field:
    """A nullable Arrow field whose metadata ``pg_type`` holds the PostgreSQL type name."""
    return pa.field(name, arrow_type(t), nullable=True, metadata={"pg_type": type_name or t.name})


def column_arrow_field(col: PgColumn) -> pa.Field:
    """The Arrow field of one column, or ``UnsupportedTypeError`` naming table, column and type."""
    try:
        f = arrow_field(col.name, col.type, col.type_name)
    except _Unsupported as exc:
        raise UnsupportedTypeError(
            str(exc), table=col.relation, column=col.name, type_name=col.type_name
        ) from None
    return f.with_nullable(False) if col.not_null else f


def arrow_schema(columns: Sequence[PgColumn]) -> pa.Schema:
    """The Arrow schema of decoded COPY BINARY data; each field carries ``pg_type`` metadata."""
    return pa.schema([column_arrow_field(c) for c in columns])
