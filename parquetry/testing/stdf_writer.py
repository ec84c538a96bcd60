"""An STDF V4 writer for tests and benchmarks: any record, either byte order, truncated records.

It is written from the STDF V4 specification alone and shares no code with the parser in
``parquetry.stdf``, so that files it makes are an independent check of the parser (tests also read
them back with pystdf). It can write what real testers write and what parsers trip on:

* little-endian (``CPU_TYPE=2``) and big-endian (``CPU_TYPE=1``) files;
* every V4 record (and VUR of V4-2007), with array fields whose counts are filled in;
* records truncated after any field (the specification lets a writer omit trailing fields);
* the PTR default convention: the first PTR of a test carries limits and units, later PTRs of the
  same test omit them (truncated, or flagged invalid through ``OPT_FLAG`` bits 4 and 5);
* multi-site interleaving (``write_lot``) and, for benchmarks, bulk generation of hundreds of MB in
  seconds with numpy (``write_bulk_lot``).

Use :class:`StdfWriter` for hand-made files::

    with open(path, "wb") as fh:
        w = StdfWriter(fh, endian=">")
        w.record("FAR", STDF_VER=4)          # CPU_TYPE follows the byte order
        w.record("MIR", LOT_ID="L1", PART_TYP="P1")
        w.record("PTR", TEST_NUM=1, RESULT=1.5, truncate_after="RESULT")
"""

from __future__ import annotations

import bz2
import gzip
import io
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# (REC_TYP, REC_SUB) of every record the writer knows.
RECORD_TYPES: dict[str, tuple[int, int]] = {
    "FAR": (0, 10), "ATR": (0, 20), "VUR": (0, 30),
    "MIR": (1, 10), "MRR": (1, 20), "PCR": (1, 30), "HBR": (1, 40), "SBR": (1, 50), "PMR": (1, 60),
    "PGR": (1, 62), "PLR": (1, 63), "RDR": (1, 70), "SDR": (1, 80),
    "WIR": (2, 10), "WRR": (2, 20), "WCR": (2, 30),
    "PIR": (5, 10), "PRR": (5, 20),
    "TSR": (10, 30),
    "PTR": (15, 10), "MPR": (15, 15), "FTR": (15, 20),
    "BPS": (20, 10), "EPS": (20, 20),
    "GDR": (50, 10), "DTR": (50, 30),
}  # fmt: skip

