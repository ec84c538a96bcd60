"""Standard metadata: keys and derived rates, and a stage chart that is a valid, proportional PNG."""

from __future__ import annotations

import base64
import re
import struct
import zlib

import dagster as dg
import pyarrow as pa
import pytest

from pipeline_assets import metadata as m


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """An independent minimal PNG reader: checks signature and CRCs, returns (w, h, RGB pixels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * 3
    assert len(raw) == height * (stride + 1)
    pixels = bytearray()
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        assert line[0] == 0, "only filter type 0 is written"
        pixels += line[1:]
    return width, height, bytes(pixels)


def run_lengths(width: int, height: int, pixels: bytes, rgb: tuple[int, int, int]) -> int:
    """The widest horizontal run of one colour in the image."""
    target, best = bytes(rgb), 0
    for y in range(height):
        run = 0
        for x in range(width):
            i = (y * width + x) * 3
            run = run + 1 if pixels[i : i + 3] == target else 0
            best = max(best, run)
    return best


def test_encode_png_round_trips_pixels() -> None:
    pixels = bytes([10, 20, 30, 200, 100, 0]) * 6  # 3x4 image, two alternating colours
    w, h, out = decode_png(m.encode_png(3, 4, pixels))
    assert (w, h, out) == (3, 4, pixels)


def test_encode_png_refuses_wrong_buffer_size() -> None:
    with pytest.raises(ValueError, match="expected 36 bytes"):
        m.encode_png(3, 4, b"\x00" * 35)


def test_stage_chart_bars_are_proportional_to_seconds() -> None:
    png = m.stage_chart_png({"copy": 4.0, "decode": 1.0, "write": 2.0}, bar_width=200)
    w, h, pixels = decode_png(png)
    assert h > 3 * 14 and w > 200
    blue, orange, green = (m.PALETTE[i][1] for i in range(3))
    assert run_lengths(w, h, pixels, blue) == 200
    assert run_lengths(w, h, pixels, orange) == 50
    assert run_lengths(w, h, pixels, green) == 100
    # mostly white background with dark label text present
    assert pixels.count(b"\xff\xff\xff") > len(pixels) // 6
    assert bytes(m.INK) in pixels


def test_stage_chart_markdown_embeds_a_decodable_png_and_a_table() -> None:
    text = m.stage_chart_markdown({"copy": 3.0, "write": 1.0})
    match = re.match(r"!\[stage timings\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    assert match
    decode_png(base64.b64decode(match.group(1)))
    assert "| copy | 3.000 | 75% | blue |" in text
    assert "| write | 1.000 | 25% | orange |" in text


def test_standard_metadata_has_row_count_and_derived_rates() -> None:
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("note", pa.string())])
    md = m.standard_metadata(
        rows=1000,
        bytes_written=4_000_000,
        files=2,
        engine="cpu",
        elapsed_s=2.0,
        stage_seconds={"copy": 1.5, "write": 0.5},
        schema=schema,
        location="/data/orders",
    )
    assert md["dagster/row_count"] == dg.MetadataValue.int(1000)
    assert md[m.BYTES].value == 4_000_000
    assert md[m.FILES].value == 2
    assert md[m.ENGINE].value == "cpu"
    assert md[m.THROUGHPUT_MB_S].value == pytest.approx(2.0)
    assert md[m.ROWS_PER_S].value == pytest.approx(500.0)
    assert md[m.STAGE_SECONDS].value == {"copy": 1.5, "write": 0.5}
    assert md[m.STAGE_CHART].value.startswith("![stage timings](data:image/png;base64,")
    assert md[m.ARROW_SCHEMA].value == [
        {"name": "id", "type": "int64", "nullable": False},
        {"name": "note", "type": "string", "nullable": True},
    ]
    cols = md[m.COLUMN_SCHEMA].value.columns
    assert [(c.name, c.type, c.constraints.nullable) for c in cols] == [
        ("id", "int64", False),
        ("note", "string", True),
    ]
    assert md[m.LOCATION].value == "/data/orders"


def test_standard_metadata_refuses_unknown_engine() -> None:
    with pytest.raises(ValueError, match="engine must be one of"):
        m.standard_metadata(engine="tpu")


def test_metadata_is_accepted_by_a_materialization() -> None:
    @dg.asset
    def tiny() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            metadata=m.standard_metadata(rows=3, bytes_written=10, elapsed_s=0.5, stage_seconds={"a": 0.5})
        )

    result = dg.materialize([tiny])
    assert result.success
    mat = result.asset_materializations_for_node("tiny")[0]
    assert mat.metadata["dagster/row_count"].value == 3
