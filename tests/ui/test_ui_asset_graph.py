"""The Dagster UI on the real code location: a run launched through GraphQL, then a screenshot of the
asset graph taken by headless Chromium. With ``PARQUETRY_SAVE_SCREENSHOTS=1`` it is also saved as
docs/images/asset-graph.png (a test run does not otherwise write into the source tree)."""

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from parquetry.testing.dagster_dev import dagster_dev

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "images" / "asset-graph.png"
WIDTH, HEIGHT = 1600, 1000
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("CI is set but no Chromium is installed (apt-get install -y chromium)")
    pytest.skip("no Chromium on PATH (apt-get install -y chromium); the UI screenshot test needs it")


def decode_png(data: bytes) -> np.ndarray:
    """An RGB(A) PNG (8-bit, non-interlaced) as an array of shape (height, width, channels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    stride = width * bpp
    assert raw.size == height * (stride + 1)
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: a running sum per channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:  # Up
            cur = (line + prev) % 256
        else:  # Average, Paeth: sequential within the row
            cur = np.zeros(stride, dtype=np.int32)
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = prev[i]
                if kind == 3:
                    cur[i] = (line[i] + (a + b) // 2) % 256
                else:
                    c = prev[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur[i] = (line[i] + pred) % 256
        out[y] = cur
        prev = cur.astype(np.int32)
    return out.reshape(height, width, bpp)


def screenshot(chromium: str, url: str, path: Path, profile: Path) -> None:
    profile.mkdir(parents=True, exist_ok=True)
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={path}",
        f"--window-size={WIDTH},{HEIGHT}",
        "--virtual-time-budget=30000",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert path.exists(), f"Chromium wrote no screenshot (exit {result.returncode}):\n{result.stderr[-3000:]}"


@pytest.mark.ui
@pytest.mark.slow
@pytest.mark.postgres
def test_asset_graph_screenshot_after_a_run_launched_through_graphql(pg_dsn: str, tmp_path: Path) -> None:
    chromium = find_chromium()
    from parquetry.sample_db import load_sample_database

    load_sample_database(pg_dsn, scale=0.01, seed=0)
    landing = tmp_path / "landing"
    landing.mkdir()
    env = {
        "PARQUETRY_PG_DSN": pg_dsn,
        "PARQUETRY_CATALOG_DSN": pg_dsn,
        "PARQUETRY_DATA_ROOT": str(tmp_path / "data"),
        "PARQUETRY_LANDING_URI": str(landing),
    }
    shot = tmp_path / "asset-graph.png"
    with dagster_dev(tmp_path / "dagster_home", env) as server:
        server.set_nux_seen()
        run_id = server.launch_run("demo_job")
        assert server.wait_for_run(run_id) == "SUCCESS", server.log_tail()
        customers = tmp_path / "data" / "customers"
        assert any(customers.rglob("*.parquet")), "the run wrote the customers dataset"
        url = f"{server.url}/locations/parquetry/asset-groups/postgres/lineage"
        screenshot(chromium, url, shot, tmp_path / "chromium-profile")

    image = decode_png(shot.read_bytes())
    assert image.shape[:2] == (HEIGHT, WIDTH)
    pixels = image[:, :, :3].reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    assert len(colours) > 100, "a rendered page has text and shapes, not a few flat colours"
    assert counts.max() / counts.sum() < 0.95, "the page is not blank"
    if os.environ.get("PARQUETRY_SAVE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