# Field lists in specification order. An array field's type is "k<count field>:<element type>".
_C = "Cn"
RECORD_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "FAR": (("CPU_TYPE", "U1"), ("STDF_VER", "U1")),
    "ATR": (("MOD_TIM", "U4"), ("CMD_LINE", _C)),
    "VUR": (("UPD_CNT", "U1"), ("UPD_NAM", "kUPD_CNT:Cn")),
    "MIR": (
        ("SETUP_T", "U4"), ("START_T", "U4"), ("STAT_NUM", "U1"), ("MODE_COD", "C1"), ("RTST_COD", "C1"),
        ("PROT_COD", "C1"), ("BURN_TIM", "U2"), ("CMOD_COD", "C1"),
        *((name, _C) for name in (
            "LOT_ID", "PART_TYP", "NODE_NAM", "TSTR_TYP", "JOB_NAM", "JOB_REV", "SBLOT_ID", "OPER_NAM",
            "EXEC_TYP", "EXEC_VER", "TEST_COD", "TST_TEMP", "USER_TXT", "AUX_FILE", "PKG_TYP", "FAMLY_ID",
            "DATE_COD", "FACIL_ID", "FLOOR_ID", "PROC_ID", "OPER_FRQ", "SPEC_NAM", "SPEC_VER", "FLOW_ID",
            "SETUP_ID", "DSGN_REV", "ENG_ID", "ROM_COD", "SERL_NUM", "SUPR_NAM")),
    ),
    "MRR": (("FINISH_T", "U4"), ("DISP_COD", "C1"), ("USR_DESC", _C), ("EXC_DESC", _C)),
    "PCR": (("HEAD_NUM", "U1"), ("SITE_NUM", "U1"), ("PART_CNT", "U4"), ("RTST_CNT", "U4"),
            ("ABRT_CNT", "U4"), ("GOOD_CNT", "U4"), ("FUNC_CNT", "U4")),
    "HBR": (("HEAD_NUM", "U1"), ("SITE_NUM", "U1"), ("HBIN_NUM", "U2"), ("HBIN_CNT", "U4"),
            ("HBIN_PF", "C1"), ("HBIN_NAM", _C)),
    "SBR": (("HEAD_NUM", "U1"), ("SITE_NUM", "U1"), ("SBIN_NUM", "U2"), ("SBIN_CNT", "U4"),
            ("SBIN_PF", "C1"), ("SBIN_NAM", _C)),
    "PMR": (("PMR_INDX", "U2"), ("CHAN_TYP", "U2"), ("CHAN_NAM", _C), ("PHY_NAM", _C), ("LOG_NAM", _C),
            ("HEAD_NUM", "U1"), ("SITE_NUM", "U1")),
    "PGR": (("GRP_INDX", "U2"), ("GRP_NAM", _C), ("INDX_CNT", "U2"), ("PMR_INDX", "kINDX_CNT:U2")),
    "PLR": (("GRP_CNT", "U2"), ("GRP_INDX", "kGRP_CNT:U2"), ("GRP_MODE", "kGRP_CNT:U2"),
            ("GRP_RADX", "kGRP_CNT:U1"), ("PGM_CHAR", "kGRP_CNT:Cn"), ("RTN_CHAR", "kGRP_CNT:Cn"),
            ("PGM_CHAL", "kGRP_CNT:Cn"), ("RTN_CHAL", "kGRP_CNT:Cn")),
    "RDR": (("NUM_BINS", "U2"), ("RTST_BIN", "kNUM_BINS:U2")),
    "SDR": (("HEAD_NUM", "U1"), ("SITE_GRP", "U1"), ("SITE_CNT", "U1"), ("SITE_NUM", "kSITE_CNT:U1"),
            *((name, _C) for name in (
                "HAND_TYP", "HAND_ID", "CARD_TYP", "CARD_ID", "LOAD_TYP", "LOAD_ID", "DIB_TYP", "DIB_ID",
                "CABL_TYP", "CABL_ID", "CONT_TYP", "CONT_ID", "LASR_TYP", "LASR_ID", "EXTR_TYP", "EXTR_ID"))),
    "WIR": (("HEAD_NUM", "U1"), ("SITE_GRP", "U1"), ("START_T", "U4"), ("WAFER_ID", _C)),
    "WRR": (("HEAD_NUM", "U1"), ("SITE_GRP", "U1"), ("FINISH_T", "U4"), ("PART_CNT", "U4"),
            ("RTST_CNT", "U4"), ("ABRT_CNT", "U4"), ("GOOD_CNT", "U4"), ("FUNC_CNT", "U4"),
            ("WAFER_ID", _C), ("FABWF_ID", _C), ("FRAME_ID", _C), ("MASK_ID", _C), ("USR_DESC", _C),
            ("EXC_DESC", _C)),
    "WCR": (("WAFR_SIZ", "R4"), ("DIE_HT", "R4"), ("DIE_WID", "R4"), ("WF_UNITS", "U1"), ("WF_FLAT", "C1"),
            ("CENTER_X", "I2"), ("CENTER_Y", "I2"), ("POS_X", "C1"), ("POS_Y", "C1")),
    "PIR": (("HEAD_NUM", "U1"), ("SITE_NUM", "U1")),
    "PRR": (("HEAD_NUM", "U1"), ("SITE_NUM", "U1"), ("PART_FLG", "B1"), ("NUM_TEST", "U2"),
            ("HARD_BIN", "U2"), ("SOFT_BIN", "U2"), ("X_COORD", "I2"), ("Y_COORD", "I2"), ("TEST_T", "U4"),
            ("PART_ID", _C), ("PART_TXT", _C), ("PART_FIX", "Bn")),
    "TSR": (("HEAD_NUM", "U1"), ("SITE_NUM", "U1"), ("TEST_TYP", "C1"), ("TEST_NUM", "U4"),
            ("EXEC_CNT", "U4"), ("FAIL_CNT", "U4"), ("ALRM_CNT", "U4"), ("TEST_NAM", _C), ("SEQ_NAME", _C),
            ("TEST_LBL", _C), ("OPT_FLAG", "B1"), ("TEST_TIM", "R4"), ("TEST_MIN", "R4"),
            ("TEST_MAX", "R4"), ("TST_SUMS", "R4"), ("TST_SQRS", "R4")),
    "PTR": (("TEST_NUM", "U4"), ("HEAD_NUM", "U1"), ("SITE_NUM", "U1"), ("TEST_FLG", "B1"),
            ("PARM_FLG", "B1"), ("RESULT", "R4"), ("TEST_TXT", _C), ("ALARM_ID", _C), ("OPT_FLAG", "B1"),
            ("RES_SCAL", "I1"), ("LLM_SCAL", "I1"), ("HLM_SCAL", "I1"), ("LO_LIMIT", "R4"),
            ("HI_LIMIT", "R4"), ("UNITS", _C), ("C_RESFMT", _C), ("C_LLMFMT", _C), ("C_HLMFMT", _C),
            ("LO_SPEC", "R4"), ("HI_SPEC", "R4")),
    "MPR": (("TEST_NUM", "U4"), ("HEAD_NUM", "U1"), ("SITE_NUM", "U1"), ("TEST_FLG", "B1"),
            ("PARM_FLG", "B1"), ("RTN_ICNT", "U2"), ("RSLT_CNT", "U2"), ("RTN_STAT", "kRTN_ICNT:N1"),
            ("RTN_RSLT", "kRSLT_CNT:R4"), ("TEST_TXT", _C), ("ALARM_ID", _C), ("OPT_FLAG", "B1"),
            ("RES_SCAL", "I1"), ("LLM_SCAL", "I1"), ("HLM_SCAL", "I1"), ("LO_LIMIT", "R4"),
            ("HI_LIMIT", "R4"), ("START_IN", "R4"), ("INCR_IN", "R4"), ("RTN_INDX", "kRTN_ICNT:U2"),
            ("UNITS", _C), ("UNITS_IN", _C), ("C_RESFMT", _C), ("C_LLMFMT", _C), ("C_HLMFMT", _C),
            ("LO_SPEC", "R4"), ("HI_SPEC", "R4")),
    "FTR": (("TEST_NUM", "U4"), ("HEAD_NUM", "U1"), ("SITE_NUM", "U1"), ("TEST_FLG", "B1"),
            ("OPT_FLAG", "B1"), ("CYCL_CNT", "U4"), ("REL_VADR", "U4"), ("REPT_CNT", "U4"),
            ("NUM_FAIL", "U4"), ("XFAIL_AD", "I4"), ("YFAIL_AD", "I4"), ("VECT_OFF", "I2"),
            ("RTN_ICNT", "U2"), ("PGM_ICNT", "U2"), ("RTN_INDX", "kRTN_ICNT:U2"),
            ("RTN_STAT", "kRTN_ICNT:N1"), ("PGM_INDX", "kPGM_ICNT:U2"), ("PGM_STAT", "kPGM_ICNT:N1"),
            ("FAIL_PIN", "Dn"), ("VECT_NAM", _C), ("TIME_SET", _C), ("OP_CODE", _C), ("TEST_TXT", _C),
            ("ALARM_ID", _C), ("PROG_TXT", _C), ("RSLT_TXT", _C), ("PATG_NUM", "U1"), ("SPIN_MAP", "Dn")),
    "BPS": (("SEQ_NAME", _C),),
    "EPS": (),
    "GDR": (("FLD_CNT", "U2"), ("GEN_DATA", "kFLD_CNT:Vn")),
    "DTR": (("TEXT_DAT", _C),),
}  # fmt: skip

