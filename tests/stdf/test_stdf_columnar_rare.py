"""The columnar decoder of rare records (one numba pass per record type and chunk) agrees with the
record-by-record decoder (``decode.decode_record``) and with ``json.dumps`` of its output, field by
field, on arbitrary bytes: omitted fields, fields cut by REC_LEN, signed values, non-ASCII text."""

from __future__ import annotations

import json
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from parquetry.stdf import hot as H
from parquetry.stdf.columnar import GDR_PARTIAL, GDR_PYTHON, decode_columns, gdr_json, json_texts, supported
from parquetry.stdf.decode import decode_record
from parquetry.stdf.spec import RECORDS, Field, RecordType

COLUMNAR = [r for r in RECORDS if supported(r)]
# every integer width, signed and unsigned, around texts: no real JSON-rendered type has them all
ALL_INTS = RecordType(
    "TEST_ALL_INTS", 250, 250,
    tuple(Field(f"F_{t}", t) for t in ("U1", "I1", "C1", "U2", "I2", "Cn", "U4", "I4", "U8", "I8", "B1")),
)  # fmt: skip
JSON_TYPES = [r for r in COLUMNAR if all(f.type not in ("R4", "R8") for f in r.fields)] + [ALL_INTS]


def _frame(bodies: list[bytes], big: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raw = b"".join(struct.pack(">HBB" if big else "<HBB", len(b), 0, 0) + b for b in bodies)
    offs, pos = [], 0
    for b in bodies:
        offs.append(pos)
        pos += 4 + len(b)
    return np.frombuffer(raw, np.uint8).copy(), np.array(offs, np.int64), np.array([len(b) for b in bodies])


def _bodies(rec: RecordType):
    """Arbitrary record bodies (short ones cut fields part-way, long ones carry every field)."""
    return st.lists(st.binary(max_size=60), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(rec=st.sampled_from(COLUMNAR), data=st.data(), big=st.booleans())
def test_columnar_rare_records_agree_with_the_record_decoder(rec, data, big):
    bodies = data.draw(_bodies(rec))
    buf, offs, lens = _frame(bodies, big)
    _, gather = H.kernels()
    cols, partial = decode_columns(rec, gather, buf, offs, lens, big)
    expected_partial = 0
    for i, body in enumerate(bodies):
        fields, cut = decode_record(rec, body, big)
        expected_partial += cut
        for f in rec.fields:
            got = cols[f.name][i].as_py()
            want = fields.get(f.name)
            if isinstance(want, float):  # R4: compare bits, NaN payloads included
                assert np.float32(got).tobytes() == np.float32(want).tobytes(), (rec.name, f.name, i)
            else:
                assert got == want, (rec.name, f.name, i)
    assert partial == expected_partial


@settings(max_examples=60, deadline=None)
@given(rec=st.sampled_from(JSON_TYPES), data=st.data(), big=st.booleans())
def test_columnar_json_text_is_what_json_dumps_writes(rec, data, big):
    bodies = data.draw(_bodies(rec))
    buf, offs, lens = _frame(bodies, big)
    texts, partial = json_texts(rec, buf, offs, lens, big)
    want = []
    cuts = 0
    for body in bodies:
        fields, cut = decode_record(rec, body, big)
        cuts += cut
        want.append(json.dumps(fields))
    assert texts.to_pylist() == want
    assert partial == cuts


def test_json_text_escapes_every_latin1_byte_like_json_dumps():
    (dtr,) = [r for r in RECORDS if r.name == "DTR"]
    body = bytes([255]) + bytes(range(1, 256))  # every byte value but NUL, which the test below adds
    buf, offs, lens = _frame([body, b"", bytes([4]) + b'"\\\x7f\x00'], False)
    texts, partial = json_texts(dtr, buf, offs, lens, False)
    assert partial == 0
    assert texts.to_pylist() == [
        json.dumps({"TEXT_DAT": bytes(range(1, 256)).decode("latin-1")}),
        "{}",
        json.dumps({"TEXT_DAT": '"\\\x7f\x00'}),
    ]


def test_signed_extremes_render_in_decimal():
    body = struct.pack(
        "<BbcHhBIiQqB", 255, -128, b"x", 65535, -32768, 0, 2**32 - 1, -(2**31), 2**64 - 1, -(2**63), 7
    )
    buf, offs, lens = _frame([body], False)
    texts, _ = json_texts(ALL_INTS, buf, offs, lens, False)
    assert json.loads(texts[0].as_py()) == {
        "F_U1": 255, "F_I1": -128, "F_C1": "x", "F_U2": 65535, "F_I2": -32768, "F_Cn": "", "F_U4": 2**32 - 1,
        "F_I4": -(2**31), "F_U8": 2**64 - 1, "F_I8": -(2**63), "F_B1": 7,
    }  # fmt: skip


def _gdr_item(e: str):
    return st.one_of(
        st.tuples(st.sampled_from([0]), st.just(b"")),
        st.tuples(st.sampled_from([1, 4, 13]), st.binary(min_size=1, max_size=1)),
        st.tuples(st.sampled_from([2, 5]), st.binary(min_size=2, max_size=2)),
        st.tuples(st.sampled_from([3, 6, 7]), st.binary(min_size=4, max_size=4)),
        st.tuples(st.just(8), st.binary(min_size=8, max_size=8)),
        st.tuples(st.sampled_from([10, 11]), st.binary(max_size=12).map(lambda b: bytes([len(b)]) + b)),
        st.tuples(
            st.just(12),
            st.integers(0, 40).map(lambda k: struct.pack(e + "H", k) + bytes(range(7, 7 + (k + 7) // 8))),
        ),
        st.tuples(st.sampled_from([9, 14, 200]), st.just(b"")),  # undefined type codes
    )


@st.composite
def _gdr_bodies(draw, big: bool = False):
    e = ">" if big else "<"
    items = draw(st.lists(_gdr_item(e), max_size=6))
    count = draw(st.one_of(st.just(len(items)), st.integers(0, 8)))
    body = struct.pack(e + "H", count) + b"".join(bytes([c]) + v for c, v in items)
    return body[: draw(st.integers(0, len(body)))] if draw(st.booleans()) else body


@settings(max_examples=150, deadline=None)
@given(big=st.booleans(), data=st.data())
def test_gdr_kernel_renders_what_the_record_decoder_and_json_dumps_give(big, data):
    bodies = data.draw(st.lists(_gdr_bodies(big), min_size=1, max_size=8))
    (gdr,) = [r for r in RECORDS if r.name == "GDR"]
    buf, offs, lens = _frame(bodies, big)
    texts, status = gdr_json(buf, offs, lens, big)
    for i, body in enumerate(bodies):
        try:
            fields, cut = decode_record(gdr, body, big)
        except ValueError:  # an undefined type code: left to the Python decoder, which reports it
            assert status[i] == GDR_PYTHON
            continue
        if any(t in ("R4", "R8") for t, _ in fields.get("GEN_DATA", [])):
            assert status[i] == GDR_PYTHON  # floats need Python's repr
            continue
        if status[i] == GDR_PYTHON:
            # a float item before a cut: the Python decoder drops the cut GEN_DATA, and gets the record
            assert cut, body
            continue
        assert texts[i].as_py() == json.dumps(fields), body
        assert (status[i] == GDR_PARTIAL) == cut


def test_gdr_records_in_a_file_match_the_python_decoder(shared_dir):
    """galaxy_lot3 carries 810 GDRs: the rows the kernel writes equal the per-record Python path."""
    from parquetry.stdf import read_stdf
    from parquetry.stdf.parse import _FileState, _route_other

    path = shared_dir / "stdf_samples" / "galaxy_lot3.stdf"
    other = read_stdf(path, file_id="f")["records_other"].to_pylist()
    gdrs = [r for r in other if r["rec_type"] == "GDR"]
    assert len(gdrs) == 810
    data = path.read_bytes()
    fs, out = _FileState("f", str(path)), {"records_other": []}
    for r in gdrs:
        ln = struct.unpack_from(">H", data, r["offset"])[0]
        body = data[r["offset"] + 4 : r["offset"] + 4 + ln]
        _route_other(fs, 50 * 256 + 10, r["rec_index"], r["offset"], body, True, out)
    assert out["records_other"] == gdrs
