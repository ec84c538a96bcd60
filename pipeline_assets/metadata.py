"""Standard materialization metadata for every Parquetry asset, with a stage-timing chart.

Every asset reports the same keys, so the Dagster UI can plot them across runs and the generic checks
in ``pipeline_assets.checks`` can rely on them: rows (``dagster/row_count``), bytes, files, engine,
throughput, per-stage seconds, the Arrow schema, and where the Parquet lives.

The stage timings also come as a small PNG bar chart embedded in markdown metadata. It is drawn by a
self-contained PNG encoder (zlib + struct, a 3x5 pixel font for the labels) so that no plotting
library is needed in the code location.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import dagster as dg

ROW_COUNT = "dagster/row_count"
COLUMN_SCHEMA = "dagster/column_schema"
BYTES = "parquetry/bytes"
FILES = "parquetry/files"
ENGINE = "parquetry/engine"
ELAPSED_S = "parquetry/elapsed_s"
THROUGHPUT_MB_S = "parquetry/throughput_mb_s"
ROWS_PER_S = "parquetry/rows_per_s"
STAGE_SECONDS = "parquetry/stage_seconds"
STAGE_CHART = "parquetry/stage_chart"
ARROW_SCHEMA = "parquetry/arrow_schema"
LOCATION = "parquetry/location"
SCHEMA_EVOLUTION = "parquetry/schema_evolution"

ENGINES = ("cpu", "gpu")


def standard_metadata(
    *,
    rows: int | None = None,
    bytes_written: int | None = None,
    files: int | None = None,
    engine: str | None = None,
    elapsed_s: float | None = None,
    stage_seconds: Mapping[str, float] | None = None,
    schema: Any | None = None,
    location: str | None = None,
    schema_evolution: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, dg.MetadataValue]:
    """The metadata dict to return in ``dg.MaterializeResult(metadata=...)``.

    ``schema`` is a ``pyarrow.Schema``; ``location`` a directory or URI holding the dataset's Parquet
    (the generic checks read the files under it). ``schema_evolution`` declares an intended schema
    change (a sentence saying what changed and why); the schema check then accepts the new schema.
    """
    md: dict[str, dg.MetadataValue] = {}
    if rows is not None:
        md[ROW_COUNT] = dg.MetadataValue.int(int(rows))
    if bytes_written is not None:
        md[BYTES] = dg.MetadataValue.int(int(bytes_written))
    if files is not None:
        md[FILES] = dg.MetadataValue.int(int(files))
    if engine is not None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        md[ENGINE] = dg.MetadataValue.text(engine)
    if elapsed_s is not None:
        md[ELAPSED_S] = dg.MetadataValue.float(round(float(elapsed_s), 3))
        if elapsed_s > 0 and bytes_written is not None:
            md[THROUGHPUT_MB_S] = dg.MetadataValue.float(round(bytes_written / elapsed_s / 1e6, 3))
        if elapsed_s > 0 and rows is not None:
            md[ROWS_PER_S] = dg.MetadataValue.float(round(rows / elapsed_s, 1))
    if stage_seconds:
        md[STAGE_SECONDS] = dg.MetadataValue.json({k: round(float(v), 4) for k, v in stage_seconds.items()})
        md[STAGE_CHART] = dg.MetadataValue.md(stage_chart_markdown(stage_seconds))
    if schema is not None:
        md.update(schema_metadata(schema))
    if location is not None:
        md[LOCATION] = dg.MetadataValue.path(str(location))
    if schema_evolution:
        md[SCHEMA_EVOLUTION] = dg.MetadataValue.text(schema_evolution)
    for key, value in (extra or {}).items():
        md[key] = value if isinstance(value, dg.MetadataValue) else _coerce(value)
    return md


def _coerce(value: Any) -> dg.MetadataValue:
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, (dict, list)):
        return dg.MetadataValue.json(value)
    return dg.MetadataValue.text(str(value))


# -- schema ------------------------------------------------------------------------------------


def schema_fields(schema: Any) -> list[dict[str, Any]]:
    """A ``pyarrow.Schema`` as JSON-able ``[{"name", "type", "nullable"}]``: what schema checks compare."""
    return [{"name": f.name, "type": str(f.type), "nullable": bool(f.nullable)} for f in schema]


def schema_metadata(schema: Any) -> dict[str, dg.MetadataValue]:
    """The Arrow schema twice: as a Dagster table schema for the UI, and as JSON for comparisons."""
    fields = schema_fields(schema)
    table_schema = dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=f["name"],
                type=f["type"],
                constraints=dg.TableColumnConstraints(nullable=f["nullable"]),
            )
            for f in fields
        ]
    )
    return {
        COLUMN_SCHEMA: dg.MetadataValue.table_schema(table_schema),
        ARROW_SCHEMA: dg.MetadataValue.json(fields),
    }


# -- the timing chart --------------------------------------------------------------------------

# Bar colours (RGB), cycled over stages; named in the markdown legend.
PALETTE: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("blue", (31, 119, 180)),
    ("orange", (255, 127, 14)),
    ("green", (44, 160, 44)),
    ("red", (214, 39, 40)),
    ("purple", (148, 103, 189)),
    ("brown", (140, 86, 75)),
    ("pink", (227, 119, 194)),
    ("grey", (127, 127, 127)),
)

# A 3x5 pixel font: 15 bits per glyph, rows top to bottom.
_FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", "A": "010101111101101", "B": "110101110101110",
    "C": "011100100100011", "D": "110101101101110", "E": "111100110100111", "F": "111100110100100",
    "G": "011100101101011", "H": "101101111101101", "I": "111010010010111", "J": "001001001101010",
    "K": "101101110101101", "L": "100100100100111", "M": "101111111101101", "N": "110101101101101",
    "O": "010101101101010", "P": "110101110100100", "Q": "010101101110011", "R": "110101110101101",
    "S": "011100010001110", "T": "111010010010010", "U": "101101101101111", "V": "101101101101010",
    "W": "101101111111101", "X": "101101010101101", "Y": "101101010010010", "Z": "111001010100111",
    ".": "000000000000010", "-": "000000111000000", "_": "000000000000111", "/": "001001010100100",
    "%": "101001010100101", " ": "000000000000000", "?": "111001010000010",
}  # fmt: skip

_SCALE = 2  # font pixels per glyph pixel
_GLYPH_W = 3 * _SCALE + _SCALE  # glyph plus one column of spacing
_GLYPH_H = 5 * _SCALE
_MARGIN = 8
_ROW_H = 22
_BAR_H = 14
_LABEL_CHARS = 12
_VALUE_CHARS = 9
WHITE = (255, 255, 255)
AXIS = (160, 160, 160)
INK = (40, 40, 40)


class _Canvas:
    def __init__(self, width: int, height: int, background: tuple[int, int, int] = WHITE) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, rgb: tuple[int, int, int]) -> None:
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, self.width), min(y + h, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes(rgb) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, text: str, rgb: tuple[int, int, int] = INK) -> None:
        for i, char in enumerate(text.upper()):
            glyph = _FONT.get(char, _FONT["?"])
            gx = x + i * _GLYPH_W
            for bit, on in enumerate(glyph):
                if on == "1":
                    row, col = divmod(bit, 3)
                    self.rect(gx + col * _SCALE, y + row * _SCALE, _SCALE, _SCALE, rgb)

    def png(self) -> bytes:
        return encode_png(self.width, self.height, bytes(self.pixels))


def encode_png(width: int, height: int, rgb: bytes) -> bytes:
    """Encode 8-bit RGB pixels (row-major, ``width*height*3`` bytes) as a PNG file."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    stride = width * 3
    if len(rgb) != stride * height:
        raise ValueError(f"expected {stride * height} bytes of RGB pixels, got {len(rgb)}")
    # Each scanline starts with filter type 0 (none).
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _label(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "."


def _seconds_text(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:.0f}S"
    if seconds >= 10:
        return f"{seconds:.1f}S"
    return f"{seconds:.2f}S"


def stage_chart_png(stage_seconds: Mapping[str, float], bar_width: int = 260) -> bytes:
    """A horizontal bar chart of seconds per stage, labelled, as PNG bytes."""
    if not stage_seconds:
        raise ValueError("no stage timings to chart")
    stages = list(stage_seconds.items())
    for name, seconds in stages:
        if seconds < 0:
            raise ValueError(f"stage {name!r} has negative duration {seconds}")
    longest = max(s for _, s in stages) or 1.0
    label_w = _LABEL_CHARS * _GLYPH_W
    bar_x = _MARGIN + label_w + 6
    width = bar_x + bar_width + 6 + _VALUE_CHARS * _GLYPH_W + _MARGIN
    height = 2 * _MARGIN + _ROW_H * len(stages)
    canvas = _Canvas(width, height)
    canvas.rect(bar_x - 2, _MARGIN - 2, 1, _ROW_H * len(stages) + 2, AXIS)
    for i, (name, seconds) in enumerate(stages):
        top = _MARGIN + i * _ROW_H
        canvas.text(_MARGIN, top + (_ROW_H - _GLYPH_H) // 2, _label(name, _LABEL_CHARS))
        length = max(1, round(bar_width * seconds / longest)) if seconds > 0 else 0
        colour = PALETTE[i % len(PALETTE)][1]
        canvas.rect(bar_x, top + (_ROW_H - _BAR_H) // 2, length, _BAR_H, colour)
        canvas.text(bar_x + length + 6, top + (_ROW_H - _GLYPH_H) // 2, _seconds_text(seconds))
    return canvas.png()


def stage_chart_markdown(stage_seconds: Mapping[str, float]) -> str:
    """The chart as an inline PNG, followed by the same numbers as a table (for copy and search)."""
    png = base64.b64encode(stage_chart_png(stage_seconds)).decode("ascii")
    total = sum(stage_seconds.values())
    lines = [f"![stage timings](data:image/png;base64,{png})", "", "| stage | seconds | share | bar |"]
    lines.append("|---|---:|---:|---|")
    for i, (name, seconds) in enumerate(stage_seconds.items()):
        share = 100.0 * seconds / total if total > 0 else 0.0
        lines.append(f"| {name} | {seconds:.3f} | {share:.0f}% | {PALETTE[i % len(PALETTE)][0]} |")
    return "\n".join(lines)