_STRUCT = {"U1": "B", "U2": "H", "U4": "I", "U8": "Q", "I1": "b", "I2": "h", "I4": "i", "I8": "q",
           "R4": "f", "R8": "d", "B1": "B"}  # fmt: skip

# GDR (Vn) type codes.
VN_CODES = {"B0": 0, "U1": 1, "U2": 2, "U4": 3, "I1": 4, "I2": 5, "I4": 6, "R4": 7, "R8": 8, "Cn": 10,
            "Bn": 11, "Dn": 12, "N1": 13}  # fmt: skip

# PTR OPT_FLAG bits (STDF V4, PTR): bit 1 is reserved and set; 4/5 say "use the default limit".
OPT_RES_SCAL_INVALID = 0x01
OPT_RESERVED = 0x02
OPT_NO_LO_SPEC = 0x04
OPT_NO_HI_SPEC = 0x08
OPT_LO_LIMIT_DEFAULT = 0x10
OPT_HI_LIMIT_DEFAULT = 0x20
OPT_NO_LO_LIMIT = 0x40
OPT_NO_HI_LIMIT = 0x80


class StdfWriteError(ValueError):
    """A record could not be encoded (unknown field, value out of range, record over 65535 bytes)."""


def _default(type_code: str) -> Any:
    if type_code in ("R4", "R8"):
        return 0.0
    if type_code == "C1":
        return " "
    if type_code in ("Cn",):
        return ""
    if type_code in ("Bn",):
        return b""
    if type_code == "Dn":
        return (0, b"")
    if type_code.startswith("k"):
        return []
    return 0


def _to_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


class StdfWriter:
    """Writes STDF V4 records to a binary file object, in the byte order given (``"<"`` or ``">"``)."""

    def __init__(self, fileobj: BinaryIO, endian: str = "<") -> None:
        if endian not in ("<", ">"):
            raise StdfWriteError(f"endian must be '<' or '>', not {endian!r}")
        self.fh = fileobj
        self.endian = endian
        self.offset = 0
        self.counts: dict[str, int] = {}
        self._ptr_seen: set[int] = set()

    # -- encoding --------------------------------------------------------------------------------------
    def _scalar(self, type_code: str, value: Any, name: str) -> bytes:
        e = self.endian
        try:
            if type_code in _STRUCT:
                return struct.pack(e + _STRUCT[type_code], value)
            if type_code == "C1":
                raw = _to_bytes(value)
                if len(raw) != 1:
                    raise StdfWriteError(f"{name}: C1 needs exactly one character, got {value!r}")
                return raw
            if type_code == "Cn":
                raw = _to_bytes(value)
                if len(raw) > 255:
                    raise StdfWriteError(f"{name}: Cn holds at most 255 bytes, got {len(raw)}")
                return bytes([len(raw)]) + raw
            if type_code == "Bn":
                raw = bytes(value)
                if len(raw) > 255:
                    raise StdfWriteError(f"{name}: Bn holds at most 255 bytes, got {len(raw)}")
                return bytes([len(raw)]) + raw
            if type_code == "Dn":
                nbits, raw = (len(value) * 8, bytes(value)) if isinstance(value, bytes | bytearray) else value
                if len(raw) != (nbits + 7) // 8:
                    raise StdfWriteError(f"{name}: Dn of {nbits} bits needs {(nbits + 7) // 8} bytes")
                return struct.pack(e + "H", nbits) + bytes(raw)
        except struct.error as exc:
            raise StdfWriteError(f"{name}: {value!r} does not fit {type_code}: {exc}") from exc
        raise StdfWriteError(f"{name}: unknown type {type_code}")

    def _array(self, element: str, values: Sequence[Any], name: str) -> bytes:
        if element == "N1":
            nibbles = list(values)
            if any(not 0 <= v <= 15 for v in nibbles):
                raise StdfWriteError(f"{name}: N1 values are 0..15")
            if len(nibbles) % 2:
                nibbles.append(0)
            return bytes(lo | (hi << 4) for lo, hi in zip(nibbles[0::2], nibbles[1::2], strict=True))
        if element == "Vn":
            return b"".join(self._vn(item, name) for item in values)
        return b"".join(self._scalar(element, v, name) for v in values)

    def _vn(self, item: tuple[str, Any], name: str) -> bytes:
        code, value = item
        if code not in VN_CODES:
            raise StdfWriteError(f"{name}: unknown GDR type {code!r}")
        head = bytes([VN_CODES[code]])
        if code == "B0":
            return head
        if code == "N1":
            return head + bytes([value & 0x0F])
        return head + self._scalar(code, value, name)

    def encode(self, rec_name: str, truncate_after: str | int | None = None, **fields: Any) -> bytes:
        """The bytes of one record (header included); see :meth:`record`."""
        rec_name = rec_name.upper()
        if rec_name not in RECORD_FIELDS:
            raise StdfWriteError(f"unknown record {rec_name!r}")
        spec = RECORD_FIELDS[rec_name]
        names = [n for n, _ in spec]
        unknown = set(fields) - set(names)
        if unknown:
            raise StdfWriteError(f"{rec_name}: unknown fields {sorted(unknown)}")
        if rec_name == "FAR" and "CPU_TYPE" not in fields:
            fields["CPU_TYPE"] = 2 if self.endian == "<" else 1
        if rec_name == "FAR":
            fields.setdefault("STDF_VER", 4)
        # Fill array counts from the arrays given (and check them when both are given).
        for n, t in spec:
            if t.startswith("k"):
                count_name = t[1:].split(":")[0]
                if n in fields:
                    given = fields.get(count_name)
                    if given is None:
                        fields[count_name] = len(fields[n])
                    elif given != len(fields[n]):
                        raise StdfWriteError(
                            f"{rec_name}.{n}: {len(fields[n])} items but {count_name}={given}"
                        )
        if truncate_after is None:
            stop = len(spec)
        elif isinstance(truncate_after, int):
            stop = truncate_after
        else:
            if truncate_after not in names:
                raise StdfWriteError(f"{rec_name}: cannot truncate after unknown field {truncate_after!r}")
            stop = names.index(truncate_after) + 1
        body = bytearray()
        for n, t in spec[:stop]:
            value = fields.get(n, _default(t))
            if t.startswith("k"):
                count_name, element = t[1:].split(":")
                count = fields.get(count_name, 0)
                if len(value) != count:
                    raise StdfWriteError(f"{rec_name}.{n}: {count_name}={count} but {len(value)} items given")
                body += self._array(element, value, f"{rec_name}.{n}")
            else:
                body += self._scalar(t, value, f"{rec_name}.{n}")
        return self.header(rec_name, len(body)) + bytes(body)

    def header(self, rec_name: str, length: int) -> bytes:
        if length > 0xFFFF:
            raise StdfWriteError(f"{rec_name}: {length} bytes is over the 65535 a record can hold")
        typ, sub = RECORD_TYPES[rec_name]
        return struct.pack(self.endian + "HBB", length, typ, sub)

    # -- writing ---------------------------------------------------------------------------------------
    def record(self, rec_name: str, truncate_after: str | int | None = None, **fields: Any) -> int:
        """Write one record; returns its byte offset in the file.

        Fields not given take neutral values (0, ``" "`` for C1, empty strings and arrays). With
        ``truncate_after`` (a field name, or a count of fields) the record ends after that field, as
        the specification allows for trailing fields.
        """
        data = self.encode(rec_name, truncate_after, **fields)
        return self.raw(data, rec_name.upper())

    def raw(self, data: bytes, rec_name: str = "raw") -> int:
        """Write bytes as they are (a hand-made or deliberately broken record)."""
        start = self.offset
        self.fh.write(data)
        self.offset += len(data)
        self.counts[rec_name] = self.counts.get(rec_name, 0) + 1
        return start

    def raw_record(self, rec_typ: int, rec_sub: int, body: bytes) -> int:
        """A record of any type (also one the writer does not know) with the body given."""
        return self.raw(
            struct.pack(self.endian + "HBB", len(body), rec_typ, rec_sub) + body, f"{rec_typ}.{rec_sub}"
        )

    def ptr(
        self,
        *,
        test_num: int,
        head_num: int,
        site_num: int,
        result: float,
        lo_limit: float,
        hi_limit: float,
        units: str = "V",
        test_txt: str = "",
        test_flg: int | None = None,
        parm_flg: int = 0,
        later_form: str = "TEST_TXT",
    ) -> int:
        """A PTR following the default convention.

        The first PTR of a test number carries limits, scales and units; later ones omit them:
        ``later_form`` is the field they are truncated after (``"RESULT"``, ``"TEST_TXT"``,
        ``"ALARM_ID"``), or ``"OPT_FLAG"`` to write the limit fields with ``OPT_FLAG`` bits 4 and 5
        (use the defaults) set and garbage in them. ``test_flg`` defaults to bit 7 (failed) when
        the result is outside the limits.
        """
        if test_flg is None:
            test_flg = 0x80 if not (lo_limit <= result <= hi_limit) else 0
        common = dict(
            TEST_NUM=test_num,
            HEAD_NUM=head_num,
            SITE_NUM=site_num,
            TEST_FLG=test_flg,
            PARM_FLG=parm_flg,
            RESULT=result,
            TEST_TXT=test_txt,
        )
        if test_num not in self._ptr_seen:
            self._ptr_seen.add(test_num)
            return self.record(
                "PTR",
                **common,
                OPT_FLAG=OPT_RESERVED | OPT_NO_LO_SPEC | OPT_NO_HI_SPEC,
                LO_LIMIT=lo_limit,
                HI_LIMIT=hi_limit,
                UNITS=units,
                C_RESFMT="%9.3f",
                C_LLMFMT="%9.3f",
                C_HLMFMT="%9.3f",
            )
        if later_form == "OPT_FLAG":
            return self.record(
                "PTR",
                **common,
                OPT_FLAG=OPT_RESERVED
                | OPT_LO_LIMIT_DEFAULT
                | OPT_HI_LIMIT_DEFAULT
                | OPT_NO_LO_SPEC
                | OPT_NO_HI_SPEC,
                LO_LIMIT=-9.0e9,
                HI_LIMIT=9.0e9,
                truncate_after="HI_LIMIT",
            )
        return self.record("PTR", **common, truncate_after=later_form)


# -- realistic lots ---------------------------------------------------------------------------------------


@dataclass
class TestDef:
    """One parametric test of a generated lot."""

    number: int
    name: str
    lo: float
    hi: float
    units: str
    mean: float
    sigma: float


@dataclass
class WrittenPart:
    """What the generator wrote for one part (the truth that tests compare a reader against)."""

    head: int
    site: int
    part_id: str
    x: int
    y: int
    hard_bin: int
    soft_bin: int
    passed: bool
    wafer_id: str | None
    results: dict[int, float] = field(default_factory=dict)  # TEST_NUM -> RESULT as written (float32)


@dataclass
class WrittenLot:
    """Summary of a file made by :func:`write_lot`."""

    path: Path
    endian: str
    lot_id: str
    part_typ: str
    test_cod: str
    tests: list[TestDef]
    parts: list[WrittenPart]
    record_counts: dict[str, int]
    mpr_results: int
    ftr_count: int


def make_tests(count: int, rng: np.random.Generator, first_number: int = 1000) -> list[TestDef]:
    """Test definitions with limits about three sigma wide, so that a few parts fail."""
    tests = []
    for i in range(count):
        mean = float(rng.uniform(-2.0, 5.0))
        sigma = float(rng.uniform(0.01, 0.2))
        width = float(rng.uniform(2.8, 4.5)) * sigma
        units = ("V", "A", "mV", "Ohm", "Hz")[i % 5]
        tests.append(
            TestDef(
                first_number + i, f"t{i:03d}_param_{units}", mean - width, mean + width, units, mean, sigma
            )
        )
    return tests


def _opener(path: Path) -> BinaryIO:
    name = path.name
    if name.endswith(".gz"):
        return gzip.open(path, "wb", compresslevel=1)  # type: ignore[return-value]
    if name.endswith(".bz2"):
        return bz2.open(path, "wb")  # type: ignore[return-value]
    return open(path, "wb")


def write_lot(
    path: str | Path,
    *,
    parts: int = 40,
    tests: int = 20,
    sites: int = 4,
    seed: int = 0,
    endian: str = "<",
    lot_id: str = "LOT001",
    part_typ: str = "PRODUCT-A",
    test_cod: str = "FT1",
    wafers: int = 0,
    head: int = 1,
    later_form: str = "TEST_TXT",
    mpr_every: int = 0,
    ftr_every: int = 0,
    mir_after_parts: int | None = None,
) -> WrittenLot:
    """Write a realistic lot: header records, interleaved multi-site touchdowns, summaries.

    ``parts`` parts are tested ``sites`` at a time: each touchdown writes one PIR per site, then
    every test for every site in turn (PTRs interleaved across sites), then one PRR per site. With
    ``wafers`` > 0 the parts are spread over WIR/WRR pairs and get die coordinates. ``mpr_every`` /
    ``ftr_every`` add an MPR / FTR after every n-th test. ``mir_after_parts`` writes the MIR late,
    after that many parts (files seen in the field put records before it). A ``.gz``/``.bz2``
    suffix compresses the file.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    test_defs = make_tests(tests, rng)
    site_nums = list(range(1, sites + 1))
    written: list[WrittenPart] = []
    mpr_results = 0
    ftr_count = 0
    with _opener(path) as fh:
        w = StdfWriter(fh, endian=endian)
        w.record("FAR")
        w.record("ATR", MOD_TIM=1_700_000_000, CMD_LINE="generated by parquetry.testing.stdf_writer")

        def mir() -> None:
            w.record(
                "MIR",
                SETUP_T=1_700_000_000,
                START_T=1_700_000_100,
                STAT_NUM=1,
                MODE_COD="P",
                RTST_COD=" ",
                LOT_ID=lot_id,
                PART_TYP=part_typ,
                NODE_NAM="tester-01",
                TSTR_TYP="93000",
                JOB_NAM="job_" + part_typ,
                JOB_REV="1.0",
                SBLOT_ID=lot_id + ".1",
                OPER_NAM="op",
                EXEC_TYP="SmarTest",
                EXEC_VER="7.4",
                TEST_COD=test_cod,
                TST_TEMP="25",
                FACIL_ID="FAB1",
                FLOW_ID="MAIN",
            )

        if mir_after_parts is None:
            mir()
        w.record("SDR", HEAD_NUM=head, SITE_GRP=1, SITE_NUM=site_nums, HAND_TYP="handler", CARD_ID="card7")
        for i in range(min(sites * 2, 16)):
            w.record(
                "PMR",
                PMR_INDX=i + 1,
                CHAN_TYP=0,
                CHAN_NAM=f"ch{i}",
                PHY_NAM=f"P{i}",
                LOG_NAM=f"pin{i}",
                HEAD_NUM=head,
                SITE_NUM=site_nums[i % sites],
            )
        if wafers:
            w.record(
                "WCR",
                WAFR_SIZ=300.0,
                DIE_HT=5.0,
                DIE_WID=4.0,
                WF_UNITS=3,
                WF_FLAT="D",
                CENTER_X=0,
                CENTER_Y=0,
                POS_X="R",
                POS_Y="D",
            )
        per_wafer = math.ceil(parts / wafers) if wafers else parts
        part_no = 0
        wafer_index = 0
        hbin_counts: dict[tuple[int, int], int] = {}
        sbin_counts: dict[tuple[int, int], int] = {}
        test_stats: dict[tuple[int, int], list[float]] = {}
        while part_no < parts:
            wafer_id = None
            if wafers:
                wafer_index += 1
                wafer_id = f"{lot_id}-W{wafer_index:02d}"
                w.record(
                    "WIR", HEAD_NUM=head, SITE_GRP=255, START_T=1_700_000_200 + wafer_index, WAFER_ID=wafer_id
                )
            wafer_end = min(parts, part_no + per_wafer)
            wafer_parts = 0
            wafer_good = 0
            while part_no < wafer_end:
                if mir_after_parts is not None and part_no >= mir_after_parts and "MIR" not in w.counts:
                    mir()
                batch = site_nums[: wafer_end - part_no]
                touchdown = []
                for site in batch:
                    w.record("PIR", HEAD_NUM=head, SITE_NUM=site)
                    part_no += 1
                    n = part_no
                    x, y = (n % 17 - 8, n // 17 - 8) if wafers else (-32768, -32768)
                    touchdown.append(WrittenPart(head, site, f"{n}", x, y, 1, 1, True, wafer_id))
                for ti, t in enumerate(test_defs):
                    for part in touchdown:
                        value = float(np.float32(rng.normal(t.mean, t.sigma)))
                        part.results[t.number] = value
                        failed = not (t.lo <= value <= t.hi)
                        if failed and part.passed:
                            part.passed = False
                            part.hard_bin, part.soft_bin = 2 + ti % 3, 100 + ti
                        test_stats.setdefault((part.site, t.number), []).append(value)
                        w.ptr(
                            test_num=t.number,
                            head_num=head,
                            site_num=part.site,
                            result=value,
                            lo_limit=t.lo,
                            hi_limit=t.hi,
                            units=t.units,
                            test_txt=t.name,
                            later_form=later_form,
                        )
                    if mpr_every and (ti + 1) % mpr_every == 0:
                        for part in touchdown:
                            vals = [float(np.float32(v)) for v in rng.normal(1.0, 0.1, 3)]
                            mpr_results += len(vals)
                            w.record(
                                "MPR",
                                TEST_NUM=50_000 + ti,
                                HEAD_NUM=head,
                                SITE_NUM=part.site,
                                RTN_STAT=[0, 1, 2],
                                RTN_RSLT=vals,
                                TEST_TXT=f"mpr{ti}",
                                OPT_FLAG=OPT_RESERVED | OPT_NO_LO_SPEC | OPT_NO_HI_SPEC,
                                LO_LIMIT=0.5,
                                HI_LIMIT=1.5,
                                RTN_INDX=[1, 2, 3],
                                UNITS="V",
                            )
                    if ftr_every and (ti + 1) % ftr_every == 0:
                        for part in touchdown:
                            ftr_count += 1
                            w.record(
                                "FTR",
                                TEST_NUM=60_000 + ti,
                                HEAD_NUM=head,
                                SITE_NUM=part.site,
                                TEST_FLG=0,
                                OPT_FLAG=0xFF,
                                CYCL_CNT=1000,
                                NUM_FAIL=0,
                                VECT_NAM="pat_main",
                                TEST_TXT=f"func{ti}",
                                truncate_after="TEST_TXT",
                            )
                for part in touchdown:
                    flg = 0 if part.passed else 0x08
                    w.record(
                        "PRR",
                        HEAD_NUM=head,
                        SITE_NUM=part.site,
                        PART_FLG=flg,
                        NUM_TEST=len(test_defs),
                        HARD_BIN=part.hard_bin,
                        SOFT_BIN=part.soft_bin,
                        X_COORD=part.x,
                        Y_COORD=part.y,
                        TEST_T=120,
                        PART_ID=part.part_id,
                    )
                    hkey, skey = (part.site, part.hard_bin), (part.site, part.soft_bin)
                    hbin_counts[hkey] = hbin_counts.get(hkey, 0) + 1
                    sbin_counts[skey] = sbin_counts.get(skey, 0) + 1
                    wafer_parts += 1
                    wafer_good += part.passed
                written.extend(touchdown)
            if wafers:
                w.record(
                    "WRR",
                    HEAD_NUM=head,
                    SITE_GRP=255,
                    FINISH_T=1_700_001_000 + wafer_index,
                    PART_CNT=wafer_parts,
                    GOOD_CNT=wafer_good,
                    WAFER_ID=wafer_id,
                )
        if mir_after_parts is not None and "MIR" not in w.counts:
            mir()
        for (site, number), values in sorted(test_stats.items()):
            t = next(t for t in test_defs if t.number == number)
            arr = np.asarray(values)
            fails = int(((arr < t.lo) | (arr > t.hi)).sum())
            w.record(
                "TSR",
                HEAD_NUM=head,
                SITE_NUM=site,
                TEST_TYP="P",
                TEST_NUM=number,
                EXEC_CNT=len(values),
                FAIL_CNT=fails,
                ALRM_CNT=0,
                TEST_NAM=t.name,
                OPT_FLAG=0xC8,
                TEST_MIN=float(arr.min()),
                TEST_MAX=float(arr.max()),
                TST_SUMS=float(arr.sum()),
                TST_SQRS=float((arr**2).sum()),
            )
        for (site, b), cnt in sorted(hbin_counts.items()):
            w.record(
                "HBR",
                HEAD_NUM=head,
                SITE_NUM=site,
                HBIN_NUM=b,
                HBIN_CNT=cnt,
                HBIN_PF="P" if b == 1 else "F",
                HBIN_NAM="PASS" if b == 1 else f"FAIL{b}",
            )
        for (site, b), cnt in sorted(sbin_counts.items()):
            w.record(
                "SBR",
                HEAD_NUM=head,
                SITE_NUM=site,
                SBIN_NUM=b,
                SBIN_CNT=cnt,
                SBIN_PF="P" if b == 1 else "F",
                SBIN_NAM="pass" if b == 1 else f"fail_{b}",
            )
        good = sum(p.passed for p in written)
        w.record("PCR", HEAD_NUM=255, SITE_NUM=0, PART_CNT=len(written), GOOD_CNT=good)
        w.record("GDR", GEN_DATA=[("U1", 7), ("Cn", "gdr text"), ("R8", 2.5), ("N1", 3)])
        w.record("DTR", TEXT_DAT="lot complete")
        w.record("MRR", FINISH_T=1_700_009_999, DISP_COD=" ", USR_DESC="done")
        counts = dict(w.counts)
    return WrittenLot(
        path, endian, lot_id, part_typ, test_cod, test_defs, written, counts, mpr_results, ftr_count
    )


# -- bulk generation (benchmarks) ---------------------------------------------------------------------------


@dataclass
class BulkLot:
    """Summary of a file made by :func:`write_bulk_lot`."""

    path: Path
    bytes: int
    parts: int
    ptr_records: int
    mpr_records: int
    ftr_records: int


def write_bulk_lot(
    path: str | Path,
    *,
    target_mb: float = 300.0,
    sites: int = 4,
    tests: int = 200,
    seed: int = 0,
    endian: str = "<",
    touchdowns_per_wafer: int = 500,
    mpr_every: int = 50,
    ftr_every: int = 40,
    chunk_touchdowns: int = 256,
    lot_id: str = "BULK001",
    part_typ: str = "BENCH-PART",
    test_cod: str = "FT1",
) -> BulkLot:
    """Write a realistic multi-hundred-MB lot quickly.

    The first touchdown is written record by record (its PTRs carry limits and units). Every later
    touchdown has the same byte layout (PTRs truncated after TEST_TXT, fixed-width part ids), so it is
    made once as a template and stamped ``chunk_touchdowns`` at a time with numpy: results, test
    flags, bins, coordinates and part ids are written into the copies at known offsets. Memory stays
    bounded by one chunk.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    test_defs = make_tests(tests, rng)
    site_nums = list(range(1, sites + 1))
    lo = np.array([t.lo for t in test_defs], dtype=np.float32)
    hi = np.array([t.hi for t in test_defs], dtype=np.float32)
    mean = np.array([t.mean for t in test_defs])
    sigma = np.array([t.sigma for t in test_defs])
    target = int(target_mb * 1e6)
    fe = "<" if endian == "<" else ">"

    with open(path, "wb") as fh:
        w = StdfWriter(fh, endian=endian)
        w.record("FAR")
        w.record(
            "MIR",
            SETUP_T=1_700_000_000,
            START_T=1_700_000_100,
            STAT_NUM=1,
            MODE_COD="P",
            LOT_ID=lot_id,
            PART_TYP=part_typ,
            NODE_NAM="bench",
            TSTR_TYP="93000",
            JOB_NAM="bench_job",
            TEST_COD=test_cod,
        )
        w.record("SDR", HEAD_NUM=1, SITE_GRP=1, SITE_NUM=site_nums)
        w.record(
            "WCR", WAFR_SIZ=300.0, DIE_HT=5.0, DIE_WID=4.0, WF_UNITS=3, WF_FLAT="D", POS_X="R", POS_Y="D"
        )

        # The template touchdown, written through a writer to a buffer to learn the offsets.
        buf = io.BytesIO()
        tw = StdfWriter(buf, endian=endian)
        tw._ptr_seen = {t.number for t in test_defs}  # every template PTR is a "later" one
        result_off: list[int] = []  # per PTR, in write order (test-major, then site)
        flag_off: list[int] = []
        prr_off: list[int] = []
        for site in site_nums:
            tw.record("PIR", HEAD_NUM=1, SITE_NUM=site)
        n_mpr = n_ftr = 0
        for ti, t in enumerate(test_defs):
            for site in site_nums:
                at = tw.ptr(
                    test_num=t.number,
                    head_num=1,
                    site_num=site,
                    result=0.0,
                    lo_limit=t.lo,
                    hi_limit=t.hi,
                    test_txt=t.name,
                    test_flg=0,
                )
                flag_off.append(at + 10)
                result_off.append(at + 12)
            if mpr_every and (ti + 1) % mpr_every == 0:
                for site in site_nums:
                    n_mpr += 1
                    tw.record(
                        "MPR",
                        TEST_NUM=50_000 + ti,
                        HEAD_NUM=1,
                        SITE_NUM=site,
                        RTN_STAT=[0, 0],
                        RTN_RSLT=[1.0, 1.1],
                        TEST_TXT=f"mpr{ti}",
                        truncate_after="TEST_TXT",
                    )
            if ftr_every and (ti + 1) % ftr_every == 0:
                for site in site_nums:
                    n_ftr += 1
                    tw.record(
                        "FTR",
                        TEST_NUM=60_000 + ti,
                        HEAD_NUM=1,
                        SITE_NUM=site,
                        OPT_FLAG=0xFF,
                        CYCL_CNT=1000,
                        VECT_NAM="pat_main",
                        TEST_TXT=f"func{ti}",
                        truncate_after="TEST_TXT",
                    )
        for site in site_nums:
            prr_off.append(
                tw.record(
                    "PRR",
                    HEAD_NUM=1,
                    SITE_NUM=site,
                    NUM_TEST=tests,
                    TEST_T=120,
                    PART_ID="0" * 10,
                    truncate_after="PART_ID",
                )
            )
        template = np.frombuffer(buf.getvalue(), dtype=np.uint8)
        result_idx = np.asarray(result_off)[:, None] + np.arange(4)
        flag_idx = np.asarray(flag_off)
        prr = np.asarray(prr_off)

        # First touchdown: PTRs with limits and units, through the ordinary path.
        def first_touchdown() -> None:
            for site in site_nums:
                w.record("PIR", HEAD_NUM=1, SITE_NUM=site)
            for t in test_defs:
                for site in site_nums:
                    w.ptr(
                        test_num=t.number,
                        head_num=1,
                        site_num=site,
                        result=t.mean,
                        lo_limit=t.lo,
                        hi_limit=t.hi,
                        units=t.units,
                        test_txt=t.name,
                    )
            for k, site in enumerate(site_nums):
                w.record(
                    "PRR",
                    HEAD_NUM=1,
                    SITE_NUM=site,
                    NUM_TEST=tests,
                    HARD_BIN=1,
                    SOFT_BIN=1,
                    TEST_T=120,
                    PART_ID=f"{k + 1:010d}",
                )

        parts = 0
        wafer = 0
        ptrs = mprs = ftrs = 0
        while w.offset < target:
            wafer += 1
            w.record("WIR", HEAD_NUM=1, SITE_GRP=255, START_T=1_700_000_000 + wafer, WAFER_ID=f"W{wafer:03d}")
            wafer_parts = wafer_good = 0
            if parts == 0:
                first_touchdown()
                parts += sites
                wafer_parts += sites
                wafer_good += sites
                ptrs += tests * sites
            done = 0
            while done < touchdowns_per_wafer and w.offset < target:
                k = min(
                    chunk_touchdowns,
                    touchdowns_per_wafer - done,
                    max(1, (target - w.offset) // len(template) + 1),
                )
                block = np.tile(template, (k, 1))
                values = (rng.standard_normal((k, sites, tests)) * sigma + mean).astype(np.float32)
                failed = (values < lo) | (values > hi)
                by_ptr = values.transpose(0, 2, 1).reshape(k, -1)  # test-major, as written
                block[:, result_idx] = by_ptr.astype(fe + "f4").view(np.uint8).reshape(k, -1, 4)
                block[:, flag_idx] = (failed.transpose(0, 2, 1).reshape(k, -1) * 0x80).astype(np.uint8)
                any_fail = failed.any(axis=2)
                first_fail = failed.argmax(axis=2)
                hard = np.where(any_fail, 2 + first_fail % 3, 1).astype(fe + "u2")
                soft = np.where(any_fail, 100 + first_fail, 1).astype(fe + "u2")
                idx = parts + np.arange(k * sites).reshape(k, sites) + 1
                xs = ((idx % 40) - 20).astype(fe + "i2")
                ys = ((idx // 40) % 40 - 20).astype(fe + "i2")
                ids = np.char.zfill(idx.astype(str), 10).astype("S10").view(np.uint8).reshape(k, sites, 10)
                for s in range(sites):
                    base = int(prr[s]) + 4
                    block[:, base + 2] = np.where(any_fail[:, s], 0x08, 0).astype(np.uint8)
                    block[:, base + 5 : base + 7] = _as_bytes(hard[:, s])
                    block[:, base + 7 : base + 9] = _as_bytes(soft[:, s])
                    block[:, base + 9 : base + 11] = _as_bytes(xs[:, s])
                    block[:, base + 11 : base + 13] = _as_bytes(ys[:, s])
                    block[:, base + 18 : base + 28] = ids[:, s]
                w.raw(block.tobytes(), "touchdowns")
                parts += k * sites
                wafer_parts += k * sites
                wafer_good += int((~any_fail).sum())
                ptrs += k * sites * tests
                mprs += k * n_mpr
                ftrs += k * n_ftr
                done += k
            w.record(
                "WRR",
                HEAD_NUM=1,
                SITE_GRP=255,
                FINISH_T=1_700_100_000 + wafer,
                PART_CNT=wafer_parts,
                GOOD_CNT=wafer_good,
                WAFER_ID=f"W{wafer:03d}",
            )
        for t in test_defs:
            w.record(
                "TSR",
                HEAD_NUM=255,
                SITE_NUM=0,
                TEST_TYP="P",
                TEST_NUM=t.number,
                EXEC_CNT=parts,
                TEST_NAM=t.name,
                OPT_FLAG=0xFF,
            )
        w.record("HBR", HEAD_NUM=255, SITE_NUM=0, HBIN_NUM=1, HBIN_CNT=parts, HBIN_PF="P", HBIN_NAM="PASS")
        w.record("SBR", HEAD_NUM=255, SITE_NUM=0, SBIN_NUM=1, SBIN_CNT=parts, SBIN_PF="P", SBIN_NAM="pass")
        w.record("PCR", HEAD_NUM=255, SITE_NUM=0, PART_CNT=parts)
        w.record("MRR", FINISH_T=1_700_200_000)
        size = w.offset
    return BulkLot(path, size, parts, ptrs, mprs, ftrs)


def _as_bytes(column: np.ndarray) -> np.ndarray:
    """A 1-D array of fixed-width numbers as rows of their bytes (for stamping into templates)."""
    return np.ascontiguousarray(column).view(np.uint8).reshape(len(column), -1)


def records_bytes(records: Iterable[tuple[str, dict[str, Any]]], endian: str = "<") -> bytes:
    """Bytes of a sequence of ``(record name, fields)``; ``fields`` may hold ``truncate_after``."""
    buf = io.BytesIO()
    w = StdfWriter(buf, endian=endian)
    for name, fields in records:
        w.record(name, **fields)
    return buf.getvalue()
